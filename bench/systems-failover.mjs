// The systems under test of bench/failover.mjs, behind one interface so that the same scenario
// code runs each of them:
//
//   system = { id, label, available() -> { ok, version?, why? }, configs: [config], start(opts) -> cluster }
//   config = { id, ttl (seconds, for the report), ttlNote, sync, scenarios, ... (system-specific) }
//   cluster = {
//     nodes: [{ name, pgPort, apiUrl }],     reached by the clients (writer-failover.mjs)
//     password,                              postgres's password on every node
//     kill(name), stop(name), restart(name), switchover(leaderName) -> { ok, detail },
//     healthy?() -> bool (beyond one /primary and streaming standbys), reclone?(name),
//     logTail(name), close()
//   }
//
// Patroni: three `patroni` processes (PATRONI_BIN, else `patroni` on PATH) run as the postgres user
// on one etcd (DCS `etcd3`). pgrepl: three `node dist/pgrepl.cjs postgres` in HA mode (SPEC §7's
// test contract); not available until the HA agent is built (see pgreplSystem).
import { execFileSync, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chownSync, createWriteStream, existsSync, mkdirSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { BUNDLE, cli, defineNode, groupMembers, killGroup, readOrEmpty, sleep, startNode, stopNode } from './nodes.mjs';
import { httpRequest } from './writer-failover.mjs';

const secret = () => randomBytes(18).toString('base64url');
const tail = (text) => text.slice(-3000);

/** The process group of a process (from /proc), or null when it is gone. */
function pgidOf(pid) {
  const stat = readOrEmpty(`/proc/${pid}/stat`);
  return stat ? Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[2]) : null;
}

/** Until every process of these groups is gone (zombies wait for PID 1 to reap them); at most timeoutMs. */
async function groupsGone(pgids, timeoutMs = 30_000) {
  const deadline = Date.now() + timeoutMs;
  while (pgids.some((g) => groupMembers(g).length > 0) && Date.now() < deadline) await sleep(50);
}

const exited = (child) => new Promise((r) => (child.exitCode !== null || child.signalCode !== null ? r() : child.once('exit', r)));

// ---------------------------------------------------------------- Patroni

const PATRONI_PG_BASE = 5901; // postgres 5901-5903, REST API 5911-5913

/** Patroni's executable: PATRONI_BIN (e.g. a venv's bin/patroni), else `patroni` on PATH. */
const patroniBin = () => process.env.PATRONI_BIN || 'patroni';

export function patroniSystem({ pgBin, uid, gid }) {
  let version;
  return {
    id: 'patroni',
    label: 'Patroni',
    available() {
      try {
        const out = execFileSync(patroniBin(), ['--version'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout: 30_000 });
        version = out.trim().replace(/^patroni\s*/i, '');
      } catch (err) {
        return { ok: false, why: `${patroniBin()} --version failed (${err.code ?? err.message}): install Debian's \`apt-get install -y patroni python3-etcd\`, or set PATRONI_BIN to a Patroni with etcd3 support` };
      }
      return { ok: true, version };
    },
    configs: [
      { id: 'defaults', ttl: 30, ttlNote: '30 (default)', loopWait: 10, retryTimeout: 10, sync: true, scenarios: ['failover', 'switchover', 'stop'] },
      // Its documented minimum ttl, with retry_timeout lowered to keep its documented rule
      // loop_wait + 2 x retry_timeout <= ttl (3.0.2 does not enforce it).
      { id: 'min-ttl', ttl: 20, ttlNote: '20 (its minimum)', loopWait: 10, retryTimeout: 5, sync: true, scenarios: ['failover'] },
      { id: 'async', ttl: 30, ttlNote: '30 (default), async', loopWait: 10, retryTimeout: 10, sync: false, scenarios: ['failover'] },
    ],
    start: (opts) => startPatroni({ ...opts, pgBin, uid, gid }),
  };
}

