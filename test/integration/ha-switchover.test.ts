/**
 * `pgrepl switchover` and `pgrepl failover` through the bundle against a real 1-member etcd
 * (127.0.0.1:2441-2442) and real agent APIs (startApi, 127.0.0.1:6101-6102; nothing listens on
 * 6109; no etcd on 2449). The keys are written with our client in keys.ts's layout. Every refusal is one line,
 * exit 1, and writes nothing; a request that passes is written exactly as decide.ts reads it
 * (decoded with keys.ts) and refuses a second one. The agents are not part of this file: where
 * the command waits for them, the test does what the agents would (moves the leader key, clears
 * the request, serves /primary) and the command must see it; the whole handover with real agents
 * is the HA suite's.
 */
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { EtcdClient } from '../../src/etcd/index.js';
import { startApi, type ApiSnapshot, type HaApi } from '../../src/ha/api.js';
import { decodeSwitchover, encodeHistory, encodeInitialize, encodeLeader, encodeMember, encodePause, encodeSwitchover, encodeSync, haKeys } from '../../src/ha/keys.js';
import type { HistoryEntry, MemberKey, SwitchoverRequest } from '../../src/ha/types.js';
import { EtcdCluster } from '../support/etcd-cluster.js';
import { eventually, removeScratch, runCommand, scratchDir, type RunResult } from '../support/node.js';

const ETCD_BASE = 2441;
const API_N2 = 6101;
const API_N3 = 6102;
const API_NOBODY = 6109;
const CLUSTER = 'swo';
const K = haKeys(`/pgrepl/${CLUSTER}/`);
const NOTHING = 'nothing written';

let etcd: EtcdCluster;
let client: EtcdClient;
let dir: string;
let lease: string;
let apis: HaApi[] = [];

const run = (args: string[], env: Record<string, string | undefined> = {}): Promise<RunResult> =>
  runCommand({ pgdata: join(dir, 'pgdata'), port: 5999, env: { PGREPL_ETCD_ENDPOINTS: etcd.endpoints.join(','), PGREPL_CLUSTER: CLUSTER, PGREPL_RETRY_TIMEOUT: '1', ...env } }, args);

/** The one fatal line's message, checking it is the only output on stderr. */
function fatal(r: RunResult): string {
  const lines = r.stderr.trim().split('\n');
  expect(lines).toHaveLength(1);
  return JSON.parse(lines[0]!).msg as string;
}

/** A refusal: exit 1 (or `code`), one line, nothing on stdout, and no request in etcd afterwards. */
async function refused(r: RunResult, code = 1): Promise<string> {
  expect(r.code).toBe(code);
  expect(r.stdout).toBe('');
  expect(await client.get(K.switchover)).toBeUndefined();
  return fatal(r);
}

const member = (name: string, over: Partial<MemberKey> = {}): MemberKey => ({
  name, instance: `i-${name}`, address: `127.0.0.1:500${name.slice(1)}`, api: `127.0.0.1:${API_NOBODY}`,
  role: 'standby', state: 'streaming', timeline: 3, nofailover: false, receivedLsn: '0/5000000', replayedLsn: '0/5000000', ...over,
});
const n1 = member('n1', { role: 'primary', state: 'running', writeLsn: '0/5000100', receivedLsn: undefined, replayedLsn: undefined });
const n2 = member('n2', { api: `127.0.0.1:${API_N2}`, receivedLsn: '0/5000060', replayedLsn: '0/5000060' });
const n3 = member('n3', { api: `127.0.0.1:${API_N3}` });
const HISTORY: HistoryEntry[] = [{ timeline: 3, lsn: '0/4000000', leader: 'n1', at: '2024-05-01T12:00:00.000Z', why: 'no leader; n1 was the healthiest' }];

interface Cluster {
  leader?: string;
  members?: MemberKey[];
  sync?: string[];
  pause?: boolean;
  switchover?: SwitchoverRequest;
}

