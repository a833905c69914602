/**
 * src/etcd against a real 3-member etcd cluster (Debian's etcd-server) on 127.0.0.1:2385-2390
 * (not 2379-2380: where the etcd-server package starts its own service under systemd).
 * The cases that need a whole cluster run first against one cluster; the fault cases (a member
 * killed, frozen, quorum lost) come last and leave it whole again. TLS and authentication: a
 * one-member cluster of their own on 127.0.0.1:2391-2392.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { absent, EtcdClient, EtcdError, modRevisionIs, valueIs, type EtcdClientOptions, type WatchEvent } from '../../src/etcd/index.js';
import { waitFor } from '../support/cluster.js';
import { EtcdCluster, makeTestCertificates, type TestCertificates } from '../support/etcd-cluster.js';

const TIMEOUT_MS = 3000;
let etcd: EtcdCluster;
const clients: EtcdClient[] = [];

/** A client whose endpoints are the members in `order` (the first one is tried first). */
function client(order = [0, 1, 2]): EtcdClient {
  const c = new EtcdClient({ endpoints: order.map((i) => etcd.endpoint(i)), timeoutMs: TIMEOUT_MS });
  clients.push(c);
  return c;
}

/** Collects a watch's events. */
function collector(): { events: WatchEvent[]; push: (e: WatchEvent) => void; seen: (p: (e: WatchEvent) => boolean) => Promise<WatchEvent> } {
  const events: WatchEvent[] = [];
  return {
    events,
    push: (e) => events.push(e),
    seen: (p) => waitFor('a watch event', async () => events.find(p), 20_000),
  };
}

async function failure(p: Promise<unknown>): Promise<EtcdError> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(EtcdError);
  return err as EtcdError;
}

beforeAll(async () => {
  etcd = await EtcdCluster.start({ basePort: 2385 });
});

afterAll(async () => {
  for (const c of clients) c.close();
  await etcd?.stopAll();
});