function patroniConfig({ name, i, scope, etcd, config, dir, pgBin, passwords }) {
  // JSON is YAML: Patroni reads this file with PyYAML.
  return {
    scope,
    namespace: '/bench-failover/',
    name,
    log: { level: 'INFO' },
    restapi: { listen: `127.0.0.1:${PATRONI_PG_BASE + 10 + i}`, connect_address: `127.0.0.1:${PATRONI_PG_BASE + 10 + i}` },
    etcd3: { hosts: etcd.endpoints },
    bootstrap: {
      dcs: {
        ttl: config.ttl, loop_wait: config.loopWait, retry_timeout: config.retryTimeout,
        synchronous_mode: config.sync,
        // pg_rewind lets a killed leader rejoin as a standby (off by Patroni's default: it would then
        // need its data removed); the rest is Patroni's default.
        postgresql: { use_pg_rewind: true },
      },
      initdb: [{ encoding: 'UTF8' }, 'data-checksums'],
    },
    postgresql: {
      listen: `127.0.0.1:${PATRONI_PG_BASE + i}`,
      connect_address: `127.0.0.1:${PATRONI_PG_BASE + i}`,
      data_dir: join(dir, 'data'),
      bin_dir: pgBin,
      pgpass: join(dir, 'pgpass'),
      authentication: {
        superuser: { username: 'postgres', password: passwords.superuser },
        replication: { username: 'replicator', password: passwords.replication },
        rewind: { username: 'rewinder', password: passwords.rewind },
      },
      parameters: { unix_socket_directories: dir },
      pg_hba: ['local all all trust', 'host replication replicator 127.0.0.1/32 scram-sha-256', 'host all all 127.0.0.1/32 scram-sha-256'],
    },
  };
}

async function startPatroni({ dir, etcd, config, pgBin, uid, gid }) {
  const scope = `bench-${config.id}-${Date.now()}`;
  const passwords = { superuser: secret(), replication: secret(), rewind: secret() };
  mkdirSync(dir, { recursive: true, mode: 0o755 }); // the postgres user traverses it
  const members = [0, 1, 2].map((i) => {
    const name = `patroni${i + 1}`;
    const home = join(dir, name);
    mkdirSync(home, { recursive: true, mode: 0o700 });
    chownSync(home, uid, gid);
    const file = join(home, 'patroni.yml');
    writeFileSync(file, JSON.stringify(patroniConfig({ name, i, scope, etcd, config, dir: home, pgBin, passwords }), null, 2), { mode: 0o600 });
    chownSync(file, uid, gid);
    return { name, home, file, log: join(home, 'patroni.log'), child: null, pgPort: PATRONI_PG_BASE + i, apiUrl: `http://127.0.0.1:${PATRONI_PG_BASE + 10 + i}` };
  });
  const byName = (name) => members.find((m) => m.name === name);

  const run = (m) => {
    m.stopping = false;
    const log = openSync(m.log, 'a');
    // Its own process group; postgres gets one of its own (Patroni starts it through setsid).
    m.child = spawn(patroniBin(), [m.file], {
      uid, gid, detached: true, stdio: ['ignore', log, log],
      env: { PATH: `${pgBin}:/usr/local/bin:/usr/bin:/bin`, HOME: m.home, LANG: 'C.UTF-8' },
    });
  };
  /** Patroni's group and its postmaster's (read from postmaster.pid). */
  const groups = (m) => {
    const pid = Number(readOrEmpty(join(m.home, 'data', 'postmaster.pid')).split('\n')[0]);
    return [m.child?.pid, pid > 0 ? pgidOf(pid) : null].filter((g) => g);
  };
  const kill = async (name) => {
    const m = byName(name);
    m.stopping = true;
    const gs = groups(m);
    for (const g of gs) {
      try {
        process.kill(-g, 'SIGKILL');
      } catch (err) {
        if (err.code !== 'ESRCH') throw err;
      }
    }
    await exited(m.child);
    await groupsGone(gs);
  };
  const stop = async (name, timeoutMs = 60_000) => {
    const m = byName(name);
    if (!m.child) return;
    m.stopping = true;
    m.child.kill('SIGTERM');
    if (!(await Promise.race([exited(m.child).then(() => true), sleep(timeoutMs).then(() => false)]))) await kill(name);
    else await groupsGone(groups(m));
  };

  for (const m of members) run(m);
  return {
    nodes: members.map(({ name, pgPort, apiUrl }) => ({ name, pgPort, apiUrl })),
    password: passwords.superuser,
    kill,
    stop,
    restart: async (name) => run(byName(name)),
    switchover: async (leader) => {
      const r = await httpRequest('POST', `${byName(leader).apiUrl}/switchover`, { leader }, 120_000).catch((err) => ({ status: 0, body: err.message }));
      return { ok: r.status === 200, detail: `HTTP ${r.status}: ${r.body.trim()}` };
    },
    /** Patroni's own view agrees: three members running, one leader, and a sync_standby in sync mode. */
    healthy: async () => {
      for (const m of members) {
        const r = await httpRequest('GET', `${m.apiUrl}/cluster`, undefined, 1000).catch(() => null);
        if (r?.status !== 200) continue;
        const ms = JSON.parse(r.body).members ?? [];
        return ms.length === 3 && ms.every((x) => ['running', 'streaming'].includes(x.state)) &&
          ms.filter((x) => x.role === 'leader').length === 1 && (!config.sync || ms.some((x) => x.role === 'sync_standby'));
      }
      return false;
    },
    /** A node that did not rejoin (a failed rewind): its data removed, cloned again by Patroni. Scratch data only. */
    reclone: async (name) => {
      await kill(name);
      rmSync(join(byName(name).home, 'data'), { recursive: true, force: true });
      run(byName(name));
    },
    logTail: (name) => tail(readOrEmpty(byName(name).log)),
    /** A node whose Patroni exited by itself (not killed or stopped here): its name and exit, else ''. */
    failed: () => members.filter((m) => m.child.exitCode !== null && !m.stopping).map((m) => `${m.name} exited ${m.child.exitCode}`).join(', '),
    close: async () => {
      await Promise.all(members.map((m) => stop(m.name, 30_000)));
    },
  };
}

