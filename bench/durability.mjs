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
 *   DUR_PORT=5707        the primary's port; the standby uses the next one
 *   BENCH_PG_BIN=DIR     PostgreSQL's bin directory (default: /usr/lib/postgresql/<highest>/bin)
 *   BENCH_OUT=FILE       where to write the results (default bench/RESULTS-durability.md)
 *
 * Node ESM; needs the `pg` package from node_modules (npm ci). Run as root, as in a container: the
 * bundle drops to the postgres user itself.
 */
import { spawn, execFileSync } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { refreshSummary } from './summary.mjs';

const HERE = dirname(fileURLToPath(import.meta.url));
const ROOT = resolve(HERE, '..');
const BUNDLE = join(ROOT, 'dist', 'pgrepl.cjs');
const OUT = resolve(process.env.BENCH_OUT || join(HERE, 'RESULTS-durability.md'));
const PASSWORD = 'durability-password';
const TOKEN = 'durability-token';

const int = (name, dflt) => {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return dflt;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 1) throw new Error(`${name}=${raw}: expected a whole number >= 1`);
  return n;
};
const RUNS = int('DUR_RUNS', 5);
const CLIENTS = int('DUR_CLIENTS', 4);
const KILL_AFTER = int('DUR_KILL_AFTER', 2000);
const PRIMARY = int('DUR_PORT', 5707);
const STANDBY = PRIMARY + 1;

function pgBin() {
  if (process.env.BENCH_PG_BIN) return process.env.BENCH_PG_BIN;
  const majors = readdirSync('/usr/lib/postgresql').filter((d) => existsSync(`/usr/lib/postgresql/${d}/bin/postgres`)).sort((a, b) => Number(b) - Number(a));
  if (majors.length === 0) throw new Error('no PostgreSQL under /usr/lib/postgresql: install it or set BENCH_PG_BIN');
  return `/usr/lib/postgresql/${majors[0]}/bin`;
}
const BIN = pgBin();
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const say = (msg) => process.stdout.write(msg + '\n');

if (!existsSync(BUNDLE)) throw new Error(`${BUNDLE} is missing: run npm run build first`);
if (process.getuid?.() !== 0) throw new Error('run as root (the bundle drops to the postgres user, as in a container)');

function nodeEnv(pgdata, port, extra) {
  return {
    PATH: `${BIN}:/usr/local/bin:/usr/bin:/bin`, HOME: '/root', LANG: 'C.UTF-8', PGDATA: pgdata, PGPORT: String(port),
    POSTGRES_PASSWORD: PASSWORD, PGREPL_TOKEN: TOKEN, PGREPL_NODE_NAME: `node_${port}`,
    PGREPL_INITDB_DIR: '/nonexistent', PGREPL_GESTALT_DATABASES: '', ...extra,
  };
}

/** One node: `node dist/pgrepl.cjs postgres` in a process group of its own. */
function startNode(pgdata, port, extra) {
  const child = spawn(process.execPath, [BUNDLE, 'postgres'], { env: nodeEnv(pgdata, port, extra), stdio: ['ignore', 'ignore', 'pipe'], detached: true });
  let stderr = '';
  child.stderr.on('data', (d) => (stderr += d));
  const exited = new Promise((r) => child.on('exit', (code, signal) => r({ code, signal })));
  return { child, port, pgdata, exited, log: () => stderr };
}

const client = (port) => new pg.Client({ host: '127.0.0.1', port, user: 'postgres', password: PASSWORD, database: 'postgres' });

async function query(port, sql, params = []) {
  const c = client(port);
  await c.connect();
  try {
    return (await c.query(sql, params)).rows;
  } finally {
    await c.end();
  }
}

async function waitFor(what, fn, node, timeoutMs = 120_000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      if (await fn()) return;
    } catch {
      // not yet
    }
    if (node && node.child.exitCode !== null) throw new Error(`${what}: the node on port ${node.port} exited:\n${node.log().slice(-3000)}`);
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(50);
  }
}

