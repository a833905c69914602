import { describe, expect, it } from 'vitest';
import type { Observation } from '../../src/observe/observe.js';
import type { PgdataState } from '../../src/observe/pgdata.js';
import { decide, type Intent, type Plan } from '../../src/plan/decide.js';

const cluster = (over: Partial<Extract<PgdataState, { kind: 'cluster' }>> = {}): PgdataState => ({
  kind: 'cluster', major: 15, standby: false, systemIdentifier: '7000000000000000001', state: 'shut down', timeline: 1, swapPending: false, ...over,
});

function obs(pgdata: PgdataState, over: Partial<Observation> = {}): Observation {
  return {
    pgdata, binariesMajor: 15, runningAsRoot: false, replicationPasswordCurrent: false,
    lastRole: undefined, replicationAuthMethod: undefined, follow: undefined, stateIgnored: undefined, ...over,
  };
}

const primary: Intent = {
  role: 'PRIMARY', pgdata: '/data', hasPostgresPassword: true, hostAuthMethod: undefined, reclone: 'never', slots: true, upstreamTimeoutSeconds: 300,
};
const steps = (p: Plan) => ('steps' in p ? p.steps.map((s) => s.do) : []);
const refusal = (p: Plan) => ('refuse' in p ? p.refuse : undefined);

const FIRST_BOOT = [
  'prepare-directories', 'initdb', 'start-temp-server', 'create-databases', 'allow-host-connections',
  'set-replication-role', 'run-init-scripts', 'stop-temp-server', 'sync-staging', 'commit-staging', 'write-settings', 'record-state', 'hand-over',
];

describe('PRIMARY rows', () => {
  it('missing PGDATA: initdb and bootstrap in staging, then start', () => {
    const p = decide(obs({ kind: 'missing' }), primary);
    expect(p.row).toBe('missing/empty × PRIMARY');
    expect(steps(p)).toEqual(FIRST_BOOT);
  });

  it('empty PGDATA: the same as missing', () => {
    expect(steps(decide(obs({ kind: 'empty' }), primary))).toEqual(FIRST_BOOT);
  });

  it('as root: drops privileges right after preparing directories', () => {
    const s = steps(decide(obs({ kind: 'empty' }, { runningAsRoot: true }), primary));
    expect(s.slice(0, 3)).toEqual(['prepare-directories', 'drop-privileges', 'initdb']);
  });

  it('refuses a new cluster without a superuser password unless the method is trust', () => {
    const p = decide(obs({ kind: 'empty' }), { ...primary, hasPostgresPassword: false });
    expect(refusal(p)).toMatch(/^POSTGRES_PASSWORD is not set: .*POSTGRES_HOST_AUTH_METHOD=trust/);
    expect(steps(decide(obs({ kind: 'empty' }), { ...primary, hasPostgresPassword: false, hostAuthMethod: 'trust' }))).toEqual(FIRST_BOOT);
  });

  it('an interrupted initdb: discards only the staging copy, then initdb again', () => {
    const p = decide(obs({ kind: 'interrupted-build', build: 'init', staging: '.pgrepl-staging-init' }), primary);
    expect(steps(p)).toEqual(['prepare-directories', 'discard-interrupted-build', ...FIRST_BOOT.slice(1)]);
    expect('steps' in p && p.steps[1]).toEqual({ do: 'discard-interrupted-build', staging: '.pgrepl-staging-init' });
  });

  it('an interrupted clone: refuses, touching nothing', () => {
    const p = decide(obs({ kind: 'interrupted-build', build: 'clone', staging: '.pgrepl-staging-clone' }), primary);
    expect(refusal(p)).toMatch(/interrupted clone .* PGREPL_ROLE=STANDBY/);
  });

  it("a primary's cluster, password current: no initdb, no temporary server", () => {
    const p = decide(obs(cluster(), { replicationPasswordCurrent: true }), primary);
    expect(p.row).toBe('primary cluster × PRIMARY');
    expect(steps(p)).toEqual(['prepare-directories', 'write-settings', 'record-state', 'hand-over']);
  });

  it("a primary's cluster, token changed or state unknown: re-applies the password", () => {
    const p = decide(obs(cluster(), { replicationPasswordCurrent: false }), primary);
    expect(steps(p)).toEqual([
      'prepare-directories', 'start-temp-server', 'set-replication-role', 'stop-temp-server', 'write-settings', 'record-state', 'hand-over',
    ]);
    expect(steps(p)).not.toContain('initdb');
    expect(steps(p)).not.toContain('run-init-scripts');
  });

  it('a restart does not need POSTGRES_PASSWORD', () => {
    const p = decide(obs(cluster(), { replicationPasswordCurrent: true }), { ...primary, hasPostgresPassword: false });
    expect(steps(p)).toContain('hand-over');
  });

  it("a standby's cluster: promoted on start, detached from its old upstream, data kept", () => {
    const p = decide(obs(cluster({ standby: true })), primary);
    expect(p.row).toBe('standby cluster × PRIMARY');
    expect('steps' in p && p.steps).toEqual([
      { do: 'prepare-directories' },
      { do: 'start-temp-server', on: 'pgdata', detached: true },
      { do: 'promote-temp-server' },
      { do: 'set-replication-role' },
      { do: 'stop-temp-server' },
      { do: 'write-settings', as: 'PRIMARY' },
      { do: 'record-state' },
      { do: 'hand-over' },
    ]);
  });

  it('a build half moved in: finishes the move first', () => {
    const p = decide(obs(cluster({ swapPending: true })), primary);
    expect(steps(p).slice(0, 2)).toEqual(['prepare-directories', 'finish-swap']);
  });
});