/** Replaces every key of the cluster with these (the leader key and member keys on one lease, as agents write them). */
async function keys(c: Cluster): Promise<void> {
  await client.delete(K.prefix, { prefix: true });
  await client.put(K.initialize, encodeInitialize('7000000000000000001'));
  await client.put(K.history, encodeHistory(HISTORY));
  if (c.leader) await client.put(K.leader, encodeLeader(c.leader), { lease });
  for (const m of c.members ?? [n1, n2, n3]) await client.put(K.member(m.name), encodeMember(m), { lease });
  if (c.sync) await client.put(K.sync, encodeSync({ leader: c.leader ?? 'n1', standbys: c.sync }));
  if (c.pause) await client.put(K.pause, encodePause(new Date()));
  if (c.switchover) await client.put(K.switchover, encodeSwitchover(c.switchover));
}

/** The request in etcd, decoded as decide.ts's observation decodes it. */
async function request(): Promise<SwitchoverRequest | undefined> {
  const kv = await client.get(K.switchover);
  if (!kv) return undefined;
  const d = decodeSwitchover(kv.value);
  if (!d.ok) throw new Error(`the request written is not one decide.ts reads: ${d.why}`);
  return d.value;
}

/** An agent's API: a standby's snapshot (/primary 503) until it leads. */
const standbySnapshot = (name: string): ApiSnapshot => ({
  name, holdsLeaderKey: false, loopAt: 0,
  postgres: { running: true, inRecovery: true, timeline: 3, streamingFromLeader: true, receivedLsn: '0/5000060', replayedLsn: '0/5000060' },
});
const leaderSnapshot = (name: string): ApiSnapshot => ({
  name, holdsLeaderKey: true, leaseDeadline: Number.MAX_SAFE_INTEGER, loopAt: 0,
  postgres: { running: true, inRecovery: false, timeline: 4, streamingFromLeader: false, writeLsn: '0/6000000' },
});

/** What the agents do once the request is there: the old leader lets go, `to` takes the key (and clears the request), and leads. */
async function agentsHandOver(to: string, api: HaApi): Promise<void> {
  await eventually(async () => expect(await client.get(K.switchover)).toBeDefined(), 20_000);
  await client.delete(K.leader);
  await client.put(K.leader, encodeLeader(to), { lease });
  await client.delete(K.switchover);
  api.update(leaderSnapshot(to));
}

beforeAll(async () => {
  dir = scratchDir();
  etcd = await EtcdCluster.start({ basePort: ETCD_BASE, members: 1 });
  client = new EtcdClient({ endpoints: etcd.endpoints, timeoutMs: 2000 });
  lease = (await client.leaseGrant(600)).id;
});

afterAll(async () => {
  client?.close();
  await etcd?.stopAll();
  if (dir) removeScratch(dir);
});

beforeEach(async () => {
  apis = [
    await startApi({ host: '127.0.0.1', port: API_N2, ttl: 10, now: () => 0, snapshot: standbySnapshot('n2'), position: async () => ({ received: '0/5000060', timeline: 3 }) }),
    await startApi({ host: '127.0.0.1', port: API_N3, ttl: 10, now: () => 0, snapshot: standbySnapshot('n3') }),
  ];
});

afterEach(async () => {
  await Promise.all(apis.map((a) => a.close()));
});

