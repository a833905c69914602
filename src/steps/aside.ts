/**
 * Moving data aside instead of deleting it: everything in PGDATA goes into
 * PGDATA/pg_dynshmem/pgrepl-aside-<time> (see layout.ts for why there), a rename per entry on the
 * same filesystem. The operator removes it once satisfied that nothing in it is needed.
 *
 * With the WAL outside PGDATA (POSTGRES_INITDB_WALDIR: PGDATA/pg_wal is a symlink into it), moving
 * the symlink alone would keep a copy without its WAL and leave the WAL directory full, which the
 * clone that follows cannot use (pg_basebackup --waldir refuses a directory holding anything,
 * even a hidden file). So the WAL directory's entries move into the kept copy too, as its own
 * pg_wal directory in place of the symlink: the kept copy is a whole cluster on its own, and the
 * WAL directory is left empty for the clone. Those are renames as well, which only work within
 * one mount (rename(2) fails with EXDEV across mounts, even of the same filesystem): probed
 * before anything moves; across mounts the move is refused, as copying the WAL could fill the
 * volume. PGDATA's entries move first, the WAL after: a start killed in between leaves a kept
 * copy whose pg_wal still points at all of its WAL, never a cluster in PGDATA without its WAL.
 */
import { lstat, mkdir, readdir, realpath, rename, rmdir, unlink } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { UserError } from '../errors.js';
import { ASIDE_PARENT, ASIDE_PREFIX, ASIDE_WAL_MOVING } from '../layout.js';
import { log } from '../log.js';
import { fsyncDir } from '../util/atomic-file.js';
import type { StepContext } from './context.js';

export async function moveAside(ctx: StepContext): Promise<void> {
  const { pgdata } = ctx.cfg;
  const stamp = new Date().toISOString().replace(/[-:]/g, '').replace(/\.\d+Z$/, 'Z');
  const parent = join(pgdata, ASIDE_PARENT);
  const aside = join(parent, `${ASIDE_PREFIX}${stamp}`);
  const waldir = await walDirToKeep(ctx);
  await mkdir(aside, { recursive: true, mode: 0o700 });
  const keptWal = join(aside, ASIDE_WAL_MOVING);
  if (waldir) await probeRename(ctx, waldir, keptWal, stamp);
  // pg_dynshmem itself stays (it holds earlier kept copies); its own files are transient.
  const entries = (await readdir(pgdata)).filter((e) => e !== ASIDE_PARENT);
  for (const e of entries) await rename(join(pgdata, e), join(aside, e));
  await fsyncDir(aside);
  await fsyncDir(parent);
  await fsyncDir(pgdata);
  if (waldir) await moveWalInto(aside, waldir, keptWal);
  log.warn(
    { kept: aside, ...(waldir ? { walFrom: waldir } : {}) },
    `moved the old data aside to ${aside}${waldir ? `, its WAL from ${waldir} with it (into its pg_wal)` : ''}: it is kept (never copied to other nodes, never touched by pg_rewind); remove it once you are sure nothing in it is needed`,
  );
}

/**
 * The WAL directory whose entries are this cluster's WAL and must go along: POSTGRES_INITDB_WALDIR
 * when PGDATA/pg_wal links to it and it is not empty. A link elsewhere (the variable changed
 * since) needs nothing: the kept copy's link keeps pointing at its WAL, and the clone's WAL
 * directory is another.
 */
async function walDirToKeep(ctx: StepContext): Promise<string | undefined> {
  const { pgdata, initdbWaldir } = ctx.cfg;
  if (!initdbWaldir) return undefined;
  const link = join(pgdata, 'pg_wal');
  if (!(await lstat(link).catch(() => undefined))?.isSymbolicLink()) return undefined;
  const [target, waldir] = await Promise.all([realpath(link).catch(() => undefined), realpath(initdbWaldir).catch(() => undefined)]);
  if (target === undefined || target !== waldir) return undefined;
  return (await readdir(waldir)).length > 0 ? waldir : undefined;
}

/**
 * Whether the WAL directory's entries can be renamed into the kept copy: an empty directory
 * renamed into the WAL directory and back. Leaves the new kept copy directory holding only that
 * empty directory, the WAL's destination.
 */
async function probeRename(ctx: StepContext, waldir: string, keptWal: string, stamp: string): Promise<void> {
  await mkdir(keptWal, { mode: 0o700 });
  const probe = join(waldir, `.pgrepl-probe-${stamp}`);
  try {
    await rename(keptWal, probe);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EXDEV') throw err;
    await rmdir(keptWal);
    await rmdir(dirname(keptWal));
    throw new UserError(
      `POSTGRES_INITDB_WALDIR=${ctx.cfg.initdbWaldir} is on another filesystem than PGDATA=${ctx.cfg.pgdata}: the WAL of the data to be moved aside cannot go along with it without a copy, ` +
        'and the clone needs that directory empty. Point POSTGRES_INITDB_WALDIR at a new, empty directory (the old WAL stays where it is, and the copy kept aside points at it); nothing was changed',
    );
  }
  await rename(probe, keptWal);
}

/**
 * Finishes a WAL move a killed start left half done: the kept copy's pg_wal is still the symlink
 * to the WAL directory (where the rest of its WAL is), ASIDE_WAL_MOVING holds what moved already.
 */
export async function finishWalMove(ctx: StepContext, copy: string): Promise<void> {
  const aside = join(ctx.cfg.pgdata, ASIDE_PARENT, copy);
  const waldir = await realpath(join(aside, 'pg_wal'));
  await moveWalInto(aside, waldir, join(aside, ASIDE_WAL_MOVING));
  log.info({ kept: aside, walFrom: waldir }, 'finished moving the WAL of a kept copy into it (a start was stopped half-way)');
}

/** Every entry of the WAL directory into keptWal, which then replaces the kept copy's pg_wal symlink. */
async function moveWalInto(aside: string, waldir: string, keptWal: string): Promise<void> {
  for (const e of await readdir(waldir)) await rename(join(waldir, e), join(keptWal, e));
  await fsyncDir(keptWal);
  await fsyncDir(waldir);
  // The symlink pointed at the WAL directory, which from now on is the clone's.
  await unlink(join(aside, 'pg_wal'));
  await rename(keptWal, join(aside, 'pg_wal'));
  await fsyncDir(aside);
}
