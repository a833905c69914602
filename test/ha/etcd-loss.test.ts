/**
 * etcd failures under a settled HA cluster with writers on every node, against a real 3-member
 * etcd: losing one member (etcd's raft leader, the harder case: an election follows) changes
 * nothing for more than two TTLs: the same node answers /primary every time it is asked, on the
 * same postmaster and timeline, taking writes. Losing etcd's quorum (two members stopped) makes the
 * leader read-only (no node acknowledges a write); when etcd returns, the SAME node leads again on
 * the SAME timeline.
 */
import { describe, expect, it } from 'vitest';
import { waitFor } from '../support/cluster.js';
import { haClusterForFile, timingOf } from '../support/ha-cluster.js';
import { postmasterPid } from '../support/postmaster.js';
import { createWritesTable, now, WriteRecorder } from '../support/write-recorder.js';

let recorder: WriteRecorder | undefined;
const ha = haClusterForFile({ slot: 4, more: () => recorder?.summary() ?? '' });
const { ttl, loopWait } = timingOf();
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('etcd losing a member, then its quorum', () => {
  it('one member killed (the raft leader): no leader change, no demotion for more than two TTLs', async () => {
    const c = ha.cluster;
    const leader = ha.leader;
    const timeline = await leader.timeline();
    const postmaster = postmasterPid(leader.pgdata);
    await createWritesTable(leader.pgPort);
    recorder = WriteRecorder.start(c.nodes.map((n) => ({ name: n.name, port: n.pgPort })));
    try {
      await recorder.waitForAcks(leader.name, 20);
      const victim = await c.etcd.waitForLeader();
      await c.etcd.kill(victim);
      const killedAt = now();

      // Watched, not timed: every answer in the window must name the same single primary.
      const wrong: string[] = [];
      let samples = 0;
      while (now() - killedAt < (2 * ttl + loopWait) * 1000) {
        const p = await c.primaries();
        samples++;
        if (p.length !== 1 || p[0] !== leader) wrong.push(`${new Date().toISOString()}: /primary 200 on [${p.map((n) => n.name).join(', ')}]`);
        await sleep(250);
      }
      expect(samples).toBeGreaterThan(10);
      expect(wrong).toEqual([]);
      expect(postmasterPid(leader.pgdata)).toBe(postmaster);
      expect(await leader.inRecovery()).toBe(false);
      expect(await leader.timeline()).toBe(timeline);
      expect(recorder.acksOn(leader.name, killedAt).length).toBeGreaterThan(0);
      expect(recorder.acksSince(killedAt).filter((a) => a.node !== leader.name)).toEqual([]);
      expect(recorder.overlaps()).toEqual([]);
      expect((await c.list()).leader).toBe(leader.name);

      await c.etcd.restart(victim);
      await waitFor('every etcd member healthy', async () => (await Promise.all([0, 1, 2].map((i) => c.etcd.healthy(i)))).every(Boolean));
    } finally {
      await recorder.stop();
    }
  });

  it('quorum lost (two members stopped): the leader turns read-only; when etcd returns, the same leader on the same timeline', async () => {
    const c = ha.cluster;
    const leader = ha.leader;
    expect(await leader.status('/primary')).toBe(200);
    const timeline = await leader.timeline();
    recorder = WriteRecorder.start(c.nodes.map((n) => ({ name: n.name, port: n.pgPort })));
    try {
      await recorder.waitForAcks(leader.name, 20);
      const raftLeader = await c.etcd.waitForLeader();
      const stopped = [raftLeader, (raftLeader + 1) % 3];
      await Promise.all(stopped.map((i) => c.etcd.stop(i)));

      // Read-only: postgres answers and refuses the INSERT as a read-only transaction (SQLSTATE 25006).
      await waitFor(`${leader.name} refusing writes as read-only`, async () => recorder!.writer(leader.name).lastError?.code === '25006', 120_000);
      const readOnlyAt = now();
      expect(await leader.status('/primary')).toBe(503);
      // For a TTL more, while etcd has no quorum, no node acknowledges a write.
      await sleep(ttl * 1000);
      expect(recorder.acksSince(readOnlyAt)).toEqual([]);
      expect(await c.primaries()).toEqual([]);

      for (const i of stopped) await c.etcd.restart(i);
      const back = await c.waitForLeader();
      expect(back.name).toBe(leader.name);
      await recorder.waitForAcks(leader.name, 20, now());
      expect(await leader.timeline()).toBe(timeline);
      for (const n of c.nodes) if (n !== leader) await c.waitForReplica(n);
      await recorder.stop();
      expect(recorder.overlaps()).toEqual([]);
      expect((await c.list()).leader).toBe(leader.name);
    } finally {
      await recorder.stop();
    }
  });
});
