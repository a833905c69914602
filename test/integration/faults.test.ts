/**
 * Faults, on real PostgreSQL servers through the bundle: a standby killed mid-clone (with its
 * pg_basebackup, as a container kill does) and restarted; an upstream that is down at start
 * (gone for good, or just not up yet); a standby's data pointed at an unrelated primary; a standby
 * promoted behind pgrepl's back with `pg_ctl promote` and restarted with its environment unchanged.
 *
 * Ports 5761-5769 are this file's alone.
 */
import { existsSync, lstatSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { replicationPassword } from '../../src/config/token.js';
import { readControlData } from '../../src/observe/control-file.js';
import { isInRecovery, standbyOf, streamingTo, waitFor, waitForRows } from '../support/cluster.js';
import { pgCtlPromote } from '../support/postmaster.js';
import { processesOf, stopAllNodes } from '../support/process-group.js';
import { PG_PATH, testEnv } from '../support/env.js';
import { identifySystem, query, removeScratch, runBundle, runCommand as cli, scratchDir, TestNode, type NodeOptions, type RunResult } from '../support/node.js';

/** Test 1: a primary and the standby killed mid-clone. */
const P1 = 5761, S1 = 5762;
/** Test 2: nothing listens on DOWN; NOUP is the port of the standby that gives up on it. */
const DOWN = 5763, NOUP = 5764;
/** Test 2 and 4: a standby started before its primary, later promoted with pg_ctl. */
const S2 = 5765, P2 = 5766;
/** Test 3: cluster X with its standby SX; an unrelated primary Y. */
const X = 5767, SX = 5768, Y = 5769;

const TOKEN = 'faults-test-token';
let dir: string;
const nodes = new Map<number, TestNode>();

const pgdata = (port: number) => join(dir, `n${port}`);

function opts(port: number, env: Record<string, string> = {}): NodeOptions {
  // Detached: every node is a process group of its own, so a test (or the clean-up) can kill it
  // with everything it started.
  return { pgdata: pgdata(port), port, env: { PGREPL_TOKEN: TOKEN, ...env }, detached: true };
}

/** Starts a node without waiting for it. */
function spawnNode(port: number, env: Record<string, string> = {}): TestNode {
  if (nodes.has(port)) throw new Error(`node ${port} is already running`);
  const n = new TestNode(opts(port, env));
  nodes.set(port, n);
  return n;
}

async function start(port: number, env: Record<string, string> = {}): Promise<TestNode> {
  const n = spawnNode(port, env);
  await n.ready();
  return n;
}

async function stop(port: number): Promise<RunResult> {
  const n = nodes.get(port);
  if (!n) throw new Error(`node ${port} is not running`);
  const res = await n.stop('SIGINT');
  nodes.delete(port);
  return res;
}

type LogLine = { level: number; msg: string; [k: string]: unknown };

/** pgrepl's JSON log lines of a running node or of a finished run. */
function logsOf(n: TestNode | RunResult): LogLine[] {
  if (n instanceof TestNode) return n.logs();
  return n.stderr.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as LogLine);
}

const row = (n: TestNode | RunResult) => logsOf(n).find((l) => typeof l.row === 'string')?.row;
const fatals = (n: TestNode | RunResult) => logsOf(n).filter((l) => l.level === 60);

/** Every path under `root` (relative) with type, size and mtime: what "unchanged" means here. */
function snapshot(root: string, withMtime = true): string[] {
  const out: string[] = [];
  const walk = (p: string) => {
    const st = lstatSync(p);
    const kind = st.isDirectory() ? 'd' : st.isSymbolicLink() ? 'l' : 'f';
    out.push(`${relative(root, p) || '.'} ${kind} ${st.mode.toString(8)} ${kind === 'f' ? st.size : '-'}${withMtime ? ` ${st.mtimeMs}` : ''}`);
    if (st.isDirectory()) for (const e of readdirSync(p).sort()) walk(join(p, e));
  };
  walk(root);
  return out;
}

