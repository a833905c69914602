/**
 * One pgrepl node for a test: `node dist/pgrepl.cjs postgres` with its own PGDATA and PGPORT on
 * 127.0.0.1 (SPEC §5), as the tests' user (root, so the privilege drop is exercised).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { BUNDLE, PG_PATH } from './env.js';

export const SUPERUSER_PASSWORD = 'super-Secret-pw-4711';

/** A scratch directory the postgres user can traverse (mkdtemp makes 0700 directories). */
export function scratchDir(prefix = 'pgrepl-it-'): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  chmodSync(dir, 0o755);
  return dir;
}

export function removeScratch(dir: string): void {
  rmSync(dir, { recursive: true, force: true });
}

export interface RunResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

export interface NodeOptions {
  pgdata: string;
  port: number;
  env?: Record<string, string | undefined>;
  node?: string;
  args?: string[];
  /**
   * Spawn the node in a process group of its own, so that `killGroup()` can kill it with every
   * process it started (pg_basebackup, postgres), as a container kill does. Off by default.
   */
  detached?: boolean;
}

export function nodeEnv(opts: NodeOptions): Record<string, string> {
  const env: Record<string, string | undefined> = {
    PATH: PG_PATH,
    HOME: '/root',
    LANG: 'C.UTF-8',
    PGDATA: opts.pgdata,
    PGPORT: String(opts.port),
    POSTGRES_PASSWORD: SUPERUSER_PASSWORD,
    PGREPL_TOKEN: 'test-token-123',
    PGREPL_NODE_NAME: `node_${opts.port}`,
    PGREPL_INITDB_DIR: '/nonexistent/initdb.d',
    ...opts.env,
  };
  return Object.fromEntries(Object.entries(env).filter(([, v]) => v !== undefined)) as Record<string, string>;
}

export class TestNode {
  readonly child: ChildProcess;
  stdout = '';
  stderr = '';
  readonly exited: Promise<RunResult>;

  constructor(readonly opts: NodeOptions) {
    this.child = spawn(opts.node ?? process.execPath, [BUNDLE, 'postgres', ...(opts.args ?? [])], {
      env: nodeEnv(opts),
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: opts.detached ?? false,
    });
    this.child.stdout!.on('data', (d: Buffer) => (this.stdout += d.toString()));
    this.child.stderr!.on('data', (d: Buffer) => (this.stderr += d.toString()));
    this.exited = new Promise((res) => {
      this.child.on('exit', (code, signal) => res({ code, signal, stdout: this.stdout, stderr: this.stderr }));
    });
  }

  get pid(): number {
    return this.child.pid!;
  }

  /** pgrepl's own log lines (JSON on stderr), parsed; postgres's lines are skipped. */
  logs(): { level: number; msg: string; [k: string]: unknown }[] {
    return this.stderr
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l));
  }

  /** Waits until the server accepts a password login over TCP, or the process exits. */
  async ready(timeoutMs = 120_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    let exited = false;
    void this.exited.then(() => (exited = true));
    for (;;) {
      if (exited) throw new Error(`node exited before it was ready:\n${this.stderr}`);
      try {
        await query(this.opts.port, 'SELECT 1');
        return;
      } catch {
        if (Date.now() > deadline) throw new Error(`node not ready after ${timeoutMs} ms:\n${this.stderr}`);
        await new Promise((r) => setTimeout(r, 100));
      }
    }
  }

  async stop(signal: NodeJS.Signals = 'SIGINT'): Promise<RunResult> {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill(signal);
    return this.exited;
  }

  /**
   * Sends `signal` (SIGKILL by default) to the node's whole process group: the entrypoint and
   * every process it started that did not leave the group, as `docker kill` does to a container.
   * Only for nodes spawned with `detached: true` (a group of their own).
   */
  async killGroup(signal: NodeJS.Signals = 'SIGKILL'): Promise<RunResult> {
    if (!this.opts.detached) throw new Error('killGroup() needs a node spawned with detached: true');
    try {
      process.kill(-this.pid, signal);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ESRCH') throw err;
    }
    return this.exited;
  }
}

/** Runs the bundle to completion (for refusals and one-shot commands). */
export function runBundle(opts: NodeOptions): Promise<RunResult> {
  const n = new TestNode(opts);
  return n.exited;
}

export interface ConnectOptions {
  user?: string;
  password?: string;
  database?: string;
  replication?: boolean;
}

export async function query<T extends pg.QueryResultRow = pg.QueryResultRow>(
  port: number,
  sql: string,
  params: unknown[] = [],
  opts: ConnectOptions = {},
): Promise<T[]> {
  const client = new pg.Client({
    host: '127.0.0.1',
    port,
    user: opts.user ?? 'postgres',
    password: opts.password ?? SUPERUSER_PASSWORD,
    database: opts.database ?? 'postgres',
    ...(opts.replication ? { replication: 'database' } : {}),
  } as pg.ClientConfig);
  await client.connect();
  try {
    return (await client.query<T>(sql, params)).rows;
  } finally {
    await client.end();
  }
}

/** IDENTIFY_SYSTEM over a physical replication connection, as a standby would do it. */
export async function identifySystem(port: number, password: string): Promise<{ systemid: string; timeline: number }> {
  const client = new pg.Client({
    host: '127.0.0.1', port, user: 'pgrepl', password, database: 'replication', replication: true,
  } as unknown as pg.ClientConfig);
  await client.connect();
  try {
    const res = await client.query('IDENTIFY_SYSTEM');
    const row = res.rows[0] as { systemid: string; timeline: number };
    return { systemid: String(row.systemid), timeline: Number(row.timeline) };
  } finally {
    await client.end();
  }
}

/**
 * Runs an operator command (`pgrepl status --json`, `promote`, `follow HOST:PORT`, `health`)
 * against the node described by opts, as the tests' user, as `docker exec NODE pgrepl ...` would.
 */
export function runCommand(opts: NodeOptions, args: string[]): Promise<RunResult> {
  const child = spawn(opts.node ?? process.execPath, [BUNDLE, ...args], { env: nodeEnv(opts), stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  return new Promise((res) => child.on('exit', (code, signal) => res({ code, signal, stdout, stderr })));
}

/** Retries fn (every 100 ms) until it stops throwing, or throws its last error after timeoutMs. */
export async function eventually<T>(fn: () => Promise<T>, timeoutMs = 30_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      return await fn();
    } catch (err) {
      if (Date.now() > deadline) throw err;
      await new Promise((r) => setTimeout(r, 100));
    }
  }
}

/** Its exit, or a failure (and the node stopped) when it still runs after `ms`: a start that should have refused. */
export async function exitWithin(n: TestNode, ms = 60_000): Promise<RunResult> {
  const timer = new Promise<undefined>((r) => setTimeout(() => r(undefined), ms));
  const res = await Promise.race([n.exited, timer]);
  if (res) return res;
  await n.stop();
  throw new Error(`still running after ${ms} ms, expected a refusal:\n${n.stderr}`);
}
