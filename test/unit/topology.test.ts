import { describe, expect, it } from 'vitest';
import { topologyTable, type TopologyEntry } from '../../src/cli/topology.js';
import type { NodeStatus } from '../../src/cli/status.js';

type Sender = NodeStatus['standbys'][number];
const sender = (name: string, over: Partial<Sender> = {}): Sender => ({
  name, address: '10.88.0.9', state: 'streaming', sync: 'async', replayLagBytes: 0, replayLagSeconds: 0, ...over,
});
const primary = (standbys: Sender[]): NodeStatus => ({ role: 'primary', timeline: 2, upstream: null, lag: null, standbys, slots: [] });
const standby = (upstream: string, standbys: Sender[] = [], status = 'streaming'): NodeStatus => ({
  role: 'standby', timeline: 2, upstream: { host: upstream, port: 5432, status }, lag: { bytes: 0, seconds: 0 }, standbys, slots: [],
});

describe('pgrepl topology: a cluster without HA as a tree', () => {
  it("the seed README's picture: the primary, its standbys, a cascade under its standby; lag and sync as the upstream sees them", () => {
    const entries: TopologyEntry[] = [
      { name: 'pg-1', node: 'pg_1', status: primary([sender('pg_2', { sync: 'sync' }), sender('pg_3', { replayLagBytes: 5 * 1024 * 1024 })]) },
      { name: 'pg-2', node: 'pg_2', status: standby('pg-1', [sender('pg_4', { state: 'catchup', replayLagBytes: 4096 })]) },
      { name: 'pg-3', node: 'pg_3', status: standby('pg-1') },
      { name: 'pg-4', node: 'pg_4', status: standby('pg-2') },
    ];
    expect(topologyTable(entries)).toBe(
      [
        'Node        Role     TL  State         Lag  Sync  Upstream',
        'pg-1        primary   2  running',
        '├─ pg-2     standby   2  streaming     0 B  sync  pg-1:5432',
        '│  └─ pg-4  standby   2  catchup    4096 B        pg-2:5432',
        '└─ pg-3     standby   2  streaming  5.0 MB        pg-1:5432',
        '',
      ].join('\n'),
    );
  });

  it('a standby no node lists (disconnected), a node that could not be asked, a clone in progress: roots, each saying why', () => {
    const entries: TopologyEntry[] = [
      { name: 'a', node: 'a', status: primary([sender('c', { state: 'cloning', walsender: 'backup' })]) },
      { name: 'b', node: 'b', status: { ...standby('a', [], 'not connected'), fencedTo: 'a:5432' } },
      { name: 'c', node: 'c', error: 'not running' },
    ];
    expect(topologyTable(entries).split('\n').map((l) => l.trimEnd())).toEqual([
      'Node  Role              TL  State              Lag  Sync  Upstream',
      'a     primary            2  running',
      'b     standby (fenced)   2  not connected  unknown        a:5432',
      'c     -                  ?  not running',
      '',
    ]);
  });
});
