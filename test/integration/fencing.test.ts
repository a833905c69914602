/**
 * Fencing against split brain (PGREPL_PEERS, PGREPL_FENCE), on real PostgreSQL servers through
 * the bundle: primary A fails over to its standby B (A killed, B promoted); A's orchestrator then
 * restarts A with its original environment (PGREPL_ROLE=PRIMARY), plus PGREPL_PEERS naming B.
 * With PGREPL_FENCE=refuse it exits with one line naming B and both timelines, PGDATA untouched;
 * with rejoin it becomes B's standby (pg_rewind) and stays one across restarts. A accepts no
 * write at any moment: a client tries to write to it all along.
 *
 * Ports 5705-5706 are this file's alone.
 */
import { lstatSync, readdirSync } from 'node:fs';
import { join, relative } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isInRecovery, standbyOf, waitFor, waitForRows } from '../support/cluster.js';
import { groupGone } from '../support/process-group.js';
import {
  query, removeScratch, runBundle, runCommand as cli, scratchDir, SUPERUSER_PASSWORD, TestNode, type NodeOptions, type RunResult,
} from '../support/node.js';

const A = 5705, B = 5706;
const TOKEN = 'fencing-test-token';
/** A's environment after the failover: what it always had, plus its peer. */
const A_ENV = { PGREPL_PEERS: `127.0.0.1:${B}` };
let dir: string;
const nodes = new Map<number, TestNode>();

const pgdata = (port: number) => join(dir, `n${port}`);

function opts(port: number, env: Record<string, string> = {}): NodeOptions {
  return { pgdata: pgdata(port), port, env: { PGREPL_TOKEN: TOKEN, ...env }, detached: true };
}

async function start(port: number, env: Record<string, string> = {}): Promise<TestNode> {
  const n = new TestNode(opts(port, env));
  nodes.set(port, n);
  await n.ready();
  return n;
}

async function stop(port: number): Promise<RunResult> {
  const res = await nodes.get(port)!.stop('SIGINT');
  nodes.delete(port);
  return res;
}

/** Kills a node as a crashed machine would: every process at once; waits until all are gone. */
async function crash(port: number): Promise<void> {
  const n = nodes.get(port)!;
  await n.killGroup();
  nodes.delete(port);
  await groupGone(n.pid);
}

type LogLine = { level: number; msg: string; [k: string]: unknown };
const logsOf = (r: RunResult): LogLine[] => r.stderr.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as LogLine);
const row = (lines: LogLine[]) => lines.find((l) => typeof l.row === 'string')?.row;

/** Every path under `root` with type, mode, size and mtime: what "unchanged" means here. */
function snapshot(root: string): string[] {
  const out: string[] = [];
  const walk = (p: string) => {
    const st = lstatSync(p);
    const kind = st.isDirectory() ? 'd' : st.isSymbolicLink() ? 'l' : 'f';
    out.push(`${relative(root, p) || '.'} ${kind} ${st.mode.toString(8)} ${kind === 'f' ? st.size : '-'} ${st.mtimeMs}`);
    if (st.isDirectory()) for (const e of readdirSync(p).sort()) walk(join(p, e));
  };
  walk(root);
  return out;
}

/**
 * A client that tries to write to `port` every 20 ms until stopped, over fresh connections:
 * counts the writes the server accepted.
 */
function writer(port: number): { stop(): Promise<{ accepted: number; tries: number; errors: Set<string> }> } {
  let running = true;
  let accepted = 0;
  let tries = 0;
  const errors = new Set<string>();
  const loop = (async () => {
    while (running) {
      tries++;
      const c = new pg.Client({ host: '127.0.0.1', port, user: 'postgres', password: SUPERUSER_PASSWORD, database: 'postgres', connectionTimeoutMillis: 1000 });
      c.on('error', () => undefined);
      try {
        await c.connect();
        await c.query('INSERT INTO t VALUES (-1)');
        accepted++;
      } catch (err) {
        errors.add(((err as { code?: string }).code ?? (err as Error).message).slice(0, 40));
      } finally {
        await c.end().catch(() => undefined);
      }
      await new Promise((r) => setTimeout(r, 20));
    }
  })();
  return {
    async stop() {
      running = false;
      await loop;
      return { accepted, tries, errors };
    },
  };
}

beforeAll(() => {
  dir = scratchDir('pgrepl-fencing-');
});
afterAll(async () => {
  for (const port of [...nodes.keys()]) await stop(port).catch(() => undefined);
  removeScratch(dir);
});

