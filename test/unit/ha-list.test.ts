import { describe, expect, it } from 'vitest';
import { clusterView, formatLag, listing, listJson, listTable } from '../../src/ha/list.js';
import type { ClusterKeys, MemberKey } from '../../src/ha/types.js';

const SYS = '7000000000000000001';
const LEASE = '7587869342718462211';

const standby = (name: string, over: Partial<MemberKey> = {}): MemberKey => ({
  name, instance: `i-${name}`, address: `10.0.0.${name.slice(1)}:5432`, api: `10.0.0.${name.slice(1)}:8008`,
  role: 'standby', state: 'streaming', timeline: 2, receivedLsn: '0/5000060', replayedLsn: '0/5000000', nofailover: false, ...over,
});
const primary = (name: string, over: Partial<MemberKey> = {}): MemberKey =>
  standby(name, { role: 'primary', state: 'running', writeLsn: '0/5000060', receivedLsn: undefined, replayedLsn: undefined, ...over });

const keys = (over: Partial<ClusterKeys> = {}): ClusterKeys => ({
  initialize: SYS, leader: { name: 'n1', lease: LEASE }, members: [], history: [], pause: false, ...over,
});

/** n1 leads on timeline 2, n2 is its synchronous standby, n3 is 4 kB behind and may never lead. */
const healthy = () => keys({
  members: [standby('n3', { receivedLsn: '0/5000000', replayedLsn: '0/4FFFFA0', nofailover: true }), primary('n1'), standby('n2')],
  sync: { leader: 'n1', standbys: ['n2'] },
});

