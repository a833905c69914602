/**
 * postgres as the child of an agent that stays beside it for the node's whole life (HA mode),
 * instead of the execve hand-over. What it guarantees:
 * - postgres runs as the postgres user, and dies with the agent: if the agent is killed or
 *   crashes, the kernel SIGKILLs the postmaster (setpriv --pdeathsig), so no writable primary is
 *   left without the agent that holds its lease; its backends then exit on their own, as they do
 *   whenever the postmaster is gone;
 * - stop signals reach postgres as they do after the hand-over (TERM smart, INT fast, QUIT
 *   immediate; HUP, USR1, USR2 too); once one came, postgres is not started again;
 * - when postgres exits without the agent asking (a crash, a kill, a forwarded stop signal), the
 *   agent hears it (`onExit`, by default: exit with postgres's status, as the supervisor does).
 *
 * Privileges: the start-up drops to the postgres user before its steps (initdb, clone, rewind,
 * which the agent runs again later), so the agent normally is that user already and postgres
 * just inherits it. An agent still root (a caller that kept it) gets postgres started as the
 * postgres user all the same, with its groups (setpriv --init-groups, as dropPrivileges does).
 */
import type { ChildProcess } from 'node:child_process';
import { log } from '../log.js';
import { resolveCommand } from '../util/command-path.js';
import { childExit, forwardSignals, spawnChild, type ChildExit } from './child.js';
import { lookupUser, runningAsRoot } from './privileges.js';

export type { ChildExit } from './child.js';

export type StopMode = 'smart' | 'fast' | 'immediate';

/** PostgreSQL's shutdown modes are signals to the postmaster. */
const STOP_SIGNALS: Record<StopMode, NodeJS.Signals> = { smart: 'SIGTERM', fast: 'SIGINT', immediate: 'SIGQUIT' };
const STOP_REQUESTS: ReadonlySet<NodeJS.Signals> = new Set(Object.values(STOP_SIGNALS));

export interface PostgresChildOptions {
  /**
   * postgres's environment (PGDATA, PGPORT, PATH; no secrets: see postgresEnv), asked at every
   * start: the agent is made as root and then drops its privileges, and postgres must get the
   * HOME of the user it runs as (libpq in its walreceiver looks for ~/.postgresql/ with TLS, and
   * a HOME it may not read, such as /root, fails the connection).
   */
  env: () => NodeJS.ProcessEnv;
  /**
   * Called once when postgres is gone and the agent has no say any more: it exited without being
   * asked (crash, kill, bad setting), or it exited after a stop signal, or a stop signal came
   * while it was not running. Default: this process exits with postgres's status (0 in the last case).
   */
  onExit?: (exit: ChildExit) => void;
  /**
   * The HA agent decides how postgres stops (it hands the leader key over first): given this,
   * stop signals (TERM, INT, QUIT) are reported here instead of passed on; HUP, USR1 and USR2
   * still are. Default: passed on, as after the hand-over.
   */
  onStopSignal?: (sig: NodeJS.Signals) => void;
}

export class PostgresChild {
  private child: ChildProcess | undefined;
  private run: Promise<ChildExit> | undefined;
  private asked = false;
  private restarting = false;
  private ended = false;
  private stopSignal: NodeJS.Signals | undefined;
  private readonly file: string;
  private readonly unforward: () => void;
  private readonly onExit: (exit: ChildExit) => void;

  constructor(private readonly opts: PostgresChildOptions) {
    this.file = resolveCommand('postgres', opts.env().PATH);
    this.onExit = opts.onExit ?? ((exit) => process.exit(exit.status));
    const report = opts.onStopSignal;
    this.unforward = forwardSignals(
      () => this.child,
      (sig) => this.signalled(sig),
      report && ((sig) => !STOP_REQUESTS.has(sig) || (report(sig), false)),
    );
  }

  /** The postmaster's PID while it runs. */
  get pid(): number | undefined {
    return this.child?.pid;
  }

  /** The current (or last) run's exit; undefined before the first start. */
  get exited(): Promise<ChildExit> | undefined {
    return this.run;
  }

  /** The stop signal this process received, if any: postgres will not be started again. */
  get stoppedBy(): NodeJS.Signals | undefined {
    return this.stopSignal;
  }

  /** Starts postgres with `args` (e.g. `-c name=value`); resolves with its PID once it runs. */
  start(args: string[]): Promise<number> {
    if (this.child) return Promise.reject(new Error(`internal: postgres runs already (PID ${this.child.pid})`));
    if (this.stopSignal) return Promise.reject(this.refusal());
    const child = spawnChild({
      file: this.file,
      argv0: 'postgres',
      args,
      env: this.opts.env(),
      dieWithParent: true,
      user: runningAsRoot() ? lookupUser() : undefined,
    });
    this.child = child;
    this.asked = false;
    this.ended = false;
    let settle: (exit: ChildExit) => void = () => undefined;
    this.run = new Promise<ChildExit>((resolve) => (settle = resolve));
    child.once('exit', (code, signal) => {
      const exit = childExit(code, signal);
      this.child = undefined;
      log.info({ pid: child.pid, ...exit, asked: this.asked }, 'postgres exited');
      settle(exit);
      if (!this.asked || this.stopSignal) this.end(exit);
    });
    return new Promise<number>((resolve, reject) => {
      child.once('spawn', () => {
        log.info({ pid: child.pid, args }, 'postgres started as a child of this process');
        resolve(child.pid!);
      });
      child.once('error', (err) => {
        // It never ran, and no 'exit' comes: the caller hears of it from this rejection.
        this.child = undefined;
        this.ended = true;
        settle(childExit(126, null));
        reject(new Error(`could not start postgres (${this.file}): ${err.message}`));
      });
    });
  }

  /**
   * Asks postgres to shut down in `mode`; resolves with its exit once it is gone (at once when it
   * does not run). Calling it again, e.g. 'immediate' while a 'fast' stop hangs, sends the
   * stronger signal; every call resolves with the same exit.
   */
  stop(mode: StopMode): Promise<ChildExit | undefined> {
    const child = this.child;
    if (!child || !this.run) return Promise.resolve(undefined);
    this.asked = true;
    log.info({ pid: child.pid, mode }, `stopping postgres (${mode} shutdown)`);
    child.kill(STOP_SIGNALS[mode]);
    return this.run;
  }

  /** Stops postgres (`mode`) and starts it again with other arguments, e.g. read-only to demote. */
  async restart(args: string[], mode: StopMode = 'fast'): Promise<number> {
    this.restarting = true;
    try {
      await this.stop(mode);
      if (this.stopSignal) throw this.refusal();
      return await this.start(args);
    } finally {
      this.restarting = false;
      // A stop signal that came between the stop and the start: postgres is down, we are done.
      if (this.stopSignal && !this.child) this.end(childExit(0, null));
    }
  }

  /** Stops forwarding signals to postgres (it keeps running): for an agent that hands over or ends. */
  close(): void {
    this.unforward();
  }

  private signalled(sig: NodeJS.Signals): void {
    if (!STOP_REQUESTS.has(sig) || this.stopSignal) return;
    this.stopSignal = sig;
    log.info({ signal: sig }, `${sig}: stopping; postgres will not be started again`);
    if (!this.child && !this.restarting) this.end(childExit(0, null));
  }

  /** onExit, once per run of postgres. */
  private end(exit: ChildExit): void {
    if (this.ended) return;
    this.ended = true;
    this.onExit(exit);
  }

  private refusal(): Error {
    return new Error(`not starting postgres: this process received ${this.stopSignal}`);
  }
}
