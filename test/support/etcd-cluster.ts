/**
 * A real etcd cluster for the tests: Debian's etcd-server, N members (3 by default) on 127.0.0.1,
 * each with its own data directory in a scratch directory. Member i listens for clients on
 * basePort + 2i and for peers on basePort + 2i + 1. Raft timing is etcd's default (heartbeat
 * 100 ms, election timeout 1000 ms) unless given: the HA tests want the elections a real cluster
 * has. Members can be killed, stopped, restarted, frozen (SIGSTOP) and thawed.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { prefixEnd } from '../../src/etcd/codec.js';
import { waitFor } from './cluster.js';

export interface EtcdClusterOptions {
  /** Client port of member 0; member i uses basePort + 2i (clients) and basePort + 2i + 1 (peers). */
  basePort: number;
  members?: number;
  heartbeatMs?: number;
  electionMs?: number;
  /** More etcd flags, for every member. */
  extraArgs?: string[];
  /** Serve clients over TLS, requiring a client certificate signed by the CA (see makeTestCertificates). */
  tls?: TestCertificates;
}

/**
 * PEM files of a throw-away CA, a server certificate for 127.0.0.1 and client certificates. The
 * client certificate has no CommonName: with authentication on, etcd's gateway refuses a client
 * certificate that has one (`clientCnCertFile`, to show that).
 */
export interface TestCertificates {
  caFile: string;
  serverCertFile: string;
  serverKeyFile: string;
  clientCertFile: string;
  clientKeyFile: string;
  clientCnCertFile: string;
  clientCnKeyFile: string;
}

/** Makes a CA and the certificates signed by it in `dir`, with openssl (EC keys: fast). */
export function makeTestCertificates(dir: string): TestCertificates {
  const f = (name: string) => join(dir, name);
  const openssl = (...args: string[]) => execFileSync('openssl', args, { stdio: ['ignore', 'ignore', 'pipe'] });
  const key = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
  openssl('req', '-x509', ...key, '-keyout', f('ca.key'), '-out', f('ca.crt'), '-days', '2', '-subj', '/CN=pgrepl test CA');
  for (const [name, subject, ext] of [
    ['server', '/CN=127.0.0.1', 'subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth,clientAuth'],
    ['client', '/O=pgrepl test client', 'extendedKeyUsage=clientAuth'],
    ['client-cn', '/CN=pgrepl test client', 'extendedKeyUsage=clientAuth'],
  ] as const) {
    writeFileSync(f(`${name}.ext`), `${ext}\n`);
    openssl('req', ...key, '-keyout', f(`${name}.key`), '-out', f(`${name}.csr`), '-subj', subject);
    openssl('x509', '-req', '-in', f(`${name}.csr`), '-CA', f('ca.crt'), '-CAkey', f('ca.key'), '-CAcreateserial', '-out', f(`${name}.crt`), '-days', '2', '-extfile', f(`${name}.ext`));
  }
  return {
    caFile: f('ca.crt'),
    serverCertFile: f('server.crt'),
    serverKeyFile: f('server.key'),
    clientCertFile: f('client.crt'),
    clientKeyFile: f('client.key'),
    clientCnCertFile: f('client-cn.crt'),
    clientCnKeyFile: f('client-cn.key'),
  };
}

interface Member {
  name: string;
  clientUrl: string;
  peerUrl: string;
  dataDir: string;
  log: string;
  process?: ChildProcess;
  frozen?: boolean;
}

/** One request to a member (no client of ours: the fixture must not depend on the code under test). */
function request(url: string, path: string, body: object | undefined, tls: https.AgentOptions | undefined, token?: string, timeoutMs = 1000): Promise<string> {
  return new Promise((resolve, reject) => {
    const headers: Record<string, string> = { 'Content-Type': 'application/json', ...(token ? { Authorization: token } : {}) };
    const options = { method: body ? 'POST' : 'GET', timeout: timeoutMs, headers, ...tls };
    const req = (url.startsWith('https:') ? https : http).request(url + path, options, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (text += d));
      res.on('end', () => resolve(text));
    });
    req.on('timeout', () => req.destroy(new Error(`${url}${path}: no answer within ${timeoutMs} ms`)));
    req.on('error', reject);
    req.end(body ? JSON.stringify(body) : undefined);
  });
}

