/**
 * The HA agent's HTTP API (SPEC §7), for load balancers and orchestrators, as Patroni's REST API
 * serves HAProxy and Kubernetes probes. It answers from a snapshot the agent hands it after every
 * loop, never from postgres or etcd directly: a probe costs nothing and cannot hang on either.
 *
 *   GET|HEAD /primary    200 iff this node holds the leader key, its lease deadline has not passed
 *                        and postgres accepts writes
 *            /replica    200 iff a standby streaming from the leader; ?lag=BYTES or ?lag=16MB:
 *                        503 when its replay is further behind the leader's write position
 *            /read-only  200 iff it serves reads: /primary's condition, or a running standby (?lag too)
 *            /health     200 iff postgres runs
 *            /liveness   200 iff the agent's loop ran within TTL (or is inside a long action it announced)
 *            /readiness  200 iff /primary's condition, or a standby streaming from the leader
 *            /cluster    the cluster's listing (list.ts), what `pgrepl list --json` prints
 *            /position   this node's CURRENT received WAL position and timeline, asked live (the
 *                        `position` option, bounded by positionTimeoutMs): 200 {name, received,
 *                        timeline}, else 503 {name, error}. Candidates compare these in a failover
 *                        and the leader asks them in a switchover (ask.ts), so they must not come
 *                        from a snapshot up to a loop old
 *
 * HEAD answers the same status without a body; other methods 405, other paths 404. Every answer is
 * a small JSON object saying this node's role and state. Nothing in the snapshot is a secret (it
 * carries no connection strings or passwords), so no answer can carry one; /position answers only
 * positions it checked, and an error as a fixed sentence with the error's code, never its text.
 *
 * /primary wants the lease deadline as well as the key: the agent stops writes by its last renewal
 * sent + TTL − margin (timing.ts), and a load balancer must stop sending writes by then too, even
 * if the loop that would demote is late. /replica measures replay, not receipt: reads see only
 * what is replayed (as `pgrepl health --max-lag` does).
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { performance } from 'node:perf_hooks';
import { UserError } from '../errors.js';
import { listJson, type ClusterView } from './list.js';
import { isLsn, lsnDistance, type Lsn } from './lsn.js';

/** What the agent knows after a loop; times are on the clock given to startApi (the agent's monotonic one, ms). */
export interface ApiSnapshot {
  /** PGREPL_NODE_NAME */
  name: string;
  /** The last successful etcd read showed the leader key on this agent's lease. */
  holdsLeaderKey: boolean;
  /** Holding the key: by when writes must have stopped unless a renewal succeeds (decide's demoteBy). */
  leaseDeadline?: number;
  postgres: {
    running: boolean;
    /** Running: pg_is_in_recovery(). */
    inRecovery?: boolean;
    timeline?: number;
    /** A standby whose walreceiver streams from the current leader. */
    streamingFromLeader: boolean;
    receivedLsn?: Lsn;
    replayedLsn?: Lsn;
    /** A primary's write position. */
    writeLsn?: Lsn;
  };
  /** The leader's current write position (its member key's; this node's own when it leads). */
  leaderWriteLsn?: Lsn;
  /** When the loop last ran. */
  loopAt: number;
  /**
   * A long action the loop is inside now (initdb, clone, rewind): the agent is busy, not stuck, and
   * an orchestrator that killed it would only make it start over (as `pgrepl health` says 'starting').
   */
  acting?: { what: string; since: number };
  /** The cluster as the last etcd read showed it; absent before the first successful read. */
  cluster?: ClusterView;
}

export interface ApiOptions {
  /** PGREPL_API_LISTEN */
  host: string;
  port: number;
  /** PGREPL_TTL, seconds: /liveness wants a loop within it. */
  ttl: number;
  /** The agent's monotonic clock, ms (default: performance.now()). */
  now?: () => number;
  /** The first snapshot; until one is given, every check but /liveness answers 503 (starting). */
  snapshot?: ApiSnapshot;
  /** /position: this node's current received (a standby) or write (a primary) position, asked of its postgres now. Absent: /position answers 503. */
  position?: () => Promise<Position>;
  /** How long /position waits for `position` before answering 503 (default 2000 ms). */
  positionTimeoutMs?: number;
}