describe('pgrepl switchover: refusals (one line, exit 1, nothing written)', () => {
  it('no leader: names pgrepl failover', async () => {
    await keys({});
    expect(await refused(await run(['switchover', '--to', 'n2']))).toBe(
      `cluster ${CLUSTER} has no leader: there is nothing to switch over from; pgrepl failover --to NODE makes NODE the leader (it may lose data); ${NOTHING}`);
  });

  it('paused', async () => {
    await keys({ leader: 'n1', pause: true });
    expect(await refused(await run(['switchover', '--to', 'n2']))).toBe(
      `cluster ${CLUSTER} is paused: the agents carry out no switchover or failover while paused; run pgrepl resume first; ${NOTHING}`);
  });

  it('--to a name that is no member, the leader itself, nofailover, no cluster, a stopped standby, another timeline', async () => {
    await keys({
      leader: 'n1',
      members: [n1, n2, member('n3', { nofailover: true }), member('n4', { role: 'none', state: 'stopped', timeline: undefined }), member('n5', { state: 'stopped' }), member('n6', { timeline: 2 }), member('n7', { role: 'primary', state: 'running' })],
    });
    const rows: [string, string][] = [
      ['n9', `n9 is not a member of cluster ${CLUSTER} (no member key; members: n1, n2, n3, n4, n5, n6, n7)`],
      ['n1', 'n1 is the leader already'],
      ['n3', 'n3 has PGREPL_NOFAILOVER=on: it never becomes the primary'],
      ['n4', 'n4 holds no cluster yet (cloning, or waiting to clone)'],
      ['n5', 'n5 is not a running standby (role standby, state stopped)'],
      ['n6', 'n6 is on timeline 2, the leader n1 on timeline 3: it must follow the leader first'],
      ['n7', 'n7 is not a running standby (role primary, state running)'],
    ];
    for (const [to, why] of rows) expect([to, await refused(await run(['switchover', '--to', to]))]).toEqual([to, `${why}; ${NOTHING}`]);
  });

  it('synchronous mode (a sync key naming standbys): --to a standby not in it', async () => {
    await keys({ leader: 'n1', sync: ['n3'] });
    expect(await refused(await run(['switchover', '--to', 'n2']))).toBe(
      `n2 is not a synchronous standby (sync: n3): in synchronous mode only those hold every acknowledged commit; ${NOTHING}`);
  });

  it('no --to and no member qualifies: each one\'s reason', async () => {
    await keys({ leader: 'n1', members: [n1, member('n2', { nofailover: true }), member('n3', { state: 'stopped' })] });
    expect(await refused(await run(['switchover']))).toBe(
      `no member may take over from n1: n2 has PGREPL_NOFAILOVER=on: it never becomes the primary; n3 is not a running standby (role standby, state stopped); ${NOTHING}`);
    await keys({ leader: 'n1', members: [n1] });
    expect(await refused(await run(['switchover']))).toBe(`no member may take over from n1: n1 is the only member; ${NOTHING}`);
  });

  it('a request already pending: refused, and the pending one is left as it was', async () => {
    await keys({ leader: 'n1', switchover: { from: 'n1', to: 'n3' } });
    const before = await client.get(K.switchover);
    const r = await run(['switchover', '--to', 'n2']);
    expect([r.code, r.stdout]).toEqual([1, '']);
    expect(fatal(r)).toBe(`a switchover from n1 to n3 is already pending: wait for it (pgrepl list shows it), or withdraw it with etcdctl del ${K.switchover}; ${NOTHING}`);
    expect((await client.get(K.switchover))!.modRevision).toBe(before!.modRevision);
  });

  it('usage errors: 64', async () => {
    await keys({ leader: 'n1' });
    expect(await refused(await run(['switchover', '--wait', '0']), 64)).toBe('--wait 0 is not a number of seconds (more than 0); usage: pgrepl switchover [--to NODE] [--wait SECONDS]');
    expect(await refused(await run(['switchover', 'n2']), 64)).toBe('unexpected argument "n2"; usage: pgrepl switchover [--to NODE] [--wait SECONDS]');
  });
});

describe('both commands: not HA mode, etcd not answering', () => {
  it('without PGREPL_ETCD_ENDPOINTS: names it; etcd refusing: one line naming PGREPL_ETCD_ENDPOINTS; exit 1 and nothing written', async () => {
    await keys({ leader: 'n1' });
    for (const args of [['switchover'], ['failover', '--to', 'n2']]) {
      const noHa = await run(args, { PGREPL_ETCD_ENDPOINTS: undefined, PGREPL_CLUSTER: undefined, PGREPL_RETRY_TIMEOUT: undefined });
      expect(await refused(noHa)).toBe(`pgrepl ${args[0]} needs HA mode: set PGREPL_ETCD_ENDPOINTS to the etcd the nodes use (e.g. PGREPL_ETCD_ENDPOINTS=http://etcd1:2379), with the same PGREPL_CLUSTER`);
      const down = await run(args, { PGREPL_ETCD_ENDPOINTS: 'http://127.0.0.1:2449' });
      expect(await refused(down)).toMatch(/^etcd at PGREPL_ETCD_ENDPOINTS=http:\/\/127\.0\.0\.1:2449 did not answer: .*ECONNREFUSED.*; check that etcd runs and this host reaches it$/);
    }
  });
});

