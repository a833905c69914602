/**
 * Writers that try an INSERT on EVERY node directly (not through /primary: a node that wrongly
 * accepts writes must be caught doing it), each on its own connection, every `intervalMs`, with
 * short timeouts and a reconnect after any error. Each acknowledged write is recorded: its row id
 * (unique across nodes), the node, when it was sent and when it was acknowledged, on one clock
 * (this process's). Afterwards:
 *   - overlaps(): the acknowledged writes ordered by acknowledgement form runs per node; at every
 *     switch from node A to node B, A's last acknowledgement must come before B's first send.
 *     A commit happens between its send and its acknowledgement, so this shows that every commit
 *     on A happened before every commit on B: never two nodes writable at once;
 *   - missingOn(port): the acknowledged rows a node does not have (the final primary must have all
 *     of them in synchronous mode).
 */
import { performance } from 'node:perf_hooks';
import pg from 'pg';
import { waitFor } from './cluster.js';
import { SUPERUSER_PASSWORD } from './node.js';

export const WRITES_TABLE = 'ha_writes';

export interface Ack {
  id: number;
  node: string;
  /** ms since the epoch, sub-millisecond: just before the INSERT went out. */
  sentAt: number;
  /** When its acknowledgement (the commit) came back. */
  ackAt: number;
}

export interface WriteTarget {
  name: string;
  port: number;
}

export interface RecorderOptions {
  intervalMs?: number;
  connectTimeoutMs?: number;
  /** Client-side bound of one INSERT; an INSERT that times out is not acknowledged (it may or may not commit). */
  queryTimeoutMs?: number;
}

/** What one node's writer saw last, for waits ("the leader refuses writes now"). */
export interface WriterState {
  attempts: number;
  acks: number;
  /** The last attempt's error (SQLSTATE when postgres said one, else the message); undefined after an acknowledgement. */
  lastError?: { code?: string; message: string; at: number };
}

/** This process's clock, ms since the epoch with sub-millisecond precision: the recorder's times. */
export const now = (): number => performance.timeOrigin + performance.now();
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Creates the table the writers insert into (on the primary; standbys get it by replication). */
export async function createWritesTable(port: number): Promise<void> {
  const c = connectOptions(port, 5000, 10_000);
  const client = new pg.Client(c);
  await client.connect();
  try {
    await client.query(`CREATE TABLE IF NOT EXISTS ${WRITES_TABLE} (id bigint PRIMARY KEY, node text NOT NULL, at timestamptz NOT NULL DEFAULT clock_timestamp())`);
  } finally {
    await client.end();
  }
}

function connectOptions(port: number, connectTimeoutMs: number, queryTimeoutMs: number): pg.ClientConfig {
  return {
    host: '127.0.0.1', port, user: 'postgres', password: SUPERUSER_PASSWORD, database: 'postgres',
    connectionTimeoutMillis: connectTimeoutMs, query_timeout: queryTimeoutMs, application_name: 'ha-write-recorder',
  };
}

/** Drops a client without waiting for it (its server may be hung or gone). */
function abandon(client: pg.Client): void {
  client.end().catch(() => undefined);
  (client as unknown as { connection?: { stream?: { destroy(): void } } }).connection?.stream?.destroy();
}

export class WriteRecorder {
  readonly acks: Ack[] = [];
  private readonly state = new Map<string, WriterState>();
  private nextId = 1;
  private running = true;
  private readonly loops: Promise<void>[];

  private constructor(targets: WriteTarget[], private readonly o: Required<RecorderOptions>) {
    for (const t of targets) this.state.set(t.name, { attempts: 0, acks: 0 });
    this.loops = targets.map((t) => this.writeLoop(t));
  }

  static start(targets: WriteTarget[], options: RecorderOptions = {}): WriteRecorder {
    return new WriteRecorder(targets, { intervalMs: 20, connectTimeoutMs: 1000, queryTimeoutMs: 3000, ...options });
  }