describe('etcd client against a healthy cluster', () => {
  it('puts, reads, reads a prefix, deletes; empty answers are normalised', async () => {
    const c = client();
    expect(await c.get('/t/kv/missing')).toBeUndefined();
    const empty = await c.range('/t/kv/', { prefix: true });
    expect(empty.kvs).toEqual([]);
    expect(empty.count).toBe(0);

    const { revision } = await c.put('/t/kv/a', 'one');
    await c.put('/t/kv/b', 'two');
    await c.put('/t/kw', 'outside the prefix');
    const a = await c.get('/t/kv/a');
    expect(a).toMatchObject({ key: '/t/kv/a', value: 'one', createRevision: revision, modRevision: revision, version: '1' });
    expect(a?.lease).toBeUndefined();

    const all = await c.range('/t/kv/', { prefix: true });
    expect(all.kvs.map((kv) => [kv.key, kv.value])).toEqual([
      ['/t/kv/a', 'one'],
      ['/t/kv/b', 'two'],
    ]);
    expect(all.count).toBe(2);
    const limited = await c.range('/t/kv/', { prefix: true, limit: 1 });
    expect([limited.kvs.length, limited.count]).toEqual([1, 2]);

    expect((await c.delete('/t/kv/nothing')).deleted).toBe(0);
    expect((await c.delete('/t/kv/', { prefix: true })).deleted).toBe(2);
    expect((await c.range('/t/kv/', { prefix: true })).kvs).toEqual([]);
    expect((await c.get('/t/kw'))?.value).toBe('outside the prefix');
  });

  it('keeps non-ASCII keys and values, and binary values, byte for byte', async () => {
    const c = client();
    const key = '/t/bytes/clé-ünï-日本';
    const text = 'zażółć gęślą jaźń 🚀 "quoted" \\ \n';
    await c.put(key, text);
    const got = await c.get(key);
    expect(got?.key).toBe(key);
    expect(got?.value).toBe(text);

    const binary = Buffer.from([0, 255, 1, 128, 10, 13, 0xfe, 0xc3, 0x28]);
    await c.put('/t/bytes/bin', binary);
    expect((await c.get('/t/bytes/bin'))?.bytes.equals(binary)).toBe(true);

    // A prefix ending in 0xff bytes: its range end carries over to the byte before.
    const ffPrefix = Buffer.from([0x2f, 0x74, 0x2f, 0x62, 0xff]);
    await c.put(Buffer.concat([ffPrefix, Buffer.from([0xff, 1])]), 'under ff');
    await c.put(Buffer.from([0x2f, 0x74, 0x2f, 0x63]), 'after ff');
    const under = await c.range(ffPrefix, { prefix: true });
    expect(under.kvs.map((kv) => kv.value)).toEqual(['under ff']);

    expect((await c.range('/t/bytes/', { prefix: true })).count).toBe(2);
  });

  it('create-if-absent: of two clients racing for a key, exactly one wins, every time', async () => {
    const [c1, c2] = [client([0, 1, 2]), client([1, 2, 0])];
    for (let round = 0; round < 20; round++) {
      const key = `/t/race/${round}`;
      const take = (c: EtcdClient, name: string) => c.txn({ compare: [absent(key)], success: [{ put: { key, value: name } }], failure: [{ range: { key } }] });
      const [r1, r2] = await Promise.all([take(c1, 'one'), take(c2, 'two')]);
      expect([r1.succeeded, r2.succeeded].filter(Boolean)).toHaveLength(1);
      const [winner, loser] = r1.succeeded ? ['one', r2] : ['two', r1];
      // The loser sees who holds the key in its failure branch.
      expect(loser.responses).toMatchObject([{ op: 'range', count: 1 }]);
      expect(loser.responses[0]?.op === 'range' && loser.responses[0].kvs[0]?.value).toBe(winner);
      expect((await c1.get(key))?.value).toBe(winner);
    }
  });

  it('txn compares values and mod revisions; succeeded is false when etcd omits it', async () => {
    const c = client();
    const key = '/t/txn/k';
    const { revision } = await c.put(key, 'v1');
    const wrongValue = await c.txn({ compare: [valueIs(key, 'other')], success: [{ put: { key, value: 'no' } }] });
    expect(wrongValue.succeeded).toBe(false);
    expect(wrongValue.responses).toEqual([]);

    const rightValue = await c.txn({ compare: [valueIs(key, 'v1')], success: [{ put: { key, value: 'v2' } }, { range: { key } }] });
    expect(rightValue.succeeded).toBe(true);
    expect(rightValue.responses.map((r) => r.op)).toEqual(['put', 'range']);
    expect(rightValue.responses[1]?.op === 'range' && rightValue.responses[1].kvs[0]?.value).toBe('v2');

    // Someone wrote since `revision` was read: the compare-and-delete must not delete.
    const stale = await c.txn({ compare: [modRevisionIs(key, revision)], success: [{ delete: { key } }] });
    expect(stale.succeeded).toBe(false);
    const current = (await c.get(key))!.modRevision;
    const fresh = await c.txn({ compare: [modRevisionIs(key, current)], success: [{ delete: { key } }] });
    expect(fresh.succeeded).toBe(true);
    expect(fresh.responses).toEqual([{ op: 'delete', deleted: 1 }]);
    expect(await c.get(key)).toBeUndefined();

    const notThere = await c.txn({ compare: [absent(key)], success: [{ put: { key, value: 'created' } }] });
    expect(notThere.succeeded).toBe(true);
  });

  it('a lease ID beyond 2^53 round-trips exactly: grant, attach, keepalive, revoke', async () => {
    const c = client();
    const id = '9007199254740993'; // 2^53 + 1: a JS number would read it as ...992
    const lease = await c.leaseGrant(30, { id });
    expect(lease.id).toBe(id);
    await c.put('/t/biglease', 'attached', { lease: id });
    expect((await c.get('/t/biglease'))?.lease).toBe(id);
    expect(await c.leaseKeepAlive(id)).toEqual({ status: 'alive', ttl: 30 });
    expect(await c.leaseRevoke(id)).toBe(true);
    expect(await c.get('/t/biglease')).toBeUndefined();
    expect(await c.leaseRevoke(id)).toBe(false);
    expect(await c.leaseKeepAlive(id)).toEqual({ status: 'expired' });

    const picked = await c.leaseGrant(30);
    expect(picked.id).toMatch(/^[1-9]\d*$/);
    await c.put('/t/biglease', 'attached', { lease: picked.id });
    expect((await c.get('/t/biglease'))?.lease).toBe(picked.id);
    await c.leaseRevoke(picked.id);
  });

  it('an expired lease deletes its key, and keepalive then says expired, never alive', async () => {
    const c = client();
    const lease = await c.leaseGrant(2);
    await c.put('/t/expiring', 'on a lease', { lease: lease.id });
    expect((await c.leaseKeepAlive(lease.id)).status).toBe('alive');
    await waitFor('the leased key to be deleted', async () => (await c.get('/t/expiring')) === undefined, 20_000);
    for (let i = 0; i < 3; i++) expect(await c.leaseKeepAlive(lease.id)).toEqual({ status: 'expired' });
    expect(await c.get('/t/expiring')).toBeUndefined();
  });

  it('a watch wakes on a put, a change and a delete under its prefix, and not after it is cancelled', async () => {
    const c = client();
    const seen = collector();
    const statuses: boolean[] = [];
    const watch = c.watch('/t/watch/', seen.push, { prefix: true, onStatus: (s) => statuses.push(s.connected) });
    await waitFor('the watch to connect', async () => statuses.includes(true), 10_000);
    await c.put('/t/watched-not', 'outside');
    await c.put('/t/watch/a', 'one');
    await c.put('/t/watch/a', 'two');
    await c.delete('/t/watch/a');
    await seen.seen((e) => e.type === 'delete');
    expect(seen.events.map((e) => (e.type === 'resync' ? e.type : [e.type, e.key, e.value]))).toEqual([
      ['put', '/t/watch/a', 'one'],
      ['put', '/t/watch/a', 'two'],
      ['delete', '/t/watch/a', ''],
    ]);
    watch.cancel();
    await c.put('/t/watch/b', 'after cancel');
    const later = await c.txn({ compare: [], success: [{ range: { key: '/t/watch/b' } }] }); // one more round trip
    expect(later.succeeded).toBe(true);
    expect(seen.events).toHaveLength(3);
  });

  it('a watch started at a revision reports what changed since', async () => {
    const c = client();
    const { revision } = await c.put('/t/since/a', 'before the watch');
    await c.put('/t/since/a', 'also before');
    const seen = collector();
    const watch = c.watch('/t/since/', seen.push, { prefix: true, startRevision: revision });
    await seen.seen((e) => e.type === 'put' && e.value === 'also before');
    expect(seen.events.map((e) => e.type !== 'resync' && e.value)).toEqual(['before the watch', 'also before']);
    watch.cancel();
  });

  it('a watch from a revision etcd compacted away says resync, then reports changes from now on', async () => {
    const c = client();
    const { revision } = await c.put('/t/compacted/a', 'old');
    const { revision: latest } = await c.put('/t/compacted/a', 'newer');
    await etcd.post(0, '/v3/kv/compaction', { revision: latest, physical: true });
    const seen = collector();
    const watch = c.watch('/t/compacted/', seen.push, { prefix: true, startRevision: revision });
    await seen.seen((e) => e.type === 'resync');
    await waitFor('the watch to resume', async () => {
      await c.put('/t/compacted/a', 'after');
      return seen.events.some((e) => e.type === 'put' && e.value === 'after');
    }, 10_000);
    expect(seen.events[0]?.type).toBe('resync');
    expect(seen.events.some((e) => e.type === 'put' && e.value !== 'after')).toBe(false);
    watch.cancel();
  });
});

