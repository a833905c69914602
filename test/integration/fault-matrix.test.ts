/**
 * Issue 6's fault matrix, the rows not covered elsewhere (initdb: interrupted-init.test.ts; clone
 * killed or stopped mid-copy, upstream down at a standby's start: faults.test.ts), on real
 * PostgreSQL servers through the bundle. Every row kills a node the way a container kill or a
 * power cut does (SIGKILL to its whole process group), restarts it with the same environment, and
 * ends in a correct cluster: no acknowledged write lost, no manual step. Each test says which
 * half-written PGDATA its kill leaves and checks that the next start handles it.
 *
 *   1. killed during bootstrap (init scripts running on the temporary server)
 *   2. killed during rewind (crash recovery in single-user mode; pg_rewind mid-copy; pg_rewind
 *      done but the standby configuration not yet written)
 *   2b. the same last kill for a PRIMARY fenced into rejoining its peer (PGREPL_PEERS)
 *   3. a primary killed right after hand-over, under load
 *   4. a standby killed right after hand-over
 *   5. the upstream restarted while its standbys stream
 *   6. the WAL archive's disk full (PGREPL_ARCHIVE_DIR on a tmpfs that fills up)
 *
 * Ports 5600-5649 are this file's alone.
 */
import { execFileSync } from 'node:child_process';
import { chmodSync, closeSync, existsSync, mkdirSync, openSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { lookupUser } from '../../src/handover/privileges.js';
import { readControlData } from '../../src/observe/control-file.js';
import { isInRecovery, standbyOf, streamingTo, waitFor, waitForRows } from '../support/cluster.js';
import { PG_PATH, testEnv } from '../support/env.js';
import { groupGone, processesOf, stopAllNodes } from '../support/process-group.js';
import { query, removeScratch, runCommand as cli, scratchDir, SUPERUSER_PASSWORD, TestNode, type NodeOptions, type RunResult } from '../support/node.js';

const TOKEN = 'fault-matrix-token';
let dir: string;
const nodes = new Map<number, TestNode>();
const mounts: string[] = [];

const pgdata = (port: number) => join(dir, `n${port}`);

function opts(port: number, env: Record<string, string> = {}, args: string[] = []): NodeOptions {
  // Detached: every node is a process group of its own, killed with everything it started.
  return { pgdata: pgdata(port), port, env: { PGREPL_TOKEN: TOKEN, ...env }, args, detached: true };
}

function spawnNode(port: number, env: Record<string, string> = {}, args: string[] = []): TestNode {
  if (nodes.has(port)) throw new Error(`node ${port} is already running`);
  const n = new TestNode(opts(port, env, args));
  nodes.set(port, n);
  return n;
}

async function start(port: number, env: Record<string, string> = {}, args: string[] = []): Promise<TestNode> {
  const n = spawnNode(port, env, args);
  await n.ready(180_000);
  return n;
}

async function stop(port: number): Promise<RunResult> {
  const res = await nodes.get(port)!.stop('SIGINT');
  nodes.delete(port);
  return res;
}

/** SIGKILL to every process of the node at once; waits until all of them are gone and reaped. */
async function crash(port: number): Promise<RunResult> {
  const n = nodes.get(port)!;
  const res = await n.killGroup('SIGKILL');
  nodes.delete(port);
  await groupGone(n.pid);
  return res;
}

type LogLine = { level: number; msg: string; [k: string]: unknown };
const rowOf = (n: TestNode) => n.logs().find((l) => typeof l.row === 'string')?.row;
const startLine = (n: TestNode) => n.logs().find((l) => l.msg.startsWith('start: ')) as (LogLine & { steps: string[] }) | undefined;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Polls `fn` every few milliseconds: for moments that last well under a second. */
async function poll(what: string, fn: () => boolean | Promise<boolean>, timeoutMs: number, stillRunning?: TestNode): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await fn()) return;
    if (stillRunning && stillRunning.child.exitCode !== null) throw new Error(`the node exited while waiting for ${what}:\n${stillRunning.stderr.slice(-4000)}`);
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}${stillRunning ? `:\n${stillRunning.stderr.slice(-4000)}` : ''}`);
    await sleep(5);
  }
}

/**
 * A client that inserts ids from..., one autocommit INSERT at a time into `table`, reconnecting
 * after every error, until stopped. An id is recorded once the server acknowledged its commit:
 * those must never be lost. (An id whose INSERT failed is in doubt: it may or may not be there.)
 */
function writer(port: number, table: string, from: number) {
  const acked: number[] = [];
  let running = true;
  let next = from;
  let failures = 0;
  const loop = (async () => {
    let c: pg.Client | undefined;
    while (running) {
      try {
        if (!c) {
          c = new pg.Client({
            host: '127.0.0.1', port, user: 'postgres', password: SUPERUSER_PASSWORD, database: 'postgres', connectionTimeoutMillis: 2000, query_timeout: 60_000,
          });
          c.on('error', () => undefined);
          await c.connect();
        }
        const id = next++;
        await c.query(`INSERT INTO ${table} (id) VALUES ($1)`, [id]);
        acked.push(id);
        await sleep(2);
      } catch {
        failures++;
        await c?.end().catch(() => undefined);
        c = undefined;
        await sleep(50);
      }
    }
    await c?.end().catch(() => undefined);
  })();
  return {
    acked,
    get failures() {
      return failures;
    },
    /** Waits until at least `n` more commits than now are acknowledged. */
    async more(n: number, timeoutMs = 60_000) {
      const target = acked.length + n;
      await waitFor(`${n} more acknowledged writes to ${port}`, async () => acked.length >= target, timeoutMs);
    },
    async stop(): Promise<number[]> {
      running = false;
      await loop;
      return acked;
    },
  };
}

/** The acknowledged ids that `port` does not have in `table`. */
async function missing(port: number, table: string, acked: number[]): Promise<number[]> {
  const have = new Set((await query<{ id: number }>(port, `SELECT id FROM ${table}`)).map((r) => r.id));
  return acked.filter((id) => !have.has(id));
}

async function waitForAll(port: number, table: string, acked: number[], timeoutMs = 120_000): Promise<void> {
  expect(acked.length).toBeGreaterThan(0);
  let left: number[] = [];
  await waitFor(`${acked.length} acknowledged writes on ${port}`, async () => (left = await missing(port, table, acked)).length === 0, timeoutMs).catch((err) => {
    throw new Error(`${(err as Error).message}; missing ${left.length}, e.g. ${left.slice(0, 5).join(', ')}`);
  });
}

/** A directory the postgres user can write to (for markers its scripts leave). */
function sharedDir(name: string): string {
  const d = join(dir, name);
  mkdirSync(d, { recursive: true });
  chmodSync(d, 0o777);
  return d;
}

/** An executable shell script. */
function script(path: string, body: string): string {
  writeFileSync(path, `#!/bin/sh\n${body}`, { mode: 0o755 });
  chmodSync(path, 0o755);
  return path;
}

