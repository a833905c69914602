/**
 * The one bundle, dist/pgrepl.cjs, and the image's ENTRYPOINT. It dispatches:
 *   pgrepl postgres [ARGS] | pgrepl -ARG ...   start this node (the entrypoint)
 *   pgrepl <subcommand> ...                      an operator command (status, health, ...)
 *   pgrepl anything else ...                     run it as given (`docker run IMAGE bash`)
 * Nothing is written to stdout before a command runs as given: its stdout is the user's.
 */
import { COMMANDS, commandHelp, runCommand } from './cli/index.js';
import { loadConfig } from './config/env.js';
import { withStableNodeName } from './state/node-name.js';
import { isUserError, UserError } from './errors.js';
import { runEntrypoint } from './entrypoint.js';
import { handOver } from './handover/exec.js';
import { reexecUnderInit } from './handover/init.js';
import { createLogger, log, setLogger } from './log.js';

const usage = () => `usage: pgrepl postgres [ARGS]    start this node (the container's entrypoint)
       pgrepl -c name=value ...    same as: pgrepl postgres -c name=value ...
       pgrepl help                  this text
       pgrepl COMMAND [ARGS]        run any other command as given
operator commands (each with --help):
${commandHelp()}
Configuration comes from the environment (PGREPL_*, POSTGRES_*, PGDATA, PGPORT); see the README.`;

function loggerFromRawEnv() {
  const format = process.env.PGREPL_LOG_FORMAT?.trim().toLowerCase() === 'pretty' ? 'pretty' : 'json';
  const debug = ['1', 'true', 'yes', 'on'].includes(process.env.PGREPL_DEBUG?.trim().toLowerCase() ?? '');
  return createLogger({ format, debug });
}

/** As the official image: postgres --help/--version etc. need no data directory; just run them. */
const HELP_FLAGS = new Set(['-?', '--help', '--describe-config', '-V', '--version']);

async function startNode(args: string[]): Promise<never> {
  if (args.some((a) => HELP_FLAGS.has(a))) return handOver('postgres', args, process.env);
  // HA mode (SPEC §7): the agent stays beside postgres, so as a container's PID 1 it runs under tini.
  if (process.env.PGREPL_ETCD_ENDPOINTS?.trim()) reexecUnderInit();
  setLogger(loggerFromRawEnv());
  const cfg = withStableNodeName(loadConfig());
  setLogger(createLogger({ format: cfg.logFormat, debug: cfg.debug }));
  return runEntrypoint(cfg, args);
}

export async function main(argv: string[]): Promise<number> {
  const [first, ...rest] = argv;
  if (first === undefined || first === 'help') {
    process.stderr.write(usage() + '\n');
    return first === undefined ? 2 : 0;
  }
  if (first === 'postgres') return startNode(rest);
  if (first.startsWith('-')) return startNode(argv);
  if (Object.hasOwn(COMMANDS, first)) return runCommand(first, rest);
  return handOver(first, rest, process.env);
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err: unknown) => {
    if (isUserError(err)) {
      for (const line of (err as UserError).message.split('\n')) log.fatal(line);
      process.exit((err as UserError).exitCode);
    }
    log.fatal({ err }, `unexpected failure: ${(err as Error)?.message ?? String(err)}`);
    process.exit(1);
  },
);