/** Bytes in the regular files under `root` (0 if it does not exist); tolerant of files vanishing. */
function bytesUnder(root: string): number {
  let total = 0;
  const walk = (p: string) => {
    let st;
    try {
      st = lstatSync(p);
    } catch {
      return;
    }
    if (st.isFile()) total += st.size;
    else if (st.isDirectory()) {
      let names: string[] = [];
      try {
        names = readdirSync(p);
      } catch {
        return;
      }
      for (const e of names) walk(join(p, e));
    }
  };
  walk(root);
  return total;
}

/**
 * PATH with the real pg_basebackup throttled to ~40 MB/s first, so that a clone lasts a few
 * seconds whatever the machine: long enough to look at it and interrupt it midway. The stand-in
 * execs, so pg_basebackup is still the process the entrypoint started (and --version still
 * answers for the tool check).
 */
function throttledPath(): string {
  const shim = join(dir, 'throttled-bin');
  if (!existsSync(shim)) {
    mkdirSync(shim, { mode: 0o755 });
    const real = join(testEnv.pgBin, 'pg_basebackup');
    writeFileSync(
      join(shim, 'pg_basebackup'),
      `#!/bin/sh\ncase "$1" in --version|-V|--help|-\\?) exec ${real} "$@" ;; esac\nexec ${real} --max-rate=40M "$@"\n`,
      { mode: 0o755 },
    );
  }
  return `${shim}:${PG_PATH}`;
}

const sysid = async (port: number) => (await identifySystem(port, replicationPassword(TOKEN))).systemid;

async function slot(port: number, name: string): Promise<{ active: boolean } | undefined> {
  return (await query<{ active: boolean }>(port, 'SELECT active FROM pg_replication_slots WHERE slot_name = $1', [name]))[0];
}

async function sumOf(port: number, table: string): Promise<{ n: number; s: string }> {
  return (await query<{ n: number; s: string }>(port, `SELECT count(*)::int AS n, sum(id)::text AS s FROM ${table}`))[0]!;
}

beforeAll(() => {
  dir = scratchDir('pgrepl-faults-');
});

afterAll(async () => {
  // Nothing may outlive the tests: no postgres, no pg_basebackup, no temporary server.
  const problems = await stopAllNodes(nodes, dir);
  removeScratch(dir);
  if (problems.length) throw new Error(problems.join('\n'));
});

// ---------------------------------------------------------------------------------------------