/**
 * A pg_rewind that, the first time, blocks after its work is done (its marker then appears):
 * holds a start at the moment pg_rewind has finished and the standby configuration is not yet
 * written. Returns the marker and a PATH that puts this pg_rewind first.
 */
function blockingRewind(name: string): { marker: string; path: string } {
  const marker = join(sharedDir(`${name}-markers`), 'rewound');
  const shim = join(dir, `${name}-bin`);
  mkdirSync(shim, { mode: 0o755 });
  const real = join(testEnv.pgBin, 'pg_rewind');
  script(join(shim, 'pg_rewind'), [
    `case "$1" in --version|-V|--help|-\\?) exec ${real} "$@" ;; esac`,
    `${real} "$@" || exit $?`,
    `if [ ! -e '${marker}' ]; then echo done > '${marker}.tmp' && mv '${marker}.tmp' '${marker}'; exec sleep 600; fi`,
    '',
  ].join('\n'));
  return { marker, path: `${shim}:${PG_PATH}` };
}

/**
 * What a kill between the end of pg_rewind and the standby configuration leaves: the upstream's
 * control file (its timeline, "in archive recovery") and a backup label, no standby.signal.
 */
async function expectRewoundOnly(port: number, timeline: number): Promise<void> {
  const control = (await readControlData(pgdata(port)))!;
  expect(control.state).toBe('in archive recovery');
  expect(control.timeline).toBe(timeline);
  expect(existsSync(join(pgdata(port), 'backup_label'))).toBe(true);
  expect(existsSync(join(pgdata(port), 'standby.signal'))).toBe(false);
}

beforeAll(() => {
  dir = scratchDir('pgrepl-fault-matrix-');
});

afterAll(async () => {
  // Nothing may outlive the tests: no postgres, no temporary server, no pg_rewind, no script.
  const problems = await stopAllNodes(nodes, dir);
  for (const m of mounts) {
    try {
      execFileSync('umount', [m]);
    } catch (err) {
      problems.push(`umount ${m}: ${(err as Error).message}`);
    }
  }
  removeScratch(dir);
  if (problems.length) throw new Error(problems.join('\n'));
});

// ---------------------------------------------------------------------------------------------

