import { describe, expect, it } from 'vitest';
import type { PgdataState } from '../../src/observe/pgdata.js';
import { decide } from '../../src/ha/decide.js';
import { demoteDeadline, earliestLeaseExpiry, HA_TIMING_DEFAULTS } from '../../src/ha/timing.js';
import type { Action, AgentMemory, Answer, ClusterKeys, Decision, HaObservation, HaSettings, LocalPostgres, MemberKey } from '../../src/ha/types.js';

const SYS = '7000000000000000001';
const NOW = 1_000_000;
const LEASE = '7587869342718462211';

const cluster = (over: Partial<Extract<PgdataState, { kind: 'cluster' }>> = {}): PgdataState => ({
  kind: 'cluster', major: 15, standby: false, systemIdentifier: SYS, state: 'in production', timeline: 1, keptCopies: [], swapPending: false, ...over,
});

const primaryPg = (over: Partial<LocalPostgres> = {}): LocalPostgres => ({
  pgdata: cluster(), major: 15, running: true, inRecovery: false, timeline: 1, writeLsn: '0/5000060', replication: [], synchronous: { standbys: [] }, ...over,
});
const standbyPg = (over: Partial<LocalPostgres> = {}): LocalPostgres => ({
  pgdata: cluster({ standby: true, state: 'in archive recovery' }), major: 15, running: true, inRecovery: true, timeline: 1,
  receivedLsn: '0/5000000', replayedLsn: '0/4FFFFF0', following: '10.0.0.2:5432', replication: [], synchronous: { standbys: [] }, ...over,
});
const stoppedPg = (pgdata: PgdataState, over: Partial<LocalPostgres> = {}): LocalPostgres => ({
  pgdata, major: 15, running: false, timeline: pgdata.kind === 'cluster' ? pgdata.timeline : undefined, replication: [], synchronous: { standbys: [] }, ...over,
});

const m = (name: string, over: Partial<MemberKey> = {}): MemberKey => ({
  name, instance: `i-${name}`, address: `10.0.0.${name.slice(1)}:5432`, api: `10.0.0.${name.slice(1)}:8008`,
  role: 'standby', state: 'streaming', timeline: 1, receivedLsn: '0/5000000', nofailover: false, ...over,
});
const leaderMember = (name: string, over: Partial<MemberKey> = {}) => m(name, { role: 'primary', state: 'running', writeLsn: '0/5000060', receivedLsn: undefined, ...over });

const keys = (over: Partial<ClusterKeys> = {}): ClusterKeys => ({ initialize: SYS, members: [], history: [], pause: false, ...over });
/** n1 (this node) holds the key on its lease. */
const mine = { name: 'n1', lease: LEASE };

const settings = (over: Partial<HaSettings> = {}): HaSettings => ({
  name: 'n1', instance: 'i-n1', nofailover: false, maxLagOnFailover: 1024 * 1024, syncStandbys: 0, hint: undefined, reclone: 'never', slots: true,
  timing: HA_TIMING_DEFAULTS, ...over,
});
const memory = (over: Partial<AgentMemory> = {}): AgentMemory => ({
  startedAt: 0, lease: { id: LEASE, lastRenewalSentAt: NOW - 2000 }, ledAtLastRead: false, published: true, ...over,
});

function run(
  local: LocalPostgres,
  k: ClusterKeys | { error: string },
  opts: { s?: Partial<HaSettings>; mem?: Partial<AgentMemory>; asked?: Record<string, Answer>; now?: number; stopping?: boolean; wallNow?: number } = {},
): Decision {
  const obs: HaObservation = {
    now: opts.now ?? NOW, wallNow: opts.wallNow ?? Date.parse('2026-03-01T12:00:00Z'),
    etcd: 'error' in k ? { ok: false, error: k.error } : { ok: true, keys: k },
    local, stopping: opts.stopping ?? false, ...(opts.asked ? { asked: opts.asked } : {}),
  };
  return decide(obs, settings(opts.s), memory(opts.mem));
}

const does = (d: Decision) => ('actions' in d ? d.actions.map((a) => a.do) : []);
const actions = (d: Decision): Action[] => ('actions' in d ? d.actions : []);
const refusal = (d: Decision) => ('refuse' in d ? d.refuse : undefined);
const find = <K extends Action['do']>(d: Decision, k: K) => actions(d).find((a): a is Extract<Action, { do: K }> => a.do === k);

const TAKE = ['renew-lease', 'publish-member', 'take-leader-key', 'promote', 'checkpoint', 'append-history'];
/** The same in synchronous mode: any standby acknowledges first (decide.ts promotion()). */
const TAKE_SYNC = ['renew-lease', 'publish-member', 'take-leader-key', 'set-synchronous-standby-names', 'promote', 'checkpoint', 'append-history'];

// ---------------------------------------------------------------------------------------------

