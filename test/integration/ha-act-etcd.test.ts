/**
 * src/ha/act-etcd.ts (the etcd half of the HA agent's act layer) against a real 3-member etcd
 * cluster (Debian's etcd-server) on 127.0.0.1:2431-2436; a proxy that swallows answers on 2437.
 * Several agents are several contexts (each its own client, lease and memory) acting at once on
 * the same keys; each case uses a prefix of its own. The member-killed case comes last.
 */
import net from 'node:net';
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EtcdClient } from '../../src/etcd/index.js';
import {
  appendHistory, claimInitialize, grantLease, publishMember, raceInitialize, releaseLeaderKey, renewLease, revokeLease, setInitialize,
  takeLeaderKey, updateSyncKey, type EtcdActContext, type EtcdActResult,
} from '../../src/ha/act-etcd.js';
import { decodeKeys, haKeys } from '../../src/ha/keys.js';
import type { HistoryEntry, MemberKey } from '../../src/ha/types.js';
import { waitFor } from '../support/cluster.js';
import { EtcdCluster } from '../support/etcd-cluster.js';

const TIMEOUT_MS = 2000;
const PROXY_PORT = 2437;
let etcd: EtcdCluster;
const clients: EtcdClient[] = [];
let prefixes = 0;

function client(endpoints = etcd.endpoints, timeoutMs = TIMEOUT_MS): EtcdClient {
  const c = new EtcdClient({ endpoints, timeoutMs });
  clients.push(c);
  return c;
}

/** A fresh cluster prefix, so that no case sees another's keys. */
const freshPrefix = () => `/pgrepl/act${++prefixes}-${Date.now()}/`;

/** One agent: its own client, lease and memory, on `prefix`. */
function agent(prefix: string, name: string, options: { ttl?: number; endpoints?: string[] } = {}): EtcdActContext {
  return { etcd: client(options.endpoints), keys: haKeys(prefix), name, instance: randomUUID(), ttl: options.ttl ?? 10, memory: {}, now: () => performance.now() };
}

const member = (a: EtcdActContext): MemberKey => ({ name: a.name, instance: a.instance, address: `127.0.0.1:${5400}`, api: '127.0.0.1:8008', role: 'standby', state: 'running', nofailover: false });

async function ok(p: Promise<EtcdActResult>): Promise<EtcdActResult> {
  const r = await p;
  expect(r, JSON.stringify(r)).toMatchObject({ ok: true });
  return r;
}

/** What a reader (a third client) sees under the prefix. */
async function keysOf(prefix: string) {
  const names = haKeys(prefix);
  const read = await client().range(names.prefix, { prefix: true });
  return decodeKeys(names, read.kvs, read.revision).keys;
}

const isLost = (r: EtcdActResult) => !r.ok && 'lost' in r;

beforeAll(async () => {
  etcd = await EtcdCluster.start({ basePort: 2431 });
});

afterAll(async () => {
  for (const c of clients) c.close();
  await etcd?.stopAll();
});