describe('1. a primary killed during bootstrap (init scripts running on the temporary server)', () => {
  const P = 5600;
  const staging = () => join(pgdata(P), '.pgrepl-staging-init');
  let initdbDir: string;
  let marker: string;
  let env: Record<string, string>;
  let orphan: number;
  let firstAttempt: string;

  beforeAll(() => {
    initdbDir = join(dir, 'initdb.d');
    mkdirSync(initdbDir);
    chmodSync(initdbDir, 0o755);
    marker = join(sharedDir('bootstrap-markers'), 'blocked');
    // Creates a table, then, the first time only, says so (atomically: the marker appears whole)
    // and blocks, leaving the start in the middle of its bootstrap.
    script(join(initdbDir, '10-block-once.sh'), [
      'set -e',
      `psql -v ON_ERROR_STOP=1 -q -c "CREATE TABLE boot (attempt text); INSERT INTO boot VALUES ('$$')"`,
      `if [ ! -e '${marker}' ]; then`,
      `  echo "$$" > '${marker}.tmp' && mv '${marker}.tmp' '${marker}'`,
      '  exec sleep 600',
      'fi',
      '',
    ].join('\n'));
    env = { PGREPL_INITDB_DIR: initdbDir };
  });

  it('is killed with its init script while the temporary server runs: the build is half made, its server orphaned', async () => {
    const n = spawnNode(P, env);
    // initdb, a temporary server and six databases first: generous, the machine may be busy.
    await poll('the init script to block', () => existsSync(marker), 170_000, n);
    firstAttempt = readFileSync(marker, 'utf8').trim();
    expect(n.stderr).toMatch(/running init script/);
    expect(n.stderr).not.toMatch(/handing over to postgres/);
    await crash(P);

    // Half-written: a staging directory with a complete initdb, its databases made, an init
    // script half run; nothing moved into PGDATA; and the temporary server still running (pg_ctl
    // started it in a session of its own, outside the killed group).
    expect(readdirSync(pgdata(P)).sort()).toEqual(['.pgrepl-staging-init']);
    expect(readdirSync(join(staging(), 'base')).length).toBeGreaterThanOrEqual(3 + 6); // templates, postgres, gestalt-*
    const servers = processesOf(staging()).filter((p) => /postgres/.test(p.cmd) && p.cmd.includes(`-D ${staging()}`));
    expect(servers).toHaveLength(1);
    orphan = servers[0]!.pid;
    expect(Number(readFileSync(join(staging(), 'postmaster.pid'), 'utf8').split('\n')[0])).toBe(orphan);
  });

  it('the next start stops the orphaned server, discards only the interrupted build and boots', async () => {
    const n = await start(P, env);
    expect(rowOf(n)).toBe('missing/empty × PRIMARY');
    expect(n.logs().find((l) => l.msg === 'a temporary server of the interrupted build is still running: stopping it')).toMatchObject({ level: 40, pid: orphan });
    expect(n.logs().some((l) => l.msg === 'discarded an interrupted build that never served data')).toBe(true);
    expect(processesOf(staging())).toEqual([]);
    expect(() => process.kill(orphan, 0)).toThrow();
    expect(readdirSync(pgdata(P)).filter((e) => e.startsWith('.pgrepl-'))).toEqual([]);

    // A complete bootstrap, done once on a fresh build: the init script ran again, to the end.
    const boot = await query<{ attempt: string }>(P, 'SELECT attempt FROM boot');
    expect(boot).toHaveLength(1);
    expect(boot[0]!.attempt).not.toBe(firstAttempt);
    expect((await query(P, "SELECT count(*)::int AS n FROM pg_database WHERE datname LIKE 'gestalt-%'"))[0]).toEqual({ n: 6 });
    expect(await isInRecovery(P)).toBe(false);
    await query(P, 'INSERT INTO boot VALUES ($1)', ['written']);

    // And it stays: a restart is a restart, not another build.
    await stop(P);
    const again = await start(P, env);
    expect(rowOf(again)).toBe('primary cluster × PRIMARY');
    expect(startLine(again)!.steps).not.toEqual(expect.arrayContaining([expect.stringMatching(/initdb|discard|init-scripts/)]));
    expect(again.stderr).not.toMatch(/running init script|discarded an interrupted build/);
    expect((await query<{ n: number }>(P, 'SELECT count(*)::int AS n FROM boot'))[0]!.n).toBe(2);
    await stop(P);
  });
});

// ---------------------------------------------------------------------------------------------

