/**
 * Moving data aside instead of deleting it: everything in PGDATA goes into
 * PGDATA/pg_dynshmem/pgrepl-aside-<time> (see layout.ts for why there), a rename per entry on the
 * same filesystem. The operator removes it once satisfied that nothing in it is needed.
 */
import { mkdir, readdir, rename } from 'node:fs/promises';
import { join } from 'node:path';
import { ASIDE_PARENT, ASIDE_PREFIX } from '../layout.js';
import { log } from '../log.js';
import { fsyncDir } from '../util/atomic-file.js';
import type { StepContext } from './context.js';

export async function moveAside(ctx: StepContext): Promise<void> {
  const { pgdata } = ctx.cfg;
  const stamp = new Date().toISOString().replace(/[-:]/g, '').replace(/\.\d+Z$/, 'Z');
  const parent = join(pgdata, ASIDE_PARENT);
  const aside = join(parent, `${ASIDE_PREFIX}${stamp}`);
  await mkdir(aside, { recursive: true, mode: 0o700 });
  // pg_dynshmem itself stays (it holds earlier kept copies); its own files are transient.
  const entries = (await readdir(pgdata)).filter((e) => e !== ASIDE_PARENT);
  for (const e of entries) await rename(join(pgdata, e), join(aside, e));
  await fsyncDir(aside);
  await fsyncDir(parent);
  await fsyncDir(pgdata);
  log.warn(
    { kept: aside },
    `moved the old data aside to ${aside}: it is kept (never copied to other nodes, never touched by pg_rewind); remove it once you are sure nothing in it is needed`,
  );
}