/** What /position answers with 200 (and `name`: the snapshot's, null before the first). */
export interface Position {
  received: Lsn;
  timeline: number;
}

export const POSITION_TIMEOUT_MS = 2000;

export interface HaApi {
  /** Where it listens (the port the system chose, when 0 was asked). */
  address: { host: string; port: number };
  /** Replace the snapshot (copied: the agent may reuse its objects). */
  update(snapshot: ApiSnapshot): void;
  /** Stop listening and drop open connections (keep-alive ones too). */
  close(): Promise<void>;
}

interface Answer {
  status: number;
  body: string;
}

type Role = 'primary' | 'standby' | null;

const CHECKS = ['primary', 'replica', 'read-only', 'health', 'liveness', 'readiness'] as const;
type Check = (typeof CHECKS)[number];

const POWERS: Record<string, number> = { '': 0, b: 0, k: 1, m: 2, g: 3, t: 4 };

/** ?lag=: bytes, or a size with PostgreSQL's units (kB, MB, GB, TB: powers of 1024; case and a trailing B or iB optional). */
export function parseLag(text: string): number | undefined {
  const m = /^\s*(\d+(?:\.\d+)?)\s*(?:([kmgt])i?b?|(b))?\s*$/i.exec(text);
  if (!m) return undefined;
  const unit = (m[2] ?? m[3] ?? '').toLowerCase();
  return Math.floor(Number(m[1]) * 1024 ** POWERS[unit]!);
}

const json = (status: number, value: unknown): Answer => ({ status, body: `${JSON.stringify(value)}\n` });