describe('pgrepl list: the table', () => {
  it('a healthy cluster of three: the leader first, lag against its write position, tags', () => {
    expect(listTable(clusterView('pgrepl', healthy()))).toBe(
      [
        'Cluster pgrepl (system 7000000000000000001): leader n1, timeline 2',
        'Member  Address        Role     State      TL   Lag  Tags',
        'n1      10.0.0.1:5432  primary  running     2        leader',
        '├─ n2   10.0.0.2:5432  standby  streaming   2   0 B  sync',
        '└─ n3   10.0.0.3:5432  standby  streaming   2  96 B  nofailover',
        '',
      ].join('\n'),
    );
  });

  it('no leader: says so, takes the timeline from the newest promotion, lag unknown', () => {
    const k = keys({
      leader: undefined,
      members: [primary('n1', { state: 'stopped' }), standby('n2', { state: 'running' }), standby('n3', { state: 'running' })],
      sync: { leader: 'n1', standbys: ['n2'] },
      history: [
        { timeline: 2, lsn: '0/3000000', leader: 'n1', at: '2026-01-01T00:00:00Z', why: 'bootstrap' },
        { timeline: 3, lsn: '0/4000000', leader: 'n1', at: '2026-01-02T00:00:00Z', why: 'failover' },
      ],
    });
    expect(listTable(clusterView('prod', k))).toBe(
      [
        'Cluster prod (system 7000000000000000001): no leader, timeline 3',
        'Member  Address        Role     State    TL      Lag  Tags',
        'n1      10.0.0.1:5432  primary  stopped   2  unknown',
        'n2      10.0.0.2:5432  standby  running   2  unknown  sync',
        'n3      10.0.0.3:5432  standby  running   2  unknown',
        '',
      ].join('\n'),
    );
  });

  it('a lagging standby in MB, a standby ahead of the leader\'s published position at 0, a member without a position unknown', () => {
    const k = keys({
      leader: { name: 'n3', lease: LEASE },
      members: [
        standby('n1', { receivedLsn: '0/2800000', replayedLsn: '0/2700000' }),
        // the leader's member key is up to a loop old: a standby can show a position past it
        standby('n2', { receivedLsn: '0/5000100', replayedLsn: '0/5000100' }),
        primary('n3', { writeLsn: '0/5000060' }),
        standby('n4', { state: 'stopped', timeline: undefined, receivedLsn: undefined, replayedLsn: undefined }),
      ],
    });
    expect(listTable(clusterView('pgrepl', k))).toBe(
      [
        'Cluster pgrepl (system 7000000000000000001): leader n3, timeline 2',
        'Member  Address        Role     State      TL      Lag  Tags',
        'n3      10.0.0.3:5432  primary  running     2           leader',
        '├─ n1   10.0.0.1:5432  standby  streaming   2  40.0 MB',
        '└─ n2   10.0.0.2:5432  standby  streaming   2      0 B',
        'n4      10.0.0.4:5432  standby  stopped     ?  unknown',
        '',
      ].join('\n'),
    );
  });

  it('the topology as a tree: standbys under the leader, a cascade under the standby it streams from, members streaming from none after', () => {
    const k = keys({
      members: [
        primary('n1'),
        standby('n2', { upstream: '10.0.0.1:5432' }),
        // cascades: streaming, but from n2 (the agent calls that 'running': not from the leader)
        standby('n4', { state: 'running', upstream: '10.0.0.2:5432', receivedLsn: '0/5000000' }),
        standby('n5', { state: 'running', upstream: '10.0.0.4:5432', receivedLsn: '0/5000000' }),
        standby('n3', { upstream: '10.0.0.1:5432' }),
        // not streaming: a root of its own, after the leader's tree
        standby('n6', { state: 'stopped', receivedLsn: undefined, replayedLsn: undefined }),
        // streaming from an address no member has (a VIP, a former member): no member's child
        standby('n7', { state: 'running', upstream: '10.9.9.9:5432' }),
      ],
      sync: { leader: 'n1', standbys: ['n3'] },
    });
    expect(listTable(clusterView('pgrepl', k))).toBe(
      [
        'Cluster pgrepl (system 7000000000000000001): leader n1, timeline 2',
        'Member       Address        Role     State      TL      Lag  Tags',
        'n1           10.0.0.1:5432  primary  running     2           leader',
        '├─ n2        10.0.0.2:5432  standby  streaming   2      0 B',
        '│  └─ n4     10.0.0.4:5432  standby  running     2     96 B',
        '│     └─ n5  10.0.0.5:5432  standby  running     2     96 B',
        '└─ n3        10.0.0.3:5432  standby  streaming   2      0 B  sync',
        'n6           10.0.0.6:5432  standby  stopped     2  unknown',
        'n7           10.0.0.7:5432  standby  running     2      0 B',
        '',
      ].join('\n'),
    );
    const l = listing(clusterView('pgrepl', k));
    // --json: the same order as before the tree (leader, then by name), each with where it streams from
    expect(l.members.map((m) => [m.name, m.upstream, m.upstreamMember])).toEqual([
      ['n1', null, null], ['n2', '10.0.0.1:5432', 'n1'], ['n3', '10.0.0.1:5432', 'n1'], ['n4', '10.0.0.2:5432', 'n2'],
      ['n5', '10.0.0.4:5432', 'n4'], ['n6', null, null], ['n7', '10.9.9.9:5432', null],
    ]);
  });

  it('no leader: a cascade still hangs under its upstream; members that name each other (stale keys) are drawn, not lost', () => {
    const k = keys({
      leader: undefined,
      members: [
        standby('n1', { state: 'running' }),
        standby('n2', { state: 'running', upstream: '10.0.0.1:5432' }),
        standby('n3', { state: 'running', upstream: '10.0.0.4:5432' }),
        standby('n4', { state: 'running', upstream: '10.0.0.3:5432' }),
      ],
    });
    const lines = listTable(clusterView('pgrepl', k)).split('\n').map((line) => line.split('  ')[0]);
    expect(lines.slice(1, -1)).toEqual(['Member', 'n1', '└─ n2', 'n3', '└─ n4']);
    expect(listing(clusterView('pgrepl', k)).members.map((m) => m.upstreamMember)).toEqual([null, 'n1', null, 'n3']);
  });

  it('paused, with a switchover requested: both said under the header', () => {
    const k = { ...healthy(), pause: true, switchover: { from: 'n1', to: 'n2', at: '2026-01-03T10:00:00Z' } };
    expect(listTable(clusterView('pgrepl', k)).split('\n').slice(0, 4)).toEqual([
      'Cluster pgrepl (system 7000000000000000001): leader n1, timeline 2',
      'Paused: no automatic failover, promotion or switchover until `pgrepl resume`',
      'Switchover requested: from n1 to n2 at 2026-01-03T10:00:00Z',
      'Member  Address        Role     State      TL   Lag  Tags',
    ]);
    const failover = { ...healthy(), leader: undefined, switchover: { to: 'n3' } };
    expect(listTable(clusterView('pgrepl', failover)).split('\n')[1]).toBe('Failover requested: to n3');
  });

  it('before any cluster: not initialised and no members; while the first initdb runs: initialising', () => {
    expect(listTable(clusterView('pgrepl', keys({ initialize: undefined, leader: undefined })))).toBe(
      'Cluster pgrepl (not initialised): no leader\nNo members: no agent has published itself yet\n',
    );
    const first = keys({ initialize: '', members: [primary('n1', { role: 'none', state: 'stopped', timeline: undefined, writeLsn: undefined })] });
    expect(listTable(clusterView('pgrepl', first))).toBe(
      [
        'Cluster pgrepl (initialising): leader n1',
        'Member  Address        Role  State    TL  Lag  Tags',
        'n1      10.0.0.1:5432  none  stopped   ?       leader',
        '',
      ].join('\n'),
    );
  });

  it('a position that is not one (another agent wrote it) shows the lag unknown instead of failing the listing', () => {
    const k = keys({ members: [primary('n1'), standby('n2', { receivedLsn: 'garbage', replayedLsn: undefined })] });
    expect(listing(clusterView('pgrepl', k)).members[1]!.lagBytes).toBeNull();
    expect(listTable(clusterView('pgrepl', k))).toContain('└─ n2   10.0.0.2:5432  standby  streaming   2  unknown');
  });

  it('lag: exact bytes below 1 MB, MB (1024²) to one decimal from there', () => {
    expect(formatLag(0)).toBe('0 B');
    expect(formatLag(1024 * 1024 - 1)).toBe('1048575 B');
    expect(formatLag(1024 * 1024)).toBe('1.0 MB');
    expect(formatLag(5 * 1024 * 1024 + 512 * 1024)).toBe('5.5 MB');
  });
});

