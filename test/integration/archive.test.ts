/**
 * The WAL archive (PGREPL_ARCHIVE_DIR), on real PostgreSQL servers through the bundle: a primary
 * archives every segment with `pgrepl archive-wal`, refuses to overwrite a different file of the
 * same name (and says so in its log), and a standby without a slot that was down while the
 * primary recycled the WAL it needed catches up from the archive instead of failing with
 * "requested WAL segment has already been removed".
 *
 * Ports 5701-5702 are this file's alone.
 */
import { readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { lookupUser } from '../../src/handover/privileges.js';
import { isInRecovery, standbyOf, waitFor, waitForRows } from '../support/cluster.js';
import { query, removeScratch, scratchDir, TestNode, type NodeOptions } from '../support/node.js';

const A = 5701, B = 5702;
const TOKEN = 'archive-test-token';
let dir: string;
let archive: string;
const nodes = new Map<number, TestNode>();

const pgdata = (port: number) => join(dir, `n${port}`);

function opts(port: number, env: Record<string, string> = {}, args: string[] = []): NodeOptions {
  return { pgdata: pgdata(port), port, env: { PGREPL_TOKEN: TOKEN, PGREPL_ARCHIVE_DIR: archive, ...env }, args };
}

async function start(port: number, env: Record<string, string> = {}, args: string[] = []): Promise<TestNode> {
  const n = new TestNode(opts(port, env, args));
  nodes.set(port, n);
  await n.ready();
  return n;
}

async function stop(port: number) {
  const res = await nodes.get(port)!.stop('SIGINT');
  nodes.delete(port);
  return res;
}

/** The primary keeps no WAL for absent standbys: only what its checkpoints still need. */
const PRIMARY_ARGS = ['-c', 'wal_keep_size=0', '-c', 'max_wal_size=64MB', '-c', 'min_wal_size=32MB'];
const STANDBY_ENV = standbyOf(A, { PGREPL_SLOTS: 'off' });

const archived = async (port: number) =>
  (await query<{ archived: number; failed: number; last: string | null }>(
    port, 'SELECT archived_count::int AS archived, failed_count::int AS failed, last_archived_wal AS last FROM pg_stat_archiver',
  ))[0]!;

const currentSegment = async (port: number) =>
  (await query<{ f: string }>(port, 'SELECT pg_walfile_name(pg_current_wal_lsn()) AS f'))[0]!.f;

beforeAll(() => {
  dir = scratchDir('pgrepl-archive-');
  archive = join(dir, 'archive');
});
afterAll(async () => {
  for (const port of [...nodes.keys()]) await stop(port).catch(() => undefined);
  removeScratch(dir);
});

describe('WAL archive', () => {
  it('a primary archives every segment with pgrepl archive-wal into a private directory', async () => {
    await start(A, {}, PRIMARY_ARGS);
    const pg = lookupUser();
    const st = statSync(archive);
    expect([st.uid, st.gid, st.mode & 0o7777]).toEqual([pg.uid, pg.gid, 0o700]);
    const settings = Object.fromEntries(
      (await query<{ name: string; setting: string }>(A, "SELECT name, setting FROM pg_settings WHERE name IN ('archive_mode', 'archive_command', 'wal_keep_size')"))
        .map((r) => [r.name, r.setting]),
    );
    expect(settings.archive_mode).toBe('on');
    expect(settings.archive_command).toBe(`'${process.execPath}' '${join(process.cwd(), 'dist', 'pgrepl.cjs')}' 'archive-wal' '--dir' '${archive}' %p %f`);
    expect(settings.wal_keep_size).toBe('0'); // -c on the command line wins over pgrepl.conf

    await query(A, 'CREATE TABLE t (id int PRIMARY KEY, pad text)');
    await query(A, 'INSERT INTO t SELECT g, NULL FROM generate_series(1, 10) g');
    const seg = await currentSegment(A);
    await query(A, 'SELECT pg_switch_wal()');
    await waitFor(`${seg} in the archive`, async () => readdirSync(archive).includes(seg));
    expect((await archived(A)).failed).toBe(0);
    expect(statSync(join(archive, seg)).mode & 0o777).toBe(0o600);
    expect(readdirSync(archive).filter((f) => f.startsWith('.'))).toEqual([]); // no temporary files left
  });

  it('a standby without a slot gets restore_command from the same archive, and streams', async () => {
    await start(B, STANDBY_ENV);
    expect(await isInRecovery(B)).toBe(true);
    const restore = (await query<{ s: string }>(B, "SELECT current_setting('restore_command') AS s"))[0]!.s;
    expect(restore).toMatch(/'restore-wal' '--dir' '.*\/archive' %f %p$/);
    expect((await query(A, 'SELECT slot_name FROM pg_replication_slots')).length).toBe(0);
    await waitForRows(B, 't', 10);
  });

  it('refuses to overwrite a different file of the same name: the segment waits, the log says why', async () => {
    await query(A, 'INSERT INTO t VALUES (0, NULL)'); // something to switch away from
    const seg = await currentSegment(A);
    const fake = join(archive, seg);
    writeFileSync(fake, 'not this primary\'s segment');
    const failedBefore = (await archived(A)).failed;
    await query(A, 'SELECT pg_switch_wal()');
    await waitFor('a failed archive attempt', async () => (await archived(A)).failed > failedBefore);
    const a = nodes.get(A)!;
    await waitFor('the reason in the log', async () => a.stderr.includes(`archive-wal: ${fake} already exists with different content: refusing to overwrite it`));
    expect(a.logs().some((l) => l.level === 60 && l.msg.startsWith(`archive-wal: ${fake} already exists`))).toBe(true);
    expect(readdirSync(join(pgdata(A), 'pg_wal', 'archive_status'))).toContain(`${seg}.ready`); // kept for a retry

    // Once the operator moves the wrong file away, the next attempt archives the real segment.
    rmSync(fake);
    await query(A, 'DELETE FROM t WHERE id = 0');
    await query(A, 'SELECT pg_switch_wal()'); // a new segment to archive wakes the archiver
    await waitFor(`${seg} archived after all`, async () => readdirSync(archive).includes(seg) && statSync(fake).size === 16 * 1024 * 1024, 90_000);
  });

  it('a standby down while the primary recycled its WAL catches up from the archive', async () => {
    await query(A, 'INSERT INTO t SELECT g, NULL FROM generate_series(11, 20) g');
    expect((await query<{ n: number }>(A, 'SELECT count(*)::int AS n FROM t'))[0]!.n).toBe(20);
    await waitForRows(B, 't', 20);
    // The first segment B will need when it comes back: where it has replayed to.
    const replay = (await query<{ lsn: string }>(A, "SELECT replay_lsn::text AS lsn FROM pg_stat_replication WHERE application_name = 'node_5702'"))[0]!.lsn;
    const needed = (await query<{ f: string }>(A, 'SELECT pg_walfile_name($1::pg_lsn) AS f', [replay]))[0]!.f;
    await stop(B);

    // Lots of WAL, segment switches and checkpoints, until the primary has removed that segment.
    let id = 20;
    for (let round = 0; round < 40 && readdirSync(join(pgdata(A), 'pg_wal')).includes(needed); round++) {
      await query(A, `INSERT INTO t SELECT g, repeat(md5(g::text), 20) FROM generate_series(${id + 1}, ${id + 20000}) g`);
      id += 20000;
      await query(A, 'SELECT pg_switch_wal()');
      await query(A, 'CHECKPOINT');
    }
    await query(A, 'CHECKPOINT');
    expect(readdirSync(join(pgdata(A), 'pg_wal'))).not.toContain(needed);
    expect(readdirSync(archive)).toContain(needed);
    const total = id;

    const b = await start(B, STANDBY_ENV);
    await waitForRows(B, 't', total, 120_000).catch((err) => {
      throw new Error(`${(err as Error).message}\n${b.stderr.slice(-4000)}`);
    });
    expect(b.stderr).toMatch(new RegExp(`restored log file "${needed}" from archive`));
    expect(b.stderr).not.toMatch(/requested WAL segment \S+ has already been removed/);
    // Back to streaming once the archive has nothing newer.
    await waitFor('B streaming again', async () =>
      (await query<{ status: string }>(B, 'SELECT status FROM pg_stat_wal_receiver'))[0]?.status === 'streaming', 60_000);
    await query(A, `INSERT INTO t VALUES (${total + 1}, NULL)`);
    await waitForRows(B, 't', total + 1);
  });
});
