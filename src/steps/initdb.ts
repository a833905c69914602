/**
 * initdb into the staging directory. The superuser's password reaches initdb through a 0600 file
 * in a private temporary directory (--pwfile), never through its arguments. A UID that /etc/passwd
 * does not name gets one made up (postgres/nss-wrapper.ts), as in the official image.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { log } from '../log.js';
import { withNssWrapper } from '../postgres/nss-wrapper.js';
import { run } from '../postgres/run.js';
import { stagingDir, type StepContext } from './context.js';

export async function initdb(ctx: StepContext): Promise<void> {
  const { cfg } = ctx;
  // --no-sync: the build is flushed once, by sync-staging, before it is moved in.
  const args = ['-D', stagingDir(ctx), `--username=${cfg.postgresUser}`, '--no-sync'];
  if (cfg.initdbWaldir) args.push(`--waldir=${cfg.initdbWaldir}`);
  const tmp = await mkdtemp(join(tmpdir(), 'pgrepl-'));
  try {
    if (cfg.postgresPassword) {
      const pwfile = join(tmp, 'pwfile');
      await writeFile(pwfile, cfg.postgresPassword.reveal() + '\n', { mode: 0o600 });
      args.push(`--pwfile=${pwfile}`);
    }
    args.push(...cfg.initdbArgs);
    log.info({ user: cfg.postgresUser, waldir: cfg.initdbWaldir }, 'initdb');
    await withNssWrapper(cfg.pgdata, (env) => run('initdb', args, { env }));
  } finally {
    await rm(tmp, { recursive: true, force: true });
  }
}
