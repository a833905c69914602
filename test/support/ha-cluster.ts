/**
 * HA nodes for the tests (SPEC §7's test contract): each one `node dist/pgrepl.cjs postgres` with
 * PGREPL_ETCD_ENDPOINTS, PGREPL_CLUSTER, PGREPL_NODE_NAME, PGDATA, PGPORT,
 * PGREPL_CONNECT_ADDRESS=127.0.0.1:PGPORT and PGREPL_API_LISTEN=127.0.0.1:APIPORT, in a process
 * group of its own (so a SIGKILL of the group is a container kill), its stdout and stderr in a log
 * file (searched for secrets, and its tail printed when a test fails). A cluster is a real 3-member
 * etcd (etcd-cluster.ts) and nodes n1, n2, n3; optionally each node reaches etcd through proxies
 * of its own (cut-proxy.ts) that a test can cut.
 *
 * Ports: each test file takes a slot (0..6) and with it etcd 2451+6·slot.. (3 members, client
 * and peer ports), postgres 6011+10·slot.., agent APIs 6111+10·slot.., proxies 6211+10·slot..
 * (3 per node): files run in parallel without sharing a port.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, existsSync, openSync, readdirSync, readFileSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, beforeEach } from 'vitest';
import { replicationPassword } from '../../src/config/token.js';
import type { ClusterListing } from '../../src/ha/list.js';
import { HA_TIMING_DEFAULTS } from '../../src/ha/timing.js';
import { waitFor } from './cluster.js';
import { startCutProxy, type CutMode, type CutProxy } from './cut-proxy.js';
import { BUNDLE } from './env.js';
import { EtcdCluster } from './etcd-cluster.js';
import { nodeEnv, query, removeScratch, runCommand, scratchDir, SUPERUSER_PASSWORD, type RunResult } from './node.js';
import { postmasterPid } from './postmaster.js';
import { groupGone, processesOf } from './process-group.js';

/** The token of every HA test node: distinctive, so that a grep for it cannot match by chance. */
export const HA_TOKEN = 'ha-Token-NEVER-LOGGED-5c2e91';
/** What must never reach an argv, a log or an API answer. */
export const SECRETS = [SUPERUSER_PASSWORD, HA_TOKEN, replicationPassword(HA_TOKEN)];

export interface HaPorts {
  etcd: number;
  pg: number;
  api: number;
  proxy: number;
}

/** The ports of slot `slot` (0..6): one slot per test file. */
export function haPorts(slot: number): HaPorts {
  if (!Number.isInteger(slot) || slot < 0 || slot > 6) throw new Error(`HA test slot ${slot}: 0..6`);
  return { etcd: 2451 + 6 * slot, pg: 6011 + 10 * slot, api: 6111 + 10 * slot, proxy: 6211 + 10 * slot };
}

const range = (from: number, count: number): number[] => Array.from({ length: count }, (_, i) => from + i);

/** Throws, naming them, when any of the ports on 127.0.0.1 is taken. */
async function assertPortsFree(ports: number[]): Promise<void> {
  const taken = (await Promise.all(ports.map((port) => new Promise<number | undefined>((resolve) => {
    const server = net.createServer();
    server.once('error', () => resolve(port));
    server.listen(port, '127.0.0.1', () => server.close(() => resolve(undefined)));
  })))).filter((p): p is number => p !== undefined);
  if (taken.length) throw new Error(`ports ${taken.join(', ')} on 127.0.0.1 are in use: a node or etcd of an interrupted run? (ps -eo pid,pgid,args | grep -e pgrepl.cjs -e etcd)`);
}

export interface ApiAnswer {
  status: number;
  body: string;
}

/** One request to an agent's API, bounded; a network error or no answer in time is status 0 (the body says why). */
export function apiRequest(port: number, path: string, method = 'GET', timeoutMs = 2000): Promise<ApiAnswer> {
  return new Promise((resolve) => {
    const req = http.request({ host: '127.0.0.1', port, path, method, timeout: timeoutMs, agent: false }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      res.on('error', (err) => resolve({ status: 0, body: err.message }));
    });
    req.on('timeout', () => req.destroy(new Error(`no answer within ${timeoutMs} ms`)));
    req.on('error', (err) => resolve({ status: 0, body: err.message }));
    req.end();
  });
}

