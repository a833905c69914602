/**
 * A planned switchover under write load, in synchronous mode, against a real 3-member etcd:
 * `pgrepl switchover --to` a synchronous standby returns once that one accepts writes; it leads,
 * the old leader streams from it, no acknowledged row is lost and never two nodes accept writes;
 * the request is gone once done.
 */
import { describe, expect, it } from 'vitest';
import { waitFor } from '../support/cluster.js';
import { haClusterForFile } from '../support/ha-cluster.js';
import { createWritesTable, now, WRITES_TABLE, WriteRecorder } from '../support/write-recorder.js';

let recorder: WriteRecorder | undefined;
const ha = haClusterForFile({ slot: 5, env: { PGREPL_SYNC_STANDBYS: '1' }, more: () => recorder?.summary() ?? '' });

describe('switchover under write load (synchronous mode)', () => {
  it('to a synchronous standby: it leads, the old leader follows it, zero acknowledged rows lost, never two writable', async () => {
    const c = ha.cluster;
    const old = ha.leader;
    const target = c.node((await c.list()).sync[0]!);
    await createWritesTable(old.pgPort);
    recorder = WriteRecorder.start(c.nodes.map((n) => ({ name: n.name, port: n.pgPort })));
    try {
      await recorder.waitForAcks(old.name, 50);
      const askedAt = now();
      // It returns once the new primary accepts writes.
      const r = await c.cli(['switchover', '--to', target.name]);
      expect(r, r.stderr).toMatchObject({ code: 0 });
      expect(await target.status('/primary')).toBe(200);

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