describe('fencing: the old primary restarted after a failover', () => {
  it('fails over: A, with B as its peer, is killed; B, its standby, is promoted and takes writes', async () => {
    await start(A, A_ENV); // B is not there yet: nothing to fence against
    await start(B, standbyOf(A));
    await query(A, 'CREATE TABLE t (v int)');
    await query(A, 'INSERT INTO t VALUES (1)');
    await waitForRows(B, 't', 1);
    await crash(A);
    const res = await cli(opts(B), ['promote']);
    expect(res.stdout).toBe('promoted: now a primary on timeline 2\n');
    await query(B, 'INSERT INTO t VALUES (2)');
  });

  it('PGREPL_FENCE=refuse: exits non-zero with one line naming B and both timelines; PGDATA unchanged', async () => {
    const before = snapshot(pgdata(A));
    const w = writer(A);
    const res = await runBundle(opts(A, { ...A_ENV, PGREPL_FENCE: 'refuse' }));
    const { accepted } = await w.stop();
    expect(res.code).toBe(1);
    const lines = logsOf(res);
    const fatals = lines.filter((l) => l.level === 60);
    expect(fatals).toHaveLength(1);
    expect(fatals[0]!.msg).toMatch(
      new RegExp(`^PGREPL_FENCE=refuse: the peer 127\\.0\\.0\\.1:${B} is a primary of this cluster \\(system \\d+\\) on timeline 2, and this node, configured as PRIMARY, is on timeline 1: coming up writable would make two primaries \\(split brain\\)\\. .*; nothing was changed$`),
    );
    expect(lines.find((l) => l.msg.startsWith('peer 127.0.0.1:5706 answers'))).toMatchObject({ timeline: 2 });
    expect(snapshot(pgdata(A))).toEqual(before);
    expect(res.stderr).not.toMatch(/pg_rewind|pg_basebackup|starting a temporary server|handing over/);
    expect(accepted).toBe(0);
  });

  it('PGREPL_FENCE=rejoin (the default): A becomes a standby of B by pg_rewind; it never accepts a write', async () => {
    const w = writer(A);
    const a = await start(A, A_ENV);
    await waitForRows(A, 't', 2); // B's write after the failover
    const { accepted, tries } = await w.stop();
    expect(tries).toBeGreaterThan(10);
    expect(accepted).toBe(0);

    expect(row(a.logs())).toBe('fenced × PRIMARY');
    expect(a.logs().find((l) => l.msg.startsWith('start: '))?.msg).toMatch(
      new RegExp(`but the peer 127\\.0\\.0\\.1:${B} is a primary of the same system on timeline 2: coming up writable would make two primaries; PGREPL_FENCE=rejoin: it becomes a standby of 127\\.0\\.0\\.1:${B} instead`),
    );
    expect(a.stderr).toMatch(/pg_rewind finished/);
    expect(a.stderr).not.toMatch(/pg_basebackup/);
    expect(a.logs().some((l) => l.level === 40 && l.msg.startsWith(`fenced: this node follows 127.0.0.1:${B} as a standby`))).toBe(true);
    expect(await isInRecovery(A)).toBe(true);
    await expect(query(A, 'INSERT INTO t VALUES (99)')).rejects.toThrow(/read-only transaction/);
    expect(readdirSync(pgdata(A)).filter((e) => e.includes('aside'))).toEqual([]);

    const status = JSON.parse((await cli(opts(A, A_ENV), ['status', '--json'])).stdout);
    expect(status).toMatchObject({ role: 'standby', timeline: 2, upstream: { host: '127.0.0.1', port: B, status: 'streaming' }, fencedTo: `127.0.0.1:${B}` });
    expect((await cli(opts(A, A_ENV), ['status'])).stdout).toMatch(new RegExp(`\\nfenced: configured as PRIMARY, kept a standby of 127\\.0\\.0\\.1:${B} `));
    await waitFor('A\'s slot on B to be active', async () =>
      (await query<{ active: boolean }>(B, 'SELECT active FROM pg_replication_slots WHERE slot_name = $1', [`node_${A}`]))[0]?.active);
  });

  it('restarted again with the same environment, A stays B\'s standby: no promotion, no copy', async () => {
    await stop(A);
    const w = writer(A);
    const a = await start(A, A_ENV);
    expect(row(a.logs())).toBe('fenced standby × PRIMARY');
    expect(a.stderr).not.toMatch(/pg_rewind|cloning the upstream|promoted: this node|selected new timeline/);
    expect(await isInRecovery(A)).toBe(true);
    await query(B, 'INSERT INTO t VALUES (3)');
    await waitForRows(A, 't', 3);
    expect((await w.stop()).accepted).toBe(0);
  });

  it('restarted while B is down, A still does not come up writable: it waits for B as a standby', async () => {
    await stop(A);
    await stop(B);
    const w = writer(A);
    const a = await start(A, A_ENV);
    expect(row(a.logs())).toBe('fenced standby × PRIMARY');
    expect(await isInRecovery(A)).toBe(true);
    expect((await w.stop()).accepted).toBe(0);
    await start(B);
    await query(B, 'INSERT INTO t VALUES (4)');
    await waitForRows(A, 't', 4).catch((err) => {
      throw new Error(`${(err as Error).message}\n${a.stderr.split('\n').filter((l) => !/read-only|STATEMENT|not yet accepting|Consistent recovery/.test(l)).slice(-30).join('\n')}`);
    });
  });

  it('pgrepl promote makes A a primary again; the fence is then forgotten', async () => {
    await stop(B); // the operator's failover back: B is gone
    const res = await cli(opts(A, A_ENV), ['promote']);
    expect(res.stdout).toBe('promoted: now a primary on timeline 3\n');
    await stop(A);
    const a = await start(A, A_ENV);
    expect(row(a.logs())).toBe('primary cluster × PRIMARY');
    expect(await isInRecovery(A)).toBe(false);
    await query(A, 'INSERT INTO t VALUES (5)');
    const status = JSON.parse((await cli(opts(A, A_ENV), ['status', '--json'])).stdout);
    expect(status).toMatchObject({ role: 'primary', timeline: 3, fencedTo: null });
  });
});
