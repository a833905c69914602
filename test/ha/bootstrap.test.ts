/**
 * HA bootstrap (issue 11 part 6), against a real 3-member etcd: three empty nodes started at once
 * become one cluster (one initdb, one leader, two streaming standbys that cloned it), as `pgrepl
 * list --json` and every agent's /cluster show; each API endpoint answers as SPEC §7 says on the
 * leader and on a standby; a second agent with a name in use refuses to start and changes nothing;
 * no secret reaches a command line, a log or an API answer.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { afterAll, describe, expect, it } from 'vitest';
import { waitFor } from '../support/cluster.js';
import { entriesOf, haClusterForFile, secretsIn, type HaNode } from '../support/ha-cluster.js';
import { postmasterPid } from '../support/postmaster.js';
import { groupMembers, processesOf } from '../support/process-group.js';

/**
 * Every distinct command line seen in /proc while the nodes start (initdb, pg_basebackup, the
 * servers...), of this cluster's processes only: in the nodes' process groups, or naming its
 * scratch directory (other tests on this machine use the same superuser password).
 */
const seenCommandLines = new Set<string>();
let sampler: NodeJS.Timeout | undefined;
function sampleCommandLines(): void {
  const c = ha.cluster;
  const groups = new Set(c.nodes.filter((n) => n.running).map((n) => n.pid));
  for (const pid of readdirSync('/proc')) {
    if (!/^\d+$/.test(pid)) continue;
    try {
      const cmd = readFileSync(`/proc/${pid}/cmdline`, 'utf8').replace(/\0/g, ' ').trim();
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
      const pgid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[2]);
      if (groups.has(pgid) || cmd.includes(c.dir)) seenCommandLines.add(cmd);
    } catch {
      // gone meanwhile
    }
  }
}

const ha = haClusterForFile({
  slot: 0,
  beforeStart: () => {
    sampler = setInterval(sampleCommandLines, 25);
  },
});

afterAll(() => clearInterval(sampler));

const ENDPOINTS = ['/primary', '/replica', '/read-only', '/health', '/liveness', '/readiness', '/cluster'] as const;
const EXPECTED: Record<'leader' | 'standby', Record<(typeof ENDPOINTS)[number], number>> = {
  leader: { '/primary': 200, '/replica': 503, '/read-only': 200, '/health': 200, '/liveness': 200, '/readiness': 200, '/cluster': 200 },
  standby: { '/primary': 503, '/replica': 200, '/read-only': 200, '/health': 200, '/liveness': 200, '/readiness': 200, '/cluster': 200 },
};

const standbys = (): HaNode[] => ha.cluster.nodes.filter((n) => n !== ha.leader && n.running);

