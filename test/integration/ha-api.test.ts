/**
 * The HA agent's HTTP API on a real socket (127.0.0.1:5921-5923), asked with node:http as a load
 * balancer or a Kubernetes probe would: every endpoint's status on a leader's and a standby's
 * snapshot, lag thresholds, HEAD, 404/405, bounded requests, no secret in any answer, a clean
 * close. The agent's clock is a variable here, so the deadlines are tested without waiting.
 * /position asks the agent's position function on every request (live, not the snapshot), bounded.
 */
import { request } from 'node:http';
import { connect } from 'node:net';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { replicationPassword } from '../../src/config/token.js';
import { startApi, type ApiSnapshot, type HaApi, type Position } from '../../src/ha/api.js';
import { clusterView, listJson } from '../../src/ha/list.js';
import type { ClusterKeys, MemberKey } from '../../src/ha/types.js';

const HOST = '127.0.0.1';
const PORT = 5921;
const SPARE_PORT = 5922;
const TTL = 10;

const PASSWORD = 'Pw-NEVER-SERVED-3e9d';
const TOKEN = 'Token-NEVER-SERVED-0b7c';
const ETCD_PASSWORD = 'Etcd-NEVER-SERVED-a41f';
const SECRETS = [PASSWORD, TOKEN, ETCD_PASSWORD, replicationPassword(TOKEN)];
const SECRET_ENV = { POSTGRES_PASSWORD: PASSWORD, PGREPL_TOKEN: TOKEN, PGREPL_ETCD_PASSWORD: ETCD_PASSWORD };

interface Reply {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}
/** Everything every server answered, searched for secrets at the end. */
const served: string[] = [];

function ask(method: string, path: string, port = PORT): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = request({ host: HOST, port, method, path, agent: false }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => {
        served.push(JSON.stringify(res.headers), body);
        resolve({ status: res.statusCode!, headers: res.headers, body });
      });
    });
    req.on('error', reject);
    req.end();
  });
}
const get = (path: string, port = PORT) => ask('GET', path, port);

/** Writes raw bytes on a fresh connection; resolves with all the server sent once it closed the connection. */
function sendRaw(text: string): Promise<string> {
  return new Promise((resolve, reject) => {
    let got = '';
    const s = connect(PORT, HOST, () => s.write(text));
    s.setEncoding('utf8');
    s.on('data', (c: string) => (got += c));
    s.on('error', reject);
    s.on('close', () => resolve(got));
  });
}

// --- a cluster of three: n1 leads, n2 is its synchronous standby, n3 streams 2 MB behind

const member = (name: string, over: Partial<MemberKey>): MemberKey => ({
  name, instance: `i-${name}`, address: `127.0.0.1:59${name.slice(1)}0`, api: `127.0.0.1:592${name.slice(1)}`,
  role: 'standby', state: 'streaming', timeline: 2, nofailover: false, ...over,
});
const keys: ClusterKeys = {
  initialize: '7000000000000000001',
  leader: { name: 'n1', lease: '7587869342718462211' },
  members: [
    member('n1', { role: 'primary', state: 'running', writeLsn: '0/5200000' }),
    member('n2', { receivedLsn: '0/5200000', replayedLsn: '0/5200000' }),
    member('n3', { receivedLsn: '0/5000000', replayedLsn: '0/5000000' }),
  ],
  sync: { leader: 'n1', standbys: ['n2'] },
  history: [],
  pause: false,
};
const view = clusterView('pgrepl', keys);

let clock = 1_000_000;

const leader = (): ApiSnapshot => ({
  name: 'n1', holdsLeaderKey: true, leaseDeadline: clock + 7000,
  postgres: { running: true, inRecovery: false, timeline: 2, streamingFromLeader: false, writeLsn: '0/5200000' },
  leaderWriteLsn: '0/5200000', loopAt: clock, cluster: view,
});
/** n3: streaming from the leader, its replay 2 MiB behind the leader's write position. */
const standby = (): ApiSnapshot => ({
  name: 'n3', holdsLeaderKey: false,
  postgres: { running: true, inRecovery: true, timeline: 2, streamingFromLeader: true, receivedLsn: '0/5000000', replayedLsn: '0/5000000' },
  leaderWriteLsn: '0/5200000', loopAt: clock, cluster: view,
});
const TWO_MB = 2 * 1024 * 1024;

