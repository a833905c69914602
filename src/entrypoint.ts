/**
 * `pgrepl postgres [ARGS]`: without HA mode, one start (startup.ts: observe -> decide -> act) that
 * hands the process over to postgres (execve), as the official image does; with
 * PGREPL_ETCD_ENDPOINTS, the HA agent (ha/agent.ts), which stays beside postgres. This file only
 * wires them in; it decides nothing and does no work of its own.
 */
import { checkNodeStart, loadConfig, type Config } from './config/env.js';
import { handOver } from './handover/exec.js';
import { reexecUnderInit } from './handover/init.js';
import { postgresEnv, withholdSecretsFromChildren } from './handover/postgres-env.js';
import { log, useLogSettings, type LogFormat } from './log.js';
import { stopRunningPrograms } from './postgres/run.js';
import { cleanUp, start, stoppedError } from './startup.js';
import { withStableNodeName } from './state/node-name.js';
import type { StepContext } from './steps/context.js';

/** The log settings before the configuration is read (and found valid): for its own errors. */
function logSettingsFromRawEnv(): { format: LogFormat; debug: boolean } {
  const format = process.env.PGREPL_LOG_FORMAT?.trim().toLowerCase() === 'pretty' ? 'pretty' : 'json';
  const debug = ['1', 'true', 'yes', 'on'].includes(process.env.PGREPL_DEBUG?.trim().toLowerCase() ?? '');
  return { format, debug };
}

/** As the official image: postgres --help/--version etc. need no data directory; just run them. */
const HELP_FLAGS = new Set(['-?', '--help', '--describe-config', '-V', '--version']);

/** `pgrepl postgres ARGS`: the configuration from the environment, then one start (or the HA agent). */
export async function startNode(args: string[]): Promise<never> {
  if (args.some((a) => HELP_FLAGS.has(a))) return handOver('postgres', args, process.env);
  // HA mode (SPEC §7): the agent stays beside postgres, so as a container's PID 1 it runs under tini.
  if (process.env.PGREPL_ETCD_ENDPOINTS?.trim()) reexecUnderInit();
  useLogSettings(logSettingsFromRawEnv());
  const cfg = withStableNodeName(loadConfig());
  useLogSettings({ format: cfg.logFormat, debug: cfg.debug });
  return runEntrypoint(cfg, args);
}

export async function runEntrypoint(cfg: Config, postgresArgs: string[]): Promise<never> {
  checkNodeStart(cfg);
  withholdSecretsFromChildren();
  for (const warning of cfg.warnings) log.warn(warning);
  // The HA agent (etcd, its API, HTTP) is loaded only in HA mode.
  if (cfg.ha) return (await import('./ha/agent.js')).runAgent(cfg, postgresArgs);
  let context: StepContext | undefined;
  const stopSignals = catchStopSignals(cfg, () => context);
  await start(cfg, {
    postgresArgs,
    stoppedBy: () => stopSignals.by,
    onContext: (ctx) => (context = ctx),
    // A stop signal that came during the last step ends the start; after the hand-over, postgres handles them.
    handOver: (args) => handOver('postgres', args, postgresEnv(cfg), {
      check: () => {
        if (stopSignals.by) throw stoppedError(stopSignals.by);
      },
      release: () => stopSignals.release(),
    }),
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