export class HaNode {
  private child?: ChildProcess;
  private exitedP?: Promise<RunResult>;
  /** Exit results of earlier runs (a node can be restarted on its PGDATA). */
  readonly runs: RunResult[] = [];

  constructor(
    readonly name: string,
    readonly pgPort: number,
    readonly apiPort: number,
    readonly pgdata: string,
    readonly logFile: string,
    private readonly env: () => Record<string, string>,
  ) {}

  /** Starts the agent (postgres is its child) in a process group of its own; output appended to the log file. */
  start(): void {
    if (this.running) throw new Error(`${this.name} is already running`);
    const log = openSync(this.logFile, 'a');
    const child = spawn(process.execPath, [BUNDLE, 'postgres'], {
      env: nodeEnv({ pgdata: this.pgdata, port: this.pgPort, env: this.env() }),
      stdio: ['ignore', log, log],
      detached: true,
    });
    closeSync(log);
    this.child = child;
    this.exitedP = new Promise((res) => {
      child.on('exit', (code, signal) => {
        const r = { code, signal, stdout: '', stderr: '' };
        this.runs.push(r);
        res(r);
      });
    });
  }

  get running(): boolean {
    return this.child !== undefined && this.child.exitCode === null && this.child.signalCode === null;
  }

  /** The agent's PID, which is also its process group's ID. */
  get pid(): number {
    if (!this.child?.pid) throw new Error(`${this.name} was never started`);
    return this.child.pid;
  }

  get exited(): Promise<RunResult> {
    if (!this.exitedP) throw new Error(`${this.name} was never started`);
    return this.exitedP;
  }

  /** A clean stop, as `docker stop` asks the image (SIGINT to the agent); SIGKILL to everything of it if it has not ended within `timeoutMs`. */
  async stop(timeoutMs = 60_000): Promise<{ stopped: boolean; result: RunResult }> {
    if (!this.running) return { stopped: true, result: await this.exited };
    const pid = this.pid;
    this.child!.kill('SIGINT');
    const result = await Promise.race([this.exited, new Promise<undefined>((r) => setTimeout(() => r(undefined), timeoutMs))]);
    if (result) {
      await this.allGone(pid);
      return { stopped: true, result };
    }
    return { stopped: false, result: await this.kill() };
  }

  /**
   * SIGKILL to the node's whole process group (agent, postgres, anything they started), as a
   * container kill; then to whatever still runs on its PGDATA (a postgres that left the group
   * would not outlive a container either). Waits until all of it is gone.
   */
  async kill(): Promise<RunResult> {
    const pid = this.pid;
    try {
      process.kill(-pid, 'SIGKILL');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ESRCH') throw err;
    }
    for (const p of processesOf(this.pgdata)) {
      try {
        process.kill(p.pid, 'SIGKILL');
      } catch {
        // gone meanwhile
      }
    }
    const result = await this.exited;
    await this.allGone(pid);
    return result;
  }

  private async allGone(pgid: number): Promise<void> {
    await groupGone(pgid);
    await waitFor(`nothing left running on ${this.pgdata}`, async () => processesOf(this.pgdata).length === 0, 30_000);
  }

  /** SIGKILL to the postmaster alone (its PID from postmaster.pid), the agent left alive. */
  killPostmaster(): number {
    const pid = postmasterPid(this.pgdata);
    if (pid === undefined) throw new Error(`${this.name}: no postmaster.pid in ${this.pgdata}`);
    process.kill(pid, 'SIGKILL');
    return pid;
  }

  api(path: string, method = 'GET'): Promise<ApiAnswer> {
    return apiRequest(this.apiPort, path, method);
  }

  async status(path: string): Promise<number> {
    return (await this.api(path)).status;
  }

  log(): string {
    return existsSync(this.logFile) ? readFileSync(this.logFile, 'utf8') : '';
  }

  /** pgrepl's own log lines (JSON); postgres's lines are skipped. */
  logLines(): { level: number; msg: string; [k: string]: unknown }[] {
    return this.log()
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .flatMap((l) => {
        try {
          return [JSON.parse(l)];
        } catch {
          return [];
        }
      });
  }

