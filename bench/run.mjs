#!/usr/bin/env node
/**
 * Start-up benchmark of the bundle (dist/pgrepl.cjs) against bare PostgreSQL on the same binaries.
 *
 *   1. first boot to ready: the bundle on an empty PGDATA (initdb + bootstrap with the six gestalt
 *      databases + hand-over) vs what it replaces, done by hand: `initdb`, `pg_ctl start`, the same
 *      six `CREATE DATABASE` with psql, serving; the ratio is the median of the paired ratios.
 *   2. restart to ready: the bundle on a cleanly shut down primary's PGDATA vs bare `postgres`
 *      started directly on a cleanly shut down cluster (what the bundle hands over to); the
 *      overhead is the median of the paired differences (each bundle run minus the bare run
 *      after it).
 *   3. archive-wal: `pgrepl archive-wal` (PostgreSQL's archive_command) of one 16 MB segment after
 *      another, per segment and as segments per second, next to `node -e 0` (Node's own start).
 *
 * "Ready" = the server accepts a TCP connection on 127.0.0.1 and answers `SELECT 1` (pg), polled
 * every ~10 ms from the moment the first process is spawned. Medians of BENCH_RUNS runs (default
 * 5), after BENCH_WARMUP discarded warm-up runs (default 1); bundle and bare runs are interleaved.
 * Results go to bench/RESULTS.md (overwritten). This is a measurement: it never fails on time,
 * only when something breaks.
 *
 * Environment:
 *   BENCH_RUNS=5          timed runs per case
 *   BENCH_WARMUP=1        discarded warm-up runs per case
 *   BENCH_SEGMENTS=20     WAL segments archived per archive-wal case
 *   BENCH_NODE24=PATH     also run the bundle under this Node binary (e.g. Node 24: execve hand-over)
 *   BENCH_PG_BIN=DIR      PostgreSQL's bin directory (default: /usr/lib/postgresql/<highest>/bin)
 *   BENCH_PORT=N          port to use (default: the first free one in 5790-5799)
 *   BENCH_PROBE=query     readiness probe: query (in-process pg client, SELECT 1) or pg_isready
 *   BENCH_DEBUG=1         run the bundle with PGREPL_DEBUG=1 (per-step timeline); 0 to turn off
 *   BENCH_KEEP=1          keep the scratch directory (/tmp/pgrepl-bench-*) and its logs
 *   BENCH_INHERIT_ENV=1   give the children our environment, not a minimal container-like one
 *   BENCH_COMPILE_CACHE=1 a Node with a compile cache (>= 22.1) runs the bundle with NODE_COMPILE_CACHE,
 *                         primed by `pgrepl help` as root, as the image does (Dockerfile); 0: without
 *   BENCH_OUT=FILE        where to write the results (default bench/RESULTS.md)
 *
 * Plain Node ESM; the probe uses `pg` (npm ci), loaded before anything is timed. Run as root (as
 * in a container): the bundle drops to the postgres user itself; the bare commands are run as
 * postgres (spawn uid/gid).
 */
import { spawn, execFileSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import {
  chmodSync, chownSync, closeSync, existsSync, mkdirSync, openSync, readdirSync, readFileSync, rmSync, writeFileSync,
} from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import { join, resolve } from 'node:path';
import { performance } from 'node:perf_hooks';
import {
  BENCH_DIR, BUNDLE, describeMachine, findPgBin, flagEnv, gitDescribe, intEnv, loadPg, makeScratchDir, median, pgClient,
  postgresVersion, readOrEmpty, sleep,
} from './nodes.mjs';
import { refreshSummary } from './summary.mjs';

const OUT = resolve(process.env.BENCH_OUT || join(BENCH_DIR, 'RESULTS.md'));

const TARGET_RESTART_OVERHEAD_MS = 80;
const TARGET_ARCHIVE_SEGMENT_MS = 100;
const SEGMENT_BYTES = 16 * 1024 * 1024;
const TARGET_FIRST_BOOT_RATIO = 1.0;
/**
 * The databases a first boot creates at the defaults (src/config/env.ts, SPEC.md: the gestalt
 * databases, owned by and granted to POSTGRES_USER, here postgres). The bare first boot creates
 * the same with psql; a bundle that logs another list is noted in the report.
 */
const GESTALT_DATABASES = ['gestalt-security', 'gestalt-meta', 'gestalt-lambda', 'gestalt-laser', 'gestalt-apigateway', 'gestalt-kong'];
const POLL_MS = 10;
const READY_TIMEOUT_MS = 120_000;
const STOP_TIMEOUT_MS = 60_000;
const PASSWORD = 'bench-password';
const TOKEN = 'bench-token';

const RUNS = intEnv('BENCH_RUNS', 5, 1);
const WARMUP = intEnv('BENCH_WARMUP', 1, 0);
const SEGMENTS = intEnv('BENCH_SEGMENTS', 20, 1);
const PROBE = (process.env.BENCH_PROBE || 'query').trim();
const DEBUG = flagEnv('BENCH_DEBUG', true);
const KEEP = flagEnv('BENCH_KEEP', false);
const INHERIT_ENV = flagEnv('BENCH_INHERIT_ENV', false);
const COMPILE_CACHE = flagEnv('BENCH_COMPILE_CACHE', true);
if (!['query', 'pg_isready'].includes(PROBE)) throw new Error(`BENCH_PROBE=${PROBE}: expected query or pg_isready`);

const say = (msg) => process.stdout.write(msg + '\n');
const notes = []; // anomalies worth reporting, in RESULTS.md too
const note = (msg) => {
  if (notes.includes(msg)) return;
  notes.push(msg);
  say(`  NOTE: ${msg}`);
};

// ---------------------------------------------------------------- environment

function lookupPasswd(name) {
  for (const line of readFileSync('/etc/passwd', 'utf8').split('\n')) {
    const f = line.split(':');
    if (f[0] === name && f.length >= 7) return { name, uid: Number(f[2]), gid: Number(f[3]) };
  }
  return undefined;
}

/**
 * The environment every child gets: a minimal, container-like one (PATH with PostgreSQL's bin
 * first, HOME, LANG, TZ), so the developer's shell does not leak in. NODE_EXTRA_CA_CERTS alone,
 * for instance, costs Node 20 ~50 ms at start-up. BENCH_INHERIT_ENV=1 passes ours through instead
 * (minus PG..., POSTGRES_..., PGREPL_..., npm_... and NODE_OPTIONS).
 */
function childEnv(pgBin) {
  const path = `${pgBin}:${process.env.PATH || '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'}`;
  if (!INHERIT_ENV) {
    const env = { PATH: path, HOME: process.env.HOME || '/root', LANG: process.env.LANG || 'C.UTF-8' };
    if (process.env.TZ) env.TZ = process.env.TZ;
    return env;
  }
  const env = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (/^(PG|POSTGRES_|PGREPL_|npm_)/.test(k) || k === 'NODE_OPTIONS') continue;
    env[k] = v;
  }
  env.PATH = path;
  return env;
}

