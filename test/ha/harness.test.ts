/**
 * The HA tests' own instruments, shown able to fail on real servers (the other files trust them):
 *   - the cut proxy relays to a real etcd member; cut, an open connection is destroyed and a new
 *     one is answered by nothing (black hole) or refused; restored, it relays again;
 *   - the write recorder, on a plain (non-HA) primary and its standby, sees acknowledgements on
 *     the primary only, finds every acknowledged row on both, and, once the standby is promoted
 *     behind the primary's back (two nodes writable), reports the overlap.
 */
import http from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { standbyOf } from '../support/cluster.js';
import { startCutProxy, type CutProxy } from '../support/cut-proxy.js';
import { EtcdCluster } from '../support/etcd-cluster.js';
import { haPorts } from '../support/ha-cluster.js';
import { removeScratch, runCommand, scratchDir, type NodeOptions } from '../support/node.js';
import { stopAllNodes } from '../support/process-group.js';
import { RunningNodes } from '../support/running-nodes.js';
import { createWritesTable, WriteRecorder } from '../support/write-recorder.js';

const PORTS = haPorts(6);
let dir: string;
let etcd: EtcdCluster | undefined;
let proxy: CutProxy | undefined;
const nodes = new RunningNodes();

beforeAll(async () => {
  dir = scratchDir('pgrepl-ha-harness-');
  etcd = await EtcdCluster.start({ basePort: PORTS.etcd, members: 1 });
  proxy = await startCutProxy(PORTS.proxy, PORTS.etcd);
});

afterAll(async () => {
  const problems = await stopAllNodes(nodes.byPort, dir);
  await proxy?.close();
  await etcd?.stopAll();
  removeScratch(dir);
  if (problems.length) throw new Error(problems.join('\n'));
});

/** etcd's status through the proxy: 'ok', or why not ('timeout', an error code). */
function statusThroughProxy(agent?: http.Agent): Promise<string> {
  return new Promise((resolve) => {
    const req = http.request(`${proxy!.url}/v3/maintenance/status`, { method: 'POST', timeout: 1000, agent: agent ?? false }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode === 200 ? 'ok' : `status ${res.statusCode}`));
    });
    req.on('timeout', () => req.destroy(Object.assign(new Error('timeout'), { code: 'timeout' })));
    req.on('error', (err: NodeJS.ErrnoException) => resolve(err.code ?? err.message));
    req.end('{}');
  });
}

describe('cut proxy', () => {
  it('relays to etcd; cut: open connections destroyed, new ones black-holed or refused; restored: relays again', async () => {
    expect(await statusThroughProxy()).toBe('ok');
    // A kept-alive connection, open when the cut comes.
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    expect(await statusThroughProxy(agent)).toBe('ok');
    const socket = Object.values(agent.freeSockets).flat()[0]!;
    const closed = new Promise<void>((r) => socket.once('close', () => r()));

    await proxy!.cut('blackhole');
    await closed;
    expect(await statusThroughProxy()).toBe('timeout');
    await proxy!.restore();
    expect(await statusThroughProxy()).toBe('ok');

    await proxy!.cut('refuse');
    expect(await statusThroughProxy()).toBe('ECONNREFUSED');
    await proxy!.restore();
    expect(await statusThroughProxy()).toBe('ok');
    expect(proxy!.relayed()).toBeGreaterThanOrEqual(4);
    agent.destroy();
  });
});

describe('write recorder', () => {
  it('acknowledgements on the primary only, every row kept; two writable nodes are reported', async () => {
    const opts = (port: number, env: Record<string, string> = {}): NodeOptions => ({ pgdata: `${dir}/n${port}`, port, env, detached: true });
    const [p, s] = [PORTS.pg, PORTS.pg + 1];
    await nodes.start(opts(p), 180_000);
    await createWritesTable(p);
    await nodes.start(opts(s, standbyOf(p)), 180_000);

    const recorder = WriteRecorder.start([{ name: 'primary', port: p }, { name: 'standby', port: s }]);
    try {
      await recorder.waitForAcks('primary', 30);
      expect(recorder.writer('standby')).toMatchObject({ acks: 0, lastError: { code: '25006' } });
      expect(recorder.overlaps()).toEqual([]);

      // Split brain, made on purpose: the standby promoted while the primary still takes writes.
      const promote = await runCommand(opts(s, standbyOf(p)), ['promote']);
      expect(promote.code).toBe(0);
      await recorder.waitForAcks('standby', 30);
      await recorder.waitForAcks('primary', recorder.acksOn('primary').length + 30);
    } finally {
      await recorder.stop();
    }
    expect(recorder.overlaps().length).toBeGreaterThan(0);
    // The rows only the promoted standby acknowledged are exactly what the primary lacks.
    const standbyRows = recorder.acksOn('standby').map((a) => a.id).sort((a, b) => a - b);
    expect(await recorder.missingOn(p)).toEqual(standbyRows);
  });
});