describe('pgrepl switchover: the request and the wait', () => {
  it('writes {from, to} as decide.ts reads it; with no agent acting, says where it stands after --wait and leaves the request; a second request is refused', async () => {
    await keys({ leader: 'n1' });
    const r = await run(['switchover', '--to', 'n2', '--wait', '1']);
    expect([r.code, r.stdout]).toEqual([1, '']);
    expect(fatal(r)).toBe('switchover from n1 to n2 not done after 1 s: n1 still leads and has not handed over; the request is pending (is its agent running? see n1\'s log); the request is left in place (pgrepl list shows it)');
    expect(await request()).toEqual({ from: 'n1', to: 'n2' });

    const second = await run(['switchover', '--to', 'n3']);
    expect(second.code).toBe(1);
    expect(fatal(second)).toBe(`a switchover from n1 to n2 is already pending: wait for it (pgrepl list shows it), or withdraw it with etcdctl del ${K.switchover}; ${NOTHING}`);
    expect(await request()).toEqual({ from: 'n1', to: 'n2' });
  });

  it('without --to: {from} only (the leader picks the best candidate)', async () => {
    await keys({ leader: 'n1', members: [n1, n2, member('n3', { nofailover: true })] });
    const r = await run(['switchover', '--wait', '0.5']);
    expect(r.code).toBe(1);
    expect(await request()).toEqual({ from: 'n1' });
  });

  it('returns once the new leader answers 200 on /primary', async () => {
    await keys({ leader: 'n1' });
    const [r] = await Promise.all([run(['switchover', '--to', 'n2', '--wait', '30']), agentsHandOver('n2', apis[0]!)]);
    expect(r).toMatchObject({ code: 0, stderr: '' });
    expect(r.stdout).toMatch(/^n2 is the primary now \(switchover from n1, took \d+\.\d s\)\n$/);
  });

  it('the leader key moved but the new leader\'s API does not say /primary yet: not done, and says so', async () => {
    await keys({ leader: 'n1' });
    const moved = (async () => {
      await eventually(async () => expect(await client.get(K.switchover)).toBeDefined(), 20_000);
      await client.delete(K.switchover);
      await client.put(K.leader, encodeLeader('n2'), { lease });
    })();
    const [r] = await Promise.all([run(['switchover', '--to', 'n2', '--wait', '2']), moved]);
    expect(r.code).toBe(1);
    expect(fatal(r)).toBe(`switchover from n1 to n2 not done after 2 s: n2 holds the leader key but its API at 127.0.0.1:${API_N2} does not answer 200 on /primary yet (HTTP 503); the request is no longer pending`);
  });

  it('the leader clears the request and keeps the key: refused, naming its log', async () => {
    await keys({ leader: 'n1' });
    const leaderRefuses = (async () => {
      await eventually(async () => expect(await client.get(K.switchover)).toBeDefined(), 20_000);
      await client.delete(K.switchover);
    })();
    const [r] = await Promise.all([run(['switchover', '--to', 'n2', '--wait', '30']), leaderRefuses]);
    expect([r.code, r.stdout]).toEqual([1, '']);
    expect(fatal(r)).toBe('n1 refused the switchover to n2 and stays the leader (a leader clears a request it cannot carry out: the candidate not ready, or nobody received its shutdown checkpoint); n1\'s log says why');
  });
});

