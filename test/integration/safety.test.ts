/**
 * Issue 10, data safety round 2, on real PostgreSQL servers through the bundle: no start may fork,
 * empty or needlessly re-copy a cluster.
 *
 *   1. PGDATA holding only kept copies is not empty: a PRIMARY refuses, a STANDBY clones
 *   2. a stop signal during a rewind's crash recovery ends the start; nothing is moved aside
 *   3. a standby killed while pgrepl had it out of standby mode (crash recovery before a rewind),
 *      its upstream down at the next start: it comes up read-only, not writable on the old timeline
 *   4. a clone is a standby from its first byte in PGDATA (killed the moment it appears)
 *   6. crash recovery before a rewind keeps the WAL archive whole
 *   9. a standby with data starts even when its upstream refuses it (postgres retries, and logs
 *      why, once a minute; it streams once let in); one without data refuses
 *  10. a standby restarted with another upstream drops its slot on the one it left
 *
 * Ports 5851-5869 are this file's alone.
 */
import { chmodSync, existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { replicationPassword } from '../../src/config/token.js';
import { isInRecovery, standbyOf, waitFor, waitForRows } from '../support/cluster.js';
import { PG_PATH, testEnv } from '../support/env.js';
import { stopAllNodes } from '../support/process-group.js';
import { RunningNodes } from '../support/running-nodes.js';
import { query, removeScratch, runBundle, runCommand as cli, scratchDir, TestNode, type NodeOptions, type RunResult } from '../support/node.js';

const TOKEN = 'safety-token';
let dir: string;
const nodes = new RunningNodes();
const pgdata = (port: number) => join(dir, `n${port}`);

function opts(port: number, env: Record<string, string> = {}): NodeOptions {
  return { pgdata: pgdata(port), port, env: { PGREPL_TOKEN: TOKEN, ...env }, detached: true };
}

const spawnNode = (port: number, env: Record<string, string> = {}) => nodes.spawn(opts(port, env));
const start = (port: number, env: Record<string, string> = {}) => nodes.start(opts(port, env), 180_000);
const stop = (port: number) => nodes.stop(port);
const crash = (port: number) => nodes.crash(port);

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const rowOf = (n: TestNode | RunResult) => {
  const lines = ('logs' in n ? n.stderr : n.stderr).split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as { row?: string });
  return lines.find((l) => typeof l.row === 'string')?.row;
};
const keptCopies = (port: number) => readdirSync(join(pgdata(port), 'pg_dynshmem')).filter((e) => e.startsWith('pgrepl-aside-'));

async function writeFails(port: number): Promise<boolean> {
  try {
    await query(port, 'CREATE TABLE must_fail (x int)');
    return false;
  } catch (err) {
    return /read-only transaction/.test((err as Error).message);
  }
}

/**
 * A `postgres` that, the first time it is asked for single-user mode (pgrepl's crash recovery
 * before pg_rewind), says so with a marker and blocks: holds a start at the moment pgrepl has
 * taken the standby out of standby mode. Returns the marker and a PATH that puts it first.
 */
function blockingSingleUser(name: string): { marker: string; path: string } {
  const markers = join(dir, `${name}-markers`);
  mkdirSync(markers, { recursive: true });
  chmodSync(markers, 0o777);
  const marker = join(markers, 'single-user');
  const shim = join(dir, `${name}-bin`);
  mkdirSync(shim, { mode: 0o755 });
  const real = join(testEnv.pgBin, 'postgres');
  writeFileSync(join(shim, 'postgres'), [
    '#!/bin/sh',
    `if [ "$1" = --single ] && [ ! -e '${marker}' ]; then echo "$$" > '${marker}.tmp' && mv '${marker}.tmp' '${marker}'; exec sleep 600; fi`,
    `exec ${real} "$@"`,
    '',
  ].join('\n'), { mode: 0o755 });
  return { marker, path: `${shim}:${PG_PATH}` };
}

async function poll(what: string, fn: () => boolean, timeoutMs: number, n?: TestNode): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!fn()) {
    if (n && n.child.exitCode !== null) throw new Error(`the node exited while waiting for ${what}:\n${n.stderr.slice(-4000)}`);
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(5);
  }
}

beforeAll(() => {
  dir = scratchDir('pgrepl-safety-');
});

afterAll(async () => {
  const problems = await stopAllNodes(nodes.byPort, dir);
  removeScratch(dir);
  if (problems.length) throw new Error(problems.join('\n'));
});

// ---------------------------------------------------------------------------------------------