const ENDPOINTS = ['/primary', '/replica', '/read-only', '/health', '/liveness', '/readiness', '/cluster'];

let api: HaApi;
const saved: Record<string, string | undefined> = {};

beforeAll(async () => {
  // The secrets are in this process's environment, as they are in the agent's.
  for (const [k, v] of Object.entries(SECRET_ENV)) {
    saved[k] = process.env[k];
    process.env[k] = v;
  }
  api = await startApi({ host: HOST, port: PORT, ttl: TTL, now: () => clock, snapshot: leader() });
});
afterAll(async () => {
  await api?.close();
  for (const [k, v] of Object.entries(saved)) {
    if (v === undefined) delete process.env[k];
    else process.env[k] = v;
  }
});
afterEach(() => {
  clock = 1_000_000;
});

async function statuses(): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  for (const e of ENDPOINTS) out[e] = (await get(e)).status;
  return out;
}

describe('HA API: status codes', () => {
  it('on the leader: /primary 200, /replica 503, the others 200', async () => {
    api.update(leader());
    expect(api.address).toEqual({ host: HOST, port: PORT });
    expect(await statuses()).toEqual({
      '/primary': 200, '/replica': 503, '/read-only': 200, '/health': 200, '/liveness': 200, '/readiness': 200, '/cluster': 200,
    });
    const body = JSON.parse((await get('/primary')).body);
    expect(body).toMatchObject({ check: 'primary', ok: true, name: 'n1', role: 'primary', state: 'running', leader: true, timeline: 2 });
  });

  it('on a standby streaming from the leader: /primary 503, the others 200', async () => {
    api.update(standby());
    expect(await statuses()).toEqual({
      '/primary': 503, '/replica': 200, '/read-only': 200, '/health': 200, '/liveness': 200, '/readiness': 200, '/cluster': 200,
    });
    const r = await get('/replica');
    expect(r.headers['content-type']).toBe('application/json');
    expect(JSON.parse(r.body)).toMatchObject({ check: 'replica', ok: true, name: 'n3', role: 'standby', state: 'streaming', leader: false, lagBytes: TWO_MB });
  });

  it('a standby that does not stream (read-only, no upstream): serves reads, but is no replica and not ready', async () => {
    api.update({ ...standby(), postgres: { ...standby().postgres, streamingFromLeader: false } });
    const s = await statuses();
    expect([s['/replica'], s['/read-only'], s['/readiness'], s['/health']]).toEqual([503, 200, 503, 200]);
    expect(JSON.parse((await get('/replica')).body)).toMatchObject({ ok: false, state: 'running', why: 'a standby, but not streaming from the leader' });
  });

  it('postgres stopped: only /liveness and /cluster answer 200', async () => {
    api.update({ ...standby(), postgres: { running: false, streamingFromLeader: false, timeline: 2 } });
    expect(await statuses()).toEqual({
      '/primary': 503, '/replica': 503, '/read-only': 503, '/health': 503, '/liveness': 200, '/readiness': 503, '/cluster': 200,
    });
    expect(JSON.parse((await get('/health')).body)).toMatchObject({ ok: false, role: null, state: 'stopped' });
  });

  it('the leader past its lease deadline stops being /primary (and a reader, and ready) even if the loop has not demoted yet', async () => {
    api.update(leader());
    expect((await get('/primary')).status).toBe(200);
    clock += 7000;
    expect((await get('/primary')).status).toBe(503);
    expect((await get('/read-only')).status).toBe(503);
    expect((await get('/readiness')).status).toBe(503);
    expect(JSON.parse((await get('/primary')).body).why).toContain('lease deadline has passed');
  });

  it('writable without the leader key, or holding it while read-only: never /primary', async () => {
    api.update({ ...leader(), holdsLeaderKey: false, leaseDeadline: undefined });
    expect([(await get('/primary')).status, (await get('/readiness')).status, (await get('/read-only')).status]).toEqual([503, 503, 503]);
    api.update({ ...leader(), postgres: { ...leader().postgres, inRecovery: true } });
    expect([(await get('/primary')).status, (await get('/replica')).status, (await get('/readiness')).status]).toEqual([503, 503, 503]);
  });

  it('/liveness: 200 while the loop ran within TTL, 503 after, 200 again inside an announced long action', async () => {
    api.update(standby());
    clock += TTL * 1000;
    expect((await get('/liveness')).status).toBe(200);
    clock += 1;
    const late = await get('/liveness');
    expect(late.status).toBe(503);
    expect(JSON.parse(late.body)).toMatchObject({ ok: false, lastLoopMsAgo: TTL * 1000 + 1 });
    api.update({ ...standby(), loopAt: clock - 60_000, acting: { what: 'clone-from-leader', since: clock - 60_000 } });
    const busy = await get('/liveness');
    expect(busy.status).toBe(200);
    expect(JSON.parse(busy.body).why).toBe('inside clone-from-leader for 60 s');
  });
});

