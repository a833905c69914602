// What the benchmarks share: where things are, reading their environment variables, finding
// PostgreSQL, describing the machine, and running pgrepl nodes through the bundle
// (dist/pgrepl.cjs) as containers would: start, query, wait, kill, stop, `pgrepl ARGS`.
//
// Importing this module does nothing by itself (no checks, no processes, no `pg`): bench/run.mjs
// uses the first half too. `pg` is loaded on the first pgClient() (or loadPg()).
import { execFile, execFileSync, spawn } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

// ---------------------------------------------------------------- places, environment, small things

/** bench/, where the reports are written. */
export const BENCH_DIR = dirname(fileURLToPath(import.meta.url));
/** The checkout: git is asked about it, the bundle is in it. */
export const ROOT = resolve(BENCH_DIR, '..');
/** The bundle every benchmark runs, as the image does: `node dist/pgrepl.cjs ...`. */
export const BUNDLE = join(ROOT, 'dist', 'pgrepl.cjs');

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** A whole-number setting from the environment (unset or empty: dflt); anything else below min is an error. */
export function intEnv(name, dflt, min = 1) {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return dflt;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < min) throw new Error(`${name}=${raw}: expected a whole number >= ${min}`);
  return n;
}

/** A yes/no setting from the environment: 1, true, yes or on (any case) is yes; unset or empty: dflt. */
export function flagEnv(name, dflt) {
  const raw = process.env[name]?.trim().toLowerCase();
  if (raw === undefined || raw === '') return dflt;
  return ['1', 'true', 'yes', 'on'].includes(raw);
}

/** A file's text, or '' when it cannot be read (/proc and /etc files that a container may lack). */
export function readOrEmpty(path) {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return '';
  }
}

/** A fresh scratch directory in the temporary directory, open (0755) so the postgres user can traverse it. */
export function makeScratchDir(prefix) {
  const dir = mkdtempSync(join(os.tmpdir(), prefix));
  chmodSync(dir, 0o755);
  return dir;
}

/** The median; NaN for no values. */
export function median(xs) {
  const s = [...xs].sort((a, b) => a - b);
  const n = s.length;
  return n === 0 ? NaN : n % 2 ? s[(n - 1) / 2] : (s[n / 2 - 1] + s[n / 2]) / 2;
}

// ---------------------------------------------------------------- PostgreSQL and the machine

/**
 * PostgreSQL's bin directory: BENCH_PG_BIN, else the highest major under /usr/lib/postgresql
 * (Debian's layout, as in the image), else the first directory on PATH holding postgres and initdb.
 */
export function findPgBin() {
  if (process.env.BENCH_PG_BIN) return resolve(process.env.BENCH_PG_BIN);
  const base = '/usr/lib/postgresql';
  if (existsSync(base)) {
    const majors = readdirSync(base)
      .filter((d) => existsSync(join(base, d, 'bin', 'postgres')))
      .sort((a, b) => Number(b) - Number(a));
    if (majors.length > 0) return join(base, majors[0], 'bin');
  }
  for (const dir of (process.env.PATH || '').split(':')) {
    if (dir && existsSync(join(dir, 'postgres')) && existsSync(join(dir, 'initdb'))) return dir;
  }
  throw new Error('no PostgreSQL binaries found: set BENCH_PG_BIN to the directory holding postgres, initdb and pg_ctl');
}

/** `postgres --version` of that bin directory, for the reports ("postgres (PostgreSQL) 18.1"). */
export const postgresVersion = (pgBin) => execFileSync(join(pgBin, 'postgres'), ['--version'], { encoding: 'utf8' }).trim();

/** What the reports say of the machine: CPUs (count, model, MHz if known), memory, kernel, distribution. */
export function describeMachine() {
  const cpuinfo = readOrEmpty('/proc/cpuinfo');
  return {
    cpus: os.cpus().length,
    model: /^model name\s*:\s*(.+)$/m.exec(cpuinfo)?.[1]?.trim() ?? os.cpus()[0]?.model ?? 'unknown',
    mhz: /^cpu MHz\s*:\s*(.+)$/m.exec(cpuinfo)?.[1]?.trim(),
    memGiB: (os.totalmem() / 2 ** 30).toFixed(1),
    kernel: `${os.type()} ${os.release()} ${os.arch()}`,
    os: /^PRETTY_NAME="?([^"\n]+)"?/m.exec(readOrEmpty('/etc/os-release'))?.[1] ?? 'unknown',
  };
}

