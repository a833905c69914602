/**
 * postgres alone killed on the leader (SIGKILL to its postmaster; the agent lives on) while
 * writers insert on every node, in synchronous mode, against a real 3-member etcd: the agent
 * restarts it in place or another node takes over; either way exactly one node leads again,
 * the others stream from it, no acknowledged row is lost and never two nodes accept writes.
 */
import { describe, expect, it } from 'vitest';
import { haClusterForFile } from '../support/ha-cluster.js';
import { postmasterPid } from '../support/postmaster.js';
import { createWritesTable, now, WriteRecorder } from '../support/write-recorder.js';

let recorder: WriteRecorder | undefined;
const ha = haClusterForFile({ slot: 2, env: { PGREPL_SYNC_STANDBYS: '1' }, more: () => recorder?.summary() ?? '' });

describe("postgres killed under the leader's agent", () => {
  it('restarted in place or failed over: one leader again, the others streaming, nothing lost, never two writable', async () => {
    const c = ha.cluster;
    const old = ha.leader;
    await createWritesTable(old.pgPort);
    recorder = WriteRecorder.start(c.nodes.map((n) => ({ name: n.name, port: n.pgPort })));
    try {
      await recorder.waitForAcks(old.name, 50);
      const killed = old.killPostmaster();
      const killedAt = now();

      // Whoever leads now has taken writes since the kill: from a postmaster that is not the killed one.
      const leader = await c.waitForLeader();
      await recorder.waitForAcks(leader.name, 50, killedAt);
      expect(postmasterPid(leader.pgdata)).not.toBe(killed);
      for (const n of c.nodes) if (n !== leader) await c.waitForReplica(n);
      expect(old.running).toBe(true); // the agent outlived its postgres

      await recorder.stop();
      expect(recorder.overlaps()).toEqual([]);
      expect(await recorder.missingOn(leader.pgPort)).toEqual([]);
      expect((await c.list()).leader).toBe(leader.name);
    } finally {
      await recorder.stop();
    }
  });
});