export class EtcdCluster {
  readonly dir: string;
  private readonly members: Member[];

  private constructor(private readonly options: EtcdClusterOptions) {
    this.dir = mkdtempSync(join(tmpdir(), 'pgrepl-etcd-'));
    const count = options.members ?? 3;
    const scheme = options.tls ? 'https' : 'http';
    this.members = Array.from({ length: count }, (_, i) => ({
      name: `m${i}`,
      clientUrl: `${scheme}://127.0.0.1:${options.basePort + 2 * i}`,
      peerUrl: `http://127.0.0.1:${options.basePort + 2 * i + 1}`,
      dataDir: join(this.dir, `m${i}`),
      log: join(this.dir, `m${i}.log`),
    }));
  }

  /** Starts every member and waits until the cluster has a leader and every member is healthy. */
  static async start(options: EtcdClusterOptions): Promise<EtcdCluster> {
    const cluster = new EtcdCluster(options);
    try {
      for (let i = 0; i < cluster.members.length; i++) cluster.spawn(i);
      await waitFor('every etcd member healthy', async () => (await Promise.all(cluster.members.map((_, i) => cluster.healthy(i)))).every(Boolean), 30_000);
    } catch (err) {
      const logs = cluster.members.map((m) => `${m.name}: ${cluster.logTail(m)}`).join('\n');
      await cluster.stopAll();
      throw new Error(`${(err as Error).message}\n${logs}`);
    }
    return cluster;
  }

  /** Client URLs, member 0 first. */
  get endpoints(): string[] {
    return this.members.map((m) => m.clientUrl);
  }

  endpoint(i: number): string {
    return this.members[i]!.clientUrl;
  }

  private spawn(i: number): void {
    const m = this.members[i]!;
    const o = this.options;
    const args = [
      `--name=${m.name}`,
      `--data-dir=${m.dataDir}`,
      `--listen-client-urls=${m.clientUrl}`,
      `--advertise-client-urls=${m.clientUrl}`,
      `--listen-peer-urls=${m.peerUrl}`,
      `--initial-advertise-peer-urls=${m.peerUrl}`,
      `--initial-cluster=${this.members.map((x) => `${x.name}=${x.peerUrl}`).join(',')}`,
      '--initial-cluster-state=new',
      `--initial-cluster-token=pgrepl-test-${o.basePort}`,
      ...(o.heartbeatMs ? [`--heartbeat-interval=${o.heartbeatMs}`] : []),
      ...(o.electionMs ? [`--election-timeout=${o.electionMs}`] : []),
      '--logger=zap',
      ...(o.tls ? [`--cert-file=${o.tls.serverCertFile}`, `--key-file=${o.tls.serverKeyFile}`, `--trusted-ca-file=${o.tls.caFile}`, '--client-cert-auth'] : []),
      ...(o.extraArgs ?? []),
    ];
    const log = openSync(m.log, 'a');
    m.process = spawn('etcd', args, { stdio: ['ignore', log, log] });
    closeSync(log);
    m.frozen = false;
  }

  private logTail(m: Member): string {
    try {
      return readFileSync(m.log, 'utf8').trim().split('\n').slice(-5).join('\n');
    } catch {
      return '(no log)';
    }
  }

  /** TLS options of the fixture's own requests: the test CA and client certificate. */
  private get tlsOptions(): https.AgentOptions | undefined {
    const t = this.options.tls;
    return t && { ca: readFileSync(t.caFile), cert: readFileSync(t.clientCertFile), key: readFileSync(t.clientKeyFile) };
  }

  /** POSTs to member i's gateway (with `token` once authentication is on). */
  async post(i: number, path: string, body: object, token?: string): Promise<Record<string, unknown>> {
    const text = await request(this.members[i]!.clientUrl, path, body, this.tlsOptions, token);
    return JSON.parse(text) as Record<string, unknown>;
  }

