/**
 * initdb and single-user postgres look the current user up by UID, and stop where /etc/passwd
 * has no such user (`docker run --user 12345`). As the official image does, nss_wrapper
 * (libnss-wrapper) then makes one up for that program alone: passwd and group files in a private
 * temporary directory that name the UID and GID "postgres", preloaded into it, removed after.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { UserError } from '../errors.js';

const LIBRARY = 'libnss_wrapper.so';

/** Where the official entrypoint looks: {/usr,}/lib{/*,}/libnss_wrapper.so. */
function findLibrary(): string | undefined {
  for (const lib of ['/usr/lib', '/lib']) {
    let subdirs: string[] = [];
    try {
      subdirs = readdirSync(lib).map((d) => join(lib, d));
    } catch {
      continue;
    }
    for (const dir of [...subdirs, lib]) {
      const file = join(dir, LIBRARY);
      try {
        if (statSync(file).size > 0) return file;
      } catch {
        // not here
      }
    }
  }
  return undefined;
}

function passwdHasUid(uid: number): boolean {
  try {
    return readFileSync('/etc/passwd', 'utf8').split('\n').some((line) => line.split(':')[2] === String(uid));
  } catch {
    return false;
  }
}

/** Runs `fn` with the environment its program needs to find a user for this process's UID ({} where /etc/passwd has one). */
export async function withNssWrapper<T>(home: string, fn: (env: Record<string, string>) => Promise<T>): Promise<T> {
  const uid = process.getuid?.();
  const gid = process.getgid?.();
  if (uid === undefined || gid === undefined || passwdHasUid(uid)) return fn({});
  const library = findLibrary();
  if (!library) {
    throw new UserError(
      `this process runs as UID ${uid}, which /etc/passwd does not name, and ${LIBRARY} is not installed: install libnss-wrapper, or run as a user /etc/passwd names (e.g. mount the host's /etc/passwd read-only)`,
    );
  }
  const dir = await mkdtemp(join(tmpdir(), 'pgrepl-nss-'));
  try {
    const passwd = join(dir, 'passwd');
    const group = join(dir, 'group');
    await writeFile(passwd, `postgres:x:${uid}:${gid}:PostgreSQL:${home}:/bin/false\n`);
    await writeFile(group, `postgres:x:${gid}:\n`);
    return await fn({ LD_PRELOAD: library, NSS_WRAPPER_PASSWD: passwd, NSS_WRAPPER_GROUP: group });
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
