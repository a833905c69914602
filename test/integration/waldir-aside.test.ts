/**
 * Moving data aside when the WAL lives outside PGDATA (POSTGRES_INITDB_WALDIR: PGDATA/pg_wal is a
 * symlink into it), on real PostgreSQL servers through the bundle. A standby of cluster X, its WAL
 * in its own directory, is pointed at an unrelated primary Y with PGREPL_RECLONE=auto: its data
 * is moved aside and Y cloned. The clone needs an empty WAL directory (pg_basebackup --waldir
 * refuses anything else), and the kept copy is only a cluster with its WAL: the WAL must go
 * with it, by rename, and the kept copy must start on its own. A WAL directory on another
 * filesystem than PGDATA cannot go along without a copy: refused, nothing changed; pointing
 * POSTGRES_INITDB_WALDIR at a new, empty directory then re-clones and leaves the old WAL where
 * it is, the kept copy pointing at it.
 *
 * Ports 5871-5879 are this file's alone.
 */
import { execFileSync } from 'node:child_process';
import { chmodSync, existsSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, readlinkSync, realpathSync, renameSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { replicationPassword } from '../../src/config/token.js';
import { readControlData } from '../../src/observe/control-file.js';
import { isInRecovery, standbyOf, streamingTo, waitFor, waitForRows } from '../support/cluster.js';
import { stopAllNodes } from '../support/process-group.js';
import { RunningNodes } from '../support/running-nodes.js';
import { identifySystem, query, removeScratch, runBundle, scratchDir, TestNode, type NodeOptions, type RunResult } from '../support/node.js';

/** Two unrelated primaries X and Y; SX, X's standby with its WAL in its own directory; R, a copy of what SX kept. */
const X = 5871, SX = 5872, Y = 5873, R = 5874;
/** SZ: X's standby with its WAL on another filesystem (tmpfs); RZ, a copy of what SZ kept. */
const SZ = 5875, RZ = 5876;
/** SH: X's standby whose move aside is killed half-way through its WAL; RH, a copy of what SH kept. */
const SH = 5877, RH = 5878;

const TOKEN = 'waldir-aside-test-token';
let dir: string;
/** A tmpfs on another filesystem than the scratch directories (in a container, /dev/shm always is). */
const TMPFS = existsSync('/dev/shm') && statSync('/dev/shm').dev !== statSync(tmpdir()).dev ? '/dev/shm' : undefined;
/** A directory there, for WAL on another filesystem than PGDATA. */
let otherFs: string | undefined;
const nodes = new RunningNodes();

const pgdata = (port: number) => join(dir, `n${port}`);
const walDir = (port: number) => join(dir, `wal${port}`);

function opts(port: number, env: Record<string, string> = {}, data = pgdata(port)): NodeOptions {
  return { pgdata: data, port, env: { PGREPL_TOKEN: TOKEN, ...env }, detached: true };
}

const start = (port: number, env: Record<string, string> = {}, data?: string) => nodes.start(opts(port, env, data));
const stop = (port: number) => nodes.stop(port);

type LogLine = { level: number; msg: string; [k: string]: unknown };
const logsOf = (r: TestNode | RunResult): LogLine[] => r.stderr.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as LogLine);
const row = (r: TestNode | RunResult) => logsOf(r).find((l) => typeof l.row === 'string')?.row;
const fatals = (r: TestNode | RunResult) => logsOf(r).filter((l) => l.level === 60);
const sysid = async (port: number) => (await identifySystem(port, replicationPassword(TOKEN))).systemid;

/**
 * The regular files under `root` (relative path, size, inode): what "the same files, moved, not
 * copied" means here. withTime adds the mtime, for "untouched".
 */