describe('2. a failed-over old primary killed while it is being rewound', () => {
  const A = 5610, B = 5611;
  /** No checkpoint on A until it crashes: its crash recovery then has WAL to replay for a while. */
  const A_ARGS = ['-c', 'checkpoint_timeout=1h', '-c', 'max_wal_size=8GB'];
  const aEnv = () => standbyOf(B, { PGREPL_UPSTREAM_TIMEOUT: '120' });
  let acked: number[] = [];
  let bigFile: string;
  let bigBytes: number;
  let bigSum: { n: number; s: string };

  const sumOf = async (port: number, table: string) =>
    (await query<{ n: number; s: string }>(port, `SELECT count(*)::int AS n, sum(id)::text AS s FROM ${table}`))[0]!;
  const controlState = async (port: number) => (await readControlData(pgdata(port)))?.state;

  it('fails over: A crashes with much WAL since its last checkpoint; B is promoted and takes writes', async () => {
    await start(A, {}, A_ARGS);
    await query(A, 'CREATE TABLE t (id int PRIMARY KEY)');
    await start(B, standbyOf(A));
    const w = writer(A, 't', 1);
    // ~250 MB of WAL for A's crash recovery to replay.
    await query(A, 'CREATE TABLE big AS SELECT g AS id, repeat(md5(g::text), 6) AS pad FROM generate_series(1, 1000000) g');
    await w.more(50);
    acked = await w.stop();
    await waitForAll(B, 't', acked);
    await waitForRows(B, 'big', 1_000_000, 180_000);
    await crash(A);
    expect(await controlState(A)).toBe('in production'); // crashed

    expect((await cli(opts(B), ['promote'])).stdout).toBe('promoted: now a primary on timeline 2\n');
    // Writes on the new primary, among them a new table that pg_rewind must copy whole into A.
    const wb = writer(B, 't', 1_000_000);
    await query(B, 'CREATE TABLE big2 AS SELECT g AS id, repeat(md5(g::text), 6) AS pad FROM generate_series(1, 600000) g');
    await wb.more(50);
    acked.push(...(await wb.stop()));
    bigFile = (await query<{ p: string }>(B, "SELECT pg_relation_filepath('big2') AS p"))[0]!.p;
    bigBytes = Number((await query<{ b: string }>(B, "SELECT pg_relation_size('big2')::text AS b"))[0]!.b);
    bigSum = await sumOf(B, 'big2');
    expect(bigBytes).toBeGreaterThan(100 * 1024 * 1024);
    expect(bigBytes).toBeLessThan(1024 * 1024 * 1024); // one segment file
    expect(existsSync(join(pgdata(A), bigFile))).toBe(false);
  }, 400_000);

  it('killed during its crash recovery in single-user mode (before pg_rewind): leaves it half recovered', async () => {
    const a = spawnNode(A, aEnv(), A_ARGS);
    await poll('A\'s crash recovery to be under way', async () => (await controlState(A)) === 'in crash recovery', 170_000, a);
    await crash(A);
    expect(a.stderr).toMatch(/finishing crash recovery in single-user mode/);
    expect(a.stderr).not.toMatch(/rewinding with pg_rewind/);
    // Half-written: crash recovery stopped halfway, WAL partly replayed into the data files.
    expect(await controlState(A)).toBe('in crash recovery');
  });

  it('killed while pg_rewind copies: leaves a data directory half rewound', async () => {
    const a = spawnNode(A, aEnv(), A_ARGS);
    const target = join(pgdata(A), bigFile);
    let size = 0;
    await poll('pg_rewind to copy big2', () => {
      try {
        size = statSync(target).size;
      } catch {
        size = 0;
      }
      return size > 0;
    }, 170_000, a);
    await crash(A);
    expect(a.stderr).toMatch(/finishing crash recovery in single-user mode/);
    expect(a.stderr).toMatch(/rewinding with pg_rewind/);
    expect(a.stderr).not.toMatch(/pg_rewind finished/);
    // Half-written: crash recovery finished, then some files copied from B (big2 in part), the
    // rest (and the control file) still A's own.
    expect(statSync(target).size).toBeLessThan(bigBytes);
    const control = (await readControlData(pgdata(A)))!;
    expect(control.state).toBe('shut down');
    expect(control.timeline).toBe(1);
  });

  it('restarted with the same environment: the half-rewound data is moved aside (kept), a clone streams from B with every write', async () => {
    const a = await start(A, aEnv(), A_ARGS);
    expect(rowOf(a)).toBe('primary cluster × STANDBY');
    // pg_rewind truncates every file it is to copy before it fetches the first (libpq source):
    // killed midway, A's own WAL is gone, and pg_rewind cannot run again. The code then keeps
    // the data, moved aside, and clones.
    // pg_rewind says it cannot (a diagnosis, not a stop or a lost upstream): plan/rewind.ts falls back.
    const failed = a.logs().find((l) => l.msg.endsWith(": moving this node's data aside (kept) and cloning instead"));
    expect(failed).toMatchObject({ level: 40 });
    expect(failed!.msg).toMatch(/^pg_rewind failed \(exit 1\): .*could not (read file|find previous WAL record)/);
    const asides = readdirSync(join(pgdata(A), 'pg_dynshmem')).filter((e) => e.startsWith('pgrepl-aside-'));
    expect(asides).toHaveLength(1);
    const kept = join(pgdata(A), 'pg_dynshmem', asides[0]!);
    expect(a.logs().find((l) => l.msg.startsWith('moved the old data aside'))).toMatchObject({ level: 40, kept });
    expect((await readControlData(kept))!.timeline).toBe(1); // the old primary's, as the kill left it
    expect(existsSync(join(kept, 'PG_VERSION'))).toBe(true);
    expect(a.stderr).toMatch(/cloning the upstream with pg_basebackup/);

    expect(await isInRecovery(A)).toBe(true);
    await waitForAll(A, 't', acked);
    expect(await sumOf(A, 'big2')).toEqual(bigSum);
    expect((await sumOf(A, 'big')).n).toBe(1_000_000);
    expect(await waitFor('A to stream from B', () => streamingTo(B, A))).toBe(true);
    const w = writer(B, 't', 2_000_000);
    await w.more(20);
    acked.push(...(await w.stop()));
    await waitForAll(A, 't', acked);
  }, 400_000);

  it('killed right after pg_rewind finished, before the standby configuration is written: becomes a standby', async () => {
    // The other way round: B crashes, A is promoted, B is rewound to follow A. A pg_rewind that
    // blocks after its work (the first time) holds the start at that moment.
    const { marker, path } = blockingRewind('rewind');
    const bEnv = standbyOf(A, { PATH: path, PGREPL_UPSTREAM_TIMEOUT: '120' });

    const wb = writer(B, 't', 3_000_000);
    await wb.more(50);
    acked.push(...(await wb.stop()));
    // A is an asynchronous standby: a failover loses the commits it had not received yet (zero
    // loss is synchronous replication's, sync.test.ts). Here the writes are in before the crash.
    await waitForAll(A, 't', acked);
    await crash(B);
    expect((await cli(opts(A), ['promote'])).stdout).toBe('promoted: now a primary on timeline 3\n');
    const wa = writer(A, 't', 4_000_000);
    await wa.more(50);

    const b = spawnNode(B, bEnv);
    await poll('pg_rewind to finish', () => existsSync(marker), 170_000, b);
    await crash(B);
    acked.push(...(await wa.stop()));
    expect(b.stderr).toMatch(/rewinding with pg_rewind/);
    expect(b.stderr).not.toMatch(/pg_rewind finished|handing over/);
    // Half-written: a complete rewind (A's control file, a backup label, WAL up to A's timeline
    // 3) without standby.signal or pgrepl.conf for it; the state file is A's copy.
    await expectRewoundOnly(B, 3);

    const again = await start(B, bEnv);
    expect(rowOf(again)).toBe('rewound × STANDBY');
    expect(startLine(again)!.steps).not.toEqual(expect.arrayContaining([expect.stringMatching(/clone|rewind|initdb|move-aside|promote/)]));
    expect(again.stderr).not.toMatch(/pg_basebackup|rewinding with pg_rewind/);
    expect(await isInRecovery(B)).toBe(true);
    await waitForAll(B, 't', acked);
    expect(await sumOf(B, 'big2')).toEqual(bigSum);
    expect(await waitFor('B to stream from A', () => streamingTo(A, B))).toBe(true);
    const w = writer(A, 't', 5_000_000);
    await w.more(20);
    acked.push(...(await w.stop()));
    await waitForAll(B, 't', acked);
    await stop(B);
    await stop(A);
  }, 400_000);
});