/** Which source the bundle was built from: "git abc1234[ + uncommitted changes in src/]"; undefined outside a checkout. */
export function gitDescribe() {
  try {
    const git = (...args) => execFileSync('git', args, { cwd: ROOT, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
    const head = git('rev-parse', '--short', 'HEAD');
    const dirty = git('status', '--porcelain', '--', 'src', 'build.mjs', 'package.json');
    return `git ${head}${dirty ? ' + uncommitted changes in src/' : ''}`;
  } catch {
    return undefined;
  }
}

// ---------------------------------------------------------------- nodes through the bundle

/** The benchmarks that run nodes run as root, as a container does: the bundle drops to postgres itself. */
export function requireBundleAndRoot() {
  if (!existsSync(BUNDLE)) throw new Error(`${BUNDLE} is missing: run npm run build first`);
  if (process.getuid?.() !== 0) throw new Error('run as root (the bundle drops to the postgres user, as in a container)');
}

/**
 * A node, not started yet: what a container of the image is given. `upstream` (another node, or
 * null) makes it a standby of that node on 127.0.0.1 (it may be changed before a restart);
 * `env` is added to its environment (e.g. PGREPL_SYNC_STANDBYS).
 */
export function defineNode({ name, port, pgdata, pgBin, password, token, upstream = null, env = {} }) {
  return { name, port, pgdata, pgBin, password, token, upstream, env, child: null, exited: null, log: '' };
}

/**
 * The node's whole environment, minimal and container-like, so the runner's shell does not leak
 * in: the bundle's `postgres` and every `pgrepl ARGS` for it (as `docker exec`) get the same.
 */
export function bundleEnv(node) {
  return {
    PATH: `${node.pgBin}:/usr/local/bin:/usr/bin:/bin`, HOME: '/root', LANG: 'C.UTF-8', PGDATA: node.pgdata, PGPORT: String(node.port),
    POSTGRES_PASSWORD: node.password, PGREPL_TOKEN: node.token, PGREPL_NODE_NAME: node.name,
    PGREPL_INITDB_DIR: '/nonexistent', PGREPL_GESTALT_DATABASES: '',
    ...(node.upstream ? { PGREPL_ROLE: 'STANDBY', PGREPL_MASTER_IP: '127.0.0.1', PGREPL_MASTER_PORT: String(node.upstream.port) } : {}),
    ...node.env,
  };
}

/**
 * `node dist/pgrepl.cjs postgres` in a process group of its own (so that killGroup is a container
 * kill); its stderr is kept in node.log (the last 100-200 kB), node.exited resolves on its exit.
 */
export function startNode(node) {
  const child = spawn(process.execPath, [BUNDLE, 'postgres'], { env: bundleEnv(node), stdio: ['ignore', 'ignore', 'pipe'], detached: true });
  node.child = child;
  node.log = '';
  child.stderr.on('data', (d) => {
    node.log += d;
    if (node.log.length > 200_000) node.log = node.log.slice(-100_000);
  });
  node.exited = new Promise((r) => child.on('exit', (code, signal) => r({ code, signal })));
  return node;
}

let pgModule;
/** `pg` (npm ci), loaded once: on the first pgClient(), or ahead of a timed section. */
export const loadPg = () => (pgModule ??= createRequire(import.meta.url)('pg'));

/** A client (not connected) to the node as postgres over TCP; `options` are pg.Client's (timeouts, application_name). */
export function pgClient(node, options = {}) {
  return new (loadPg().Client)({ host: '127.0.0.1', port: node.port, user: 'postgres', password: node.password, database: 'postgres', ...options });
}

/** One statement on a connection of its own; the rows. */
export async function query(node, sql, params = []) {
  const c = pgClient(node);
  c.on('error', () => undefined);
  await c.connect();
  try {
    return (await c.query(sql, params)).rows;
  } finally {
    await c.end().catch(() => undefined);
  }
}

/**
 * Polls fn (every 100 ms) until it returns true; errors count as "not yet" (the last one is in the
 * timeout's message). Gives up at once when `node` is given and its bundle has exited.
 */
export async function waitFor(what, fn, node, timeoutMs = 180_000) {
  const deadline = Date.now() + timeoutMs;
  let last;
  for (;;) {
    try {
      if (await fn()) return;
    } catch (err) {
      last = err;
    }
    if (node && node.child.exitCode !== null) throw new Error(`${what}: the node ${node.name} (port ${node.port}) exited:\n${node.log.slice(-3000)}`);
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}${last ? ` (last error: ${last.message})` : ''}`);
    await sleep(100);
  }
}

/** Until the node answers `SELECT 1`. */
export const ready = (node) => waitFor(`${node.name} to accept connections`, async () => (await query(node, 'SELECT 1')).length === 1, node);

/** SIGKILL to every process of the node at once (a container kill, a power cut); resolves when the bundle has exited. */
export function killGroup(node) {
  try {
    process.kill(-node.child.pid, 'SIGKILL');
  } catch (err) {
    if (err.code !== 'ESRCH') throw err;
  }
  return node.exited;
}

/** Processes of a process group, zombies included, from /proc. */
export function groupMembers(pgid) {
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
 * SIGINT (fast shutdown), SIGKILL after 60 s; then waits for every process of the group to go:
 * until a killed postmaster is reaped (by PID 1, which may take a moment), its zombie still
 * "exists" and the next server on that port refuses to start. A node never started: nothing to do.
 */
export async function stopNode(node) {
  if (!node.child) return;
  if (node.child.exitCode === null && node.child.signalCode === null) node.child.kill('SIGINT');
  const stopped = await Promise.race([node.exited.then(() => true), sleep(60_000).then(() => false)]);
  if (!stopped) await killGroup(node);
  await waitFor(`the processes of ${node.name} to be gone`, async () => groupMembers(node.child.pid).length === 0, undefined, 60_000);
  // A killed server leaves its socket and lock file behind (its next start would replace them).
  for (const f of [`.s.PGSQL.${node.port}`, `.s.PGSQL.${node.port}.lock`]) rmSync(join('/var/run/postgresql', f), { force: true });
}

/** `node dist/pgrepl.cjs ARGS` with the node's environment, as `docker exec NODE pgrepl ARGS`: { code, stdout, stderr }. */
export function cli(node, args, timeoutMs = 120_000) {
  return new Promise((res) => {
    execFile(process.execPath, [BUNDLE, ...args], { env: bundleEnv(node), encoding: 'utf8', timeout: timeoutMs, maxBuffer: 1 << 20 }, (err, stdout, stderr) => {
      res({ code: err ? (typeof err.code === 'number' ? err.code : 1) : 0, stdout, stderr });
    });
  });
}