describe('HA API: ?lag on /replica and /read-only (replay behind the leader\'s write position)', () => {
  it('thresholds in bytes and in sizes', async () => {
    api.update(standby());
    const at = async (q: string) => [(await get(`/replica?lag=${q}`)).status, (await get(`/read-only?lag=${q}`)).status];
    expect(await at(String(TWO_MB))).toEqual([200, 200]);
    expect(await at(String(TWO_MB - 1))).toEqual([503, 503]);
    expect(await at('1MB')).toEqual([503, 503]);
    expect(await at('2MB')).toEqual([200, 200]);
    expect(await at('3mb')).toEqual([200, 200]);
    expect(await at('2048kB')).toEqual([200, 200]);
    expect(await at('1.5MiB')).toEqual([503, 503]);
    expect(await at('1GB')).toEqual([200, 200]);
    const r = JSON.parse((await get('/replica?lag=1MB')).body);
    expect(r).toMatchObject({ ok: false, lagBytes: TWO_MB, why: `replays ${TWO_MB} bytes behind the leader, more than lag=${1024 * 1024}` });
  });

  it('a standby whose lag cannot be told fails a lag check, and passes without one', async () => {
    api.update({ ...standby(), leaderWriteLsn: undefined });
    expect((await get('/replica?lag=1GB')).status).toBe(503);
    expect((await get('/replica')).status).toBe(200);
  });

  it('a lag that is not a size: 400, one line saying what to give', async () => {
    api.update(standby());
    const r = await get('/replica?lag=lots');
    expect(r.status).toBe(400);
    expect(JSON.parse(r.body).error).toBe('lag=lots is not a size: give bytes or a size such as 16MB (units B, kB, MB, GB, TB: powers of 1024)');
    expect((await ask('HEAD', '/replica?lag=-1')).status).toBe(400);
  });
});

describe('HA API: /cluster', () => {
  it('answers exactly what `pgrepl list --json` prints', async () => {
    api.update(standby());
    const r = await get('/cluster');
    expect(r.status).toBe(200);
    expect(r.body).toBe(listJson(view));
    expect(JSON.parse(r.body).members.map((m: { name: string; lagBytes: number | null }) => [m.name, m.lagBytes])).toEqual([['n1', null], ['n2', 0], ['n3', TWO_MB]]);
  });
});

describe('HA API: methods and paths', () => {
  it('HEAD: the same status as GET, no body', async () => {
    for (const snap of [leader(), standby()]) {
      api.update(snap);
      for (const e of [...ENDPOINTS, '/replica?lag=1MB', '/nowhere']) {
        const [g, h] = [await get(e), await ask('HEAD', e)];
        expect([e, h.status]).toEqual([e, g.status]);
        expect(h.body).toBe('');
      }
    }
  });

  it('an unknown path: 404; a known one with another method: 405 naming GET and HEAD', async () => {
    for (const p of ['/', '/master', '/primary/', '/PRIMARY', '/cluster/x']) expect([p, (await get(p)).status]).toEqual([p, 404]);
    expect((await ask('POST', '/nowhere')).status).toBe(404);
    for (const m of ['POST', 'PUT', 'DELETE', 'PATCH', 'OPTIONS']) {
      const r = await ask(m, '/primary');
      expect([m, r.status, r.headers.allow]).toEqual([m, 405, 'GET, HEAD']);
    }
  });

  it('the snapshot is copied on update: the agent changing its object later changes nothing', async () => {
    const snap = leader();
    api.update(snap);
    snap.holdsLeaderKey = false;
    snap.postgres.running = false;
    expect((await get('/primary')).status).toBe(200);
  });
});