function filesUnder(root: string, withTime = false): string[] {
  const out: string[] = [];
  const walk = (p: string) => {
    const st = lstatSync(p);
    if (st.isDirectory()) for (const e of readdirSync(p).sort()) walk(join(p, e));
    else out.push(`${relative(root, p)} ${st.isSymbolicLink() ? `-> ${readlinkSync(p)}` : `${st.size} #${st.ino}`}${withTime ? ` ${st.mtimeMs}` : ''}`);
  };
  walk(root);
  return out;
}

const keptCopies = (port: number) =>
  readdirSync(join(pgdata(port), 'pg_dynshmem')).filter((e) => e.startsWith('pgrepl-aside-')).map((e) => join(pgdata(port), 'pg_dynshmem', e));

const rowsIn = async (port: number, table: string) => (await query<{ n: number }>(port, `SELECT count(*)::int AS n FROM ${table}`))[0]!.n;
const rowsOfX = () => rowsIn(X, 'tx');

/** A standby of X whose WAL is in `waldir`, with WAL in several segments, stopped cleanly. */
async function standbyOfXWithWalIn(port: number, waldir: string): Promise<void> {
  await start(port, standbyOf(X, { POSTGRES_INITDB_WALDIR: waldir }));
  expect(realpathSync(join(pgdata(port), 'pg_wal'))).toBe(realpathSync(waldir));
  for (let i = 0; i < 3; i++) await query(X, 'INSERT INTO tx SELECT g FROM generate_series(1, 1000) g; SELECT pg_switch_wal()');
  await waitForRows(port, 'tx', await rowsOfX());
  await stop(port);
}

/**
 * Copies a kept copy elsewhere and starts it there as X's standby, as an operator restoring it
 * would: it must be a whole cluster (its WAL included) of system X, with X's rows.
 */
async function startCopyOf(kept: string, port: number, sysX: string): Promise<void> {
  const copy = join(dir, `restored${port}`);
  execFileSync('cp', ['-a', kept, copy]);
  mkdirSync(join(copy, 'pg_dynshmem')); // stays in PGDATA when data is moved aside; postgres needs it
  const r = await start(port, standbyOf(X), copy);
  expect(row(r)).toBe('standby cluster × STANDBY');
  expect((await readControlData(copy))!.systemIdentifier).toBe(sysX);
  const rows = await rowsOfX();
  await waitForRows(port, 'tx', rows);
  await query(X, 'INSERT INTO tx VALUES (0)');
  await waitForRows(port, 'tx', rows + 1);
  await stop(port);
}

beforeAll(async () => {
  dir = scratchDir('pgrepl-waldir-');
  if (TMPFS) {
    otherFs = mkdtempSync(join(TMPFS, 'pgrepl-waldir-'));
    chmodSync(otherFs, 0o755);
  }
  await start(X);
  await query(X, 'CREATE TABLE tx AS SELECT g AS id FROM generate_series(1, 100) g');
  await start(Y);
  await query(Y, 'CREATE TABLE ty AS SELECT g AS id FROM generate_series(1, 250) g');
});

afterAll(async () => {
  const problems = await stopAllNodes(nodes.byPort, dir);
  removeScratch(dir);
  if (otherFs) removeScratch(otherFs);
  if (problems.length) throw new Error(problems.join('\n'));
});

// ---------------------------------------------------------------------------------------------

describe('a standby with POSTGRES_INITDB_WALDIR pointed at another system with PGREPL_RECLONE=auto', () => {
  let sysX: string, sysY: string;
  let oldWal: string[];

  it('is re-cloned from the new upstream and streams, its WAL directory holding the new cluster\'s WAL', async () => {
    await standbyOfXWithWalIn(SX, walDir(SX));
    sysX = await sysid(X);
    sysY = await sysid(Y);
    expect(sysX).not.toBe(sysY);
    oldWal = filesUnder(walDir(SX));
    expect(oldWal.filter((f) => /^[0-9A-F]{24} /.test(f)).length).toBeGreaterThanOrEqual(2);

    const sx = await start(SX, standbyOf(Y, { PGREPL_RECLONE: 'auto', POSTGRES_INITDB_WALDIR: walDir(SX) }));
    expect(row(sx)).toBe('another system × STANDBY');
    expect(fatals(sx)).toEqual([]);
    expect((await readControlData(pgdata(SX)))!.systemIdentifier).toBe(sysY);
    expect(lstatSync(join(pgdata(SX), 'pg_wal')).isSymbolicLink()).toBe(true);
    expect(realpathSync(join(pgdata(SX), 'pg_wal'))).toBe(realpathSync(walDir(SX)));
    expect(await isInRecovery(SX)).toBe(true);
    await waitForRows(SX, 'ty', 250);
    await query(Y, 'INSERT INTO ty VALUES (251)');
    await waitForRows(SX, 'ty', 251);
    expect(await waitFor('SX to stream from Y', () => streamingTo(Y, SX))).toBe(true);
    // None of the old WAL files is left in the WAL directory (inodes: names can recur).
    const inodes = (files: string[]) => files.map((f) => / #(\d+)$/.exec(f)?.[1]).filter(Boolean);
    expect(inodes(filesUnder(walDir(SX))).filter((i) => inodes(oldWal).includes(i))).toEqual([]);
    await stop(SX);
  });

  it('keeps the old WAL with the kept copy: the same files, moved (same inodes), in its own pg_wal', async () => {
    const kept = keptCopies(SX);
    expect(kept).toHaveLength(1);
    expect((await readControlData(kept[0]!))!.systemIdentifier).toBe(sysX);
    const wal = join(kept[0]!, 'pg_wal');
    expect(lstatSync(wal).isDirectory()).toBe(true);
    expect(filesUnder(wal)).toEqual(oldWal);
  });

  it('the kept copy is a whole cluster: a copy of it starts on its own and follows X', async () => {
    await startCopyOf(keptCopies(SX)[0]!, R, sysX);
  });
});

// ---------------------------------------------------------------------------------------------

describe('the same with the WAL directory on another filesystem than PGDATA', () => {
  const oldWalDir = () => join(otherFs!, `wal${SZ}`);
  const newWalDir = () => join(otherFs!, `wal${SZ}-new`);
  let before: { pgdata: string[]; wal: string[] };

  it.skipIf(!TMPFS)('is refused in one line naming POSTGRES_INITDB_WALDIR and what to do; nothing changed', async () => {
    await standbyOfXWithWalIn(SZ, oldWalDir());
    before = { pgdata: filesUnder(pgdata(SZ), true), wal: filesUnder(oldWalDir(), true) };

    const res = await runBundle(opts(SZ, standbyOf(Y, { PGREPL_RECLONE: 'auto', POSTGRES_INITDB_WALDIR: oldWalDir() })));
    expect(res.code).not.toBe(0);
    expect(row(res)).toBe('another system × STANDBY');
    const f = fatals(res);
    expect(f).toHaveLength(1);
    expect(f[0]!.msg).toBe(
      `POSTGRES_INITDB_WALDIR=${oldWalDir()} is on another filesystem than PGDATA=${pgdata(SZ)}: the WAL of the data to be moved aside cannot go along with it without a copy, ` +
        'and the clone needs that directory empty. Point POSTGRES_INITDB_WALDIR at a new, empty directory (the old WAL stays where it is, and the copy kept aside points at it); nothing was changed',
    );
    expect(res.stderr).not.toMatch(/pg_basebackup/);
    expect(filesUnder(pgdata(SZ), true)).toEqual(before.pgdata);
    expect(filesUnder(oldWalDir(), true)).toEqual(before.wal);
  });

  it.skipIf(!TMPFS)('with a new, empty POSTGRES_INITDB_WALDIR: re-cloned; the kept copy points at its old WAL, untouched', async () => {
    await start(SZ, standbyOf(Y, { PGREPL_RECLONE: 'auto', POSTGRES_INITDB_WALDIR: newWalDir() }));
    expect(realpathSync(join(pgdata(SZ), 'pg_wal'))).toBe(realpathSync(newWalDir()));
    await waitForRows(SZ, 'ty', await rowsIn(Y, 'ty'));
    expect(await waitFor('SZ to stream from Y', () => streamingTo(Y, SZ))).toBe(true);
    await stop(SZ);
    const kept = keptCopies(SZ);
    expect(kept).toHaveLength(1);
    expect(readlinkSync(join(kept[0]!, 'pg_wal'))).toBe(oldWalDir());
    expect(filesUnder(oldWalDir(), true)).toEqual(before.wal);
    await startCopyOf(kept[0]!, RZ, await sysid(X));
  });
});

describe('a start killed while it moved the WAL into the kept copy', () => {
  it('the next start finishes that move, then clones: the kept copy has all its WAL, the clone an empty WAL directory to start from', async () => {
    await standbyOfXWithWalIn(SH, walDir(SH));
    const sysX = await sysid(X);
    const wal = readdirSync(walDir(SH)).sort();
    const inodes = new Map(wal.map((f) => [f, statSync(join(walDir(SH), f)).ino]));
    // What aside.ts leaves when killed after PGDATA's entries moved and half of the WAL did:
    // the kept copy (its pg_wal still the symlink), the WAL in transit in its .pgrepl-wal.
    const kept = join(pgdata(SH), 'pg_dynshmem', 'pgrepl-aside-20260101T000000Z');
    mkdirSync(kept, { mode: 0o700 });
    for (const e of readdirSync(pgdata(SH)).filter((e) => e !== 'pg_dynshmem')) renameSync(join(pgdata(SH), e), join(kept, e));
    mkdirSync(join(kept, '.pgrepl-wal'), { mode: 0o700 });
    for (const f of wal.slice(0, Math.ceil(wal.length / 2))) renameSync(join(walDir(SH), f), join(kept, '.pgrepl-wal', f));
    execFileSync('chown', ['-R', 'postgres:postgres', kept]);

    const sh = await start(SH, standbyOf(X, { POSTGRES_INITDB_WALDIR: walDir(SH) }));
    expect(row(sh)).toBe('kept copies only × STANDBY');
    expect(logsOf(sh).some((l) => l.msg.startsWith('finished moving the WAL of a kept copy into it'))).toBe(true);
    await waitForRows(SH, 'tx', await rowsOfX());
    expect(await isInRecovery(SH)).toBe(true);
    // The kept copy: its own pg_wal directory with every file it had, the same inodes (moved).
    expect(lstatSync(join(kept, 'pg_wal')).isDirectory()).toBe(true);
    expect(existsSync(join(kept, '.pgrepl-wal'))).toBe(false);
    expect(readdirSync(join(kept, 'pg_wal')).sort()).toEqual(wal);
    for (const [f, ino] of inodes) expect(statSync(join(kept, 'pg_wal', f)).ino).toBe(ino);
    await stop(SH);
    await startCopyOf(kept, RH, sysX);
  });
});
