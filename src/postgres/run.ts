/**
 * Runs PostgreSQL's programs (initdb, pg_ctl, psql, ...). Their output goes straight to our stderr:
 * stdout stays clean, and no pipe is held open by a server that pg_ctl leaves running (a pipe
 * would make us wait for the server to exit). Arguments never carry a secret: passwords travel
 * in 0600 files or in the child's environment, which `ps` does not show.
 */
import { spawn } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { log } from '../log.js';

export interface RunOptions {
  env?: Record<string, string | undefined>;
  cwd?: string;
  /** Feed this file to the program's stdin. */
  inputFile?: string;
  /** Feed this text to the program's stdin (runWithLines). */
  input?: string;
  /** Drop the program's stdout instead of passing it to our stderr (runWithLines). */
  stdout?: 'ignore';
}

/** execa, loaded on first use (a plain restart runs no program before postgres). */
export async function loadExeca(): Promise<typeof import('execa')> {
  return import('execa');
}

export async function run(cmd: string, args: string[], opts: RunOptions = {}): Promise<void> {
  log.debug({ cmd, args }, `running ${cmd}`);
  const { execa } = await loadExeca();
  await track(execa(cmd, args, {
    stdin: opts.inputFile ? { file: opts.inputFile } : 'ignore',
    stdout: 2,
    stderr: 2,
    env: opts.env,
    extendEnv: true,
    cwd: opts.cwd,
  }));
}

/**
 * run() for a short program on the restart path (prepare-directories' find), with node's spawn:
 * loading execa costs a restart more than the program itself. No stdin, no extra environment.
 */
export function runPlain(cmd: string, args: string[]): Promise<void> {
  log.debug({ cmd, args }, `running ${cmd}`);
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ['ignore', 2, 2] });
    const pid = child.pid;
    if (pid !== undefined) running.add(pid);
    child.on('error', (err) => {
      if (pid !== undefined) running.delete(pid);
      reject(err);
    });
    child.on('exit', (code, signal) => {
      if (pid !== undefined) running.delete(pid);
      if (code === 0) resolve();
      else reject(new Error(`${cmd} failed (${code ?? signal})`));
    });
  });
}

/** A program that ended with a non-zero code or a signal, with what it printed: facts for the planner. */
export class ProgramFailed extends Error {
  constructor(
    readonly program: string,
    readonly exitCode: number | undefined,
    readonly signal: string | undefined,
    readonly lines: string[],
  ) {
    super(`${program} failed (${exitCode ?? signal}): ${lines.slice(-4).join(' | ')}`);
    this.name = 'ProgramFailed';
  }
}

/**
 * Runs a long program whose progress is worth logging (pg_basebackup, pg_rewind): its stderr is
 * split into lines (progress meters redraw with \r) and handed to `onLine`; its stdout goes to
 * our stderr. Resolves with every line it printed; rejects with ProgramFailed if it fails.
 */
export async function runWithLines(cmd: string, args: string[], opts: RunOptions, onLine: (line: string) => void): Promise<string[]> {
  log.debug({ cmd, args }, `running ${cmd}`);
  const { execa } = await loadExeca();
  const stdin = opts.input === undefined ? { stdin: 'ignore' as const } : { input: opts.input };
  const child = execa(cmd, args, { ...stdin, stdout: opts.stdout ?? 2, stderr: 'pipe', buffer: false, reject: false, env: opts.env, cwd: opts.cwd });
  const lines: string[] = [];
  let pending = '';
  child.stderr?.on('data', (chunk: Buffer) => {
    pending += chunk.toString();
    const parts = pending.split(/[\r\n]/);
    pending = parts.pop() ?? '';
    for (const line of parts.map((p) => p.trim()).filter(Boolean)) {
      lines.push(line);
      onLine(line);
    }
  });
  const res = await track(child);
  if (pending.trim()) lines.push(pending.trim());
  if (res.exitCode !== 0) throw new ProgramFailed(cmd, res.exitCode, res.signal, lines);
  return lines;
}

/** The PIDs of `pid`'s descendants, read from /proc (Linux); [] where /proc cannot tell. */
function descendants(pid: number): number[] {
  const children = new Map<number, number[]>();
  let entries: string[];
  try {
    entries = readdirSync('/proc');
  } catch {
    return [];
  }
  for (const e of entries) {
    if (!/^\d+$/.test(e)) continue;
    try {
      const stat = readFileSync(`/proc/${e}/stat`, 'utf8'); // "pid (comm) state ppid ..."
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      children.set(ppid, [...(children.get(ppid) ?? []), Number(e)]);
    } catch {
      // gone meanwhile
    }
  }
  const out: number[] = [];
  const walk = (p: number) => {
    for (const c of children.get(p) ?? []) {
      out.push(c);
      walk(c);
    }
  };
  walk(pid);
  return out;
}

/** PIDs of the programs running now, so that a stop signal can reach them (stopRunningPrograms). */
const running = new Set<number>();

function track<T extends PromiseLike<unknown> & { pid?: number | undefined }>(child: T): T {
  const pid = child.pid;
  if (pid !== undefined) {
    running.add(pid);
    void Promise.resolve(child).then(() => running.delete(pid), () => running.delete(pid));
  }
  return child;
}

/**
 * Passes a stop signal on to every program running now and to their children (pg_basebackup
 * forks one to stream WAL), which would otherwise go on writing into the staging directory and
 * holding the upstream's slot after the node is gone. The children are listed before anything is
 * signalled: once their parent dies, nothing could find them. Returns whether any was running.
 */
export function stopRunningPrograms(sig: NodeJS.Signals): boolean {
  const targets = [...running].flatMap((pid) => [pid, ...descendants(pid)]);
  for (const p of targets) {
    try {
      process.kill(p, sig);
    } catch {
      // already gone
    }
  }
  return running.size > 0;
}
