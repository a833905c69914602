/**
 * Synchronous replication (PGREPL_SYNC_STANDBYS, PGREPL_SYNC_METHOD, PGREPL_SYNC_COMMIT) on real
 * PostgreSQL servers through the bundle: a primary that needs one standby's confirmation is killed
 * (SIGKILL to every process of the node, as a container kill or a power cut) in the middle of a
 * load of small autocommit transactions from several connections; the standby is promoted with
 * `pgrepl promote`, and every commit the primary acknowledged is on it: zero loss.
 *
 * How many acknowledged commits asynchronous replication loses the same way is measured by
 * bench/durability.mjs (bench/RESULTS-durability.md), never asserted here.
 *
 * Ports 5703-5704 are this file's alone.
 */
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isInRecovery, standbyOf, waitFor } from '../support/cluster.js';
import { groupGone } from '../support/process-group.js';
import { query, removeScratch, runCommand as cli, scratchDir, SUPERUSER_PASSWORD, TestNode, type NodeOptions } from '../support/node.js';

const A = 5703, B = 5704;
const TOKEN = 'sync-test-token';
const SYNC = { PGREPL_SYNC_STANDBYS: '1' };
let dir: string;
const nodes = new Map<number, TestNode>();

function opts(port: number, env: Record<string, string> = {}): NodeOptions {
  return { pgdata: join(dir, `n${port}`), port, env: { PGREPL_TOKEN: TOKEN, ...env }, detached: true };
}

async function start(port: number, env: Record<string, string> = {}): Promise<TestNode> {
  const n = new TestNode(opts(port, env));
  nodes.set(port, n);
  await n.ready();
  return n;
}

/**
 * Autocommit INSERTs from `clients` connections, each id recorded once the server acknowledged
 * its commit, until the server goes away. Resolves with the acknowledged ids.
 */
function load(port: number, clients: number, onAck: (total: number) => void): { acked: number[]; done: Promise<void> } {
  const acked: number[] = [];
  let next = 1;
  const one = async () => {
    const c = new pg.Client({ host: '127.0.0.1', port, user: 'postgres', password: SUPERUSER_PASSWORD, database: 'postgres' });
    c.on('error', () => undefined);
    await c.connect();
    try {
      for (;;) {
        const id = next++;
        await c.query('INSERT INTO acks (id) VALUES ($1)', [id]);
        acked.push(id);
        onAck(acked.length);
      }
    } catch {
      // the server is gone: this connection's last commit was not acknowledged
    } finally {
      await c.end().catch(() => undefined);
    }
  };
  return { acked, done: Promise.all(Array.from({ length: clients }, one)).then(() => undefined) };
}

beforeAll(() => {
  dir = scratchDir('pgrepl-sync-');
});
afterAll(async () => {
  for (const [port, n] of [...nodes]) {
    await n.stop('SIGINT');
    nodes.delete(port);
  }
  removeScratch(dir);
});

describe('synchronous replication', () => {
  it('PGREPL_SYNC_STANDBYS=1: ANY 1 (*) on the primary and on its standby, which is the quorum', async () => {
    await start(A, SYNC);
    await start(B, standbyOf(A, SYNC));
    for (const port of [A, B]) {
      const s = await query<{ names: string; commit: string }>(
        port, "SELECT current_setting('synchronous_standby_names') AS names, current_setting('synchronous_commit') AS commit",
      );
      expect(s[0]).toEqual({ names: 'ANY 1 (*)', commit: 'on' });
    }
    await waitFor('B as a synchronous (quorum) standby', async () =>
      (await query<{ s: string }>(A, "SELECT sync_state AS s FROM pg_stat_replication WHERE application_name = 'node_5704'"))[0]?.s === 'quorum');
  });

  it('the primary killed mid-load, the standby promoted: every acknowledged commit is there', async () => {
    await query(A, 'CREATE TABLE acks (id bigint PRIMARY KEY, at timestamptz DEFAULT clock_timestamp())');
    let killing: Promise<unknown> | undefined;
    const a = nodes.get(A)!;
    const run = load(A, 4, (total) => {
      // Kill once the load is well under way: every process of the node at once.
      if (total === 2000 && !killing) killing = a.killGroup();
    });
    await run.done;
    expect(killing).toBeDefined();
    await killing;
    nodes.delete(A);
    await groupGone(a.pid);
    // A killed server leaves its socket and lock file behind (the next start would replace them).
    for (const f of [`.s.PGSQL.${A}`, `.s.PGSQL.${A}.lock`]) rmSync(join('/var/run/postgresql', f), { force: true });

    const promoted = await cli(opts(B), ['promote']);
    expect(promoted.stdout).toBe('promoted: now a primary on timeline 2\n');
    expect(await isInRecovery(B)).toBe(false);

    const onB = new Set((await query<{ id: string }>(B, 'SELECT id FROM acks')).map((r) => Number(r.id)));
    const lost = run.acked.filter((id) => !onB.has(id));
    expect(run.acked.length).toBeGreaterThanOrEqual(2000);
    expect(lost).toEqual([]);
    // B may hold a few more: commits flushed everywhere whose acknowledgement died with A.
    expect(onB.size).toBeGreaterThanOrEqual(run.acked.length);
  });
});