describe('a standby killed in the middle of its clone', () => {
  const staging = () => join(pgdata(S1), '.pgrepl-staging-clone');
  let primaryRows: { n: number; s: string };

  it('is killed with its pg_basebackup while cloning; until then health says "starting: cloning"', async () => {
    await start(P1);
    // ~150 MB: enough for pg_basebackup to take a moment.
    await query(P1, "CREATE TABLE big AS SELECT g AS id, repeat(md5(g::text), 6) AS pad FROM generate_series(1, 600000) g");
    primaryRows = await sumOf(P1, 'big');
    expect(primaryRows.n).toBe(600000);
    const size = Number((await query<{ b: string }>(P1, "SELECT pg_total_relation_size('big')::text AS b"))[0]!.b);
    expect(size).toBeGreaterThan(120 * 1024 * 1024);

    const s = spawnNode(S1, standbyOf(P1, { PATH: throttledPath() }));
    await waitFor('the staging directory to fill', async () => {
      if (s.child.exitCode !== null) throw new Error(`the standby exited:\n${s.stderr}`);
      return bytesUnder(staging()) > 16 * 1024 * 1024;
    }, 60_000);

    const health = await cli(opts(S1), ['health']);
    expect(health.stdout).toMatch(/^starting: cloning since \d{4}-\d\d-\d\dT/);
    expect(health.code).toBe(2);
    const clonesBefore = processesOf(pgdata(S1)).filter((p) => p.cmd.includes('pg_basebackup'));
    expect(clonesBefore.length).toBeGreaterThan(0); // still copying when killed

    const killed = await s.killGroup();
    nodes.delete(S1);
    expect(killed.signal).toBe('SIGKILL');
    // Nothing of the node survives: no pg_basebackup still writing into the staging directory.
    await waitFor('the node\'s processes to be gone', async () => processesOf(pgdata(S1)).length === 0, 10_000);

    expect(s.stderr).toMatch(/cloning the upstream with pg_basebackup/);
    expect(s.stderr).not.toMatch(/handing over to postgres/);
    expect(readdirSync(pgdata(S1))).toEqual(['.pgrepl-staging-clone']);
    expect(bytesUnder(staging())).toBeGreaterThan(16 * 1024 * 1024);
    expect(bytesUnder(staging())).toBeLessThan(size); // really interrupted, not finished
    // A dead process's phase is stale: health no longer says "starting".
    const after = await cli(opts(S1), ['health']);
    expect(after.code).toBe(1);
    expect(after.stdout).toMatch(/^unhealthy/);
  });

  it('started as PRIMARY on that interrupted clone: refused, PGDATA unchanged', async () => {
    const before = snapshot(pgdata(S1));
    const res = await runBundle(opts(S1, { PGREPL_ROLE: 'PRIMARY' }));
    expect(res.code).not.toBe(0);
    const f = fatals(res);
    expect(f).toHaveLength(1);
    expect(f[0]!.msg).toBe(
      `PGDATA=${pgdata(S1)} holds only an interrupted clone (.pgrepl-staging-clone), and PGREPL_ROLE is PRIMARY: start it as PGREPL_ROLE=STANDBY to finish the clone, or remove ${pgdata(S1)}/.pgrepl-staging-clone to start a new primary`,
    );
    expect(snapshot(pgdata(S1))).toEqual(before);
    expect(res.stderr).not.toMatch(/initdb/);
  });

  it('restarted as a standby: discards only the interrupted copy, clones again, streams', async () => {
    const s = await start(S1, standbyOf(P1));
    expect(row(s)).toBe('interrupted build × STANDBY');
    const msgs = s.logs().map((l) => l.msg);
    expect(msgs.find((m) => m.startsWith('start: '))).toMatch(/holds an interrupted clone that never served data: discard only that copy and clone/);
    expect(s.logs().find((l) => l.msg === 'discarded an interrupted build that never served data')).toMatchObject({ staging: staging() });
    // The slot the killed pg_basebackup had created is this node's to replace.
    expect(msgs).toContain('dropped a slot of this node\'s name left by an earlier attempt');
    expect(msgs.indexOf('discarded an interrupted build that never served data')).toBeLessThan(msgs.indexOf('cloning the upstream with pg_basebackup'));
    expect(msgs).toContain('clone 100%');
    expect(s.stderr).not.toMatch(/running init script|initdb/);

    expect(await isInRecovery(S1)).toBe(true);
    expect(await sumOf(S1, 'big')).toEqual(primaryRows);
    await query(P1, 'INSERT INTO big VALUES (-1, \'after\')');
    await waitForRows(S1, 'big', primaryRows.n + 1);
    expect(await waitFor('the slot to be active', async () => (await slot(P1, `node_${S1}`))?.active)).toBe(true);
    expect(await streamingTo(P1, S1)).toBe(true);

    const entries = readdirSync(pgdata(S1));
    expect(entries.filter((e) => e.startsWith('.pgrepl-'))).toEqual([]);
    expect(readdirSync(join(pgdata(S1), 'pg_dynshmem')).filter((e) => e.includes('aside'))).toEqual([]);
    expect(entries).toContain('standby.signal');
    const health = await cli(opts(S1), ['health', '--standby']);
    expect(health).toMatchObject({ code: 0, stdout: 'healthy: standby, streaming\n' });
  });

  it('stopped with SIGTERM mid-clone (docker stop, outside a container): its pg_basebackup ends too', async () => {
    // PID 1's death takes a container's other processes with it; outside one, nothing does.
    // A pg_basebackup left running would keep writing into the staging directory and hold the
    // slot, and the next start would trip over both.
    const o: NodeOptions = { ...opts(NOUP, standbyOf(P1, { PATH: throttledPath(), PGREPL_NODE_NAME: 'stopped_mid_clone' })), pgdata: join(dir, 'stopped-mid-clone') };
    const n = new TestNode(o);
    nodes.set(NOUP, n);
    const stagingDir = join(o.pgdata, '.pgrepl-staging-clone');
    await waitFor('the staging directory to fill', async () => {
      if (n.child.exitCode !== null) throw new Error(`the standby exited:\n${n.stderr}`);
      return bytesUnder(stagingDir) > 16 * 1024 * 1024;
    }, 60_000);
    expect(processesOf(o.pgdata).some((p) => p.cmd.includes('pg_basebackup'))).toBe(true);
    const res = await n.stop('SIGTERM');
    nodes.delete(NOUP);
    expect(res.code).toBe(143); // 128 + SIGTERM, as a shell reports it
    expect(fatals(res).map((l) => l.msg)).toEqual(['stopped by SIGTERM before postgres started; the next start picks up where this one left off']);
    await waitFor('pg_basebackup to end with its node', async () => processesOf(o.pgdata).length === 0, 5_000).catch((err) => {
      throw new Error(`${(err as Error).message}: ${JSON.stringify(processesOf(o.pgdata))}`);
    });
    expect(existsSync(`/var/run/postgresql/.pgrepl-${NOUP}.phase`)).toBe(false); // health: not "starting"
    const size = bytesUnder(stagingDir);
    await new Promise((r) => setTimeout(r, 500));
    expect(bytesUnder(stagingDir)).toBe(size); // nobody writes there any more
    expect(await waitFor('the slot to be released', async () => (await slot(P1, 'stopped_mid_clone'))?.active === false, 10_000)).toBe(true);
  });
});

