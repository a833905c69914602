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
    lastRole: undefined, replicationAuthMethod: undefined, stateIgnored: undefined, ...over,
  };
}

const primary: Intent = { role: 'PRIMARY', pgdata: '/data', hasPostgresPassword: true, hostAuthMethod: undefined };
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
