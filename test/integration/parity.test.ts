/**
 * Parity with the official image (issue 13, points 1-4), on real servers:
 * - `pgrepl postgres ARGS` reach the temporary server (an init script that needs
 *   shared_preload_libraries works) and single-user mode (crash recovery, and the bootstrap of a
 *   first boot without init scripts), and -c config_file=FILE still loads pgrepl's settings (a
 *   standby given one streams);
 * - sourced *.sh init scripts find what the official entrypoint's shell has (the psql array,
 *   docker_process_sql, set -e, the POSTGRES_* variables, resolved from their _FILE variants);
 * - POSTGRES_INITDB_ARGS is split with its quotes, as the official entrypoint's eval splits it;
 * - no child but the init scripts starts with POSTGRES_PASSWORD or PGREPL_TOKEN in its
 *   environment: each one's /proc/PID/environ is read while it runs.
 */
import { appendFileSync, chmodSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { standbyOf, streamingTo, waitFor } from '../support/cluster.js';
import { PG_PATH, testEnv } from '../support/env.js';
import { exitWithin, query, removeScratch, runCommand, scratchDir, SUPERUSER_PASSWORD, TestNode, type NodeOptions } from '../support/node.js';

let dir: string;
const running: TestNode[] = [];

beforeAll(() => {
  dir = scratchDir();
});
afterEach(async () => {
  for (const n of running.splice(0)) await n.stop();
});
afterAll(() => removeScratch(dir));

function start(opts: NodeOptions): TestNode {
  const n = new TestNode(opts);
  running.push(n);
  return n;
}

/** A directory of init scripts, readable by the postgres user; `executable` names get mode 0755. */
function initdbDir(name: string, files: Record<string, string>, executable: string[] = []): string {
  const d = join(dir, name);
  mkdirSync(d);
  for (const [file, text] of Object.entries(files)) {
    writeFileSync(join(d, file), text);
    chmodSync(join(d, file), executable.includes(file) ? 0o755 : 0o644);
  }
  chmodSync(d, 0o755);
  return d;
}

describe('the arguments of `pgrepl postgres ARGS`', () => {
  it('reach the temporary server: an init script that needs -c shared_preload_libraries works', async () => {
    const initdb = initdbDir('stats.d', {
      '10-stats.sql': 'CREATE EXTENSION pg_stat_statements;\nSELECT count(*) FROM pg_stat_statements;\n',
    });
    const n = start({
      pgdata: join(dir, 'stats'), port: 6531, env: { PGREPL_INITDB_DIR: initdb },
      args: ['-c', 'shared_preload_libraries=pg_stat_statements'],
    });
    await n.ready();
    expect(await query(6531, 'SHOW shared_preload_libraries')).toEqual([{ shared_preload_libraries: 'pg_stat_statements' }]);
    expect(await query(6531, "SELECT extname FROM pg_extension WHERE extname = 'pg_stat_statements'")).toHaveLength(1);
  });

  it("with -c config_file=FILE, FILE is read and so are pgrepl's settings: a standby streams", async () => {
    const conf = join(dir, 'etc-postgresql.conf');
    writeFileSync(conf, 'max_connections = 60\n');
    chmodSync(conf, 0o644);
    const args = ['-c', `config_file=${conf}`];
    const primary = start({ pgdata: join(dir, 'cf-primary'), port: 6532, args });
    await primary.ready();
    const standbyData = join(dir, 'cf-standby');
    const standby = start({ pgdata: standbyData, port: 6533, env: standbyOf(6532), args });
    await standby.ready();
    await waitFor('the standby to stream', () => streamingTo(6532, 6533), 30_000);
    expect(await query(6533, 'SHOW max_connections')).toEqual([{ max_connections: '60' }]);
    expect(await query(6533, 'SHOW config_file')).toEqual([{ config_file: join(standbyData, 'pgrepl-config-file.conf') }]);
    await query(6532, 'CREATE TABLE via_config_file AS SELECT 1 AS x');
    await waitFor('the row on the standby', async () => (await query(6533, 'SELECT x FROM via_config_file')).length === 1);
  });
});

describe('the arguments of `pgrepl postgres ARGS` in single-user mode', () => {
  it('reach the crash recovery that runs before pg_rewind', async () => {
    const primaryData = join(dir, 'su-primary');
    const primary = start({ pgdata: primaryData, port: 6538 });
    await primary.ready();
    const standby = start({ pgdata: join(dir, 'su-standby'), port: 6539, env: standbyOf(6538) });
    await standby.ready();
    await waitFor('the standby to stream', () => streamingTo(6538, 6539));
    // The primary's machine dies; the standby is promoted.
    process.kill(Number(readFileSync(join(primaryData, 'postmaster.pid'), 'utf8').split('\n')[0]), 'SIGKILL');
    await primary.exited;
    running.splice(running.indexOf(primary), 1);
    expect((await runCommand(standby.opts, ['promote'])).code).toBe(0);
    // A postgresql.conf that works only with the arguments the node is started with.
    appendFileSync(join(primaryData, 'postgresql.conf'), "shared_preload_libraries = 'no_such_library'\n");
    const rejoined = start({ pgdata: primaryData, port: 6538, env: standbyOf(6539), args: ['-c', 'shared_preload_libraries='] });
    await rejoined.ready();
    expect(rejoined.stderr).toMatch(/finishing crash recovery in single-user mode/);
    expect(rejoined.stderr).toMatch(/pg_rewind finished/);
    await waitFor('the old primary to stream from the new one', () => streamingTo(6539, 6538));
  });
});

describe('a first boot without init scripts: the bootstrap in single-user mode', () => {
  it('takes the arguments of `pgrepl postgres ARGS`: -c password_encryption=md5 is what pg_hba and the role follow', async () => {
    const n = start({ pgdata: join(dir, 'su-md5'), port: 6540, args: ['-c', 'password_encryption=md5'] });
    await n.ready();
    expect(n.stderr).toMatch(/bootstrapping the new cluster in single-user mode/);
    expect(n.stderr).not.toMatch(/starting a temporary server/);
    expect(n.logs().find((l) => l.row)?.steps).toEqual([
      'prepare-directories', ...(process.getuid?.() === 0 ? ['drop-privileges'] : []), 'initdb', 'bootstrap-in-single-user-mode',
      'allow-host-connections', 'sync-staging', 'commit-staging', 'write-settings', 'record-state', 'hand-over',
    ]);
    expect(readFileSync(join(dir, 'su-md5', 'pg_hba.conf'), 'utf8')).toMatch(/^host all all all md5$/m);
    const [role] = await query<{ verifier: string; rolreplication: boolean; rolcanlogin: boolean }>(
      6540, "SELECT rolpassword AS verifier, rolreplication, rolcanlogin FROM pg_authid WHERE rolname = 'pgrepl'",
    );
    expect(role).toMatchObject({ rolreplication: true, rolcanlogin: true });
    expect(role!.verifier).toMatch(/^md5[0-9a-f]{32}$/);
    // What the temporary server's steps made: the gestalt databases, owned by POSTGRES_USER, and pg_rewind's grants.
    expect(await query(6540, "SELECT count(*)::int AS n FROM pg_database WHERE datname LIKE 'gestalt-%' AND pg_get_userbyid(datdba) = 'postgres'")).toEqual([{ n: 6 }]);
    expect(await query(6540, "SELECT has_function_privilege('pgrepl', 'pg_catalog.pg_read_binary_file(text)', 'EXECUTE') AS ok")).toEqual([{ ok: true }]);
    expect(await query(6540, "SELECT has_function_privilege('pgrepl', 'pgrepl.checkpoint()', 'EXECUTE') AS ok")).toEqual([{ ok: true }]);
  });

  it('refused by postgres (a bad argument): one line, no cluster in PGDATA; the next start begins again', async () => {
    const pgdata = join(dir, 'su-bad');
    const bad = start({ pgdata, port: 6541, args: ['-c', 'shared_preload_libraries=no_such_library'] });
    const res = await exitWithin(bad);
    running.splice(running.indexOf(bad), 1);
    expect(res.code).toBe(1);
    const fatal = bad.logs().filter((l) => l.level === 60);
    expect(fatal.map((l) => l.msg)).toEqual([
      `the new cluster's bootstrap in single-user mode failed (FATAL: could not access file "no_such_library": No such file or directory): check the arguments given to postgres (the container's command) and POSTGRES_INITDB_ARGS; ${pgdata} holds no cluster yet, and the next start discards this build and begins again`,
    ]);
    expect(readdirSync(pgdata)).toEqual(['.pgrepl-staging-init']);
    const again = start({ pgdata, port: 6541 });
    await again.ready();
    expect(again.stderr).toMatch(/discarded an interrupted build/);
    expect(await query(6541, "SELECT count(*)::int AS n FROM pg_database WHERE datname LIKE 'gestalt-%'")).toEqual([{ n: 6 }]);
  });
});

describe('init scripts', () => {
  it("a sourced *.sh finds what the official entrypoint's shell has (postgis-style)", async () => {
    const pwFile = join(dir, 'pw');
    writeFileSync(pwFile, `${SUPERUSER_PASSWORD}\n`);
    // As docker-library/postgis's initdb-postgis.sh uses them.
    const initdb = initdbDir('sourced.d', {
      '20-postgis-style.sh': [
        'export PGUSER="$POSTGRES_USER"',
        `"\${psql[@]}" <<- 'EOSQL'`,
        'CREATE DATABASE template_parity IS_TEMPLATE true;',
        'EOSQL',
        'for DB in template_parity "$POSTGRES_DB"; do',
        `\t"\${psql[@]}" --dbname="$DB" <<-'EOSQL'`,
        '\t\tCREATE TABLE seen_by_script (name text, value text);',
        'EOSQL',
        'done',
        `docker_process_sql --set pw="$POSTGRES_PASSWORD" --set args="$POSTGRES_INITDB_ARGS" --set opts="$-" <<-'EOSQL'`,
        `\tINSERT INTO seen_by_script VALUES ('password', :'pw'), ('initdb args', :'args'), ('shell options', :'opts');`,
        'EOSQL',
        '',
      ].join('\n'),
    });
    const n = start({
      pgdata: join(dir, 'sourced'), port: 6534,
      env: { PGREPL_INITDB_DIR: initdb, POSTGRES_DB: 'app', POSTGRES_PASSWORD: undefined, POSTGRES_PASSWORD_FILE: pwFile, POSTGRES_INITDB_ARGS: '--data-checksums' },
    });
    await n.ready();
    const seen = await query<{ name: string; value: string }>(6534, 'SELECT name, value FROM seen_by_script ORDER BY name', [], { database: 'app' });
    expect(seen.filter((r) => r.name !== 'shell options')).toEqual([
      { name: 'initdb args', value: '--data-checksums' },
      { name: 'password', value: SUPERUSER_PASSWORD },
    ]);
    expect(seen.find((r) => r.name === 'shell options')?.value).toMatch(/e/); // set -e, as in the official entrypoint
    expect(await query(6534, 'SELECT count(*)::int AS n FROM seen_by_script', [], { database: 'template_parity' })).toEqual([{ n: 0 }]);
  });
});

describe('POSTGRES_INITDB_ARGS', () => {
  it("is split with its quotes, as the official entrypoint's eval splits it", async () => {
    const n = start({ pgdata: join(dir, 'initdb-args'), port: 6535, env: { POSTGRES_INITDB_ARGS: `--locale='C' --encoding="LATIN1"` } });
    await n.ready();
    expect(await query(6535, 'SELECT current_setting($1) AS encoding, datcollate FROM pg_database WHERE datname = current_database()', ['server_encoding']))
      .toEqual([{ encoding: 'LATIN1', datcollate: 'C' }]);
  });
});

describe('secrets in the environment of children', () => {
  const PASSWORD = 'Env-Pw-NOT-FOR-CHILDREN-93b1';
  const TOKEN = 'Env-Token-NOT-FOR-CHILDREN-4c2e';

  it('no child but the init scripts starts with POSTGRES_PASSWORD or PGREPL_TOKEN (read from /proc/PID/environ while it runs)', async () => {
    // Every PostgreSQL program pgrepl runs by name is a shim first, which copies its own
    // /proc/$$/environ and then becomes the program (exec: the same process). The temporary
    // server, which pg_ctl starts from its own directory, is read by the init script while it runs.
    const record = join(dir, 'environ');
    mkdirSync(record);
    chmodSync(record, 0o1777);
    const shims = join(dir, 'shims');
    mkdirSync(shims);
    for (const program of readdirSync(testEnv.pgBin)) {
      // postgres in single-user mode (a first boot's bootstrap) is recorded under a name of its own too.
      const single = program === 'postgres' ? `[ "$1" = --single ] && cp /proc/$$/environ ${record}/postgres-single.$$\n` : '';
      writeFileSync(join(shims, program), `#!/bin/sh\ncp /proc/$$/environ ${record}/${program}.$$\n${single}exec ${join(testEnv.pgBin, program)} "$@"\n`);
      chmodSync(join(shims, program), 0o755);
    }
    chmodSync(shims, 0o755);
    const initdb = initdbDir('environ.d', {
      '10-read-environ.sh': [
        '#!/bin/sh',
        'set -e',
        `cp /proc/$(head -1 "$PGDATA/postmaster.pid")/environ ${record}/temporary-server.$$`,
        `cp /proc/$$/environ ${record}/init-script.$$`,
        '',
      ].join('\n'),
    }, ['10-read-environ.sh']);
    const env = { PATH: `${shims}:${PG_PATH}`, POSTGRES_PASSWORD: PASSWORD, PGREPL_TOKEN: TOKEN, PGREPL_INITDB_DIR: initdb };
    const primary = start({ pgdata: join(dir, 'env-primary'), port: 6536, env });
    await primary.ready();
    const standby = start({ pgdata: join(dir, 'env-standby'), port: 6537, env: { ...env, ...standbyOf(6536) } });
    await standby.ready();
    // A first boot without init scripts: postgres -C and single-user mode instead of a temporary server.
    const noScripts = initdbDir('environ-none.d', {});
    const single = start({ pgdata: join(dir, 'env-single'), port: 6542, env: { ...env, PGREPL_INITDB_DIR: noScripts } });
    await single.ready();

    const environs = readdirSync(record).map((f) => ({
      child: f.replace(/\.\d+$/, ''),
      vars: readFileSync(join(record, f), 'utf8').split('\0').filter(Boolean),
    }));
    // The test must be able to fail: the children were read.
    expect([...new Set(environs.map((e) => e.child))]).toEqual(
      expect.arrayContaining(['postgres', 'postgres-single', 'pg_ctl', 'initdb', 'temporary-server', 'init-script', 'pg_basebackup']),
    );
    const withSecrets = environs
      .filter((e) => e.child !== 'init-script')
      .filter((e) => e.vars.some((v) => /^(POSTGRES_PASSWORD|PGREPL_TOKEN)=/.test(v) || v.includes(PASSWORD) || v.includes(TOKEN)))
      .map((e) => e.child);
    expect(withSecrets).toEqual([]);
    // The init scripts see the superuser's password, as in the official image.
    expect(environs.find((e) => e.child === 'init-script')?.vars).toContain(`POSTGRES_PASSWORD=${PASSWORD}`);
  });
});