async function portIsFree(port) {
  for (const dir of ['/var/run/postgresql', '/run/postgresql', '/tmp']) {
    if (existsSync(join(dir, `.s.PGSQL.${port}.lock`)) || existsSync(join(dir, `.s.PGSQL.${port}`))) return false;
  }
  for (const host of ['0.0.0.0', '127.0.0.1']) {
    const ok = await new Promise((res) => {
      const srv = net.createServer();
      srv.once('error', () => res(false));
      srv.listen({ port, host, exclusive: true }, () => srv.close(() => res(true)));
    });
    if (!ok) return false;
  }
  return true;
}

async function pickPort() {
  if (process.env.BENCH_PORT) {
    const p = intEnv('BENCH_PORT', 0, 1);
    if (!(await portIsFree(p))) throw new Error(`BENCH_PORT=${p} is in use`);
    return p;
  }
  for (let p = 5790; p <= 5799; p++) if (await portIsFree(p)) return p;
  throw new Error('no free port in 5790-5799: set BENCH_PORT');
}

/** The machine (bench/nodes.mjs), the CPU's clock next to its model, and the file system of the scratch directory. */
function machineInfo(scratch) {
  const { mhz, ...m } = describeMachine();
  return { ...m, model: mhz ? `${m.model} (${Math.round(Number(mhz))} MHz)` : m.model, fs: filesystemOf(scratch) };
}

/** The mount (and its type) holding `path`, from /proc/mounts: fsync cost depends on it. */
function filesystemOf(path) {
  let best;
  for (const line of readOrEmpty('/proc/mounts').split('\n')) {
    const [dev, mnt, type] = line.split(' ');
    if (!mnt) continue;
    const m = mnt.replace(/\\040/g, ' ');
    if ((path === m || path.startsWith(m.endsWith('/') ? m : m + '/')) && (!best || m.length > best.mnt.length)) {
      best = { dev, mnt: m, type };
    }
  }
  return best ? `${best.type} (${best.dev} on ${best.mnt})` : 'unknown';
}

// ---------------------------------------------------------------- readiness probe

/**
 * One attempt: connect to 127.0.0.1:port as postgres (pg: any authentication the server asks
 * for), run SELECT 1. Resolves true when the answer came back; false on refusal, on "the database
 * system is starting up", or on any other error (reason in .lastError).
 */
const probeState = { lastError: '' };
async function queryProbe(port, timeoutMs = 2000) {
  const c = pgClient({ port, password: PASSWORD }, { connectionTimeoutMillis: timeoutMs, query_timeout: timeoutMs, application_name: 'pgrepl-bench' });
  c.on('error', () => undefined); // a server going away after connect: the query fails too
  try {
    await c.connect();
    await c.query('SELECT 1');
    return true;
  } catch (err) {
    probeState.lastError = err.code ? `${err.code} ${err.message}` : err.message;
    return false;
  } finally {
    await c.end().catch(() => undefined);
  }
}

function pgIsReadyProbe(ctx) {
  return new Promise((res) => {
    const child = spawn(join(ctx.pgBin, 'pg_isready'), ['-h', '127.0.0.1', '-p', String(ctx.port), '-U', 'postgres', '-d', 'postgres', '-q'], {
      stdio: 'ignore',
      env: ctx.env,
    });
    child.on('error', (err) => {
      probeState.lastError = err.message;
      res(false);
    });
    child.on('exit', (code) => {
      if (code !== 0) probeState.lastError = `pg_isready exit ${code}`;
      res(code === 0);
    });
  });
}

/** Polls until ready; returns performance.now() of the first success. `alive()` -> error text or undefined. */
async function waitReady(ctx, alive) {
  const deadline = performance.now() + READY_TIMEOUT_MS;
  for (;;) {
    const ok = PROBE === 'pg_isready' ? await pgIsReadyProbe(ctx) : await queryProbe(ctx.port);
    if (ok) return performance.now();
    const dead = alive();
    if (dead) throw new Error(`${dead} before the server was ready (last probe: ${probeState.lastError})`);
    if (performance.now() > deadline) throw new Error(`not ready after ${READY_TIMEOUT_MS} ms (last probe: ${probeState.lastError})`);
    await sleep(POLL_MS);
  }
}

