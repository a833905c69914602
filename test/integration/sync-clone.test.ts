/**
 * A node that is still cloning is never a synchronous standby (issue 15, issue 10 point 5), on
 * real PostgreSQL servers through the bundle. A primary with PGREPL_SYNC_STANDBYS=1 (ANY 1 (*))
 * and ~40 MB of data; the clone runs through a TCP proxy that slows the upstream's side down to
 * a trickle, so that it is still copying while the test looks at it, and the throttle is opened
 * once the test has seen what it came for.
 *
 * While a node clones: a commit on the primary waits for a synchronous standby, also after a WAL
 * switch closed the segment holding it and the clone's WAL stream received that segment (with a
 * slot, pg_basebackup reports that segment flushed and the commit went through); `pgrepl status`
 * shows the node as cloning; and the WAL the copy still needs survives WAL switches and
 * checkpoints on its upstream (wal_keep_size 0) because this node's slot was made before the copy
 * began. Once the node has started and streams, the commit goes through.
 *
 * The same for a cascaded clone (from a standby, whose restartpoints remove WAL) and for a
 * re-clone (PGREPL_RECLONE=auto: another system's data moved aside, then the same clone step as a
 * rewind's fallback), the latter with PGREPL_SLOTS=off (a temporary slot held for the copy).
 *
 * Ports 5771-5779 are this file's alone.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { standbyOf, streamingTo, waitFor, waitForRows } from '../support/cluster.js';
import { query, removeScratch, runCommand as cli, scratchDir, SUPERUSER_PASSWORD, TestNode, type NodeOptions } from '../support/node.js';
import { startThrottleProxy, type ThrottleProxy } from '../support/throttle-proxy.js';

const A = 5771, PA = 5772, B = 5773, PB = 5774, C = 5775, D = 5776;
const TOKEN = 'sync-clone-token';
const SYNC = { PGREPL_SYNC_STANDBYS: '1' };
/** Slow enough that the ~40 MB copy takes minutes, until the throttle is opened. */
const TRICKLE = 256 * 1024;
let dir: string;
const nodes = new Map<number, TestNode>();
const proxies: ThrottleProxy[] = [];
const name = (port: number) => `node_${port}`;

function opts(port: number, env: Record<string, string> = {}): NodeOptions {
  return { pgdata: join(dir, `n${port}`), port, env: { PGREPL_TOKEN: TOKEN, ...env } };
}

function launch(port: number, env: Record<string, string> = {}): TestNode {
  const n = new TestNode(opts(port, env));
  nodes.set(port, n);
  return n;
}

async function stop(port: number): Promise<void> {
  await nodes.get(port)?.stop('SIGINT');
  nodes.delete(port);
}

async function proxy(listenPort: number, targetPort: number): Promise<ThrottleProxy> {
  const p = await startThrottleProxy({ listenPort, targetPort, bytesPerSecond: TRICKLE });
  proxies.push(p);
  return p;
}

/** Runs statements on a connection that does not wait for synchronous standbys (setup, filler). */
async function local(port: number, ...statements: string[]): Promise<void> {
  const c = new pg.Client({ host: '127.0.0.1', port, user: 'postgres', password: SUPERUSER_PASSWORD, database: 'postgres' });
  await c.connect();
  try {
    await c.query('SET synchronous_commit = local');
    for (const sql of statements) await c.query(sql);
  } finally {
    await c.end();
  }
}

const lsn = (text: string): bigint => {
  const [hi, lo] = text.split('/');
  return (BigInt(`0x${hi}`) << 32n) + BigInt(`0x${lo}`);
};

async function segmentSize(port: number): Promise<bigint> {
  return BigInt((await query<{ s: string }>(port, "SELECT setting AS s FROM pg_settings WHERE name = 'wal_segment_size'"))[0]!.s);
}

interface SenderRow { state: string; sync_state: string; sent_lsn: string | null; write_lsn: string | null; flush_lsn: string | null }

