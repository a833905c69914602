/**
 * Which PostgreSQL the binaries on PATH are. Compared with PGDATA's PG_VERSION before anything is
 * touched, and used to pick version-specific settings (wal_keep_size vs wal_keep_segments, ...).
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { UserError } from '../errors.js';
import { withoutSecrets } from '../handover/postgres-env.js';

/** "postgres (PostgreSQL) 15.18 (Debian ...)" -> 15; "9.6.24" -> 9.6 (majors before 10 had two parts). */
export function parseMajor(versionOutput: string): number | undefined {
  const m = /\(PostgreSQL\)\s+(\d+)(?:\.(\d+))?/.exec(versionOutput);
  if (!m) return undefined;
  const first = Number(m[1]);
  return first >= 10 ? first : Number(`${m[1]}.${m[2] ?? 0}`);
}

/** `postgres --version` started ahead of time (probeBinaries), not asked for yet. */
let probed: Promise<string> | undefined;

// Started before the configuration is read (probeBinaries), so before the secrets are withheld from this process's environment.
const askVersion = async (): Promise<string> => (await promisify(execFile)('postgres', ['--version'], { env: withoutSecrets() })).stdout;

/**
 * Starts `postgres --version` now, for the next binariesMajor(): `pgrepl postgres` calls it
 * before it loads the entrypoint, so that the program runs (on another core) while Node loads
 * and configures, instead of after. Its failure is reported by binariesMajor(), if it is asked.
 */
export function probeBinaries(): void {
  probed = askVersion();
  probed.catch(() => undefined); // not asked (a refusal came first): not an unhandled rejection
}

export async function binariesMajor(): Promise<number> {
  let out: string;
  const answer = probed ?? askVersion();
  probed = undefined; // one answer per probe: the next caller asks again
  try {
    out = await answer;
  } catch (err) {
    const code = (err as { code?: string }).code;
    throw new UserError(
      code === 'ENOENT'
        ? 'postgres is not on PATH: add PostgreSQL\'s bin directory to PATH (e.g. PATH=/usr/lib/postgresql/15/bin:$PATH)'
        : `postgres --version failed: ${(err as Error).message.split('\n')[0]}`,
    );
  }
  const major = parseMajor(out);
  if (major === undefined) throw new UserError(`cannot tell the PostgreSQL version from "postgres --version": ${out}`);
  return major;
}
