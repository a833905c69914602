/**
 * The one bundle, dist/pgrepl.cjs, and the image's ENTRYPOINT. It dispatches:
 *   pgrepl postgres [ARGS] | pgrepl -ARG ...   start this node (the entrypoint)
 *   pgrepl <subcommand> ...                      an operator command (status, health, ...)
 *   pgrepl help [COMMAND]                        usage, on stdout
 *   pgrepl anything else ...                     run it as given (`docker run IMAGE bash`)
 * Nothing is written to stdout before a command runs as given: its stdout is the user's.
 * Each path imports what it needs when it is taken (esbuild keeps a dynamic import's module
 * unevaluated until then): archive-wal, run once per WAL segment, and a restart start sooner.
 */
import { EXIT_USAGE } from './cli/args.js';
import { commandList, commandUsage, isCommand } from './cli/help.js';
import { runCommand } from './cli/index.js';
import { isUserError, type UserError } from './errors.js';

const usage = () => `usage: pgrepl postgres [ARGS]    start this node (the container's entrypoint)
       pgrepl -c name=value ...    same as: pgrepl postgres -c name=value ...
       pgrepl help [COMMAND]        this text, or COMMAND's
       pgrepl COMMAND [ARGS]        run any other command as given
operator commands (each with --help):
${commandList()}
Configuration comes from the environment (PGREPL_*, POSTGRES_*, PGDATA, PGPORT); see the README.`;

/** `pgrepl help [COMMAND]`: asked for, so on stdout with exit 0; a command it does not know is a usage error. */
function help(args: string[]): number {
  if (args.length === 0) {
    process.stdout.write(usage() + '\n');
    return 0;
  }
  const [name] = args;
  if (args.length === 1 && isCommand(name!)) {
    process.stdout.write(commandUsage(name));
    return 0;
  }
  process.stderr.write(`pgrepl help: ${args.length === 1 ? `no command "${name}"` : 'takes at most one COMMAND'}\n${usage()}\n`);
  return EXIT_USAGE;
}

export async function main(argv: string[]): Promise<number> {
  const [first, ...rest] = argv;
  if (first === undefined) {
    process.stderr.write(usage() + '\n');
    return EXIT_USAGE;
  }
  if (first === 'help') return help(rest);
  if (first === 'postgres' || first.startsWith('-')) {
    (await import('./observe/binaries.js')).probeBinaries(); // observe asks for it; meanwhile the entrypoint loads
    return (await import('./entrypoint.js')).startNode(first === 'postgres' ? rest : argv);
  }
  if (isCommand(first)) return runCommand(first, rest);
  return (await import('./handover/exec.js')).handOver(first, rest, process.env);
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  async (err: unknown) => {
    // The logger, too, is loaded only when needed: a command that succeeds never logs.
    const { log } = await import('./log.js');
    if (isUserError(err)) {
      for (const line of (err as UserError).message.split('\n')) log.fatal(line);
      process.exit((err as UserError).exitCode);
    }
    log.fatal({ err }, `unexpected failure: ${(err as Error)?.message ?? String(err)}`);
    process.exit(1);
  },
);