// ---------------------------------------------------------------------------------------------

describe('the upstream is down at start', () => {
  it('gone for good: gives up after PGREPL_UPSTREAM_TIMEOUT with one fatal line, creating nothing', async () => {
    const before = readdirSync(dir).sort();
    const t0 = Date.now();
    const res = await runBundle(opts(NOUP, standbyOf(DOWN, { PGREPL_UPSTREAM_TIMEOUT: '3' })));
    const elapsed = Date.now() - t0;
    expect(res.code).not.toBe(0);
    expect(res.signal).toBeNull();
    expect(elapsed).toBeGreaterThanOrEqual(3000);
    expect(elapsed).toBeLessThan(15_000);
    expect(res.stdout).toBe('');

    const f = fatals(res);
    expect(f).toHaveLength(1);
    expect(f[0]!.msg).toMatch(
      new RegExp(
        `^the upstream 127\\.0\\.0\\.1:${DOWN} \\(PGREPL_MASTER_IP\\) did not answer within 3 s \\(PGREPL_UPSTREAM_TIMEOUT\\): .*ECONNREFUSED.*; ` +
          'start the upstream, or check PGREPL_MASTER_IP/PGREPL_MASTER_PORT and the network; nothing was changed$',
      ),
    );
    expect(logsOf(res).filter((l) => l.level >= 50)).toHaveLength(1);

    // A log line for every try that failed before the last (whose failure is the fatal line).
    const waits = logsOf(res).filter((l) => l.msg.startsWith(`waiting for the upstream 127.0.0.1:${DOWN}`));
    expect(waits.length).toBeGreaterThanOrEqual(3); // tries at 0, 0.5, 1.5 s and at 3 s
    expect(waits.map((w) => w.attempt)).toEqual(waits.map((_, i) => i + 1));
    for (const w of waits) {
      expect(w).toMatchObject({ upstream: `127.0.0.1:${DOWN}` });
      expect(String(w.error)).toMatch(/ECONNREFUSED/);
      expect(w.msg).toMatch(/next try in \d+\.\d s \(\d+ s left of PGREPL_UPSTREAM_TIMEOUT\)$/);
    }

    // Nothing created: no PGDATA, nothing else in the scratch directory, no phase left for health.
    expect(existsSync(pgdata(NOUP))).toBe(false);
    expect(readdirSync(dir).sort()).toEqual(before);
    expect(existsSync(`/var/run/postgresql/.pgrepl-${NOUP}.phase`)).toBe(false);
  });

  it('not up yet: a standby started before its primary waits, then clones and streams', async () => {
    const s = spawnNode(S2, standbyOf(P2, { PGREPL_UPSTREAM_TIMEOUT: '60' }));
    await waitFor('a "waiting for the upstream" line', async () => {
      if (s.child.exitCode !== null) throw new Error(`the standby exited:\n${s.stderr}`);
      return s.logs().filter((l) => l.msg.startsWith(`waiting for the upstream 127.0.0.1:${P2}`)).length >= 2;
    }, 20_000);
    // Waiting creates nothing, and reads as "starting" to an orchestrator.
    expect(existsSync(pgdata(S2))).toBe(false);
    const waiting = await cli(opts(S2), ['health']);
    expect(waiting.stdout).toMatch(/^starting: waiting for upstream since /);
    expect(waiting.code).toBe(2);

    await start(P2);
    await query(P2, 'CREATE TABLE t AS SELECT g AS id FROM generate_series(1, 1000) g');
    await s.ready();
    expect(row(s)).toBe('missing/empty × STANDBY');
    expect(s.logs().some((l) => l.msg === `upstream 127.0.0.1:${P2} answers`)).toBe(true);
    expect(fatals(s)).toEqual([]);
    expect(s.stderr).toMatch(/cloning the upstream with pg_basebackup/);
    expect(await isInRecovery(S2)).toBe(true);
    await waitForRows(S2, 't', 1000);
    await query(P2, 'INSERT INTO t VALUES (1001)');
    await waitForRows(S2, 't', 1001);
    expect(await waitFor('the standby to stream', () => streamingTo(P2, S2))).toBe(true);
    expect(await waitFor('the slot to be active', async () => (await slot(P2, `node_${S2}`))?.active)).toBe(true);
  });
});

