/**
 * Building a cluster in a staging directory inside PGDATA and moving it in (see layout.ts for why
 * inside). The rename of the staging directory to SWAP_DIR is the commit point: before it, the
 * build can be discarded (it never served a client); after it, it can only be finished.
 */
import { readdir, readFile, readlink, rename, rm, rmdir } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { ASIDE_PARENT, SWAP_DIR } from '../layout.js';
import { log } from '../log.js';
import { run } from '../postgres/run.js';
import { fsyncDir } from '../util/atomic-file.js';
import type { StepContext } from './context.js';

/**
 * How a server runs on a cluster still being built in staging (the temporary server, or
 * single-user mode): no fsync (sync-staging flushes the build once, before it is moved in; a
 * crash before that discards it), and no log line for each of the checkpoints that CREATE
 * DATABASE ... STRATEGY FILE_COPY takes.
 */
export const STAGING_SETTINGS = ['fsync=off', 'full_page_writes=off', 'synchronous_commit=off', 'log_checkpoints=off'];

/**
 * Removes an unfinished build. If initdb had put the WAL elsewhere (POSTGRES_INITDB_WALDIR), the
 * files it wrote there belong to this build too, and initdb refuses a non-empty WAL directory.
 */
export async function discardInterruptedBuild(ctx: StepContext, staging: string): Promise<void> {
  const dir = join(ctx.cfg.pgdata, staging);
  await stopOrphanServer(dir);
  const waldir = await readlink(join(dir, 'pg_wal')).catch(() => undefined);
  if (waldir && ctx.cfg.initdbWaldir && resolve(dir, waldir) === ctx.cfg.initdbWaldir) {
    for (const e of await readdir(waldir)) await rm(join(waldir, e), { recursive: true, force: true });
    log.info({ waldir }, 'emptied the WAL directory of the interrupted build');
  }
  // maxRetries: a program of the killed start (initdb) may still be writing there for a moment.
  await rm(dir, { recursive: true, force: true, maxRetries: 20, retryDelay: 100 });
  await fsyncDir(ctx.cfg.pgdata);
  log.info({ staging: dir }, 'discarded an interrupted build that never served data');
}

/**
 * Flushes a finished build to disk before it is moved in: initdb ran with --no-sync and the
 * temporary server with fsync off. `sync -f` is one syncfs(2) per filesystem (PGDATA's, and the
 * WAL directory's if it is elsewhere), far cheaper than an fsync per file.
 */
export async function syncStaging(ctx: StepContext, staging: string): Promise<void> {
  const targets = [join(ctx.cfg.pgdata, staging)];
  if (ctx.cfg.initdbWaldir) targets.push(ctx.cfg.initdbWaldir);
  await run('sync', ['-f', ...targets]);
}

/**
 * A start killed while its temporary server ran on the staging copy (outside a container, where
 * a SIGKILL does not take every process with it) leaves that server running: pg_ctl starts it in
 * a session of its own. It never served a client; stop it at once before its files go.
 */
async function stopOrphanServer(dataDir: string): Promise<void> {
  const pid = Number((await readFile(join(dataDir, 'postmaster.pid'), 'utf8').catch(() => '')).split('\n')[0]);
  if (!(pid > 0) || !alive(pid)) return;
  // Only if that PID really is a server of this directory (a postmaster's working directory is
  // its data directory): PIDs are reused, and we may be root.
  if ((await readlink(`/proc/${pid}/cwd`).catch(() => '')) !== dataDir) return;
  log.warn({ pid }, 'a temporary server of the interrupted build is still running: stopping it');
  process.kill(pid, 'SIGQUIT');
  for (let i = 0; i < 300 && alive(pid); i++) await new Promise((r) => setTimeout(r, 100));
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

export async function commitStaging(ctx: StepContext, staging: string): Promise<void> {
  const { pgdata } = ctx.cfg;
  await rename(join(pgdata, staging), join(pgdata, SWAP_DIR));
  await fsyncDir(pgdata);
  await finishSwap(ctx);
}

/** Moves every entry of SWAP_DIR up into PGDATA, PG_VERSION last, then removes SWAP_DIR. */
export async function finishSwap(ctx: StepContext): Promise<void> {
  const { pgdata } = ctx.cfg;
  const swap = join(pgdata, SWAP_DIR);
  const entries = (await readdir(swap)).sort((a, b) => Number(a === 'PG_VERSION') - Number(b === 'PG_VERSION'));
  for (const e of entries) {
    // PGDATA/pg_dynshmem may hold data moved aside earlier: keep it, drop the new, empty one.
    if (e === ASIDE_PARENT && (await readdir(join(pgdata, e)).catch(() => undefined)) !== undefined) {
      await rm(join(swap, e), { recursive: true, force: true });
      continue;
    }
    await rename(join(swap, e), join(pgdata, e));
  }
  await rmdir(swap);
  await fsyncDir(pgdata);
  log.debug({ moved: entries.length }, 'moved the new cluster into PGDATA');
}