// ---------------------------------------------------------------- processes

const live = new Set(); // children still running, for cleanup

function launch(file, args, { env, cwd, logFile, asUser }) {
  const fd = openSync(logFile, 'a');
  const opts = { env, cwd, stdio: ['ignore', fd, fd] };
  if (asUser) Object.assign(opts, { uid: asUser.uid, gid: asUser.gid });
  const child = spawn(file, args, opts);
  closeSync(fd);
  const rec = { child, exited: false, code: null, signal: null, spawnError: undefined };
  rec.exit = new Promise((res) => {
    child.on('error', (err) => {
      rec.spawnError = err;
      rec.exited = true;
      live.delete(rec);
      res(rec);
    });
    child.on('exit', (code, signal) => {
      rec.exitedAt = performance.now();
      rec.exited = true;
      rec.code = code;
      rec.signal = signal;
      live.delete(rec);
      res(rec);
    });
  });
  live.add(rec);
  return rec;
}

async function waitExit(rec, timeoutMs, what) {
  let timer;
  const timeout = new Promise((res) => {
    timer = setTimeout(() => res(undefined), timeoutMs);
  });
  const r = await Promise.race([rec.exit, timeout]);
  clearTimeout(timer);
  if (!r) throw new Error(`${what} did not exit within ${timeoutMs} ms`);
  if (r.spawnError) throw new Error(`${what} could not be started: ${r.spawnError.message}`);
  return r;
}

async function runToEnd(file, args, opts, what) {
  const rec = launch(file, args, opts);
  const r = await waitExit(rec, READY_TIMEOUT_MS, what);
  if (r.code !== 0) throw new Error(`${what} failed (exit ${r.code ?? r.signal}); see ${opts.logFile}:\n${tail(opts.logFile)}`);
  return r;
}

const describeExit = (r) => (r.signal ? `signal ${r.signal}` : `exit ${r.code}`);

function tail(file, lines = 25) {
  return readOrEmpty(file).split('\n').slice(-lines).join('\n');
}

// ---------------------------------------------------------------- one measured start

/**
 * Starts the bundle on dataDir, waits until ready, stops it with SIGINT. Returns the time to
 * ready and the timeline read from its JSON log lines.
 */
async function bundleStart(ctx, variant, dataDir, logFile) {
  const env = {
    ...ctx.env,
    PGDATA: dataDir,
    PGPORT: String(ctx.port),
    POSTGRES_PASSWORD: PASSWORD,
    PGREPL_TOKEN: TOKEN,
    ...(DEBUG ? { PGREPL_DEBUG: '1' } : {}),
    ...variant.env,
  };
  writeFileSync(logFile, '');
  const spawnEpoch = Date.now();
  const t0 = performance.now();
  const rec = launch(variant.node, [BUNDLE, 'postgres'], { env, cwd: ctx.scratch, logFile });
  let ready;
  try {
    ready = await waitReady(ctx, () => (rec.exited ? `the bundle ended (${rec.spawnError?.message ?? describeExit(rec)})` : undefined));
  } catch (err) {
    await stopBundle(rec, logFile).catch(() => undefined);
    throw new Error(`bundle (${variant.label}) on ${dataDir}: ${err.message}\n--- ${logFile} ---\n${tail(logFile)}`);
  }
  const ms = ready - t0;
  const readyEpoch = spawnEpoch + ms;
  await stopBundle(rec, logFile);
  return { ms, timeline: bundleTimeline(logFile, spawnEpoch, readyEpoch), databases: createdDatabases(logFile) };
}

/** The databases the bundle's log says it created ("created the gestalt databases"), or undefined. */
function createdDatabases(logFile) {
  for (const line of readOrEmpty(logFile).split('\n')) {
    if (!line.includes('"created the gestalt databases"')) continue;
    try {
      return JSON.parse(line).databases;
    } catch {
      return undefined;
    }
  }
  return undefined;
}

async function stopBundle(rec, logFile) {
  if (rec.exited) return;
  rec.child.kill('SIGINT');
  let r;
  try {
    r = await waitExit(rec, STOP_TIMEOUT_MS, 'the bundle after SIGINT');
  } catch (err) {
    rec.child.kill('SIGKILL');
    throw err;
  }
  if (r.code !== 0) note(`the bundle exited with ${describeExit(r)} after SIGINT (expected exit 0); log: ${logFile}`);
}

/**
 * Phases of one bundle start, in ms, from its log: spawn -> "start:" line (Node start-up, bundle
 * load, config, observe), then each step (with PGREPL_DEBUG=1), then hand-over -> postgres's
 * "ready to accept connections" line -> the probe's first success.
 */