/** pg_stat_replication's rows for one application_name: a cloning node has a `backup` row. */
function senders(upstream: number, app: string): Promise<SenderRow[]> {
  return query<SenderRow>(upstream, `SELECT state, sync_state, sent_lsn::text, write_lsn::text, flush_lsn::text
    FROM pg_stat_replication WHERE application_name = $1`, [app]);
}
const cloning = async (upstream: number, app: string) => (await senders(upstream, app)).some((r) => r.state === 'backup');
/** pg_basebackup's WAL stream: the row of the node's name that is streaming. */
const stream = async (upstream: number, app: string) => (await senders(upstream, app)).find((r) => r.state === 'streaming' || r.state === 'catchup');

/** Starts `port` as a standby of `upstream` through a slow proxy on `via`; returns once it is copying. */
async function slowClone(via: number, upstream: number, port: number) {
  const throttle = await proxy(via, upstream);
  const node = launch(port, standbyOf(via, SYNC));
  await waitFor(`${name(port)} cloning from ${upstream}`, () => cloning(upstream, name(port)));
  return { throttle, node };
}

/** This node's slot on `upstream`. */
async function slotOf(upstream: number, app: string) {
  return (await query<{ restart_lsn: string; active: boolean }>(upstream,
    'SELECT restart_lsn::text, active FROM pg_replication_slots WHERE slot_name = $1', [app]))[0];
}

/** A commit on `port` whose acknowledgement is awaited in the background. */
async function pendingCommit(port: number, id: number) {
  const c = new pg.Client({ host: '127.0.0.1', port, user: 'postgres', password: SUPERUSER_PASSWORD, database: 'postgres' });
  c.on('error', () => undefined);
  await c.connect();
  const pid = (await c.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0]!.pid;
  const state: { acked: boolean; error?: unknown } = { acked: false };
  const done = c.query('INSERT INTO acks VALUES ($1)', [id])
    .then(() => (state.acked = true), (err: unknown) => (state.error = err))
    .finally(() => c.end().catch(() => undefined));
  return { pid, state, done };
}

const waitEvent = async (port: number, pid: number) =>
  (await query<{ w: string | null }>(port, 'SELECT wait_event AS w FROM pg_stat_activity WHERE pid = $1', [pid]))[0]?.w;

/**
 * The heart of it: while `app` clones from `primary`, a commit waits for a synchronous standby,
 * also once the segment holding it is closed by a WAL switch and the clone's WAL stream has
 * received that whole segment (a stream into a slot reports it flushed then). Returns the commit.
 */
async function expectCommitWaitsWhileCloning(primary: number, app: string, id: number) {
  const commit = await pendingCommit(primary, id);
  await waitFor('the commit waiting for a synchronous standby', async () => (await waitEvent(primary, commit.pid)) === 'SyncRep');
  const switched = lsn((await query<{ l: string }>(primary, 'SELECT pg_switch_wal()::text AS l'))[0]!.l);
  const seg = await segmentSize(primary);
  const segmentEnd = ((switched + seg - 1n) / seg) * seg;
  await waitFor("the clone's WAL stream to have received the closed segment, or the commit acknowledged", async () => {
    if (commit.state.acked) return true;
    const s = await stream(primary, app);
    return s?.write_lsn ? lsn(s.write_lsn) >= segmentEnd : false;
  }, 90_000);
  // Room for an acknowledgement that would follow the stream's report.
  await new Promise((r) => setTimeout(r, 3000));
  expect(await cloning(primary, app), 'the clone is still copying (else this proves nothing)').toBe(true);
  expect(commit.state.acked, 'a commit acknowledged while the only candidate standby was cloning').toBe(false);
  expect(await waitEvent(primary, commit.pid)).toBe('SyncRep');
  const s = (await stream(primary, app))!;
  // The stream reports what it wrote, never a flush position: it counts for no quorum.
  expect(s).toMatchObject({ flush_lsn: null, sync_state: 'async' });
  return commit;
}

/**
 * WAL switches and a checkpoint on `upstream` (a restartpoint if it is a standby, after `primary`
 * made the checkpoint it needs) while `app` clones from it with wal_keep_size 0: the clone's WAL
 * stream is behind the new redo point, so without a slot made before the copy the segments it
 * still needs would be gone now. They are there.
 */
