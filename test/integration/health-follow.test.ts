/**
 * A standby's upkeep, on real PostgreSQL servers through the bundle (issue 10, points 12 and 10):
 *   - `pgrepl health --standby --max-lag N` measures how far the standby is behind its upstream,
 *     not only the WAL it received and has yet to replay; a standby that does not stream is
 *     unhealthy once PGREPL_HEALTH_STREAM_GRACE has passed, healthy again when it streams;
 *   - `pgrepl follow` drops this node's slot on the upstream it left, when that one is up.
 *
 * Ports 5816-5818 are this file's alone.
 */
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { standbyOf, waitFor, waitForRows } from '../support/cluster.js';
import { query, removeScratch, runCommand as cli, scratchDir, TestNode, type NodeOptions } from '../support/node.js';

const P = 5816, S = 5817, T = 5818;
const TOKEN = 'health-follow-test-token';
let dir: string;
const nodes = new Map<number, TestNode>();
const stopped = new Set<number>();

const envOf = (port: number): Record<string, string> => (port === P ? {} : standbyOf(P));
const opts = (port: number, env: Record<string, string> = {}): NodeOptions =>
  ({ pgdata: join(dir, `n${port}`), port, env: { PGREPL_TOKEN: TOKEN, ...envOf(port), ...env } });

async function start(port: number): Promise<TestNode> {
  const n = new TestNode(opts(port));
  nodes.set(port, n);
  await n.ready();
  return n;
}

async function stop(port: number): Promise<void> {
  await nodes.get(port)!.stop();
  nodes.delete(port);
}

/** `pgrepl health ARGS` on a node, with extra environment: [exit code, the line it printed]. */
async function health(port: number, args: string[], env: Record<string, string> = {}): Promise<[number | null, string]> {
  const r = await cli(opts(port, env), ['health', ...args]);
  return [r.code, r.stdout.trim()];
}

const streamingFrom = async (port: number, upstream: number) => {
  const r = await query<{ status: string; sender_port: number }>(port, 'SELECT status, sender_port FROM pg_stat_wal_receiver');
  return r[0]?.status === 'streaming' && Number(r[0].sender_port) === upstream;
};

const slots = async (port: number) =>
  (await query<{ slot_name: string; active: boolean }>(port, 'SELECT slot_name, active FROM pg_replication_slots ORDER BY 1'))
    .map((r) => `${r.slot_name}${r.active ? '' : ' (inactive)'}`);

beforeAll(async () => {
  dir = scratchDir();
  await start(P);
  await query(P, 'CREATE TABLE t (v int)');
  await start(S);
  await waitFor('S streaming from P', () => streamingFrom(S, P));
});

afterAll(async () => {
  for (const pid of stopped) process.kill(pid, 'SIGCONT');
  for (const port of [...nodes.keys()]) await stop(port).catch(() => undefined);
  removeScratch(dir);
});