describe('etcd client when members fail', () => {
  it('one member killed: calls go to the others, the watch moves over, the member comes back', async () => {
    const leader = await etcd.waitForLeader();
    const victim = (leader + 1) % 3; // a follower: no election in the way
    const c = client([victim, (victim + 1) % 3, (victim + 2) % 3]);
    await c.put('/t/kill/before', 'x'); // the client now prefers the victim
    const seen = collector();
    const statuses: boolean[] = [];
    const watch = c.watch('/t/kill/', seen.push, { prefix: true, onStatus: (s) => statuses.push(s.connected) });
    await waitFor('the watch to connect', async () => statuses.includes(true), 10_000);

    await etcd.kill(victim);
    await c.put('/t/kill/after', 'y');
    expect((await c.get('/t/kill/after'))?.value).toBe('y');
    expect((await c.txn({ compare: [absent('/t/kill/new')], success: [{ put: { key: '/t/kill/new', value: 'z' } }] })).succeeded).toBe(true);
    const lease = await c.leaseGrant(10);
    expect((await c.leaseKeepAlive(lease.id)).status).toBe('alive');
    expect(await c.leaseRevoke(lease.id)).toBe(true);
    await seen.seen((e) => e.type === 'put' && e.key === '/t/kill/new');
    // Nothing missed while the watch moved: every change after it started, in order.
    expect(seen.events.map((e) => e.type !== 'resync' && e.key)).toEqual(['/t/kill/after', '/t/kill/new']);
    watch.cancel();

    await etcd.restart(victim);
    await waitFor('the member back and healthy', () => etcd.healthy(victim), 30_000);
    expect(await client([victim]).get('/t/kill/new')).toMatchObject({ value: 'z' });
  });

  it('the raft leader killed: a call that keeps trying until its deadline rides out the election; nothing written is lost', async () => {
    const c = client();
    await c.put('/t/leaderkill', 'before');
    const leader = await etcd.waitForLeader();
    await etcd.kill(leader);
    // At once, while the others elect a leader: no waiting for the election before calling.
    await c.put('/t/leaderkill', 'during the election', { untilDeadline: true, timeoutMs: 6000 });
    expect((await c.get('/t/leaderkill', { untilDeadline: true, timeoutMs: 6000 }))?.value).toBe('during the election');
    await etcd.restart(leader);
    await waitFor('the member back and healthy', () => etcd.healthy(leader), 30_000);
    expect((await client([leader]).get('/t/leaderkill'))?.value).toBe('during the election');
  });

  it('one member frozen (SIGSTOP): calls go to the others within the deadline; the watch moves over', async () => {
    const leader = await etcd.waitForLeader();
    const frozen = (leader + 1) % 3;
    const c = client([frozen, (frozen + 1) % 3, (frozen + 2) % 3]);
    await c.put('/t/freeze/before', 'x'); // the client now prefers the member about to freeze
    const seen = collector();
    const statuses: boolean[] = [];
    const watch = c.watch('/t/freeze/', seen.push, { prefix: true, probeIntervalMs: 500, onStatus: (s) => statuses.push(s.connected) });
    await waitFor('the watch to connect', async () => statuses.includes(true), 10_000);

    etcd.freeze(frozen);
    try {
      // Each call must be served by another member before its deadline (TIMEOUT_MS): no retry here.
      await c.put('/t/freeze/during', 'y');
      expect((await c.get('/t/freeze/during'))?.value).toBe('y');
      const lease = await c.leaseGrant(10);
      expect((await c.leaseKeepAlive(lease.id)).status).toBe('alive');
      await c.leaseRevoke(lease.id);
      // A fresh client, starting at the frozen member, too.
      expect((await client([frozen, (frozen + 1) % 3, (frozen + 2) % 3]).get('/t/freeze/during'))?.value).toBe('y');
      await seen.seen((e) => e.type === 'put' && e.key === '/t/freeze/during');
      expect(statuses).toContain(false); // it left the frozen member
    } finally {
      etcd.thaw(frozen);
      watch.cancel();
    }
    await waitFor('the member thawed and healthy', () => etcd.healthy(frozen), 30_000);
  });

  it('quorum lost (two members stopped): calls fail fast saying there is no leader; all is well when they return', async () => {
    const c = client();
    await c.put('/t/quorum', 'before');
    const lease = await c.leaseGrant(30);
    const seen = collector();
    const statuses: boolean[] = [];
    const watch = c.watch('/t/quorum', seen.push, { probeIntervalMs: 500, onStatus: (s) => statuses.push(s.connected) });
    await waitFor('the watch to connect', async () => statuses.includes(true), 10_000);
    await etcd.stop(1);
    await etcd.stop(2);
    try {
      // Until member 0 notices (one election timeout) it may still hold a call; then it answers at once.
      await waitFor('member 0 to say it has no leader', async () => (await failure(c.get('/t/quorum'))).kind === 'no-leader', 30_000);
      const errors = await Promise.all([
        failure(c.get('/t/quorum')),
        failure(c.put('/t/quorum', 'during')),
        failure(c.txn({ compare: [absent('/t/quorum/x')], success: [{ put: { key: '/t/quorum/x', value: 'x' } }] })),
        failure(c.leaseGrant(10)),
        failure(c.leaseKeepAlive(lease.id)), // never "alive", never "expired": etcd cannot say
        failure(c.range('/t/', { prefix: true, serializable: true })),
        failure(c.get('/t/quorum', { untilDeadline: true, timeoutMs: 1000 })), // kept trying: still says why
      ]);
      for (const err of errors) {
        expect(err.kind).toBe('no-leader');
        expect(err.message).toMatch(/no member has a leader \(etcd has lost its quorum/);
      }
      // A call that keeps trying until its deadline succeeds once the quorum is back within it.
      const riding = c.put('/t/quorum', 'across', { untilDeadline: true, timeoutMs: 60_000 });
      await Promise.all([etcd.restart(1), etcd.restart(2)]);
      await riding;
    } finally {
      if (!etcd.running(1)) await etcd.restart(1);
      if (!etcd.running(2)) await etcd.restart(2);
    }
    await waitFor('every member healthy again', async () => (await Promise.all([0, 1, 2].map((i) => etcd.healthy(i)))).every(Boolean), 30_000);
    expect((await c.get('/t/quorum'))?.value).toBe('across');
    expect((await c.leaseKeepAlive(lease.id)).status).toBe('alive');
    await c.put('/t/quorum', 'after');
    expect((await c.get('/t/quorum'))?.value).toBe('after');
    // The watch lost its member's leader, kept trying, and wakes again.
    await seen.seen((e) => e.type === 'put' && e.value === 'after');
    expect(statuses).toContain(false);
    watch.cancel();
  });

  it('a call bounded by an AbortSignal ends with kind "aborted"', async () => {
    const c = client();
    const leader = await etcd.waitForLeader();
    const frozen = (leader + 1) % 3;
    etcd.freeze(frozen);
    try {
      const controller = new AbortController();
      const call = client([frozen]).get('/t/abort', { signal: controller.signal, timeoutMs: 60_000 });
      setTimeout(() => controller.abort(), 200);
      expect((await failure(call)).kind).toBe('aborted');
      // Bounded by its own timeout, a call to the frozen member alone says it timed out.
      const err = await failure(client([frozen]).get('/t/abort', { timeoutMs: 500 }));
      expect(err.kind).toBe('timeout');
      expect(err.message).toContain(etcd.endpoint(frozen));
    } finally {
      etcd.thaw(frozen);
    }
    expect(await c.get('/t/abort')).toBeUndefined();
  });
});

describe('etcd client over TLS with user/password authentication', () => {
  const PASSWORD = 'app-secret-7c1f';
  let secure: EtcdCluster;
  let certDir: string;
  let certs: TestCertificates;
  let options: EtcdClientOptions;

  beforeAll(async () => {
    certDir = mkdtempSync(join(tmpdir(), 'pgrepl-etcd-certs-'));
    certs = makeTestCertificates(certDir);
    // Tokens idle for 1 s expire: the client must log in again by itself.
    secure = await EtcdCluster.start({ basePort: 2391, members: 1, tls: certs, extraArgs: ['--auth-token-ttl=1'] });
    await secure.enableAuth('root-secret', [{ name: 'app', password: PASSWORD, prefix: '/app/' }]);
    options = {
      endpoints: secure.endpoints,
      timeoutMs: TIMEOUT_MS,
      tls: { ca: readFileSync(certs.caFile), cert: readFileSync(certs.clientCertFile), key: readFileSync(certs.clientKeyFile) },
      auth: { user: 'app', password: PASSWORD },
    };
  });

  afterAll(async () => {
    await secure?.stopAll();
    if (certDir) rmSync(certDir, { recursive: true, force: true });
  });

  function secureClient(o: Partial<EtcdClientOptions> = {}): EtcdClient {
    const c = new EtcdClient({ ...options, ...o });
    clients.push(c);
    return c;
  }

  it('reads, writes, leases and watches under its prefix, and logs in again when its token expired', async () => {
    const c = secureClient();
    const seen = collector();
    const watch = c.watch('/app/', seen.push, { prefix: true });
    await c.put('/app/a', 'one');
    expect((await c.get('/app/a'))?.value).toBe('one');
    const lease = await c.leaseGrant(10);
    expect((await c.txn({ compare: [absent('/app/b')], success: [{ put: { key: '/app/b', value: 'two', lease: lease.id } }] })).succeeded).toBe(true);
    await seen.seen((e) => e.type === 'put' && e.key === '/app/b');

    await new Promise((r) => setTimeout(r, 2500)); // the token expires
    expect((await c.get('/app/b'))?.lease).toBe(lease.id);
    expect((await c.leaseKeepAlive(lease.id)).status).toBe('alive');
    expect(await c.leaseRevoke(lease.id)).toBe(true);
    await seen.seen((e) => e.type === 'delete' && e.key === '/app/b');
    watch.cancel();
  });

  it('refuses a wrong password and a key outside the granted prefix as "auth", naming no secret', async () => {
    const wrong = await failure(secureClient({ auth: { user: 'app', password: 'not-the-password' } }).get('/app/a'));
    expect(wrong.kind).toBe('auth');
    expect(wrong.message).toMatch(/authentication failed/);
    expect(wrong.message).not.toContain('not-the-password');

    const outside = await failure(secureClient().put('/elsewhere', 'x'));
    expect(outside.kind).toBe('auth');
    expect(outside.message).toMatch(/permission denied/);
    expect(outside.message).not.toContain(PASSWORD);
  });

  it('does not talk to a server its CA did not sign, nor without a client certificate', async () => {
    const noCa = await failure(secureClient({ tls: { cert: options.tls!.cert, key: options.tls!.key } }).get('/app/a'));
    expect(noCa.kind).toBe('unavailable');
    expect(noCa.message).toMatch(/certificate/);
    const noCert = await failure(secureClient({ tls: { ca: options.tls!.ca } }).get('/app/a'));
    expect(noCert.kind).toBe('unavailable');
    // etcd's gateway, with authentication on, refuses a client certificate with a CommonName.
    const withCn = await failure(secureClient({ tls: { ca: options.tls!.ca, cert: readFileSync(certs.clientCnCertFile), key: readFileSync(certs.clientCnKeyFile) } }).get('/app/a'));
    expect(withCn.kind).toBe('rejected');
    expect(withCn.message).toMatch(/client certificate without a CommonName/);
  });
});