// ---------------------------------------------------------------------------------------------

describe('2b. a fenced old primary (PGREPL_PEERS, PGREPL_FENCE=rejoin) killed after its rejoin\'s pg_rewind finished', () => {
  const A = 5640, B = 5641;
  let acked: number[] = [];
  let marker: string;
  /** A's environment, the same at every start: a PRIMARY (the default role) with B as its peer; PGREPL_FENCE unset (rejoin). */
  let aEnv: Record<string, string>;

  beforeAll(() => {
    const rewind = blockingRewind('fenced-rewind');
    marker = rewind.marker;
    aEnv = { PGREPL_PEERS: `127.0.0.1:${B}`, PATH: rewind.path };
  });

  it('fails over: A, with B as its peer, is killed; B, its standby, is promoted and takes writes', async () => {
    await start(A, aEnv); // B is not there yet: nothing to fence against
    await query(A, 'CREATE TABLE t (id int PRIMARY KEY)');
    await start(B, standbyOf(A));
    const w = writer(A, 't', 1);
    await w.more(50);
    acked = await w.stop();
    await waitForAll(B, 't', acked);
    await crash(A);
    expect((await cli(opts(B), ['promote'])).stdout).toBe('promoted: now a primary on timeline 2\n');
    const wb = writer(B, 't', 1_000_000);
    await wb.more(50);
    acked.push(...(await wb.stop()));
  }, 400_000);

  it('A restarted with the same environment rejoins B by pg_rewind; killed after pg_rewind finished, before the standby configuration is written', async () => {
    const onA = writer(A, 't', 9_000_000); // tries to write to A all along: none may be acknowledged
    const wb = writer(B, 't', 2_000_000);
    const a = spawnNode(A, aEnv);
    await poll('pg_rewind to finish', () => existsSync(marker), 170_000, a);
    await crash(A);
    acked.push(...(await wb.stop()));
    expect(await onA.stop()).toEqual([]);
    expect(rowOf(a)).toBe('fenced × PRIMARY');
    expect(a.stderr).toMatch(/rewinding with pg_rewind/);
    expect(a.stderr).not.toMatch(/pg_rewind finished|handing over/);
    // Half-written: B's control file (timeline 2), not a primary of it, no standby configuration.
    await expectRewoundOnly(A, 2);
  }, 400_000);

  it('restarted again with the same environment: B\'s standby without a second rewind and without a copy; it takes no write', async () => {
    const onA = writer(A, 't', 9_000_000);
    const wb = writer(B, 't', 3_000_000);
    const a = await start(A, aEnv);
    // Before the fix: refused as 'split brain × PRIMARY' (B's timeline was taken for A's own).
    expect(rowOf(a)).toBe('fenced × PRIMARY');
    const line = startLine(a)!;
    expect(line.msg).toMatch(new RegExp(`holds a cluster rewound to the timeline 2 of the peer 127\\.0\\.0\\.1:${B}, a primary of the same system, by a rejoin that was interrupted, .*: it finishes becoming a standby of 127\\.0\\.0\\.1:${B}: .*; no copy$`));
    expect(line.steps).not.toEqual(expect.arrayContaining([expect.stringMatching(/rewind|clone|initdb|move-aside|promote/)]));
    expect(a.stderr).not.toMatch(/rewinding with pg_rewind|pg_basebackup|cloning the upstream/);
    expect(a.logs().some((l) => l.level === 40 && l.msg.startsWith(`fenced: this node follows 127.0.0.1:${B} as a standby`))).toBe(true);

    expect(await isInRecovery(A)).toBe(true);
    expect(await waitFor('A to stream from B', () => streamingTo(B, A))).toBe(true);
    await wb.more(50);
    acked.push(...(await wb.stop()));
    await waitForAll(A, 't', acked);
    await expect(query(A, 'INSERT INTO t VALUES (-1)')).rejects.toThrow(/read-only transaction/);
    expect(await onA.stop()).toEqual([]);
    expect(onA.failures).toBeGreaterThan(0);
    expect(await missing(B, 't', acked)).toEqual([]);

    // The fence is recorded: the next start keeps following B.
    await stop(A);
    const again = await start(A, aEnv);
    expect(rowOf(again)).toBe('fenced standby × PRIMARY');
    expect(again.stderr).not.toMatch(/rewinding with pg_rewind|pg_basebackup/);
    expect(await isInRecovery(A)).toBe(true);
    await stop(A);
    await stop(B);
  }, 400_000);
});