  logTail(lines = 40): string {
    return this.log().trimEnd().split('\n').slice(-lines).join('\n');
  }

  /** The timeline postgres writes on now (a primary's). */
  async timeline(): Promise<number> {
    const r = await query<{ f: string }>(this.pgPort, 'SELECT pg_walfile_name(pg_current_wal_lsn()) AS f');
    return parseInt(r[0]!.f.slice(0, 8), 16);
  }

  async systemIdentifier(): Promise<string> {
    return String((await query<{ s: string }>(this.pgPort, 'SELECT system_identifier::text AS s FROM pg_control_system()'))[0]!.s);
  }

  async inRecovery(): Promise<boolean> {
    return (await query<{ r: boolean }>(this.pgPort, 'SELECT pg_is_in_recovery() AS r'))[0]!.r;
  }

  /** Rows in `table` on this node (a standby: what it has replayed). */
  async count(table: string): Promise<number> {
    return (await query<{ n: number }>(this.pgPort, `SELECT count(*)::int AS n FROM ${table}`))[0]!.n;
  }
}

export interface HaClusterOptions {
  /** The test file's port slot (haPorts). */
  slot: number;
  /** PGREPL_CLUSTER */
  cluster?: string;
  /** Node names, n1.. n3 by default. */
  names?: string[];
  /** More environment for every node (PGREPL_SYNC_STANDBYS, ...). */
  env?: Record<string, string>;
  /** Each node reaches each etcd member through a proxy of its own (cutEtcd). */
  viaProxies?: boolean;
}

export class HaCluster {
  readonly nodes: HaNode[] = [];
  private readonly proxies = new Map<string, CutProxy[]>();
  readonly clusterName: string;
  readonly ports: HaPorts;

  private constructor(readonly dir: string, readonly etcd: EtcdCluster, private readonly o: HaClusterOptions) {
    this.clusterName = o.cluster ?? 'ha';
    this.ports = haPorts(o.slot);
  }

  /** etcd up and healthy, proxies listening, nodes created (not started: startAll). */
  static async create(o: HaClusterOptions): Promise<HaCluster> {
    const p = haPorts(o.slot);
    // A node or etcd left running by an interrupted run would join this cluster and spoil it: refuse at once.
    await assertPortsFree([...range(p.etcd, 6), ...range(p.pg, 10), ...range(p.api, 10), ...(o.viaProxies ? range(p.proxy, 10) : [])]);
    const dir = scratchDir('pgrepl-ha-');
    let etcd: EtcdCluster;
    try {
      etcd = await EtcdCluster.start({ basePort: haPorts(o.slot).etcd });
    } catch (err) {
      removeScratch(dir);
      throw err;
    }
    const c = new HaCluster(dir, etcd, o);
    const names = o.names ?? ['n1', 'n2', 'n3'];
    for (const [i, name] of names.entries()) {
      if (o.viaProxies) {
        const ps: CutProxy[] = [];
        for (let m = 0; m < etcd.endpoints.length; m++) ps.push(await startCutProxy(c.ports.proxy + 3 * i + m, c.ports.etcd + 2 * m));
        c.proxies.set(name, ps);
      }
      c.addNode(name, c.ports.pg + i, c.ports.api + i);
    }
    return c;
  }

  /**
   * A node of this cluster (not started); ports must be free ones of the slot. `label` names its
   * PGDATA and log file (default: its name; another agent of the same name needs another label).
   */
  addNode(name: string, pgPort: number, apiPort: number, label = name): HaNode {
    const endpoints = () => (this.proxies.get(name)?.map((p) => p.url) ?? this.etcd.endpoints).join(',');
    const n = new HaNode(name, pgPort, apiPort, join(this.dir, `pgdata-${label}`), join(this.dir, `${label}.log`), () => ({
      PGREPL_ETCD_ENDPOINTS: endpoints(),
      PGREPL_CLUSTER: this.clusterName,
      PGREPL_NODE_NAME: name,
      PGREPL_CONNECT_ADDRESS: `127.0.0.1:${pgPort}`,
      PGREPL_API_LISTEN: `127.0.0.1:${apiPort}`,
      PGREPL_TOKEN: HA_TOKEN,
      ...this.o.env,
    }));
    this.nodes.push(n);
    return n;
  }

