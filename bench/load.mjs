#!/usr/bin/env node
/**
 * Replication under load, then a failover, then a consistency check (issue 6 part 5).
 *
 * Four nodes started through the bundle (dist/pgrepl.cjs) on 127.0.0.1, as containers start them
 * (they differ only in PGDATA and PGPORT): a primary `a`, standbys `b` and `c` of `a`, and a
 * cascaded standby `d` of `b`.
 *
 *   1. `pgbench -i -s LOAD_SCALE` on the primary, then `pgbench -c 8 -j 2 -T LOAD_SECONDS`;
 *      meanwhile, every LOAD_SAMPLE_MS, each standby's `pgrepl status --json` is run (as an
 *      operator would, with the node's environment) and, over open connections, the primary's
 *      pg_current_wal_lsn() and each standby's pg_last_wal_replay_lsn() are read.
 *   2. pgbench ends; the standbys catch up; the sums pgbench keeps consistent are read on the
 *      primary; the primary is killed (SIGKILL to its process group, as a failed container);
 *      `b` is promoted with `pgrepl promote`; `d` (b's cascade) follows timeline 2 by itself;
 *      `c` (an orphan of the dead primary) is re-pointed at `b` with `pgrepl follow`.
 *   3. consistency: sum(pgbench_accounts.abalance), sum(pgbench_history.delta) and the history
 *      count must be equal on every node (the dead primary's values as read before the kill),
 *      and sum(abalance) = sum(delta) (each pgbench transaction adds delta to both).
 *
 * Results go to bench/RESULTS-load.md (overwritten). A measurement: it never fails on lag or
 * throughput; it exits non-zero only when something breaks or the consistency check fails.
 *
 *   npm run build && node bench/load.mjs
 *
 * Environment:
 *   LOAD_SECONDS=60      pgbench duration (-T)
 *   LOAD_SCALE=10        pgbench -i scale (-s)
 *   LOAD_CLIENTS=8       pgbench -c
 *   LOAD_THREADS=2       pgbench -j
 *   LOAD_SAMPLE_MS=500   sampling interval
 *   LOAD_PORT=5790       the primary's port; the standbys use the next three
 *   BENCH_PG_BIN=DIR     PostgreSQL's bin directory (default: /usr/lib/postgresql/<highest>/bin)
 *   BENCH_OUT=FILE       where to write the results (default bench/RESULTS-load.md)
 *   BENCH_KEEP=1         keep the scratch directory (/tmp/pgrepl-load-*) and the node logs
 *
 * Node ESM; needs the `pg` package from node_modules (npm ci). Run as root, as in a container: the
 * bundle drops to the postgres user itself.
 */
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { join, resolve } from 'node:path';
import {
  BENCH_DIR, cli, defineNode, describeMachine, findPgBin, flagEnv, gitDescribe, intEnv, killGroup, makeScratchDir, pgClient,
  postgresVersion, query, ready, requireBundleAndRoot, sleep, startNode, stopNode, waitFor,
} from './nodes.mjs';
import { refreshSummary } from './summary.mjs';

const OUT = resolve(process.env.BENCH_OUT || join(BENCH_DIR, 'RESULTS-load.md'));
const PASSWORD = 'load-password';
const TOKEN = 'load-token';

const SECONDS = intEnv('LOAD_SECONDS', 60);
const SCALE = intEnv('LOAD_SCALE', 10);
const CLIENTS = intEnv('LOAD_CLIENTS', 8);
const THREADS = intEnv('LOAD_THREADS', 2);
const SAMPLE_MS = intEnv('LOAD_SAMPLE_MS', 500, 50);
const BASE = intEnv('LOAD_PORT', 5790);
const KEEP = flagEnv('BENCH_KEEP', false);

const BIN = findPgBin();
const PGBENCH = existsSync(join(BIN, 'pgbench')) ? join(BIN, 'pgbench') : 'pgbench';
const say = (msg) => process.stdout.write(`[${new Date().toISOString().slice(11, 23)}] ${msg}\n`);
const notes = [];
const note = (msg) => {
  notes.push(msg);
  say(`NOTE: ${msg}`);
};

requireBundleAndRoot();

// ---------------------------------------------------------------- nodes (bench/nodes.mjs) and pgbench

const DIR = makeScratchDir('pgrepl-load-');