// ---------------------------------------------------------------------------------------------

describe('3-5. killed right after hand-over; upstream restarted while streaming', () => {
  const P = 5620, S1 = 5621, S2 = 5622;
  let acked: number[] = [];
  let pids: Record<number, number> = {};
  const streamLines = (port: number) => (nodes.get(port)!.stderr.match(/started streaming WAL from primary/g) ?? []).length;

  it('a primary and two standbys, streaming', async () => {
    await start(P);
    await query(P, 'CREATE TABLE t (id int PRIMARY KEY)');
    await start(S1, standbyOf(P));
    await start(S2, standbyOf(P));
    for (const s of [S1, S2]) expect(await waitFor(`${s} streaming`, () => streamingTo(P, s))).toBe(true);
    pids = { [S1]: nodes.get(S1)!.pid, [S2]: nodes.get(S2)!.pid };
  });

  it('3. the primary killed under load: crash recovery on restart, every acknowledged commit kept, standbys reconnect', async () => {
    const w = writer(P, 't', 1);
    await w.more(300);
    await crash(P); // postgres (postmaster, backends) and the entrypoint supervising it, at once
    acked = await w.stop();
    // Half-written: a cluster that was in production, its postmaster.pid left behind, WAL of
    // commits not yet in the data files.
    expect((await readControlData(pgdata(P)))!.state).toBe('in production');
    expect(existsSync(join(pgdata(P), 'postmaster.pid'))).toBe(true);

    const p = await start(P);
    expect(rowOf(p)).toBe('primary cluster × PRIMARY');
    expect(startLine(p)!.steps).not.toEqual(expect.arrayContaining([expect.stringMatching(/initdb|clone|rewind|temp-server|promote/)]));
    expect(p.stderr).toMatch(/database system was not properly shut down; automatic recovery in progress/);
    expect(p.stderr).not.toMatch(/running init script|pg_basebackup|discarded/);
    expect(await isInRecovery(P)).toBe(false);
    expect(await missing(P, 't', acked)).toEqual([]);

    // The standbys were never restarted: they reconnect by themselves and get everything.
    for (const s of [S1, S2]) {
      expect(nodes.get(s)!.pid).toBe(pids[s]);
      expect(nodes.get(s)!.child.exitCode).toBeNull();
      expect(await waitFor(`${s} streaming again`, () => streamingTo(P, s), 90_000)).toBe(true);
    }
    const w2 = writer(P, 't', 1_000_000);
    await w2.more(100);
    acked.push(...(await w2.stop()));
    for (const s of [S1, S2]) await waitForAll(s, 't', acked);
  });

  it('4. a standby killed while its primary takes writes: streams again on restart without a copy', async () => {
    const w = writer(P, 't', 2_000_000);
    await w.more(100);
    const sys = (await readControlData(pgdata(S1)))!.systemIdentifier;
    await crash(S1);
    await w.more(200); // written while S1 is down
    // Half-written: a standby's data in archive recovery, its postmaster.pid left behind.
    expect((await readControlData(pgdata(S1)))!.state).toBe('in archive recovery');
    expect(existsSync(join(pgdata(S1), 'postmaster.pid'))).toBe(true);
    expect(existsSync(join(pgdata(S1), 'standby.signal'))).toBe(true);

    const s = await start(S1, standbyOf(P));
    expect(rowOf(s)).toBe('standby cluster × STANDBY');
    expect(startLine(s)!.steps).not.toEqual(expect.arrayContaining([expect.stringMatching(/clone|rewind|initdb|move-aside|commit-staging/)]));
    expect(s.stderr).not.toMatch(/pg_basebackup|cloning the upstream|pg_rewind/);
    expect((await readControlData(pgdata(S1)))!.systemIdentifier).toBe(sys);
    await w.more(100);
    acked.push(...(await w.stop()));
    await waitForAll(S1, 't', acked);
    await waitForAll(S2, 't', acked);
    expect(await waitFor('S1 streaming', () => streamingTo(P, S1))).toBe(true);
    expect(await isInRecovery(S1)).toBe(true);
    pids[S1] = nodes.get(S1)!.pid;
  });

  it('5. the upstream stopped and started again while its standbys stream: they reconnect by themselves', async () => {
    const before: Record<number, number> = { [S1]: streamLines(S1), [S2]: streamLines(S2) };
    for (const s of [S1, S2]) expect(before[s]).toBeGreaterThan(0);
    const w = writer(P, 't', 3_000_000);
    await w.more(100);
    expect((await stop(P)).code).toBe(0);
    acked.push(...(await w.stop()));

    const p = await start(P);
    expect(rowOf(p)).toBe('primary cluster × PRIMARY');
    expect(await missing(P, 't', acked)).toEqual([]);
    const w2 = writer(P, 't', 4_000_000);
    await w2.more(200);
    const after = await w2.stop();
    for (const s of [S1, S2]) {
      expect(nodes.get(s)!.pid).toBe(pids[s]); // not restarted
      expect(await waitFor(`${s} streaming again`, () => streamingTo(P, s), 90_000)).toBe(true);
      await waitForAll(s, 't', [...acked, ...after]);
      expect(streamLines(s)).toBeGreaterThan(before[s]!);
    }
  });
});

