/** src/ha/keys.ts: the key layout, each key's value round trip, and garbage reported, not thrown. */
import { describe, expect, it } from 'vitest';
import type { KeyValue } from '../../src/etcd/index.js';
import {
  decodeHistory, decodeInitialize, decodeKeys, decodeLeader, decodeMember, decodeSwitchover, decodeSync, describeProblems,
  encodeHistory, encodeInitialize, encodeLeader, encodeMember, encodePause, encodeSwitchover, encodeSync, haKeys,
} from '../../src/ha/keys.js';
import type { HistoryEntry, MemberKey } from '../../src/ha/types.js';

const K = haKeys('/pgrepl/orders/');
const LEASE = '7587869342718462211'; // beyond Number.MAX_SAFE_INTEGER: a string end to end

const member = (over: Partial<MemberKey> = {}): MemberKey => ({
  name: 'n2', instance: 'a1b2', address: '10.0.0.2:5432', api: '10.0.0.2:8008', role: 'standby', state: 'streaming',
  timeline: 3, receivedLsn: '0/5000060', replayedLsn: '0/5000000', nofailover: false, ...over,
});
const entry = (over: Partial<HistoryEntry> = {}): HistoryEntry => ({
  timeline: 2, lsn: '0/3000148', leader: 'n1', at: '2024-05-01T12:00:00.000Z', why: 'no leader; n1 was the healthiest', ...over,
});

let rev = 10;
const kv = (key: string, value: string, lease?: string): KeyValue => ({
  key, value, bytes: Buffer.from(value), createRevision: String(rev), modRevision: String(rev++), version: '1', ...(lease && { lease }),
});
const problems = (d: { ok: boolean; why?: string }) => (d.ok ? undefined : d.why);

describe('the key layout', () => {
  it('puts every key under /pgrepl/<cluster>/', () => {
    expect(K).toMatchObject({
      prefix: '/pgrepl/orders/', initialize: '/pgrepl/orders/initialize', leader: '/pgrepl/orders/leader', members: '/pgrepl/orders/members/',
      sync: '/pgrepl/orders/sync', history: '/pgrepl/orders/history', switchover: '/pgrepl/orders/switchover', pause: '/pgrepl/orders/pause',
    });
    expect(K.member('n2')).toBe('/pgrepl/orders/members/n2');
    expect(haKeys('/pgrepl/orders').leader).toBe('/pgrepl/orders/leader');
  });
});

describe('initialize', () => {
  it('round trip: a system identifier, and "" while the race winner runs initdb', () => {
    expect(decodeInitialize(encodeInitialize('7312345678901234567'))).toEqual({ ok: true, value: '7312345678901234567' });
    expect(decodeInitialize(encodeInitialize(''))).toEqual({ ok: true, value: '' });
  });
  it('reads bare digits (etcdctl put)', () => {
    expect(decodeInitialize('7312345678901234567')).toEqual({ ok: true, value: '7312345678901234567' });
  });
  it('malformed: not digits, a JSON number (precision lost), an object', () => {
    for (const raw of ['"abc"', '7.3e18', '{"system":"1"}', '"12 34"']) expect(problems(decodeInitialize(raw))).toMatch(/not a system identifier/);
  });
});

describe('leader', () => {
  it('round trip; the lease comes from the key, a key on no lease is "0"', () => {
    expect(decodeLeader(encodeLeader('n1'), LEASE)).toEqual({ ok: true, value: { name: 'n1', lease: LEASE } });
    expect(decodeLeader(encodeLeader('n1'), undefined)).toEqual({ ok: true, value: { name: 'n1', lease: '0' } });
  });
  it('malformed', () => {
    expect(problems(decodeLeader('n1', LEASE))).toMatch(/not JSON/);
    expect(problems(decodeLeader('{"name":""}', LEASE))).toBe('no name');
    expect(problems(decodeLeader('["n1"]', LEASE))).toMatch(/not a JSON object/);
  });
});

