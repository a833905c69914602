#!/usr/bin/env node
/**
 * Durability benchmark: how many commits the primary acknowledged are lost when it dies and its
 * standby is promoted, with synchronous replication (PGREPL_SYNC_STANDBYS=1) and without (0).
 *
 * Each run: a primary and one standby started through the bundle (dist/pgrepl.cjs) on 127.0.0.1;
 * DUR_CLIENTS connections run autocommit INSERTs of one row each, recording every id whose commit
 * the server acknowledged; after DUR_KILL_AFTER acknowledgements every process of the primary is
 * killed at once (SIGKILL to its process group: a container kill, a power cut); the standby is
 * promoted with `pgrepl promote`; the acknowledged ids missing on it are the loss. The "window" is
 * the time from the acknowledgement of the first lost commit to the last acknowledgement of all
 * (the primary's last moment, as far as its clients can tell).
 *
 * This is a measurement: it fails only when something breaks, never on the counts (the zero-loss
 * property of synchronous mode is asserted by test/integration/sync.test.ts).
 *
 *   npm run build && node bench/durability.mjs
 *
 * Environment:
 *   DUR_RUNS=5           runs per mode
 *   DUR_CLIENTS=4        concurrent connections
 *   DUR_KILL_AFTER=2000  acknowledged commits before the kill
 *   DUR_PORT=5796        the primary's port; the standby uses the next one (5790-5799 are the benchmarks')
 *   BENCH_PG_BIN=DIR     PostgreSQL's bin directory (default: /usr/lib/postgresql/<highest>/bin)
 *   BENCH_OUT=FILE       where to write the results (default bench/RESULTS-durability.md)
 *
 * Node ESM; needs the `pg` package from node_modules (npm ci). Run as root, as in a container: the
 * bundle drops to the postgres user itself.
 */
import { rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { join, resolve } from 'node:path';
import {
  BENCH_DIR, cli, defineNode, findPgBin, intEnv, killGroup, makeScratchDir, median, pgClient, postgresVersion, query, ready,
  requireBundleAndRoot, startNode, stopNode, waitFor,
} from './nodes.mjs';
import { refreshSummary } from './summary.mjs';

const OUT = resolve(process.env.BENCH_OUT || join(BENCH_DIR, 'RESULTS-durability.md'));
const PASSWORD = 'durability-password';
const TOKEN = 'durability-token';

const RUNS = intEnv('DUR_RUNS', 5);
const CLIENTS = intEnv('DUR_CLIENTS', 4);
const KILL_AFTER = intEnv('DUR_KILL_AFTER', 2000);
const PRIMARY = intEnv('DUR_PORT', 5796);
const STANDBY = PRIMARY + 1;

const BIN = findPgBin();
const say = (msg) => process.stdout.write(msg + '\n');

requireBundleAndRoot();

/** A node of this benchmark on 127.0.0.1:port, named node_PORT (its application_name upstream). */
const benchNode = (dir, port, env, upstream = null) =>
  defineNode({ name: `node_${port}`, port, pgdata: dir, pgBin: BIN, password: PASSWORD, token: TOKEN, upstream, env });

/** Autocommit INSERTs from CLIENTS connections until the server goes away; kill at KILL_AFTER acks. */
async function loadAndKill(primary) {
  const acked = []; // [id, time of the acknowledgement]
  let next = 1;
  let killedAt;
  let killing;
  const one = async () => {
    const c = pgClient(primary);
    c.on('error', () => undefined);
    await c.connect();
    try {
      for (;;) {
        const id = next++;
        await c.query('INSERT INTO acks (id) VALUES ($1)', [id]);
        acked.push([id, performance.now()]);
        if (acked.length === KILL_AFTER && !killing) {
          killedAt = performance.now();
          killing = killGroup(primary);
        }
      }
    } catch {
      // the server is gone
    } finally {
      await c.end().catch(() => undefined);
    }
  };
  const started = performance.now();
  await Promise.all(Array.from({ length: CLIENTS }, one));
  await killing;
  return { acked, killedAt, rate: Math.round((KILL_AFTER / (killedAt - started)) * 1000) };
}

async function oneRun(mode, run) {
  const dir = makeScratchDir('pgrepl-durability-');
  const sync = { PGREPL_SYNC_STANDBYS: mode === 'sync' ? '1' : '0' };
  const nodes = [];
  try {
    const a = startNode(benchNode(join(dir, 'a'), PRIMARY, sync));
    nodes.push(a);
    await ready(a);
    const b = startNode(benchNode(join(dir, 'b'), STANDBY, sync, a));
    nodes.push(b);
    await ready(b);
    const state = mode === 'sync' ? 'quorum' : 'async';
    await waitFor(`the standby streaming (${state})`, async () =>
      (await query(a, "SELECT sync_state FROM pg_stat_replication WHERE application_name = $1 AND state = 'streaming'", [b.name]))[0]?.sync_state === state, b);
    await query(a, 'CREATE TABLE acks (id bigint PRIMARY KEY)');

    const { acked, rate } = await loadAndKill(a);
    const promotion = await cli(b, ['promote']);
    const promoted = promotion.stdout.trim();
    if (promotion.code !== 0 || !/^promoted: now a primary on timeline 2$/.test(promoted)) throw new Error(`promote exited ${promotion.code}, said: ${promoted}${promotion.stderr}`);
    const onB = new Set((await query(b, 'SELECT id FROM acks')).map((r) => Number(r.id)));
    const lost = acked.filter(([id]) => !onB.has(id));
    const lastAck = Math.max(...acked.map(([, t]) => t));
    const window = lost.length === 0 ? 0 : lastAck - Math.min(...lost.map(([, t]) => t));
    const result = { mode, run, acked: acked.length, lost: lost.length, windowMs: Math.round(window * 10) / 10, extraOnStandby: onB.size - (acked.length - lost.length), rate };
    say(`${mode} run ${run}: ${acked.length} acknowledged, ${lost.length} lost (window ${result.windowMs} ms), ${rate} commits/s`);
    return result;
  } finally {
    for (const n of nodes) await stopNode(n);
    rmSync(dir, { recursive: true, force: true });
  }
}

const load0 = os.loadavg()[0].toFixed(2);
const results = [];
for (let run = 1; run <= RUNS; run++) {
  for (const mode of ['async', 'sync']) results.push(await oneRun(mode, run));
}
const load1 = os.loadavg()[0].toFixed(2);

const summary = ['async', 'sync'].map((mode) => {
  const rs = results.filter((r) => r.mode === mode);
  return `| ${mode === 'sync' ? 'synchronous (`PGREPL_SYNC_STANDBYS=1`)' : 'asynchronous (`PGREPL_SYNC_STANDBYS=0`)'} | ${rs.length} | ${median(rs.map((r) => r.rate))} | ${rs.map((r) => r.lost).join(', ')} | ${median(rs.map((r) => r.lost))} | ${Math.max(...rs.map((r) => r.lost))} | ${Math.max(...rs.map((r) => r.windowMs))} |`;
});
const pgVersion = postgresVersion(BIN);
const report = `# Durability: acknowledged commits lost at failover

Written by \`bench/durability.mjs\` on ${new Date().toISOString()} (${os.cpus().length} CPUs, load ${load0} at the start, ${load1} at the end; ${pgVersion}; Node ${process.version}).

Each run: a primary and one standby through the bundle on 127.0.0.1; ${CLIENTS} connections run
autocommit \`INSERT\`s of one row each and record every id whose commit was acknowledged; after
${KILL_AFTER} acknowledgements every process of the primary is killed at once (SIGKILL to its process
group, as a container kill or a power cut); the standby is promoted with \`pgrepl promote\`; an
acknowledged id missing on it is a lost commit. The window is the time from the acknowledgement
of the first lost commit to the last acknowledgement the clients received (acknowledgements
already on their way still arrive after the kill is sent).

Everything runs on one machine over loopback, so replication lag is as small as it gets: across a
network, under heavier load or with a busy standby, the asynchronous loss grows with the lag, and
in principle it has no bound.

| mode | runs | commits/s (median) | lost per run | lost (median) | lost (max) | window (max, ms) |
|---|---|---|---|---|---|---|
${summary.join('\n')}

Every run:

| mode | run | acknowledged | lost | window (ms) | on the standby, not acknowledged | commits/s |
|---|---|---|---|---|---|---|
${results.map((r) => `| ${r.mode} | ${r.run} | ${r.acked} | ${r.lost} | ${r.windowMs} | ${r.extraOnStandby} | ${r.rate} |`).join('\n')}

"On the standby, not acknowledged": commits that reached the standby but whose acknowledgement died
with the primary (the client saw an error, yet the row exists): normal for both modes; an
application that retries must be idempotent.

This is a measurement, not a test: the zero-loss property of synchronous replication is asserted
by \`test/integration/sync.test.ts\`; nothing asserts the asynchronous counts.
`;
writeFileSync(OUT, report);
if (!process.env.BENCH_OUT) refreshSummary(); // its headline in RESULTS.md
say(`written to ${OUT}`);
for (const line of summary) say(line);