describe('pgrepl list --json', () => {
  it('the listing as data: the same members, order, lag and tags as the table; no lease, no instance', () => {
    const text = listJson(clusterView('pgrepl', healthy()));
    expect(text.endsWith('}\n')).toBe(true);
    expect(JSON.parse(text)).toEqual({
      cluster: 'pgrepl', system: SYS, leader: 'n1', timeline: 2, pause: false, sync: ['n2'], switchover: null,
      members: [
        {
          name: 'n1', address: '10.0.0.1:5432', api: '10.0.0.1:8008', role: 'primary', state: 'running', timeline: 2,
          receivedLsn: null, replayedLsn: null, writeLsn: '0/5000060', upstream: null, upstreamMember: null, lagBytes: null, leader: true, sync: false, nofailover: false, tags: ['leader'],
        },
        {
          name: 'n2', address: '10.0.0.2:5432', api: '10.0.0.2:8008', role: 'standby', state: 'streaming', timeline: 2,
          receivedLsn: '0/5000060', replayedLsn: '0/5000000', writeLsn: null, upstream: null, upstreamMember: 'n1', lagBytes: 0, leader: false, sync: true, nofailover: false, tags: ['sync'],
        },
        {
          name: 'n3', address: '10.0.0.3:5432', api: '10.0.0.3:8008', role: 'standby', state: 'streaming', timeline: 2,
          receivedLsn: '0/5000000', replayedLsn: '0/4FFFFA0', writeLsn: null, upstream: null, upstreamMember: 'n1', lagBytes: 96, leader: false, sync: false, nofailover: true, tags: ['nofailover'],
        },
      ],
    });
    expect(text).not.toContain(LEASE);
    expect(text).not.toContain('i-n1');
  });

  it('no leader: leader null, lag null, the timeline from history; a failover request as given', () => {
    const k = keys({ leader: undefined, members: [standby('n2')], history: [{ timeline: 4, lsn: '0/4000000', leader: 'n1', at: 'x', why: 'y' }], switchover: { to: 'n2' } });
    const l = JSON.parse(listJson(clusterView('c', k)));
    expect([l.leader, l.timeline, l.members[0].lagBytes, l.switchover, l.sync]).toEqual([null, 4, null, { to: 'n2' }, []]);
  });
});
