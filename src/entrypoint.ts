/**
 * `pgrepl postgres [ARGS]`: one start of a node, as a small reconciler.
 *   observe  what PGDATA holds, the binaries' version, this node's state, a standby's upstream
 *   decide   which row of the decision table applies -> a list of steps    (plan/decide.ts)
 *   act      run the steps, then hand the process over to postgres         (steps/, handover/)
 * This file only wires the three together; it decides nothing and does no work of its own.
 */
import { constants as osConstants } from 'node:os';
import type { Config } from './config/env.js';
import { UserError } from './errors.js';
import { handOver } from './handover/exec.js';
import { dropPrivileges, lookupUser } from './handover/privileges.js';
import { log } from './log.js';
import { stopRunningPrograms } from './postgres/run.js';
import { observe } from './observe/observe.js';
import { decide, type Step } from './plan/decide.js';
import { afterRewind } from './plan/rewind.js';
import { effectiveUpstream, hostPort } from './plan/upstream.js';
import { clearPhase } from './state/phase.js';
import { finishWalMove, moveAside } from './steps/aside.js';
import { clone } from './steps/clone.js';
import { requireUpstream, stagingDir, type StepContext } from './steps/context.js';
import { allowHostConnections, createDatabases } from './steps/databases.js';
import { prepareDirectories } from './steps/directories.js';
import { initdb } from './steps/initdb.js';
import { runInitScripts } from './steps/init-scripts.js';
import { promoteTempServer } from './steps/promote.js';
import { recordState } from './steps/record-state.js';
import { setReplicationRole } from './steps/replication-role.js';
import { rewind } from './steps/rewind.js';
import { writeSettings } from './steps/settings.js';
import { createSlot, dropOldSlot } from './steps/slot.js';
import { commitStaging, discardInterruptedBuild, finishSwap, syncStaging } from './steps/staging.js';
import { startTempServer, stopTempServer } from './steps/temp-server.js';

/** Variables postgres and its children have no business seeing. */
const SECRET_ENV = ['POSTGRES_PASSWORD', 'PGREPL_TOKEN', 'PGPASSWORD', 'PGREPL_ETCD_PASSWORD'];

export function postgresEnv(cfg: Config, env: NodeJS.ProcessEnv = process.env): NodeJS.ProcessEnv {
  const out: NodeJS.ProcessEnv = { ...env, PGDATA: cfg.pgdata, PGPORT: String(cfg.port) };
  for (const k of SECRET_ENV) delete out[k];
  return out;
}

async function act(step: Step, ctx: StepContext, stoppedBy: () => NodeJS.Signals | undefined): Promise<void> {
  switch (step.do) {
    case 'prepare-directories': return prepareDirectories(ctx);
    case 'drop-privileges': return dropPrivileges(lookupUser());
    case 'finish-swap': return finishSwap(ctx);
    case 'discard-interrupted-build': return discardInterruptedBuild(ctx, step.staging);
    case 'initdb': return initdb(ctx);
    case 'start-temp-server':
      return step.on === 'staging'
        ? startTempServer(ctx, stagingDir(ctx), { staging: true })
        : startTempServer(ctx, ctx.cfg.pgdata, { staging: false, extra: step.settings ?? [] });
    case 'create-databases': return createDatabases(ctx);
    case 'allow-host-connections': return allowHostConnections(ctx);
    case 'set-replication-role': return setReplicationRole(ctx);
    case 'run-init-scripts': return runInitScripts(ctx);
    case 'promote-temp-server': return promoteTempServer(ctx);
    case 'stop-temp-server': return stopTempServer(ctx);
    case 'clone': return clone(ctx);
    case 'sync-staging': return syncStaging(ctx, step.staging);
    case 'commit-staging': return commitStaging(ctx, step.staging);
    case 'move-aside': return moveAside(ctx);
    case 'finish-wal-move': return finishWalMove(ctx, step.copy);
    case 'rewind': {
      const after = afterRewind(await rewind(ctx), stoppedBy(), step.fallback, hostPort(requireUpstream(ctx)));
      switch (after.next) {
        case 'start': return log.info(after.why);
        case 'stop': throw stoppedError(after.signal as NodeJS.Signals);
        case 'refuse': throw new UserError(after.message);
        case 'fall back':
          log.warn(after.why);
          for (const s of after.steps) await runStep(s, ctx, stoppedBy);
          return;
      }
      return;
    }
    case 'create-slot': return createSlot(ctx);
    case 'drop-old-slot': return void (await dropOldSlot(ctx.cfg, step.on));
    case 'write-settings': return writeSettings(ctx, step.as, step.in);
    case 'record-state': return recordState(ctx, step.as);
    case 'hand-over':
      clearPhase(ctx.cfg.socketDir, ctx.cfg.port);
      log.info({ role: ctx.cfg.role, args: ctx.postgresArgs }, 'handing over to postgres');
      return handOver('postgres', ctx.postgresArgs, postgresEnv(ctx.cfg));
  }
}