describe('members/<name>', () => {
  it('round trip, with and without the optional positions', () => {
    expect(decodeMember(encodeMember(member()), 'n2')).toEqual({ ok: true, value: member() });
    const bare = member({ role: 'none', state: 'stopped', timeline: undefined, receivedLsn: undefined, replayedLsn: undefined });
    const decoded = decodeMember(encodeMember(bare), 'n2');
    expect(decoded).toEqual({ ok: true, value: JSON.parse(encodeMember(bare)) });
    const primary = member({ role: 'primary', state: 'running', writeLsn: '16/B374D848', receivedLsn: undefined, replayedLsn: undefined });
    expect(decodeMember(encodeMember(primary), 'n2')).toEqual({ ok: true, value: JSON.parse(encodeMember(primary)) });
  });
  it("keeps only MemberKey's fields (a newer agent may publish more)", () => {
    expect(decodeMember(JSON.stringify({ ...member(), tags: { zone: 'a' } }), 'n2')).toEqual({ ok: true, value: member() });
  });
  it('upstream (where a streaming standby streams from) is kept; one that is not host:port text is left out, the member kept', () => {
    const cascade = member({ upstream: '10.0.0.3:5432' });
    expect(decodeMember(encodeMember(cascade), 'n2')).toEqual({ ok: true, value: cascade });
    for (const upstream of [5432, '', { host: 'n3' }]) {
      expect(decodeMember(JSON.stringify({ ...member(), upstream }), 'n2')).toEqual({ ok: true, value: member() });
    }
  });
  it('malformed: each bad field named', () => {
    const bad = (over: Record<string, unknown>) => problems(decodeMember(JSON.stringify({ ...member(), ...over }), 'n2'));
    expect(bad({ name: 'n3' })).toBe('name "n3" is not the key\'s name "n2"');
    expect(bad({ instance: undefined })).toBe('no instance');
    expect(bad({ role: 'leader' })).toBe('role "leader" is not primary, standby, none');
    expect(bad({ state: 'up' })).toBe('state "up" is not stopped, running, streaming');
    expect(bad({ timeline: 0 })).toBe('timeline 0 is not a timeline (1 or more)');
    expect(bad({ receivedLsn: '5000060' })).toBe('receivedLsn "5000060" is not a WAL position');
    expect(bad({ nofailover: 'off' })).toBe('nofailover "off" is not true or false');
    expect(problems(decodeMember('{"name":"n2"', 'n2'))).toMatch(/^not JSON/);
    expect(problems(decodeMember('null', 'n2'))).toMatch(/^not a JSON object/);
  });
});

describe('sync', () => {
  it('round trip', () => {
    const s = { leader: 'n1', standbys: ['n2', 'n3'] };
    expect(decodeSync(encodeSync(s))).toEqual({ ok: true, value: s });
    expect(decodeSync(encodeSync({ leader: 'n1', standbys: [] }))).toEqual({ ok: true, value: { leader: 'n1', standbys: [] } });
  });
  it('malformed', () => {
    expect(problems(decodeSync('{"leader":"n1","standbys":"n2"}'))).toBe('standbys "n2" is not a list of names');
    expect(problems(decodeSync('{"standbys":[]}'))).toBe('no leader');
  });
});

describe('history', () => {
  it('round trip, in order', () => {
    const h = [entry(), entry({ timeline: 3, lsn: '0/4000000', leader: 'n2', why: 'switchover from n1' })];
    expect(decodeHistory(encodeHistory(h))).toEqual({ entries: h, problems: [] });
    expect(decodeHistory(encodeHistory([]))).toEqual({ entries: [], problems: [] });
  });
  it('a bad entry is left out and reported; the others stay', () => {
    const d = decodeHistory(JSON.stringify([entry(), { ...entry(), lsn: 'x' }, 7, entry({ timeline: 3 })]));
    expect(d.entries).toEqual([entry(), entry({ timeline: 3 })]);
    expect(d.problems).toEqual(['entry 1: lsn "x" is not a WAL position', 'entry 2: 7 is not an object']);
  });
  it('not a list', () => {
    expect(decodeHistory('{}').problems).toEqual(['not a JSON list: "{}"']);
    expect(decodeHistory('').problems[0]).toMatch(/^not JSON/);
  });
});

describe('switchover', () => {
  it('round trip: a switchover, a scheduled one, a failover (no from)', () => {
    for (const s of [{ from: 'n1' }, { from: 'n1', to: 'n2', at: '2024-05-01T12:00:00.000Z' }, { to: 'n3' }]) {
      expect(decodeSwitchover(encodeSwitchover(s))).toEqual({ ok: true, value: s });
    }
  });
  it('malformed', () => {
    expect(problems(decodeSwitchover('{}'))).toBe('neither from nor to');
    expect(problems(decodeSwitchover('{"from":"n1","at":"tomorrow"}'))).toBe('at "tomorrow" is not a time');
    expect(problems(decodeSwitchover('{"to":5}'))).toBe('to 5 is not a name');
  });
});

