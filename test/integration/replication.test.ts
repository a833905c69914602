/**
 * The seed README's walkthrough, node for node, on real PostgreSQL servers through the bundle:
 * a primary, two standbys, a cascade; writes everywhere; restarts that do not copy; the primary
 * killed and a standby promoted; the cascade following the new timeline by itself; the orphan
 * standby re-pointed with `pgrepl follow`; the crashed old primary rejoining by pg_rewind; a
 * standby promoted on start.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { replicationPassword } from '../../src/config/token.js';
import { isInRecovery, standbyOf, waitFor, waitForRows } from '../support/cluster.js';
import { query, removeScratch, runCommand as cli, scratchDir, TestNode, type NodeOptions } from '../support/node.js';

const A = 5751, B = 5752, C = 5753, D = 5754;
const TOKEN = 'replication-test-token';
let dir: string;
const nodes = new Map<number, TestNode>();
const outputs: string[] = [];

function opts(port: number, env: Record<string, string> = {}): NodeOptions {
  return { pgdata: join(dir, `n${port}`), port, env: { PGREPL_TOKEN: TOKEN, ...env } };
}

async function start(port: number, env: Record<string, string> = {}): Promise<TestNode> {
  const n = new TestNode(opts(port, env));
  nodes.set(port, n);
  void n.exited.then((r) => outputs.push(r.stdout, r.stderr));
  await n.ready();
  return n;
}

async function stop(port: number, signal: NodeJS.Signals = 'SIGINT') {
  const n = nodes.get(port)!;
  const res = await n.stop(signal);
  nodes.delete(port);
  return res;
}

/** Kills a node like a crashed machine would: the entrypoint and every process it started. */
async function crash(port: number) {
  const pid = Number(readFileSync(join(dir, `n${port}`, 'postmaster.pid'), 'utf8').split('\n')[0]);
  process.kill(pid, 'SIGKILL');
  await nodes.get(port)!.exited;
  nodes.delete(port);
}

const row = (n: TestNode) => n.logs().find((l) => typeof l.row === 'string')?.row;

beforeAll(() => {
  dir = scratchDir();
});
afterAll(async () => {
  for (const port of [...nodes.keys()]) await stop(port, 'SIGINT').catch(() => undefined);
  removeScratch(dir);
});