async function expectWalKeptForTheClone(primary: number, upstream: number, app: string): Promise<void> {
  // More WAL than the socket buffers between the walsender and the throttle can take in.
  for (let i = 0; i < 30; i++) await local(primary, 'INSERT INTO filler VALUES (1)', 'SELECT pg_switch_wal()');
  await query(primary, 'CHECKPOINT');
  if (upstream !== primary) {
    const checkpointed = lsn((await query<{ l: string }>(primary, 'SELECT pg_current_wal_lsn()::text AS l'))[0]!.l);
    await waitFor('the standby upstream to replay the checkpoint', async () =>
      lsn((await query<{ l: string }>(upstream, 'SELECT pg_last_wal_replay_lsn()::text AS l'))[0]!.l) >= checkpointed);
    await query(upstream, 'CHECKPOINT');
  }
  const seg = await segmentSize(upstream);
  const redo = lsn((await query<{ l: string }>(upstream, 'SELECT redo_lsn::text AS l FROM pg_control_checkpoint()'))[0]!.l);
  const s = (await stream(upstream, app))!;
  expect(await cloning(upstream, app), 'the clone is still copying').toBe(true);
  expect(lsn(s.sent_lsn!) / seg, 'the WAL stream is segments behind the redo point').toBeLessThan(redo / seg);
  // The segment's file name after its timeline (pg_walfile_name() is not allowed on a standby).
  const segno = lsn(s.sent_lsn!) / seg, perId = 0x100000000n / seg;
  const needed = [segno / perId, segno % perId].map((n) => n.toString(16).toUpperCase().padStart(8, '0')).join('');
  const kept = await query(upstream, "SELECT 1 FROM pg_ls_waldir() WHERE substr(name, 9) = $1", [needed]);
  expect(kept, `${needed}, which the clone still needs, is kept`).toHaveLength(1);
}

/** `pgrepl status` on `upstream` shows every row of `app` as cloning, in text and JSON. */
async function expectStatusShowsCloning(upstream: number, app: string): Promise<void> {
  const text = await cli(opts(upstream), ['status']);
  expect(text.code, text.stderr).toBe(0);
  const section = text.stdout.split(/^(?=\S)/m).find((sec) => sec.startsWith('standbys:')) ?? '';
  const lines = section.split('\n').filter((l) => l.trim().startsWith(`${app} `));
  expect(lines.length, text.stdout).toBeGreaterThanOrEqual(2);
  for (const l of lines) {
    expect(l).toMatch(/ cloning /);
    expect(l).not.toMatch(/streaming|quorum|\bsync\b|potential/);
  }
  // Its slot is not an abandoned one to drop.
  expect(text.stdout).toMatch(new RegExp(`^  ${app}(_clone)? .*\\(keeps the WAL of the clone in progress\\)$`, 'm'));
  const json = await cli(opts(upstream), ['status', '--json']);
  const rows = (JSON.parse(json.stdout).standbys as { name: string; state: string; sync: string }[]).filter((r) => r.name === app);
  expect(rows.length).toBeGreaterThanOrEqual(2);
  for (const r of rows) expect(r).toMatchObject({ state: 'cloning', sync: 'async' });
  expect(rows.map((r) => (r as { walsender?: string }).walsender)).toContain('backup');
}

/** The start WAL location of the copy this node was made from (its backup_label, kept as .old). */
function backupStart(port: number): bigint {
  const label = readFileSync(join(dir, `n${port}`, 'backup_label.old'), 'utf8');
  return lsn(/^START WAL LOCATION: (\S+)/m.exec(label)![1]!);
}

beforeAll(() => {
  dir = scratchDir('pgrepl-sync-clone-');
});
afterAll(async () => {
  for (const port of [...nodes.keys()].reverse()) await stop(port).catch(() => undefined);
  await Promise.all(proxies.map((p) => p.close()));
  removeScratch(dir);
});