// ---------------------------------------------------------------------------------------------

describe('a standby pointed at another system', () => {
  let before: string[];
  let sysX: string, sysY: string;

  it('is refused, naming both system identifiers and PGREPL_RECLONE=auto; PGDATA unchanged', async () => {
    await start(X);
    await query(X, 'CREATE TABLE tx AS SELECT g AS id FROM generate_series(1, 100) g');
    await start(SX, standbyOf(X));
    await waitForRows(SX, 'tx', 100);
    await stop(SX);
    await start(Y);
    await query(Y, 'CREATE TABLE ty AS SELECT g AS id FROM generate_series(1, 250) g');
    sysX = await sysid(X);
    sysY = await sysid(Y);
    expect(sysX).not.toBe(sysY);
    expect((await readControlData(pgdata(SX)))!.systemIdentifier).toBe(sysX);

    before = snapshot(pgdata(SX));
    const res = await runBundle(opts(SX, standbyOf(Y)));
    expect(res.code).not.toBe(0);
    expect(row(res)).toBeUndefined();
    const f = fatals(res);
    expect(f).toHaveLength(1);
    expect(f[0]!.msg).toBe(
      `PGDATA=${pgdata(SX)} holds system ${sysX} but the upstream 127.0.0.1:${Y} (PGREPL_MASTER_IP) is system ${sysY}: this data belongs to another cluster. ` +
        'Point the node at its own upstream, or set PGREPL_RECLONE=auto to move the data aside (kept inside PGDATA) and clone; nothing was changed',
    );
    expect(res.stderr).not.toMatch(/pg_basebackup/);
    expect(snapshot(pgdata(SX))).toEqual(before);
  });

  it('with PGREPL_RECLONE=auto: the old data is moved aside (kept), the node becomes a standby of Y', async () => {
    const sx = await start(SX, standbyOf(Y, { PGREPL_RECLONE: 'auto' }));
    expect(row(sx)).toBe('another system × STANDBY');
    expect(sx.logs().find((l) => l.msg.startsWith('start: '))!.msg).toContain(`holds system ${sysX} but the upstream 127.0.0.1:${Y} (PGREPL_MASTER_IP) is system ${sysY}`);

    const asides = readdirSync(join(pgdata(SX), 'pg_dynshmem')).filter((e) => e.startsWith('pgrepl-aside-'));
    expect(asides).toHaveLength(1);
    const aside = join(pgdata(SX), 'pg_dynshmem', asides[0]!);
    expect(sx.logs().find((l) => l.level === 40 && String(l.msg).startsWith('moved the old data aside'))).toMatchObject({ kept: aside });
    // Everything that was in PGDATA is in the aside directory, file for file, byte for byte in
    // size, but pg_dynshmem, which stays where it is (it holds what belongs to the volume).
    const keptFiles = snapshot(aside, false).filter((l) => / f /.test(l));
    const oldFiles = before.map((l) => l.replace(/ [\d.]+$/, '')).filter((l) => / f /.test(l) && !l.startsWith('pg_dynshmem/'));
    expect(keptFiles).toEqual(oldFiles);
    expect(readFileSync(join(aside, 'PG_VERSION'), 'utf8')).toBe(readFileSync(join(pgdata(SX), 'PG_VERSION'), 'utf8'));
    expect((await readControlData(aside))!.systemIdentifier).toBe(sysX);
    expect(existsSync(join(aside, 'standby.signal'))).toBe(true);
    // status names it, with its size, so that it is not forgotten.
    const kept = JSON.parse((await cli(opts(SX, standbyOf(Y)), ['status', '--json'])).stdout).keptCopies as { path: string; kB: number }[];
    expect(kept.map((k) => k.path)).toEqual([aside]);
    expect(kept[0]!.kB).toBeGreaterThan(1000);
    expect((await cli(opts(SX, standbyOf(Y)), ['status'])).stdout).toContain(`kept copies (data moved aside, never removed by pgrepl; delete one once you no longer need it):\n  ${aside} `);

    // Now Y's: its system, its data, streaming from it through its slot.
    expect((await readControlData(pgdata(SX)))!.systemIdentifier).toBe(sysY);
    expect(await isInRecovery(SX)).toBe(true);
    await waitForRows(SX, 'ty', 250);
    expect((await query<{ r: string | null }>(SX, "SELECT to_regclass('tx')::text AS r"))[0]!.r).toBeNull();
    await query(Y, 'INSERT INTO ty VALUES (251)');
    await waitForRows(SX, 'ty', 251);
    expect(await waitFor('SX to stream from Y', () => streamingTo(Y, SX))).toBe(true);
    expect(await waitFor('the slot on Y to be active', async () => (await slot(Y, `node_${SX}`))?.active)).toBe(true);
    expect(readdirSync(pgdata(SX)).filter((e) => e.startsWith('.pgrepl-'))).toEqual([]);
  });
});