/** A node of this benchmark: its PGDATA in the scratch directory, named as its node name. */
const benchNode = (name, port, upstream) => defineNode({ name, port, upstream, pgdata: join(DIR, name), pgBin: BIN, password: PASSWORD, token: TOKEN });

async function streamingFrom(node, upstreamPort) {
  const r = (await query(node, 'SELECT status, sender_port FROM pg_stat_wal_receiver'))[0];
  return r?.status === 'streaming' && Number(r.sender_port) === upstreamPort;
}

function pgbench(args) {
  return new Promise((res, rej) => {
    const child = spawn(PGBENCH, ['-h', '127.0.0.1', '-p', String(a.port), '-U', 'postgres', ...args, 'postgres'], {
      env: { PATH: `${BIN}:/usr/bin:/bin`, PGPASSWORD: PASSWORD, LANG: 'C.UTF-8' }, stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (out += d));
    child.on('error', rej);
    child.on('exit', (code) => (code === 0 ? res(out) : rej(new Error(`pgbench ${args.join(' ')} exited ${code}:\n${out.slice(-3000)}`))));
  });
}

// ---------------------------------------------------------------- statistics and machine

function percentile(xs, p) {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((x, y) => x - y);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))];
}
const fmtBytes = (b) => (Number.isNaN(b) ? '-' : b < 1024 ? `${Math.round(b)} B` : b < 1 << 20 ? `${(b / 1024).toFixed(1)} kB` : `${(b / 2 ** 20).toFixed(2)} MB`);
const fmtS = (s) => (Number.isNaN(s) ? '-' : `${s.toFixed(3)} s`);

/** The machine (bench/nodes.mjs), the versions, and the commit the bundle was built from. */
function machine() {
  return {
    ...describeMachine(),
    postgres: postgresVersion(BIN),
    pgbench: execFileSync(PGBENCH, ['--version'], { encoding: 'utf8' }).trim(),
    node: process.version, git: gitDescribe() ?? 'unknown',
  };
}

// ---------------------------------------------------------------- the run

const a = benchNode('load_a', BASE, null);
const b = benchNode('load_b', BASE + 1, a);
const c = benchNode('load_c', BASE + 2, a);
const d = benchNode('load_d', BASE + 3, b);
const NODES = [a, b, c, d];
const STANDBYS = [b, c, d];
const ROLE = { load_a: 'primary', load_b: 'standby of load_a', load_c: 'standby of load_a', load_d: 'cascade: standby of load_b' };

const CONSISTENCY_SQL = `SELECT (SELECT sum(abalance) FROM pgbench_accounts)::text AS abalance,
  (SELECT sum(bbalance) FROM pgbench_branches)::text AS bbalance,
  (SELECT sum(tbalance) FROM pgbench_tellers)::text AS tbalance,
  (SELECT coalesce(sum(delta), 0) FROM pgbench_history)::text AS delta,
  (SELECT count(*) FROM pgbench_history)::text AS history`;

async function sample(samples, conns) {
  const t = Date.now();
  const statusCalls = STANDBYS.map(async (n) => {
    if (n.busy) {
      samples[n.name].skipped++;
      return;
    }
    n.busy = true;
    try {
      const t0 = Date.now();
      const r = await cli(n, ['status', '--json'], 10_000);
      const ms = Date.now() - t0;
      if (r.code !== 0) {
        samples[n.name].failures.push(`${r.code}: ${r.stderr.trim().split('\n').pop()}`);
        return;
      }
      const s = JSON.parse(r.stdout);
      samples[n.name].status.push({ t, bytes: s.lag?.bytes ?? NaN, seconds: s.lag?.seconds ?? NaN, upstream: s.upstream?.status, ms });
    } catch (err) {
      samples[n.name].failures.push(err.message);
    } finally {
      n.busy = false;
    }
  });
  // End to end: how far each standby's replay is behind the primary's WAL insert position.
  const e2e = (async () => {
    try {
      const [p, ...r] = await Promise.all([
        conns[a.name].query('SELECT pg_current_wal_lsn()::text AS lsn'),
        ...STANDBYS.map((n) => conns[n.name].query('SELECT pg_last_wal_replay_lsn()::text AS lsn, extract(epoch FROM now() - pg_last_xact_replay_timestamp())::float8 AS age')),
      ]);
      const primaryLsn = p.rows[0].lsn;
      const diffs = await conns[a.name].query(
        `SELECT ${STANDBYS.map((_, i) => `greatest(pg_wal_lsn_diff($1::pg_lsn, $${i + 2}::pg_lsn), 0)::float8 AS d${i}`).join(', ')}`,
        [primaryLsn, ...r.map((x) => x.rows[0].lsn)],
      );
      STANDBYS.forEach((n, i) => samples[n.name].e2e.push({ t, bytes: Number(diffs.rows[0][`d${i}`]), age: Number(r[i].rows[0].age) }));
    } catch (err) {
      for (const n of STANDBYS) samples[n.name].failures.push(`e2e: ${err.message}`);
    }
  })();
  await Promise.all([e2e]); // status calls run on; a slow one makes the next tick skip that node
  void statusCalls;
  return Promise.all(statusCalls);
}

