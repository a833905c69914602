import { afterEach, describe, expect, it } from 'vitest';
import { startApi, type HaApi } from '../../src/ha/api.js';
import { clusterView, listing, listTable } from '../../src/ha/list.js';
import type { ClusterKeys, MemberKey } from '../../src/ha/types.js';
import { nodeApp, useHarness } from './harness.js';

const h = useHarness();
/** A table line's first column: the tree's drawing (│, ├─, └─ and their indentation), then a name. */
const first = (line: string) => /^(?:[│ ] {2})*(?:[├└]─ )?\S*/.exec(line)![0];
const PRIMARY = 'primary.pgrepl.marathon.l4lb.thisdcos.directory';

function seed(): void {
  h.m.seedApp(nodeApp('/pgrepl1', 'PRIMARY', '/primary.pgrepl:5432'), '10.0.1.11');
  h.m.seedApp(nodeApp('/pgrepl2', 'STANDBY', '/standby.pgrepl:5432', { upstream: [PRIMARY, '5432'] }), '10.0.1.12');
  h.m.seedApp({ id: '/web', cmd: 'sleep 1000', cpus: 0.1, mem: 32 });
}

describe('marathon/status.sh', () => {
  it('lists every pgrepl app: role, host, state, health, VIP and its address, upstream', async () => {
    seed();
    const r = await h.run('status', [h.m.url]);
    expect(r.code, r.stderr).toBe(0);
    const lines = r.stdout.split('\n');
    expect(lines.pop()).toBe('');
    expect(lines.map((l) => l.split(/ {2,}/))).toEqual([
      ['APP', 'ROLE', 'HOST', 'STATE', 'HEALTH', 'VIP', 'UPSTREAM'],
      ['/pgrepl1', 'PRIMARY', '10.0.1.11', 'TASK_RUNNING', 'healthy', `/primary.pgrepl:5432 (${PRIMARY}:5432)`, '-'],
      ['└─ /pgrepl2', 'STANDBY', '10.0.1.12', 'TASK_RUNNING', 'healthy', '/standby.pgrepl:5432 (standby.pgrepl.marathon.l4lb.thisdcos.directory:5432)', `${PRIMARY}:5432`],
    ]);
    // Columns line up.
    for (const header of ['ROLE', 'HOST', 'STATE', 'HEALTH', 'VIP', 'UPSTREAM']) {
      const at = lines[0]!.indexOf(header);
      for (const l of lines.slice(1)) expect(l[at - 1], `${header} in ${l}`).toBe(' ');
      for (const l of lines.slice(1)) expect(l[at], `${header} in ${l}`).not.toBe(' ');
    }
    expect(h.m.writes()).toEqual([]);
  });

  it('--json, for the apps named', async () => {
    seed();
    const r = await h.run('status', [h.m.url, 'pgrepl2', '--json']);
    expect(r.code, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout)).toEqual([
      {
        id: '/pgrepl2',
        role: 'STANDBY',
        hosts: ['10.0.1.12'],
        state: 'TASK_RUNNING',
        health: 'healthy',
        vip: '/standby.pgrepl:5432',
        address: 'standby.pgrepl.marathon.l4lb.thisdcos.directory:5432',
        upstream: `${PRIMARY}:5432`,
      },
    ]);
  });

  it('shows unhealthy, unreachable, no task yet, a deployment in progress', async () => {
    seed();
    h.m.seedApp(nodeApp('/pgrepl3', 'STANDBY', '/standby3.pgrepl:5432', { upstream: [PRIMARY, '5432'] }), '10.0.1.13');
    h.m.apps.get('/pgrepl2')!.tasks[0]!.healthCheckResults[0].alive = false;
    h.m.setReachable('10.0.1.11', false);
    h.m.apps.get('/pgrepl3')!.tasks = [];
    h.m.stuckApps.add('/pgrepl3');
    await fetch(`${h.m.url}/v2/apps/pgrepl3/restart`, { method: 'POST' });
    const r = await h.run('status', [h.m.url, '--json']);
    expect(r.code, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout).map((a: Record<string, unknown>) => [a.id, a.state, a.health])).toEqual([
      ['/pgrepl1', 'TASK_UNREACHABLE', 'healthy'],
      ['/pgrepl2', 'TASK_RUNNING', 'unhealthy'],
      ['/pgrepl3', 'no task+deploying', '-'],
    ]);
  });

  it('an app that does not exist: its row says so, exit 1', async () => {
    seed();
    const r = await h.run('status', [h.m.url, 'pgrepl1', 'pgrepl9']);
    expect(r.code).toBe(1);
    expect(r.stdout.split('\n')[2]!.split(/ {2,}/)).toEqual(['/pgrepl9', '-', '-', 'no such app', '-', '-', '-']);
  });

  it('no pgrepl app: says so, exit 0', async () => {
    const r = await h.run('status', [h.m.url]);
    expect(r.code).toBe(0);
    expect(r.stderr).toContain('no pgrepl app');
    expect(r.stdout).toBe('');
  });

  it.each([[[]], [['--bogus']], [['marathon:8080']]])('bad arguments %j: exit 64', async (args) => {
    const r = await h.run('status', args);
    expect(r.code).toBe(64);
    expect(r.stderr).toContain('usage: status.sh MARATHON_URL [APP_ID...] [--json]');
  });

  it('needs no secret', async () => {
    seed();
    const r = await h.run('status', [h.m.url], { POSTGRES_PASSWORD: undefined, PGREPL_TOKEN: undefined, PGREPL_IMAGE: undefined });
    expect(r.code, r.stderr).toBe(0);
  });

  it('the table is the topology as a tree: a standby under the app whose VIP it streams from, a cascade under its standby', async () => {
    seed();
    const STANDBY = 'standby.pgrepl.marathon.l4lb.thisdcos.directory';
    h.m.seedApp(nodeApp('/pgrepl3', 'STANDBY', '/cascade.pgrepl:5432', { upstream: [STANDBY, '5432'] }), '10.0.1.13');
    h.m.seedApp(nodeApp('/pgrepl4', 'STANDBY', '/other.pgrepl:5432', { upstream: [PRIMARY, '5432'] }), '10.0.1.13');
    const r = await h.run('status', [h.m.url]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout.split('\n').map(first)).toEqual(['APP', '/pgrepl1', '├─ /pgrepl2', '│  └─ /pgrepl3', '└─ /pgrepl4', '']);
  });
});

