/**
 * Handing the container over to another program, so that it becomes the main process and
 * receives the stop signal itself.
 *
 * With process.execve (Node >= 22.15 / 23.11) the Node process is replaced: postgres keeps our PID
 * (PID 1 in a container), and nothing of Node remains. Without it, we supervise: run the program
 * as a child, forward TERM/INT/QUIT/HUP (and USR1/USR2, which postgres uses), and exit as it
 * exits: with its code, or 128+n when it died of signal n, as a shell would.
 */
import { spawn } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import { delimiter, isAbsolute, join } from 'node:path';
import { constants as osConstants } from 'node:os';
import { UserError } from '../errors.js';
import { log } from '../log.js';

type Execve = (file: string, args?: readonly string[], env?: NodeJS.ProcessEnv) => never;

const FORWARDED: NodeJS.Signals[] = ['SIGTERM', 'SIGINT', 'SIGQUIT', 'SIGHUP', 'SIGUSR1', 'SIGUSR2'];

/** PATH lookup, as execvp would do (execve itself does none). */
export function resolveCommand(cmd: string, path = process.env.PATH ?? ''): string {
  if (cmd.includes('/')) return isAbsolute(cmd) ? cmd : join(process.cwd(), cmd);
  for (const dir of path.split(delimiter)) {
    if (!dir) continue;
    const candidate = join(dir, cmd);
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      // not here
    }
  }
  throw new UserError(`${cmd}: command not found on PATH`, 127);
}

/**
 * Replaces this process with `cmd args` (or supervises it). Never returns normally: the process
 * ends with the program's exit status.
 */
export async function handOver(cmd: string, args: string[], env: NodeJS.ProcessEnv): Promise<never> {
  const file = resolveCommand(cmd, env.PATH);
  const execve = (process as unknown as { execve?: Execve }).execve;
  if (execve) {
    log.debug({ file, args }, 'exec');
    execve.call(process, file, [cmd, ...args], env);
  }
  log.info({ file }, `this Node has no process.execve: supervising ${cmd} as a child, forwarding signals to it`);
  return supervise(file, cmd, args, env);
}

function supervise(file: string, argv0: string, args: string[], env: NodeJS.ProcessEnv): Promise<never> {
  return new Promise<never>(() => {
    const child = spawn(file, args, { stdio: 'inherit', env, argv0 });
    const forward = (sig: NodeJS.Signals) => {
      child.kill(sig);
    };
    for (const sig of FORWARDED) process.on(sig, forward);
    child.on('error', (err) => {
      log.fatal({ err }, `could not start ${argv0}`);
      process.exit(126);
    });
    child.on('exit', (code, signal) => {
      const n = signal ? osConstants.signals[signal] : undefined;
      process.exit(code ?? (n !== undefined ? 128 + n : 1));
    });
  });
}
