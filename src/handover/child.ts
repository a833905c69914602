/**
 * What running a program as our child takes, shared by the supervising fallback of the hand-over
 * (exec.ts) and the HA agent's postgres (postgres-child.ts): which signals a supervisor passes on,
 * the exit status a shell would report, and, for a child that must not outlive us, the kernel's
 * parent-death signal.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { constants as osConstants } from 'node:os';
import { UserError } from '../errors.js';
import { log } from '../log.js';
import { resolveCommand } from '../util/command-path.js';
import { type PasswdEntry } from './privileges.js';

type Execve = (file: string, args?: readonly string[], env?: NodeJS.ProcessEnv) => never;

/** process.execve (Node >= 22.15 / 23.11), bound, or undefined where this Node has none. */
export function processExecve(): Execve | undefined {
  const execve = (process as unknown as { execve?: Execve }).execve;
  return execve?.bind(process);
}

/** The stop signals Docker and operators send, and the reload/log-rotation ones postgres uses. */
export const FORWARDED_SIGNALS: readonly NodeJS.Signals[] = ['SIGTERM', 'SIGINT', 'SIGQUIT', 'SIGHUP', 'SIGUSR1', 'SIGUSR2'];

export interface ChildExit {
  code: number | null;
  signal: NodeJS.Signals | null;
  /** What a shell reports: the code, or 128+n when the program died of signal n. */
  status: number;
}

export function childExit(code: number | null, signal: NodeJS.Signals | null): ChildExit {
  const n = signal ? osConstants.signals[signal] : undefined;
  return { code, signal, status: code ?? (n !== undefined ? 128 + n : 1) };
}

/**
 * Passes every forwarded signal this process receives to `target()` (when there is one), unless
 * `pass` says no. Returns the undo.
 */
export function forwardSignals(target: () => ChildProcess | undefined, also?: (sig: NodeJS.Signals) => void, pass?: (sig: NodeJS.Signals) => boolean): () => void {
  const forward = (sig: NodeJS.Signals) => {
    also?.(sig);
    if (pass && !pass(sig)) return;
    const child = target();
    if (child?.pid !== undefined && child.exitCode === null && child.signalCode === null) child.kill(sig);
  };
  for (const sig of FORWARDED_SIGNALS) process.on(sig, forward);
  return () => {
    for (const sig of FORWARDED_SIGNALS) process.off(sig, forward);
  };
}

export interface ChildSpec {
  /** The program's path (resolved already) and the argv[0] it sees. */
  file: string;
  argv0: string;
  args: string[];
  env: NodeJS.ProcessEnv;
  /**
   * Have the kernel SIGKILL the child when this process dies, however it dies (setpriv
   * --pdeathsig, util-linux). Without setpriv on PATH the child runs plain, and a warning says so.
   */
  dieWithParent?: boolean;
  /** Run the child as this user (we are root): its groups, gid and uid, and its HOME/USER/LOGNAME. */
  user?: PasswdEntry;
}

let setprivFile: string | null | undefined;

/**
 * setpriv, if it is on PATH and knows --pdeathsig (util-linux >= 2.33): asked once, by running
 * it, since an older one would fail only once it is too late to fall back.
 */
function setpriv(path: string | undefined): string | undefined {
  if (setprivFile === undefined) {
    setprivFile = null;
    try {
      const file = resolveCommand('setpriv', path);
      const probe = spawnSync(file, ['--pdeathsig', 'SIGKILL', '--', 'true'], { stdio: 'ignore' });
      if (probe.status === 0) setprivFile = file;
    } catch {
      // not on PATH
    }
  }
  return setprivFile ?? undefined;
}

/**
 * Starts `spec` with our stdio. The child is in our process group, as postgres is when it is the
 * process itself (execve): whoever signals or kills the group reaches both.
 *
 * The parent-death signal is the thread's that forked, and it is cleared when the child changes
 * its uid or gid: so setpriv changes the user first and sets --pdeathsig last, right before it
 * executes the program (same PID). Node forks on its main thread, which lives as long as the process.
 */
export function spawnChild(spec: ChildSpec): ChildProcess {
  const env = spec.user ? { ...spec.env, HOME: spec.user.home, USER: spec.user.name, LOGNAME: spec.user.name } : spec.env;
  const wrapper = spec.dieWithParent ? setpriv(env.PATH) : undefined;
  if (spec.dieWithParent && !wrapper) {
    log.warn(`setpriv (util-linux) with --pdeathsig is not on PATH: ${spec.argv0} would outlive this process if it were killed; install util-linux`);
  }
  if (wrapper) {
    // setpriv's own --init-groups is initgroups(3), as dropPrivileges does; spawn's uid/gid options would drop every supplementary group.
    const creds = spec.user ? [`--regid=${spec.user.gid}`, `--reuid=${spec.user.uid}`, '--init-groups'] : [];
    return spawn(wrapper, [...creds, '--pdeathsig', 'SIGKILL', '--', spec.file, ...spec.args], { stdio: 'inherit', env, argv0: 'setpriv' });
  }
  const creds = spec.user ? { uid: spec.user.uid, gid: spec.user.gid } : {};
  return spawn(spec.file, spec.args, { stdio: 'inherit', env, argv0: spec.argv0, ...creds });
}
