/**
 * A primary's life through the bundle, on a real PostgreSQL: first boot, restarts, token
 * rotation, init scripts, shutdown by signal.
 */
import { execFileSync } from 'node:child_process';
import { chmodSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { replicationPassword } from '../../src/config/token.js';
import { identifySystem, query, removeScratch, scratchDir, TestNode } from '../support/node.js';

const PORT = 5711;
const TOKEN = 'first-token-Abc';
const TOKEN2 = 'second-token-Xyz';

let dir: string;
let pgdata: string;
let initdb: string;

function writeInitScripts(target: string) {
  mkdirSync(target, { recursive: true });
  // Each script leaves a trace, so we can count how often it ran.
  writeFileSync(join(target, '10-table.sql'), 'CREATE TABLE init_runs (script text);\nINSERT INTO init_runs VALUES (\'sql\');\n');
  writeFileSync(join(target, '20-exec.sh'), '#!/bin/bash\nset -e\npsql -v ON_ERROR_STOP=1 --no-psqlrc -U "$POSTGRES_USER" -d "$POSTGRES_DB" -c "INSERT INTO init_runs VALUES (\'exec-sh\')"\n');
  chmodSync(join(target, '20-exec.sh'), 0o755);
  writeFileSync(join(target, '30-sourced.sh'), 'docker_process_sql -c "INSERT INTO init_runs VALUES (\'sourced-sh\')"\necho "# touched by 30-sourced.sh" >> "$PGDATA/postgresql.conf"\n');
  writeFileSync(join(target, '40-gz.sql.gz'), gzipSync("INSERT INTO init_runs VALUES ('sql-gz');\n"));
  writeFileSync(join(target, '41-xz.sql.xz'), execFileSync('xz', ['-c'], { input: "INSERT INTO init_runs VALUES ('sql-xz');\n" }));
  writeFileSync(join(target, '42-zst.sql.zst'), execFileSync('zstd', ['-c', '-q'], { input: "INSERT INTO init_runs VALUES ('sql-zst');\n" }));
  writeFileSync(join(target, '50-ignored.txt'), 'not a script');
  chmodSync(target, 0o755);
}

function start(env: Record<string, string> = {}, node?: string) {
  return new TestNode({
    pgdata, port: PORT, node,
    env: { PGREPL_TOKEN: TOKEN, POSTGRES_DB: 'appdb', PGREPL_INITDB_DIR: initdb, ...env },
  });
}

beforeAll(() => {
  dir = scratchDir();
  // PostgreSQL 18's layout: PGDATA two levels inside the volume, both created by the entrypoint.
  pgdata = join(dir, 'volume', '15', 'docker');
  initdb = join(dir, 'initdb.d');
  writeInitScripts(initdb);
});
afterAll(() => removeScratch(dir));

describe('a primary', () => {
  let first: TestNode;

  it('boots a new cluster: databases, init scripts, replication role', async () => {
    first = start();
    await first.ready();

    const rows = await query<{ datname: string; owner: string }>(
      PORT, 'SELECT datname, pg_get_userbyid(datdba) AS owner FROM pg_database ORDER BY datname',
    );
    const names = rows.map((r) => r.datname);
    expect(names).toEqual(expect.arrayContaining([
      'appdb', 'gestalt-security', 'gestalt-meta', 'gestalt-lambda', 'gestalt-laser', 'gestalt-apigateway', 'gestalt-kong',
    ]));
    expect(rows.find((r) => r.datname === 'gestalt-kong')?.owner).toBe('postgres');

    const runs = await query<{ script: string }>(PORT, 'SELECT script FROM init_runs ORDER BY script', [], { database: 'appdb' });
    expect(runs.map((r) => r.script)).toEqual(['exec-sh', 'sourced-sh', 'sql', 'sql-gz', 'sql-xz', 'sql-zst']);
    expect(readFileSync(join(pgdata, 'postgresql.conf'), 'utf8')).toContain('# touched by 30-sourced.sh');

    const role = await query<{ rolreplication: boolean; rolcanlogin: boolean }>(
      PORT, "SELECT rolreplication, rolcanlogin FROM pg_roles WHERE rolname = 'pgrepl'",
    );
    expect(role).toEqual([{ rolreplication: true, rolcanlogin: true }]);
    const id = await identifySystem(PORT, replicationPassword(TOKEN));
    expect(id.timeline).toBe(1);
    await expect(identifySystem(PORT, replicationPassword('not-the-token'))).rejects.toThrow(/password authentication failed/);

    const settings = await query<{ name: string; setting: string }>(
      PORT, "SELECT name, setting FROM pg_settings WHERE name IN ('wal_level','hot_standby','wal_log_hints','listen_addresses','max_wal_senders') ORDER BY name",
    );
    expect(Object.fromEntries(settings.map((s) => [s.name, s.setting]))).toEqual({
      hot_standby: 'on', listen_addresses: '*', max_wal_senders: '10', wal_level: 'replica', wal_log_hints: 'on',
    });
  });

  it('runs as postgres, owns PGDATA with mode 0700 (the parents it made: 0755), and left no staging directory', () => {
    const st = statSync(pgdata);
    expect(st.mode & 0o777).toBe(0o700);
    expect(statSync(join(dir, 'volume', '15')).mode & 0o777).toBe(0o755);
    expect(statSync(join(dir, 'volume')).mode & 0o777).toBe(0o755);
    const postgresUid = Number(execFileSync('id', ['-u', 'postgres']).toString().trim());
    expect(st.uid).toBe(postgresUid);
    const pid = readFileSync(join(pgdata, 'postmaster.pid'), 'utf8').split('\n')[0]!;
    expect(statSync(`/proc/${pid}`).uid).toBe(postgresUid);
    expect(execFileSync('ls', ['-A', pgdata]).toString()).not.toMatch(/pgrepl-(staging|swap)/);
  });

  it('logs the decision row, to stderr only', () => {
    const row = first.logs().find((l) => typeof l.row === 'string');
    expect(row?.row).toBe('missing/empty × PRIMARY');
    expect(first.stdout).toBe('');
  });

  it('keeps a row across SIGINT (fast shutdown, exit 0) and a restart, without initdb or init scripts', async () => {
    await query(PORT, 'CREATE TABLE kept (v text)');
    await query(PORT, 'INSERT INTO kept VALUES ($1)', ['survives']);
    const res = await first.stop('SIGINT');
    expect(res.code).toBe(0);
    expect(res.stderr).toMatch(/received fast shutdown request/);

    const again = start();
    await again.ready();
    expect(await query(PORT, 'SELECT v FROM kept')).toEqual([{ v: 'survives' }]);
    const runs = await query(PORT, 'SELECT count(*)::int AS n FROM init_runs', [], { database: 'appdb' });
    expect(runs).toEqual([{ n: 6 }]);
    const log = again.logs();
    expect(log.find((l) => l.row)?.row).toBe('primary cluster × PRIMARY');
    expect(log.map((l) => l.msg)).not.toContain('initdb');
    expect(again.stderr).not.toMatch(/running init script|temporary server/);
    expect((await again.stop()).code).toBe(0);
  });

  it('rotates the replication password when PGREPL_TOKEN changes', async () => {
    const rotated = start({ PGREPL_TOKEN: TOKEN2 });
    await rotated.ready();
    await expect(identifySystem(PORT, replicationPassword(TOKEN))).rejects.toThrow(/password authentication failed/);
    expect((await identifySystem(PORT, replicationPassword(TOKEN2))).timeline).toBe(1);
    expect(rotated.stderr).toMatch(/replication role password re-applied/);
    expect((await rotated.stop()).code).toBe(0);
  });
});
