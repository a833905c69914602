/**
 * Building a cluster in a staging directory inside PGDATA and moving it in (see layout.ts for why
 * inside). The rename of the staging directory to SWAP_DIR is the commit point: before it, the
 * build can be discarded (it never served a client); after it, it can only be finished.
 */
import { readdir, readlink, rename, rm, rmdir } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { ASIDE_PARENT, SWAP_DIR } from '../layout.js';
import { log } from '../log.js';
import { run } from '../postgres/run.js';
import { fsyncDir } from '../util/atomic-file.js';
import type { StepContext } from './context.js';

/**
 * Removes an unfinished build. If initdb had put the WAL elsewhere (POSTGRES_INITDB_WALDIR), the
 * files it wrote there belong to this build too, and initdb refuses a non-empty WAL directory.
 */
export async function discardInterruptedBuild(ctx: StepContext, staging: string): Promise<void> {
  const dir = join(ctx.cfg.pgdata, staging);
  const waldir = await readlink(join(dir, 'pg_wal')).catch(() => undefined);
  if (waldir && ctx.cfg.initdbWaldir && resolve(dir, waldir) === ctx.cfg.initdbWaldir) {
    for (const e of await readdir(waldir)) await rm(join(waldir, e), { recursive: true, force: true });
    log.info({ waldir }, 'emptied the WAL directory of the interrupted build');
  }
  await rm(dir, { recursive: true, force: true });
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