/** The checks' answers, from the snapshot alone (no I/O). */
function check(name: Check, query: URLSearchParams, s: ApiSnapshot | undefined, now: number, ttl: number, startedAt: number): Answer {
  if (name === 'liveness') {
    const last = s?.loopAt ?? startedAt;
    const ago = Math.max(0, Math.round(now - last));
    const ok = ago <= ttl * 1000 || s?.acting !== undefined;
    const why = s?.acting
      ? `inside ${s.acting.what} for ${Math.round((now - s.acting.since) / 1000)} s`
      : s ? `last loop ${ago} ms ago, TTL ${ttl} s` : `no loop yet, started ${ago} ms ago, TTL ${ttl} s`;
    return json(ok ? 200 : 503, { check: name, ok, name: s?.name ?? null, lastLoopMsAgo: s ? ago : null, why });
  }
  if (!s) return json(503, { check: name, ok: false, name: null, role: null, state: 'starting', why: 'starting: the agent has not completed a loop yet' });

  const pg = s.postgres;
  const writable = pg.running && pg.inRecovery === false;
  const standby = pg.running && pg.inRecovery === true;
  const role: Role = writable ? 'primary' : standby ? 'standby' : null;
  const state = !pg.running ? 'stopped' : standby && pg.streamingFromLeader ? 'streaming' : 'running';
  const base = { check: name, name: s.name, role, state, leader: s.holdsLeaderKey, timeline: pg.timeline ?? null };
  const reply = (ok: boolean, why: string, extra: object = {}) => json(ok ? 200 : 503, { ...base, ok, ...extra, why });

  const primary = ((): [boolean, string] => {
    if (!s.holdsLeaderKey) return [false, 'does not hold the leader key'];
    if (!writable) return [false, `holds the leader key, but postgres ${pg.running ? 'is read-only' : 'is not running'}`];
    if (s.leaseDeadline === undefined || now >= s.leaseDeadline) return [false, 'holds the leader key, but its lease deadline has passed: writes are stopping'];
    return [true, 'holds the leader key and accepts writes'];
  })();

  const rawLag = query.get('lag');
  const maxLag = rawLag === null ? undefined : parseLag(rawLag);
  if (rawLag !== null && maxLag === undefined && (name === 'replica' || name === 'read-only')) {
    return json(400, { check: name, error: `lag=${rawLag.slice(0, 40)} is not a size: give bytes or a size such as 16MB (units B, kB, MB, GB, TB: powers of 1024)` });
  }
  /** A standby's replay distance to the leader's write position; null when either is unknown. */
  const behind = (): number | null => {
    if (!s.leaderWriteLsn || !pg.replayedLsn) return null;
    const d = lsnDistance(pg.replayedLsn, s.leaderWriteLsn);
    return d > 0n ? Number(d) : 0;
  };
  const lagVerdict = (ok: string): [boolean, string, object] => {
    const lag = behind();
    if (maxLag === undefined) return [true, ok, { lagBytes: lag }];
    if (lag === null) return [false, `${ok}, but its lag is unknown (the leader's position or its replay position is not known), asked lag ≤ ${maxLag}`, { lagBytes: null }];
    return lag > maxLag
      ? [false, `replays ${lag} bytes behind the leader, more than lag=${maxLag}`, { lagBytes: lag }]
      : [true, `${ok}, ${lag} bytes behind the leader (lag ≤ ${maxLag})`, { lagBytes: lag }];
  };

  switch (name) {
    case 'primary':
      return reply(...primary);
    case 'replica': {
      if (s.holdsLeaderKey) return reply(false, 'holds the leader key: not a replica');
      if (!standby) return reply(false, pg.running ? 'accepts writes: not a standby' : 'postgres is not running');
      if (!pg.streamingFromLeader) return reply(false, 'a standby, but not streaming from the leader');
      return reply(...lagVerdict('a standby streaming from the leader'));
    }
    case 'read-only': {
      if (primary[0]) return reply(true, `${primary[1]}: serves reads`);
      if (!standby) return reply(false, pg.running ? primary[1] : 'postgres is not running');
      return reply(...lagVerdict(pg.streamingFromLeader ? 'a standby streaming from the leader' : 'a running standby, not streaming from the leader'));
    }
    case 'health':
      return reply(pg.running, pg.running ? 'postgres is running' : 'postgres is not running');
    case 'readiness': {
      if (primary[0]) return reply(true, primary[1]);
      if (standby && pg.streamingFromLeader && !s.holdsLeaderKey) return reply(true, 'a standby streaming from the leader');
      const why = !pg.running ? 'postgres is not running'
        : standby ? (s.holdsLeaderKey ? 'holds the leader key, but postgres is read-only' : 'a standby, not streaming from the leader')
        : primary[1];
      return reply(false, why);
    }
  }
}

/** Why a position cannot be served: a fixed sentence and the error's code only (an error's text is not ours to vouch for: no secret may reach an answer). */
function positionError(err: unknown): string {
  const code = (err as { code?: unknown } | undefined)?.code;
  const shown = typeof code === 'string' && /^[A-Za-z0-9_]{1,40}$/.test(code) ? code : err instanceof Error ? err.name : 'error';
  return `could not read the position from postgres (${shown})`;
}

const TIMED_OUT = Symbol('timed out');

/** A position as /position serves it: a WAL position and a timeline of 1 or more. */
export function isPosition(p: unknown): p is Position {
  const { received, timeline } = (typeof p === 'object' && p !== null ? p : {}) as Record<string, unknown>;
  return isLsn(received) && typeof timeline === 'number' && Number.isInteger(timeline) && timeline >= 1;
}

