import { describe, expect, it } from 'vitest';
import type { Observation, PeerFound } from '../../src/observe/observe.js';
import type { PgdataState } from '../../src/observe/pgdata.js';
import { decide, type Intent, type Plan } from '../../src/plan/decide.js';

const cluster = (over: Partial<Extract<PgdataState, { kind: 'cluster' }>> = {}): PgdataState => ({
  kind: 'cluster', major: 15, standby: false, systemIdentifier: '7000000000000000001', state: 'shut down', timeline: 1, keptCopies: [], swapPending: false, ...over,
});

function obs(pgdata: PgdataState, over: Partial<Observation> = {}): Observation {
  return {
    pgdata, binariesMajor: 15, runningAsRoot: false, replicationRoleCurrent: false,
    lastRole: undefined, replicationAuthMethod: undefined, follow: undefined, stateIgnored: undefined, ...over,
  };
}

const primary: Intent = {
  role: 'PRIMARY', pgdata: '/data', hasPostgresPassword: true, hostAuthMethod: undefined, reclone: 'never', slots: true, upstreamTimeoutSeconds: 300,
  fence: 'rejoin', replicationOn: true, namesWithLineBreaks: false,
};
const steps = (p: Plan) => ('steps' in p ? p.steps.map((s) => s.do) : []);
const refusal = (p: Plan) => ('refuse' in p ? p.refuse : undefined);