describe('unusable PGDATA', () => {
  it('never reaches the HA rows: refused, nothing done', () => {
    for (const pgdata of [{ kind: 'not-a-cluster', entries: ['x'] }, { kind: 'unreadable', code: 'EACCES' }, cluster({ major: 14 })] as PgdataState[]) {
      const d = run(stoppedPg(pgdata), keys());
      expect(d.row).toBe('unusable PGDATA');
      expect(refusal(d)).toMatch(/the start-up's checks refuse it first; nothing was changed$/);
    }
  });
});

describe('etcd does not answer', () => {
  const down = { error: 'connect ECONNREFUSED 127.0.0.1:2379' };

  it('a standby: nothing changes, retries soon (renewing its lease)', () => {
    const d = run(standbyPg(), down);
    expect(d.row).toBe('etcd unreachable');
    expect(does(d)).toEqual(['renew-lease']);
    expect('nextLoopMs' in d && d.nextLoopMs).toBe(500);
    expect(d.say).toBe('etcd did not answer (connect ECONNREFUSED 127.0.0.1:2379): nothing changes here; retrying');
  });

  it('the leader within TTL − margin: keeps retrying, NEVER demotes', () => {
    const d = run(primaryPg(), down, { mem: { ledAtLastRead: true, lease: { id: LEASE, lastRenewalSentAt: NOW - 3000 } } });
    expect(d.row).toBe('etcd unreachable × leader');
    expect(does(d)).toEqual(['renew-lease']);
    expect(d.say).toBe(
      'etcd did not answer (connect ECONNREFUSED 127.0.0.1:2379); I lead, my last renewal was sent 3.0 s ago: retrying, not demoting (writes stop in 4.0 s unless a renewal succeeds)',
    );
    expect('demoteBy' in d && d.demoteBy).toBe(NOW + 4000);
  });

  it('an etcd election (1-3 s of errors, then a renewal succeeds) never demotes the leader', () => {
    // Renewal sent at 0 succeeded; the next ones, every 0.5 s from LOOP_WAIT on, fail for 3 s; then one succeeds at 5 s.
    let sentOk = 0;
    for (let now = 2000; now <= 12_000; now += 500) {
      const d = run(primaryPg(), now < 5000 ? down : keys({ leader: mine, members: [leaderMember('n1')] }), {
        now, mem: { ledAtLastRead: true, lease: { id: LEASE, lastRenewalSentAt: sentOk } },
      });
      expect(does(d)).not.toContain('demote-fast');
      if (now >= 5000) sentOk = now; // the renewal of this loop succeeded
    }
  });

  it('the leader at its deadline: demotes first (fast stop), then still tries to renew', () => {
    const sent = NOW - 7000;
    const d = run(primaryPg(), down, { mem: { ledAtLastRead: true, lease: { id: LEASE, lastRenewalSentAt: sent } } });
    expect(d.row).toBe('etcd unreachable × lease running out');
    expect(actions(d)).toEqual([{ do: 'demote-fast', why: 'lease running out' }, { do: 'renew-lease' }]);
    expect(d.say).toBe(
      'etcd did not answer (connect ECONNREFUSED 127.0.0.1:2379); I lead, but my last confirmed renewal was sent 7.0 s ago (TTL 10 s, margin 3 s): stopping writes now (fast stop, sessions killed), before my lease can expire; retrying',
    );
    // One millisecond earlier it would still have waited.
    expect(does(run(primaryPg(), down, { now: NOW - 1, mem: { ledAtLastRead: true, lease: { id: LEASE, lastRenewalSentAt: sent } } }))).toEqual(['renew-lease']);
  });

  it('writable though I did not lead at the last read: demote-fast (never writable without the key), then retry', () => {
    const d = run(primaryPg(), down, { mem: { ledAtLastRead: false } });
    expect(d.row).toBe('etcd unreachable × writable without the key');
    expect(actions(d)).toEqual([{ do: 'demote-fast', why: 'not the leader' }, { do: 'renew-lease' }]);
  });

  it('the leader past its deadline with postgres down (the agent braked it): starts it read-only, still renewing', () => {
    const d = run(stoppedPg(cluster({ state: 'shut down' })), down, { mem: { ledAtLastRead: true, lease: { id: LEASE, lastRenewalSentAt: NOW - 8000 } } });
    expect(d.row).toBe('etcd unreachable × lease running out');
    expect(actions(d)).toEqual([{ do: 'start-postgres', as: 'read-only' }, { do: 'renew-lease' }]);
    expect(d.say).toMatch(/postgres is down: starting it read-only, writable again only once a renewal succeeds; retrying$/);
  });

  it('stopping: fast stop and exit without waiting for etcd (a key of mine expires with my lease)', () => {
    const d = run(primaryPg(), down, { stopping: true, mem: { ledAtLastRead: true } });
    expect(does(d)).toEqual(['stop-postgres', 'exit']);
    expect(does(run(stoppedPg(cluster()), down, { stopping: true }))).toEqual(['exit']);
  });

  it('the former leader, already read-only past its deadline: stays read-only, retries', () => {
    const d = run(standbyPg({ following: undefined }), down, { mem: { ledAtLastRead: true, lease: { id: LEASE, lastRenewalSentAt: NOW - 9000 } } });
    expect(does(d)).toEqual(['renew-lease']);
    expect(d.say).toMatch(/staying read-only until a renewal succeeds; retrying$/);
  });
});

describe('never two writable', () => {
  it('a leader whose renewals stopped demotes strictly before etcd can expire its lease, and so before anyone else can take the key', () => {
    const sent = NOW - 1000;
    const t = HA_TIMING_DEFAULTS;
    const expiry = earliestLeaseExpiry(sent, t); // nobody else can create the key before this
    let demotedAt: number | undefined;
    for (let now = sent; now < expiry + 2000 && demotedAt === undefined; now += 100) {
      // Reads still succeed (the lease has not expired yet) but no keepalive does.
      const d = run(primaryPg(), keys({ leader: mine, members: [leaderMember('n1')] }), { now, mem: { lease: { id: LEASE, lastRenewalSentAt: sent } } });
      if (does(d).includes('demote-fast')) demotedAt = now;
      expect('demoteBy' in d && d.demoteBy).toBe(demoteDeadline(sent, t));
    }
    expect(demotedAt).toBe(demoteDeadline(sent, t));
    expect(demotedAt!).toBeLessThan(expiry);
    expect(expiry - demotedAt!).toBeGreaterThanOrEqual(t.retryTimeout * 1000);
  });

  it('no row lets a node without the key stay writable: it demotes whoever leads, also in pause', () => {
    for (const k of [
      keys({ leader: { name: 'n2', lease: '1' }, members: [leaderMember('n2', { timeline: 2 })] }),
      keys({ members: [m('n2')] }),
      keys({ members: [m('n2')], pause: true }),
    ]) {
      const d = run(primaryPg(), k);
      expect(d.row).toBe('writable without the key');
      expect(does(d)).toContain('demote-fast');
      expect(does(d)).not.toContain('take-leader-key');
    }
  });

  it('the leader key of my name on another lease (an earlier run of mine) is not mine: my writable postgres is not kept writable by it', () => {
    const d = run(primaryPg(), keys({ leader: { name: 'n1', lease: 'old' } }), { mem: { published: false, startedAt: NOW - 1000 } });
    expect(d.row).toBe('name in use?');
    expect(does(d)).not.toContain('renew-lease');
    expect(does(d)).not.toContain('promote');
  });
});

describe('a name already in use', () => {
  const other = m('n1', { instance: 'i-other', address: '10.0.0.9:5432', api: '10.0.0.9:8008' });

  it('at start, within 2 × TTL: waits for it to expire, touching nothing (an earlier run leaves its key)', () => {
    const d = run(stoppedPg(cluster()), keys({ members: [other, m('n2')] }), { mem: { startedAt: NOW - 5000, published: false, lease: undefined } });
    expect(d.row).toBe('name in use?');
    expect(does(d)).toEqual([]);
    expect(d.say).toBe(
      'a member key named n1 from another agent (instance i-other, postgres 10.0.0.9:5432, API 10.0.0.9:8008) exists: waiting up to 15.0 s for it to expire (an earlier run of this node leaves one until its lease ends); touching nothing',
    );
  });

  it('still alive 2 × TTL after start: refuses, naming the variable', () => {
    const d = run(stoppedPg(cluster()), keys({ members: [other] }), { mem: { startedAt: NOW - 20_000, published: false, lease: undefined } });
    expect(d.row).toBe('name in use');
    expect(refusal(d)).toBe(
      'a member key named n1 from another agent (instance i-other, postgres 10.0.0.9:5432, API 10.0.0.9:8008) is still alive 20.0 s after this agent started: another agent runs as PGREPL_NODE_NAME=n1. Give every node its own PGREPL_NODE_NAME; nothing was changed',
    );
  });

  it('once this agent has published, another instance under its name is refused at once', () => {
    expect(run(standbyPg(), keys({ members: [other] }), { mem: { startedAt: NOW - 1000, published: true } }).row).toBe('name in use');
  });

  it('the leader key naming this node on another lease: waited for, then refused', () => {
    const k = keys({ leader: { name: 'n1', lease: '42' } });
    expect(run(standbyPg(), k, { mem: { startedAt: NOW - 1000, published: false } }).say).toMatch(/^the leader key names n1 on another lease \(42\) exists: waiting/);
    expect(refusal(run(standbyPg(), k, { mem: { startedAt: NOW - 30_000, published: false } }))).toMatch(/another agent runs as PGREPL_NODE_NAME=n1/);
  });

  it("my own member key (this instance, even on an old lease) is no duplicate", () => {
    expect(run(standbyPg(), keys({ members: [m('n1'), leaderMember('n2')], leader: { name: 'n2', lease: '9' } })).row).toBe('follow');
  });
});

describe('I lead, my last renewal is getting old', () => {
  const k = keys({ leader: mine, members: [leaderMember('n1')] });

  it('within TTL − margin: renews, no demotion', () => {
    const d = run(primaryPg(), k, { mem: { lease: { id: LEASE, lastRenewalSentAt: NOW - 6999 } } });
    expect(d.row).toBe('leader');
    expect(does(d)).not.toContain('demote-fast');
  });

  it('past it, even though the key still reads as mine: demote-fast, before anything else', () => {
    const d = run(primaryPg(), k, { mem: { lease: { id: LEASE, lastRenewalSentAt: NOW - 7000 } } });
    expect(d.row).toBe('lease running out');
    expect(actions(d)[0]).toEqual({ do: 'demote-fast', why: 'lease running out' });
    expect(d.say).toBe('I lead, but my last confirmed renewal was sent 7.0 s ago (TTL 10 s, margin 3 s): stopping writes now (fast stop, sessions killed), before my lease can expire');
  });

  it('paused or not: a leader that cannot renew stops its writes (resume or a manual failover could let another node in)', () => {
    const d = run(primaryPg(), { ...k, pause: true }, { mem: { lease: { id: LEASE, lastRenewalSentAt: NOW - 8000 } } });
    expect(does(d)).toContain('demote-fast');
  });

  it('postgres down past the deadline (braked): started read-only, never as a primary, until a renewal succeeds', () => {
    const d = run(stoppedPg(cluster({ state: 'shut down' }), { demoted: { lease: LEASE, timeline: 1 } }), k, { mem: { lease: { id: LEASE, lastRenewalSentAt: NOW - 8000 } } });
    expect(d.row).toBe('lease running out');
    expect(actions(d)).toEqual([{ do: 'start-postgres', as: 'read-only' }, { do: 'renew-lease' }]);
  });

  it('already read-only: stays so until a renewal succeeds (no promotion, no resume)', () => {
    const d = run(standbyPg({ following: undefined, demoted: { lease: LEASE, timeline: 1 } }), k, { mem: { lease: { id: LEASE, lastRenewalSentAt: NOW - 8000 } } });
    expect(does(d)).toEqual(['renew-lease']);
  });
});

describe('initialize names another system', () => {
  const k = keys({ initialize: '7999999999999999999', leader: { name: 'n2', lease: '1' }, members: [leaderMember('n2')] });

  it('refuses, touching nothing', () => {
    const d = run(stoppedPg(cluster({ state: 'shut down' })), k);
    expect(d.row).toBe('another system');
    expect(refusal(d)).toBe(
      'PGDATA holds system 7000000000000000001 but this cluster (initialize) is system 7999999999999999999: this data belongs to another cluster. Point the node at its own cluster (PGREPL_CLUSTER, PGREPL_ETCD_ENDPOINTS), or set PGREPL_RECLONE=auto to move the data aside (kept inside PGDATA) and clone; nothing was changed',
    );
  });

  it('PGREPL_RECLONE=auto: moves it aside (kept) and clones the running leader', () => {
    const d = run(stoppedPg(cluster({ state: 'shut down' })), k, { s: { reclone: 'auto' } });
    expect(find(d, 'clone-from-leader')).toEqual({ do: 'clone-from-leader', leader: 'n2', address: '10.0.0.2:5432', moveAside: true });
  });

  it('PGREPL_RECLONE=auto without a running leader: waits', () => {
    const d = run(stoppedPg(cluster()), keys({ initialize: '7999999999999999999' }), { s: { reclone: 'auto' } });
    expect(d.row).toBe('another system');
    expect(does(d)).toEqual(['renew-lease', 'publish-member']);
  });

  it('never moves aside the data of the node that holds the key', () => {
    const d = run(primaryPg(), keys({ initialize: '7999999999999999999', leader: mine }), { s: { reclone: 'auto' } });
    expect(refusal(d)).toMatch(/this data belongs to another cluster/);
  });
});

describe('bootstrap race', () => {
  it('no initialize, empty PGDATA, may bootstrap: one transaction races for initialize and the key; the winner runs initdb', () => {
    for (const pgdata of [{ kind: 'empty' }, { kind: 'missing' }, { kind: 'interrupted-build', build: 'init', staging: '.pgrepl-staging-init', keptCopies: [] }] as PgdataState[]) {
      const d = run(stoppedPg(pgdata), keys({ initialize: undefined }), { mem: { lease: undefined } });
      expect(d.row).toBe('bootstrap race');
      expect(does(d)).toEqual(['grant-lease', 'publish-member', 'race-initialize', 'initdb-and-lead']);
    }
  });

  it('PGREPL_ROLE=STANDBY never initialises: it waits for a leader', () => {
    const d = run(stoppedPg({ kind: 'empty' }), keys({ initialize: undefined }), { s: { hint: 'STANDBY' } });
    expect(d.row).toBe('bootstrap: waiting');
    expect(does(d)).not.toContain('race-initialize');
    expect(d.say).toBe('no cluster yet (no initialize); PGREPL_ROLE=STANDBY never initialises one: waiting for a leader');
  });

  it('never initdb beside kept copies or an interrupted clone: wait for a leader to clone', () => {
    for (const pgdata of [
      { kind: 'only-kept-copies', keptCopies: ['pgrepl-aside-1'] },
      { kind: 'interrupted-build', build: 'clone', staging: '.pgrepl-staging-clone', keptCopies: [] },
      { kind: 'interrupted-build', build: 'init', staging: '.pgrepl-staging-init', keptCopies: ['pgrepl-aside-1'] },
    ] as PgdataState[]) {
      expect(does(run(stoppedPg(pgdata), keys({ initialize: undefined })))).not.toContain('race-initialize');
    }
  });

  it('an empty node leaves the bootstrap to a member that holds a primary\'s cluster (it adopts)', () => {
    const d = run(stoppedPg({ kind: 'empty' }), keys({ initialize: undefined, members: [m('n2', { role: 'primary', state: 'stopped' })] }));
    expect(d.row).toBe('bootstrap: waiting');
    expect(does(d)).not.toContain('race-initialize');
  });

  it('the loser: initialize claimed, no leader yet → waits; a leader not running yet → waits; a running leader → clones it', () => {
    expect(run(stoppedPg({ kind: 'empty' }), keys({ initialize: '' })).row).toBe('bootstrap: waiting');
    const starting = run(stoppedPg({ kind: 'empty' }), keys({ initialize: '', leader: { name: 'n2', lease: '1' }, members: [m('n2', { role: 'none', state: 'stopped' })] }));
    expect(starting.say).toBe('n2 leads but does not run as a primary yet: waiting');
    // Looks again soon: the leader's member key is no wake-up (a switchover waited a whole LOOP_WAIT here).
    expect(starting).toMatchObject({ nextLoopMs: 500 });
    expect(does(starting)).not.toContain('clone-from-leader');
    const d = run(stoppedPg({ kind: 'empty' }), keys({ initialize: '', leader: { name: 'n2', lease: '1' }, members: [leaderMember('n2')] }));
    expect(d.row).toBe('clone');
    expect(find(d, 'clone-from-leader')).toEqual({ do: 'clone-from-leader', leader: 'n2', address: '10.0.0.2:5432', moveAside: false });
  });

  it('the winner holding the key with no cluster yet (initdb interrupted): initdb again', () => {
    const d = run(stoppedPg({ kind: 'empty' }), keys({ initialize: '', leader: mine }));
    expect(d.row).toBe('bootstrap winner');
    expect(does(d)).toEqual(['renew-lease', 'publish-member', 'initdb-and-lead']);
  });

  it('the winner once initdb made the cluster: records its system identifier in initialize', () => {
    const d = run(primaryPg(), keys({ initialize: '', leader: mine, members: [leaderMember('n1')] }));
    expect(d.row).toBe('leader');
    expect(find(d, 'set-initialize')).toEqual({ do: 'set-initialize', system: SYS });
  });
});

describe('adopting a non-HA primary', () => {
  it("no initialize and a primary's cluster here: claim initialize with its system id, take the key, start it as the primary", () => {
    const d = run(stoppedPg(cluster({ state: 'shut down' })), keys({ initialize: undefined }));
    expect(d.row).toBe('adopt');
    expect(actions(d)).toEqual([
      { do: 'renew-lease' }, { do: 'publish-member' }, { do: 'claim-initialize', system: SYS }, { do: 'take-leader-key' }, { do: 'start-postgres', as: 'primary' },
    ]);
  });

  it('already running: claims and leads without a restart', () => {
    expect(does(run(primaryPg(), keys({ initialize: undefined })))).toEqual(['renew-lease', 'publish-member', 'claim-initialize', 'take-leader-key']);
  });

  it("a standby's cluster, or PGREPL_ROLE=STANDBY: waits for its primary to claim the cluster", () => {
    expect(run(stoppedPg(cluster({ standby: true })), keys({ initialize: undefined })).say).toBe(
      'no cluster yet (no initialize); PGDATA holds a standby, which waits for its primary to claim the cluster: waiting for a leader',
    );
    expect(does(run(stoppedPg(cluster()), keys({ initialize: undefined }), { s: { hint: 'STANDBY' } }))).toEqual(['renew-lease', 'publish-member']);
  });
});

describe('stopping (SIGTERM)', () => {
  const k = keys({ leader: mine, members: [leaderMember('n1'), m('n2'), m('n3', { nofailover: true })] });
  const stopped = stoppedPg(cluster({ state: 'shut down' }), { shutdownEnd: '0/6000028' });

  it('a standby: fast stop, revoke its lease, exit', () => {
    expect(does(run(standbyPg(), keys({ leader: { name: 'n2', lease: '1' } }), { stopping: true }))).toEqual(['stop-postgres', 'revoke-lease', 'exit']);
  });

  it('the leader: fast-stops first, keeping (renewing) the key', () => {
    const d = run(primaryPg(), k, { stopping: true });
    expect(does(d)).toEqual(['renew-lease', 'stop-postgres']);
  });

  it('the leader, stopped cleanly: asks the standbys that may lead, then releases the key once one received the shutdown checkpoint', () => {
    const asking = run(stopped, k, { stopping: true });
    expect(actions(asking)).toEqual([{ do: 'ask-members', names: ['n2'] }]);
    const d = run(stopped, k, { stopping: true, asked: { n2: { received: '0/6000028', timeline: 1 } } });
    expect(does(d)).toEqual(['release-leader-key', 'revoke-lease', 'exit']);
    expect(d.say).toBe('stopping: postgres stopped cleanly at 0/6000028; n2 received it (n2 at 0/6000028): releasing the leader key');
  });

  it('nobody confirmed it: releases anyway, saying so (keeping the key would only delay the same failover)', () => {
    const d = run(stopped, k, { stopping: true, asked: { n2: { error: 'timeout' } } });
    expect(does(d)).toEqual(['release-leader-key', 'revoke-lease', 'exit']);
    expect(d.say).toMatch(/no standby that may lead confirmed it \(n2 did not answer\): releasing the leader key anyway$/);
  });

  it('the leader whose postgres died: releases the key', () => {
    expect(does(run(stoppedPg(cluster()), k, { stopping: true }))).toEqual(['release-leader-key', 'revoke-lease', 'exit']);
  });
});

describe('pause: observe and report only', () => {
  it('the leader renews and publishes, nothing else', () => {
    const d = run(primaryPg(), keys({ pause: true, leader: mine, switchover: { from: 'n1', to: 'n2' }, members: [leaderMember('n1'), m('n2')] }), { s: { syncStandbys: 1 } });
    expect(d.row).toBe('pause');
    expect(does(d)).toEqual(['renew-lease', 'publish-member']);
    expect('demoteBy' in d && d.demoteBy).toBe(NOW - 2000 + 7000);
    expect(d.say).toBe('paused: I lead; my postgres is writable: reporting only (the leader key is still renewed)');
  });

  it('no leader: a healthy standby does not race', () => {
    const d = run(standbyPg(), keys({ pause: true, members: [m('n2')] }));
    expect(does(d)).toEqual(['renew-lease', 'publish-member']);
    expect(d.say).toBe('paused: no leader; my postgres is read-only: reporting only');
  });

  it('no bootstrap, no follow, no start', () => {
    expect(does(run(stoppedPg({ kind: 'empty' }), keys({ initialize: undefined, pause: true })))).toEqual(['renew-lease', 'publish-member']);
    expect(does(run(standbyPg({ following: '10.0.0.3:5432' }), keys({ pause: true, leader: { name: 'n2', lease: '1' }, members: [leaderMember('n2')] })))).toEqual(['renew-lease', 'publish-member']);
    expect(does(run(stoppedPg(cluster()), keys({ pause: true, leader: mine })))).toEqual(['renew-lease', 'publish-member']);
  });
});

describe('I hold the leader key', () => {
  const k = keys({ leader: mine, members: [leaderMember('n1'), m('n2')] });

  it('renews, publishes, and reports the deadline for the timer', () => {
    const d = run(primaryPg(), k);
    expect(d.row).toBe('leader');
    expect(does(d)).toEqual(['renew-lease', 'publish-member']);
    expect('demoteBy' in d && d.demoteBy).toBe(NOW - 2000 + 7000);
    expect('nextLoopMs' in d && d.nextLoopMs).toBe(2000);
    expect(d.say).toBe('I lead (timeline 1, at 0/5000060; last renewal sent 2.0 s ago): renewing');
  });

  it('postgres died (agent alive): restarted in place as the primary, the key kept', () => {
    const d = run(stoppedPg(cluster()), k);
    expect(d.row).toBe('leader, postgres down');
    expect(actions(d)).toContainEqual({ do: 'start-postgres', as: 'primary' });
  });

  it('read-only after the race (or a failed promotion): promote, checkpoint, append history', () => {
    const d = run(standbyPg(), k);
    expect(d.row).toBe('leader, read-only');
    expect(does(d)).toEqual(['renew-lease', 'publish-member', 'promote', 'checkpoint', 'append-history']);
  });

  it('demoted by me for lease safety, the same lease still held, nobody newer: writable again on the same timeline (no promotion)', () => {
    const d = run(standbyPg({ following: undefined, demoted: { lease: LEASE, timeline: 1 } }), k);
    expect(does(d)).toEqual(['renew-lease', 'publish-member', 'resume-writable']);
  });

  it('demoted on an earlier lease (the key was lost and taken again), or a newer timeline seen: promote instead', () => {
    expect(does(run(standbyPg({ demoted: { lease: 'older', timeline: 1 } }), k))).toContain('promote');
    expect(does(run(standbyPg({ demoted: { lease: LEASE, timeline: 1 } }), { ...k, history: [{ timeline: 2, lsn: '0/4000000', leader: 'n2', at: 'x', why: 'y' }] }))).toContain('promote');
  });

  it('the key, but no cluster here: releases it', () => {
    expect(does(run(stoppedPg({ kind: 'empty' }), k))).toContain('release-leader-key');
  });
});

describe('synchronous mode on the leader: widen before narrowing', () => {
  const sync = { s: { syncStandbys: 1 } };
  const lead = (over: Partial<ClusterKeys> = {}) => keys({ leader: mine, members: [leaderMember('n1'), m('n2'), m('n3')], ...over });
  const streaming = (name: string, flushLsn = '0/5000060') => ({ name, state: 'streaming', flushLsn });

  it("replaces the start-up's 'ANY n (*)' by a named standby; sync names it only once it caught up", () => {
    const d = run(primaryPg({ replication: [streaming('n2')], synchronous: { standbys: ['*'] } }), lead(), sync);
    expect(actions(d).slice(2)).toEqual([{ do: 'set-synchronous-standby-names', standbys: ['n2'] }]);
  });

  it('a standby added to synchronous_standby_names enters `sync` only after flushing past the change', () => {
    const behind = run(primaryPg({ replication: [streaming('n2', '0/5000000')], synchronous: { standbys: ['n2'], changedAt: '0/5000040' } }), lead(), sync);
    expect(does(behind)).toEqual(['renew-lease', 'publish-member']);
    expect(behind.say).toMatch(/waiting for n2 \(flushed 0\/5000000, needs 0\/5000040\) to catch up before it enters sync/);
    const caught = run(primaryPg({ replication: [streaming('n2', '0/5000040')], synchronous: { standbys: ['n2'], changedAt: '0/5000040' } }), lead(), sync);
    expect(actions(caught).slice(2)).toEqual([{ do: 'update-sync-key', standbys: ['n2'] }]);
  });

  it('the change point unknown (agent restarted): the current position stands in (stricter)', () => {
    const d = run(primaryPg({ writeLsn: '0/5000060', replication: [streaming('n2', '0/5000050')], synchronous: { standbys: ['n2'] } }), lead(), sync);
    expect(does(d)).not.toContain('update-sync-key');
  });

  it('steady: nothing to change', () => {
    const d = run(primaryPg({ replication: [streaming('n2'), streaming('n3')], synchronous: { standbys: ['n2'] } }), lead({ sync: { leader: 'n1', standbys: ['n2'] } }), sync);
    expect(does(d)).toEqual(['renew-lease', 'publish-member']);
    expect(d.say).toMatch(/; sync n2$/);
  });

  it('replacing a sync standby that stopped streaming: add the new one to synchronous_standby_names first, keep the old in `sync`', () => {
    const k = lead({ sync: { leader: 'n1', standbys: ['n2'] } });
    const step1 = run(primaryPg({ replication: [streaming('n3')], synchronous: { standbys: ['n2'] } }), k, sync);
    expect(actions(step1).slice(2)).toEqual([{ do: 'set-synchronous-standby-names', standbys: ['n2', 'n3'] }]);
    // n3 caught up: `sync` moves to n3 first, then synchronous_standby_names drops n2.
    const step2 = run(primaryPg({ replication: [streaming('n3', '0/5000060')], synchronous: { standbys: ['n2', 'n3'], changedAt: '0/5000060' } }), k, sync);
    expect(actions(step2).slice(2)).toEqual([{ do: 'update-sync-key', standbys: ['n3'] }, { do: 'set-synchronous-standby-names', standbys: ['n3'] }]);
    expect(step2.say).toMatch(/sync: removing n2 from sync first, then from synchronous_standby_names; sync n3$/);
  });

  it('narrowing (fewer wanted): `sync` first, synchronous_standby_names after', () => {
    const d = run(primaryPg({ replication: [streaming('n2'), streaming('n3')], synchronous: { standbys: ['n2', 'n3'] } }), lead({ sync: { leader: 'n1', standbys: ['n2', 'n3'] } }), sync);
    expect(actions(d).slice(2)).toEqual([{ do: 'update-sync-key', standbys: ['n2'] }, { do: 'set-synchronous-standby-names', standbys: ['n2'] }]);
  });

  it('strict: with no other healthy standby, the listed one stays listed (commits wait for it) and stays in `sync`', () => {
    const d = run(primaryPg({ replication: [], synchronous: { standbys: ['n2'] } }), lead({ sync: { leader: 'n1', standbys: ['n2'] } }), sync);
    expect(does(d)).toEqual(['renew-lease', 'publish-member']);
  });

  it('a NOFAILOVER standby is never made synchronous', () => {
    const d = run(primaryPg({ replication: [streaming('n2')], synchronous: { standbys: ['*'] } }), lead({ members: [leaderMember('n1'), m('n2', { nofailover: true })] }), sync);
    expect(does(d)).toEqual(['renew-lease', 'publish-member']);
    expect(d.say).toMatch(/no standby can be synchronous .* sync names nobody: no automatic failover/);
  });

  it('`sync` naming a standby synchronous_standby_names does not require is corrected first; one written by another leader is not trusted', () => {
    const d = run(primaryPg({ replication: [streaming('n2')], synchronous: { standbys: ['n2'] } }), lead({ sync: { leader: 'n1', standbys: ['n2', 'n3'] } }), sync);
    expect(actions(d).slice(2)).toEqual([{ do: 'update-sync-key', standbys: ['n2'] }]);
    const newLeader = run(primaryPg({ replication: [streaming('n2')], synchronous: { standbys: [] } }), lead({ sync: { leader: 'n0', standbys: ['n1', 'n2'] } }), sync);
    expect(actions(newLeader).slice(2)).toEqual([{ do: 'set-synchronous-standby-names', standbys: ['n2'] }]);
  });

  it('asynchronous: sync is left alone', () => {
    expect(does(run(primaryPg({ replication: [streaming('n2')], synchronous: { standbys: [] } }), lead()))).toEqual(['renew-lease', 'publish-member']);
  });
});

describe('someone else leads', () => {
  const k = (over: Partial<MemberKey> = {}, more: Partial<ClusterKeys> = {}) =>
    keys({ leader: { name: 'n2', lease: '1' }, members: [m('n1'), leaderMember('n2', over)], ...more });
  const hist = [{ timeline: 2, lsn: '0/5000000', leader: 'n2', at: '2026-03-01T11:59:00Z', why: 'failover' }];

  it('my postgres is writable: demote-fast, then follow', () => {
    expect(actions(run(primaryPg(), k()))).toContainEqual({ do: 'demote-fast', why: 'not the leader' });
  });

  it('already streaming from it: nothing to do', () => {
    const d = run(standbyPg(), k());
    expect(d.row).toBe('follow');
    expect(does(d)).toEqual(['renew-lease', 'publish-member']);
    expect(d.say).toBe('n2 leads (timeline 1, at 0/5000060): following it (timeline 1, received 0/5000000)');
  });

  it('following another node: re-point with a reload on 13+, a restart before; start a stopped standby', () => {
    expect(find(run(standbyPg({ following: '10.0.0.3:5432' }), k()), 'follow-leader')).toEqual({ do: 'follow-leader', leader: 'n2', address: '10.0.0.2:5432', how: 'reload' });
    expect(find(run(standbyPg({ following: '10.0.0.3:5432', major: 12, pgdata: cluster({ major: 12, standby: true }) }), k()), 'follow-leader')?.how).toBe('restart');
    expect(find(run(stoppedPg(cluster({ standby: true })), k()), 'follow-leader')?.how).toBe('start');
  });

  it('its slot on the leader: created when observe found it missing, before re-pointing', () => {
    const d = run(standbyPg({ following: '10.0.0.3:5432', slotOnLeader: false }), k());
    expect(does(d)).toEqual(['renew-lease', 'publish-member', 'create-slot', 'follow-leader']);
    expect(does(run(standbyPg({ slotOnLeader: true }), k()))).not.toContain('create-slot');
    expect(does(run(standbyPg({ slotOnLeader: false }), k(), { s: { slots: false } }))).not.toContain('create-slot');
  });

  it('no cluster here: clone it', () => {
    expect(does(run(stoppedPg({ kind: 'empty' }), k()))).toContain('clone-from-leader');
  });

  it('its member key missing or not a running primary yet: wait', () => {
    expect(run(standbyPg(), keys({ leader: { name: 'n2', lease: '1' } })).say).toBe('n2 leads but has not published its member key yet: waiting');
    expect(does(run(standbyPg(), k({ role: 'standby' })))).toEqual(['renew-lease', 'publish-member']);
  });

  it('a standby on the older timeline that did not receive past the fork: just follows (no rewind)', () => {
    const d = run(standbyPg({ following: '10.0.0.3:5432', receivedLsn: '0/5000000' }), k({ timeline: 2 }, { history: hist }));
    expect(does(d)).toContain('follow-leader');
    expect(does(d)).not.toContain('rewind-or-reclone');
  });

  it('a standby that received past the fork: rewind (else move aside, clone)', () => {
    const d = run(standbyPg({ receivedLsn: '0/5000100' }), k({ timeline: 2 }, { history: hist }));
    expect(d.row).toBe('rejoin');
    expect(find(d, 'rewind-or-reclone')).toEqual({ do: 'rewind-or-reclone', leader: 'n2', address: '10.0.0.2:5432' });
    expect(d.say).toBe('n2 leads on timeline 2; I am on timeline 1 and my WAL reaches 0/5000100, past the fork at 0/5000000: rewind (else move aside, kept, and clone), then follow');
  });

  it('a former primary stopped cleanly at or before the fork (a switchover): follows without rewind; after a crash: rewind', () => {
    const clean = stoppedPg(cluster({ state: 'shut down' }), { shutdownEnd: '0/5000000' });
    expect(find(run(clean, k({ timeline: 2 }, { history: hist })), 'follow-leader')?.how).toBe('start');
    expect(does(run(stoppedPg(cluster({ state: 'in production' })), k({ timeline: 2 }, { history: hist })))).toContain('rewind-or-reclone');
    expect(does(run(clean, k({ timeline: 2 })))).toContain('rewind-or-reclone'); // the history does not say where timeline 2 began
  });

  it('a stopped standby on an older timeline: its WAL end is unknown, so rewind', () => {
    expect(does(run(stoppedPg(cluster({ standby: true, state: 'shut down in recovery' })), k({ timeline: 2 }, { history: hist })))).toContain('rewind-or-reclone');
  });

  it('the leader on an older timeline than mine, or a primary of my own timeline: waits, touching nothing', () => {
    expect(run(standbyPg({ timeline: 3 }), k({ timeline: 2 })).say).toBe('n2 leads on timeline 2, older than mine (3): cannot follow it; waiting');
    const d = run(stoppedPg(cluster({ state: 'shut down' })), k());
    expect(does(d)).toEqual(['renew-lease', 'publish-member']);
    expect(d.say).toMatch(/^n2 leads on my timeline 1 while PGDATA holds a primary of that timeline/);
  });
});

describe('no leader, before the race', () => {
  it('no cluster here: waits for a leader to clone', () => {
    expect(does(run(stoppedPg({ kind: 'empty' }), keys()))).toEqual(['renew-lease', 'publish-member']);
  });

  it('postgres down: started read-only (never writable without the key), to take part', () => {
    expect(actions(run(stoppedPg(cluster({ state: 'shut down' })), keys()))).toContainEqual({ do: 'start-postgres', as: 'read-only' });
  });

  it('the old leader that handed over (switchover from it): waits for the new leader, not starting', () => {
    const d = run(stoppedPg(cluster({ state: 'shut down' }), { shutdownEnd: '0/6000028' }), keys({ switchover: { from: 'n1', to: 'n2' }, members: [m('n2')] }));
    expect(does(d)).toEqual(['renew-lease', 'publish-member']);
  });
});

describe('no leader: the failover race', () => {
  const members = [m('n1'), m('n2', { receivedLsn: '0/5000000' }), m('n3', { receivedLsn: '0/4000000' })];
  const k = (over: Partial<ClusterKeys> = {}) => keys({ members, ...over });
  const me = (receivedLsn = '0/5000000', over: Partial<LocalPostgres> = {}) => standbyPg({ receivedLsn, following: '10.0.0.9:5432', ...over });

  it("asks the other candidates' APIs for their CURRENT position first (nothing else in that decision)", () => {
    const d = run(me(), k());
    expect(d.row).toBe('ask members');
    expect(actions(d)).toEqual([{ do: 'ask-members', names: ['n2', 'n3'] }]);
  });

  it('a member ahead of me: not taking the lock, saying so', () => {
    const d = run(me('0/5000000'), k(), { asked: { n2: { received: '0/5000060', timeline: 1 }, n3: { received: '0/4000000', timeline: 1 } } });
    expect(d.row).toBe('no leader: waiting');
    expect(does(d)).toEqual(['renew-lease', 'publish-member']);
    expect(d.say).toBe('no leader; n2 is ahead of me (0/5000060 > 0/5000000): not taking the lock');
  });

  it('the live answer counts, not the published position (which may be a loop old)', () => {
    const stale = keys({ members: [m('n1'), m('n2', { receivedLsn: '0/1000000' })] });
    expect(run(me('0/5000000'), stale, { asked: { n2: { received: '0/5000060', timeline: 1 } } }).row).toBe('no leader: waiting');
  });

  it('nobody ahead: takes the key (transaction), promotes, checkpoints, appends history', () => {
    const d = run(me('0/5000060'), k(), { asked: { n2: { received: '0/5000000', timeline: 1 }, n3: { error: 'timeout after 1000 ms' } } });
    expect(d.row).toBe('failover');
    expect(does(d)).toEqual(TAKE);
    expect(d.say).toBe('no leader; I am the healthiest (0/5000060; n2 at 0/5000000, n3 did not answer): taking the lock and promoting');
    expect(find(d, 'append-history')?.why).toBe('no leader; n1 was the healthiest at 0/5000060');
  });

  it('ties are broken by name order', () => {
    const tie = { n2: { received: '0/5000000', timeline: 1 }, n3: { received: '0/4000000', timeline: 1 } };
    expect(does(run(me('0/5000000'), k(), { asked: tie }))).toEqual(TAKE); // n1 < n2
    const asN3 = run(me('0/5000000'), keys({ members: [m('n2'), m('n3')] }), { s: { name: 'n3', instance: 'i-n3' }, asked: { n2: { received: '0/5000000', timeline: 1 } } });
    expect(asN3.say).toBe('no leader; n2 is as far as I am (0/5000000) and comes first by name: not taking the lock');
  });

  it('a member on a newer timeline blocks; one on an older timeline is behind whatever its position', () => {
    expect(run(me(), k(), { asked: { n2: { received: '0/1', timeline: 2 } } }).say).toBe('no leader; n2 is on a newer timeline (2 > 1): not taking the lock');
    expect(does(run(me('0/5000000', { timeline: 2 }), k(), { asked: { n2: { received: '0/9000000', timeline: 1 } } }))).toEqual(TAKE);
  });

  it('alone (no other candidate): takes it without asking', () => {
    expect(does(run(me(), keys({ members: [m('n1')] })))).toEqual(TAKE);
  });

  it('NOFAILOVER here: never races; a NOFAILOVER member is neither asked nor waited for', () => {
    expect(run(me(), k(), { s: { nofailover: true } }).say).toBe('no leader; PGREPL_NOFAILOVER=on here: not taking the lock');
    const d = run(me(), keys({ members: [m('n1'), m('n2', { nofailover: true })] }));
    expect(does(d)).toEqual(TAKE);
  });

  it('too far behind the last known primary position: not a candidate', () => {
    const d = run(me('0/5000000'), k(), { mem: { lastLeaderLsn: '0/5200001' } });
    expect(d.say).toBe('no leader; I am 2097153 bytes behind the last known primary position (0/5000000 < 0/5200001), over PGREPL_MAX_LAG_ON_FAILOVER=1048576: not taking the lock');
    expect(run(me('0/5000000'), k(), { mem: { lastLeaderLsn: '0/5100000' } }).row).toBe('ask members');
  });

  it('on an older timeline than the cluster reached: not a candidate', () => {
    const d = run(me(), k({ history: [{ timeline: 2, lsn: '0/4000000', leader: 'n2', at: 'x', why: 'y' }] }));
    expect(d.say).toBe('no leader; I am on timeline 1, the cluster reached timeline 2: not taking the lock');
  });

  describe('synchronous mode', () => {
    const s = { syncStandbys: 1 };
    it('not in `sync`: not a candidate', () => {
      expect(run(me(), k({ sync: { leader: 'n0', standbys: ['n2'] } }), { s }).say).toBe(
        'no leader; synchronous mode and I am not a synchronous standby (sync: n2): not taking the lock',
      );
    });

    it('`sync` names nobody: no automatic failover, saying how to force one', () => {
      expect(run(me(), k(), { s }).say).toMatch(/sync: nobody\): no node may lead without losing acknowledged commits; pgrepl failover --to NODE forces one: not taking the lock$/);
    });

    it('in `sync`: compares only with the other synchronous standbys; an asynchronous one ahead does not block', () => {
      const sk = k({ sync: { leader: 'n0', standbys: ['n1', 'n3'] } });
      expect(actions(run(me(), sk, { s }))).toEqual([{ do: 'ask-members', names: ['n3'] }]);
      expect(does(run(me(), sk, { s, asked: { n3: { received: '0/4000000', timeline: 1 } } }))).toEqual(TAKE_SYNC);
    });

    it('promoting in synchronous mode: any standby first (ANY n (*)), so that commits do not wait for the dead leader its settings may name; looks again soon', () => {
      const d = run(me(), k({ sync: { leader: 'n0', standbys: ['n1'] } }), { s });
      expect(actions(d).slice(2, 4)).toEqual([{ do: 'take-leader-key' }, { do: 'set-synchronous-standby-names', standbys: ['*'] }]);
      expect(does(d).indexOf('set-synchronous-standby-names')).toBeLessThan(does(d).indexOf('promote'));
      expect(d).toMatchObject({ nextLoopMs: 500 });
    });
  });

  describe('a switchover or failover request', () => {
    it('names another live member: only it takes the key', () => {
      const d = run(me('0/9000000'), k({ switchover: { from: 'n0', to: 'n3' } }));
      expect(d.say).toBe('no leader; a switchover from n0 to n3 was asked: it takes the lock: not taking the lock');
    });

    it('names me: take it without comparing (the old leader checked; or the operator chose) and clear the request', () => {
      const d = run(me('0/4000000'), k({ switchover: { from: 'n0', to: 'n1' } }));
      expect(does(d)).toEqual([...TAKE, 'clear-switchover']);
      expect(find(d, 'append-history')?.why).toBe('switchover from n0');
      expect(does(run(me(), k({ switchover: { to: 'n1' } })))).toEqual([...TAKE, 'clear-switchover']);
    });

    it('names a node that is no member (any more): ignored, the race goes on', () => {
      expect(run(me(), k({ switchover: { from: 'n0', to: 'n9' } })).row).toBe('ask members');
    });

    it('after a switchover without a target, the winner clears the request', () => {
      const d = run(me('0/6000028'), k({ switchover: { from: 'n0' } }), { asked: { n2: { received: '0/6000028', timeline: 1 }, n3: { error: 'x' } } });
      expect(does(d)).toEqual([...TAKE, 'clear-switchover']);
    });

    it('the old leader that handed over is neither asked nor waited for (it stopped where the others received to)', () => {
      const withOld = keys({ members: [m('n0', { role: 'primary', state: 'stopped', writeLsn: '0/6000028' }), m('n1'), m('n2')], switchover: { from: 'n0' } });
      expect(actions(run(me('0/6000028'), withOld))).toEqual([{ do: 'ask-members', names: ['n2'] }]);
    });

    it('the old leader that handed over, now read-only: does not race while others may lead', () => {
      expect(run(me(), k({ switchover: { from: 'n1' } })).say).toBe('no leader; I am switching over to n2, n3: not taking the lock');
    });
  });
});