async function caughtUp(primary, standbys) {
  const target = (await query(primary, 'SELECT pg_current_wal_lsn()::text AS lsn'))[0].lsn;
  for (const n of standbys) {
    const r = (await query(n, 'SELECT pg_wal_lsn_diff(pg_last_wal_replay_lsn(), $1::pg_lsn) >= 0 AS ok', [target]))[0];
    if (!r.ok) return false;
  }
  return true;
}

let exitCode = 0;
const report = { started: new Date().toISOString() };
try {
  report.machine = machine();
  report.load0 = os.loadavg().map((x) => x.toFixed(2)).join(' ');
  say(`scratch ${DIR}; ${report.machine.postgres}; ${report.machine.pgbench}; Node ${process.version}`);

  // -- the topology
  startNode(a);
  await ready(a);
  for (const n of [b, c]) startNode(n);
  for (const n of [b, c]) {
    await ready(n);
    await waitFor(`${n.name} streaming from ${n.upstream.name}`, () => streamingFrom(n, n.upstream.port), n);
  }
  startNode(d);
  await ready(d);
  await waitFor(`${d.name} streaming from ${b.name}`, () => streamingFrom(d, b.port), d);
  say('topology up: a -> b -> d, a -> c');

  // -- pgbench
  let t0 = Date.now();
  const initOut = await pgbench(['-i', '-s', String(SCALE), '-q']);
  report.initSeconds = (Date.now() - t0) / 1000;
  say(`pgbench -i -s ${SCALE}: ${report.initSeconds.toFixed(1)} s`);
  void initOut;
  t0 = Date.now();
  await waitFor('the standbys to replay the initialised tables', () => caughtUp(a, STANDBYS), undefined, 600_000);
  report.initCatchUpSeconds = (Date.now() - t0) / 1000;

  const samples = Object.fromEntries(STANDBYS.map((n) => [n.name, { status: [], e2e: [], failures: [], skipped: 0 }]));
  const conns = {};
  for (const n of NODES) {
    conns[n.name] = pgClient(n);
    conns[n.name].on('error', () => undefined);
    await conns[n.name].connect();
  }
  const lsnBefore = (await conns[a.name].query('SELECT pg_current_wal_lsn()::text AS lsn')).rows[0].lsn;
  say(`pgbench -c ${CLIENTS} -j ${THREADS} -T ${SECONDS}, sampling every ${SAMPLE_MS} ms`);
  let running = true;
  const pending = [];
  const bench = pgbench(['-c', String(CLIENTS), '-j', String(THREADS), '-T', String(SECONDS), '-P', '10']).finally(() => (running = false));
  const sampler = (async () => {
    while (running) {
      const tick = Date.now();
      pending.push(sample(samples, conns));
      await sleep(Math.max(0, SAMPLE_MS - (Date.now() - tick)));
    }
  })();
  const benchOut = await bench;
  await sampler;
  await Promise.all(pending);
  const lsnAfter = (await conns[a.name].query('SELECT pg_current_wal_lsn()::text AS lsn')).rows[0].lsn;
  report.walBytes = Number((await conns[a.name].query('SELECT pg_wal_lsn_diff($1::pg_lsn, $2::pg_lsn)::float8 AS d', [lsnAfter, lsnBefore])).rows[0].d);
  report.pgbench = benchOut;
  report.tps = /tps = ([\d.]+)/.exec(benchOut)?.[1];
  report.txns = /number of transactions actually processed: (\d+)/.exec(benchOut)?.[1];
  report.failedTxns = /number of failed transactions: (\d+)/.exec(benchOut)?.[1];
  report.samples = samples;
  say(`pgbench done: ${report.tps} tps, ${report.txns} transactions, ${fmtBytes(report.walBytes)} of WAL`);
  for (const n of NODES) await conns[n.name].end().catch(() => undefined);

  // -- after the load: catch up, read the primary's sums, kill it (a failover)
  t0 = Date.now();
  await waitFor('the standbys to catch up after pgbench', () => caughtUp(a, STANDBYS), undefined, 300_000);
  report.catchUpSeconds = (Date.now() - t0) / 1000;
  const sums = {};
  sums[a.name] = (await query(a, CONSISTENCY_SQL))[0];
  say(`primary before the kill: ${JSON.stringify(sums[a.name])}; standbys caught up in ${report.catchUpSeconds.toFixed(2)} s`);
  await killGroup(a);
  await stopNode(a);
  say('primary killed (SIGKILL to its process group)');

  const promoted = await cli(b, ['promote']);
  report.promote = promoted.stdout.trim() || promoted.stderr.trim();
  if (promoted.code !== 0 || !/^promoted: now a primary on timeline 2$/.test(promoted.stdout.trim())) {
    throw new Error(`pgrepl promote on ${b.name} exited ${promoted.code}: ${promoted.stdout}${promoted.stderr}`);
  }
  say(`${b.name}: ${report.promote}`);

  const followed = await cli(c, ['follow', `127.0.0.1:${b.port}`]);
  report.follow = followed.stdout.trim() || followed.stderr.trim();
  say(`${c.name}: pgrepl follow 127.0.0.1:${b.port} -> exit ${followed.code}: ${report.follow}`);
  if (followed.code !== 0) {
    // Not streaming (it had gone past the fork point) or refused: a restart of the node rewinds it.
    note(`pgrepl follow on ${c.name} exited ${followed.code} (${report.follow}); restarting it, as the message says`);
    await stopNode(c);
    c.upstream = b;
    startNode(c);
    await ready(c);
  }
  c.upstream = b;
  await waitFor(`${c.name} streaming from ${b.name}`, () => streamingFrom(c, b.port), c);
  await waitFor(`${d.name} streaming from ${b.name} on timeline 2`, async () =>
    (await streamingFrom(d, b.port)) && Number((await query(d, 'SELECT received_tli FROM pg_stat_wal_receiver'))[0]?.received_tli) === 2, d);
  // A write on the new primary that must reach both.
  await query(b, 'CREATE TABLE load_after_failover (x int); INSERT INTO load_after_failover VALUES (1)');
  await waitFor('the standbys to catch up with the new primary', () => caughtUp(b, [c, d]), undefined, 120_000);
  for (const n of [b, c, d]) sums[n.name] = (await query(n, CONSISTENCY_SQL))[0];
  report.sums = sums;
  report.statusAfter = {};
  for (const n of [b, c, d]) {
    const r = await cli(n, ['status']);
    report.statusAfter[n.name] = r.stdout.trim() || r.stderr.trim();
  }

  const ref = sums[a.name];
  const keys = Object.keys(ref);
  const mismatches = [];
  for (const n of [b, c, d]) for (const k of keys) if (sums[n.name][k] !== ref[k]) mismatches.push(`${n.name}.${k}=${sums[n.name][k]} (primary ${ref[k]})`);
  for (const n of NODES) {
    const s = sums[n.name];
    if (s.abalance !== s.delta || s.bbalance !== s.delta || s.tbalance !== s.delta) mismatches.push(`${n.name}: abalance ${s.abalance}, bbalance ${s.bbalance}, tbalance ${s.tbalance}, delta ${s.delta} differ`);
  }
  report.consistent = mismatches.length === 0;
  report.mismatches = mismatches;
  if (!report.consistent) exitCode = 1;
  say(report.consistent ? 'consistency: every node has the same sums, and abalance = bbalance = tbalance = sum(delta)' : `consistency FAILED: ${mismatches.join('; ')}`);
} catch (err) {
  exitCode = 1;
  report.error = err.stack || String(err);
  say(`FAILED: ${report.error}`);
  for (const n of NODES) if (n.log) say(`--- ${n.name} log (tail)\n${n.log.slice(-2000)}`);
} finally {
  for (const n of NODES) await stopNode(n).catch((err) => say(`stopping ${n.name}: ${err.message}`));
  if (KEEP) {
    for (const n of NODES) writeFileSync(join(DIR, `${n.name}.log`), n.log);
    say(`kept ${DIR}`);
  } else rmSync(DIR, { recursive: true, force: true });
}
report.load1 = os.loadavg().map((x) => x.toFixed(2)).join(' ');

