/**
 * pg_rewind: turns a node that diverged from its upstream (a former primary, or a standby that
 * replayed past the point where the upstream's new timeline forked off) back into one that can
 * follow it, copying only the blocks that changed. pg_rewind needs a cleanly shut down target;
 * a node that crashed (SIGKILL, power loss) first finishes crash recovery in single-user mode.
 * The source is the upstream, reached as the pgrepl role (granted the functions pg_rewind calls);
 * the password travels in the environment.
 *
 * This step reports what happened (RewindOutcome); what that means — start, move aside and
 * clone, stop, refuse — is decided in plan/rewind.ts.
 */
import { readdir, readFile, rename, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { archiveWal } from '../cli/archive-wal.js';
import { REPLICATION_USER } from '../config/token.js';
import { RECOVERY_CONF, SETTINGS_FILE, STANDBY_SIGNAL } from '../layout.js';
import { log } from '../log.js';
import { readControlData } from '../observe/control-file.js';
import type { RewindOutcome } from '../plan/rewind.js';
import { requestCheckpoint } from '../postgres/checkpoint.js';
import { replicationTarget } from '../postgres/replication.js';
import { ProgramFailed, runWithLines } from '../postgres/run.js';
import { runSingleUser } from '../postgres/single-user.js';
import { conninfoValue } from '../postgres/settings.js';
import { libpqTlsEnv } from '../postgres/tls.js';
import { updateNodeState } from '../state/node-state.js';
import { writePhase } from '../state/phase.js';
import { fsyncDir } from '../util/atomic-file.js';
import { requireUpstream, type StepContext } from './context.js';
import { writeTlsFiles } from './tls.js';
import { serverArgs } from './server-args.js';

/**
 * Crash recovery in single-user mode, which refuses standby mode: the standby's marker goes
 * first. Before it goes, the state file records the timeline this node is being rewound to, so
 * that a start killed from here on still knows this is a standby, not a standby someone promoted
 * (plan/decide.ts, 'promoted standby'). The archive stays whole, as Patroni keeps it: archive_mode
 * stays on, so no segment still waiting to be archived (.ready) is recycled, but nothing is
 * archived from inside (archive_command=false); archiveReadySegments does that next. The user's
 * postgres arguments come first, as for every server pgrepl starts (a config_file among them, say).
 */
async function finishCrashRecovery(ctx: StepContext, rewindTo: number | undefined): Promise<void> {
  const { pgdata } = ctx.cfg;
  const control = await readControlData(pgdata);
  if (control?.state === 'shut down' || control?.state === 'shut down in recovery') return;
  if (control && rewindTo !== undefined) {
    await updateNodeState(pgdata, { node: ctx.cfg.nodeName, systemIdentifier: control.systemIdentifier }, { standbyTimeline: rewindTo });
  }
  log.info({ state: control?.state }, 'the cluster was not shut down cleanly: finishing crash recovery in single-user mode first (pg_rewind needs a clean shutdown)');
  for (const f of [STANDBY_SIGNAL, 'recovery.signal', RECOVERY_CONF]) await rm(join(pgdata, f), { force: true });
  const args = [...(await serverArgs(ctx.postgresArgs, pgdata)), '-c', 'archive_mode=on', '-c', 'archive_command=false'];
  await runSingleUser(pgdata, ['-F', ...args], 'template1', []);
}

/**
 * WAL this node wrote that its archive does not have yet: pg_rewind replaces pg_wal with the
 * upstream's history, so archive it now (the archive keeps every timeline; a diverged segment
 * has its own timeline's name and cannot clash with the upstream's).
 */
async function archiveReadySegments(ctx: StepContext): Promise<void> {
  const dir = ctx.cfg.archiveDir;
  if (dir === undefined) return;
  const status = join(ctx.cfg.pgdata, 'pg_wal', 'archive_status');
  const ready = (await readdir(status).catch(() => [] as string[])).filter((f) => f.endsWith('.ready')).sort();
  for (const f of ready) {
    const name = f.slice(0, -'.ready'.length);
    await archiveWal(join(ctx.cfg.pgdata, 'pg_wal', name), name, dir);
    await rename(join(status, f), join(status, `${name}.done`));
  }
  if (ready.length > 0) {
    await fsyncDir(status);
    log.info({ segments: ready.length, archive: dir }, 'archived the WAL still waiting for the archive before pg_rewind');
  }
}

export async function rewind(ctx: StepContext): Promise<RewindOutcome> {
  const { cfg } = ctx;
  const up = requireUpstream(ctx);
  const upstreamTimeline = ctx.obs.upstream?.found.reachable ? ctx.obs.upstream.found.timeline : undefined;
  const ourTimeline = ctx.obs.pgdata.kind === 'cluster' ? ctx.obs.pgdata.timeline : undefined;
  const outcome = (stage: RewindOutcome['stage'], err?: ProgramFailed, lines: string[] = []): RewindOutcome => ({
    stage, exitCode: err?.exitCode, signal: err?.signal, lines: err?.lines ?? lines, upstreamTimeline, ourTimeline,
  });
  writePhase(cfg.socketDir, cfg.port, 'rewinding');
  try {
    await finishCrashRecovery(ctx, upstreamTimeline);
  } catch (err) {
    if (err instanceof ProgramFailed) return outcome('crash recovery', err);
    throw err;
  }
  await archiveReadySegments(ctx);
  const source = [
    `host=${conninfoValue(up.host)}`, `port=${up.port}`, `user=${REPLICATION_USER}`, 'dbname=postgres',
    `application_name=${conninfoValue(cfg.nodeName)}`, 'connect_timeout=10',
  ].join(' ');
  const target = replicationTarget(cfg, up);
  await writeTlsFiles(cfg); // the CA pg_rewind verifies the source with
  // pg_rewind reads the source's timeline from its control file, which a freshly promoted node
  // updates only at its next checkpoint: ask for one (postgres/checkpoint.ts).
  if (!(await requestCheckpoint(target))) log.info('could not ask the upstream for a checkpoint (before PostgreSQL 15 only through pgrepl.checkpoint(), which a primary creates when it sets up the replication role)');
  // With an archive, WAL this node needs that pg_wal no longer holds comes from it (13+): pg_rewind
  // runs the target's restore_command, which pgrepl.conf has had since pgrepl wrote it for archives.
  const settings = await readFile(join(cfg.pgdata, SETTINGS_FILE), 'utf8').catch(() => '');
  const restore = cfg.archiveDir !== undefined && ctx.obs.binariesMajor >= 13 && /^restore_command\b/m.test(settings) ? ['--restore-target-wal'] : [];
  log.info({ upstream: `${up.host}:${up.port}` }, 'rewinding with pg_rewind');
  let last = 0;
  try {
    const lines = await runWithLines('pg_rewind', ['-D', cfg.pgdata, `--source-server=${source}`, '--progress', ...restore], {
      env: { PGPASSWORD: cfg.replicationPassword.reveal(), ...libpqTlsEnv(target.tls, cfg.pgdata) },
    }, (line) => {
      if (!/ kB \(\d+%\) copied$/.test(line)) return log.info(line);
      if (Date.now() - last >= 2000) {
        last = Date.now();
        log.info(line);
      }
    });
    return outcome('done', undefined, lines);
  } catch (err) {
    if (err instanceof ProgramFailed) return outcome('pg_rewind', err);
    throw err;
  }
}