  node(name: string): HaNode {
    const n = this.nodes.find((x) => x.name === name);
    if (!n) throw new Error(`no node ${name}`);
    return n;
  }

  running(): HaNode[] {
    return this.nodes.filter((n) => n.running);
  }

  /** Starts the given nodes (all of them by default) at once. */
  startAll(nodes: HaNode[] = this.nodes): void {
    for (const n of nodes) n.start();
  }

  /** The running nodes whose /primary answers 200 now. */
  async primaries(among: HaNode[] = this.running()): Promise<HaNode[]> {
    const codes = await Promise.all(among.map((n) => n.status('/primary')));
    return among.filter((_, i) => codes[i] === 200);
  }

  /** Waits until exactly one of the running nodes (optionally: not `not`) answers 200 on /primary; that node. */
  waitForLeader(opts: { not?: HaNode; timeoutMs?: number } = {}): Promise<HaNode> {
    return waitFor(`exactly one node answering 200 on /primary${opts.not ? `, not ${opts.not.name}` : ''}`, async () => {
      const p = await this.primaries();
      return p.length === 1 && p[0] !== opts.not ? p[0] : undefined;
    }, opts.timeoutMs ?? 180_000);
  }

  /** Waits until the node answers 200 on /replica: a standby streaming from the leader. */
  waitForReplica(n: HaNode, timeoutMs = 180_000): Promise<true> {
    return waitFor(`${n.name} answering 200 on /replica`, async () => (await n.status('/replica')) === 200, timeoutMs);
  }

  /**
   * The cluster settled: exactly one leader, every other running node streaming from it, and (in
   * synchronous mode) the `sync` key naming a standby, so that commits wait for one from here on.
   */
  settled(timeoutMs = 180_000): Promise<HaNode> {
    // A node that exits meanwhile will not settle: say so at once, with its log, rather than time out.
    const exit = Promise.race(this.running().map((n) => n.exited.then(() => n))).then((n) => {
      throw new Error(`${n.name} exited while the cluster was settling:\n${n.logTail()}`);
    });
    exit.catch(() => undefined);
    return Promise.race([this.settling(timeoutMs), exit]);
  }

  private async settling(timeoutMs: number): Promise<HaNode> {
    const leader = await this.waitForLeader({ timeoutMs });
    for (const n of this.running()) if (n !== leader) await this.waitForReplica(n, timeoutMs);
    if (Number(this.o.env?.PGREPL_SYNC_STANDBYS ?? 0) > 0) {
      await waitFor('the sync key naming a standby of the leader', async () => {
        const l = await this.list();
        return l.leader === leader.name && l.sync.length > 0;
      }, timeoutMs);
    }
    return leader;
  }

  /** A `pgrepl` command as an operator runs it anywhere with the nodes' etcd variables (straight to etcd). */
  cli(args: string[]): Promise<RunResult> {
    return runCommand({
      pgdata: join(this.dir, 'cli-pgdata'),
      port: this.ports.pg + 9,
      env: { PGREPL_ETCD_ENDPOINTS: this.etcd.endpoints.join(','), PGREPL_CLUSTER: this.clusterName, PGREPL_TOKEN: HA_TOKEN },
    }, args);
  }

  /** `pgrepl list --json`, parsed; throws with its output when it fails. */
  async list(): Promise<ClusterListing> {
    const r = await this.cli(['list', '--json']);
    if (r.code !== 0) throw new Error(`pgrepl list --json exited ${r.code}: ${r.stderr.trim()}`);
    return JSON.parse(r.stdout) as ClusterListing;
  }

  /** Cuts the node off from etcd: every proxy of its own (viaProxies). */
  async cutEtcd(n: HaNode, mode: CutMode = 'blackhole'): Promise<void> {
    await Promise.all(this.proxiesOf(n).map((p) => p.cut(mode)));
  }

  async restoreEtcd(n: HaNode): Promise<void> {
    await Promise.all(this.proxiesOf(n).map((p) => p.restore()));
  }

