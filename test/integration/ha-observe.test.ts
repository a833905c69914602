/**
 * The HA agent's observe half (src/ha/observe.ts) against real parts: a 3-member etcd (Debian's
 * etcd-server) on 127.0.0.1:2393-2398 and PostgreSQL nodes through the bundle on 5931-5932.
 * Keys written with our etcd client in the layout of src/ha/keys.ts come back from one read; a
 * malformed one is reported while the rest is returned; etcd without its quorum is an observation
 * within the call's bound, not a hang; a primary, its standby and a stopped node observed into
 * LocalPostgres; and one real observation fed to decide() to show the types line up.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Secret } from '../../src/config/secret.js';
import { SOCKET_DIR } from '../../src/config/env.js';
import { EtcdClient } from '../../src/etcd/index.js';
import { decide } from '../../src/ha/decide.js';
import { encodeHistory, encodeInitialize, encodeLeader, encodeMember, encodePause, encodeSwitchover, encodeSync, haKeys } from '../../src/ha/keys.js';
import { compareLsn } from '../../src/ha/lsn.js';
import { observeKeys, observeLocal, type LocalNode, type ObservedPostgres } from '../../src/ha/observe.js';
import { HA_TIMING_DEFAULTS } from '../../src/ha/timing.js';
import type { AgentMemory, HaSettings, HistoryEntry, MemberKey } from '../../src/ha/types.js';
import { standbyOf, waitFor } from '../support/cluster.js';
import { EtcdCluster } from '../support/etcd-cluster.js';
import { query, removeScratch, scratchDir, SUPERUSER_PASSWORD, TestNode, type NodeOptions } from '../support/node.js';

const ETCD_BASE = 2393;
const P = 5931; // the primary
const S = 5932; // its standby
const TIMEOUT_MS = 2000;
const PREFIX = '/pgrepl/observe-test/';
const K = haKeys(PREFIX);

let etcd: EtcdCluster;
let client: EtcdClient;
let dir: string;
const nodes: TestNode[] = [];

const nodeOpts = (port: number, env: Record<string, string> = {}): NodeOptions => ({ pgdata: join(dir, `n${port}`), port, env: { PGREPL_TOKEN: 'ha-observe-token', ...env } });
const local = (port: number): LocalNode => {
  const pgdata = join(dir, `n${port}`);
  return {
    pgdata, socketDir: SOCKET_DIR, port, user: 'postgres', password: new Secret(SUPERUSER_PASSWORD),
    major: Number(readFileSync(join(pgdata, 'PG_VERSION'), 'utf8').trim()), timeoutMs: TIMEOUT_MS,
  };
};

const member = (name: string, port: number, over: Partial<MemberKey> = {}): MemberKey => ({
  name, instance: `instance-${name}`, address: `127.0.0.1:${port}`, api: `127.0.0.1:${port + 1000}`,
  role: 'standby', state: 'streaming', timeline: 1, nofailover: false, ...over,
});
const HISTORY: HistoryEntry[] = [{ timeline: 2, lsn: '0/3000148', leader: 'n1', at: '2024-05-01T12:00:00.000Z', why: 'no leader; n1 was the healthiest' }];

beforeAll(async () => {
  dir = scratchDir();
  etcd = await EtcdCluster.start({ basePort: ETCD_BASE });
  client = new EtcdClient({ endpoints: etcd.endpoints, timeoutMs: TIMEOUT_MS });
});

afterAll(async () => {
  for (const n of nodes) await n.stop('SIGINT').catch(() => undefined);
  client?.close();
  await etcd?.stopAll();
  if (dir) removeScratch(dir);
});

describe('observe: the keys, one linearizable read', () => {
  it('returns exactly what was written in the layout: leader with its lease, members, sync, history, switchover, pause', async () => {
    expect(await observeKeys(client, PREFIX)).toMatchObject({ ok: true, keys: { members: [], history: [], pause: false }, problems: [] });

    const leaderLease = (await client.leaseGrant(10)).id;
    const otherLease = (await client.leaseGrant(10)).id;
    const n1 = member('n1', 5001, { role: 'primary', state: 'running', writeLsn: '0/5000060' });
    const n2 = member('n2', 5002, { receivedLsn: '0/5000060', replayedLsn: '0/5000000' });
    await client.put(K.initialize, encodeInitialize('7312345678901234567'));
    await client.put(K.leader, encodeLeader('n1'), { lease: leaderLease });
    await client.put(K.member('n1'), encodeMember(n1), { lease: leaderLease });
    await client.put(K.member('n2'), encodeMember(n2), { lease: otherLease });
    await client.put(K.sync, encodeSync({ leader: 'n1', standbys: ['n2'] }));
    await client.put(K.history, encodeHistory(HISTORY));
    await client.put(K.switchover, encodeSwitchover({ from: 'n1', to: 'n2' }));
    const { revision: pauseRevision } = await client.put(K.pause, encodePause(new Date()));
    await client.put('/pgrepl/observe-test-2/leader', encodeLeader('elsewhere')); // another cluster: a longer name, same start

    const o = await observeKeys(client, PREFIX);
    if (!o.ok) throw new Error(o.error);
    expect(o.problems).toEqual([]);
    expect(o.keys).toEqual({
      initialize: '7312345678901234567',
      leader: { name: 'n1', lease: leaderLease },
      members: [n1, n2],
      sync: { leader: 'n1', standbys: ['n2'] },
      history: HISTORY,
      switchover: { from: 'n1', to: 'n2' },
      pause: true,
    });
    // One read: one store revision, at least the last write's; every key's own mod revision.
    expect(BigInt(o.revision) >= BigInt(pauseRevision)).toBe(true);
    expect(o.revisions.pause).toBe(pauseRevision);
    for (const [key, rev] of Object.entries({ [K.leader]: o.revisions.leader, [K.member('n2')]: o.revisions.members.n2, [K.history]: o.revisions.history })) {
      expect(rev).toBe((await client.get(key))!.modRevision);
    }
  });

  it('a malformed member value is reported; the rest is still returned', async () => {
    await client.put(K.member('n3'), '{"name":"n3","role":"primary"');
    await client.put(K.member('n4'), encodeMember(member('n4', 5004, { state: 'sleeping' as never })));
    const o = await observeKeys(client, PREFIX);
    if (!o.ok) throw new Error(o.error);
    expect(o.keys.members.map((m) => m.name)).toEqual(['n1', 'n2']);
    expect(o.keys.leader?.name).toBe('n1');
    expect(o.keys.history).toEqual(HISTORY);
    expect(o.problems).toEqual([
      { key: K.member('n3'), why: expect.stringMatching(/^not JSON/) },
      { key: K.member('n4'), why: 'state "sleeping" is not stopped, running, streaming' },
    ]);
    await client.delete(K.member('n3'));
    await client.delete(K.member('n4'));
  });
});

describe('observe: this node\'s postgres', () => {
  let primary: ObservedPostgres;
  let standby: ObservedPostgres;

  it('a primary: not in recovery, its write position, its standby streaming in pg_stat_replication', async () => {
    const p = new TestNode(nodeOpts(P));
    nodes.push(p);
    await p.ready();
    const s = new TestNode(nodeOpts(S, standbyOf(P)));
    nodes.push(s);
    await s.ready();
    await query(P, 'CREATE TABLE t AS SELECT 1 AS x');
    // Streaming, and past its first feedback (until then flush_lsn is null: flushLsn absent).
    await waitFor('the standby streaming', async () => (await observeLocal(local(P))).replication.some((r) => r.state === 'streaming' && r.flushLsn));

    primary = await observeLocal(local(P));
    expect(primary).toMatchObject({ running: true, inRecovery: false, timeline: 1, major: local(P).major, pgdata: { kind: 'cluster', standby: false } });
    expect(primary.writeLsn).toMatch(/^[0-9A-F]+\/[0-9A-F]+$/);
    expect(primary.receivedLsn).toBeUndefined();
    expect(primary.notAnswering).toBeUndefined();
    expect(primary.replication).toEqual([{ name: `node_${S}`, state: 'streaming', flushLsn: expect.stringMatching(/\//) }]);
    // The start-up's synchronous_standby_names is empty without PGREPL_SYNC_STANDBYS.
    expect(primary.synchronous).toEqual({ standbys: [] });
  });

  it('a standby: in recovery, streaming from the primary\'s port, received and replayed positions, the timeline', async () => {
    const written = (await query<{ w: string }>(P, 'SELECT pg_current_wal_lsn()::text AS w'))[0]!.w;
    standby = await waitFor('the standby to receive what the primary wrote', async () => {
      const o = await observeLocal(local(S));
      return o.receivedLsn && o.replayedLsn && compareLsn(o.replayedLsn, written) >= 0 ? o : undefined;
    });
    expect(standby).toMatchObject({
      running: true, inRecovery: true, timeline: 1, following: `127.0.0.1:${P}`,
      walReceiver: { status: 'streaming', from: `127.0.0.1:${P}` }, replication: [], pgdata: { kind: 'cluster', standby: true },
    });
    expect(standby.writeLsn).toBeUndefined();
    expect(compareLsn(standby.receivedLsn!, standby.replayedLsn!)).toBeGreaterThanOrEqual(0);
    // The same system as the primary, as PGDATA's control file says.
    expect(standby.pgdata.kind === 'cluster' && standby.pgdata.systemIdentifier).toBe(primary.pgdata.kind === 'cluster' && primary.pgdata.systemIdentifier);
  });

  it('one real observation into decide(): the leader key on the primary\'s member, this node its standby: keep following', async () => {
    const myLease = (await client.leaseGrant(10)).id;
    const leaderLease = (await client.leaseGrant(10)).id;
    const sentAt = performance.now();
    const system = primary.pgdata.kind === 'cluster' ? primary.pgdata.systemIdentifier! : '';
    await client.delete(PREFIX, { prefix: true });
    await client.put(K.initialize, encodeInitialize(system));
    await client.put(K.leader, encodeLeader('p'), { lease: leaderLease });
    await client.put(K.member('p'), encodeMember(member('p', P, { role: 'primary', state: 'running', writeLsn: primary.writeLsn })), { lease: leaderLease });
    await client.put(K.member('s'), encodeMember(member('s', S, { instance: 'me' })), { lease: myLease });

    const settings: HaSettings = {
      name: 's', instance: 'me', nofailover: false, maxLagOnFailover: 1024 * 1024, syncStandbys: 0, hint: undefined, reclone: 'never', slots: true,
      timing: HA_TIMING_DEFAULTS,
    };
    const memory: AgentMemory = { startedAt: sentAt, lease: { id: myLease, lastRenewalSentAt: sentAt }, ledAtLastRead: false, published: true };
    const observe = async () => ({
      now: performance.now(), wallNow: Date.now(), etcd: await observeKeys(client, PREFIX), local: await observeLocal(local(S)), stopping: false,
    });

    const d = decide(await observe(), settings, memory);
    expect(d).toMatchObject({ row: 'follow', actions: [{ do: 'renew-lease' }, { do: 'publish-member' }] });
    expect('say' in d && d.say).toMatch(/^p leads \(timeline 1, at .*\): following it \(timeline 1, received \d/);

    // The leader's member key names another address than primary_conninfo: re-point (reload on 13+).
    await client.put(K.member('p'), encodeMember(member('p', 5939, { role: 'primary', state: 'running' })), { lease: leaderLease });
    expect(decide(await observe(), settings, memory)).toMatchObject({
      row: 'follow', actions: [{ do: 'renew-lease' }, { do: 'publish-member' }, { do: 'follow-leader', leader: 'p', address: '127.0.0.1:5939' }],
    });
  });

  it('a postmaster that answers nothing (SIGSTOP): running, not answering, within the bound', async () => {
    const pid = Number(readFileSync(join(dir, `n${P}`, 'postmaster.pid'), 'utf8').split('\n')[0]);
    process.kill(pid, 'SIGSTOP');
    try {
      const o = await observeLocal(local(P));
      expect(o).toMatchObject({ running: true, pgdata: { kind: 'cluster' }, notAnswering: expect.stringMatching(/^no answer within 2 s/) });
      expect(o.inRecovery).toBeUndefined();
    } finally {
      process.kill(pid, 'SIGCONT');
    }
    expect((await observeLocal(local(P))).inRecovery).toBe(false);
  });

  it('the primary stopped cleanly: down, and its shutdown checkpoint ends where its standby received to', async () => {
    const p = nodes.shift()!;
    await p.stop('SIGINT');
    const o = await observeLocal(local(P));
    expect(o).toMatchObject({ running: false, timeline: 1, pgdata: { kind: 'cluster', standby: false, state: 'shut down' } });
    const received = (await observeLocal(local(S))).receivedLsn;
    expect(o.shutdownEnd).toBeDefined();
    expect(o.shutdownEnd).toBe(received);
  });

  it('a stopped standby: running false, PGDATA\'s kind and timeline', async () => {
    const s = nodes.pop()!;
    await s.stop('SIGINT');
    const o = await observeLocal(local(S));
    expect(o).toMatchObject({ running: false, timeline: 1, replication: [], pgdata: { kind: 'cluster', standby: true, state: 'shut down in recovery' } });
    expect(o.inRecovery).toBeUndefined();
    expect(o.receivedLsn).toBeUndefined();
    expect(o.shutdownEnd).toBeUndefined(); // a standby's: it wrote nothing of its own
    // And no PGDATA at all: nothing to ask.
    expect(await observeLocal({ ...local(P), pgdata: join(dir, 'none') })).toMatchObject({ running: false, pgdata: { kind: 'missing' } });
  });
});

describe('observe: a standby whose upstream was promoted, then lost', () => {
  const A = 5933; // primary, then gone
  const B = 5934; // its standby, promoted
  const C = 5935; // B's standby: follows B onto the new timeline

  it('reports the timeline it replays (the newest it holds a history of), not its last restartpoint\'s', async () => {
    const a = new TestNode(nodeOpts(A));
    nodes.push(a);
    await a.ready();
    const b = new TestNode(nodeOpts(B, standbyOf(A)));
    nodes.push(b);
    await b.ready();
    const c = new TestNode(nodeOpts(C, standbyOf(B)));
    nodes.push(c);
    await c.ready();
    await waitFor('C streaming from B', async () => (await observeLocal(local(C))).walReceiver?.status === 'streaming');
    await a.stop('SIGINT');
    await query(B, 'SELECT pg_promote(true, 60)');
    await query(B, 'CREATE TABLE after_promotion AS SELECT 1 AS x');
    await waitFor('C streaming timeline 2 from B', async () => (await observeLocal(local(C))).timeline === 2);
    // B goes away: C's walreceiver stops, and its last restartpoint is still on timeline 1.
    await b.stop('SIGINT');
    const o = await waitFor('C without its walreceiver', async () => {
      const x = await observeLocal(local(C));
      return x.walReceiver?.status !== 'streaming' ? x : undefined;
    });
    expect(o).toMatchObject({ running: true, inRecovery: true, timeline: 2 });
  });
});

describe('observe: etcd faults', () => {
  // Killing raft's leader would start an election, during which a read fails fast (decide.ts
  // retries at once): the read itself is what is shown here, so a follower goes.
  let killed: number;
  it('one member of three killed: the read is served by the others', async () => {
    const leader = await etcd.waitForLeader();
    killed = leader === 0 ? 1 : 0; // member 0 is the first endpoint the client tries, when it is not the leader
    await etcd.kill(killed);
    const o = await observeKeys(client, PREFIX);
    expect(o).toMatchObject({ ok: true, keys: { initialize: expect.stringMatching(/^\d+$/) } }); // not on a lease: still there
  });

  it('quorum lost: the observation says etcd did not answer, within the call\'s bound (no hang)', async () => {
    await etcd.kill(killed === 2 ? 1 : 2);
    const hung = new Promise<'hung'>((r) => setTimeout(() => r('hung'), 10 * TIMEOUT_MS).unref());
    const o = await Promise.race([observeKeys(client, PREFIX), hung]);
    expect(o).not.toBe('hung');
    if (o === 'hung' || o.ok) throw new Error(`expected a failed read, got ${JSON.stringify(o)}`);
    expect(['no-leader', 'timeout', 'unavailable']).toContain(o.kind);
    expect(o.error).toMatch(/^etcd \/v3\/kv\/range: /);
    // decide() has its row for it: nothing changes for a node that did not lead.
    const d = decide(
      { now: 0, wallNow: Date.now(), etcd: o, local: await observeLocal(local(P)), stopping: false },
      { name: 'p', instance: 'me', nofailover: false, maxLagOnFailover: 0, syncStandbys: 0, hint: undefined, reclone: 'never', slots: true, timing: HA_TIMING_DEFAULTS },
      { startedAt: 0, ledAtLastRead: false, published: false },
    );
    expect(d).toMatchObject({ row: 'etcd unreachable', say: expect.stringMatching(/^etcd did not answer \(etcd \/v3\/kv\/range: .*\): nothing changes here/) });
  });
});
