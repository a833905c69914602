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
 * How the caller's own stop handling gives way to the program's. `check` throws if a stop signal
 * came before the hand-over (the program must not start then); `release` ends the caller's
 * handling once the program is about to receive the signals itself: right before execve, or once
 * the supervisor forwards them to its child. No signal falls between the two: Node shares one
 * listener per signal, so one that arrives while both are installed goes to whoever listens once
 * it is read.
 */
export interface SignalHandoff {
  check(): void;
  release(): void;
}

const NO_HANDOFF: SignalHandoff = { check: () => undefined, release: () => undefined };

/**
 * Two turns of the event loop: a signal the kernel delivered before this call is read from
 * libuv's signal pipe in the poll phase of one of them and handed to the listeners. One still
 * unread when the process is replaced would be lost with it.
 */
const signalsDelivered = (): Promise<void> => new Promise((r) => setImmediate(() => setImmediate(r)));

/**
 * Replaces this process with `cmd args` (or supervises it). Never returns normally: the process
 * ends with the program's exit status. From the last check of `handoff` to execve nothing but
 * the release runs, so a stop signal is either seen by the check or reaches postgres (bar the
 * microseconds between the release and the system call).
 */
export async function handOver(cmd: string, args: string[], env: NodeJS.ProcessEnv, handoff: SignalHandoff = NO_HANDOFF): Promise<never> {
  const file = resolveCommand(cmd, env.PATH);
  const execve = processExecve();
  if (execve) log.debug({ file, args }, 'exec');
  else log.info({ file }, `this Node has no process.execve: supervising ${cmd} as a child, forwarding signals to it`);
  await signalsDelivered();
  handoff.check();
  if (execve) {
    handoff.release();
    execve(file, [cmd, ...args], env);
  }
  return supervise(file, cmd, args, env, handoff);
}

function supervise(file: string, argv0: string, args: string[], env: NodeJS.ProcessEnv, handoff: SignalHandoff): Promise<never> {
  return new Promise<never>(() => {
    const child = spawnChild({ file, argv0, args, env });
    forwardSignals(() => child);
    handoff.release();
    child.on('error', (err) => {
      log.fatal({ err }, `could not start ${argv0}`);
      process.exit(126);
    });
    child.on('exit', (code, signal) => process.exit(childExit(code, signal).status));
  });
}
