/**
 * A planned switchover under write load, in synchronous mode, against a real 3-member etcd: the
 * request names a synchronous standby; it leads afterwards, the old leader streams from it, no
 * acknowledged row is lost and never two nodes accept writes; the request is gone once done.
 */
import { describe, expect, it } from 'vitest';
import { EtcdClient } from '../../src/etcd/index.js';
import { encodeSwitchover, haKeys } from '../../src/ha/keys.js';
import { waitFor } from '../support/cluster.js';
import { haClusterForFile, type HaCluster } from '../support/ha-cluster.js';
import { createWritesTable, now, WRITES_TABLE, WriteRecorder } from '../support/write-recorder.js';

let recorder: WriteRecorder | undefined;
const ha = haClusterForFile({ slot: 5, env: { PGREPL_SYNC_STANDBYS: '1' }, more: () => recorder?.summary() ?? '' });

/** The `switchover` key as src/ha/keys.ts encodes it, written straight to etcd (no `pgrepl switchover` command yet). */
async function requestSwitchover(c: HaCluster, from: string, to: string): Promise<void> {
  const etcd = new EtcdClient({ endpoints: c.etcd.endpoints, timeoutMs: 3000 });
  try {
    await etcd.put(haKeys(`/pgrepl/${c.clusterName}/`).switchover, encodeSwitchover({ from, to, at: new Date().toISOString() }));
  } finally {
    etcd.close();
  }
}

describe('switchover under write load (synchronous mode)', () => {
  it('to a synchronous standby: it leads, the old leader follows it, zero acknowledged rows lost, never two writable', async () => {
    const c = ha.cluster;
    const old = ha.leader;
    const target = c.node((await c.list()).sync[0]!);
    await createWritesTable(old.pgPort);
    recorder = WriteRecorder.start(c.nodes.map((n) => ({ name: n.name, port: n.pgPort })));
    try {
      await recorder.waitForAcks(old.name, 50);
      await requestSwitchover(c, old.name, target.name);
      const askedAt = now();

      const next = await c.waitForLeader({ not: old });
      expect(next.name).toBe(target.name);
      await recorder.waitForAcks(next.name, 50, askedAt);
      await c.waitForReplica(old);

      await recorder.stop();
      expect(recorder.overlaps()).toEqual([]);
      expect(await recorder.missingOn(next.pgPort)).toEqual([]);
      const rows = await next.count(WRITES_TABLE);
      await waitFor(`${old.name} replaying all ${rows} rows`, async () => (await old.count(WRITES_TABLE)) === rows);
      const listed = await c.list();
      expect(listed).toMatchObject({ leader: target.name, switchover: null });
    } finally {
      await recorder.stop();
    }
  });
});
