/**
 * PostgreSQL without a running server: single-user mode (`postgres --single`) and `postgres -C`.
 *
 * Single-user mode runs SQL in one process, with no postmaster to start, wait for and stop, no
 * socket and no connection: the cheapest way to run a new cluster's bootstrap statements, and the
 * only way to finish crash recovery of a standby before pg_rewind. It reads one statement per
 * line from stdin (without -j); with exit_on_error a failing statement ends it with a non-zero
 * code instead of going on with the next. Its stdout (prompts, results) is dropped; what it logs
 * goes to stderr, line by line, to `onLine`.
 */
import { log } from '../log.js';
import { withNssWrapper } from './nss-wrapper.js';
import { loadExeca, ProgramFailed, runWithLines } from './run.js';

/**
 * Runs `statements` (each on one line, none holding a line break) in single-user mode on
 * `dataDir`, connected to `database`. `args` are postgres's own (the user's first, then ours).
 * Single-user mode asks for the current user by UID: nss_wrapper makes one up where needed.
 */
export async function runSingleUser(
  dataDir: string,
  args: readonly string[],
  database: string,
  statements: readonly string[],
  onLine: (line: string) => void = (l) => log.info(l),
): Promise<void> {
  if (statements.some((s) => /[\r\n]/.test(s))) throw new Error('internal: a statement for single-user mode holds a line break');
  const input = statements.map((s) => s + '\n').join('');
  await withNssWrapper(dataDir, (env) =>
    runWithLines('postgres', ['--single', '-D', dataDir, ...args, '-c', 'exit_on_error=on', database], { env, input, stdout: 'ignore' }, onLine),
  );
}

/**
 * A setting as the server would have it with these arguments on this data directory
 * (`postgres -C NAME`, which reads the configuration files and exits), as the official
 * entrypoint asks for password_encryption.
 */
export async function readSetting(dataDir: string, args: readonly string[], name: string): Promise<string> {
  const { execa } = await loadExeca();
  const res = await withNssWrapper(dataDir, (env) => execa('postgres', ['-D', dataDir, ...args, '-C', name], { stdin: 'ignore', reject: false, env }));
  const lines = String(res.stderr).split('\n').filter(Boolean);
  for (const line of lines) log.info(line);
  if (res.exitCode !== 0) throw new ProgramFailed('postgres', res.exitCode, res.signal, lines);
  return String(res.stdout).trim();
}