describe('pgrepl health --standby', () => {
  it('--max-lag counts the WAL its upstream has and it has not got (its walreceiver frozen), not just its own backlog', async () => {
    await waitFor('S caught up with P', async () => (await health(S, ['--standby', '--max-lag', '0']))[0] === 0);
    // Freeze S's walreceiver: it still says "streaming", receives nothing, and S replays all it
    // received, so its own backlog (received minus replayed) is 0 while P writes on.
    const walreceiver = (await query<{ pid: number }>(S, 'SELECT pid FROM pg_stat_wal_receiver'))[0]!.pid;
    process.kill(walreceiver, 'SIGSTOP');
    stopped.add(walreceiver);
    try {
      await query(P, 'INSERT INTO t SELECT g FROM generate_series(1, 20000) g');
      // S may still be replaying the last bytes it received before the freeze: wait for that.
      await waitFor('S to replay all it received', async () =>
        Number((await query<{ b: number }>(S, 'SELECT pg_wal_lsn_diff(pg_last_wal_receive_lsn(), pg_last_wal_replay_lsn())::float8 AS b'))[0]!.b) === 0);
      const [code, line] = await health(S, ['--standby', '--max-lag', '100000']);
      expect(line).toMatch(new RegExp(`^unhealthy: \\d+ bytes behind the upstream 127\\.0\\.0\\.1:${P}, more than --max-lag 100000$`));
      expect(code).toBe(1);
      expect(await health(S, ['--standby', '--max-lag', String(1e12)])).toEqual([0, expect.stringMatching(/^healthy: standby, streaming, \d+ bytes behind the upstream/)]);
    } finally {
      process.kill(walreceiver, 'SIGCONT');
      stopped.delete(walreceiver);
    }
    await waitForRows(S, 't', 20000);
    await waitFor('S caught up again', async () => (await health(S, ['--standby', '--max-lag', '0']))[0] === 0);
  });

  it('not streaming: healthy within PGREPL_HEALTH_STREAM_GRACE, unhealthy after it, healthy again once it streams', async () => {
    await stop(P);
    await waitFor('S to stop streaming', async () => !(await streamingFrom(S, P)));
    expect(await health(S, ['--standby'], { PGREPL_HEALTH_STREAM_GRACE: '3600' }))
      .toEqual([0, expect.stringMatching(/^healthy: standby, not streaming \(walreceiver .*\), no WAL received for \d+ s, within PGREPL_HEALTH_STREAM_GRACE=3600$/)]);
    const [code, line] = await waitFor('S unhealthy once a 1 s grace has passed', async () => {
      const h = await health(S, ['--standby'], { PGREPL_HEALTH_STREAM_GRACE: '1' });
      return h[0] !== 0 ? h : undefined;
    }, 30_000);
    expect(line).toMatch(/^unhealthy: not streaming \(walreceiver .*\), no WAL received for \d+ s, more than PGREPL_HEALTH_STREAM_GRACE=1$/);
    expect(code).toBe(1);
    // The plain check (HEALTHCHECK, Marathon) asks whether the node serves: a standby without its
    // upstream still serves reads, and killing it would not bring the upstream back.
    expect((await health(S, [], { PGREPL_HEALTH_STREAM_GRACE: '1' }))[0]).toBe(0);

    await start(P);
    await waitFor('S streaming again', () => streamingFrom(S, P));
    expect(await health(S, ['--standby'], { PGREPL_HEALTH_STREAM_GRACE: '1' })).toEqual([0, 'healthy: standby, streaming']);
  });
});

describe('pgrepl follow', () => {
  it('drops this node\'s slot on the upstream it left (still up), and creates it on the new one', async () => {
    await start(T);
    await waitFor('T streaming from P', () => streamingFrom(T, P));
    expect(await slots(P)).toEqual([`node_${S}`, `node_${T}`]);

    const res = await cli(opts(T), ['follow', `127.0.0.1:${S}`, '--json']);
    expect(res.code).toBe(0);
    expect(await slots(P)).toEqual([`node_${S}`]);
    expect(JSON.parse(res.stdout)).toMatchObject({ upstream: `127.0.0.1:${S}`, streaming: true, oldSlot: { upstream: `127.0.0.1:${P}`, slot: 'dropped' } });
    await waitFor('T\'s slot on S active', async () => (await slots(S)).join() === `node_${T}`);

    // And back: the slot on S goes, the one on P comes back.
    const back = await cli(opts(T), ['follow', `127.0.0.1:${P}`, '--json']);
    expect(await slots(S)).toEqual([]);
    expect(JSON.parse(back.stdout)).toMatchObject({ streaming: true, oldSlot: { upstream: `127.0.0.1:${S}`, slot: 'dropped' } });
    await waitFor('T\'s slot on P active', async () => (await slots(P)).join() === `node_${S},node_${T}`);
  });

  it('following the upstream it already streams from drops nothing', async () => {
    const res = await cli(opts(T), ['follow', `127.0.0.1:${P}`, '--json']);
    expect(JSON.parse(res.stdout)).toMatchObject({ streaming: true, oldSlot: null });
    await waitFor('T\'s slot on P active', async () => (await slots(P)).join() === `node_${S},node_${T}`);
  });
});
