/**
 * PID 1 in HA mode. Without HA, pgrepl hands over to postgres (execve) and postgres is PID 1, as
 * in the official image. In HA mode the agent stays, with postgres as its child; as PID 1 it
 * would inherit every orphan (backends whose postmaster died) and, being Node, never reap them,
 * and the kernel would drop every signal it has no handler for. So, as PID 1, it executes itself
 * again under tini (Debian's, in the image): tini is PID 1, reaps the orphans, passes signals on
 * to the agent and exits with the agent's status, and the container (its PID namespace, postgres
 * with it) ends when the agent does.
 */
import { log } from '../log.js';
import { resolveCommand } from '../util/command-path.js';
import { processExecve } from './child.js';

export function reexecUnderInit(env: NodeJS.ProcessEnv = process.env): void {
  if (process.pid !== 1) return;
  const execve = processExecve();
  let tini: string;
  try {
    tini = resolveCommand('tini', env.PATH);
  } catch {
    log.warn('this agent is PID 1 and there is no tini on PATH: processes orphaned in this container are not reaped; run the container with --init or install tini');
    return;
  }
  if (!execve) {
    log.warn('this agent is PID 1 and this Node has no process.execve to run under tini: processes orphaned in this container are not reaped; run the container with --init');
    return;
  }
  log.info({ tini }, 'PID 1 in HA mode: running again under tini, which reaps orphans and passes signals on');
  execve(tini, ['tini', '--', process.execPath, ...process.argv.slice(1)], env);
}