function bundleTimeline(logFile, spawnEpoch, readyEpoch) {
  const marks = [];
  let pgReady;
  for (const line of readOrEmpty(logFile).split('\n')) {
    if (line.startsWith('{')) {
      let rec;
      try {
        rec = JSON.parse(line);
      } catch {
        continue;
      }
      if (typeof rec.time !== 'number') continue;
      if (typeof rec.msg === 'string' && rec.msg.startsWith('start:') && !marks.some((m) => m.name === 'plan')) {
        marks.push({ name: 'plan', t: rec.time });
      } else if (rec.msg === 'step' && rec.step) marks.push({ name: rec.step, t: rec.time });
      continue;
    }
    // PostgreSQL's own log prefix: "2026-01-01 12:00:00.123 UTC [pid] LOG:  database system is ready ..."
    const m = /^(\d{4}-\d\d-\d\d) (\d\d:\d\d:\d\d\.\d{3}) (UTC|GMT) \[\d+\] LOG:\s+database system is ready to accept connections/.exec(line);
    if (m) pgReady = Date.parse(`${m[1]}T${m[2]}Z`); // the last one: the final server, not the temporary one
  }
  const phases = {};
  if (marks.length === 0) return phases;
  phases['node start-up, config, observe (spawn -> plan)'] = marks[0].t - spawnEpoch;
  for (let i = 1; i < marks.length; i++) {
    const next = marks[i + 1]?.t;
    const name = marks[i].name;
    if (name === 'hand-over') {
      if (pgReady !== undefined && pgReady >= marks[i].t) {
        phases['hand-over -> postgres "ready to accept connections"'] = pgReady - marks[i].t;
        phases['postgres ready -> probe answered'] = readyEpoch - pgReady;
      } else phases['hand-over -> probe answered'] = readyEpoch - marks[i].t;
    } else if (next !== undefined) phases[`step ${name}`] = next - marks[i].t;
  }
  return phases;
}

/**
 * What the bundle's first boot replaces, done by hand on the same binaries: initdb, pg_ctl start,
 * then, as soon as the server answers (the probe, not pg_ctl -w's 100 ms polls), one psql session
 * creating the same databases as the bundle (CREATE DATABASE ... OWNER, GRANT: what
 * src/steps/databases.ts runs), timed to the next answered probe: serving, with the databases.
 */
async function bareFirstBoot(ctx, dir) {
  const logFile = join(dir, 'bench.log');
  const dataDir = join(dir, 'data');
  const pwfile = join(dir, 'pwfile');
  writeFileSync(pwfile, PASSWORD + '\n', { mode: 0o600 });
  if (ctx.pgUser) chownSync(pwfile, ctx.pgUser.uid, ctx.pgUser.gid);
  const opts = { env: ctx.env, cwd: dir, logFile, asUser: ctx.pgUser };
  const t0 = performance.now();
  await runToEnd(join(ctx.pgBin, 'initdb'), ['-D', dataDir, '--username=postgres', `--pwfile=${pwfile}`], opts, 'initdb');
  const tInit = performance.now();
  let tStarted;
  let tCreated;
  const r = await bareStartAndStop(ctx, dataDir, opts, t0, async () => {
    tStarted = performance.now();
    await runToEnd(join(ctx.pgBin, 'psql'), createDatabasesArgs(ctx.port), opts, 'psql (CREATE DATABASE)');
    tCreated = performance.now();
  });
  return {
    ms: r.ms,
    timeline: {
      initdb: tInit - t0,
      'pg_ctl start -> probe answered': tStarted - tInit,
      [`psql: ${GESTALT_DATABASES.length} x CREATE DATABASE`]: tCreated - tStarted,
      'psql done -> probe answered': t0 + r.ms - tCreated,
      ...r.extra,
    },
  };
}

/** psql's arguments: one session, one -c per statement (CREATE DATABASE cannot run in a transaction block). */
function createDatabasesArgs(port) {
  const q = (name) => `"${name.replace(/"/g, '""')}"`;
  const statements = GESTALT_DATABASES.flatMap((db) => [`CREATE DATABASE ${q(db)} OWNER postgres`, `GRANT ALL PRIVILEGES ON DATABASE ${q(db)} TO postgres`]);
  return ['-X', '-q', '-v', 'ON_ERROR_STOP=1', '-h', '127.0.0.1', '-p', String(port), '-U', 'postgres', '-d', 'postgres', ...statements.flatMap((c) => ['-c', c])];
}

/**
 * Bare postgres started directly on dataDir (as the postgres user), as the bundle hands over to
 * it: timed to the probe's first answer, then stopped with SIGINT (fast shutdown, not timed).
 */
async function bareRestart(ctx, dataDir, dir) {
  const logFile = join(dir, 'bench.log');
  const t0 = performance.now();
  const rec = launch(join(ctx.pgBin, 'postgres'), ['-D', dataDir, '-p', String(ctx.port), '-c', 'listen_addresses=127.0.0.1'], {
    env: ctx.env, cwd: dir, logFile, asUser: ctx.pgUser,
  });
  let ready;
  try {
    ready = await waitReady(ctx, () => (rec.exited ? `postgres ended (${rec.spawnError?.message ?? describeExit(rec)})` : undefined));
  } finally {
    if (!rec.exited) rec.child.kill('SIGINT');
  }
  const r = await waitExit(rec, STOP_TIMEOUT_MS, 'bare postgres after SIGINT');
  if (r.code !== 0) note(`bare postgres exited with ${describeExit(r)} after SIGINT (expected exit 0); log: ${logFile}`);
  return { ms: ready - t0, timeline: { 'postgres -> probe answered': ready - t0 } };
}

/**
 * One archive-wal of `segment` as WAL file `name` into `archiveDir`, as PostgreSQL runs it (as the
 * postgres user, --dir as pgrepl.conf gives it), timed from spawn to exit; then the copy is
 * removed, so that every run writes a new file. `node -e 0` instead, for Node's own start.
 */