describe('HA API: bounded and clean', () => {
  // Not a speed figure: the 30 s limit only tells a bound from none (node's own default waits 60 s
  // for headers, 300 s for a request; the server's bound is 5 s).
  it('a client that never finishes its request is disconnected', { timeout: 30_000 }, async () => {
    const closed = await sendRaw('GET /primary HTTP/1.1\r\nHost: x\r\n');
    // Node answers 408 before it closes, or just closes: either way, not a served /primary.
    expect(closed === '' || closed.startsWith('HTTP/1.1 408')).toBe(true);
  });

  it('oversized headers are refused (431), not buffered', async () => {
    const r = await sendRaw(`GET /primary HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(16_384)}\r\n\r\n`);
    expect(r.startsWith('HTTP/1.1 431')).toBe(true);
  });

  it('before the first loop: every check 503 (starting) but /liveness, counted from the start', async () => {
    const early = await startApi({ host: HOST, port: SPARE_PORT, ttl: TTL, now: () => clock });
    try {
      const s: Record<string, number> = {};
      for (const e of ENDPOINTS) s[e] = (await get(e, SPARE_PORT)).status;
      expect(s).toEqual({ '/primary': 503, '/replica': 503, '/read-only': 503, '/health': 503, '/liveness': 200, '/readiness': 503, '/cluster': 503 });
      expect(JSON.parse((await get('/primary', SPARE_PORT)).body)).toMatchObject({ ok: false, state: 'starting' });
      clock += TTL * 1000 + 1;
      expect((await get('/liveness', SPARE_PORT)).status).toBe(503);
    } finally {
      await early.close();
    }
  });

  it('a port in use: one line naming PGREPL_API_LISTEN', async () => {
    await expect(startApi({ host: HOST, port: PORT, ttl: TTL })).rejects.toThrow(
      /^PGREPL_API_LISTEN=127\.0\.0\.1:5921: cannot listen there \(EADDRINUSE\); choose a free port/,
    );
  });

  it('closes cleanly, open keep-alive connections included: then the port refuses', async () => {
    const other = await startApi({ host: HOST, port: SPARE_PORT, ttl: TTL, now: () => clock, snapshot: standby() });
    // A client holding a keep-alive connection open must not keep the server (and the agent) alive.
    const held = connect(SPARE_PORT, HOST);
    await new Promise<void>((resolve) => held.on('connect', () => held.write('GET /health HTTP/1.1\r\nHost: x\r\n\r\n', () => resolve())));
    await new Promise((resolve) => held.once('data', resolve));
    const heldClosed = new Promise((resolve) => held.on('close', resolve));
    await other.close();
    await heldClosed;
    await expect(get('/health', SPARE_PORT)).rejects.toMatchObject({ code: 'ECONNREFUSED' });
  });
});

