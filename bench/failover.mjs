#!/usr/bin/env node
/**
 * Failover benchmark (issue 11 part 7): pgrepl's HA agent and Patroni through the same scenarios,
 * on the same 3-member etcd, the same PostgreSQL and the same clients, in the same run, so that
 * each figure can be read side by side.
 *
 * A 3-member etcd (Debian's etcd-server 3.4) is started on 127.0.0.1:2401-2406, then for each
 * system under test (bench/systems-failover.mjs) and each of its configurations a 3-node cluster
 * is started on it. A writer (bench/writer-failover.mjs) runs autocommit INSERTs of increasing ids
 * the whole time, always on the node whose HTTP API answers 200 to GET /primary, reconnecting after
 * any error; a probe per node writes to that node directly. Scenarios, each run --runs times:
 *
 * - failover: SIGKILL to every process of the leader (Patroni and its postgres, or the agent and
 *   its postgres): time from the kill to the first write acknowledged by another node;
 * - switchover: a planned switchover (Patroni: POST /switchover; pgrepl: `pgrepl switchover`);
 * - stop: a clean stop of the leader (Patroni: SIGTERM; pgrepl: SIGINT, the image's STOPSIGNAL).
 *
 * After each run: acknowledged ids missing on the new leader are lost writes; each node's span of
 * acknowledged writes (writer and probes) must not overlap another's; then the old leader is
 * started again and the cluster must be whole again (one primary, two streaming standbys, one of
 * them synchronous in sync mode) before the next run.
 *
 *   npm run bench:failover -- [--runs N] [--systems patroni,pgrepl] [--configs defaults,min-ttl,tuned,async]
 *                             [--scenarios failover,switchover,stop] [--max-minutes M] [--keep]
 *
 * Environment: PATRONI_BIN (default `patroni` on PATH), BENCH_PG_BIN (default
 * /usr/lib/postgresql/15/bin), BENCH_ETCD (default `etcd` on PATH), BENCH_OUT (default
 * bench/RESULTS-failover.md). Run as root: Patroni is run as the postgres user, the bundle drops to
 * it itself. Ports: 2401-2406 (etcd), 5901-5916 (postgres and the HTTP APIs).
 *
 * This is a measurement: it fails only when something breaks, never on a time or a count.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { join, resolve } from 'node:path';
import { startEtcd, findEtcd } from './etcd-failover.mjs';
import { BENCH_DIR, describeMachine, findPgBin, gitDescribe, makeScratchDir, median, postgresVersion, sleep } from './nodes.mjs';
import { refreshSummary } from './summary.mjs';
import { patroniSystem, pgreplSystem } from './systems-failover.mjs';
import { TABLES, handovers, overlaps, primaries, sql, startClients } from './writer-failover.mjs';

const say = (msg) => process.stdout.write(`[${new Date().toISOString().slice(11, 19)}] ${msg}\n`);

// ---------------------------------------------------------------- options

function options(argv) {
  const o = { runs: 10, systems: ['patroni', 'pgrepl'], configs: ['defaults', 'min-ttl', 'tuned'], scenarios: ['failover', 'switchover', 'stop'], maxMinutes: 150, keep: false };
  const list = (v) => v.split(',').map((s) => s.trim()).filter(Boolean);
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const value = () => {
      const v = argv[++i];
      if (v === undefined) throw new Error(`${a}: a value is missing`);
      return v;
    };
    if (a === '--runs' || a === '--max-minutes') {
      const n = Number(value());
      if (!Number.isInteger(n) || n < 1) throw new Error(`${a} ${argv[i]}: expected a whole number >= 1`);
      o[a === '--runs' ? 'runs' : 'maxMinutes'] = n;
    } else if (a === '--systems') o.systems = list(value());
    else if (a === '--configs') o.configs = list(value());
    else if (a === '--scenarios') o.scenarios = list(value());
    else if (a === '--keep') o.keep = true;
    else throw new Error(`unknown argument ${a}: see the comment at the top of bench/failover.mjs`);
  }
  for (const s of o.scenarios) if (!['failover', 'switchover', 'stop'].includes(s)) throw new Error(`--scenarios: ${s} is none of failover, switchover, stop`);
  return o;
}

/** Bad input or a missing prerequisite: one line saying what to do, no stack. */
function refuse(fn) {
  try {
    return fn();
  } catch (err) {
    process.stderr.write(`bench/failover.mjs: ${err.message}\n`);
    process.exit(2);
  }
}