async function archiveOnce(ctx, node, segment, archiveDir, name, logFile) {
  const args = node.bare ? ['-e', '0'] : [BUNDLE, 'archive-wal', '--dir', archiveDir, segment, name];
  const t0 = performance.now();
  await runToEnd(node.node, args, { env: { ...ctx.env, ...node.env }, cwd: archiveDir, logFile, asUser: ctx.pgUser }, `${node.label} archive-wal`);
  const ms = performance.now() - t0;
  rmSync(join(archiveDir, name), { force: true });
  return { ms };
}

/** The n-th WAL segment's name on timeline 1 (000000010000000000000001, ...). */
const segmentName = (n) => `00000001${n.toString(16).toUpperCase().padStart(16, '0')}`;

/**
 * pg_ctl -w start, polled concurrently (pg_ctl itself only checks every 100 ms); `whenReady` runs
 * once the server first answers and is timed up to the next answer; then pg_ctl stop.
 */
async function bareStartAndStop(ctx, dataDir, opts, t0, whenReady) {
  const pgCtl = join(ctx.pgBin, 'pg_ctl');
  const start = launch(pgCtl, ['-D', dataDir, '-w', 'start', '-o', `-p ${ctx.port} -c listen_addresses=127.0.0.1`], opts);
  const alive = () => (start.exited && start.code !== 0 ? `pg_ctl start failed (${start.spawnError?.message ?? describeExit(start)})` : undefined);
  let firstAnswer;
  let ready;
  try {
    firstAnswer = await waitReady(ctx, alive);
    await whenReady();
    ready = await waitReady(ctx, alive);
  } catch (err) {
    await runToEnd(pgCtl, ['-D', dataDir, '-m', 'immediate', '-w', 'stop'], opts, 'pg_ctl stop').catch(() => undefined);
    throw new Error(`bare postgres on ${dataDir}: ${err.message}\n--- ${opts.logFile} ---\n${tail(opts.logFile)}`);
  }
  const s = await waitExit(start, READY_TIMEOUT_MS, 'pg_ctl start');
  if (s.code !== 0) throw new Error(`pg_ctl start ended with ${describeExit(s)}:\n${tail(opts.logFile)}`);
  await runToEnd(pgCtl, ['-D', dataDir, '-m', 'fast', '-w', 'stop'], opts, 'pg_ctl stop');
  return { ms: ready - t0, extra: { '(pg_ctl -w returned, after the first answer)': s.exitedAt - firstAnswer } };
}

/**
 * As the image (Dockerfile): NODE_COMPILE_CACHE in a directory of root's, primed by `pgrepl help`
 * run as root, who starts the entrypoint. Node keeps one subdirectory per Node version and uid, so
 * archive-wal (run as postgres) finds none and cannot make one: it compiles as before, as there.
 * Returns the environment to run the bundle with.
 */
function primeCompileCache(variant, env, dir) {
  mkdirSync(dir, { mode: 0o755 });
  const cacheEnv = { NODE_COMPILE_CACHE: dir };
  execFileSync(variant.node, [BUNDLE, 'help'], { env: { ...env, ...cacheEnv }, stdio: 'ignore' });
  return cacheEnv;
}

// ---------------------------------------------------------------- statistics and report

const fmt = (x) => (Number.isFinite(x) ? String(Math.round(x)) : 'n/a');
const fmt2 = (x) => (Number.isFinite(x) ? x.toFixed(2) : 'n/a');

function phaseMedians(timelines) {
  const names = [];
  for (const t of timelines) for (const k of Object.keys(t)) if (!names.includes(k)) names.push(k);
  return names.map((k) => ({ name: k, median: median(timelines.map((t) => t[k]).filter((v) => v !== undefined)) }));
}

function caseRow(label, samples) {
  const s = samples.map((x) => x.ms);
  return `| ${label} | ${fmt(median(s))} | ${fmt(Math.min(...s))} | ${fmt(Math.max(...s))} | ${s.map(fmt).join(', ')} |`;
}