// ---------------------------------------------------------------- the report

function writeReport() {
  const m = report.machine ?? {};
  const rows = [];
  const every = [];
  for (const n of STANDBYS) {
    const s = report.samples?.[n.name];
    if (!s) continue;
    const sb = s.status.map((x) => x.bytes);
    const ss = s.status.map((x) => x.seconds);
    const eb = s.e2e.map((x) => x.bytes);
    const ea = s.e2e.map((x) => x.age).filter((x) => Number.isFinite(x));
    rows.push(`| ${n.name} (${ROLE[n.name]}) | ${s.status.length} | ${fmtBytes(percentile(sb, 50))} / ${fmtBytes(percentile(sb, 99))} / ${fmtBytes(Math.max(...sb))} | ${fmtS(percentile(ss, 50))} / ${fmtS(percentile(ss, 99))} / ${fmtS(Math.max(...ss))} | ${s.e2e.length} | ${fmtBytes(percentile(eb, 50))} / ${fmtBytes(percentile(eb, 99))} / ${fmtBytes(Math.max(...eb))} | ${fmtS(percentile(ea, 50))} / ${fmtS(percentile(ea, 99))} |`);
    const ms = s.status.map((x) => x.ms);
    every.push(`| ${n.name} | ${s.status.length} | ${s.skipped} | ${s.failures.length} | ${percentile(ms, 50)} / ${percentile(ms, 99)} ms | ${s.status.filter((x) => x.upstream !== 'streaming').length} |`);
  }
  const sums = report.sums ?? {};
  const sumRows = Object.entries(sums).map(([name, s]) => `| ${name} | ${s.abalance} | ${s.bbalance} | ${s.tbalance} | ${s.delta} | ${s.history} |`);
  const failures = STANDBYS.flatMap((n) => (report.samples?.[n.name]?.failures ?? []).slice(0, 5).map((f) => `- ${n.name}: ${f}`));
  const text = `# Replication under load (pgbench), failover, consistency

Written by \`bench/load.mjs\` on ${report.started}.

**Machine:** ${m.cpus} CPUs (${m.model}), ${m.memGiB} GiB, ${m.kernel}, ${m.os}.
**Versions:** ${m.postgres}; ${m.pgbench}; Node ${m.node}; pgrepl ${m.git}.
**Load average** (1/5/15 min) at the start ${report.load0}, at the end ${report.load1}.

**The numbers are noisy.** The machine was busy while this ran: the project's full test suite
was running alongside (other PostgreSQL servers, ports 5701-5789), on ${m.cpus} CPUs shared by
four servers, pgbench and the sampler (which starts a Node process per standby per sample). Read
the lag as "what a loaded 2-CPU box does", not as a property of pgrepl: replication is
PostgreSQL's own streaming; pgrepl only sets it up.

## Setup

Four nodes through the bundle on 127.0.0.1 (differing only in PGDATA and PGPORT, as containers):
primary \`load_a\` (:${a.port}), standbys \`load_b\` (:${b.port}) and \`load_c\` (:${c.port}) of it, and
\`load_d\` (:${d.port}), a cascaded standby of \`load_b\`. Asynchronous replication with slots (the
defaults). \`pgbench -i -s ${SCALE}\` (${report.initSeconds?.toFixed(1)} s; the standbys had replayed it
${report.initCatchUpSeconds?.toFixed(1)} s later), then \`pgbench -c ${CLIENTS} -j ${THREADS} -T ${SECONDS}\`
(built-in TPC-B-like script): **${report.tps ?? '-'} tps**, ${report.txns ?? '-'} transactions${report.failedTxns ? ` (${report.failedTxns} failed)` : ''}, ${fmtBytes(report.walBytes ?? NaN)} of WAL.

While pgbench ran, every ${SAMPLE_MS} ms:

- **\`pgrepl status --json\`** was run for each standby with that node's environment (what an
  operator or a health check sees). Its \`lag\` is the standby's *own* backlog:
  \`pg_last_wal_receive_lsn() - pg_last_wal_replay_lsn()\` in bytes, and
  \`now() - pg_last_xact_replay_timestamp()\` in seconds when that backlog is not zero (else 0).
  It does not include WAL the standby has not received yet.
- **End to end**, over open connections: the primary's \`pg_current_wal_lsn()\` minus the
  standby's \`pg_last_wal_replay_lsn()\` (bytes), and \`now() - pg_last_xact_replay_timestamp()\`
  on the standby ("replay age": how old the last replayed commit is; with 8 busy clients it is
  close to the time lag). For the cascade this includes the hop through \`load_b\`. The
  primary's and the standbys' positions are read in parallel, not as one snapshot: a few tens of
  kB either way (about one tick's worth of WAL) is sampling skew; negative differences count as 0.

p50 / p99 / max (nearest rank):

| standby | status samples | \`status\` lag bytes | \`status\` lag seconds | e2e samples | end-to-end lag bytes | replay age p50 / p99 |
|---|---|---|---|---|---|---|
${rows.join('\n')}

The sampler itself:

| standby | status samples | ticks skipped (previous \`status\` still running) | failed calls | \`pgrepl status\` run time p50 / p99 | samples not \`streaming\` |
|---|---|---|---|---|---|
${every.join('\n')}

A tick whose previous \`pgrepl status\` call for a standby was still running skips that call (each
call starts Node, reads the configuration and connects); the end-to-end samples are taken on
every tick.
${failures.length ? `\nFailed calls (first 5 per node):\n\n${failures.join('\n')}\n` : ''}
## Failover and consistency

After pgbench ended, the standbys caught up with the primary in ${report.catchUpSeconds?.toFixed(2) ?? '-'} s. The
sums were read on the primary, then every process of the primary was killed (SIGKILL to its process
group, as a failed container); \`pgrepl promote\` on \`load_b\`: \`${report.promote ?? '-'}\`;
\`load_d\` (its cascade) followed timeline 2 by itself; \`pgrepl follow 127.0.0.1:${b.port}\` on \`load_c\`:
\`${report.follow ?? '-'}\`. A table created on the new primary reached both before the sums were read.

| node | sum(abalance) | sum(bbalance) | sum(tbalance) | sum(pgbench_history.delta) | history rows |
|---|---|---|---|---|---|
${sumRows.join('\n')}

(\`load_a\`: read before the kill.) **Consistency: ${report.consistent === undefined ? 'not checked (the run failed)' : report.consistent ? 'MATCHED** — the same sums and history count on every node, and sum(abalance) = sum(bbalance) = sum(tbalance) = sum(delta) on each' : `DID NOT MATCH**: ${report.mismatches.join('; ')}`}.
${report.statusAfter ? `\n\`pgrepl status\` after the failover:\n\n${Object.entries(report.statusAfter).map(([n, s]) => `${n}:\n\n\`\`\`\n${s}\n\`\`\``).join('\n\n')}\n` : ''}${notes.length ? `\nNotes:\n\n${notes.map((x) => `- ${x}`).join('\n')}\n` : ''}${report.error ? `\n**The run failed:**\n\n\`\`\`\n${report.error}\n\`\`\`\n` : ''}
pgbench's output:

\`\`\`
${(report.pgbench ?? '').trim()}
\`\`\`

Run it with \`npm run build && node bench/load.mjs\` (as root; \`LOAD_SECONDS\`, \`LOAD_SCALE\`,
\`LOAD_CLIENTS\`, \`LOAD_THREADS\`, \`LOAD_SAMPLE_MS\`, \`LOAD_PORT\` (default 5790, uses four ports),
\`BENCH_PG_BIN\`, \`BENCH_OUT\`, \`BENCH_KEEP\`). It never fails on lag or throughput; it exits
non-zero only when something breaks or the sums differ.
`;
  writeFileSync(OUT, text);
  if (!process.env.BENCH_OUT) refreshSummary(); // its headline in RESULTS.md
  say(`written to ${OUT}`);
  for (const r of rows) say(r);
}
try {
  writeReport();
} catch (err) {
  say(`writing the report failed: ${err.stack}`);
  exitCode = 1;
}
process.exit(exitCode);
