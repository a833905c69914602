/**
 * Creates PGDATA (and the WAL, WAL archive and socket directories) with the owner and modes postgres demands,
 * as the official image's docker_create_db_directories does. As root it also hands ownership of
 * everything inside to postgres (volumes are often created or restored by root). Before creating
 * anything it checks that the postgres user will be able to reach PGDATA at all, so a bad path
 * fails with a message instead of half-made directories.
 */
import { chmod, chown, mkdir, stat } from 'node:fs/promises';
import { dirname } from 'node:path';
import { UserError } from '../errors.js';
import { lookupUser, runningAsRoot, type PasswdEntry } from '../handover/privileges.js';
import { runPlain } from '../postgres/run.js';
import { writePhase } from '../state/phase.js';
import type { Config } from '../config/env.js';
import type { StepContext } from './context.js';

function fail(name: string, path: string, err: unknown, remedy: string): never {
  const code = (err as NodeJS.ErrnoException).code ?? String(err);
  throw new UserError(`${name}=${path} cannot be prepared (${code}): ${remedy}`);
}

/** Every existing ancestor of `path` must be searchable by `user` (owner, group or other x bit). */
async function assertReachable(name: string, path: string, user: PasswdEntry): Promise<void> {
  const ancestors: string[] = [];
  for (let d = dirname(path); ; d = dirname(d)) {
    ancestors.unshift(d);
    if (d === '/') break;
  }
  for (const dir of ancestors) {
    let st;
    try {
      st = await stat(dir);
    } catch {
      return; // from here on it will be created, by root, with mode 0755
    }
    const x = st.uid === user.uid ? st.mode & 0o100 : st.gid === user.gid ? st.mode & 0o010 : st.mode & 0o001;
    if (!x) {
      throw new UserError(
        `${name}=${path} is not reachable by the ${user.name} user (uid ${user.uid}): ${dir} is mode ${(st.mode & 0o7777).toString(8)} owned by uid ${st.uid}; make it searchable (chmod o+x ${dir}) or choose another ${name}`,
      );
    }
  }
}

/**
 * chown -R to postgres where the owner is wrong, as the official image does with find: it runs on
 * every start over thousands of files, and find is several times faster than a walk in Node
 * (bench/RESULTS.md). -h changes symlinks themselves, never what they point to.
 */
async function chownTree(dir: string, user: PasswdEntry): Promise<void> {
  const owner = `${user.uid}:${user.gid}`;
  await runPlain('find', [dir, '(', '!', '-uid', String(user.uid), '-o', '!', '-gid', String(user.gid), ')', '-exec', 'chown', '-h', owner, '{}', '+']);
}

/**
 * mkdir -p, with `mode` for `path` itself only: ancestors it has to create get 0755, as mkdir -p
 * gives them. (Node's recursive mkdir gives every level the same mode, and a 0700 parent made by
 * root locks the postgres user out: PostgreSQL 18's PGDATA, /var/lib/postgresql/18/docker, sits
 * two levels inside the volume.)
 */
async function makeDirectory(path: string, mode: number): Promise<void> {
  await mkdir(dirname(path), { recursive: true, mode: 0o755 });
  try {
    await mkdir(path, { mode });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
  }
}

/**
 * Creates `path` with `mode`, owned by `owner` when running as root. `contents: false` chowns the
 * directory itself only: the WAL archive grows to thousands of files and may be shared by the
 * nodes of a cluster (a volume on NFS), and archive-wal only ever adds new files to it.
 */
async function ensureDir(name: string, path: string, mode: number, owner: PasswdEntry | undefined, remedy: string, contents = true) {
  try {
    await makeDirectory(path, mode);
    if (owner && contents) await chownTree(path, owner);
    else if (owner) await chown(path, owner.uid, owner.gid);
    const st = await stat(path);
    if (owner || st.uid === process.getuid?.()) await chmod(path, mode);
  } catch (err) {
    fail(name, path, err, remedy);
  }
}

export async function prepareDirectories(ctx: StepContext): Promise<void> {
  await prepareNodeDirectories(ctx.cfg);
  // From here until the hand-over, `pgrepl health` reports "starting": a temporary server may
  // answer on this node's socket, and it is not the node serving yet.
  writePhase(ctx.cfg.socketDir, ctx.cfg.port, 'preparing');
}

/** PGDATA, the WAL and archive directories and the socket directory, owned by the postgres user (we are root) or checked. */
export async function prepareNodeDirectories(cfg: Config): Promise<void> {
  const { pgdata, initdbWaldir, socketDir, archiveDir } = cfg;
  const owner = runningAsRoot() ? lookupUser() : undefined;
  if (owner) {
    await assertReachable('PGDATA', pgdata, owner);
    if (initdbWaldir) await assertReachable('POSTGRES_INITDB_WALDIR', initdbWaldir, owner);
    if (archiveDir) await assertReachable('PGREPL_ARCHIVE_DIR', archiveDir, owner);
  }
  await ensureDir('PGDATA', pgdata, 0o700, owner, 'mount a writable volume there or choose another PGDATA');
  if (initdbWaldir) {
    await ensureDir('POSTGRES_INITDB_WALDIR', initdbWaldir, 0o700, owner, 'mount a writable volume there or unset it');
  }
  if (archiveDir) {
    await ensureDir('PGREPL_ARCHIVE_DIR', archiveDir, 0o700, owner, 'mount a volume there, writable by the postgres user, or unset it', false);
  }
  // The socket directory is shared by every server on the machine: sticky and group-writable,
  // as in the official image; only its top is ours to own.
  try {
    await makeDirectory(socketDir, 0o3775);
    if (owner) {
      await chown(socketDir, owner.uid, owner.gid);
      await chmod(socketDir, 0o3775);
    }
  } catch (err) {
    fail('socket directory', socketDir, err, 'create it, writable by the postgres user');
  }
}