describe('switchover: the leader side', () => {
  const k = (sw: ClusterKeys['switchover'], over: Partial<ClusterKeys> = {}) =>
    keys({ leader: mine, members: [leaderMember('n1'), m('n2'), m('n3', { nofailover: true })], switchover: sw, ...over });
  const stopped = (over: Partial<LocalPostgres> = {}) => stoppedPg(cluster({ state: 'shut down' }), { shutdownEnd: '0/6000028', ...over });

  it('fast-stops (shutdown checkpoint) while keeping the key', () => {
    const d = run(primaryPg(), k({ from: 'n1', to: 'n2' }));
    expect(d.row).toBe('switchover');
    expect(does(d)).toEqual(['renew-lease', 'publish-member', 'stop-postgres']);
    expect(does(d)).not.toContain('release-leader-key');
  });

  it('stopped: asks the candidate, releases the key once it received the shutdown checkpoint', () => {
    expect(actions(run(stopped(), k({ from: 'n1', to: 'n2' })))).toEqual([{ do: 'ask-members', names: ['n2'] }]);
    const d = run(stopped(), k({ from: 'n1', to: 'n2' }), { asked: { n2: { received: '0/6000028', timeline: 1 } } });
    expect(does(d)).toEqual(['renew-lease', 'release-leader-key']);
    expect(d.say).toBe('switchover to n2: n2 received my shutdown checkpoint (n2 at 0/6000028; stopped at 0/6000028): releasing the leader key');
  });

  it('the candidate did not receive it (behind, or no answer): abandoned, the leader starts again as the primary, nothing lost', () => {
    for (const a of [{ received: '0/6000000', timeline: 1 }, { error: 'timeout' }] as Answer[]) {
      const d = run(stopped(), k({ from: 'n1', to: 'n2' }), { asked: { n2: a } });
      expect(d.row).toBe('switchover abandoned');
      expect(does(d)).toEqual(['renew-lease', 'publish-member', 'clear-switchover', 'start-postgres']);
      expect(does(d)).not.toContain('release-leader-key');
    }
  });

  it('without a target: asks every standby that may lead', () => {
    expect(actions(run(stopped(), k({ from: 'n1' })))).toEqual([{ do: 'ask-members', names: ['n2'] }]);
  });

  it('a target that may not lead: refused (request cleared), nothing stopped', () => {
    const d = run(primaryPg(), k({ from: 'n1', to: 'n3' }));
    expect(d.row).toBe('switchover refused');
    expect(d.say).toBe('switchover to n3 asked, but n3 has PGREPL_NOFAILOVER=on: clearing the request; I stay the leader');
    expect(does(d)).not.toContain('stop-postgres');
    expect(run(primaryPg(), k({ from: 'n1', to: 'n2' }), { s: { syncStandbys: 1 } }).say).toMatch(/n2 is not a synchronous standby \(sync: nobody\)/);
    expect(run(primaryPg(), k({ from: 'n1', to: 'n2' }, { members: [leaderMember('n1'), m('n2', { timeline: 0 })] })).row).toBe('switchover refused');
    expect(run(primaryPg(), k({ from: 'n1' }, { members: [leaderMember('n1')] })).row).toBe('switchover refused');
  });

  it('scheduled later: leads as usual until then', () => {
    const d = run(primaryPg(), k({ from: 'n1', to: 'n2', at: '2026-03-01T13:00:00Z' }));
    expect(d.row).toBe('leader');
    expect(d.say).toMatch(/; switchover scheduled at 2026-03-01T13:00:00Z$/);
  });

  it('a request naming another leader, or a failover request while I lead: cleared', () => {
    expect(does(run(primaryPg(), k({ from: 'n0', to: 'n2' })))).toEqual(['renew-lease', 'publish-member', 'clear-switchover']);
    expect(run(primaryPg(), k({ to: 'n2' })).say).toBe('I lead; a failover to n2 was asked, but I lead: clearing the request');
  });

  it('postgres crashed during it (no clean stop): restarted in place first', () => {
    expect(actions(run(stoppedPg(cluster()), k({ from: 'n1', to: 'n2' })))).toContainEqual({ do: 'start-postgres', as: 'primary' });
  });
});