/** No init scripts: the bootstrap is one single-user run. */
const FIRST_BOOT = [
  'prepare-directories', 'initdb', 'bootstrap-in-single-user-mode', 'allow-host-connections',
  'sync-staging', 'commit-staging', 'write-settings', 'record-state', 'hand-over',
];
/** Init scripts (or a name single-user mode cannot take): a temporary server, as the official image. */
const FIRST_BOOT_SERVER = [
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

  it('no init scripts: the databases and the role in single-user mode, the role as the token wants it', () => {
    const p = decide(obs({ kind: 'empty' }, { initScripts: false }), primary);
    expect(p.why).toMatch(/bootstrap in a staging directory \(single-user mode\)/);
    expect('steps' in p && p.steps[2]).toEqual({ do: 'bootstrap-in-single-user-mode', replicationRole: 'set' });
    const tokenless = decide(obs({ kind: 'empty' }, { initScripts: false }), { ...primary, replicationOn: false });
    expect('steps' in tokenless && tokenless.steps[2]).toEqual({ do: 'bootstrap-in-single-user-mode', replicationRole: 'lock' });
  });

  it('init scripts: a temporary server on the staging copy, for them to connect to', () => {
    const p = decide(obs({ kind: 'empty' }, { initScripts: true }), primary);
    expect(steps(p)).toEqual(FIRST_BOOT_SERVER);
    expect('steps' in p && p.steps[2]).toEqual({ do: 'start-temp-server', on: 'staging' });
    expect(p.why).toMatch(/\(a temporary server, for the init scripts\)/);
  });

  it('a name with a line break (single-user mode reads a statement per line): a temporary server', () => {
    const p = decide(obs({ kind: 'missing' }, { initScripts: false }), { ...primary, namesWithLineBreaks: true });
    expect(steps(p)).toEqual(FIRST_BOOT_SERVER);
    expect(p.why).toMatch(/a temporary server: a name has a line break/);
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

  it('missing or empty PGDATA with a cluster beside it in its volume (18+ layout): refused, for both roles', () => {
    const stray = { strayClusters: [{ path: '/var/lib/postgresql', major: '17' }] };
    for (const kind of ['missing', 'empty'] as const) {
      for (const intent of [primary, { ...primary, role: 'STANDBY' as const, upstream: undefined }]) {
        const p = decide(obs({ kind }, stray), { ...intent, pgdata: '/var/lib/postgresql/18/docker' });
        expect(p.row).toBe('cluster beside PGDATA');
        expect(refusal(p)).toBe(
          `PGDATA=/var/lib/postgresql/18/docker is ${kind}, but /var/lib/postgresql in the same volume holds a PostgreSQL 17 cluster (up to 17 the volume held the cluster itself, mounted at /var/lib/postgresql/data; from 18 on it is mounted at /var/lib/postgresql with PGDATA in <major>/docker): run the image of PostgreSQL 17 on this volume, or upgrade that cluster into PGDATA=/var/lib/postgresql/18/docker with pg_upgrade; to start a new cluster anyway, move it out of the volume; nothing was changed`,
        );
      }
    }
    expect(steps(decide(obs({ kind: 'empty' }, { strayClusters: [] }), primary))).toEqual(FIRST_BOOT);
  });

  it('an interrupted initdb: discards only the staging copy, then initdb again', () => {
    const p = decide(obs({ kind: 'interrupted-build', build: 'init', staging: '.pgrepl-staging-init', keptCopies: [] }), primary);
    expect(steps(p)).toEqual(['prepare-directories', 'discard-interrupted-build', ...FIRST_BOOT.slice(1)]);
    expect('steps' in p && p.steps[1]).toEqual({ do: 'discard-interrupted-build', staging: '.pgrepl-staging-init' });
  });

  it('only kept copies (no cluster): refuses, naming them and how to restore; never initdb beside them', () => {
    const kept = ['pgrepl-aside-20260101T000000Z', 'pgrepl-aside-20260202T000000Z'];
    for (const found of [
      { kind: 'only-kept-copies' as const, keptCopies: kept },
      { kind: 'interrupted-build' as const, build: 'init' as const, staging: '.pgrepl-staging-init', keptCopies: kept },
      { kind: 'interrupted-build' as const, build: 'clone' as const, staging: '.pgrepl-staging-clone', keptCopies: kept },
    ]) {
      const p = decide(obs(found), primary);
      expect(p.row).toBe('kept copies only × PRIMARY');
      expect(steps(p)).toEqual([]);
      expect(refusal(p)).toBe(
        'PGDATA=/data holds no cluster, only data moved aside earlier (/data/pg_dynshmem/pgrepl-aside-20260101T000000Z, /data/pg_dynshmem/pgrepl-aside-20260202T000000Z): a new cluster here would be a new, empty system. To restore that data, stop the node, move everything in /data/pg_dynshmem/pgrepl-aside-20260202T000000Z but its pg_dynshmem back into PGDATA (as the postgres user), remove what is left of it, and start the node again; to make this node a standby of the cluster instead, start it with PGREPL_ROLE=STANDBY; to start a new cluster on purpose, move the kept copies out of PGDATA first; nothing was changed',
      );
    }
  });

  it('an interrupted clone: refuses, touching nothing', () => {
    const p = decide(obs({ kind: 'interrupted-build', build: 'clone', staging: '.pgrepl-staging-clone', keptCopies: [] }), primary);
    expect(refusal(p)).toMatch(/interrupted clone .* PGREPL_ROLE=STANDBY/);
  });

  it("a primary's cluster, password current: no initdb, no temporary server", () => {
    const p = decide(obs(cluster(), { replicationRoleCurrent: true }), primary);
    expect(p.row).toBe('primary cluster × PRIMARY');
    expect(steps(p)).toEqual(['prepare-directories', 'write-settings', 'record-state', 'hand-over']);
  });

  it("a primary's cluster, token changed or state unknown: re-applies the password", () => {
    const p = decide(obs(cluster(), { replicationRoleCurrent: false }), primary);
    expect(steps(p)).toEqual([
      'prepare-directories', 'start-temp-server', 'set-replication-role', 'stop-temp-server', 'write-settings', 'record-state', 'hand-over',
    ]);
    expect(steps(p)).not.toContain('initdb');
    expect(steps(p)).not.toContain('run-init-scripts');
  });

  it('a restart does not need POSTGRES_PASSWORD', () => {
    const p = decide(obs(cluster(), { replicationRoleCurrent: true }), { ...primary, hasPostgresPassword: false });
    expect(steps(p)).toContain('hand-over');
  });

  it("a standby's cluster: promoted on start, detached from its old upstream, data kept", () => {
    const p = decide(obs(cluster({ standby: true })), primary);
    expect(p.row).toBe('standby cluster × PRIMARY');
    expect('steps' in p && p.steps).toEqual([
      { do: 'prepare-directories' },
      { do: 'start-temp-server', on: 'pgdata', settings: ['primary_conninfo='] },
      { do: 'promote-temp-server' },
      { do: 'set-replication-role' },
      { do: 'stop-temp-server' },
      { do: 'write-settings', as: 'PRIMARY' },
      { do: 'record-state', as: 'PRIMARY' },
      { do: 'hand-over' },
    ]);
  });

  describe('without PGREPL_TOKEN (replication off)', () => {
    const tokenless: Intent = { ...primary, replicationOn: false };
    const LOCK = ['start-temp-server', 'lock-replication-role', 'stop-temp-server'];

    it('a new cluster: the same bootstrap, the role locked instead of given a password', () => {
      const p = decide(obs({ kind: 'empty' }, { initScripts: true }), tokenless);
      expect(steps(p)).toEqual(FIRST_BOOT_SERVER.map((s) => (s === 'set-replication-role' ? 'lock-replication-role' : s)));
    });

    it("a primary's cluster: locks the role unless the last start already did", () => {
      const p = decide(obs(cluster(), { replicationRoleCurrent: false }), tokenless);
      expect(steps(p)).toEqual(['prepare-directories', ...LOCK, 'write-settings', 'record-state', 'hand-over']);
      expect(p.why).toMatch(/replication is off \(no PGREPL_TOKEN\): the role pgrepl, if any, is locked; no initdb/);
      const locked = decide(obs(cluster(), { replicationRoleCurrent: true }), tokenless);
      expect(steps(locked)).toEqual(['prepare-directories', 'write-settings', 'record-state', 'hand-over']);
      expect(locked.why).toMatch(/replication is off \(no PGREPL_TOKEN\): the role pgrepl is locked already/);
    });

    it("a standby's cluster: promoted on start, its copied role locked", () => {
      const p = decide(obs(cluster({ standby: true })), tokenless);
      expect(steps(p)).toEqual([
        'prepare-directories', 'start-temp-server', 'promote-temp-server', 'lock-replication-role', 'stop-temp-server', 'write-settings', 'record-state', 'hand-over',
      ]);
    });

    it('a node fenced into following a peer: refused, since following needs the token', () => {
      const p = decide(obs(cluster({ standby: true }), { fenced: { host: 'pg2', port: 5432 } }), tokenless);
      expect(p.row).toBe('fenced × no token');
      expect(refusal(p)).toBe(
        "PGDATA=/data holds a node fenced into following pg2:5432 (a newer primary of its cluster), which it does on every start, and a standby needs PGREPL_TOKEN to log in there: set PGREPL_TOKEN (or PGREPL_TOKEN_FILE) to the cluster's token; nothing was changed",
      );
    });
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
    expect(steps(p)).toEqual(['prepare-directories', 'clone', 'write-settings', 'commit-staging', ...START]);
    // The copy is a standby before it is moved in; PGDATA's settings are written again at the end.
    expect('steps' in p && p.steps.filter((s) => s.do === 'write-settings')).toEqual([
      { do: 'write-settings', as: 'STANDBY', in: '.pgrepl-staging-clone' },
      { do: 'write-settings', as: 'STANDBY' },
    ]);
  });

  it('empty, slots off: no slot step', () => {
    expect(steps(decide(sobs({ kind: 'missing' }), { ...standby, slots: false }))).not.toContain('create-slot');
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
      const p = decide(sobs({ kind: 'interrupted-build', build, staging, keptCopies: [] }), standby);
      expect(steps(p)).toEqual(['prepare-directories', 'discard-interrupted-build', 'clone', 'write-settings', 'commit-staging', ...START]);
    }
  });

  it('only kept copies: clones, leaving them where they are', () => {
    const p = decide(sobs({ kind: 'only-kept-copies', keptCopies: ['pgrepl-aside-20260101T000000Z'] }), standby);
    expect(p.row).toBe('kept copies only × STANDBY');
    expect(steps(p)).toEqual(['prepare-directories', 'clone', 'write-settings', 'commit-staging', ...START]);
    expect(steps(p)).not.toContain('move-aside');
  });

  it('a kept copy whose WAL move was interrupted: the move is finished first (the clone needs the WAL directory empty)', () => {
    const p = decide(sobs({ kind: 'only-kept-copies', keptCopies: ['pgrepl-aside-1', 'pgrepl-aside-2'], walMoving: ['pgrepl-aside-2'] }), standby);
    expect('steps' in p && p.steps.slice(1, 3)).toEqual([{ do: 'finish-wal-move', copy: 'pgrepl-aside-2' }, { do: 'clone' }]);
    const q = decide(sobs({ kind: 'interrupted-build', build: 'clone', staging: '.pgrepl-staging-clone', keptCopies: ['pgrepl-aside-2'], walMoving: ['pgrepl-aside-2'] }), standby);
    expect(steps(q).slice(0, 4)).toEqual(['prepare-directories', 'finish-wal-move', 'discard-interrupted-build', 'clone']);
  });

  it("a standby's cluster of the same system: keeps the data, no copy", () => {
    const p = decide(sobs(cluster({ standby: true })), standby);
    expect(p.row).toBe('standby cluster × STANDBY');
    expect(steps(p)).toEqual(['prepare-directories', 'create-slot', ...START]);
  });

  it("a standby's cluster whose slot was seen on the upstream: nothing to create; not seen or not known: create it", () => {
    expect(steps(decide(sobs(cluster({ standby: true }), { upstream: { ...up(), slotExists: true } }), standby))).toEqual(['prepare-directories', ...START]);
    for (const slotExists of [false, undefined]) {
      expect(steps(decide(sobs(cluster({ standby: true }), { upstream: { ...up(), slotExists } }), standby))).toEqual(['prepare-directories', 'create-slot', ...START]);
    }
  });

  it("a standby's cluster now pointed at another upstream: its slot on the one it left is dropped (if that answers and nothing uses it)", () => {
    const p = decide(sobs(cluster({ standby: true }), { lastUpstream: { host: 'pg0', port: 5432 } }), standby);
    expect(steps(p)).toEqual(['prepare-directories', 'create-slot', 'drop-old-slot', ...START]);
    expect('steps' in p && p.steps[2]).toEqual({ do: 'drop-old-slot', on: { host: 'pg0', port: 5432 } });
    expect(steps(decide(sobs(cluster({ standby: true }), { lastUpstream: { host: 'pg1', port: 5432 } }), standby))).not.toContain('drop-old-slot');
    expect(steps(decide(sobs(cluster({ standby: true }), { lastUpstream: { host: 'pg0', port: 5432 } }), { ...standby, slots: false }))).not.toContain('drop-old-slot');
  });

  it("a standby's cluster whose upstream is down: starts on its data anyway", () => {
    const p = decide(sobs(cluster({ standby: true }), { upstream: down }), standby);
    expect(steps(p)).toEqual(['prepare-directories', ...START]);
  });

  it("a standby's cluster behind a newer timeline: rewinds (no-op unless diverged), else re-clones", () => {
    const p = decide(sobs(cluster({ standby: true }), { upstream: up({ timeline: 2 }) }), standby);
    expect(steps(p)).toEqual(['prepare-directories', 'rewind', 'create-slot', ...START]);
    expect('steps' in p && p.steps[1]).toEqual({
      do: 'rewind', fallback: [{ do: 'move-aside' }, { do: 'clone' }, { do: 'write-settings', as: 'STANDBY', in: '.pgrepl-staging-clone' }, { do: 'commit-staging', staging: '.pgrepl-staging-clone' }],
    });
  });

  it("a standby's cluster behind a newer timeline, with no pg_rewind of its major (PostgreSQL 16 with 18's tools): moves aside and clones, and says why", () => {
    const on16 = { binariesMajor: 16, upstream: up({ timeline: 2, major: 16 }) };
    const p = decide(sobs(cluster({ standby: true, major: 16 }), { ...on16, tools: { basebackup: 18, rewind: 18 } }), standby);
    expect(p.row).toBe('standby cluster × STANDBY');
    expect(steps(p)).toEqual(['prepare-directories', 'move-aside', 'clone', 'write-settings', 'commit-staging', ...START]);
    expect(p.why).toBe('PGDATA=/data holds a standby on timeline 1 and the upstream pg1:5432 (PGREPL_MASTER_IP) is on timeline 2; it may have diverged, and pg_rewind 18 cannot rewind a PostgreSQL 16 cluster: move it aside (kept) and clone, then follow');
    // Kept copies in PGDATA, which pg_rewind would delete: the same, saying so.
    const kept = decide(sobs(cluster({ standby: true, keptCopies: ['pgrepl-aside-1'] }), { upstream: up({ timeline: 2 }) }), standby);
    expect(steps(kept)).toEqual(['prepare-directories', 'move-aside', 'clone', 'write-settings', 'commit-staging', ...START]);
    expect(kept.why).toMatch(/is on timeline 2; it may have diverged, and it holds data kept aside earlier \(pgrepl-aside-1\), which pg_rewind would delete: move it aside \(kept\) and clone, then follow$/);
    // Neither a pg_rewind nor a pg_basebackup that fits: it follows without a rewind, and says that.
    const neither = decide(sobs(cluster({ standby: true, major: 16 }), { ...on16, tools: { basebackup: 15, rewind: 15 } }), standby);
    expect(steps(neither)).toEqual(['prepare-directories', ...START]);
    expect(neither.why).toMatch(/is on timeline 2; pg_rewind 15 cannot rewind a PostgreSQL 16 cluster, and pg_basebackup 15 cannot clone PostgreSQL 16: follow without a rewind \(if it diverged, it will not stream\)$/);
  });

  it("a standby's cluster ahead of its upstream: refuses", () => {
    const p = decide(sobs(cluster({ standby: true, timeline: 3 }), { upstream: up({ timeline: 2 }) }), standby);
    expect(refusal(p)).toMatch(/is on timeline 3, newer than the upstream pg1:5432 \(PGREPL_MASTER_IP\) on timeline 2/);
  });

  it('another system: refuses, or with PGREPL_RECLONE=auto moves the data aside and clones', () => {
    const other = sobs(cluster({ standby: true }), { upstream: up({ systemIdentifier: '42' }) });
    expect(refusal(decide(other, standby))).toMatch(/holds system 7000000000000000001 but the upstream .* is system 42: .*PGREPL_RECLONE=auto/);
    expect(steps(decide(other, { ...standby, reclone: 'auto' }))).toEqual([
      'prepare-directories', 'move-aside', 'clone', 'write-settings', 'commit-staging', ...START,
    ]);
  });

  it('a former primary behind a newer timeline of its system: rewind, fallback move aside + clone', () => {
    const p = decide(sobs(cluster(), { upstream: up({ timeline: 2 }), lastRole: 'PRIMARY' }), standby);
    expect(p.row).toBe('primary cluster × STANDBY');
    expect(steps(p)).toEqual(['prepare-directories', 'rewind', 'create-slot', ...START]);
  });

  it('a former primary holding data kept aside earlier: moves aside and clones (pg_rewind would delete the kept copy)', () => {
    const p = decide(sobs(cluster({ keptCopies: ['pgrepl-aside-20260101T000000Z'] }), { upstream: up({ timeline: 2 }), lastRole: 'PRIMARY' }), standby);
    expect(steps(p)).toEqual(['prepare-directories', 'move-aside', 'clone', 'write-settings', 'commit-staging', ...START]);
    expect(p.why).toMatch(/kept aside earlier \(pgrepl-aside-20260101T000000Z\), which pg_rewind would delete/);
  });

  it('a former primary whose pg_rewind is of another version: moves aside and clones', () => {
    const p = decide(sobs(cluster(), { upstream: up({ timeline: 2 }), tools: { basebackup: 15, rewind: 16 } }), standby);
    expect(steps(p)).toEqual(['prepare-directories', 'move-aside', 'clone', 'write-settings', 'commit-staging', ...START]);
  });

  it('a former primary and an upstream that is not newer: refuses (nothing newer to follow)', () => {
    const p = decide(sobs(cluster({ timeline: 2 }), { upstream: up({ timeline: 2 }), lastRole: 'PRIMARY' }), standby);
    expect(refusal(p)).toMatch(/holds a primary on timeline 2 and PGREPL_ROLE=STANDBY, but the upstream .* is not on a newer timeline \(2\)/);
  });

  it('a former primary rewound to the upstream\'s timeline, its start killed before the standby config: a standby, no copy', () => {
    // What pg_rewind leaves: the upstream's control file (timeline 2, in archive recovery), no
    // standby.signal; the state file is the upstream's copy (ignored: no lastRole).
    const rewound = cluster({ timeline: 2, state: 'in archive recovery' });
    const p = decide(sobs(rewound, { upstream: up({ timeline: 2 }) }), standby);
    expect(p.row).toBe('rewound × STANDBY');
    expect(steps(p)).toEqual(['prepare-directories', 'create-slot', ...START]);
    expect('steps' in p && p.steps.find((s) => s.do === 'write-settings')).toEqual({ do: 'write-settings', as: 'STANDBY' });
    expect(p.why).toMatch(/^PGDATA=\/data holds a cluster rewound to the upstream pg1:5432 \(PGREPL_MASTER_IP\)'s timeline 2 .*: keep the data, write the standby configuration, start; no copy$/);
    // Even if a state file said it last ran as a standby: it never ran as a primary since.
    expect(decide(sobs(rewound, { upstream: up({ timeline: 2 }), lastRole: 'STANDBY' }), standby).row).toBe('rewound × STANDBY');
    // A primary that ran (crashed or shut down) on the upstream's timeline is still refused.
    for (const state of ['in production', 'shut down'] as const) {
      expect(refusal(decide(sobs(cluster({ timeline: 2, state }), { upstream: up({ timeline: 2 }), lastRole: 'PRIMARY' }), standby))).toMatch(/nothing newer to follow/);
    }
    // The upstream moved on to a newer timeline meanwhile: rewind again, as for any former primary.
    expect(steps(decide(sobs(rewound, { upstream: up({ timeline: 3 }) }), standby))).toEqual(['prepare-directories', 'rewind', 'create-slot', ...START]);
  });

  it('a standby promoted while running (pg_ctl promote), env unchanged: stays a primary', () => {
    for (const upstream of [up({ timeline: 1 }), down]) {
      const p = decide(sobs(cluster({ timeline: 2 }), { upstream, lastRole: 'STANDBY' }), standby);
      expect(p.row).toBe('promoted standby × STANDBY');
      expect('steps' in p && p.steps.find((s) => s.do === 'write-settings')).toEqual({ do: 'write-settings', as: 'PRIMARY' });
    }
  });

  it('a standby pgrepl took out of standby mode for crash recovery before a rewind, killed there: still a standby, never promoted', () => {
    // No standby.signal (single-user mode needs it gone), the timeline it was a standby on.
    const detached = cluster({ timeline: 1, state: 'in crash recovery' });
    for (const recorded of [1, 2]) {
      const gone = decide(sobs(detached, { upstream: down, lastRole: 'STANDBY', standbyTimeline: recorded }), standby);
      expect(gone.row).toBe('standby cluster × STANDBY');
      expect(steps(gone)).toEqual(['prepare-directories', ...START]);
      expect('steps' in gone && gone.steps.find((s) => s.do === 'write-settings')).toEqual({ do: 'write-settings', as: 'STANDBY' });
      expect(gone.why).toMatch(/taken it out of standby mode for crash recovery .*not promoted/);
    }
    // With the upstream back on its newer timeline: the rewind it was doing, again.
    const back = decide(sobs(detached, { upstream: up({ timeline: 2 }), lastRole: 'STANDBY', standbyTimeline: 2 }), standby);
    expect(back.row).toBe('standby cluster × STANDBY');
    expect(steps(back)).toEqual(['prepare-directories', 'rewind', 'create-slot', ...START]);
    // A fenced PRIMARY's standby, the same: it keeps following its peer, never comes up writable.
    const fenced = { host: '10.0.0.2', port: 5433 };
    const silentPeer: PeerFound = { target: fenced, found: { reachable: false, error: 'ECONNREFUSED' }, inRecovery: undefined };
    const f = decide(obs(cluster({ timeline: 1, state: 'in crash recovery' }), { peers: [silentPeer], fenced, lastRole: 'PRIMARY', standbyTimeline: 2, tools }), primary);
    expect(f.row).toBe('fenced standby × PRIMARY');
    expect(steps(f)).toEqual(['prepare-directories', ...START]);
  });

  it('promoted means a timeline newer than the one it was a standby on', () => {
    const p = decide(sobs(cluster({ timeline: 3 }), { upstream: down, lastRole: 'STANDBY', standbyTimeline: 2 }), standby);
    expect(p.row).toBe('promoted standby × STANDBY');
    expect(p.why).toMatch(/promoted while this node ran as a standby \(timeline 3, newer than timeline 2 it was a standby on\)/);
  });

  it('an upstream that refuses this node: a standby with data starts on it; without data, one line naming the cause', () => {
    const refusing = (refused: 'password' | 'no replication role' | 'cannot log in' | 'not allowed', error: string) => ({
      target: { host: 'pg1', port: 5432, source: 'PGREPL_MASTER_IP', dropFollow: false },
      found: { reachable: false as const, error, refused },
    });
    const pw = refusing('password', '28P01: password authentication failed for user "pgrepl"');
    const withData = decide(sobs(cluster({ standby: true }), { upstream: pw }), standby);
    expect(withData.row).toBe('standby cluster × STANDBY');
    expect(steps(withData)).toEqual(['prepare-directories', ...START]);
    expect(withData.why).toMatch(/refuses it: the upstream pg1:5432 rejected the replication password .*PGREPL_TOKEN .* the same on every node: starting on the data it has, serving reads; it streams once the upstream lets it in \(postgres tries again, and logs why it cannot, every 60 s\)/);
    // postgres, not pgrepl, is left to log the refusal: once a minute, not at every 5 s attempt.
    const settings = (p: ReturnType<typeof decide>) => ('steps' in p ? p.steps.find((s) => s.do === 'write-settings') : undefined);
    expect(settings(withData)).toEqual({ do: 'write-settings', as: 'STANDBY', walRetrySeconds: 60 });
    const unreachable = decide(sobs(cluster({ standby: true }), { upstream: down }), standby);
    expect(unreachable.row).toBe('standby cluster × STANDBY');
    expect(settings(unreachable)).toEqual({ do: 'write-settings', as: 'STANDBY' });
    const empty = decide(sobs({ kind: 'empty' }, { upstream: pw }), standby);
    expect(empty.row).toBe('upstream refuses this node');
    expect(refusal(empty)).toBe('the upstream pg1:5432 rejected the replication password (28P01: password authentication failed for user "pgrepl"): PGREPL_TOKEN (or PGREPL_TOKEN_FILE) must be the same on every node; nothing was changed');
    expect(refusal(decide(sobs({ kind: 'empty' }, { upstream: refusing('no replication role', '28000: role "pgrepl" does not exist') }), standby))).toBe(
      'the upstream pg1:5432 has no role pgrepl (28000: role "pgrepl" does not exist): it runs without replication, as a primary first started without PGREPL_TOKEN does; set PGREPL_TOKEN (the same on every node) on its primary and restart that; nothing was changed',
    );
    expect(refusal(decide(sobs({ kind: 'empty' }, { upstream: refusing('cannot log in', '28000: role "pgrepl" is not permitted to log in') }), standby))).toBe(
      'the upstream pg1:5432 does not let the role pgrepl log in (28000: role "pgrepl" is not permitted to log in): it runs with replication off, as a primary started without PGREPL_TOKEN does; set PGREPL_TOKEN (the same on every node) on its primary and restart that; nothing was changed',
    );
    expect(refusal(decide(sobs({ kind: 'empty' }, { upstream: refusing('not allowed', '28000: no pg_hba.conf entry for replication connection') }), standby))).toMatch(
      /does not allow this node to replicate \(28000: no pg_hba.conf entry .*\): widen PGREPL_REPLICATION_CIDR on the upstream, or, if it was started without PGREPL_TOKEN \(replication off\), set PGREPL_TOKEN there/,
    );
    // A former primary that must be rewound cannot be, without its upstream: refused, nothing changed.
    expect(refusal(decide(sobs(cluster(), { upstream: pw, lastRole: 'PRIMARY' }), standby))).toMatch(/rejected the replication password/);
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
    expect(upstreamPatience({ kind: 'interrupted-build', build: 'clone', staging: '.pgrepl-staging-clone', keptCopies: [] }, undefined, 300)).toBe(300);
    expect(upstreamPatience(cluster(), 'PRIMARY', 300)).toBe(300); // a former primary must be rewound first
    expect(upstreamPatience(cluster({ standby: true }), 'STANDBY', 300)).toBe(5);
    expect(upstreamPatience(cluster(), 'STANDBY', 300)).toBe(5); // promoted behind our back: it serves writes
    expect(upstreamPatience(cluster({ standby: true }), undefined, 3)).toBe(3);
  });
});

describe('PRIMARY fencing (PGREPL_PEERS, PGREPL_FENCE)', () => {
  const SYS = '7000000000000000001';
  const peer = (port: number, over: { timeline?: number; inRecovery?: boolean | undefined; systemIdentifier?: string; major?: number } = {}): PeerFound => ({
    target: { host: '10.0.0.2', port },
    found: { reachable: true, systemIdentifier: over.systemIdentifier ?? SYS, timeline: over.timeline ?? 1, major: over.major ?? 15 },
    inRecovery: 'inRecovery' in over ? over.inRecovery : false,
  });
  const silent = (port: number): PeerFound => ({ target: { host: '10.0.0.9', port }, found: { reachable: false, error: 'ECONNREFUSED' }, inRecovery: undefined });
  const tools = { basebackup: 15, rewind: 15 };
  const pobs = (pgdata: PgdataState, peers: PeerFound[], over: Partial<Observation> = {}) => obs(pgdata, { peers, tools, replicationRoleCurrent: true, ...over });
  const START_STANDBY = ['write-settings', 'record-state', 'hand-over'];
  const fencedTo = (p: Plan) => ('steps' in p ? p.fencedTo : undefined);
  const writeAs = (p: Plan) => ('steps' in p ? p.steps.find((s) => s.do === 'write-settings') : undefined);

  it("a primary's cluster and a newer primary among the peers, rejoin: becomes its standby (rewind, else move aside and clone)", () => {
    const p = decide(pobs(cluster({ timeline: 1 }), [silent(5432), peer(5433, { timeline: 2 })]), primary);
    expect(p.row).toBe('fenced × PRIMARY');
    expect(p.why).toMatch(/^PGDATA=\/data holds a primary on this node's timeline 1 and PGREPL_ROLE is PRIMARY, but the peer 10\.0\.0\.2:5433 is a primary of the same system on timeline 2: coming up writable would make two primaries; PGREPL_FENCE=rejoin: it becomes a standby of 10\.0\.0\.2:5433 instead: /);
    expect(steps(p)).toEqual(['prepare-directories', 'rewind', 'create-slot', ...START_STANDBY]);
    expect('steps' in p && p.steps[1]).toEqual({
      do: 'rewind', fallback: [{ do: 'move-aside' }, { do: 'clone' }, { do: 'write-settings', as: 'STANDBY', in: '.pgrepl-staging-clone' }, { do: 'commit-staging', staging: '.pgrepl-staging-clone' }],
    });
    expect(writeAs(p)).toEqual({ do: 'write-settings', as: 'STANDBY' });
    expect(fencedTo(p)).toEqual({ host: '10.0.0.2', port: 5433, source: 'PGREPL_PEERS', dropFollow: false });
    expect(steps(p)).not.toContain('start-temp-server'); // never writable, not even on the socket
  });

  it('the newest of several newer primaries is the one to follow', () => {
    const p = decide(pobs(cluster({ timeline: 1 }), [peer(5433, { timeline: 2 }), peer(5434, { timeline: 3 })]), primary);
    expect(fencedTo(p)).toMatchObject({ port: 5434 });
  });

  it('refuse: exits with one line naming the peer and both timelines, touching nothing', () => {
    const p = decide(pobs(cluster({ timeline: 1 }), [peer(5433, { timeline: 2 })]), { ...primary, fence: 'refuse' });
    expect(p.row).toBe('fenced × PRIMARY');
    expect(refusal(p)).toBe(
      'PGREPL_FENCE=refuse: the peer 10.0.0.2:5433 is a primary of this cluster (system 7000000000000000001) on timeline 2, and this node, configured as PRIMARY, is on timeline 1: coming up writable would make two primaries (split brain). Make this node a standby of 10.0.0.2:5433 (PGREPL_ROLE=STANDBY, PGREPL_MASTER_IP, PGREPL_MASTER_PORT), or set PGREPL_FENCE=rejoin to let it rejoin by itself; nothing was changed',
    );
    expect(steps(p)).toEqual([]);
  });

  it('nothing newer among the peers: starts as a primary, saying what it found', () => {
    const peers = [
      silent(5432),
      peer(5433, { timeline: 2, systemIdentifier: '42' }), // another cluster
      peer(5434, { timeline: 1, inRecovery: true }), // its own standby
      peer(5435, { timeline: 1, inRecovery: undefined }), // role unknown, same timeline
    ];
    const p = decide(pobs(cluster({ timeline: 2 }), [...peers, peer(5436, { timeline: 1 })]), primary);
    expect(p.row).toBe('primary cluster × PRIMARY');
    expect(p.why).toMatch(/no peer is a newer primary \(10\.0\.0\.9:5432: no answer, 10\.0\.0\.2:5433: another system \(42\), 10\.0\.0\.2:5434: standby, timeline 1, 10\.0\.0\.2:5435: role unknown, timeline 1, 10\.0\.0\.2:5436: primary, timeline 1\)/);
    expect(steps(p)).toEqual(['prepare-directories', 'write-settings', 'record-state', 'hand-over']);
    expect(fencedTo(p)).toBeUndefined();
  });

  it('another primary on the same timeline: refused in both modes (split brain that cannot be resolved)', () => {
    for (const fence of ['rejoin', 'refuse'] as const) {
      const p = decide(pobs(cluster({ timeline: 2 }), [peer(5433, { timeline: 2 })]), { ...primary, fence });
      expect(p.row).toBe('split brain × PRIMARY');
      expect(refusal(p)).toMatch(/^the peer 10\.0\.0\.2:5433 is also a primary of this cluster on this node's timeline 2: .*nothing was changed$/);
    }
  });

  it('a rejoin killed after its pg_rewind (the peer\'s timeline, in archive recovery, no standby.signal): finishes it, no second rewind', () => {
    const rewound = cluster({ timeline: 2, state: 'in archive recovery' });
    const p = decide(pobs(rewound, [peer(5433, { timeline: 2 })]), primary);
    expect(p.row).toBe('fenced × PRIMARY');
    expect(p.why).toMatch(/: PGDATA=\/data holds a cluster rewound to .*: keep the data, write the standby configuration, start; no copy$/);
    expect(steps(p)).toEqual(['prepare-directories', 'create-slot', ...START_STANDBY]);
    expect(writeAs(p)).toEqual({ do: 'write-settings', as: 'STANDBY' });
    expect(fencedTo(p)).toMatchObject({ port: 5433 });
    expect(refusal(decide(pobs(rewound, [peer(5433, { timeline: 2 })]), { ...primary, fence: 'refuse' }))).toMatch(/^PGREPL_FENCE=refuse: /);
  });

  it('only a standby on a newer timeline answers: refused (the cluster failed over, its primary is out of reach)', () => {
    for (const inRecovery of [true, undefined]) {
      const p = decide(pobs(cluster({ timeline: 1 }), [silent(5432), peer(5433, { timeline: 2, inRecovery })]), primary);
      expect(p.row).toBe('split brain × PRIMARY');
      expect(refusal(p)).toMatch(/^the peer 10\.0\.0\.2:5433 is (a standby|a node \(role unknown\)) of this cluster on timeline 2, newer than this node's timeline 1: the cluster failed over without this node/);
    }
  });

  it("a standby's cluster and a primary of its timeline among the peers: not promoted, stays its standby", () => {
    const p = decide(pobs(cluster({ standby: true, timeline: 2 }), [peer(5433, { timeline: 2 })]), primary);
    expect(p.row).toBe('fenced × PRIMARY');
    expect(steps(p)).toEqual(['prepare-directories', 'create-slot', ...START_STANDBY]);
    expect(steps(p)).not.toContain('promote-temp-server');
    expect(fencedTo(p)).toMatchObject({ port: 5433 });
    expect(refusal(decide(pobs(cluster({ standby: true, timeline: 2 }), [peer(5433, { timeline: 2 })]), { ...primary, fence: 'refuse' }))).toMatch(
      /^PGREPL_FENCE=refuse: the peer 10\.0\.0\.2:5433 is a primary of this cluster .* on timeline 2, and this node, configured as PRIMARY, is on timeline 2: promoting it would make two primaries/,
    );
    // An older primary is stale: the standby is promoted, as without peers.
    expect(decide(pobs(cluster({ standby: true, timeline: 2 }), [peer(5433, { timeline: 1 })]), primary).row).toBe('standby cluster × PRIMARY');
  });

  it('fenced earlier: keeps following the recorded peer on every start, even when it is down', () => {
    const fenced = { host: '10.0.0.2', port: 5433 };
    const up = decide(pobs(cluster({ standby: true, timeline: 2 }), [peer(5433, { timeline: 2 })], { fenced }), primary);
    expect(up.row).toBe('fenced standby × PRIMARY');
    expect(steps(up)).toEqual(['prepare-directories', 'create-slot', ...START_STANDBY]);
    expect(fencedTo(up)).toMatchObject(fenced);
    const down = decide(pobs(cluster({ standby: true, timeline: 2 }), [{ ...silent(5433), target: fenced }], { fenced }), primary);
    expect(down.row).toBe('fenced standby × PRIMARY');
    expect(steps(down)).toEqual(['prepare-directories', ...START_STANDBY]);
    expect(fencedTo(down)).toMatchObject(fenced);
  });

  it('fenced earlier, and a newer primary among the peers: follows that one instead', () => {
    const fenced = { host: '10.0.0.2', port: 5433 };
    const p = decide(pobs(cluster({ standby: true, timeline: 2 }), [{ ...silent(5433), target: fenced }, peer(5434, { timeline: 3 })], { fenced }), primary);
    expect(p.row).toBe('fenced standby × PRIMARY');
    expect(steps(p)).toEqual(['prepare-directories', 'rewind', 'create-slot', ...START_STANDBY]);
    expect(fencedTo(p)).toMatchObject({ port: 5434 });
  });

  it('a fence record means nothing once the node is a primary again (pgrepl promote)', () => {
    const p = decide(pobs(cluster({ timeline: 3 }), [peer(5433, { timeline: 2 })], { fenced: { host: '10.0.0.2', port: 5433 } }), primary);
    expect(p.row).toBe('primary cluster × PRIMARY');
  });

  it('a peer that refuses the replication password: refused before anything opens for writes', () => {
    const refusing: PeerFound = { target: { host: '10.0.0.2', port: 5433 }, found: { reachable: false, error: '28P01: password authentication failed', refused: 'password' }, inRecovery: undefined };
    const p = decide(pobs(cluster(), [refusing]), primary);
    expect(p.row).toBe('peer refuses this node');
    expect(refusal(p)).toBe('the peer 10.0.0.2:5433 rejected the replication password (28P01: password authentication failed): PGREPL_TOKEN (or PGREPL_TOKEN_FILE) must be the same on every node; nothing was changed');
  });

  it('rejoin, but the newer primary cannot be followed: refuses, saying why', () => {
    const p = decide(pobs(cluster({ timeline: 1 }), [peer(5433, { timeline: 2, major: 16 })]), primary);
    expect(p.row).toBe('fenced × PRIMARY');
    expect(refusal(p)).toMatch(/PGREPL_FENCE=rejoin: it becomes a standby of 10\.0\.0\.2:5433 instead, but it cannot: the upstream 10\.0\.0\.2:5433 \(PGREPL_PEERS\) runs PostgreSQL 16/);
  });
});
