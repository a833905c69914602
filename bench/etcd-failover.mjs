// A 3-member etcd cluster for bench/failover.mjs: Debian's etcd-server (3.4) on 127.0.0.1 only,
// member i on client port BASE+2i and peer port BASE+2i+1 (BASE 2401: 2401-2406), data in the
// scratch directory given, every member stopped by stop() (SIGTERM, SIGKILL after 10 s).
import { execFileSync, spawn } from 'node:child_process';
import { mkdirSync, openSync } from 'node:fs';
import { join } from 'node:path';
import { httpRequest } from './writer-failover.mjs';
import { sleep } from './nodes.mjs';

const MEMBERS = 3;

/** The etcd binary, or an Error saying what to install. */
export function findEtcd() {
  const bin = process.env.BENCH_ETCD || 'etcd';
  try {
    const out = execFileSync(bin, ['--version'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
    return { bin, version: /etcd Version:\s*(\S+)/.exec(out)?.[1] ?? out.split('\n')[0] };
  } catch {
    throw new Error(`etcd not found (${bin}): install Debian's etcd with \`apt-get install -y etcd-server etcd-client\`, or set BENCH_ETCD to an etcd 3.4+ binary`);
  }
}

/**
 * Starts the cluster and waits (at most 60 s) until every member answers /health with true.
 * Returns { endpoints: ['127.0.0.1:2401', ...], version, stop() }.
 */
export async function startEtcd({ dir, basePort = 2401 }) {
  const { bin, version } = findEtcd();
  const peer = (i) => `http://127.0.0.1:${basePort + 2 * i + 1}`;
  const client = (i) => `127.0.0.1:${basePort + 2 * i}`;
  const initialCluster = Array.from({ length: MEMBERS }, (_, i) => `e${i}=${peer(i)}`).join(',');
  const children = [];
  const stop = async () => {
    for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGTERM');
    const gone = (c) => new Promise((r) => (c.exitCode !== null || c.signalCode !== null ? r() : c.once('exit', r)));
    const all = Promise.all(children.map(gone));
    if (!(await Promise.race([all.then(() => true), sleep(10_000).then(() => false)]))) {
      for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
      await all;
    }
  };
  try {
    for (let i = 0; i < MEMBERS; i++) {
      const data = join(dir, `etcd-${i}`);
      mkdirSync(data, { recursive: true, mode: 0o700 });
      const log = openSync(join(dir, `etcd-${i}.log`), 'a');
      children.push(spawn(bin, [
        '--name', `e${i}`, '--data-dir', data,
        '--listen-client-urls', `http://${client(i)}`, '--advertise-client-urls', `http://${client(i)}`,
        '--listen-peer-urls', peer(i), '--initial-advertise-peer-urls', peer(i),
        '--initial-cluster', initialCluster, '--initial-cluster-state', 'new', '--initial-cluster-token', `bench-failover-${process.pid}`,
      ], { stdio: ['ignore', log, log], env: { PATH: process.env.PATH, HOME: dir }, detached: true })); // a Ctrl-C reaches the runner, which stops them
    }
    const deadline = Date.now() + 60_000;
    for (let i = 0; i < MEMBERS; i++) {
      for (;;) {
        const r = await httpRequest('GET', `http://${client(i)}/health`, undefined, 1000).catch(() => null);
        if (r?.status === 200 && /"health":\s*"true"/.test(r.body)) break;
        if (children[i].exitCode !== null) throw new Error(`etcd member e${i} exited (${children[i].exitCode}): see ${join(dir, `etcd-${i}.log`)}; are ports ${basePort}-${basePort + 2 * MEMBERS - 1} free?`);
        if (Date.now() > deadline) throw new Error(`etcd member e${i} not healthy within 60 s: see ${join(dir, `etcd-${i}.log`)}`);
        await sleep(200);
      }
    }
  } catch (err) {
    await stop();
    throw err;
  }
  return { endpoints: Array.from({ length: MEMBERS }, (_, i) => client(i)), version, stop };
}