// ---------------------------------------------------------------------------------------------

describe('a standby promoted with `pg_ctl promote` (docker exec NODE gosu postgres pg_ctl promote)', () => {
  let rows: number;

  it('is promoted and accepts writes', async () => {
    expect(nodes.has(S2) && nodes.has(P2)).toBe(true);
    rows = (await query<{ n: number }>(P2, 'SELECT count(*)::int AS n FROM t'))[0]!.n;
    await waitForRows(S2, 't', rows);
    // As `docker exec NODE gosu postgres pg_ctl promote` does it: as the postgres user, behind
    // pgrepl's back, with nothing but PATH and PGDATA.
    const res = await pgCtlPromote(pgdata(S2), PG_PATH);
    expect(res.stderr).toBe('');
    expect(res.stdout).toMatch(/server promoted/);
    expect(res.code).toBe(0);
    expect(await isInRecovery(S2)).toBe(false);
    await query(S2, 'INSERT INTO t VALUES (-2)');
    rows += 1;
    expect(JSON.parse((await cli(opts(S2), ['status', '--json'])).stdout)).toMatchObject({ role: 'primary', timeline: 2 });
  });

  it('restarted with its environment unchanged while the old primary still runs: stays a primary', async () => {
    await stop(S2);
    const s = await start(S2, standbyOf(P2, { PGREPL_UPSTREAM_TIMEOUT: '60' }));
    expect(row(s)).toBe('promoted standby × STANDBY');
    const startLine = s.logs().find((l) => l.msg.startsWith('start: '))!;
    expect(startLine.msg).toContain(`holds a primary promoted while this node ran as a standby (timeline 2, newer than timeline 1 it was a standby on), and the upstream 127.0.0.1:${P2} (PGREPL_MASTER_IP) is not newer (timeline 1): it stays a primary`);
    expect(startLine.steps).not.toEqual(expect.arrayContaining([expect.stringMatching(/clone|rewind|initdb|move-aside|promote/)]));
    expect(await isInRecovery(S2)).toBe(false);
    expect((await query<{ n: number }>(S2, 'SELECT count(*)::int AS n FROM t'))[0]!.n).toBe(rows);
    await query(S2, 'INSERT INTO t VALUES (-3)');
    rows += 1;
  });

  it('restarted with its environment unchanged, the old primary stopped: stays a primary', async () => {
    await stop(P2);
    await stop(S2);
    const t0 = Date.now();
    const s = await start(S2, standbyOf(P2, { PGREPL_UPSTREAM_TIMEOUT: '60' }));
    const elapsed = Date.now() - t0;
    expect(row(s)).toBe('promoted standby × STANDBY');
    const startLine = s.logs().find((l) => l.msg.startsWith('start: '))!;
    expect(startLine.msg).toContain(`the upstream 127.0.0.1:${P2} (PGREPL_MASTER_IP) does not answer: it stays a primary`);
    expect(startLine.steps).not.toEqual(expect.arrayContaining([expect.stringMatching(/clone|rewind|initdb|move-aside|promote/)]));
    expect(s.stderr).not.toMatch(/pg_basebackup|pg_rewind finished|running init script/);
    // It has data to serve: it checks for its old upstream briefly, not for the whole
    // PGREPL_UPSTREAM_TIMEOUT (60 s here), as a node with nothing to serve would.
    expect(elapsed).toBeLessThan(30_000);
    expect(readdirSync(pgdata(S2)).filter((e) => e.startsWith('.pgrepl-'))).toEqual([]);
    expect(readdirSync(join(pgdata(S2), 'pg_dynshmem')).filter((e) => e.includes('aside'))).toEqual([]);
    expect(existsSync(join(pgdata(S2), 'standby.signal'))).toBe(false);
    expect(await isInRecovery(S2)).toBe(false);
    expect((await query<{ n: number }>(S2, 'SELECT count(*)::int AS n FROM t'))[0]!.n).toBe(rows);
    await query(S2, 'INSERT INTO t VALUES (-4)');
    expect((await query<{ n: number }>(S2, 'SELECT count(*)::int AS n FROM t'))[0]!.n).toBe(rows + 1);
    const status = JSON.parse((await cli(opts(S2), ['status', '--json'])).stdout);
    expect(status).toMatchObject({ role: 'primary', timeline: 2 });
    expect((await cli(opts(S2), ['health', '--primary'])).code).toBe(0);
  });
});