describe('marathon/status.sh with an HA group (ha.sh)', () => {
  const ETCD = 'http://etcd-0.example:2379';
  const L4LB = 'marathon.l4lb.thisdcos.directory';
  const apis: HaApi[] = [];
  afterEach(async () => {
    await Promise.all(apis.splice(0).map((a) => a.close()));
  });

  const member = (i: number, over: Partial<MemberKey>): MemberKey => ({
    name: `pgrepl_node${i}`, instance: `i${i}`, address: `node${i}.pgrepl.${L4LB}:5432`, api: `node${i}.pgrepl.${L4LB}:8008`,
    role: 'standby', state: 'streaming', timeline: 3, receivedLsn: '0/7000000', replayedLsn: '0/7000000', nofailover: false, ...over,
  });
  /** node2 leads, node1 streams from it (sync), node3 cascades from node1. */
  const keys: ClusterKeys = {
    initialize: '7000000000000000042', leader: { name: 'pgrepl_node2', lease: '1' }, history: [], pause: false,
    sync: { leader: 'pgrepl_node2', standbys: ['pgrepl_node1'] },
    members: [
      member(1, { upstream: `node2.pgrepl.${L4LB}:5432` }),
      member(2, { role: 'primary', state: 'running', receivedLsn: undefined, replayedLsn: undefined, writeLsn: '0/7100000' }),
      member(3, { state: 'running', upstream: `node1.pgrepl.${L4LB}:5432`, receivedLsn: '0/6000000' }),
    ],
  };
  const view = clusterView('pgrepl', keys);

  /** ha.sh's group, its node tasks on 127.0.0.1 with their API host ports; the real agent API answers on those given. */
  async function group(answering: number[]): Promise<void> {
    const r = await h.run('ha', [h.m.url, 'pgrepl'], { PGREPL_ETCD_ENDPOINTS: ETCD });
    expect(r.code, r.stderr).toBe(0);
    for (const i of [1, 2, 3]) {
      const port = 6350 + i;
      const task = h.m.apps.get(`/pgrepl/node${i}`)!.tasks[0]!;
      task.host = '127.0.0.1';
      task.ports = [31000 + i, port];
      if (answering.includes(i)) {
        apis.push(await startApi({
          host: '127.0.0.1', port, ttl: 10,
          snapshot: { name: `pgrepl_node${i}`, holdsLeaderKey: i === 2, postgres: { running: true, streamingFromLeader: i === 1 }, loopAt: performance.now(), cluster: view },
        }));
      }
    }
  }

  it("lists the nodes as HA, then the cluster as pgrepl list draws it, asked of the first node's API that answers", async () => {
    await group([2, 3]);
    const r = await h.run('status', [h.m.url]);
    expect(r.code, r.stderr).toBe(0);
    const [table, picture] = r.stdout.split('\n\n');
    // HAProxy is no pgrepl node: not listed
    expect(table!.split('\n').map((l) => l.split(/ {2,}/).slice(0, 2))).toEqual([['APP', 'ROLE'], ['/pgrepl/node1', 'HA'], ['/pgrepl/node2', 'HA'], ['/pgrepl/node3', 'HA']]);
    const lines = picture!.split('\n');
    // node1's API does not answer: node2's is asked
    expect(lines[0]).toBe('HA cluster pgrepl (system 7000000000000000042): leader pgrepl_node2, timeline 3, asked at 127.0.0.1:6352');
    // the same member rows as `pgrepl list`, tree and all
    expect(lines.slice(1)).toEqual(listTable(view).split('\n').slice(1));
    expect(lines.slice(1, 5).map(first)).toEqual(['Member', 'pgrepl_node2', '└─ pgrepl_node1', '   └─ pgrepl_node3']);
  });

  it('--json: each HA node with its member entry from the listing', async () => {
    await group([1]);
    const r = await h.run('status', [h.m.url, '--json']);
    expect(r.code, r.stderr).toBe(0);
    const rows = JSON.parse(r.stdout);
    const members = listing(view).members;
    expect(rows.map((a: { id: string; role: string; cluster: string; ha: unknown }) => [a.id, a.role, a.cluster, a.ha])).toEqual([
      ['/pgrepl/node1', 'HA', 'pgrepl', members.find((m) => m.name === 'pgrepl_node1')],
      ['/pgrepl/node2', 'HA', 'pgrepl', members.find((m) => m.name === 'pgrepl_node2')],
      ['/pgrepl/node3', 'HA', 'pgrepl', members.find((m) => m.name === 'pgrepl_node3')],
    ]);
  });

  it('no API answers: the roles are unknown, said in one line, exit 0', async () => {
    await group([]);
    const r = await h.run('status', [h.m.url]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout.split('\n\n')[1]).toBe("HA cluster pgrepl: no node's API answered on /cluster: roles unknown\n");
    const json = await h.run('status', [h.m.url, '--json']);
    expect(JSON.parse(json.stdout).map((a: { ha: unknown }) => a.ha)).toEqual([null, null, null]);
  });
});