describe('HA bootstrap of three empty nodes started at once', () => {
  it('one initdb, one leader, two standbys that cloned it and stream from it; pgrepl list --json and /cluster show it', async () => {
    const c = ha.cluster;
    const ranInitdb = c.nodes.filter((n) => n.logLines().some((l) => l.msg === 'initdb'));
    expect(ranInitdb.map((n) => n.name)).toEqual([ha.leader.name]);
    for (const n of standbys()) expect(n.logLines().some((l) => /pg_basebackup|clon/i.test(l.msg))).toBe(true);
    // One cluster: the standbys are copies of the leader's, not clusters of their own.
    const system = await ha.leader.systemIdentifier();
    for (const n of standbys()) expect(await n.systemIdentifier()).toBe(system);
    const timeline = await ha.leader.timeline();

    // Members publish themselves every loop: the listing catches up with the API within one.
    const listed = await waitFor('pgrepl list --json showing a leader and two streaming standbys', async () => {
      const l = await c.list();
      return l.members.filter((m) => m.role === 'standby' && m.state === 'streaming').length === 2 ? l : undefined;
    });
    expect(listed).toMatchObject({ cluster: c.clusterName, system, leader: ha.leader.name, timeline, pause: false, switchover: null });
    expect(listed.members.map((m) => [m.name, m.role, m.leader, m.address])).toEqual([
      [ha.leader.name, 'primary', true, `127.0.0.1:${ha.leader.pgPort}`],
      ...standbys().map((n) => [n.name, 'standby', false, `127.0.0.1:${n.pgPort}`]),
    ]);
    for (const m of listed.members.slice(1)) expect(m.state).toBe('streaming');
    // Each standby publishes whom it streams from: the leader (what the tree of pgrepl list hangs it under).
    await waitFor('the standbys publishing their upstream', async () =>
      (await c.list()).members.slice(1).every((m) => m.upstream === `127.0.0.1:${ha.leader.pgPort}` && m.upstreamMember === ha.leader.name));

    // Every agent's /cluster is the same listing (positions move on: compared without them), as of
    // its last loop's read of etcd: the same within a loop.
    const shape = (l: typeof listed) => JSON.stringify({ leader: l.leader, system: l.system, members: l.members.map((m) => [m.name, m.role, m.state, m.address, m.api]) });
    for (const n of c.nodes) {
      const last = await waitFor(`${n.name}'s /cluster showing what pgrepl list --json shows`, async () => {
        const a = await n.api('/cluster');
        return a.status === 200 && shape(JSON.parse(a.body)) === shape(listed) ? a : undefined;
      }, 30_000).catch(async () => n.api('/cluster'));
      expect(last.status).toBe(200);
      expect(JSON.parse(shape(JSON.parse(last.body)))).toEqual(JSON.parse(shape(listed)));
    }
  });

  it('API status codes on the leader and on a standby, GET and HEAD, for every endpoint', async () => {
    const roles: [HaNode, 'leader' | 'standby'][] = [[ha.leader, 'leader'], ...standbys().map((n): [HaNode, 'standby'] => [n, 'standby'])];
    for (const [n, role] of roles) {
      const got: Record<string, [number, number, string]> = {};
      for (const path of ENDPOINTS) {
        const get = await n.api(path);
        const head = await n.api(path, 'HEAD');
        got[path] = [get.status, head.status, head.body];
        if (path !== '/cluster') expect(JSON.parse(get.body)).toMatchObject({ name: n.name, ...(path !== '/liveness' && { leader: role === 'leader' }) });
      }
      const want = Object.fromEntries(ENDPOINTS.map((p) => [p, [EXPECTED[role][p], EXPECTED[role][p], '']]));
      expect({ node: n.name, got }).toEqual({ node: n.name, got: want });
      expect((await n.api('/no-such-endpoint')).status).toBe(404);
      expect((await n.api('/primary', 'POST')).status).toBe(405);
    }
  });

  it('a second agent with a name already in use refuses to start (non-zero exit, one line) and changes nothing', async () => {
    const c = ha.cluster;
    const before = await c.list();
    const dup = c.addNode(ha.leader.name, c.ports.pg + 5, c.ports.api + 5, 'duplicate');
    dup.start();
    const result = await Promise.race([dup.exited, new Promise<undefined>((r) => setTimeout(() => r(undefined), 60_000))]);
    if (!result) await dup.kill();
    expect(result?.signal ?? null).toBeNull();
    expect(result?.code).not.toBe(0);
    // It may say that it waits for the key to expire (a restart of the same node would find its
    // own earlier key, until that key's lease ends); then one line refuses, its last.
    const refusals = dup.logLines().filter((l) => l.level >= 50);
    expect(refusals).toHaveLength(1);
    expect(refusals[0]!.msg).toContain(`PGREPL_NODE_NAME=${ha.leader.name}`);
    expect(dup.logLines().at(-1)).toEqual(refusals[0]);

    expect(entriesOf(dup.pgdata)).toEqual([]);
    expect(processesOf(dup.pgdata)).toEqual([]);
    const after = await c.list();
    expect(after.leader).toBe(before.leader);
    const mine = (l: typeof before) => l.members.find((m) => m.name === ha.leader.name);
    expect(mine(after)).toMatchObject({ address: mine(before)!.address, api: mine(before)!.api, role: 'primary' });
    expect(after.members.map((m) => m.name)).toEqual(before.members.map((m) => m.name));
    expect(await ha.leader.status('/primary')).toBe(200);
    expect((await dup.api('/health')).status).toBe(0); // its API never listened, or is gone
  });

  it('no secret (token, passwords) in any command line, log or API answer', async () => {
    const c = ha.cluster;
    clearInterval(sampler);
    sampleCommandLines();
    // The sampler saw the work happen (the test can fail): initdb, a clone, the servers.
    const lines = [...seenCommandLines];
    for (const what of ['initdb', 'pg_basebackup', c.dir]) expect(lines.some((l) => l.includes(what)), what).toBe(true);
    expect(lines.filter((l) => secretsIn(l).length > 0)).toEqual([]);

    // Now: every process of every node (its group and whatever runs on its PGDATA), agent and postmaster included.
    for (const n of c.nodes.filter((x) => x.running)) {
      const pids = new Set([...groupMembers(n.pid), ...processesOf(n.pgdata).map((p) => p.pid)]);
      expect(pids.has(n.pid)).toBe(true);
      expect(pids.has(postmasterPid(n.pgdata)!)).toBe(true);
      for (const pid of pids) {
        let cmd = '';
        try {
          cmd = readFileSync(`/proc/${pid}/cmdline`, 'utf8').replace(/\0/g, ' ');
        } catch {
          continue; // gone meanwhile
        }
        expect({ pid, cmd, secrets: secretsIn(cmd) }).toEqual({ pid, cmd, secrets: [] });
      }
    }

    for (const { source, text } of c.logs()) {
      expect(text.length).toBeGreaterThan(0);
      expect({ source, secrets: secretsIn(text) }).toEqual({ source, secrets: [] });
    }

    for (const n of c.nodes.filter((x) => x.running)) {
      for (const path of [...ENDPOINTS, '/replica?lag=1', '/no-such-endpoint']) {
        const a = await n.api(path);
        expect(a.status).not.toBe(0);
        expect({ node: n.name, path, secrets: secretsIn(a.body) }).toEqual({ node: n.name, path, secrets: [] });
      }
    }
    const list = await c.cli(['list', '--json']);
    const table = await c.cli(['list']);
    for (const r of [list, table]) {
      expect(r.code).toBe(0);
      expect(secretsIn(r.stdout + r.stderr)).toEqual([]);
    }
    await waitFor('the leader still leading', async () => (await ha.leader.status('/primary')) === 200);
  });
});
