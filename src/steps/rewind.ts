/**
 * pg_rewind: turns a node that diverged from its upstream (a former primary, or a standby that
 * replayed past the point where the upstream's new timeline forked off) back into one that can
 * follow it, copying only the blocks that changed. pg_rewind needs a cleanly shut down target;
 * a node that crashed (SIGKILL, power loss) first finishes crash recovery in single-user mode.
 * The source is the upstream, reached as the pgrepl role (granted the functions pg_rewind calls);
 * the password travels in the environment.
 */
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { REPLICATION_USER } from '../config/token.js';
import { RECOVERY_CONF, STANDBY_SIGNAL } from '../layout.js';
import { log } from '../log.js';
import { readControlData } from '../observe/control-file.js';
import { requestCheckpoint } from '../postgres/checkpoint.js';
import { run, runWithLines } from '../postgres/run.js';
import { conninfoValue } from '../postgres/settings.js';
import { writePhase } from '../state/phase.js';
import { requireUpstream, type StepContext } from './context.js';

export async function finishCrashRecovery(ctx: StepContext): Promise<void> {
  const { pgdata } = ctx.cfg;
  const state = (await readControlData(pgdata))?.state;
  if (state === 'shut down' || state === 'shut down in recovery') return;
  log.info({ state }, 'the cluster was not shut down cleanly: finishing crash recovery in single-user mode first (pg_rewind needs a clean shutdown)');
  // Single-user mode refuses standby mode; the standby configuration is rewritten after the rewind.
  for (const f of [STANDBY_SIGNAL, 'recovery.signal', RECOVERY_CONF]) await rm(join(pgdata, f), { force: true });
  await run('postgres', ['--single', '-F', '-D', pgdata, '-c', 'archive_mode=off', 'template1']);
}

export async function rewind(ctx: StepContext): Promise<void> {
  const { cfg } = ctx;
  const up = requireUpstream(ctx);
  writePhase(cfg.socketDir, cfg.port, 'rewinding');
  await finishCrashRecovery(ctx);
  const source = [
    `host=${conninfoValue(up.host)}`, `port=${up.port}`, `user=${REPLICATION_USER}`, 'dbname=postgres',
    `application_name=${conninfoValue(cfg.nodeName)}`, 'connect_timeout=10',
  ].join(' ');
  const target = { host: up.host, port: up.port, password: cfg.replicationPassword, applicationName: cfg.nodeName };
  // pg_rewind reads the source's timeline from its control file, which a freshly promoted node
  // updates only at its next checkpoint: ask for one (pg_checkpoint, granted on 15+).
  if (!(await requestCheckpoint(target))) log.info('could not ask the upstream for a checkpoint (before PostgreSQL 15 only through pgrepl.checkpoint(), which a primary creates when it sets up the replication role)');
  log.info({ upstream: `${up.host}:${up.port}` }, 'rewinding with pg_rewind');
  let last = 0;
  const lines = await runWithLines('pg_rewind', ['-D', cfg.pgdata, `--source-server=${source}`, '--progress'], {
    env: { PGPASSWORD: cfg.replicationPassword.reveal() },
  }, (line) => {
    if (!/ kB \(\d+%\) copied$/.test(line)) return log.info(line);
    if (Date.now() - last >= 2000) {
      last = Date.now();
      log.info(line);
    }
  });
  const upstreamTimeline = ctx.obs.upstream?.found.reachable ? ctx.obs.upstream.found.timeline : undefined;
  const ourTimeline = ctx.obs.pgdata.kind === 'cluster' ? ctx.obs.pgdata.timeline : undefined;
  if (lines.some((l) => l.includes('same timeline')) && upstreamTimeline !== ourTimeline) {
    // The source's control file still shows the old timeline: its checkpoint has not come yet.
    throw new Error(`pg_rewind saw the upstream on this node's timeline, but it is on timeline ${upstreamTimeline}: its control file is behind (no checkpoint since its promotion)`);
  }
  log.info('pg_rewind finished');
}
