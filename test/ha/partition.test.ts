/**
 * The leader cut off from etcd (every node reaches each etcd member through a TCP proxy of its own;
 * the leader's are cut: open connections destroyed, new ones black-holed) while writers insert on
 * every node, in synchronous mode, against a real 3-member etcd: the leader stops accepting writes
 * BEFORE any other node accepts one (the writers' timestamps do not overlap), another node leads,
 * nothing acknowledged is lost; once the proxies are restored the old leader rejoins by itself as
 * a standby.
 */
import { describe, expect, it } from 'vitest';
import { waitFor } from '../support/cluster.js';
import { haClusterForFile } from '../support/ha-cluster.js';
import { createWritesTable, now, WRITES_TABLE, WriteRecorder } from '../support/write-recorder.js';

let recorder: WriteRecorder | undefined;
const ha = haClusterForFile({ slot: 3, env: { PGREPL_SYNC_STANDBYS: '1' }, viaProxies: true, more: () => recorder?.summary() ?? '' });

describe('the leader cut off from etcd', () => {
  it('stops accepting writes before another node accepts any; a new leader; the old one rejoins once restored', async () => {
    const c = ha.cluster;
    const old = ha.leader;
    // The nodes do talk to etcd through the proxies (else cutting them would show nothing).
    for (const n of c.nodes) expect(c.proxiesOf(n).reduce((sum, p) => sum + p.relayed(), 0)).toBeGreaterThan(0);
    await createWritesTable(old.pgPort);
    recorder = WriteRecorder.start(c.nodes.map((n) => ({ name: n.name, port: n.pgPort })));
    try {
      await recorder.waitForAcks(old.name, 50);
      await c.cutEtcd(old);
      const cutAt = now();

      const next = await c.waitForLeader({ not: old });
      await recorder.waitForAcks(next.name, 50, cutAt);
      // The isolated node is still up (its API answers) and does not say it is the primary.
      expect(await old.status('/primary')).toBe(503);

      await c.restoreEtcd(old);
      const restoredAt = now();
      await c.waitForReplica(old);
      await recorder.waitForAcks(next.name, 50, restoredAt);

      await recorder.stop();
      expect(recorder.overlaps()).toEqual([]);
      expect(recorder.acksOn(old.name, recorder.acksOn(next.name)[0]!.sentAt)).toEqual([]);
      expect(await recorder.missingOn(next.pgPort)).toEqual([]);
      const rows = await next.count(WRITES_TABLE);
      await waitFor(`${old.name} replaying all ${rows} rows`, async () => (await old.count(WRITES_TABLE)) === rows);
      expect(await recorder.missingOn(old.pgPort)).toEqual([]);
      expect((await c.list()).leader).toBe(next.name);
    } finally {
      await recorder.stop();
    }
  });
});