describe('a cloning node is no synchronous standby', () => {
  it('a primary with PGREPL_SYNC_STANDBYS=1, ~40 MB of data, small WAL segments, no WAL kept for absent standbys', async () => {
    // 1 MB segments: a WAL switch's padding crosses the throttled link in seconds.
    await launch(A, { ...SYNC, POSTGRES_INITDB_ARGS: '--wal-segsize=1' }).ready();
    await local(A, 'ALTER SYSTEM SET wal_keep_size = 0', 'SELECT pg_reload_conf()',
      'CREATE TABLE acks (id int PRIMARY KEY)', 'CREATE TABLE filler (v int)',
      "CREATE TABLE big AS SELECT g, repeat('x', 200) AS pad FROM generate_series(1, 170000) g");
    const size = (await query<{ mb: number }>(A, "SELECT pg_total_relation_size('big') / 1048576 AS mb"))[0]!.mb;
    expect(Number(size)).toBeGreaterThan(35);
  });

  it('while a standby clones: a commit waits, also after a WAL switch; status says cloning; its WAL is kept; once it streams the commit goes through', async () => {
    const { throttle, node: b } = await slowClone(PA, A, B);
    const commit = await expectCommitWaitsWhileCloning(A, name(B), 1);
    await expectStatusShowsCloning(A, name(B));

    // The slot was made before the copy, which does not stream into it.
    const slot = await slotOf(A, name(B));
    expect(slot).toMatchObject({ active: false });
    await expectWalKeptForTheClone(A, A, name(B));

    throttle.setRate(Infinity);
    await b.ready();
    await commit.done;
    expect(commit.state).toEqual({ acked: true });
    await waitFor(`${name(B)} streaming through its slot`, async () => (await streamingTo(A, B)) && (await slotOf(A, name(B)))?.active);
    await waitForRows(B, 'acks', 1);
    // The slot reserved WAL from before the copy's start.
    expect(lsn(slot!.restart_lsn)).toBeLessThanOrEqual(backupStart(B));
  });

  it('a cascaded clone, from a standby: not reported flushed, status says cloning, its WAL kept through restartpoints', async () => {
    const { throttle, node: c } = await slowClone(PB, B, C);
    // Once the stream has reported what it wrote, it has reported no flush position.
    const s = await waitFor("the cascaded clone's WAL stream reporting", async () => {
      const r = await stream(B, name(C));
      return r?.write_lsn ? r : undefined;
    });
    expect(s).toMatchObject({ flush_lsn: null, sync_state: 'async' });
    await expectStatusShowsCloning(B, name(C));
    const slot = await slotOf(B, name(C));
    expect(slot).toMatchObject({ active: false });
    await expectWalKeptForTheClone(A, B, name(C));

    throttle.setRate(Infinity);
    await c.ready();
    await waitFor(`${name(C)} streaming from B`, () => streamingTo(B, C));
    await query(A, 'INSERT INTO acks VALUES (2)');
    await waitForRows(C, 'acks', 2);
    expect(lsn(slot!.restart_lsn)).toBeLessThanOrEqual(backupStart(C));
  });

  it('a re-clone (another system, PGREPL_RECLONE=auto) with PGREPL_SLOTS=off: a commit waits until it streams', async () => {
    // D holds a cluster of its own system first.
    await launch(D).ready();
    await stop(D);
    // A's only synchronous standby leaves: D's clone is the only candidate.
    await stop(C);
    await stop(B);
    // The link B streamed through, slow again.
    const throttle = proxies[0]!;
    throttle.setRate(TRICKLE);
    const d = launch(D, standbyOf(PA, { ...SYNC, PGREPL_RECLONE: 'auto', PGREPL_SLOTS: 'off' }));
    await waitFor(`${name(D)} cloning from A`, () => cloning(A, name(D)));
    expect(d.logs().find((l) => typeof l.row === 'string')?.row).toBe('another system × STANDBY');
    const commit = await expectCommitWaitsWhileCloning(A, name(D), 3);
    await expectStatusShowsCloning(A, name(D));
    await expectWalKeptForTheClone(A, A, name(D));

    throttle.setRate(Infinity);
    await d.ready();
    await commit.done;
    expect(commit.state).toEqual({ acked: true });
    await waitFor('the commit on D', async () => (await query(D, 'SELECT 1 FROM acks WHERE id = 3')).length === 1);
    // The temporary slot went with the copy: no slot of D's is left on A.
    const left = await query(A, "SELECT slot_name FROM pg_replication_slots WHERE slot_name LIKE 'node_5776%'");
    expect(left).toEqual([]);
  });
});
