/**
 * src/ha/switchover.ts row by row: how far a written request has got (progress), how much a
 * failover may lose (lossLine, lastPrimaryPosition). The refusals are tested through the bundle
 * against etcd (test/integration/ha-switchover.test.ts).
 */
import { describe, expect, it } from 'vitest';
import { checkFailover, checkSwitchover, lastPrimaryPosition, lossLine, progress } from '../../src/ha/switchover.js';
import type { ClusterKeys, MemberKey, SwitchoverRequest } from '../../src/ha/types.js';

const member = (name: string, over: Partial<MemberKey> = {}): MemberKey => ({
  name, instance: `i-${name}`, address: `h${name}:5432`, api: `h${name}:8008`, role: 'standby', state: 'streaming', timeline: 2, nofailover: false, ...over,
});
const cluster = (over: Partial<ClusterKeys> = {}): ClusterKeys => ({ initialize: '1', members: [], history: [], pause: false, ...over });
const leader = (name: string) => ({ name, lease: '7' });

describe('progress of a written request', () => {
  const sw: SwitchoverRequest = { from: 'n1', to: 'n2' };
  const fo: SwitchoverRequest = { to: 'n2' };
  const rows: [string, SwitchoverRequest, Partial<ClusterKeys>, ReturnType<typeof progress>][] = [
    ['switchover: the old leader still leads, request pending', sw, { leader: leader('n1'), switchover: sw },
      { state: 'waiting', why: "n1 still leads and has not handed over; the request is pending (is its agent running? see n1's log)" }],
    ['switchover: the key released, nobody took it yet', sw, { switchover: sw },
      { state: 'waiting', why: "no leader yet: n1 released the leader key; n2 has not taken it (see n2's log)" }],
    ['switchover without --to: the key released, nobody took it yet', { from: 'n1' }, { switchover: { from: 'n1' } },
      { state: 'waiting', why: "no leader yet: n1 released the leader key; no candidate has taken it yet (see the candidates' logs)" }],
    ['switchover: another node leads (request cleared or not)', sw, { leader: leader('n2') }, { state: 'moved', leader: 'n2' }],
    ['switchover: n2 leads, the request not cleared yet', sw, { leader: leader('n2'), switchover: sw }, { state: 'moved', leader: 'n2' }],
    ['switchover: the request gone, n1 still leads: refused', sw, { leader: leader('n1') }, { state: 'refused' }],
    ['switchover: the request replaced by another, n1 still leads: ours was refused', sw, { leader: leader('n1'), switchover: { from: 'n1', to: 'n3' } }, { state: 'refused' }],
    ['switchover: the leader key unreadable', sw, { leader: leader(''), switchover: sw },
      { state: 'waiting', why: 'the leader key cannot be read (see pgrepl list); the request is pending' }],
    ['failover: nobody leads yet', fo, { switchover: fo }, { state: 'waiting', why: "no leader yet; n2 has not taken it (see n2's log)" }],
    ['failover: n2 leads', fo, { leader: leader('n2') }, { state: 'moved', leader: 'n2' }],
    ['failover: another node leads', fo, { leader: leader('n3'), switchover: fo }, { state: 'moved', leader: 'n3' }],
    ['failover: the request gone, nobody leads: withdrawn', fo, {}, { state: 'refused' }],
  ];
  for (const [name, request, keys, want] of rows) it(name, () => expect(progress(cluster(keys), request)).toEqual(want));
});

describe('how much a failover may lose', () => {
  const keys = cluster({
    members: [
      member('n1', { role: 'primary', state: 'stopped', writeLsn: '0/5000100' }),
      member('n2', { receivedLsn: '0/5000060' }),
      member('n3', { receivedLsn: '0/5000080', replayedLsn: '0/5000000' }),
    ],
    history: [{ timeline: 2, lsn: '0/3000000', leader: 'n1', at: '2024-05-01T12:00:00Z', why: 'x' }],
  });

  it('the last primary position: the furthest of the primaries\' writes, the others\' receipts and the history, leaving out NODE itself', () => {
    expect(lastPrimaryPosition(keys, 'n2')).toBe('0/5000100');
    expect(lastPrimaryPosition(cluster({ members: [member('n2', { receivedLsn: '0/9000000' }), member('n3', { receivedLsn: '0/5000080' })] }), 'n2')).toBe('0/5000080');
    expect(lastPrimaryPosition(cluster({ history: keys.history }), 'n2')).toBe('0/3000000');
    expect(lastPrimaryPosition(cluster(), 'n2')).toBeUndefined();
  });

  it('NODE asked live: bytes behind the last known position, or nothing known to be lost', () => {
    expect(lossLine(keys, 'n2', { received: '0/5000060', timeline: 2 })).toBe(
      'n2 has received up to 0/5000060; the last known primary position was 0/5000100: up to 160 bytes of acknowledged WAL may be lost');
    expect(lossLine(keys, 'n2', { received: '0/5000200', timeline: 2 })).toBe(
      'n2 has received up to 0/5000200; the last known primary position was 0/5000100: nothing known to be lost');
  });

  it('NODE not answering: its last published position, said as such; none: cannot be said', () => {
    expect(lossLine(keys, 'n2', { error: 'h2:8008: ECONNREFUSED' })).toBe(
      'n2 did not answer on its API (h2:8008: ECONNREFUSED); it last published 0/5000060; the last known primary position was 0/5000100: up to 160 bytes of acknowledged WAL may be lost');
    expect(lossLine(cluster({ members: [member('n2')] }), 'n2', { error: 'x' })).toBe('n2 did not answer on its API (x) and has published no position: how much may be lost cannot be said');
  });

  it('no primary position known: cannot be said', () => {
    expect(lossLine(cluster({ members: [member('n2')] }), 'n2', { received: '0/5000060', timeline: 2 })).toBe(
      'n2 has received up to 0/5000060; no primary position is known (no primary\'s member key, no history): how much may be lost cannot be said');
  });
});

describe('the requests written', () => {
  const keys = cluster({ leader: leader('n1'), members: [member('n1', { role: 'primary', state: 'running' }), member('n2'), member('n3', { nofailover: true })] });
  it('switchover: {from, to}, or {from}; failover: {to}', () => {
    expect(checkSwitchover('c', keys, '/k', 'n2')).toEqual({ request: { from: 'n1', to: 'n2' } });
    expect(checkSwitchover('c', keys, '/k')).toEqual({ request: { from: 'n1' } });
    expect(checkFailover('c', { ...keys, leader: undefined }, '/k', 'n2')).toEqual({ request: { to: 'n2' } });
  });
  it('in synchronous mode a synchronous standby qualifies, with a sync key naming nobody the mode is not told from the key', () => {
    expect(checkSwitchover('c', { ...keys, sync: { leader: 'n1', standbys: ['n2'] } }, '/k', 'n2')).toEqual({ request: { from: 'n1', to: 'n2' } });
    expect(checkSwitchover('c', { ...keys, sync: { leader: 'n1', standbys: [] } }, '/k', 'n2')).toEqual({ request: { from: 'n1', to: 'n2' } });
  });
});