/** /position: `position` asked now, within `timeoutMs`; its result checked before it is served. */
async function position(o: ApiOptions, s: ApiSnapshot | undefined): Promise<Answer> {
  const name = s?.name ?? null;
  if (!o.position) return json(503, { name, error: 'this agent serves no position' });
  const timeoutMs = o.positionTimeoutMs ?? POSITION_TIMEOUT_MS;
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<typeof TIMED_OUT>((resolve) => {
    timer = setTimeout(() => resolve(TIMED_OUT), timeoutMs);
  });
  try {
    const p = await Promise.race([o.position(), late]);
    if (p === TIMED_OUT) return json(503, { name, error: `postgres gave no position within ${timeoutMs} ms` });
    if (!isPosition(p)) return json(503, { name, error: 'internal: the position read is not a WAL position and a timeline' });
    return json(200, { name, received: p.received, timeline: p.timeline });
  } catch (err) {
    return json(503, { name, error: positionError(err) });
  } finally {
    clearTimeout(timer);
  }
}

const PATHS = ['/cluster', '/position', ...CHECKS.map((c) => `/${c}`)];

function route(req: IncomingMessage, o: ApiOptions, s: ApiSnapshot | undefined, now: number, startedAt: number): (Answer & { allow?: string }) | Promise<Answer> {
  const url = req.url ?? '/';
  const q = url.indexOf('?');
  const path = q < 0 ? url : url.slice(0, q);
  const query = new URLSearchParams(q < 0 ? '' : url.slice(q + 1));
  if (!PATHS.includes(path)) return json(404, { error: `no such endpoint; try /primary, /replica, /read-only, /health, /liveness, /readiness, /cluster or /position` });
  if (req.method !== 'GET' && req.method !== 'HEAD') return { ...json(405, { error: `${path} answers GET and HEAD only` }), allow: 'GET, HEAD' };
  if (path === '/cluster') {
    return s?.cluster ? { status: 200, body: listJson(s.cluster) } : json(503, { error: 'no successful etcd read yet', name: s?.name ?? null });
  }
  if (path === '/position') return position(o, s);
  return check(path.slice(1) as Check, query, s, now, o.ttl, startedAt);
}

/** Starts listening; rejects with one line naming PGREPL_API_LISTEN when the address cannot be used. */
export async function startApi(o: ApiOptions): Promise<HaApi> {
  const now = o.now ?? (() => performance.now());
  const startedAt = now();
  let snapshot = o.snapshot && structuredClone(o.snapshot);

  // Probes are tiny GETs: a request has a few seconds to arrive whole, idle sockets are dropped,
  // and connections are capped, so a slow or hostile client cannot pin the agent's resources.
  const server = createServer({ requestTimeout: 5000, headersTimeout: 5000, keepAliveTimeout: 5000, connectionsCheckingInterval: 1000, maxHeaderSize: 8192 },
    (req: IncomingMessage, res: ServerResponse) => {
      const send = (a: Answer & { allow?: string }) => {
        res.statusCode = a.status;
        res.setHeader('Content-Type', 'application/json');
        res.setHeader('Cache-Control', 'no-store');
        res.setHeader('Content-Length', Buffer.byteLength(a.body));
        if (a.allow) res.setHeader('Allow', a.allow);
        res.end(req.method === 'HEAD' ? undefined : a.body);
      };
      const failed = (err: unknown) => json(500, { error: `internal error: ${(err as Error).message}` });
      try {
        const a = route(req, o, snapshot, now(), startedAt);
        if (a instanceof Promise) a.then(send, (err: unknown) => send(failed(err)));
        else send(a);
      } catch (err) {
        send(failed(err));
      }
    });
  server.timeout = 10_000;
  server.maxConnections = 256;

  await new Promise<void>((resolve, reject) => {
    const failed = (err: NodeJS.ErrnoException) =>
      reject(new UserError(`PGREPL_API_LISTEN=${o.host}:${o.port}: cannot listen there (${err.code ?? err.message}); choose a free port on an address of this host`));
    server.once('error', failed);
    server.listen(o.port, o.host, () => {
      server.off('error', failed);
      resolve();
    });
  });
  const bound = server.address() as AddressInfo;

  return {
    address: { host: bound.address, port: bound.port },
    update(s) {
      snapshot = structuredClone(s);
    },
    close: () =>
      new Promise<void>((resolve, reject) => {
        server.close((err) => (err ? reject(err) : resolve()));
        server.closeAllConnections();
      }),
  };
}
