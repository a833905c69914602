/**
 * `pgrepl postgres [ARGS]`: one start of a node, as a small reconciler.
 *   observe  what PGDATA holds, the binaries' version, this node's state   (observe/)
 *   decide   which row of the decision table applies -> a list of steps    (plan/decide.ts)
 *   act      run the steps, then hand the process over to postgres         (steps/, handover/)
 * This file only wires the three together; it decides nothing and does no work of its own.
 */
import type { Config } from './config/env.js';
import { UserError } from './errors.js';
import { handOver } from './handover/exec.js';
import { dropPrivileges, lookupUser } from './handover/privileges.js';
import { STAGING_INIT } from './layout.js';
import { log } from './log.js';
import { observe } from './observe/observe.js';
import { decide, type Step } from './plan/decide.js';
import { stagingDir, type StepContext } from './steps/context.js';
import { allowHostConnections, createDatabases } from './steps/databases.js';
import { prepareDirectories } from './steps/directories.js';
import { initdb } from './steps/initdb.js';
import { runInitScripts } from './steps/init-scripts.js';
import { recordState } from './steps/record-state.js';
import { setReplicationRole } from './steps/replication-role.js';
import { writeSettings } from './steps/settings.js';
import { commitStaging, discardInterruptedBuild, finishSwap, syncStaging } from './steps/staging.js';
import { startTempServer, stopTempServer } from './steps/temp-server.js';

/** Variables postgres and its children have no business seeing. */
const SECRET_ENV = ['POSTGRES_PASSWORD', 'PGREPL_TOKEN', 'PGPASSWORD'];

export function postgresEnv(cfg: Config, env: NodeJS.ProcessEnv = process.env): NodeJS.ProcessEnv {
  const out: NodeJS.ProcessEnv = { ...env, PGDATA: cfg.pgdata, PGPORT: String(cfg.port) };
  for (const k of SECRET_ENV) delete out[k];
  return out;
}

async function act(step: Step, ctx: StepContext): Promise<void> {
  switch (step.do) {
    case 'prepare-directories': return prepareDirectories(ctx);
    case 'drop-privileges': return dropPrivileges(lookupUser());
    case 'finish-swap': return finishSwap(ctx);
    case 'discard-interrupted-build': return discardInterruptedBuild(ctx, step.staging);
    case 'initdb': return initdb(ctx);
    case 'start-temp-server':
      return step.on === 'staging'
        ? startTempServer(ctx, stagingDir(ctx), { staging: true })
        : startTempServer(ctx, ctx.cfg.pgdata, { staging: false });
    case 'create-databases': return createDatabases(ctx);
    case 'allow-host-connections': return allowHostConnections(ctx);
    case 'set-replication-role': return setReplicationRole(ctx);
    case 'run-init-scripts': return runInitScripts(ctx);
    case 'stop-temp-server': return stopTempServer(ctx);
    case 'sync-staging': return syncStaging(ctx, STAGING_INIT);
    case 'commit-staging': return commitStaging(ctx, STAGING_INIT);
    case 'write-settings': return writeSettings(ctx);
    case 'record-state': return recordState(ctx);
    case 'hand-over':
      log.info({ role: ctx.cfg.role, args: ctx.postgresArgs }, 'handing over to postgres');
      return handOver('postgres', ctx.postgresArgs, postgresEnv(ctx.cfg));
  }
}

export async function runEntrypoint(cfg: Config, postgresArgs: string[]): Promise<never> {
  for (const warning of cfg.warnings) log.warn(warning);
  const obs = await observe(cfg);
  if (obs.stateIgnored) log.debug(`ignoring state file: ${obs.stateIgnored}`);
  const plan = decide(obs, {
    role: cfg.role,
    pgdata: cfg.pgdata,
    hasPostgresPassword: cfg.postgresPassword !== undefined,
    hostAuthMethod: cfg.hostAuthMethod,
  });
  if ('refuse' in plan) throw new UserError(plan.refuse);
  log.info(
    { row: plan.row, role: cfg.role, node: cfg.nodeName, steps: plan.steps.map((s) => s.do) },
    `start: ${plan.row}: ${plan.why}`,
  );
  const ctx: StepContext = { cfg, obs, postgresArgs };
  try {
    for (const step of plan.steps) {
      log.debug({ step: step.do }, 'step');
      await act(step, ctx);
    }
  } catch (err) {
    // Never leave a temporary server behind: it would hold the port and the data directory.
    await stopTempServer(ctx).catch(() => undefined);
    throw err;
  }
  throw new Error('internal: the plan ended without handing over to postgres');
}
