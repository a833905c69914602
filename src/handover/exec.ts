/**
 * Handing the container over to another program, so that it becomes the main process and
 * receives the stop signal itself.
 *
 * With process.execve (Node >= 22.15 / 23.11) the Node process is replaced: postgres keeps our PID
 * (PID 1 in a container), and nothing of Node remains. Without it, we supervise: run the program
 * as a child, forward TERM/INT/QUIT/HUP (and USR1/USR2, which postgres uses), and exit as it
 * exits: with its code, or 128+n when it died of signal n, as a shell would.
 */
import { log } from '../log.js';
import { resolveCommand } from '../util/command-path.js';
import { childExit, forwardSignals, processExecve, spawnChild } from './child.js';

/**
 * Replaces this process with `cmd args` (or supervises it). Never returns normally: the process
 * ends with the program's exit status.
 */
export async function handOver(cmd: string, args: string[], env: NodeJS.ProcessEnv): Promise<never> {
  const file = resolveCommand(cmd, env.PATH);
  const execve = processExecve();
  if (execve) {
    log.debug({ file, args }, 'exec');
    execve(file, [cmd, ...args], env);
  }
  log.info({ file }, `this Node has no process.execve: supervising ${cmd} as a child, forwarding signals to it`);
  return supervise(file, cmd, args, env);
}

function supervise(file: string, argv0: string, args: string[], env: NodeJS.ProcessEnv): Promise<never> {
  return new Promise<never>(() => {
    const child = spawnChild({ file, argv0, args, env });
    forwardSignals(() => child);
    child.on('error', (err) => {
      log.fatal({ err }, `could not start ${argv0}`);
      process.exit(126);
    });
    child.on('exit', (code, signal) => process.exit(childExit(code, signal).status));
  });
}
