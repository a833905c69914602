/**
 * One start of a node, as a small reconciler, ending in a hand-over the caller chooses:
 *   observe  what PGDATA holds, the binaries' version, this node's state, a standby's upstream
 *   decide   which row of the decision table applies -> a list of steps    (plan/decide.ts)
 *   act      run the steps, then hand over to postgres                    (steps/)
 * The plain entrypoint hands over by execve (postgres replaces this process); the HA agent runs
 * the same start whenever it must initdb, clone, rewind or re-point, and hands over by starting
 * postgres as its child. Nothing here decides, and nothing here knows which of the two it serves.
 */
import { constants as osConstants } from 'node:os';
import type { Config } from './config/env.js';
import { UserError } from './errors.js';
import { dropPrivileges, lookupUser } from './handover/privileges.js';
import { log } from './log.js';
import { observe } from './observe/observe.js';
import { decide, type Plan, type Step } from './plan/decide.js';
import { afterRewind } from './plan/rewind.js';
import { effectiveUpstream, hostPort } from './plan/upstream.js';
import { clearPhase } from './state/phase.js';
import { requireUpstream, stagingDir, type StepContext } from './steps/context.js';
import { prepareDirectories } from './steps/directories.js';
import { recordState } from './steps/record-state.js';
import { serverArgs } from './steps/server-args.js';
import { writeSettings } from './steps/settings.js';

/** How the start ends: postgres takes over (execve), or starts as a child; `args` are the user's. */
export type HandOver = (args: string[]) => Promise<void>;

export interface StartOptions {
  /** The user's arguments for postgres (`pgrepl postgres ARGS`). */
  postgresArgs: string[];
  handOver: HandOver;
  /** A stop signal received since the start began: the start ends before its next step. */
  stoppedBy: () => NodeJS.Signals | undefined;
  /** Told the context once the steps are about to run (the caller's signal handler cleans up with it). */
  onContext?: (ctx: StepContext) => void;
}

/** Observes and decides: the plan for this configuration, logged; a refusal throws its one line. */
export async function planStart(cfg: Config): Promise<{ plan: Exclude<Plan, { refuse: string }>; ctx: Omit<StepContext, 'postgresArgs'> }> {
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
    replicationOn: cfg.replicationOn,
    namesWithLineBreaks: [cfg.postgresUser, cfg.postgresDb, ...cfg.gestaltDatabases].some((n) => /[\r\n]/.test(n)),
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
  return {
    plan,
    ctx: { cfg, obs, upstream: plan.fencedTo ?? obs.upstream?.target ?? effectiveUpstream(cfg.upstream, obs.follow), fenced: plan.fencedTo !== undefined },
  };
}

/** One whole start: plan, then every step in order, the last one handing over. */
export async function start(cfg: Config, o: StartOptions): Promise<void> {
  const { plan, ctx: planned } = await planStart(cfg);
  const ctx: StepContext = { ...planned, postgresArgs: o.postgresArgs };
  o.onContext?.(ctx);
  try {
    for (const step of plan.steps) await runStep(step, ctx, o);
  } catch (err) {
    await cleanUp(ctx);
    const sig = o.stoppedBy();
    throw sig ? stoppedError(sig) : err;
  }
}

/**
 * The steps a restart takes (prepare the directories, write the settings, record the state, hand
 * over) are imported above; the others (initdb, clone, rewind, the temporary server, ...) when a
 * plan first runs them, so a restart does not load what only a first boot or a rejoin needs.
 */