const opts = refuse(() => options(process.argv.slice(2)));
const OUT = resolve(process.env.BENCH_OUT || join(BENCH_DIR, 'RESULTS-failover.md'));
const PG_BIN = process.env.BENCH_PG_BIN ? resolve(process.env.BENCH_PG_BIN) : existsSync('/usr/lib/postgresql/15/bin/postgres') ? '/usr/lib/postgresql/15/bin' : findPgBin();
const WRITE_INTERVAL_MS = 5; // the writer's pause between acknowledged INSERTs: <= 200 writes/s, time resolution 5 ms
const HEALTHY_TIMEOUT = 180_000;
const FIRST_WRITE_TIMEOUT = 180_000;
const started = Date.now();
/** The source the bundle was built from (the tree may move on during a long run). */
const SOURCE_AT_START = gitDescribe() ?? 'unknown';
const outOfTime = () => Date.now() - started > opts.maxMinutes * 60_000;

refuse(() => {
  if (process.getuid?.() !== 0) throw new Error('run as root: Patroni is started as the postgres user, the bundle drops to it itself');
});
const postgresId = (flag) => refuse(() => {
  try {
    return Number(execFileSync('id', [flag, 'postgres'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim());
  } catch {
    throw new Error('no postgres user: install PostgreSQL (Debian: apt-get install -y postgresql-15), whose package creates it');
  }
});
const uid = postgresId('-u');
const gid = postgresId('-g');
const etcdInfo = refuse(findEtcd); // says what to install when it is missing

// ---------------------------------------------------------------- the scenario code (every system)

/** Until exactly one node answers /primary and it has two streaming standbys (one synchronous in sync mode), and the system agrees. */
async function waitHealthy(cluster, sync, timeoutMs = HEALTHY_TIMEOUT) {
  const deadline = Date.now() + timeoutMs;
  let why = '';
  for (;;) {
    try {
      const p = await primaries(cluster.nodes);
      if (p.length !== 1) why = `${p.length} nodes answer /primary`;
      else {
        const leader = cluster.nodes.find((n) => n.name === p[0]);
        const rows = await sql(leader, cluster.password, "SELECT sync_state FROM pg_stat_replication WHERE state = 'streaming'");
        if (rows.length !== cluster.nodes.length - 1) why = `${rows.length} streaming standbys on ${leader.name}`;
        else if (sync && !rows.some((r) => ['sync', 'quorum'].includes(r.sync_state))) why = `no synchronous standby on ${leader.name}`;
        else if (cluster.healthy && !(await cluster.healthy())) why = 'the system does not report itself whole yet';
        else return leader.name;
      }
    } catch (err) {
      why = err.message;
    }
    const failed = cluster.failed?.();
    if (failed) throw new Error(`the cluster is not whole: ${failed}`);
    if (Date.now() > deadline) throw new Error(`the cluster was not whole within ${timeoutMs / 1000} s: ${why}`);
    await sleep(250);
  }
}

/** After the old leader was started again: whole again, or (Patroni) re-cloned once if it could not rejoin. */
async function restore(cluster, config, oldLeader, run) {
  try {
    await waitHealthy(cluster, config.sync);
  } catch (err) {
    if (!cluster.reclone) throw err;
    say(`  ${oldLeader} did not rejoin (${err.message}); its data is removed and it is cloned again\n${cluster.logTail(oldLeader)}`);
    run.recloned = true;
    await cluster.reclone(oldLeader);
    await waitHealthy(cluster, config.sync, 300_000);
  }
}

/** The acknowledged ids (of acks) that the node does not have. */
async function missingOn(cluster, nodeName, acks) {
  const ids = acks.filter((a) => a.id !== undefined).map((a) => a.id);
  if (ids.length === 0) return [];
  const node = cluster.nodes.find((n) => n.name === nodeName);
  const rows = await sql(node, cluster.password, 'SELECT x FROM unnest($1::bigint[]) x WHERE NOT EXISTS (SELECT 1 FROM bench_writes w WHERE w.id = x)', [ids]);
  return rows.map((r) => Number(r.x));
}

async function oneRun(cluster, clients, config, scenario, checkedUpTo) {
  const leader = await waitHealthy(cluster, config.sync);
  const tStart = performance.now();
  await sleep(2000 + Math.random() * 3000); // writes before the event; a random phase against the systems' loops
  const tAction = performance.now();
  let action;
  if (scenario === 'failover') action = cluster.kill(leader).then(() => ({ ok: true }));
  else if (scenario === 'stop') action = cluster.stop(leader).then(() => ({ ok: true }));
  else action = cluster.switchover(leader);
  const run = { scenario, leader };
  let first = null;
  while (!(first = clients.firstAckElsewhere(tAction, leader))) {
    if (performance.now() - tAction > FIRST_WRITE_TIMEOUT) throw new Error(`${scenario}: no write acknowledged by another node than ${leader} within ${FIRST_WRITE_TIMEOUT / 1000} s (writer: ${clients.state.lastError})`);
    await sleep(10);
  }
  run.seconds = (first.t - tAction) / 1000;
  run.newLeader = first.node;
  const done = await action;
  if (!done.ok) run.note = `${scenario} answered ${done.detail}`;
  await sleep(1000);
  const tEnd = performance.now();
  const acked = clients.acks.filter((a) => a.t >= checkedUpTo && a.t < tEnd);
  run.lost = (await missingOn(cluster, run.newLeader, acked)).length;
  run.acked = acked.filter((a) => a.id !== undefined).length;
  run.overlap = overlaps(clients.acks, tStart, tEnd);
  if (scenario !== 'switchover') await cluster.restart(leader);
  await restore(cluster, config, leader, run);
  return { run, checkedUpTo: tEnd };
}

// ---------------------------------------------------------------- one system, one configuration

async function runConfig(system, version, config, etcd, scratch) {
  const scenarios = config.scenarios.filter((s) => opts.scenarios.includes(s));
  const rows = scenarios.map((scenario) => ({ system: system.label, version, config, scenario, runs: [], skipped: 0, error: null }));
  if (rows.length === 0) return rows;
  const dir = join(scratch, `${system.id}-${config.id}`);
  say(`${system.label} ${version}, ${config.id} (TTL ${config.ttlNote}${config.sync ? ', synchronous' : ''}): starting 3 nodes`);
  const cluster = await system.start({ dir, etcd, config });
  let clients;
  try {
    const leader = await waitHealthy(cluster, config.sync, 300_000);
    for (const t of TABLES) await sql(cluster.nodes.find((n) => n.name === leader), cluster.password, t);
    clients = startClients({ nodes: cluster.nodes, password: cluster.password, writeIntervalMs: WRITE_INTERVAL_MS });
    let checkedUpTo = performance.now();
    for (const row of rows) {
      for (let i = 1; i <= opts.runs; i++) {
        if (outOfTime()) {
          row.skipped = opts.runs - i + 1;
          break;
        }
        try {
          const r = await oneRun(cluster, clients, config, row.scenario, checkedUpTo);
          checkedUpTo = r.checkedUpTo;
          row.runs.push(r.run);
          say(`  ${row.scenario} ${i}/${opts.runs}: ${r.run.leader} -> ${r.run.newLeader} in ${r.run.seconds.toFixed(2)} s, ${r.run.acked} acknowledged, ${r.run.lost} lost${r.run.overlap ? `, OVERLAP: ${r.run.overlap}` : ''}${r.run.recloned ? ', old leader re-cloned' : ''}${r.run.note ? ` (${r.run.note})` : ''}`);
        } catch (err) {
          row.error = err.message;
          say(`  ${row.scenario} ${i}/${opts.runs} failed: ${err.message}`);
          for (const n of cluster.nodes) say(`  --- ${n.name}:\n${cluster.logTail(n.name)}`);
          throw err;
        }
      }
    }
  } catch (err) {
    const row = rows.find((r) => r.error) ?? rows.find((r) => r.runs.length < opts.runs) ?? rows[0];
    row.error ??= err.message;
  } finally {
    await clients?.stop();
    if (clients) {
      // Over the whole configuration, every change of the node acknowledging writes must be one of the runs' handovers.
      const moved = handovers(clients.acks);
      const done = rows.reduce((n, r) => n + r.runs.length, 0);
      wholeRuns.push(`${system.label} ${config.id}: ${clients.acks.length} acknowledged writes (writer and probes) moved between nodes ${moved} time(s) for ${done} run(s)${moved > done ? ': **some node accepted writes again after another had taken over (interleaving)**' : ': never back and forth'}`);
    }
    say(`  stopping ${system.label}`);
    await cluster.close();
  }
  return rows;
}

// ---------------------------------------------------------------- the report

const fmt = (s) => (Number.isFinite(s) ? s.toFixed(1) : '-');

function report({ rows, skippedSystems, etcdVersion, pgVersion, machine, load0, load1, minutes }) {
  const table = rows.map((r) => {
    const secs = r.runs.map((x) => x.seconds);
    const lost = r.runs.map((x) => x.lost);
    const overlap = r.runs.filter((x) => x.overlap).length;
    const runs = `${r.runs.length}${r.skipped ? ` (${r.skipped} not run: time budget)` : ''}${r.error ? ' (stopped: see below)' : ''}`;
    return `| ${r.scenario} | ${r.system} | ${r.version} | ${r.config.ttlNote} | ${runs} | ${fmt(median(secs))} | ${fmt(secs.length ? Math.max(...secs) : NaN)} | ${lost.length ? lost.reduce((a, b) => a + b, 0) : '-'} | ${r.runs.length ? overlap : '-'} |`;
  });
  for (const s of skippedSystems) table.push(`| all | ${s.label} | ${s.why} | - | 0 | - | - | - | - |`);

  const sideBySide = [];
  for (const scenario of opts.scenarios) {
    for (const [pc, rc] of [['defaults', 'defaults'], ['min-ttl', 'tuned'], ['async', 'async']]) {
      const p = rows.find((r) => r.system === 'Patroni' && r.config.id === pc && r.scenario === scenario && r.runs.length);
      const q = rows.find((r) => r.system === 'pgrepl' && r.config.id === rc && r.scenario === scenario && r.runs.length);
      if (!p && !q) continue;
      const pm = p ? median(p.runs.map((x) => x.seconds)) : NaN;
      const qm = q ? median(q.runs.map((x) => x.seconds)) : NaN;
      const pgreplCell = q ? `${fmt(qm)} s (TTL ${q.config.ttlNote})` : skippedSystems.find((s) => s.id === 'pgrepl')?.why ?? 'not run';
      sideBySide.push(`| ${scenario} | ${p ? `${fmt(pm)} s (TTL ${p.config.ttlNote})` : 'not run'} | ${pgreplCell} | ${p && q ? `${(qm / pm).toFixed(2)}` : '-'} |`);
    }
  }

  const every = rows.flatMap((r) => r.runs.map((x, i) => `| ${r.scenario} | ${r.system} | ${r.config.ttlNote} | ${i + 1} | ${x.leader} -> ${x.newLeader} | ${x.seconds.toFixed(2)} | ${x.acked} | ${x.lost} | ${x.overlap || 'none'} | ${[x.recloned ? 'old leader did not rejoin: re-cloned' : '', x.note ?? ''].filter(Boolean).join('; ')} |`));
  const errors = rows.filter((r) => r.error).map((r) => `- ${r.system} ${r.config.id} ${r.scenario}: ${r.error}`);
  const shortRuns = rows.filter((r) => r.runs.length < opts.runs);
  const patroni = rows.find((r) => r.system === 'Patroni');
  const pgreplSkip = skippedSystems.find((s) => s.id === 'pgrepl');
  const target = pgreplSkip
    ? `Target: pgrepl failover <= 12 s median at its defaults (TTL 10 s), <= 8 s at TTL 6 s, switchover and clean stop <= 2 s, 0 lost in sync mode: not measured, pgrepl ${pgreplSkip.why}.`
    : 'Target: pgrepl failover <= 12 s median at its defaults (TTL 10 s), <= 8 s at TTL 6 s, switchover and clean stop <= 2 s, 0 lost in sync mode: compare the rows above.';

  return `# Failover: pgrepl and Patroni, side by side

Written by \`bench/failover.mjs\` (\`npm run bench:failover -- --runs ${opts.runs}${opts.configs.join(',') !== 'defaults,min-ttl,tuned' ? ` --configs ${opts.configs.join(',')}` : ''}${opts.scenarios.join(',') !== 'failover,switchover,stop' ? ` --scenarios ${opts.scenarios.join(',')}` : ''}\`) on ${new Date().toISOString()}, ${minutes} min; ${machine.cpus} CPUs, load ${load0} at the start, ${load1} at the end; ${pgVersion}; etcd ${etcdVersion} (3 members on 127.0.0.1); Node ${process.version}; source ${SOURCE_AT_START} (when the run started; the bundle was built from it).

Times in seconds from the event (SIGKILL of the leader's processes, the switchover request, the
clean stop) to the first write acknowledged by another node, found through \`GET /primary\`. Lost:
acknowledged writes missing on the new leader, all runs added up (must be 0 in sync mode). Overlap:
runs in which two nodes accepted writes at overlapping times (must be 0).

| scenario | system | version | TTL (s) | runs | median (s) | max (s) | lost | overlap |
|---|---|---|---|---|---|---|---|---|
${table.join('\n')}

${target}

## Side by side (median; ratio pgrepl / Patroni)

| scenario | Patroni | pgrepl | ratio |
|---|---|---|---|
${sideBySide.join('\n') || '| - | - | - | - |'}

## This run

- Machine: ${machine.cpus} CPU(s), ${machine.model}${machine.mhz ? ` (${Math.round(Number(machine.mhz))} MHz)` : ''}; ${machine.memGiB} GiB memory; ${machine.kernel}; ${machine.os}
- PostgreSQL: ${pgVersion} (${PG_BIN}); etcd ${etcdVersion}: 3 members, client ports 2401, 2403, 2405, data in a scratch directory
- Patroni: ${patroni ? `${patroni.version} (${process.env.PATRONI_BIN || 'patroni on PATH'}), DCS etcd3, REST API on 127.0.0.1:5911-5913, postgres on 5901-5903; \`synchronous_mode: true\` except the async row; \`use_pg_rewind: true\` (so that the killed leader can rejoin; off by Patroni's default); everything else Patroni's defaults: ttl 30, loop_wait 10, retry_timeout 10 (the minimum-TTL row: ttl 20, its documented minimum, loop_wait 10 and retry_timeout 5, to keep its documented rule loop_wait + 2 x retry_timeout <= ttl, which 3.0.2 does not enforce)` : skippedSystems.find((s) => s.id === 'patroni')?.why ?? 'not run'}
- pgrepl: ${pgreplSkip ? `${pgreplSkip.why}${pgreplSkip.detail ? ` (${pgreplSkip.detail})` : ''}; skipped, nothing measured. When the agent lands, the same scenarios start \`node dist/pgrepl.cjs postgres\` per node with SPEC §7's test contract (\`PGREPL_ETCD_ENDPOINTS\`, \`PGREPL_CLUSTER\`, \`PGREPL_NODE_NAME\`, \`PGREPL_CONNECT_ADDRESS\`, \`PGREPL_API_LISTEN\`, \`PGREPL_SYNC_STANDBYS=1\`), TTL 10 s (its default) and 6 s (tuned)` : `${rows.find((r) => r.system === 'pgrepl')?.version}, \`node dist/pgrepl.cjs postgres\` in HA mode, postgres on 5904-5906, agent API on 5914-5916, \`PGREPL_SYNC_STANDBYS=1\` except the async row`}
- Clients: one writer (autocommit INSERTs of increasing ids, one at a time, ${WRITE_INTERVAL_MS} ms apart, reconnecting to whichever node answers \`GET /primary\` 200, polled every ~50 ms), and one probe per node writing to it directly every 50 ms
- Each run: 2-5 s of writes (random, so the event falls at a random phase of the systems' loops), the event, the first write acknowledged elsewhere, 1 s more; then the old leader is started again (not after a switchover) and the cluster must be whole (one \`/primary\`, two streaming standbys, one synchronous in sync mode, the system's own view agreeing) before the next run
${shortRuns.length ? `- Fewer runs than asked (${opts.runs}) in: ${shortRuns.map((r) => `${r.system} ${r.config.id} ${r.scenario} (${r.runs.length})`).join(', ')}${opts.maxMinutes ? ` (time budget ${opts.maxMinutes} min)` : ''}` : `- Every row: ${opts.runs} runs`}
${wholeRuns.map((w) => `- Whole run, ${w}`).join('\n')}
${errors.length ? `\n## Errors\n\n${errors.join('\n')}\n` : ''}
## Every run

| scenario | system | TTL (s) | run | leader -> new | seconds | acknowledged | lost | overlap | note |
|---|---|---|---|---|---|---|---|---|---|
${every.join('\n')}

This is a measurement, not a test: it fails only when something breaks. The guarantees (no
acknowledged write lost in sync mode, never two writable nodes) are asserted by the HA tests.
`;
}

// ---------------------------------------------------------------- main

const load0 = os.loadavg()[0].toFixed(2);
const pgVersion = postgresVersion(PG_BIN);
const systems = [patroniSystem({ pgBin: PG_BIN, uid, gid }), pgreplSystem({ pgBin: PG_BIN })].filter((s) => opts.systems.includes(s.id));
const runnable = [];
const skippedSystems = [];
for (const s of systems) {
  const a = s.available();
  if (a.ok) runnable.push({ system: s, version: a.version });
  else {
    skippedSystems.push({ id: s.id, label: s.label, why: a.why, detail: a.detail });
    say(`${s.label}: ${a.why}${a.detail ? ` (${a.detail})` : ''}; skipped`);
  }
}

const scratch = makeScratchDir('pgrepl-bench-failover-');
let etcd;
let interrupted = false;
const cleanUp = async () => {
  await etcd?.stop();
  if (!opts.keep) rmSync(scratch, { recursive: true, force: true });
};
for (const sig of ['SIGINT', 'SIGTERM']) {
  process.once(sig, () => {
    // Nodes are closed by runConfig's finally once their current wait fails; give it no new work.
    interrupted = true;
    opts.maxMinutes = 0;
    say(`${sig}: stopping after the current run`);
  });
}

const rows = [];
const wholeRuns = [];
try {
  say(`etcd ${etcdInfo.version}: starting 3 members on 127.0.0.1:2401-2406 (scratch ${scratch})`);
  etcd = await startEtcd({ dir: join(scratch, 'etcd') });
  for (const { system, version } of runnable) {
    for (const config of system.configs.filter((c) => opts.configs.includes(c.id))) {
      if (outOfTime()) break;
      rows.push(...(await runConfig(system, version, config, etcd, scratch)));
    }
  }
} finally {
  await cleanUp();
}

const minutes = ((Date.now() - started) / 60_000).toFixed(1);
const text = report({ rows, skippedSystems, etcdVersion: etcdInfo.version, pgVersion, machine: describeMachine(), load0, load1: os.loadavg()[0].toFixed(2), minutes });
if (interrupted) say('interrupted: the report is not written');
else {
  writeFileSync(OUT, text);
  if (!process.env.BENCH_OUT) refreshSummary();
  say(`written to ${OUT}`);
  process.stdout.write(text.split('\n## Side by side')[0]);
}
