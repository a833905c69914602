/**
 * The leader's whole node SIGKILLed (its process group: agent and postgres, as a container kill)
 * while writers insert on every node, in synchronous mode (PGREPL_SYNC_STANDBYS=1), against a real
 * 3-member etcd: another node leads, no acknowledged row is lost, never two nodes accept writes;
 * the killed node, started again on its PGDATA while the writers go on, rejoins by itself as a
 * standby of the new leader (rewind or follow), with every acknowledged row, never writable.
 * And a client without a proxy follows the primary: psql with a libpq multi-host connection
 * string (every node, target_session_attrs) lands on the old leader before and on the new one
 * after (issue 12 part 4: what docs/ha.md tells clients to use).
 * With TLS on (PGREPL_TLS=self-signed on every node): every node streams over TLS, from the first
 * leader and, after the failover and the old leader's rejoin (pg_rewind's connection included),
 * from the new one.
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { waitFor } from '../support/cluster.js';
import { PG_PATH } from '../support/env.js';
import { query, SUPERUSER_PASSWORD } from '../support/node.js';
import { entriesOf, haClusterForFile } from '../support/ha-cluster.js';
import { createWritesTable, now, WRITES_TABLE, WriteRecorder } from '../support/write-recorder.js';

let recorder: WriteRecorder | undefined;

/** The port of the server psql reached through a multi-host connection string naming every node (the password by environment, never argv). */
async function landsOn(ports: number[], attrs: string): Promise<number> {
  const conninfo = `host=${ports.map(() => '127.0.0.1').join(',')} port=${ports.join(',')} user=postgres dbname=postgres connect_timeout=2 target_session_attrs=${attrs}`;
  const { stdout } = await promisify(execFile)('psql', ['-XAtc', 'SELECT inet_server_port()', conninfo], {
    env: { PATH: PG_PATH, PGPASSWORD: SUPERUSER_PASSWORD }, timeout: 30_000,
  });
  return Number(stdout.trim());
}
/** The standbys streaming from the server on `port`: how many in all, and how many without TLS. */
async function walSenders(port: number): Promise<{ all: number; plain: number }> {
  const r = await query<{ all: number; plain: number }>(port,
    'SELECT count(*)::int AS all, (count(*) FILTER (WHERE s.ssl IS NOT TRUE))::int AS plain FROM pg_stat_replication r LEFT JOIN pg_stat_ssl s USING (pid)');
  return r[0]!;
}
const ha = haClusterForFile({ slot: 1, env: { PGREPL_SYNC_STANDBYS: '1', PGREPL_TLS: 'self-signed' }, more: () => recorder?.summary() ?? '' });

describe('SIGKILL of the leader under write load (synchronous mode)', () => {
  it('a new leader, no acknowledged row lost, never two writable; the old node rejoins by itself when restarted', async () => {
    const c = ha.cluster;
    const old = ha.leader;
    const timelineBefore = await old.timeline();
    await waitFor('both standbys streaming from the leader', async () => ((await walSenders(old.pgPort)).all === 2 ? true : undefined));
    expect(await walSenders(old.pgPort)).toEqual({ all: 2, plain: 0 });
    await createWritesTable(old.pgPort);
    const ports = c.nodes.map((n) => n.pgPort);
    expect(await landsOn(ports, 'read-write')).toBe(old.pgPort);
    expect(await landsOn([...ports].reverse(), 'primary')).toBe(old.pgPort);
    recorder = WriteRecorder.start(c.nodes.map((n) => ({ name: n.name, port: n.pgPort })));
    try {
      await recorder.waitForAcks(old.name, 50);
      await old.kill();
      const killedAt = now();

      const next = await c.waitForLeader({ not: old });
      await recorder.waitForAcks(next.name, 50, killedAt);
      // The same connection strings now reach the new primary; prefer-standby a standby.
      expect(await landsOn(ports, 'read-write')).toBe(next.pgPort);
      expect(await landsOn([...ports].reverse(), 'primary')).toBe(next.pgPort);
      expect(await landsOn(ports, 'prefer-standby')).not.toBe(next.pgPort);

      // Restarted on its PGDATA while the writers still write to it: it must come back a standby.
      old.start();
      await c.waitForReplica(old);
      const rejoinedAt = now();
      await recorder.waitForAcks(next.name, 50, rejoinedAt);
      for (const n of c.nodes) if (n !== next) await c.waitForReplica(n);
      await waitFor('both standbys streaming from the new leader', async () => ((await walSenders(next.pgPort)).all === 2 ? true : undefined));
      expect(await walSenders(next.pgPort)).toEqual({ all: 2, plain: 0 });

      await recorder.stop();
      expect(recorder.overlaps()).toEqual([]);
      expect(recorder.acksOn(old.name, killedAt)).toEqual([]);
      expect(await recorder.missingOn(next.pgPort)).toEqual([]);
      expect(await next.timeline()).toBeGreaterThan(timelineBefore);

      // Nothing deleted on the old node: it has every acknowledged row (and any copy it moved aside is kept).
      const rows = await next.count(WRITES_TABLE);
      await waitFor(`${old.name} replaying all ${rows} rows`, async () => (await old.count(WRITES_TABLE)) === rows);
      expect(await recorder.missingOn(old.pgPort)).toEqual([]);
      for (const l of old.logLines().filter((x) => typeof x.kept === 'string')) expect(entriesOf(l.kept as string).length).toBeGreaterThan(0);

      // Members publish once per loop: wait for the rejoined node's key to say what it is now.
      const timeline = await next.timeline();
      const listed = await waitFor(`${old.name} listed as a streaming standby on timeline ${timeline}`, async () => {
        const l = await c.list();
        const o = l.members.find((m) => m.name === old.name);
        return o?.role === 'standby' && o.state === 'streaming' && o.timeline === timeline ? l : undefined;
      }, 30_000);
      expect(listed.leader).toBe(next.name);
    } finally {
      await recorder.stop();
    }
  });
});