function report(ctx, results, startedAt, loadStart) {
  const m = ctx.machine;
  const L = [];
  L.push('# pgrepl start-up benchmark: results', '');
  L.push(`Written by \`npm run bench\` (bench/run.mjs); see bench/README.md. This file is overwritten on every run.`, '');
  L.push('## This run', '');
  L.push(`- Date: ${startedAt.toISOString()} (took ${Math.round((Date.now() - startedAt.getTime()) / 1000)} s)`);
  L.push(`- Machine: ${m.cpus} CPU(s), ${m.model}; ${m.memGiB} GiB memory; ${m.kernel}; ${m.os}`);
  L.push(`- Scratch directory on: ${m.fs}`);
  L.push(`- Load average (1/5/15 min) at start: ${loadStart.map((x) => x.toFixed(2)).join(' / ')}; at end: ${os.loadavg().map((x) => x.toFixed(2)).join(' / ')}`);
  L.push(`- Node: ${ctx.variants.map((v) => `${v.version} (${v.node})`).join('; ')}; the runner itself: ${process.version}`);
  L.push(`- PostgreSQL: ${ctx.pgVersion} (${ctx.pgBin})`);
  L.push(`- Bundle: dist/pgrepl.cjs, ${ctx.bundle.size} bytes, sha256 ${ctx.bundle.sha}; source: ${ctx.bundle.git}`);
  L.push(`- Runs: ${RUNS} timed per case, after ${WARMUP} discarded warm-up run(s); bundle and bare runs interleaved`);
  L.push(`- Readiness: ${PROBE === 'query' ? 'TCP connect to 127.0.0.1 + `SELECT 1` answered (in-process pg client)' : '`pg_isready -h 127.0.0.1` exit 0'}, polled every ${POLL_MS} ms, timed from the first spawn`);
  L.push(`- Run as: ${ctx.pgUser ? 'root (the bundle drops to postgres itself; initdb/pg_ctl/postgres and archive-wal spawned with the postgres uid/gid)' : `uid ${process.getuid?.()}`}; port ${ctx.port}`);
  L.push(`- archive-wal: ${SEGMENTS} segments of ${SEGMENT_BYTES / 2 ** 20} MB (random bytes) per case, after ${WARMUP} warm-up one(s), each archived under a new name and removed after its run`);
  L.push(`- Bundle environment: PGDATA, PGPORT, POSTGRES_PASSWORD, PGREPL_TOKEN${DEBUG ? ', PGREPL_DEBUG=1 (per-step debug lines, for the timeline below)' : ''}; everything else default (six gestalt databases)`);
  const cached = ctx.variants.filter((v) => v.env.NODE_COMPILE_CACHE).map((v) => `Node ${v.version}`);
  L.push(
    `- Compile cache: ${cached.length > 0 ? `${cached.join(', ')} with NODE_COMPILE_CACHE, primed by \`pgrepl help\` as root before the timed runs, as the image's build does (Dockerfile); archive-wal, run as postgres, has no entry there (as in the image)` : 'none'}` +
      `${COMPILE_CACHE ? '' : ' (BENCH_COMPILE_CACHE=0)'}`,
  );
  L.push(`- Children's environment: ${INHERIT_ENV ? "the runner's (BENCH_INHERIT_ENV=1), minus PG*/POSTGRES_*/PGREPL_*/npm_*/NODE_OPTIONS" : `minimal, container-like: ${Object.keys(ctx.env).join(', ')} (BENCH_INHERIT_ENV=1 to inherit the runner's)`}`);
  L.push('');

  L.push('## Targets', '');
  L.push(
    `| bundle | restart overhead (median of the paired differences: bundle - bare \`postgres\`) | target <= ${TARGET_RESTART_OVERHEAD_MS} ms | first boot ratio (median of the paired ratios: bundle / bare initdb + start + ${GESTALT_DATABASES.length} x CREATE DATABASE) | target <= ${TARGET_FIRST_BOOT_RATIO.toFixed(1)}x | archive-wal per segment (median) | target <= ${TARGET_ARCHIVE_SEGMENT_MS} ms |`,
  );
  L.push('|---|---|---|---|---|---|---|');
  const verdicts = [];
  for (const v of ctx.variants) {
    const r = results[v.key];
    const overhead = median(r.restart.map((x, i) => x.ms - results.bare.restart[i].ms));
    const ratio = median(r.first.map((x, i) => x.ms / results.bare.first[i].ms));
    const perSegment = median(r.archive.map((x) => x.ms));
    const okR = overhead <= TARGET_RESTART_OVERHEAD_MS;
    const okF = ratio <= TARGET_FIRST_BOOT_RATIO;
    const okA = perSegment <= TARGET_ARCHIVE_SEGMENT_MS;
    L.push(`| ${v.label} | ${fmt(overhead)} ms | ${okR ? 'MET' : 'NOT MET'} | ${fmt2(ratio)}x | ${okF ? 'MET' : 'NOT MET'} | ${fmt(perSegment)} ms (${fmt2(1000 / perSegment)} segments/s) | ${okA ? 'MET' : 'NOT MET'} |`);
    verdicts.push(
      `- ${v.label}: restart overhead ${fmt(overhead)} ms over bare postgres: the <= ${TARGET_RESTART_OVERHEAD_MS} ms target was ${okR ? 'met' : '**not met**'}. ` +
        `First boot ${fmt2(ratio)}x bare initdb + start + ${GESTALT_DATABASES.length} x CREATE DATABASE: the <= ${TARGET_FIRST_BOOT_RATIO.toFixed(1)}x target was ${okF ? 'met' : '**not met**'}. ` +
        `archive-wal ${fmt(perSegment)} ms per segment: the <= ${TARGET_ARCHIVE_SEGMENT_MS} ms target was ${okA ? 'met' : '**not met**'}.`,
    );
  }
  L.push('', ...verdicts, '');

  for (const [title, key, bareLabel] of [
    ['First boot to ready (ms)', 'first', `bare \`initdb\` + \`pg_ctl start\` + psql: ${GESTALT_DATABASES.length} x \`CREATE DATABASE\``],
    ['Restart to ready (ms)', 'restart', 'bare `postgres` started directly'],
  ]) {
    L.push(`## ${title}`, '');
    L.push('| case | median | min | max | all samples |', '|---|---|---|---|---|');
    for (const v of ctx.variants) L.push(caseRow(`bundle, ${v.label}`, results[v.key][key]));
    L.push(caseRow(bareLabel, results.bare[key]));
    L.push('');
  }

  L.push('## archive-wal per segment (ms, spawn to exit)', '');
  L.push(
    `\`pgrepl archive-wal --dir DIR SEGMENT NAME\` as PostgreSQL's archive_command runs it, one ${SEGMENT_BYTES / 2 ** 20} MB segment after another ` +
      '(copy, fsync, link, fsync of the directory), next to `node -e 0`: what any Node program costs to start on this machine.',
    '',
  );
  L.push('| case | median | min | max | segments/s (1000 / median) | MB/s |', '|---|---|---|---|---|---|');
  for (const [label, samples] of [...ctx.variants.map((v) => [`archive-wal, ${v.label}`, results[v.key].archive]), ['`node -e 0`', results.bare.archive]]) {
    const s = samples.map((x) => x.ms);
    const med = median(s);
    L.push(`| ${label} | ${fmt(med)} | ${fmt(Math.min(...s))} | ${fmt(Math.max(...s))} | ${fmt2(1000 / med)} | ${fmt((1000 / med) * (SEGMENT_BYTES / 2 ** 20))} |`);
  }
  L.push('');

  L.push('## Where the time goes (median per phase, ms)', '');
  L.push(
    'From the bundle\'s JSON log lines (ms timestamps) and PostgreSQL\'s "ready to accept connections" line, relative to the spawn. ' +
      'Phases are medians of their own, so they need not add up exactly to the total.',
    '',
  );
  const sections = [];
  for (const v of ctx.variants) {
    sections.push([`bundle first boot, ${v.label}`, results[v.key].first]);
    sections.push([`bundle restart, ${v.label}`, results[v.key].restart]);
  }
  sections.push(['bare first boot', results.bare.first], ['bare restart', results.bare.restart]);
  for (const [name, samples] of sections) {
    L.push(`### ${name} (total median ${fmt(median(samples.map((x) => x.ms)))})`, '');
    L.push('| phase | median ms |', '|---|---|');
    for (const p of phaseMedians(samples.map((x) => x.timeline))) L.push(`| ${p.name} | ${fmt(p.median)} |`);
    L.push('');
  }

  L.push('## Notes', '');
  const busiest = Math.max(loadStart[0], os.loadavg()[0]);
  if (busiest >= m.cpus / 2) {
    L.push(
      `- The machine was busy: a 1-minute load average of ${loadStart[0].toFixed(2)} at the start and ${os.loadavg()[0].toFixed(2)} at the end on ${m.cpus} CPU(s), other work beside this benchmark. ` +
        'Absolute times are longer than on an idle machine (the Node-side work, all CPU, more so than bare postgres); the paired differences and ratios soften that, not entirely.',
    );
  }
  if (notes.length === 0) L.push('- Nothing unexpected: every bundle exited 0 on SIGINT, every server stopped cleanly.');
  for (const n of notes) L.push(`- ${n}`);
  L.push(
    '- Bare postgres is timed to the first answered probe, not to `pg_ctl -w` returning (pg_ctl only checks every 100 ms); ' +
      'the bundle\'s own `pg_ctl -w` calls (temporary server, first boot) are part of its time.',
    `- The bare first boot is what the bundle's first boot replaces, by hand: \`initdb\`, \`pg_ctl start\`, and as soon as the server answers one psql session with the same ${GESTALT_DATABASES.length} \`CREATE DATABASE ... OWNER postgres\` + \`GRANT\` (${GESTALT_DATABASES.join(', ')}), timed to the next answered probe. ` +
      'The first boot ratio is the median of the paired ratios (each bundle run / the bare run of the same round).',
  );
  L.push('');
  writeFileSync(OUT, L.join('\n'));
  // The other benchmarks' headlines (image size, load, durability), from their own reports.
  refreshSummary(OUT);
  return verdicts;
}