describe('refusals that touch nothing', () => {
  const cases: [string, PgdataState, RegExp][] = [
    ['another major version', cluster({ major: 14 }), /^PGDATA=\/data holds a PostgreSQL 14 cluster but these binaries are PostgreSQL 15: .*pg_upgrade/],
    ['not a cluster', { kind: 'not-a-cluster', entries: ['lost+found'] }, /^PGDATA=\/data is not empty and holds no PostgreSQL cluster \(found: lost\+found\): point PGDATA at an empty subdirectory .*PGDATA=\/data\/pgdata/],
    ['not a directory', { kind: 'not-a-directory' }, /^PGDATA=\/data exists and is not a directory/],
    ['unreadable', { kind: 'unreadable', code: 'EACCES' }, /^PGDATA=\/data cannot be read \(EACCES\)/],
  ];
  for (const [name, state, message] of cases) {
    for (const role of ['PRIMARY', 'STANDBY'] as const) {
      it(`${name} × ${role}`, () => {
        const p = decide(obs(state), { ...primary, role });
        expect(refusal(p)).toMatch(message);
        expect(steps(p)).toEqual([]);
      });
    }
  }
});

describe('STANDBY rows', () => {
  const standby: Intent = { ...primary, role: 'STANDBY' };
  const SYS = '7000000000000000001';
  const up = (over: Record<string, unknown> = {}) => ({
    target: { host: 'pg1', port: 5432, source: 'PGREPL_MASTER_IP', dropFollow: false },
    found: { reachable: true as const, systemIdentifier: SYS, timeline: 1, major: 15, ...over },
  });
  const down = { target: { host: 'pg1', port: 5432, source: 'PGREPL_MASTER_IP', dropFollow: false }, found: { reachable: false as const, error: 'ECONNREFUSED' } };
  const tools = { basebackup: 15, rewind: 15 };
  const sobs = (pgdata: PgdataState, over: Partial<Observation> = {}) => obs(pgdata, { upstream: up(), tools, ...over });
  const START = ['write-settings', 'record-state', 'hand-over'];

  it('empty: clones (never initdb, never init scripts), then starts as a standby', () => {
    const p = decide(sobs({ kind: 'empty' }), standby);
    expect(p.row).toBe('missing/empty × STANDBY');
    expect(steps(p)).toEqual(['prepare-directories', 'clone', 'commit-staging', 'ensure-slot', ...START]);
    expect('steps' in p && p.steps.find((s) => s.do === 'write-settings')).toEqual({ do: 'write-settings', as: 'STANDBY' });
  });

  it('empty, slots off: no slot step', () => {
    expect(steps(decide(sobs({ kind: 'missing' }), { ...standby, slots: false }))).not.toContain('ensure-slot');
  });

  it('empty, upstream never answered: refuses, naming it and the timeout', () => {
    const p = decide(sobs({ kind: 'empty' }, { upstream: down }), standby);
    expect(refusal(p)).toBe(
      'the upstream pg1:5432 (PGREPL_MASTER_IP) did not answer within 300 s (PGREPL_UPSTREAM_TIMEOUT): ECONNREFUSED; start the upstream, or check PGREPL_MASTER_IP/PGREPL_MASTER_PORT and the network; nothing was changed',
    );
  });

  it('an interrupted clone (or initdb): discards only that copy, clones again', () => {
    for (const build of ['clone', 'init'] as const) {
      const staging = build === 'clone' ? '.pgrepl-staging-clone' : '.pgrepl-staging-init';
      const p = decide(sobs({ kind: 'interrupted-build', build, staging }), standby);
      expect(steps(p)).toEqual(['prepare-directories', 'discard-interrupted-build', 'clone', 'commit-staging', 'ensure-slot', ...START]);
    }
  });

  it("a standby's cluster of the same system: keeps the data, no copy", () => {
    const p = decide(sobs(cluster({ standby: true })), standby);
    expect(p.row).toBe('standby cluster × STANDBY');
    expect(steps(p)).toEqual(['prepare-directories', 'ensure-slot', ...START]);
  });

  it("a standby's cluster whose upstream is down: starts on its data anyway", () => {
    const p = decide(sobs(cluster({ standby: true }), { upstream: down }), standby);
    expect(steps(p)).toEqual(['prepare-directories', ...START]);
  });

  it("a standby's cluster behind a newer timeline: rewinds (no-op unless diverged), else re-clones", () => {
    const p = decide(sobs(cluster({ standby: true }), { upstream: up({ timeline: 2 }) }), standby);
    expect(steps(p)).toEqual(['prepare-directories', 'rewind', 'ensure-slot', ...START]);
    expect('steps' in p && p.steps[1]).toEqual({
      do: 'rewind', fallback: [{ do: 'move-aside' }, { do: 'clone' }, { do: 'commit-staging', staging: '.pgrepl-staging-clone' }],
    });
  });

  it("a standby's cluster ahead of its upstream: refuses", () => {
    const p = decide(sobs(cluster({ standby: true, timeline: 3 }), { upstream: up({ timeline: 2 }) }), standby);
    expect(refusal(p)).toMatch(/is on timeline 3, newer than the upstream pg1:5432 \(PGREPL_MASTER_IP\) on timeline 2/);
  });

  it('another system: refuses, or with PGREPL_RECLONE=auto moves the data aside and clones', () => {
    const other = sobs(cluster({ standby: true }), { upstream: up({ systemIdentifier: '42' }) });
    expect(refusal(decide(other, standby))).toMatch(/holds system 7000000000000000001 but the upstream .* is system 42: .*PGREPL_RECLONE=auto/);
    expect(steps(decide(other, { ...standby, reclone: 'auto' }))).toEqual([
      'prepare-directories', 'move-aside', 'clone', 'commit-staging', 'ensure-slot', ...START,
    ]);
  });

  it('a former primary behind a newer timeline of its system: rewind, fallback move aside + clone', () => {
    const p = decide(sobs(cluster(), { upstream: up({ timeline: 2 }), lastRole: 'PRIMARY' }), standby);
    expect(p.row).toBe('primary cluster × STANDBY');
    expect(steps(p)).toEqual(['prepare-directories', 'rewind', 'ensure-slot', ...START]);
  });

  it('a former primary whose pg_rewind is of another version: moves aside and clones', () => {
    const p = decide(sobs(cluster(), { upstream: up({ timeline: 2 }), tools: { basebackup: 15, rewind: 16 } }), standby);
    expect(steps(p)).toEqual(['prepare-directories', 'move-aside', 'clone', 'commit-staging', 'ensure-slot', ...START]);
  });

  it('a former primary and an upstream that is not newer: refuses (nothing newer to follow)', () => {
    const p = decide(sobs(cluster({ timeline: 2 }), { upstream: up({ timeline: 2 }), lastRole: 'PRIMARY' }), standby);
    expect(refusal(p)).toMatch(/holds a primary on timeline 2 and PGREPL_ROLE=STANDBY, but the upstream .* is not on a newer timeline \(2\)/);
  });

  it('a standby promoted while running (pg_ctl promote), env unchanged: stays a primary', () => {
    for (const upstream of [up({ timeline: 1 }), down]) {
      const p = decide(sobs(cluster({ timeline: 2 }), { upstream, lastRole: 'STANDBY' }), standby);
      expect(p.row).toBe('promoted standby × STANDBY');
      expect('steps' in p && p.steps.find((s) => s.do === 'write-settings')).toEqual({ do: 'write-settings', as: 'PRIMARY' });
    }
  });

  it('an upstream of another major version: refuses', () => {
    expect(refusal(decide(sobs({ kind: 'empty' }, { upstream: up({ major: 16 }) }), standby))).toMatch(
      /runs PostgreSQL 16 but this node's binaries are PostgreSQL 15/,
    );
  });

  it('a pg_basebackup older than the upstream: refuses naming both versions', () => {
    const p = decide(sobs({ kind: 'empty' }, { tools: { basebackup: 14, rewind: 14 } }), standby);
    expect(refusal(p)).toMatch(/pg_basebackup is version 14 but the upstream .* runs PostgreSQL 15 \(incompatible server version\)/);
  });
});

describe('how long to wait for the upstream', () => {
  it('waits the full timeout when there is nothing to serve without it, briefly otherwise', async () => {
    const { upstreamPatience } = await import('../../src/plan/upstream.js');
    expect(upstreamPatience({ kind: 'empty' }, undefined, 300)).toBe(300);
    expect(upstreamPatience({ kind: 'interrupted-build', build: 'clone', staging: '.pgrepl-staging-clone' }, undefined, 300)).toBe(300);
    expect(upstreamPatience(cluster(), 'PRIMARY', 300)).toBe(300); // a former primary must be rewound first
    expect(upstreamPatience(cluster({ standby: true }), 'STANDBY', 300)).toBe(5);
    expect(upstreamPatience(cluster(), 'STANDBY', 300)).toBe(5); // promoted behind our back: it serves writes
    expect(upstreamPatience(cluster({ standby: true }), undefined, 3)).toBe(3);
  });
});