// ---------------------------------------------------------------- pgrepl (HA mode)

const PGREPL_PG_BASE = 5904; // postgres 5904-5906, agent API 5914-5916

/**
 * pgrepl's HA agent (issue 11) through the bundle, as SPEC §7's test contract starts it. Until the
 * agent exists this system is unavailable and skipped: nothing is measured, nothing is made up.
 * The bundle counts as HA-capable once it no longer refuses HA mode (src/entrypoint.ts: the
 * configuration is validated before the agent exists, and a node with PGREPL_ETCD_ENDPOINTS is
 * refused in one line until then).
 */
const HA_REFUSAL = 'is not available in this build yet';
export function pgreplSystem({ pgBin }) {
  return {
    id: 'pgrepl',
    label: 'pgrepl',
    available() {
      if (!existsSync(BUNDLE)) return { ok: false, why: `not available yet: ${BUNDLE} is missing (npm run build)` };
      const text = readFileSync(BUNDLE, 'utf8');
      if (!text.includes('PGREPL_ETCD_ENDPOINTS') || text.includes(HA_REFUSAL)) {
        return { ok: false, why: 'not available yet: the HA agent is not built', detail: 'dist/pgrepl.cjs refuses HA mode (PGREPL_ETCD_ENDPOINTS)' };
      }
      if (process.getuid?.() !== 0) return { ok: false, why: 'run as root (the bundle drops to the postgres user, as in a container)' };
      return { ok: true, version: gitVersion() };
    },
    configs: [
      // The agent's own defaults (TTL 10 s) are not set here: they are what is measured.
      { id: 'defaults', ttl: 10, ttlNote: '10 (default)', env: {}, sync: true, scenarios: ['failover', 'switchover', 'stop'] },
      // Issue 11's tuned run (goal: failover <= 8 s); LOOP_WAIT + 2 x RETRY_TIMEOUT < TTL as SPEC §7 requires.
      { id: 'tuned', ttl: 6, ttlNote: '6 (tuned)', env: { PGREPL_TTL: '6', PGREPL_LOOP_WAIT: '1', PGREPL_RETRY_TIMEOUT: '2' }, sync: true, scenarios: ['failover'] },
      { id: 'async', ttl: 10, ttlNote: '10 (default), async', env: {}, sync: false, scenarios: ['failover'] },
    ],
    start: (opts) => startPgrepl({ ...opts, pgBin }),
  };
}

function gitVersion() {
  try {
    return `git ${execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: join(BUNDLE, '..', '..'), encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim()}`;
  } catch {
    return 'unknown';
  }
}