  /**
   * Turns authentication on: a root user, then each user with read-write access to its prefix.
   * Through the gateway (passwords in request bodies, never on a command line).
   */
  async enableAuth(rootPassword: string, users: { name: string; password: string; prefix: string }[]): Promise<void> {
    const b64 = (v: string | Buffer) => Buffer.from(v).toString('base64');
    const steps: [string, object][] = [
      ['/v3/auth/user/add', { name: 'root', password: rootPassword }],
      ['/v3/auth/user/grant', { user: 'root', role: 'root' }],
    ];
    for (const u of users) {
      steps.push(
        ['/v3/auth/role/add', { name: u.name }],
        ['/v3/auth/role/grant', { name: u.name, perm: { permType: 'READWRITE', key: b64(u.prefix), range_end: b64(prefixEnd(u.prefix)) } }],
        ['/v3/auth/user/add', { name: u.name, password: u.password }],
        ['/v3/auth/user/grant', { user: u.name, role: u.name }],
      );
    }
    steps.push(['/v3/auth/enable', {}]);
    for (const [path, body] of steps) {
      const answer = await this.post(0, path, body);
      if (answer.error) throw new Error(`${path}: ${JSON.stringify(answer.error)}`);
    }
  }

  /** The member answers and says it is healthy (it has a leader). */
  async healthy(i: number): Promise<boolean> {
    return request(this.members[i]!.clientUrl, '/health', undefined, this.tlsOptions).then(
      (text) => /"health":\s*"true"/.test(text),
      () => false,
    );
  }

  /** Index of the member that is raft's leader now, as the running members see it; undefined if none knows one. */
  async leader(): Promise<number | undefined> {
    type Status = { leader?: string; header?: { member_id?: string } };
    const statuses = await Promise.all(
      this.members.map((m, i) => (m.process && !m.frozen ? (this.post(i, '/v3/maintenance/status', {}) as Promise<Status>).catch(() => undefined) : undefined)),
    );
    const byId = new Map(statuses.map((s, i) => [s?.header?.member_id, i]));
    for (const s of statuses) if (s?.leader && byId.has(s.leader)) return byId.get(s.leader);
    return undefined;
  }

  /** Waits until some running member leads; its index. */
  waitForLeader(timeoutMs = 30_000): Promise<number> {
    return waitFor('an etcd leader', async () => {
      const l = await this.leader();
      return l === undefined ? undefined : l + 1;
    }, timeoutMs).then((l) => l - 1);
  }

  private async signal(i: number, signal: NodeJS.Signals): Promise<void> {
    const m = this.members[i]!;
    const p = m.process;
    if (!p) return;
    if (m.frozen) p.kill('SIGCONT');
    const exited = p.exitCode !== null || p.signalCode !== null ? Promise.resolve() : new Promise<void>((r) => p.once('exit', () => r()));
    p.kill(signal);
    await exited;
    m.process = undefined;
    m.frozen = false;
  }

  running(i: number): boolean {
    return this.members[i]!.process !== undefined;
  }

  /** SIGKILL: the member is gone at once (its peers see the connection drop). */
  kill(i: number): Promise<void> {
    return this.signal(i, 'SIGKILL');
  }

  /** SIGTERM: a clean stop. */
  stop(i: number): Promise<void> {
    return this.signal(i, 'SIGTERM');
  }

  /** Starts a stopped member again on its data directory; waits until it answers on its client port. */
  async restart(i: number): Promise<void> {
    if (this.members[i]!.process) throw new Error(`etcd member ${i} is still running`);
    this.spawn(i);
    const m = this.members[i]!;
    await waitFor(`etcd member ${m.name} answering`, async () => Boolean(await this.post(i, '/v3/maintenance/status', {}).catch(() => undefined)), 30_000);
  }

  /** SIGSTOP: the member keeps its connections open and answers nothing. */
  freeze(i: number): void {
    const m = this.members[i]!;
    m.process?.kill('SIGSTOP');
    m.frozen = true;
  }

  thaw(i: number): void {
    const m = this.members[i]!;
    m.process?.kill('SIGCONT');
    m.frozen = false;
  }

  /** Stops every member and deletes the scratch directory. */
  async stopAll(): Promise<void> {
    await Promise.all(this.members.map((_, i) => this.kill(i)));
    rmSync(this.dir, { recursive: true, force: true });
  }
}