async function ready(node) {
  await waitFor(`node ${node.port} to accept connections`, async () => (await query(node.port, 'SELECT 1')).length === 1, node);
}

function killGroup(node) {
  try {
    process.kill(-node.child.pid, 'SIGKILL');
  } catch (err) {
    if (err.code !== 'ESRCH') throw err;
  }
  return node.exited;
}

/** Processes of a process group, zombies included, from /proc. */
function groupMembers(pgid) {
  const out = [];
  for (const e of readdirSync('/proc')) {
    if (!/^\d+$/.test(e)) continue;
    try {
      const stat = readFileSync(`/proc/${e}/stat`, 'utf8');
      if (Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[2]) === pgid) out.push(Number(e));
    } catch {
      // gone meanwhile
    }
  }
  return out;
}

/**
 * Until a killed postmaster is reaped (by PID 1, which may take a moment), its zombie still
 * "exists" and the next server on that port refuses to start: wait for the whole group to go.
 */
async function stopNode(node) {
  if (node.child.exitCode === null && node.child.signalCode === null) node.child.kill('SIGINT');
  const stopped = await Promise.race([node.exited.then(() => true), sleep(60_000).then(() => false)]);
  if (!stopped) await killGroup(node);
  await waitFor(`the processes of node ${node.port} to be gone`, async () => groupMembers(node.child.pid).length === 0, undefined, 60_000);
  // A killed server leaves its socket and lock file behind (its next start would replace them).
  for (const f of [`.s.PGSQL.${node.port}`, `.s.PGSQL.${node.port}.lock`]) rmSync(join('/var/run/postgresql', f), { force: true });
}

function cli(pgdata, port, args) {
  return execFileSync(process.execPath, [BUNDLE, ...args], { env: nodeEnv(pgdata, port, {}), encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

/** Autocommit INSERTs from CLIENTS connections until the server goes away; kill at KILL_AFTER acks. */
async function loadAndKill(primary) {
  const acked = []; // [id, time of the acknowledgement]
  let next = 1;
  let killedAt;
  let killing;
  const one = async () => {
    const c = client(primary.port);
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
  const dir = mkdtempSync(join(os.tmpdir(), 'pgrepl-durability-'));
  chmodSync(dir, 0o755);
  const sync = { PGREPL_SYNC_STANDBYS: mode === 'sync' ? '1' : '0' };
  const nodes = [];
  try {
    const a = startNode(join(dir, 'a'), PRIMARY, sync);
    nodes.push(a);
    await ready(a);
    const b = startNode(join(dir, 'b'), STANDBY, { ...sync, PGREPL_ROLE: 'STANDBY', PGREPL_MASTER_IP: '127.0.0.1', PGREPL_MASTER_PORT: String(PRIMARY) });
    nodes.push(b);
    await ready(b);
    const state = mode === 'sync' ? 'quorum' : 'async';
    await waitFor(`the standby streaming (${state})`, async () =>
      (await query(PRIMARY, "SELECT sync_state FROM pg_stat_replication WHERE application_name = $1 AND state = 'streaming'", [`node_${STANDBY}`]))[0]?.sync_state === state, b);
    await query(PRIMARY, 'CREATE TABLE acks (id bigint PRIMARY KEY)');

    const { acked, rate } = await loadAndKill(a);
    const promoted = cli(join(dir, 'b'), STANDBY, ['promote']).trim();
    if (!/^promoted: now a primary on timeline 2$/.test(promoted)) throw new Error(`promote said: ${promoted}`);
    const onB = new Set((await query(STANDBY, 'SELECT id FROM acks')).map((r) => Number(r.id)));
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

const median = (xs) => {
  const s = [...xs].sort((x, y) => x - y);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

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
const pgVersion = execFileSync(join(BIN, 'postgres'), ['--version'], { encoding: 'utf8' }).trim();
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