describe('1. PGDATA with only kept copies is not empty', () => {
  const P = 5858, S = 5859;

  it('a PRIMARY refuses with one line naming the copy, touching nothing; a STANDBY clones beside it', async () => {
    // A real cluster moved aside, as a rejoin whose rewind and clone both failed leaves it.
    await start(P);
    await query(P, 'CREATE TABLE precious (x int); INSERT INTO precious VALUES (42)');
    await stop(P);
    const aside = join(dir, 'aside-src');
    renameSync(pgdata(P), aside);
    mkdirSync(join(pgdata(P), 'pg_dynshmem'), { recursive: true, mode: 0o700 });
    renameSync(aside, join(pgdata(P), 'pg_dynshmem', 'pgrepl-aside-20260101T000000Z'));
    const before = readdirSync(pgdata(P)).sort();

    const res = await runBundle(opts(P));
    expect(res.code).toBe(1);
    const fatal = res.stderr.split('\n').filter((l) => l.includes('"level":60'));
    expect(fatal).toHaveLength(1);
    expect(fatal[0]).toContain(`PGDATA=${pgdata(P)} holds no cluster, only data moved aside earlier (${pgdata(P)}/pg_dynshmem/pgrepl-aside-20260101T000000Z)`);
    expect(res.stderr).not.toMatch(/initdb/);
    expect(readdirSync(pgdata(P)).sort()).toEqual(before);
    expect(existsSync(join(pgdata(P), 'PG_VERSION'))).toBe(false);

    // The way back the message names: move the copy back in, start again.
    const kept = join(pgdata(P), 'pg_dynshmem', 'pgrepl-aside-20260101T000000Z');
    for (const e of readdirSync(kept).filter((e) => e !== 'pg_dynshmem')) renameSync(join(kept, e), join(pgdata(P), e));
    rmSync(kept, { recursive: true });
    await start(P);
    expect(await query(P, 'SELECT x FROM precious')).toEqual([{ x: 42 }]);

    // A STANDBY whose PGDATA holds only a kept copy clones, and the copy stays.
    mkdirSync(join(pgdata(S), 'pg_dynshmem', 'pgrepl-aside-20260101T000000Z'), { recursive: true, mode: 0o700 });
    writeFileSync(join(pgdata(S), 'pg_dynshmem', 'pgrepl-aside-20260101T000000Z', 'PG_VERSION'), '15\n');
    const s = await start(S, standbyOf(P));
    expect(rowOf(s)).toBe('kept copies only × STANDBY');
    expect(await query(S, 'SELECT x FROM precious')).toEqual([{ x: 42 }]);
    expect(keptCopies(S)).toEqual(['pgrepl-aside-20260101T000000Z']);
    await stop(S);
    await stop(P);
  });
});