describe('pgrepl failover --to NODE', () => {
  it('refusals: a leader exists (names switchover), not a member, no cluster, nofailover, paused, pending, no --to', async () => {
    await keys({ leader: 'n1' });
    expect(await refused(await run(['failover', '--to', 'n2']))).toBe(
      `n1 leads cluster ${CLUSTER}: failover is for a cluster without a leader; pgrepl switchover --to n2 hands over without losing anything; ${NOTHING}`);
    await keys({ members: [n2, member('n3', { nofailover: true }), member('n4', { role: 'none', state: 'stopped' })] });
    expect(await refused(await run(['failover', '--to', 'n9']))).toBe(`n9 is not a member of cluster ${CLUSTER} (no member key; members: n2, n3, n4); ${NOTHING}`);
    expect(await refused(await run(['failover', '--to', 'n3']))).toBe(`n3 has PGREPL_NOFAILOVER=on: it never becomes the primary; ${NOTHING}`);
    expect(await refused(await run(['failover', '--to', 'n4']))).toBe(`n4 holds no cluster yet (cloning, or waiting to clone); ${NOTHING}`);
    await keys({ pause: true });
    expect(await refused(await run(['failover', '--to', 'n2']))).toBe(
      `cluster ${CLUSTER} is paused: the agents carry out no switchover or failover while paused; run pgrepl resume first; ${NOTHING}`);
    expect(await refused(await run(['failover']), 64)).toBe('failover needs --to NODE (the member to make the leader); usage: pgrepl failover --to NODE [--wait SECONDS]');
    await keys({ switchover: { to: 'n3' } });
    const pending = await run(['failover', '--to', 'n2']);
    expect([pending.code, pending.stdout]).toEqual([1, '']);
    expect(fatal(pending)).toBe(`a failover to n3 is already pending: wait for it (pgrepl list shows it), or withdraw it with etcdctl del ${K.switchover}; ${NOTHING}`);
  });

  it('says how much may be lost (NODE asked live; the last primary position from the keys), writes {to}, returns once NODE is the primary', async () => {
    // n1 (the old primary) published 0/5000100 before it died; n2 has received up to 0/5000060.
    await keys({ members: [{ ...n1, state: 'stopped' }, n2, n3] });
    const [r] = await Promise.all([run(['failover', '--to', 'n2', '--wait', '30']), (async () => {
      await eventually(async () => expect(await request()).toEqual({ to: 'n2' }), 20_000);
      await agentsHandOver('n2', apis[0]!);
    })()]);
    expect(r).toMatchObject({ code: 0, stderr: '' });
    const lines = r.stdout.split('\n');
    expect(lines[0]).toBe('n2 has received up to 0/5000060; the last known primary position was 0/5000100: up to 160 bytes of acknowledged WAL may be lost');
    expect(lines[1]).toMatch(/^n2 is the primary now \(failover, took \d+\.\d s\)$/);
  });

  it('NODE\'s API does not answer: says so and uses its last published position; nothing lost when nothing known was further', async () => {
    await keys({ members: [member('n2', { api: `127.0.0.1:${API_NOBODY}`, receivedLsn: '0/5000000' }), member('n3', { receivedLsn: '0/4800000', replayedLsn: '0/4800000' })] });
    const r = await run(['failover', '--to', 'n2', '--wait', '0.5']);
    expect(r.stdout).toBe(`n2 did not answer on its API (127.0.0.1:${API_NOBODY}: ECONNREFUSED); it last published 0/5000000; the last known primary position was 0/4800000: nothing known to be lost\n`);
    expect(r.code).toBe(1);
    expect(fatal(r)).toBe('failover to n2 not done after 0.5 s: no leader yet; n2 has not taken it (see n2\'s log); the request is left in place (pgrepl list shows it)');
    expect(await request()).toEqual({ to: 'n2' });
  });

  it('the request withdrawn before anyone took the lead: says so, exit 1', async () => {
    await keys({});
    const withdrawn = (async () => {
      await eventually(async () => expect(await client.get(K.switchover)).toBeDefined(), 20_000);
      await client.delete(K.switchover);
    })();
    const [r] = await Promise.all([run(['failover', '--to', 'n2', '--wait', '30']), withdrawn]);
    expect(r.code).toBe(1);
    expect(fatal(r)).toBe('the failover to n2 was withdrawn before any node took the lead (cleared by hand, or by a node that refused it); no node leads; see n2\'s log');
  });
});
