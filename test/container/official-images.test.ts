/**
 * The tests docker-library/official-images runs against every postgres image (its test/config.sh:
 * postgres-basics and postgres-initdb, plus the global utc, no-hard-coded-passwords and
 * override-cmd), written again here against our image with the same meaning (their scripts are
 * not copied). Only the variables those tests set reach the server: a superuser, its password and
 * a database whose names have spaces in them, and no PGREPL_* variable at all.
 *
 * As there, each server runs in a container of its own and every query comes from a new client
 * container of the same image (`--entrypoint psql`, the password in PGPASSWORD, the SQL on stdin),
 * reaching the server by the name `postgres`: what `--link NAME:postgres` gives there is a network
 * alias here (podman has no --link). The client first retries `SELECT 1` as their retry.sh does,
 * POSTGRES_TEST_TRIES attempts POSTGRES_TEST_SLEEP seconds apart: theirs are 10 and 2 s; ours
 * default to 30 and 2 s, since how fast the server comes up is not what this test asserts (a
 * loaded 2-core CI machine running container tests side by side must not fail it on time).
 */
import { chmodSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { IMAGE, Scope, WORK, logs, podman, podmanOk } from './support.js';

const scope = new Scope();

const OFFICIAL_ENV = {
  POSTGRES_USER: 'my cool postgres user',
  POSTGRES_PASSWORD: 'my cool postgres password',
  POSTGRES_DB: 'my cool postgres database',
};
const TRIES = Number(process.env.POSTGRES_TEST_TRIES || 30);
const SLEEP_S = Number(process.env.POSTGRES_TEST_SLEEP || 2);

afterAll(() => scope.cleanup());

/** A server as the official tests start one: only their three variables, on a network of its own as `postgres`. */
async function startServer(extra: string[] = []): Promise<{ name: string; network: string }> {
  const network = await scope.network();
  const env = Object.entries(OFFICIAL_ENV).flatMap(([k, v]) => ['-e', `${k}=${v}`]);
  const name = await scope.run(scope.name('server'), ['--network', network, '--network-alias', 'postgres', ...env, ...extra]);
  return { name, network };
}

/** `echo SQL | psql` from a new client container, as the official tests' psql function runs it. */
function clientPsql(network: string, sql: string) {
  return podman(
    [
      'run', '--rm', '-i', '--label', scope.label, '--network', network, '--entrypoint', 'psql',
      '-e', `PGPASSWORD=${OFFICIAL_ENV.POSTGRES_PASSWORD}`, IMAGE,
      '--host', 'postgres', '--username', OFFICIAL_ENV.POSTGRES_USER, '--dbname', OFFICIAL_ENV.POSTGRES_DB,
      '--quiet', '--no-align', '--tuples-only',
    ],
    { input: `${sql}\n` },
  );
}

/** The client's output as the shell's `$(...)` gives it (trailing newlines removed); the run must succeed. */
async function query(network: string, sql: string): Promise<string> {
  const r = await clientPsql(network, sql);
  expect(r.code, `psql <<< ${JSON.stringify(sql)}: ${r.stderr}`).toBe(0);
  return r.stdout.replace(/\n+$/, '');
}

/** retry.sh: `SELECT 1` until it succeeds, TRIES attempts SLEEP_S seconds apart. */
async function waitAcceptsConnections(server: { name: string; network: string }): Promise<void> {
  for (let left = TRIES; ; ) {
    const r = await clientPsql(server.network, 'SELECT 1');
    if (r.code === 0) return;
    if (--left <= 0) {
      throw new Error(`${server.name} did not accept connections after ${TRIES} tries ${SLEEP_S} s apart (last psql: ${r.stderr.trim()}):\n${await logs(server.name)}`);
    }
    await new Promise((res) => setTimeout(res, SLEEP_S * 1000));
  }
}

describe('postgres-basics: a user, password and database with spaces in their names', () => {
  let server: { name: string; network: string };

  beforeAll(async () => {
    server = await startServer();
    await waitAcceptsConnections(server);
  });

  it('creates, fills, reads, deletes from and drops a table over TCP as that user in that database', async () => {
    const count = () => query(server.network, 'SELECT COUNT(*) FROM test');
    await query(server.network, 'CREATE TABLE test (a INT, b INT, c VARCHAR(255))');
    expect(await count()).toBe('0');
    await query(server.network, "INSERT INTO test VALUES (1, 2, 'hello')");
    expect(await count()).toBe('1');
    await query(server.network, "INSERT INTO test VALUES (2, 3, 'goodbye!')");
    expect(await count()).toBe('2');
    await query(server.network, 'DELETE FROM test WHERE a = 1');
    expect(await count()).toBe('1');
    expect(await query(server.network, 'SELECT c FROM test')).toBe('goodbye!');
    await query(server.network, 'DROP TABLE test');
  });

  it('has JIT available (the LLVM library loads)', async () => {
    expect(await query(server.network, 'SET jit = on; SELECT pg_jit_available();')).toBe('t');
  });
});

describe('postgres-initdb: an initdb.sql in /docker-entrypoint-initdb.d', () => {
  let server: { name: string; network: string };
  let initdbDir: string;

  beforeAll(async () => {
    // Two rows in, the first deleted again: the script runs whole, once, in POSTGRES_DB as POSTGRES_USER.
    initdbDir = join(WORK, `${scope.prefix}-official-initdb.d`);
    mkdirSync(initdbDir, { recursive: true });
    chmodSync(initdbDir, 0o755);
    writeFileSync(
      join(initdbDir, 'initdb.sql'),
      [
        'CREATE TABLE test (a INT, b INT, c VARCHAR(255));',
        "INSERT INTO test VALUES (1, 2, 'hello');",
        "INSERT INTO test VALUES (2, 3, 'goodbye!');",
        'DELETE FROM test WHERE a = 1;',
        '',
      ].join('\n'),
      { mode: 0o644 },
    );
    server = await startServer(['-v', `${initdbDir}:/docker-entrypoint-initdb.d:ro`]);
    await waitAcceptsConnections(server);
  });

  afterAll(() => rmSync(initdbDir, { recursive: true, force: true }));

  it("leaves the script's one row in that database", async () => {
    expect(await query(server.network, 'SELECT COUNT(*) FROM test')).toBe('1');
    expect(await query(server.network, 'SELECT c FROM test')).toBe('goodbye!');
  });
});

describe('the global tests', () => {
  const run = (args: string[]) => podman(['run', '--rm', '--label', scope.label, ...args]);

  it('utc: the clock says UTC', async () => {
    const r = await run(['--entrypoint', 'date', IMAGE, '+%Z']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toBe('UTC\n');
  });

  it('no-hard-coded-passwords: no crypt password for any user, no empty one for root', async () => {
    const fields = async (file: string) =>
      new Map(
        (await podmanOk(['run', '--rm', '--label', scope.label, '--user', '0:0', '--entrypoint', 'cut', IMAGE, '-d:', '-f1-2', file]))
          .split('\n')
          .filter(Boolean)
          .map((line) => [line.slice(0, line.indexOf(':')), line.slice(line.indexOf(':') + 1)] as const),
      );
    const passwords = await fields('/etc/passwd');
    if ([...passwords.values()].includes('x')) {
      for (const [user, pass] of await fields('/etc/shadow')) if (passwords.get(user) === 'x') passwords.set(user, pass);
    }
    expect(passwords.get('root')).not.toBe('');
    expect([...passwords].filter(([, pass]) => pass.startsWith('$'))).toEqual([]);
  });

  it('override-cmd: `echo` as the entrypoint and as the command prints only its words', async () => {
    const hello = `Hello world-${scope.prefix}`;
    const asEntrypoint = await run(['--entrypoint', 'echo', IMAGE, hello]);
    expect(asEntrypoint.code, asEntrypoint.stderr).toBe(0);
    expect(asEntrypoint.stdout).toBe(`${hello}\n`);
    const asCommand = await run([IMAGE, 'echo', hello]);
    expect(asCommand.code, asCommand.stderr).toBe(0);
    expect(asCommand.stdout).toBe(`${hello}\n`);
  });
});
