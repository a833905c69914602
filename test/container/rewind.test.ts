/**
 * Rewinding after a plain `pg_ctl promote` in the image, for each major of MAJORS but 15, which
 * test/integration/rewind-versions.test.ts rewinds with the same scenario (by default 18;
 * PGREPL_TEST_PG_MAJORS adds 13 and 17): each image has the pg_rewind of its own major. Before
 * 15, CHECKPOINT is for superusers only: the rewinding node makes its new upstream write its
 * timeline down through a function the superuser created for the pgrepl role.
 *
 * The stand-in of postgres:16 (PGREPL_TEST_PG_MAJORS=16) has 18's pg_rewind, which rewinds 18
 * only, and no pg_rewind 16 is reachable here (support.ts, clientMajorOf): on 16 the same
 * scenario asserts the honest outcome, C and A diagnosed unrewindable, moved aside (kept) and
 * cloned from B, and streaming from it.
 *
 * Primary A, standbys B and C on a podman network; a bulk load; B crashes (it replays the load
 * into dirty buffers on its next start, so that its first checkpoint after the promotion is
 * spread over a minute or more, as on a busy server), then A takes a write that C receives; A
 * stops; B starts on its data without A and is promoted with `pg_ctl promote` (as `docker exec
 * -u postgres B pg_ctl promote` would) and written to; C (diverged) and the old primary A are
 * started again as standbys of B on their volumes: they are rewound, not moved aside and
 * cloned, and hold and stream everything committed on B.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { clientMajorOf, imageFor, logs, MAJORS, pgreplLines, podman, podmanOk, primaryEnv, psql, rows, Scope, waitReady } from './support.js';

const BULK_ROWS = 40_000;
const BULK_LOAD = `CREATE TABLE bulk AS SELECT g AS id, repeat('x', 200) AS pad FROM generate_series(1, ${BULK_ROWS}) g`;

const scope = new Scope();
let net: string;
beforeAll(async () => {
  net = await scope.network();
});
afterAll(() => scope.cleanup());

async function eventually(what: string, fn: () => Promise<boolean>, ms = 120_000): Promise<void> {
  const deadline = Date.now() + ms;
  for (;;) {
    if (await fn().catch(() => false)) return;
    if (Date.now() > deadline) throw new Error(`timed out: ${what}`);
    await new Promise((r) => setTimeout(r, 300));
  }
}

/** 15 is Debian's on the test machine: test/integration/rewind-versions.test.ts rewinds it. */
const REWIND_MAJORS = MAJORS.filter((major) => major !== 15).map((major) => {
  const rewindMajor = clientMajorOf(major);
  const title = rewindMajor === major
    ? `PostgreSQL ${major}: after a plain pg_ctl promote, a diverged standby and the old primary are rewound, not cloned`
    : `PostgreSQL ${major}, stand-in with ${rewindMajor}'s client tools: after a plain pg_ctl promote, pg_rewind ${rewindMajor} cannot rewind a diverged standby or the old primary: they are moved aside (kept) and cloned`;
  return { major, rewindMajor, title };
});