describe('etcd actions of the HA agent', () => {
  it('two agents race-initialize at once: exactly one wins, every round; initialize and leader are on the winner\'s lease', async () => {
    for (let round = 0; round < 20; round++) {
      const prefix = freshPrefix();
      const [a, b] = [agent(prefix, 'n1'), agent(prefix, 'n2')];
      await Promise.all([ok(grantLease(a)), ok(grantLease(b))]);
      const results = await Promise.all([raceInitialize(a), raceInitialize(b)]);
      const winners = results.filter((r) => r.ok);
      expect(winners, JSON.stringify(results)).toHaveLength(1);
      expect(results.filter(isLost)).toHaveLength(1);
      const winner = results[0]!.ok ? a : b;
      const keys = await keysOf(prefix);
      expect(keys.initialize).toBe('');
      expect(keys.leader).toEqual({ name: winner.name, lease: winner.memory.lease!.id });
      const init = await client().get(haKeys(prefix).initialize);
      expect(init?.lease).toBe(winner.memory.lease!.id);
      await Promise.all([revokeLease(a), revokeLease(b)]);
    }
  });

  it('take-leader-key race: one wins; release by the loser does nothing; the winner records initialize and sync only while it leads', async () => {
    const prefix = freshPrefix();
    const agents = ['n1', 'n2', 'n3'].map((n) => agent(prefix, n));
    await Promise.all(agents.map((a) => ok(grantLease(a))));
    const results = await Promise.all(agents.map((a) => takeLeaderKey(a)));
    expect(results.filter((r) => r.ok), JSON.stringify(results)).toHaveLength(1);
    expect(results.filter(isLost)).toHaveLength(2);
    const winner = agents[results.findIndex((r) => r.ok)]!;
    const losers = agents.filter((a) => a !== winner);

    for (const l of losers) await ok(releaseLeaderKey(l));
    expect((await keysOf(prefix)).leader).toEqual({ name: winner.name, lease: winner.memory.lease!.id });

    expect(isLost(await setInitialize(losers[0]!, '7312345678901234567'))).toBe(true);
    expect(isLost(await updateSyncKey(losers[0]!, ['n9']))).toBe(true);
    await ok(setInitialize(winner, '7312345678901234567'));
    await ok(updateSyncKey(winner, losers.map((l) => l.name)));
    const keys = await keysOf(prefix);
    expect(keys.initialize).toBe('7312345678901234567');
    expect(keys.sync).toEqual({ leader: winner.name, standbys: losers.map((l) => l.name) });
    expect((await client().get(haKeys(prefix).initialize))?.lease).toBeUndefined(); // recorded for good, on no lease

    await ok(releaseLeaderKey(winner));
    expect((await keysOf(prefix)).leader).toBeUndefined();
    await Promise.all(agents.map((a) => revokeLease(a)));
  });

  it('claim-initialize: created if absent; the same system again is fine; another system is lost', async () => {
    const prefix = freshPrefix();
    const [a, b] = [agent(prefix, 'n1'), agent(prefix, 'n2')];
    await ok(claimInitialize(a, '111'));
    await ok(claimInitialize(a, '111'));
    expect(isLost(await claimInitialize(b, '222'))).toBe(true);
    expect((await keysOf(prefix)).initialize).toBe('111');
  });

  it('the winner stops renewing: its lease expires, the leader key goes, the other takes it; renew-lease then reports expired', async () => {
    const prefix = freshPrefix();
    const [a, b] = [agent(prefix, 'n1', { ttl: 2 }), agent(prefix, 'n2', { ttl: 2 })];
    await Promise.all([ok(grantLease(a)), ok(grantLease(b))]);
    await ok(takeLeaderKey(a));
    expect(isLost(await takeLeaderKey(b))).toBe(true);

    // b keeps its lease alive; a does not renew.
    await waitFor('the leader key gone with a\'s lease', async () => {
      await ok(renewLease(b));
      return (await keysOf(prefix)).leader === undefined;
    }, 20_000);
    await ok(takeLeaderKey(b));
    expect((await keysOf(prefix)).leader).toEqual({ name: 'n2', lease: b.memory.lease!.id });

    const expired = await renewLease(a);
    expect(expired).toMatchObject({ ok: false, expired: true });
    expect(a.memory.lease).toBeUndefined();
    // The old leader releasing now must not delete b's key (a holds no lease any more, then a new one).
    await ok(releaseLeaderKey(a));
    await ok(grantLease(a));
    await ok(releaseLeaderKey(a));
    expect((await keysOf(prefix)).leader?.name).toBe('n2');
    await Promise.all([revokeLease(a), revokeLease(b)]);
  });

  it('renew-lease records when the renewal was SENT, not when it was answered', async () => {
    const a = agent(freshPrefix(), 'n1');
    let clock = 1000;
    a.now = () => clock;
    await ok(grantLease(a));
    expect(a.memory.lease!.lastRenewalSentAt).toBe(1000);
    clock = 5000;
    const renewing = renewLease(a);
    clock = 9000; // the answer arrives "later"
    await ok(renewing);
    expect(a.memory.lease!.lastRenewalSentAt).toBe(5000);
    await revokeLease(a);
    expect(a.memory.lease).toBeUndefined();
  });

  it('publish-member: created, rewritten by the same instance, and a second agent of the same name is reported, not overwriting', async () => {
    const prefix = freshPrefix();
    const a = agent(prefix, 'n1');
    const twin = agent(prefix, 'n1');
    await Promise.all([ok(grantLease(a)), ok(grantLease(twin))]);
    await ok(publishMember(a, member(a)));
    await ok(publishMember(a, { ...member(a), state: 'streaming' }));
    const conflict = await publishMember(twin, member(twin));
    expect(conflict).toMatchObject({ ok: false, lost: true });
    expect(JSON.stringify(conflict)).toContain(a.instance);
    const keys = await keysOf(prefix);
    expect(keys.members).toHaveLength(1);
    expect(keys.members[0]).toMatchObject({ instance: a.instance, state: 'streaming' });
    expect((await client().get(haKeys(prefix).member('n1')))?.lease).toBe(a.memory.lease!.id);
    await Promise.all([revokeLease(a), revokeLease(twin)]);
  });

  it('append-history under concurrent appends keeps every entry; entries it cannot read are kept', async () => {
    const prefix = freshPrefix();
    const names = haKeys(prefix);
    const foreign = { note: 'written by a newer agent' };
    await client().put(names.history, JSON.stringify([foreign]));
    const agents = ['n1', 'n2', 'n3'].map((n) => agent(prefix, n));
    const entry = (a: EtcdActContext, i: number): HistoryEntry => ({ timeline: i + 2, lsn: `0/${(i + 1) * 1000}`, leader: a.name, at: new Date().toISOString(), why: `round ${i}` });
    for (let i = 0; i < 3; i++) await Promise.all(agents.map((a) => ok(appendHistory(a, entry(a, i)))));
    const raw = JSON.parse((await client().get(names.history))!.value) as unknown[];
    expect(raw).toHaveLength(10);
    expect(raw[0]).toEqual(foreign);
    for (const a of agents) for (let i = 0; i < 3; i++) expect(raw).toContainEqual(expect.objectContaining({ leader: a.name, timeline: i + 2, why: `round ${i}` }));
    // Appending the entry already last (an earlier attempt applied without its answer) adds nothing.
    await ok(appendHistory(agents[0]!, raw[9] as HistoryEntry));
    expect(JSON.parse((await client().get(names.history))!.value)).toHaveLength(10);
  });

  it('a write applied without its answer: race-initialize and take-leader-key read back and know they won', { timeout: 30_000 }, async () => {
    // A proxy to member 0 that passes requests but swallows every answer on its first connection.
    let connections = 0;
    const sockets = new Set<net.Socket>();
    const proxy = net.createServer((down) => {
      const up = net.connect(Number(new URL(etcd.endpoint(0)).port), '127.0.0.1');
      sockets.add(down).add(up);
      const swallow = ++connections === 1;
      down.pipe(up);
      if (swallow) up.on('data', () => {});
      else up.pipe(down);
      const end = () => (down.destroy(), up.destroy());
      down.on('error', end).on('close', end);
      up.on('error', end).on('close', end);
    });
    await new Promise<void>((r) => proxy.listen(PROXY_PORT, '127.0.0.1', () => r()));
    try {
      for (const [what, act] of [['race-initialize', raceInitialize], ['take-leader-key', takeLeaderKey]] as const) {
        connections = 0;
        const prefix = freshPrefix();
        const a = agent(prefix, 'n1');
        a.etcd = client([`http://127.0.0.1:${PROXY_PORT}`], 1000);
        a.memory.lease = { id: (await client().leaseGrant(10)).id, lastRenewalSentAt: 0 };
        const r = await act(a);
        expect(r, `${what}: ${JSON.stringify(r)}`).toMatchObject({ ok: true });
        expect(connections).toBeGreaterThan(1); // the first answer was swallowed: it read back
        expect((await keysOf(prefix)).leader).toEqual({ name: 'n1', lease: a.memory.lease.id });
        // And another node, trying after, loses.
        const b = agent(prefix, 'n2');
        await ok(grantLease(b));
        expect(isLost(await act(b))).toBe(true);
      }
    } finally {
      for (const s of sockets) s.destroy(); // keep-alive connections would hold close() open
      await new Promise((r) => proxy.close(r));
    }
  });

  it('one etcd member killed: every action still works', async () => {
    // A follower, so that no election is under way (riding one out is the renewal's untilDeadline,
    // tested with the client), and the member each agent tries first.
    const gone = ((await etcd.waitForLeader()) + 1) % 3;
    await etcd.kill(gone);
    const endpoints = [gone, (gone + 1) % 3, (gone + 2) % 3].map((i) => etcd.endpoint(i));
    const prefix = freshPrefix();
    const [a, b] = [agent(prefix, 'n1', { endpoints }), agent(prefix, 'n2', { endpoints })];
    await Promise.all([ok(grantLease(a)), ok(grantLease(b))]);
    await Promise.all([ok(publishMember(a, member(a))), ok(publishMember(b, member(b)))]);
    const race = await Promise.all([raceInitialize(a), raceInitialize(b)]);
    expect(race.filter((r) => r.ok), JSON.stringify(race)).toHaveLength(1);
    const [winner, loser] = race[0]!.ok ? [a, b] : [b, a];
    await ok(renewLease(winner));
    await ok(setInitialize(winner, '42'));
    await ok(updateSyncKey(winner, [loser.name]));
    await ok(appendHistory(winner, { timeline: 2, lsn: '0/3000000', leader: winner.name, at: new Date().toISOString(), why: 'test' }));
    await ok(releaseLeaderKey(winner));
    await ok(takeLeaderKey(loser));
    const keys = await keysOf(prefix);
    expect(keys).toMatchObject({ initialize: '42', leader: { name: loser.name }, sync: { leader: winner.name }, history: [{ timeline: 2 }] });
    expect(keys.members.map((m) => m.name)).toEqual(['n1', 'n2']);
    await Promise.all([ok(revokeLease(a)), ok(revokeLease(b))]);
    expect((await keysOf(prefix)).leader).toBeUndefined();
  });
});