  proxiesOf(n: HaNode): CutProxy[] {
    const ps = this.proxies.get(n.name);
    if (!ps) throw new Error(`${n.name} reaches etcd directly: create the cluster with viaProxies`);
    return ps;
  }

  /** Every node's log tail, for a failing test's output. */
  logTails(lines = 40): string {
    return this.nodes.map((n) => `----- ${n.name} (${n.logFile}), last ${lines} lines\n${n.logTail(lines)}`).join('\n');
  }

  /** Everything a secret must not reach, per source: the nodes' logs. */
  logs(): { source: string; text: string }[] {
    return this.nodes.map((n) => ({ source: n.logFile, text: n.log() }));
  }

  /**
   * Stops every node (cleanly; killed if it does not stop), kills whatever is left under the
   * scratch directory, closes the proxies, stops etcd and removes the scratch directory. Returns
   * what went wrong.
   */
  async teardown(): Promise<string[]> {
    const problems: string[] = [];
    await Promise.all(this.nodes.map(async (n) => {
      const { stopped } = await n.stop(30_000);
      if (!stopped) problems.push(`${n.name} did not stop on SIGINT within 30 s: killed`);
    }));
    const left = processesOf(this.dir);
    for (const p of left) {
      try {
        process.kill(p.pid, 'SIGKILL');
      } catch {
        // gone meanwhile
      }
    }
    if (left.length) problems.push(`processes left behind: ${left.map((p) => `${p.pid} ${p.cmd}`).join('; ')}`);
    for (const ps of this.proxies.values()) await Promise.all(ps.map((p) => p.close()));
    await this.etcd.stopAll();
    // PGREPL_TEST_KEEP=1 keeps the nodes' data directories and logs, to look at after a failure.
    if (process.env.PGREPL_TEST_KEEP) console.error(`kept ${this.dir}`);
    else removeScratch(this.dir);
    return problems;
  }
}

/** PGREPL_TTL and PGREPL_LOOP_WAIT of the nodes, seconds: the defaults unless the file sets them. */
export function timingOf(env: Record<string, string> = {}): { ttl: number; loopWait: number } {
  return { ttl: Number(env.PGREPL_TTL ?? HA_TIMING_DEFAULTS.ttl), loopWait: Number(env.PGREPL_LOOP_WAIT ?? HA_TIMING_DEFAULTS.loopWait) };
}

export interface HaFixture {
  readonly cluster: HaCluster;
  /** The leader once the cluster first settled. */
  readonly leader: HaNode;
}

/**
 * A test file's cluster: created, every node started at once and settled before its tests
 * (`beforeStart` runs just before the nodes start); every node's log tail printed when a test (or
 * the start) fails; torn down after the tests, failing the file if that went wrong.
 */
export function haClusterForFile(o: HaClusterOptions & { beforeStart?: (c: HaCluster) => void; more?: () => string }): HaFixture {
  let cluster: HaCluster | undefined;
  let leader: HaNode | undefined;
  beforeAll(async () => {
    cluster = await HaCluster.create(o);
    o.beforeStart?.(cluster);
    cluster.startAll();
    try {
      leader = await cluster.settled();
    } catch (err) {
      throw new Error(`${(err as Error).message}\n${cluster.logTails()}`);
    }
  });
  afterAll(async () => {
    const problems = await cluster?.teardown();
    if (problems?.length) throw new Error(problems.join('\n'));
  });
  beforeEach(({ onTestFailed }) => {
    onTestFailed(() => {
      if (cluster) console.error(`${o.more ? `${o.more()}\n` : ''}${cluster.logTails()}`);
    });
  });
  return {
    get cluster() {
      if (!cluster) throw new Error('the HA cluster is not started');
      return cluster;
    },
    get leader() {
      if (!leader) throw new Error('the HA cluster has not settled');
      return leader;
    },
  };
}

/** Entries of a directory, [] when it does not exist. */
export function entriesOf(dir: string): string[] {
  return existsSync(dir) ? readdirSync(dir) : [];
}

/** Which of the secrets `text` contains. */
export const secretsIn = (text: string): string[] => SECRETS.filter((s) => text.includes(s));