describe.each(REWIND_MAJORS)('$title', ({ major, rewindMajor }) => {
  const image = imageFor(major);
  const volumeAt = major >= 18 ? '/var/lib/postgresql' : '/var/lib/postgresql/data';
  const volumes: Record<'a' | 'b' | 'c', string> = { a: '', b: '', c: '' };
  const names: Record<'a' | 'b' | 'c', string> = { a: '', b: '', c: '' };
  const hostname = (n: 'a' | 'b' | 'c') => `rw${major}${n}`;

  /** A node on its volume with a fixed hostname (its slot name); the container is new each time. */
  async function run(n: 'a' | 'b' | 'c', env: Record<string, string> = {}): Promise<string> {
    if (!volumes[n]) volumes[n] = await scope.volume(`pg${major}${n}`);
    if (names[n]) await podman(['rm', '-f', '-t', '30', names[n]]);
    names[n] = await scope.run(scope.name(`pg${major}${n}`), [
      '--network', net, '--hostname', hostname(n), '--network-alias', hostname(n), '-v', `${volumes[n]}:${volumeAt}`, ...primaryEnv(env),
    ], image);
    await waitReady(names[n]);
    return names[n];
  }
  const standbyOf = (up: 'a' | 'b') => ({ PGREPL_ROLE: 'STANDBY', PGREPL_MASTER_IP: hostname(up), PGREPL_UPSTREAM_TIMEOUT: '10' });
  const values = async (n: 'a' | 'b' | 'c') => (await psql(names[n], 'SELECT string_agg(v, \',\' ORDER BY v) FROM t')).split(',');
  /** Rewound (pg_rewind ran and finished; nothing moved aside, no copy), or, with a pg_rewind of another major, moved aside whole and cloned. */
  async function expectRejoined(n: 'a' | 'c', row: string): Promise<void> {
    const text = await logs(names[n]);
    expect(rows(text)).toEqual([row]);
    const pgdata = await psql(names[n], 'SHOW data_directory');
    const aside = (await podmanOk(['exec', names[n], 'ls', '-a', `${pgdata}/pg_dynshmem`])).split('\n').filter((e) => e.startsWith('pgrepl-aside-'));
    if (rewindMajor === major) {
      expect(text).toMatch(/pg_rewind: servers diverged at WAL location/);
      expect(text).toMatch(/pg_rewind finished/);
      expect(text).not.toMatch(/moved the old data aside|could not rewind|pg_basebackup/);
      expect(aside).toEqual([]);
      return;
    }
    const decision = pgreplLines(text).find((l) => l.row)!;
    expect(decision.msg).toMatch(new RegExp(`pg_rewind ${rewindMajor} cannot rewind a PostgreSQL ${major} cluster: move it aside \\(kept\\) and clone, then follow$`));
    expect(text).not.toMatch(/pg_rewind:/);
    expect(text).toMatch(/pg_basebackup: base backup completed/);
    expect(aside).toHaveLength(1);
    expect((await podmanOk(['exec', names[n], 'cat', `${pgdata}/pg_dynshmem/${aside[0]}/PG_VERSION`])).trim()).toBe(String(major));
  }
  async function followsB(n: 'a' | 'c'): Promise<void> {
    const wanted = (await values('b')).join(',');
    await eventually(`${n} holding B's rows`, async () => (await values(n)).join(',') === wanted);
    await eventually(`${n} streaming from B`, async () => {
      const s = JSON.parse((await podman(['exec', names[n], 'pgrepl', 'status', '--json'])).stdout);
      return s.role === 'standby' && s.upstream?.host === hostname('b') && s.upstream?.status === 'streaming';
    });
  }

  it('A primary, B and C its standbys; B crashes, then A takes a write that C receives', async () => {
    await run('a');
    expect(await psql(names.a, 'SHOW server_version_num')).toMatch(new RegExp(`^${major}`));
    expect(await podmanOk(['exec', names.a, 'pg_rewind', '--version'])).toContain(`(PostgreSQL) ${rewindMajor}.`);
    await psql(names.a, "CREATE TABLE t (v text); INSERT INTO t VALUES ('before the failover')");
    await run('b', standbyOf('a'));
    await run('c', standbyOf('a'));
    await psql(names.a, BULK_LOAD);
    for (const n of ['b', 'c'] as const) {
      await eventually(`the bulk load on ${n}`, async () => (await psql(names[n], 'SELECT count(*) FROM bulk')) === String(BULK_ROWS));
    }
    await podmanOk(['kill', names.b]);
    await psql(names.a, "INSERT INTO t VALUES ('only on a and c')");
    await eventually('C receiving the write B misses', async () => (await values('c')).includes('only on a and c'));
    await podmanOk(['stop', '-t', '60', names.a]);
  });

  it('B starts on its data without A and is promoted with a plain pg_ctl promote; it takes writes', async () => {
    await podmanOk(['start', names.b]);
    await waitReady(names.b);
    expect(rows(await logs(names.b)).at(-1)).toBe('standby cluster × STANDBY');
    const promoted = await podman(['exec', '-u', 'postgres', names.b, 'pg_ctl', 'promote', '-w']);
    expect(promoted.stdout, promoted.stderr).toMatch(/server promoted/);
    expect(await psql(names.b, 'SELECT pg_is_in_recovery()')).toBe('f');
    await psql(names.b, "INSERT INTO t VALUES ('written on b')");
    expect(await values('b')).toEqual(['before the failover', 'written on b']);
  });

  it(`C, started again as a standby of B, is ${rewindMajor === major ? 'rewound' : 'moved aside and cloned'} (it diverged) and streams from B`, async () => {
    await run('c', standbyOf('b'));
    await expectRejoined('c', 'standby cluster × STANDBY');
    await psql(names.b, "INSERT INTO t VALUES ('after c rejoined')");
    await followsB('c');
    expect(await values('c')).not.toContain('only on a and c');
  });

  it(`the old primary A, started as a standby of B, is ${rewindMajor === major ? 'rewound' : 'moved aside and cloned'} and streams from B`, async () => {
    await run('a', standbyOf('b'));
    await expectRejoined('a', 'primary cluster × STANDBY');
    await psql(names.b, "INSERT INTO t VALUES ('after a rejoined')");
    await followsB('a');
    expect(await values('a')).toEqual(['after a rejoined', 'after c rejoined', 'before the failover', 'written on b']);
    await followsB('c');
  });
});