describe('replication', () => {
  it('a primary, two standbys and a cascade: cloned, never initdb, slots on their upstreams', async () => {
    await start(A);
    const b = await start(B, standbyOf(A));
    const c = await start(C, standbyOf(A));
    const d = await start(D, standbyOf(B));
    for (const n of [b, c, d]) {
      expect(row(n)).toBe('missing/empty × STANDBY');
      expect(n.stderr).toMatch(/cloning the upstream with pg_basebackup/);
      expect(n.logs().map((l) => l.msg)).not.toContain('initdb');
      expect(n.stderr).not.toMatch(/running init script|starting a temporary server/);
      expect(await isInRecovery(n.opts.port)).toBe(true);
    }
    const slotsOf = async (port: number) =>
      (await query<{ slot_name: string }>(port, 'SELECT slot_name FROM pg_replication_slots WHERE active ORDER BY 1')).map((r) => r.slot_name);
    await waitFor('active slots', async () => (await slotsOf(A)).length === 2 && (await slotsOf(B)).length === 1);
    expect(await slotsOf(A)).toEqual([`node_${B}`, `node_${C}`]);
    expect(await slotsOf(B)).toEqual([`node_${D}`]);
  });

  it('writes on the primary reach every standby, the cascade too', async () => {
    await query(A, 'CREATE TABLE t (v int)');
    await query(A, 'INSERT INTO t VALUES (1)');
    for (const port of [B, C, D]) await waitForRows(port, 't', 1);
    await expect(query(B, 'INSERT INTO t VALUES (99)')).rejects.toThrow(/read-only transaction/);
  });

  it('with PGREPL_SLOTS=off a standby streams without a slot', async () => {
    const e = await start(5755, standbyOf(A, { PGREPL_SLOTS: 'off' }));
    await waitForRows(5755, 't', 1);
    const slots = await query<{ slot_name: string }>(A, 'SELECT slot_name FROM pg_replication_slots');
    expect(slots.map((r) => r.slot_name)).not.toContain('node_5755');
    expect(e.stderr).not.toMatch(/this node's slot|replication slot "node_5755"/);
    expect(readFileSync(join(dir, 'n5755', 'pgrepl.conf'), 'utf8')).not.toMatch(/primary_slot_name/);
    await stop(5755);
    await waitFor('its walsender to go', async () => (await query(A, "SELECT 1 FROM pg_stat_replication WHERE application_name = 'node_5755'")).length === 0);
  });

  it('status and health describe each node', async () => {
    const sa = JSON.parse((await cli(opts(A), ['status', '--json'])).stdout);
    expect(sa.role).toBe('primary');
    expect(sa.timeline).toBe(1);
    expect(sa.standbys.map((s: { name: string }) => s.name)).toEqual([`node_${B}`, `node_${C}`]);
    expect(sa.slots.map((s: { name: string; active: boolean }) => [s.name, s.active])).toEqual([[`node_${B}`, true], [`node_${C}`, true]]);
    const sd = JSON.parse((await cli(opts(D), ['status', '--json'])).stdout);
    expect(sd).toMatchObject({ role: 'standby', timeline: 1, upstream: { host: '127.0.0.1', port: B, status: 'streaming' } });
    expect(sd.lag.bytes).toBeGreaterThanOrEqual(0);
    expect((await cli(opts(A), ['status'])).stdout).toMatch(/^role: primary\ntimeline: 1\n/);

    expect((await cli(opts(A), ['health', '--primary'])).code).toBe(0);
    expect((await cli(opts(B), ['health', '--primary'])).code).toBe(1);
    expect((await cli(opts(B), ['health', '--standby', '--max-lag', '1000000000'])).code).toBe(0);
    expect((await cli(opts(A), ['health', '--standby'])).code).toBe(1);
    const nobody = await cli(opts(5759), ['health']);
    expect(nobody.code).toBe(1);
    expect(nobody.stdout).toMatch(/^unhealthy/);
    expect((await cli(opts(A), ['health', '--bogus'])).code).toBe(64);
  });

  it('status tells how far a standby is behind its upstream (asked there), not just its own backlog', async () => {
    const behind = async (port: number) => {
      const st = JSON.parse((await cli(opts(port), ['status', '--json'])).stdout) as { behindUpstream: { bytes: number } | null };
      return st.behindUpstream;
    };
    await waitFor('C caught up with A', async () => (await behind(C))?.bytes === 0);
    await waitFor('D (a cascade) caught up with B', async () => (await behind(D))?.bytes === 0);
    await query(C, 'SELECT pg_wal_replay_pause()');
    try {
      await query(A, "INSERT INTO t SELECT 100 + g FROM generate_series(1, 1000) g; DELETE FROM t WHERE v > 100");
      const paused = await behind(C);
      expect(paused?.bytes).toBeGreaterThan(0);
      expect((await cli(opts(C), ['status'])).stdout).toMatch(/^behind upstream: [1-9]\d* bytes$/m);
    } finally {
      await query(C, 'SELECT pg_wal_replay_resume()');
    }
    await waitFor('C caught up again', async () => (await behind(C))?.bytes === 0);
    // On a primary there is no upstream to be behind.
    expect(JSON.parse((await cli(opts(A), ['status', '--json'])).stdout).behindUpstream).toBeUndefined();
  });

  it('a standby restarts on its own data: no copy, streaming again', async () => {
    const marker = statSync(join(dir, `n${C}`, 'PG_VERSION')).ino;
    await stop(C);
    // Meanwhile its slot on A keeps the WAL it will need, and status says how much.
    await query(A, 'INSERT INTO t SELECT 100 + g FROM generate_series(1, 1000) g; DELETE FROM t WHERE v > 100');
    const slot = (JSON.parse((await cli(opts(A), ['status', '--json'])).stdout).slots as { name: string; active: boolean; retainedBytes: number }[])
      .find((x) => x.name === `node_${C}`);
    expect(slot).toMatchObject({ active: false });
    expect(slot!.retainedBytes).toBeGreaterThan(0);
    expect((await cli(opts(A), ['status'])).stdout).toMatch(new RegExp(`node_${C} inactive .*, retains [1-9]\\d* bytes of WAL \\(kept until its node reconnects; if it is gone for good: SELECT pg_drop_replication_slot\\('node_${C}'\\)\\)`));
    const c = await start(C, standbyOf(A));
    expect(row(c)).toBe('standby cluster × STANDBY');
    expect(c.stderr).not.toMatch(/pg_basebackup/);
    expect(statSync(join(dir, `n${C}`, 'PG_VERSION')).ino).toBe(marker);
    await query(A, 'INSERT INTO t VALUES (2)');
    await waitForRows(C, 't', 2);
  });

  it('the primary dies, B is promoted; the cascade D follows timeline 2 without a restart', async () => {
    await query(A, 'INSERT INTO t VALUES (3)');
    for (const port of [B, C, D]) await waitForRows(port, 't', 3);
    const dPid = nodes.get(D)!.pid;
    await crash(A);
    const res = await cli(opts(B), ['promote']);
    expect(res.stdout).toBe('promoted: now a primary on timeline 2\n');
    expect(res.code).toBe(0);
    expect(await isInRecovery(B)).toBe(false);
    await query(B, 'INSERT INTO t VALUES (4)');
    await waitForRows(D, 't', 4);
    const sd = JSON.parse((await cli(opts(D), ['status', '--json'])).stdout);
    expect(sd.timeline).toBe(2);
    expect(nodes.get(D)!.pid).toBe(dPid);
    expect((await cli(opts(B), ['promote'])).code).toBe(1); // not a standby any more
  });

  it('the orphan C follows B with `pgrepl follow`, and keeps following it after a restart', async () => {
    const res = await cli(opts(C, standbyOf(A)), ['follow', `127.0.0.1:${B}`]);
    expect(res.stdout).toBe(`following 127.0.0.1:${B} (timeline 2): streaming\n`);
    expect(res.code).toBe(0);
    await waitForRows(C, 't', 4);
    await stop(C);
    const c = await start(C, standbyOf(A)); // the environment still names A
    expect(c.stderr).toMatch(/upstream 127\.0\.0\.1:5752 answers/);
    await query(B, 'INSERT INTO t VALUES (5)');
    await waitForRows(C, 't', 5);
    const sc = JSON.parse((await cli(opts(C), ['status', '--json'])).stdout);
    expect(sc.upstream).toMatchObject({ port: B, status: 'streaming' });
  });

  it('the crashed old primary, started as a standby of B, is rewound and follows', async () => {
    const a = await start(A, standbyOf(B));
    expect(row(a)).toBe('primary cluster × STANDBY');
    expect(a.stderr).toMatch(/finishing crash recovery in single-user mode/);
    expect(a.stderr).toMatch(/pg_rewind finished/);
    expect(a.stderr).not.toMatch(/pg_basebackup/);
    expect(await isInRecovery(A)).toBe(true);
    await waitForRows(A, 't', 5).catch((err) => {
      throw new Error(`${(err as Error).message}\n${a.stderr.slice(-4000)}`);
    });
    expect(readdirSync(join(dir, `n${A}`, 'pg_dynshmem')).filter((e) => e.includes('aside'))).toEqual([]);
  });

  it('a standby restarted with PGREPL_ROLE=PRIMARY is promoted on start, its data kept', async () => {
    await stop(D);
    const d = await start(D, { PGREPL_ROLE: 'PRIMARY' });
    expect(row(d)).toBe('standby cluster × PRIMARY');
    expect(await isInRecovery(D)).toBe(false);
    expect((await query<{ n: number }>(D, 'SELECT count(*)::int AS n FROM t'))[0]!.n).toBe(5);
    await query(D, 'INSERT INTO t VALUES (6)');
    const sd = JSON.parse((await cli(opts(D), ['status', '--json'])).stdout);
    expect(sd.timeline).toBe(3);
  });

  it('no log line carries the replication password', async () => {
    for (const port of [...nodes.keys()]) await stop(port);
    await waitFor('all outputs', async () => outputs.length >= 2 * 8);
    const all = outputs.join('\n');
    expect(all).toMatch(/handing over to postgres/);
    const leaks = all.split('\n').filter((l) => l.includes(replicationPassword(TOKEN)));
    expect(leaks).toEqual([]);
    expect(all.includes(TOKEN)).toBe(false);
  });
});