describe('HA API: /position, asked live', () => {
  it('without a position function: 503 saying so, HEAD too', async () => {
    api.update(standby());
    const r = await get('/position');
    expect(r.status).toBe(503);
    expect(JSON.parse(r.body)).toEqual({ name: 'n3', error: 'this agent serves no position' });
    expect((await ask('HEAD', '/position')).status).toBe(503);
  });

  /** What the position function does on its next call. */
  let next: () => Promise<Position> = async () => ({ received: '0/5000060', timeline: 2 });
  let calls = 0;
  const live = async (fn: () => Promise<void>) => {
    const server = await startApi({ host: HOST, port: SPARE_PORT, ttl: TTL, now: () => clock, snapshot: standby(), positionTimeoutMs: 300,
      position: () => {
        calls++;
        return next();
      } });
    try {
      await fn();
    } finally {
      await server.close();
    }
  };

  it('200 {name, received, timeline}: the function is asked on every request, not the snapshot', async () => {
    await live(async () => {
      const before = calls;
      const r = await get('/position', SPARE_PORT);
      expect(r.status).toBe(200);
      expect(r.headers['content-type']).toBe('application/json');
      expect(JSON.parse(r.body)).toEqual({ name: 'n3', received: '0/5000060', timeline: 2 });
      // The snapshot still says 0/5000000; postgres has moved on: the answer follows postgres.
      next = async () => ({ received: '0/7000000', timeline: 3 });
      expect(JSON.parse((await get('/position', SPARE_PORT)).body)).toEqual({ name: 'n3', received: '0/7000000', timeline: 3 });
      const head = await ask('HEAD', '/position', SPARE_PORT);
      expect([head.status, head.body]).toEqual([200, '']);
      expect(calls - before).toBe(3);
      expect((await ask('POST', '/position', SPARE_PORT)).status).toBe(405);
    });
  });

  it('a function that fails: 503 with its code only, never its text (which may hold anything)', async () => {
    await live(async () => {
      next = async () => {
        throw Object.assign(new Error(`connection to postgres with password ${PASSWORD} refused`), { code: 'ECONNREFUSED' });
      };
      const r = await get('/position', SPARE_PORT);
      expect(r.status).toBe(503);
      expect(JSON.parse(r.body)).toEqual({ name: 'n3', error: 'could not read the position from postgres (ECONNREFUSED)' });
      next = async () => {
        throw new Error(`no code, text with ${TOKEN}`);
      };
      expect(JSON.parse((await get('/position', SPARE_PORT)).body)).toEqual({ name: 'n3', error: 'could not read the position from postgres (Error)' });
    });
  });

  it('a function that never answers: 503 once the bound has passed (the request is answered, not held)', async () => {
    await live(async () => {
      next = () => new Promise<Position>(() => undefined);
      const r = await get('/position', SPARE_PORT);
      expect(r.status).toBe(503);
      expect(JSON.parse(r.body)).toEqual({ name: 'n3', error: 'postgres gave no position within 300 ms' });
    });
  });

  it('a function that returns something that is not a position: 503, nothing of it served', async () => {
    await live(async () => {
      for (const bad of [{ received: 'nonsense', timeline: 2 }, { received: '0/5000060', timeline: 0 }, { received: '0/5000060', timeline: 1.5 }, null]) {
        next = async () => bad as unknown as Position;
        const r = await get('/position', SPARE_PORT);
        expect([r.status, JSON.parse(r.body)]).toEqual([503, { name: 'n3', error: 'internal: the position read is not a WAL position and a timeline' }]);
      }
    });
  });

  it('before the first snapshot: the position with name null', async () => {
    const early = await startApi({ host: HOST, port: SPARE_PORT, ttl: TTL, position: async () => ({ received: '0/3000000', timeline: 1 }) });
    try {
      expect(JSON.parse((await get('/position', SPARE_PORT)).body)).toEqual({ name: null, received: '0/3000000', timeline: 1 });
    } finally {
      await early.close();
    }
  });
});

describe('HA API: no secret in any answer', () => {
  it('with passwords and the token in the environment, nothing served contains one', async () => {
    // Every snapshot shape once more, every endpoint, GET and with a lag, then everything served so far.
    for (const snap of [leader(), standby(), { ...standby(), postgres: { running: false, streamingFromLeader: false } }]) {
      api.update(snap);
      for (const e of [...ENDPOINTS, '/position', '/replica?lag=1MB', '/nowhere']) await get(e);
      await ask('POST', '/primary');
    }
    expect(served.length).toBeGreaterThan(100);
    const all = served.join('\n');
    for (const secret of SECRETS) expect(all).not.toContain(secret);
    expect(process.env.POSTGRES_PASSWORD).toBe(PASSWORD);
  });
});