// ---------------------------------------------------------------- main

async function main() {
  const startedAt = new Date();
  const loadStart = os.loadavg();
  if (!existsSync(BUNDLE)) throw new Error(`${BUNDLE} is missing: run \`npm run build\` first (npm run bench does)`);
  const pgBin = findPgBin();
  for (const p of ['postgres', 'initdb', 'pg_ctl', 'psql']) {
    if (!existsSync(join(pgBin, p))) throw new Error(`${join(pgBin, p)} is missing`);
  }
  const isRoot = process.getuid?.() === 0;
  const pgUser = isRoot ? lookupPasswd('postgres') : undefined;
  if (isRoot && !pgUser) throw new Error('running as root but there is no "postgres" user in /etc/passwd');
  if (!isRoot) say('not running as root: the bundle and the bare commands run as the current user');

  const env = childEnv(pgBin);
  loadPg(); // the probe's client: loaded now, not during the first timed run
  const pgVersion = postgresVersion(pgBin);
  const variants = [{ key: 'node', node: process.execPath, version: process.version }];
  if (process.env.BENCH_NODE24) {
    const node = resolve(process.env.BENCH_NODE24);
    const version = execFileSync(node, ['--version'], { encoding: 'utf8' }).trim();
    variants.push({ key: 'node24', node, version });
  }
  const bundleBytes = readFileSync(BUNDLE);
  const bundle = { size: bundleBytes.length, sha: createHash('sha256').update(bundleBytes).digest('hex').slice(0, 12), git: gitDescribe() ?? 'not a git checkout' };
  const port = await pickPort();
  const scratch = makeScratchDir('pgrepl-bench-'); // the postgres user must traverse it
  for (const v of variants) {
    const has = (expr) => execFileSync(v.node, ['-p', expr], { encoding: 'utf8' }).trim() === 'true';
    const hasExecve = has("typeof process.execve === 'function'");
    v.env = COMPILE_CACHE && has("typeof require('node:module').enableCompileCache === 'function'") ? primeCompileCache(v, env, join(scratch, `compile-cache-${v.key}`)) : {};
    v.label = `Node ${v.version} (${hasExecve ? 'execve into postgres' : 'supervises postgres as a child'}${v.env.NODE_COMPILE_CACHE ? ', compile cache' : ''})`;
  }
  const ctx = { pgBin, pgUser, env, port, scratch, variants, pgVersion, bundle, machine: machineInfo(scratch) };
  say(`pgrepl bench: ${RUNS} run(s) + ${WARMUP} warm-up, port ${port}, scratch ${scratch}`);
  say(`  ${pgVersion}; ${variants.map((v) => v.label).join('; ')}`);

  let failed = false;
  try {
    const results = { bare: { first: [], restart: [], archive: [] } };
    for (const v of variants) results[v.key] = { first: [], restart: [], archive: [] };
    let seq = 0;
    const newDir = (name, ownedByPostgres) => {
      const d = join(scratch, `${String(++seq).padStart(3, '0')}-${name}`);
      mkdirSync(d, { mode: 0o755 });
      chmodSync(d, 0o755);
      if (ownedByPostgres && pgUser) chownSync(d, pgUser.uid, pgUser.gid);
      return d;
    };
    const keepLast = {}; // the cluster each case restarts: the last first boot's
    const record = (i, list, label, r, of = RUNS) => {
      const warm = i < 0;
      say(`  ${label} ${warm ? 'warm-up' : `${i + 1}/${of}`}: ${fmt(r.ms)} ms`);
      if (!warm) list.push(r);
    };
    const dispose = (key, dir) => {
      if (keepLast[key] && !KEEP) rmSync(keepLast[key], { recursive: true, force: true });
      keepLast[key] = dir;
    };

    say('first boot to ready');
    for (let i = -WARMUP; i < RUNS; i++) {
      for (const v of variants) {
        const dir = newDir(`first-${v.key}`, false);
        const r = await bundleStart(ctx, v, join(dir, 'data'), join(dir, 'bench.log'));
        if (r.databases?.join() !== GESTALT_DATABASES.join()) {
          note(`the bundle (${v.label}) created the databases ${JSON.stringify(r.databases ?? [])}, the bare first boot ${JSON.stringify(GESTALT_DATABASES)}: update GESTALT_DATABASES in bench/run.mjs`);
        }
        record(i, results[v.key].first, `bundle ${v.version}`, r);
        dispose(v.key, dir);
      }
      const dir = newDir('first-bare', true);
      record(i, results.bare.first, 'bare', await bareFirstBoot(ctx, dir));
      dispose('bare', dir);
    }

    say('restart to ready');
    for (let i = -WARMUP; i < RUNS; i++) {
      for (const v of variants) {
        const dir = keepLast[v.key];
        const r = await bundleStart(ctx, v, join(dir, 'data'), join(dir, `bench-restart-${i}.log`));
        record(i, results[v.key].restart, `bundle ${v.version}`, r);
      }
      record(i, results.bare.restart, 'bare', await bareRestart(ctx, join(keepLast.bare, 'data'), keepLast.bare));
    }

    say('archive-wal per segment');
    const archive = newDir('archive', true);
    const segment = join(archive, 'segment');
    writeFileSync(segment, randomBytes(SEGMENT_BYTES), { mode: 0o644 });
    const logFile = join(archive, 'archive.log');
    for (let i = -WARMUP; i < SEGMENTS; i++) {
      const name = segmentName(i + WARMUP + 1);
      for (const v of variants) record(i, results[v.key].archive, `archive-wal ${v.version}`, await archiveOnce(ctx, v, segment, archive, name, logFile), SEGMENTS);
      record(i, results.bare.archive, 'node -e 0', await archiveOnce(ctx, { node: process.execPath, bare: true, label: 'node -e 0' }, segment, archive, name, logFile), SEGMENTS);
    }

    const verdicts = report(ctx, results, startedAt, loadStart);
    say(`results written to ${OUT}`);
    for (const line of verdicts) say(line.replace(/\*\*/g, ''));
  } catch (err) {
    failed = true;
    throw err;
  } finally {
    await cleanup(ctx, failed);
  }
}