async function startPgrepl({ dir, etcd, config, pgBin }) {
  const cluster = `bench-${config.id}-${Date.now()}`;
  mkdirSync(dir, { recursive: true, mode: 0o755 }); // the postgres user traverses it to each PGDATA
  const password = secret();
  const token = secret();
  const nodes = [0, 1, 2].map((i) => {
    const port = PGREPL_PG_BASE + i;
    const api = port + 10;
    return defineNode({
      name: `pgrepl${i + 1}`, port, pgdata: join(dir, `pgrepl${i + 1}`), pgBin, password, token,
      env: {
        PGREPL_ETCD_ENDPOINTS: etcd.endpoints.map((e) => `http://${e}`).join(','),
        PGREPL_CLUSTER: cluster,
        PGREPL_CONNECT_ADDRESS: `127.0.0.1:${port}`,
        PGREPL_API_LISTEN: `127.0.0.1:${api}`,
        PGREPL_SYNC_STANDBYS: config.sync ? '1' : '0',
        ...config.env,
      },
    });
  });
  const byName = (name) => nodes.find((n) => n.name === name);
  const run = (n) => {
    n.stopping = false;
    startNode(n);
    // The whole log too, beside its PGDATA (kept with --keep), as Patroni's are.
    n.child.stderr.pipe(createWriteStream(join(dir, `${n.name}.log`), { flags: 'a' }));
  };
  /** The `sync` key as etcd holds it now ({leader, standbys}), or null. */
  const syncKey = async () => {
    const key = Buffer.from(`/pgrepl/${cluster}/sync`).toString('base64');
    for (const e of etcd.endpoints) {
      const r = await httpRequest('POST', `http://${e}/v3/kv/range`, { key }, 1000).catch(() => null);
      if (r?.status !== 200) continue;
      const kv = JSON.parse(r.body).kvs?.[0];
      return kv ? JSON.parse(Buffer.from(kv.value, 'base64').toString('utf8')) : null;
    }
    return null;
  };
  for (const n of nodes) run(n);
  return {
    nodes: nodes.map((n) => ({ name: n.name, pgPort: n.port, apiUrl: `http://${n.env.PGREPL_API_LISTEN}` })),
    password,
    kill: async (name) => {
      const n = byName(name);
      n.stopping = true;
      await killGroup(n);
      await groupsGone([n.child.pid]); // postgres too, before the same node is started on that PGDATA again
    },
    // The image's STOPSIGNAL: SIGINT (fast shutdown), as `docker stop` sends it.
    stop: async (name) => {
      const n = byName(name);
      n.stopping = true;
      n.child.kill('SIGINT');
      await n.exited;
    },
    restart: async (name) => run(byName(name)),
    switchover: async (leader) => {
      const r = await cli(byName(leader), ['switchover'], 120_000);
      return { ok: r.code === 0, detail: `exit ${r.code}: ${(r.stdout + r.stderr).trim().slice(-500)}` };
    },
    /**
     * pgrepl's own view agrees (`/cluster`, what `pgrepl list --json` prints): three members up, one
     * leader; in sync mode the `sync` key written by THIS leader names a standby. Right after a
     * promotion the key is still the previous leader's until the new one has a standby caught up,
     * and until then no node may take over automatically: a run must not start in that window.
     */
    healthy: async () => {
      for (const n of nodes) {
        const r = await httpRequest('GET', `http://${n.env.PGREPL_API_LISTEN}/cluster`, undefined, 1000).catch(() => null);
        if (r?.status !== 200) continue;
        const c = JSON.parse(r.body);
        if (!(c.members?.length === 3 && c.members.every((m) => ['running', 'streaming'].includes(m.state)) && typeof c.leader === 'string')) return false;
        if (!config.sync) return true;
        const s = await syncKey();
        return s?.leader === c.leader && s.standbys.some((name) => name !== c.leader);
      }
      return false;
    },
    logTail: (name) => tail(byName(name).log),
    failed: () => nodes.filter((n) => n.child.exitCode !== null && !n.stopping).map((n) => `${n.name} exited ${n.child.exitCode}`).join(', '),
    close: async () => {
      for (const n of nodes) n.stopping = true;
      await Promise.all(nodes.map(stopNode));
    },
  };
}