export async function runEntrypoint(cfg: Config, postgresArgs: string[]): Promise<never> {
  // Until the HA agent is wired in, a node configured for HA must not run as a plain node.
  if (cfg.ha) {
    throw new UserError('HA mode (PGREPL_ETCD_ENDPOINTS) is not available in this build yet: unset PGREPL_ETCD_ENDPOINTS and the other HA variables to start this node without it; nothing was changed');
  }
  let context: StepContext | undefined;
  const stopSignals = catchStopSignals(cfg, () => context);
  for (const warning of cfg.warnings) log.warn(warning);
  const obs = await observe(cfg);
  if (obs.stateIgnored) log.debug(`ignoring state file: ${obs.stateIgnored}`);
  const plan = decide(obs, {
    role: cfg.role,
    pgdata: cfg.pgdata,
    hasPostgresPassword: cfg.postgresPassword !== undefined,
    hostAuthMethod: cfg.hostAuthMethod,
    reclone: cfg.reclone,
    slots: cfg.slots,
    upstreamTimeoutSeconds: cfg.upstreamTimeoutSeconds,
    fence: cfg.fence,
  });
  if ('refuse' in plan) throw new UserError(plan.refuse);
  log.info(
    { row: plan.row, role: cfg.role, node: cfg.nodeName, steps: plan.steps.map((s) => s.do) },
    `start: ${plan.row}: ${plan.why}`,
  );
  if (plan.fencedTo) {
    log.warn(
      { peer: hostPort(plan.fencedTo) },
      `fenced: this node follows ${hostPort(plan.fencedTo)} as a standby instead of coming up writable, and keeps doing so on every start while PGREPL_ROLE=PRIMARY; to say so, set PGREPL_ROLE=STANDBY and PGREPL_MASTER_IP/PGREPL_MASTER_PORT to that node; to make this node the primary again, run pgrepl promote`,
    );
  }
  const ctx: StepContext = {
    cfg,
    obs,
    postgresArgs,
    upstream: plan.fencedTo ?? obs.upstream?.target ?? effectiveUpstream(cfg.upstream, obs.follow),
    fenced: plan.fencedTo !== undefined,
  };
  context = ctx;
  try {
    for (const step of plan.steps) {
      if (step.do === 'hand-over') stopSignals.release(); // from here on, postgres handles them
      await runStep(step, ctx, () => stopSignals.by);
    }
  } catch (err) {
    await cleanUp(cfg, ctx);
    throw stopSignals.by ? stoppedError(stopSignals.by) : err;
  }
  throw new Error('internal: the plan ended without handing over to postgres');
}

/** A stop signal ends the start before the next step, whatever the step before made of it. */
async function runStep(step: Step, ctx: StepContext, stoppedBy: () => NodeJS.Signals | undefined): Promise<void> {
  const sig = stoppedBy();
  if (sig) throw stoppedError(sig);
  log.debug({ step: step.do }, 'step');
  await act(step, ctx, stoppedBy);
}

/** Never leave a temporary server behind: it would hold the port and the data directory. */
async function cleanUp(cfg: Config, ctx: StepContext | undefined): Promise<void> {
  if (ctx) await stopTempServer(ctx).catch(() => undefined);
  clearPhase(cfg.socketDir, cfg.port);
}

const stoppedError = (sig: NodeJS.Signals) =>
  new UserError(`stopped by ${sig} before postgres started; the next start picks up where this one left off`, 128 + (osConstants.signals[sig] ?? 0));

/**
 * Until postgres runs, a stop signal (docker stop, Ctrl-C) is ours to handle: as PID 1 of a
 * container Node would ignore it, and elsewhere it would end Node but leave pg_basebackup or a
 * temporary server running. The programs running now get the signal; the step they belong to
 * then fails and the catch above cleans up. If none runs (waiting for the upstream, a SQL step),
 * we clean up and exit here.
 */
function catchStopSignals(cfg: Config, ctx: () => StepContext | undefined): { by: NodeJS.Signals | undefined; release(): void } {
  const SIGNALS: NodeJS.Signals[] = ['SIGTERM', 'SIGINT', 'SIGQUIT', 'SIGHUP'];
  const state = {
    by: undefined as NodeJS.Signals | undefined,
    release: () => SIGNALS.forEach((s) => process.off(s, onSignal)),
  };
  const onSignal = (sig: NodeJS.Signals) => {
    if (state.by) return;
    state.by = sig;
    log.warn(`received ${sig} before postgres started: stopping`);
    if (stopRunningPrograms(sig)) return;
    void cleanUp(cfg, ctx()).finally(() => {
      const err = stoppedError(sig);
      log.fatal(err.message);
      process.exit(err.exitCode);
    });
  };
  SIGNALS.forEach((s) => process.on(s, onSignal));
  return state;
}