async function act(step: Step, ctx: StepContext, o: StartOptions): Promise<void> {
  switch (step.do) {
    case 'prepare-directories': return prepareDirectories(ctx);
    case 'drop-privileges': return dropPrivileges(lookupUser());
    case 'finish-swap': return (await import('./steps/staging.js')).finishSwap(ctx);
    case 'discard-interrupted-build': return (await import('./steps/staging.js')).discardInterruptedBuild(ctx, step.staging);
    case 'initdb': return (await import('./steps/initdb.js')).initdb(ctx);
    case 'start-temp-server': {
      const { startTempServer } = await import('./steps/temp-server.js');
      return step.on === 'staging'
        ? startTempServer(ctx, stagingDir(ctx), { staging: true })
        : startTempServer(ctx, ctx.cfg.pgdata, { staging: false, extra: step.settings ?? [] });
    }
    case 'create-databases': return (await import('./steps/databases.js')).createDatabases(ctx);
    case 'allow-host-connections': return (await import('./steps/databases.js')).allowHostConnections(ctx);
    case 'set-replication-role': return (await import('./steps/replication-role.js')).setReplicationRole(ctx);
    case 'lock-replication-role': return (await import('./steps/replication-role.js')).lockReplicationRole(ctx);
    case 'bootstrap-in-single-user-mode':
      return (await import('./steps/single-user-bootstrap.js')).bootstrapInSingleUserMode(ctx, step.replicationRole);
    case 'run-init-scripts': return (await import('./steps/init-scripts.js')).runInitScripts(ctx);
    case 'promote-temp-server': return (await import('./steps/promote.js')).promoteTempServer(ctx);
    case 'stop-temp-server': return (await import('./steps/temp-server.js')).stopTempServer(ctx);
    case 'clone': return (await import('./steps/clone.js')).clone(ctx);
    case 'sync-staging': return (await import('./steps/staging.js')).syncStaging(ctx, step.staging);
    case 'commit-staging': return (await import('./steps/staging.js')).commitStaging(ctx, step.staging);
    case 'move-aside': return (await import('./steps/aside.js')).moveAside(ctx);
    case 'finish-wal-move': return (await import('./steps/aside.js')).finishWalMove(ctx, step.copy);
    case 'rewind': {
      const { rewind } = await import('./steps/rewind.js');
      const after = afterRewind(await rewind(ctx), o.stoppedBy(), step.fallback, hostPort(requireUpstream(ctx)));
      switch (after.next) {
        case 'start': return log.info(after.why);
        case 'stop': throw stoppedError(after.signal as NodeJS.Signals);
        case 'refuse': throw new UserError(after.message);
        case 'fall back':
          log.warn(after.why);
          for (const s of after.steps) await runStep(s, ctx, o);
          return;
      }
      return;
    }
    case 'create-slot': return (await import('./steps/slot.js')).createSlot(ctx);
    case 'drop-old-slot': return void (await (await import('./steps/slot.js')).dropOldSlot(ctx.cfg, step.on));
    case 'write-settings': return writeSettings(ctx, step.as, step.in, step.walRetrySeconds);
    case 'record-state': return recordState(ctx, step.as);
    case 'hand-over':
      clearPhase(ctx.cfg.socketDir, ctx.cfg.port);
      log.info({ role: ctx.cfg.role, args: ctx.postgresArgs }, 'handing over to postgres');
      return o.handOver(await serverArgs(ctx.postgresArgs, ctx.cfg.pgdata));
  }
}

/** A stop signal ends the start before the next step, whatever the step before made of it. */
async function runStep(step: Step, ctx: StepContext, o: StartOptions): Promise<void> {
  const sig = o.stoppedBy();
  if (sig) throw stoppedError(sig);
  log.debug({ step: step.do }, 'step');
  await act(step, ctx, o);
}

/** Never leave a temporary server behind: it would hold the port and the data directory. */
export async function cleanUp(ctx: StepContext | undefined, cfg: Config | undefined = ctx?.cfg): Promise<void> {
  // A temporary server runs only if its module was loaded to start it.
  if (ctx) await import('./steps/temp-server.js').then((m) => m.stopTempServer(ctx)).catch(() => undefined);
  if (cfg) clearPhase(cfg.socketDir, cfg.port);
}

export const stoppedError = (sig: NodeJS.Signals): UserError =>
  new UserError(`stopped by ${sig} before postgres started; the next start picks up where this one left off`, 128 + (osConstants.signals[sig] ?? 0));