async function cleanup(ctx, failed) {
  // Children still running (only after a failure): SIGINT, then SIGKILL.
  for (const rec of [...live]) {
    rec.child.kill('SIGINT');
    await waitExit(rec, 15_000, 'a leftover child').catch(() => rec.child.kill('SIGKILL'));
  }
  // Any server still holding one of our data directories: stop it immediately.
  const stack = [ctx.scratch];
  while (stack.length > 0) {
    const d = stack.pop();
    let entries = [];
    try {
      entries = readdirSync(d, { withFileTypes: true });
    } catch {
      continue;
    }
    if (entries.some((e) => e.name === 'postmaster.pid')) {
      try {
        execFileSync(join(ctx.pgBin, 'pg_ctl'), ['-D', d, '-m', 'immediate', '-w', 'stop'], {
          stdio: 'ignore',
          env: ctx.env,
          ...(ctx.pgUser ? { uid: ctx.pgUser.uid, gid: ctx.pgUser.gid } : {}),
        });
      } catch {
        /* not running */
      }
    }
    for (const e of entries) if (e.isDirectory() && d.split('/').length - ctx.scratch.split('/').length < 2) stack.push(join(d, e.name));
  }
  if (KEEP) say(`kept ${ctx.scratch}`);
  else {
    rmSync(ctx.scratch, { recursive: true, force: true });
    if (failed) say(`removed ${ctx.scratch} (set BENCH_KEEP=1 to keep the logs)`);
  }
}

main().then(
  () => process.exit(0),
  (err) => {
    process.stderr.write(`bench failed: ${err?.stack ?? err}\n`);
    process.exit(1);
  },
);