  private async writeLoop(t: WriteTarget): Promise<void> {
    const s = this.state.get(t.name)!;
    let client: pg.Client | undefined;
    while (this.running) {
      s.attempts++;
      try {
        if (!client) {
          const c = new pg.Client(connectOptions(t.port, this.o.connectTimeoutMs, this.o.queryTimeoutMs));
          c.on('error', () => undefined); // a dead server surfaces in the next query
          client = c;
          await c.connect();
        }
        const id = this.nextId++;
        const sentAt = now();
        await client.query(`INSERT INTO ${WRITES_TABLE} (id, node) VALUES ($1, $2)`, [id, t.name]);
        const ackAt = now();
        this.acks.push({ id, node: t.name, sentAt, ackAt });
        s.acks++;
        s.lastError = undefined;
      } catch (err) {
        const e = err as { code?: string; message: string };
        s.lastError = { code: e.code, message: e.message, at: now() };
        // A refusal that leaves the session usable (a standby's read-only error) keeps the connection;
        // anything else (timeouts, a dead server, killed sessions) starts over on a new one.
        if (e.code !== '25006') {
          if (client) abandon(client);
          client = undefined;
        }
      }
      await sleep(this.o.intervalMs);
    }
    if (client) abandon(client);
  }

  /** Stops every writer (after the INSERTs in flight end: each is bounded by the query timeout). */
  async stop(): Promise<void> {
    this.running = false;
    await Promise.all(this.loops);
  }

  writer(name: string): WriterState {
    const s = this.state.get(name);
    if (!s) throw new Error(`no writer for node ${name}`);
    return { ...s };
  }

  acksOn(name: string, since = 0): Ack[] {
    return this.acks.filter((a) => a.node === name && a.sentAt >= since);
  }

  /** Waits until `count` writes sent at or after `since` were acknowledged by node `name`. */
  waitForAcks(name: string, count: number, since = 0, timeoutMs = 120_000): Promise<true> {
    return waitFor(`${count} writes acknowledged by ${name}`, async () => this.acksOn(name, since).length >= count || undefined, timeoutMs)
      .catch((err: Error) => Promise.reject(new Error(`${err.message}\n${this.summary()}`)));
  }

  /** Acknowledged writes sent at or after `since` (ms since the epoch, this process's clock). */
  acksSince(since: number): Ack[] {
    return this.acks.filter((a) => a.sentAt >= since);
  }

  /**
   * Every switch of the acknowledging node where the old one's last acknowledgement did not come
   * before the new one's first send: two nodes writable at once. Empty when none.
   */
  overlaps(): string[] {
    const sorted = [...this.acks].sort((a, b) => a.ackAt - b.ackAt);
    const runs: Ack[][] = [];
    for (const a of sorted) {
      const run = runs.at(-1);
      if (run && run[0]!.node === a.node) run.push(a);
      else runs.push([a]);
    }
    const problems: string[] = [];
    for (let i = 1; i < runs.length; i++) {
      const before = runs[i - 1]!;
      const after = runs[i]!;
      const lastAck = before.at(-1)!;
      const firstSent = after.reduce((m, a) => (a.sentAt < m.sentAt ? a : m));
      if (!(lastAck.ackAt < firstSent.sentAt)) {
        problems.push(
          `${lastAck.node} acknowledged row ${lastAck.id} at ${iso(lastAck.ackAt)} after ${firstSent.node} was sent row ${firstSent.id} at ${iso(firstSent.sentAt)} (acknowledged ${iso(firstSent.ackAt)}): both accepted writes at once`,
        );
      }
    }
    return problems;
  }

  /** The acknowledged rows the node on `port` does not have. */
  async missingOn(port: number): Promise<number[]> {
    const client = new pg.Client(connectOptions(port, 5000, 30_000));
    await client.connect();
    try {
      const ids = this.acks.map((a) => a.id);
      const r = await client.query<{ id: string }>(`SELECT id FROM ${WRITES_TABLE} WHERE id = ANY($1::bigint[])`, [ids]);
      const present = new Set(r.rows.map((row) => Number(row.id)));
      return ids.filter((id) => !present.has(id)).sort((a, b) => a - b);
    } finally {
      await client.end();
    }
  }

  /** One line per node: attempts, acknowledgements, last error; for a failing test's output. */
  summary(): string {
    return [...this.state].map(([name, s]) => `${name}: ${s.attempts} attempts, ${s.acks} acknowledged${s.lastError ? `, last error ${s.lastError.code ?? ''} ${s.lastError.message}` : ''}`).join('\n');
  }
}

/** A time of day to the microsecond (UTC), for the lines that explain an overlap. */
const iso = (ms: number): string => `${new Date(ms).toISOString().slice(11, 23)}${String(Math.floor((ms % 1) * 1000)).padStart(3, '0')}`;