describe('2, 3. a standby that must be rewound, stopped and killed while out of standby mode', () => {
  const A = 5851, B = 5852, C = 5853;
  let shim: { marker: string; path: string };

  it('sets up: A primary, B and C its standbys; C promoted; A writes more, which B receives (B diverged)', async () => {
    await start(A);
    await query(A, 'CREATE TABLE t (id int)');
    await start(B, standbyOf(A));
    await start(C, standbyOf(A));
    await query(A, 'INSERT INTO t SELECT generate_series(1, 100)');
    await waitForRows(B, 't', 100);
    await waitForRows(C, 't', 100);
    expect((await cli(opts(C), ['promote'])).stdout).toBe('promoted: now a primary on timeline 2\n');
    await query(C, 'INSERT INTO t SELECT generate_series(1001, 1010)');
    await query(A, 'INSERT INTO t SELECT generate_series(101, 200)');
    await waitForRows(B, 't', 200);
    await crash(B); // not shut down cleanly: the rewind needs crash recovery first
    await stop(A);
    shim = blockingSingleUser('b');
  });

  it('2. SIGTERM during crash recovery before pg_rewind: the start ends (exit 143), nothing is moved aside or cloned', async () => {
    const n = spawnNode(B, { ...standbyOf(C), PATH: shim.path });
    await poll('crash recovery to start', () => existsSync(shim.marker), 120_000, n);
    expect(existsSync(join(pgdata(B), 'standby.signal'))).toBe(false); // taken out of standby mode
    n.child.kill('SIGTERM'); // docker stop: the signal goes to the entrypoint alone
    const res = await n.exited;
    nodes.forget(B);
    expect(res.code).toBe(143);
    expect(res.stderr).toMatch(/stopped by SIGTERM before postgres started; the next start picks up where this one left off/);
    expect(res.stderr).not.toMatch(/moving this node's data aside|moved the old data aside|cloning the upstream/);
    expect(keptCopies(B)).toEqual([]);
    expect(existsSync(join(pgdata(B), '.pgrepl-staging-clone'))).toBe(false);
  });

  it('3. killed in the same place, then started while its upstream is down: read-only, not a primary on the old timeline', async () => {
    rmMarker(shim.marker);
    const n = spawnNode(B, { ...standbyOf(C), PATH: shim.path });
    await poll('crash recovery to start', () => existsSync(shim.marker), 120_000, n);
    await crash(B);
    expect(existsSync(join(pgdata(B), 'standby.signal'))).toBe(false);
    await stop(C);

    const b = await start(B, { ...standbyOf(C), PGREPL_UPSTREAM_TIMEOUT: '2' });
    expect(rowOf(b)).toBe('standby cluster × STANDBY');
    expect(await isInRecovery(B)).toBe(true);
    expect(await writeFails(B)).toBe(true);
    await stop(B);
  });

  it('once the upstream is back, it rewinds and follows it: no copy, C\'s writes arrive, A\'s diverged ones are gone', async () => {
    await start(C);
    const b = await start(B, standbyOf(C));
    expect(rowOf(b)).toBe('standby cluster × STANDBY');
    expect(b.stderr).toMatch(/pg_rewind finished/);
    expect(b.stderr).not.toMatch(/cloning the upstream/);
    await waitFor('B to have C\'s rows', async () => (await query<{ n: number }>(B, 'SELECT count(*)::int AS n FROM t WHERE id > 1000'))[0]!.n === 10);
    expect((await query<{ n: number }>(B, 'SELECT count(*)::int AS n FROM t WHERE id BETWEEN 101 AND 200'))[0]!.n).toBe(0);
    expect(keptCopies(B)).toEqual([]);
    await stop(B);
    await stop(C);
  });
});

function rmMarker(marker: string): void {
  if (existsSync(marker)) renameSync(marker, `${marker}.used-${Date.now()}`);
}

describe('4. a clone is a standby from its first byte in PGDATA', () => {
  const P = 5854, S = 5855;

  it('killed the moment its copy appears in PGDATA, it restarts (upstream down) as a read-only standby', async () => {
    await start(P);
    await query(P, 'CREATE TABLE c (x int); INSERT INTO c VALUES (1)');
    const n = spawnNode(S, standbyOf(P));
    const version = join(pgdata(S), 'PG_VERSION');
    const signal = join(pgdata(S), 'standby.signal');
    let sawVersionWithoutSignal = false;
    await poll('the copy to appear in PGDATA', () => existsSync(version), 120_000, n);
    if (!existsSync(signal)) sawVersionWithoutSignal = true;
    await crash(S);
    expect(sawVersionWithoutSignal).toBe(false);
    expect(existsSync(signal)).toBe(true);
    expect(readFileSync(join(pgdata(S), 'pgrepl.conf'), 'utf8')).toMatch(/primary_conninfo = .*port=''5854''/);

    await stop(P);
    const s = await start(S, { ...standbyOf(P), PGREPL_UPSTREAM_TIMEOUT: '2' });
    expect(rowOf(s)).toBe('standby cluster × STANDBY');
    expect(await isInRecovery(S)).toBe(true);
    expect(await query(S, 'SELECT x FROM c')).toEqual([{ x: 1 }]);
    await stop(S);
  });
});

describe('9. an upstream that refuses this node', () => {
  const P = 5856, S = 5857, E = 5860, Q = 5861, R = 5862;

  it('a standby with data and a wrong token starts on its data, read-only; an empty one refuses with one line', async () => {
    await start(P);
    await query(P, 'CREATE TABLE r (x int); INSERT INTO r VALUES (7)');
    await start(S, standbyOf(P));
    await waitForRows(S, 'r', 1);
    await stop(S);

    const s = await start(S, { ...standbyOf(P), PGREPL_TOKEN: 'a-rotated-token' });
    expect(rowOf(s)).toBe('standby cluster × STANDBY');
    expect(s.stderr).toMatch(/rejected the replication password .*: starting on the data it has, serving reads/);
    expect(await query(S, 'SELECT x FROM r')).toEqual([{ x: 7 }]);
    expect(await isInRecovery(S)).toBe(true);
    // postgres retries (and logs the refusal) once a minute, not every 5 s ...
    expect(await query(S, 'SHOW wal_retrieve_retry_interval')).toEqual([{ wal_retrieve_retry_interval: '1min' }]);
    await sleep(16_000);
    // At its start postgres tries twice in a row (streaming, then again once pg_wal has nothing);
    // then once a minute. Every 5 s, 16 s would have logged 4 or more.
    expect(s.stderr.split('\n').filter((l) => l.includes('could not connect to the primary server')).length).toBeLessThanOrEqual(2);
    // ... and streams once the upstream lets it in (the token rotated there too), without a restart.
    await query(P, `ALTER ROLE pgrepl PASSWORD '${replicationPassword('a-rotated-token')}'`);
    await query(P, 'INSERT INTO r VALUES (8)');
    await waitForRows(S, 'r', 2, 90_000);
    await stop(S);
    await query(P, `ALTER ROLE pgrepl PASSWORD '${replicationPassword(TOKEN)}'`);

    const res = await runBundle(opts(E, { ...standbyOf(P), PGREPL_TOKEN: 'a-rotated-token' }));
    expect(res.code).toBe(1);
    const fatal = res.stderr.split('\n').filter((l) => l.includes('"level":60'));
    expect(fatal).toHaveLength(1);
    expect(fatal[0]).toMatch(/the upstream 127\.0\.0\.1:5856 rejected the replication password \(28P01: .*\): PGREPL_TOKEN \(or PGREPL_TOKEN_FILE\) must be the same on every node; nothing was changed/);
    expect(existsSync(pgdata(E))).toBe(false);
    expect(res.stderr).not.toContain('a-rotated-token');
    await stop(P);
  });

  it('an upstream without the replication role (a plain server that trusts replication connections) is named as such', async () => {
    // With a password method the server hides whether the role exists (28P01); with trust it says so.
    await start(Q);
    await query(Q, 'DROP OWNED BY pgrepl; DROP ROLE pgrepl');
    const hba = join(pgdata(Q), 'pg_hba.conf');
    writeFileSync(hba, readFileSync(hba, 'utf8').replace(/^(host\s+replication\s+pgrepl\s+\S+\s+)\S+$/gm, '$1trust'));
    await query(Q, 'SELECT pg_reload_conf()');
    const res = await runBundle(opts(R, standbyOf(Q)));
    expect(res.code).toBe(1);
    expect(res.stderr).toMatch(/the upstream 127\.0\.0\.1:5861 has no role pgrepl \(28000: .*\): it runs without replication/);
    await stop(Q);
  });
});

describe('6. crash recovery before a rewind keeps the WAL archive whole', () => {
  const A = 5863, B = 5864;
  let archive: string;
  let waiting: string[];

  it('a primary whose archiving failed is killed, its standby promoted; on rejoin every waiting segment reaches the archive', async () => {
    archive = join(dir, 'archive');
    mkdirSync(archive, { mode: 0o755 });
    const env = { PGREPL_ARCHIVE_DIR: archive };
    await start(A, env);
    // Segments the checkpoint after crash recovery may remove at once (no floor kept).
    await query(A, 'ALTER SYSTEM SET wal_keep_size = 0');
    await query(A, 'ALTER SYSTEM SET min_wal_size = \'32MB\'');
    await query(A, 'SELECT pg_reload_conf()');
    await query(A, 'CREATE TABLE w (x int)');
    await start(B, { ...standbyOf(A), ...env });
    chmodSync(archive, 0o555); // the archive is unwritable: segments wait in A's pg_wal (.ready)
    for (let i = 0; i < 6; i++) {
      await query(A, `INSERT INTO w SELECT generate_series(${i * 1000}, ${i * 1000 + 999})`);
      await query(A, 'SELECT pg_switch_wal()');
    }
    await waitForRows(B, 'w', 6000);
    await crash(A);
    waiting = readdirSync(join(pgdata(A), 'pg_wal', 'archive_status')).filter((f) => f.endsWith('.ready')).map((f) => f.slice(0, -6)).filter((f) => /^[0-9A-F]{24}$/.test(f));
    expect(waiting.length).toBeGreaterThanOrEqual(6);
    chmodSync(archive, 0o755);
    expect((await cli(opts(B, env), ['promote'])).stdout).toBe('promoted: now a primary on timeline 2\n');

    const a = await start(A, { ...standbyOf(B), ...env });
    expect(a.stderr).toMatch(/finishing crash recovery in single-user mode/);
    expect(a.stderr).toMatch(/pg_rewind finished/);
    const archived = new Set(readdirSync(archive));
    expect(waiting.filter((s) => !archived.has(s))).toEqual([]);
    expect(await isInRecovery(A)).toBe(true);
    await stop(A);
    await stop(B);
  });
});

describe('10. a standby restarted with another upstream drops its slot on the one it left', () => {
  const A = 5865, B = 5866, C = 5867;
  const slots = async (port: number) => (await query<{ slot_name: string }>(port, 'SELECT slot_name FROM pg_replication_slots ORDER BY 1')).map((r) => r.slot_name);

  it('B, a standby of A, restarted as a standby of C: its slot is on C and no longer on A', async () => {
    await start(A);
    await start(B, standbyOf(A));
    await start(C, standbyOf(A));
    expect(await slots(A)).toEqual([`node_${B}`, `node_${C}`]);
    await stop(B);
    const b = await start(B, standbyOf(C));
    expect(b.stderr).toMatch(/dropped this node's slot on the old upstream 127\.0\.0\.1:5865/);
    expect(await slots(A)).toEqual([`node_${C}`]);
    expect(await slots(C)).toEqual([`node_${B}`]);
    await stop(B);
    await stop(C);
    await stop(A);
  });
});