// ---------------------------------------------------------------------------------------------

const asRoot = process.getuid?.() === 0;

describe.skipIf(!asRoot)('6. the WAL archive\'s disk full (a tmpfs for PGREPL_ARCHIVE_DIR; mounting needs root)', () => {
  const P = 5630, S = 5631;
  const MB = 1024 * 1024;
  /** The primary keeps no WAL for absent standbys: only what its checkpoints and the archive still need. */
  const P_ARGS = ['-c', 'wal_keep_size=0', '-c', 'max_wal_size=64MB', '-c', 'min_wal_size=32MB'];
  let archive: string;
  let env: Record<string, string>;
  let acked: number[] = [];
  let needed: string;
  let outage: string[] = [];

  const stats = async () =>
    (await query<{ archived: number; failed: number; last: string | null; lastFailed: string | null }>(
      P, 'SELECT archived_count::int AS archived, failed_count::int AS failed, last_archived_wal AS last, last_failed_wal AS "lastFailed" FROM pg_stat_archiver',
    ))[0]!;
  const currentSegment = async () => (await query<{ f: string }>(P, 'SELECT pg_walfile_name(pg_current_wal_lsn()) AS f'))[0]!.f;
  /** Ends the current segment (after a write, so that there is one to end); returns its name. */
  const switchSegment = async () => {
    await query(P, 'INSERT INTO pad SELECT repeat(md5(g::text), 8) FROM generate_series(1, 2000) g');
    const seg = await currentSegment();
    await query(P, 'SELECT pg_switch_wal()');
    return seg;
  };
  const ready = () => readdirSync(join(pgdata(P), 'pg_wal', 'archive_status')).filter((f) => f.endsWith('.ready'));
  const tempFiles = () => readdirSync(archive).filter((f) => f.startsWith('.'));

  /** Fills the archive's filesystem, but for `leave` bytes. */
  function fill(leave: number) {
    const reserve = join(archive, 'reserve');
    writeFileSync(reserve, Buffer.alloc(leave));
    const fd = openSync(join(archive, 'filler'), 'w');
    const chunk = Buffer.alloc(MB);
    try {
      for (;;) writeSync(fd, chunk);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOSPC') throw err;
    } finally {
      closeSync(fd);
    }
    rmSync(reserve);
  }

  beforeAll(() => {
    archive = join(dir, 'archive');
    mkdirSync(archive);
    const pgUser = lookupUser();
    execFileSync('mount', ['-t', 'tmpfs', '-o', `size=768m,mode=0700,uid=${pgUser.uid},gid=${pgUser.gid}`, 'pgrepl-fault-archive', archive]);
    mounts.push(archive);
    env = { PGREPL_ARCHIVE_DIR: archive };
  });

  it('a primary archiving, and a standby without a slot that then goes away', async () => {
    await start(P, env, P_ARGS);
    await query(P, 'CREATE TABLE t (id int PRIMARY KEY)');
    await query(P, 'CREATE TABLE pad (p text)');
    const seg = await switchSegment();
    await waitFor(`${seg} archived`, async () => (await stats()).last === seg);
    expect((await stats()).failed).toBe(0);

    await start(S, standbyOf(P, { ...env, PGREPL_SLOTS: 'off' }));
    const w = writer(P, 't', 1);
    await w.more(50);
    acked = await w.stop();
    await waitForAll(S, 't', acked);
    const replay = (await query<{ lsn: string }>(P, 'SELECT replay_lsn::text AS lsn FROM pg_stat_replication WHERE application_name = $1', [`node_${S}`]))[0]!.lsn;
    needed = (await query<{ f: string }>(P, 'SELECT pg_walfile_name($1::pg_lsn) AS f', [replay]))[0]!.f;
    await stop(S);
  });

  it('disk full: archive-wal fails, postgres keeps the segments and retries, writes are still acknowledged', async () => {
    fill(4 * MB); // less than a segment: every try starts writing, then runs out of space
    const before = await stats();
    const w = writer(P, 't', 1_000_000);
    for (let i = 0; i < 3; i++) {
      outage.push(await switchSegment());
      await w.more(20);
    }
    await waitFor('failed archive attempts', async () => (await stats()).failed >= before.failed + 3, 90_000);
    await w.more(50); // acknowledged while the archive is full
    acked.push(...(await w.stop()));

    const s = await stats();
    expect(s.last).toBe(before.last); // nothing archived since
    expect(outage).toContain(s.lastFailed);
    const p = nodes.get(P)!;
    expect(p.stderr).toMatch(/ENOSPC|no space left on device/i);
    expect(p.stderr).toMatch(/archive command failed with exit code 1/);
    // Kept for a retry: every segment of the outage is still in pg_wal, marked ready.
    for (const seg of outage) {
      expect(readdirSync(join(pgdata(P), 'pg_wal'))).toContain(seg);
      expect(ready()).toContain(`${seg}.ready`);
      expect(existsSync(join(archive, seg))).toBe(false);
    }
    // Half-written: each failed try had a segment half copied into a temporary file in the
    // archive; none is left behind to keep the disk full.
    expect(tempFiles()).toEqual([]);
    expect(await missing(P, 't', acked)).toEqual([]);
  }, 400_000);

  it('space back: every segment is archived, none missing, and a standby restores from the archive', async () => {
    rmSync(join(archive, 'filler'));
    const last = await switchSegment(); // a new segment to archive wakes the archiver
    await waitFor('the archiver to catch up', async () => (await stats()).last === last && ready().length === 0, 150_000);
    expect(tempFiles()).toEqual([]);
    // Every segment from the first archived to the last, without a gap.
    const segs = readdirSync(archive).filter((f) => /^[0-9A-F]{24}$/.test(f)).sort();
    const index = (f: string) => parseInt(f.slice(8, 16), 16) * 256 + parseInt(f.slice(16), 16);
    expect(segs.map(index)).toEqual(segs.map((_, i) => index(segs[0]!) + i));
    for (const seg of [...outage, needed, last]) expect(segs).toContain(seg);
    for (const seg of segs) expect(statSync(join(archive, seg)).size).toBe(16 * MB);

    // The primary recycles what the archive now holds, until the standby's next segment is gone.
    for (let round = 0; round < 20 && readdirSync(join(pgdata(P), 'pg_wal')).includes(needed); round++) {
      await switchSegment();
      await query(P, 'CHECKPOINT');
    }
    expect(readdirSync(join(pgdata(P), 'pg_wal'))).not.toContain(needed);
    await waitFor('the archiver to catch up again', async () => ready().length === 0, 150_000);

    // The standby that was away catches up from the archive: the outage's segments included.
    const s = await start(S, standbyOf(P, { ...env, PGREPL_SLOTS: 'off' }));
    await waitForAll(S, 't', acked, 180_000).catch((err) => {
      throw new Error(`${(err as Error).message}\n${s.stderr.slice(-4000)}`);
    });
    for (const seg of [needed, ...outage]) expect(s.stderr).toMatch(new RegExp(`restored log file "${seg}" from archive`));
    const w = writer(P, 't', 2_000_000);
    await w.more(20);
    const more = await w.stop();
    await waitForAll(S, 't', [...acked, ...more]);
    expect((await stats()).failed).toBeGreaterThan(0);
  }, 400_000);
});