describe('one read of the prefix', () => {
  it('every key decoded, with the leader lease and each key\'s mod revision; members by name', () => {
    const kvs = [
      kv(K.history, encodeHistory([entry()])),
      kv(K.initialize, encodeInitialize('7312345678901234567')),
      kv(K.leader, encodeLeader('n1'), LEASE),
      kv(K.member('n2'), encodeMember(member()), '42'),
      kv(K.member('n1'), encodeMember(member({ name: 'n1', role: 'primary', state: 'running', writeLsn: '0/5000060' })), LEASE),
      kv(K.pause, encodePause(new Date('2024-05-01T12:00:00Z'))),
      kv(K.switchover, encodeSwitchover({ from: 'n1', to: 'n2' })),
      kv(K.sync, encodeSync({ leader: 'n1', standbys: ['n2'] })),
      kv('/pgrepl/orders/config', '{"later":"version"}'), // not ours (yet): ignored
    ];
    const d = decodeKeys(K, kvs, '99');
    expect(d.problems).toEqual([]);
    expect(d.revision).toBe('99');
    expect(d.keys).toEqual({
      initialize: '7312345678901234567',
      leader: { name: 'n1', lease: LEASE },
      members: [member({ name: 'n1', role: 'primary', state: 'running', writeLsn: '0/5000060' }), member()],
      sync: { leader: 'n1', standbys: ['n2'] },
      history: [entry()],
      switchover: { from: 'n1', to: 'n2' },
      pause: true,
    });
    const revOf = (key: string) => kvs.find((x) => x.key === key)!.modRevision;
    expect(d.revisions).toEqual({
      history: revOf(K.history), initialize: revOf(K.initialize), leader: revOf(K.leader), pause: revOf(K.pause),
      switchover: revOf(K.switchover), sync: revOf(K.sync), members: { n1: revOf(K.member('n1')), n2: revOf(K.member('n2')) },
    });
  });

  it('nothing there: no cluster, no leader, not paused', () => {
    expect(decodeKeys(K, [], '1')).toEqual({ keys: { members: [], history: [], pause: false }, revisions: { members: {} }, problems: [], revision: '1' });
  });

  it('a malformed member is reported and left out; the rest is returned', () => {
    const d = decodeKeys(K, [
      kv(K.leader, encodeLeader('n1'), LEASE),
      kv(K.member('n1'), encodeMember(member({ name: 'n1' }))),
      kv(K.member('n2'), '{"name":"n2","role":'),
      kv(K.member('n3'), encodeMember(member({ name: 'n3', role: 'master' as never }))),
    ], '5');
    expect(d.keys.members.map((m) => m.name)).toEqual(['n1']);
    expect(d.keys.leader).toEqual({ name: 'n1', lease: LEASE });
    expect(d.problems).toEqual([
      { key: K.member('n2'), why: 'not JSON: "{\\"name\\":\\"n2\\",\\"role\\":"' },
      { key: K.member('n3'), why: 'role "master" is not primary, standby, none' },
    ]);
    expect(describeProblems(d.problems)).toBe(`${K.member('n2')}: not JSON: "{\\"name\\":\\"n2\\",\\"role\\":"; ${K.member('n3')}: role "master" is not primary, standby, none`);
  });

  it('a malformed leader still holds the key (name unknown); a malformed initialize still claims the cluster', () => {
    const d = decodeKeys(K, [kv(K.leader, 'n1', LEASE), kv(K.initialize, 'garbage')], '5');
    expect(d.keys.leader).toEqual({ name: '', lease: LEASE });
    expect(d.keys.initialize).toBe('');
    expect(d.problems.map((p) => p.key)).toEqual([K.leader, K.initialize]);
    expect(d.problems[0]!.why).toMatch(/held by an unknown member until it expires or is deleted/);
  });

  it('a malformed sync or switchover is no value (sync names nobody: nobody promoted in synchronous mode); pause is its presence', () => {
    const d = decodeKeys(K, [kv(K.sync, '[]'), kv(K.switchover, 'now'), kv(K.pause, 'anything')], '5');
    expect(d.keys.sync).toBeUndefined();
    expect(d.keys.switchover).toBeUndefined();
    expect(d.keys.pause).toBe(true);
    expect(d.problems.map((p) => p.key)).toEqual([K.sync, K.switchover]);
  });

  it('a very long garbage value is cut short in the report', () => {
    const d = decodeKeys(K, [kv(K.member('n2'), 'x'.repeat(5000))], '5');
    expect(d.problems[0]!.why.length).toBeLessThan(100);
  });
});
