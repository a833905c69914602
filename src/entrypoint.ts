/**
 * `pgrepl postgres [ARGS]`: without HA mode, one start (startup.ts: observe -> decide -> act) that
 * hands the process over to postgres (execve), as the official image does; with
 * PGREPL_ETCD_ENDPOINTS, the HA agent (ha/agent.ts), which stays beside postgres. This file only
 * wires them in; it decides nothing and does no work of its own.
 */
import { checkNodeStart, type Config } from './config/env.js';
import { runAgent } from './ha/agent.js';
import { handOver } from './handover/exec.js';
import { postgresEnv, withholdSecretsFromChildren } from './handover/postgres-env.js';
import { log } from './log.js';
import { stopRunningPrograms } from './postgres/run.js';
import { cleanUp, start, stoppedError } from './startup.js';
import type { StepContext } from './steps/context.js';

export async function runEntrypoint(cfg: Config, postgresArgs: string[]): Promise<never> {
  checkNodeStart(cfg);
  withholdSecretsFromChildren();
  for (const warning of cfg.warnings) log.warn(warning);
  if (cfg.ha) return runAgent(cfg, postgresArgs);
  let context: StepContext | undefined;
  const stopSignals = catchStopSignals(cfg, () => context);
  await start(cfg, {
    postgresArgs,
    stoppedBy: () => stopSignals.by,
    onContext: (ctx) => (context = ctx),
    handOver: (args) => {
      stopSignals.release(); // from here on, postgres handles them
      return handOver('postgres', args, postgresEnv(cfg));
    },
  });
  throw new Error('internal: the plan ended without handing over to postgres');
}

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
    void cleanUp(ctx(), cfg).finally(() => {
      const err = stoppedError(sig);
      log.fatal(err.message);
      process.exit(err.exitCode);
    });
  };
  SIGNALS.forEach((s) => process.on(s, onSignal));
  return state;
}
