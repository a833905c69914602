import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { IMAGE, PASSWORD, TOKEN, nodeApp, useHarness } from './harness.js';

const h = useHarness();
const ETCD = 'http://etcd-0.example:2379,http://etcd-1.example:2379,http://etcd-2.example:2379';
const L4LB = 'marathon.l4lb.thisdcos.directory';
const ha = (args: string[], env: Record<string, string | undefined> = {}) => h.run('ha', [h.m.url, ...args], { PGREPL_ETCD_ENDPOINTS: ETCD, ...env });

describe('marathon/ha.sh', () => {
  it('deploys N nodes in HA mode, one after the other on distinct agents, then HAProxy on the primary VIP', async () => {
    const r = await ha(['pgrepl']);
    expect(r.code, r.stderr).toBe(0);
    expect(h.m.writes().map((p) => `${p.method} ${p.path} ${p.body.id}`)).toEqual([
      'POST /v2/apps /pgrepl/node1', 'POST /v2/apps /pgrepl/node2', 'POST /v2/apps /pgrepl/node3', 'POST /v2/apps /pgrepl/haproxy',
    ]);
    const [n1, n2, n3, proxy] = h.m.writes().map((p) => p.body);
    expect(n1).toEqual({
      id: '/pgrepl/node1',
      instances: 1,
      cpus: 1,
      mem: 1024,
      container: {
        type: 'DOCKER',
        docker: { image: IMAGE },
        volumes: [{ containerPath: 'pgdata', mode: 'RW', persistent: { size: 100 } }],
        portMappings: [
          { name: 'postgres', containerPort: 5432, hostPort: 0, protocol: 'tcp', labels: { VIP_0: '/node1.pgrepl:5432' } },
          { name: 'api', containerPort: 8008, hostPort: 0, protocol: 'tcp', labels: { VIP_1: '/node1.pgrepl:8008' } },
        ],
      },
      networks: [{ mode: 'container/bridge' }],
      env: {
        PGDATA: '/mnt/mesos/sandbox/pgdata',
        PGREPL_NODE_NAME: 'pgrepl_node1',
        PGREPL_ETCD_ENDPOINTS: ETCD,
        PGREPL_CLUSTER: 'pgrepl',
        // the VIPs' addresses: what the other nodes and HAProxy reach it at, wherever its task runs
        PGREPL_CONNECT_ADDRESS: `node1.pgrepl.${L4LB}:5432`,
        PGREPL_API_LISTEN: '0.0.0.0:8008',
        PGREPL_API_CONNECT_ADDRESS: `node1.pgrepl.${L4LB}:8008`,
        PGREPL_TOKEN: TOKEN,
        POSTGRES_PASSWORD: PASSWORD,
      },
      labels: { MARATHON_SINGLE_INSTANCE_APP: 'true', PGREPL_HA_GROUP: '/pgrepl' },
      constraints: [],
      healthChecks: [{ protocol: 'MESOS_HTTP', path: '/liveness', portIndex: 1, gracePeriodSeconds: 300, intervalSeconds: 10, timeoutSeconds: 5, maxConsecutiveFailures: 3, delaySeconds: 15 }],
      taskKillGracePeriodSeconds: 120,
      upgradeStrategy: { minimumHealthCapacity: 0, maximumOverCapacity: 0 },
    });
    // No role: etcd decides who initialises and who leads; no non-HA upstream or peers.
    for (const n of [n1, n2, n3]) expect(Object.keys(n.env).filter((k) => /ROLE|MASTER|PEERS/.test(k))).toEqual([]);
    expect(n2.constraints).toEqual([['hostname', 'UNLIKE', '10\\.0\\.1\\.11']]);
    expect(n3.constraints).toEqual([['hostname', 'UNLIKE', '10\\.0\\.1\\.11|10\\.0\\.1\\.12']]);
    expect(['node1', 'node2', 'node3'].map((n) => h.m.tasks(`pgrepl/${n}`)[0]!.host)).toEqual(['10.0.1.11', '10.0.1.12', '10.0.1.13']);
    expect([n2.env.PGREPL_NODE_NAME, n3.env.PGREPL_CONNECT_ADDRESS]).toEqual(['pgrepl_node2', `node3.pgrepl.${L4LB}:5432`]);

    expect({ ...proxy, env: undefined }).toEqual({
      id: '/pgrepl/haproxy',
      instances: 2,
      cpus: 0.2,
      mem: 128,
      cmd: 'printf %s "$HAPROXY_CFG" >/tmp/haproxy.cfg && exec haproxy -W -db -f /tmp/haproxy.cfg',
      container: {
        type: 'DOCKER',
        docker: { image: 'haproxy:2.8' },
        portMappings: [
          { name: 'primary', containerPort: 5432, hostPort: 0, protocol: 'tcp', labels: { VIP_0: '/primary.pgrepl:5432' } },
          { name: 'replicas', containerPort: 5433, hostPort: 0, protocol: 'tcp', labels: { VIP_1: '/replica.pgrepl:5432' } },
        ],
      },
      networks: [{ mode: 'container/bridge' }],
      env: undefined,
      labels: { PGREPL_HA_GROUP: '/pgrepl' },
      constraints: [['hostname', 'UNIQUE']],
      healthChecks: [{ protocol: 'MESOS_TCP', portIndex: 0, gracePeriodSeconds: 60, intervalSeconds: 10, timeoutSeconds: 5, maxConsecutiveFailures: 3, delaySeconds: 5 }],
    });
    const cfg: string = proxy.env.HAPROXY_CFG;
    const section = (name: string) => cfg.split(/^listen /m).find((s) => s.startsWith(`${name}\n`))!.split('\n').map((l) => l.trim());
    expect(section('primary')).toEqual([
      'primary', 'bind :5432', 'option httpchk GET /primary', 'http-check expect status 200',
      ...[1, 2, 3].map((i) => `server pgrepl_node${i} node${i}.pgrepl.${L4LB}:5432 check port 8008`), '',
    ]);
    expect(section('replicas')).toContain('option httpchk GET /replica?lag=16MB');
    expect(section('replicas')).toContain(`server pgrepl_node2 node2.pgrepl.${L4LB}:5432 check port 8008`);
    // the clients of a node marked down are cut: those of a demoted primary reconnect to the new one
    expect(cfg).toMatch(/^ {4}default-server .*on-marked-down shutdown-sessions/m);
    expect(cfg).not.toContain(PASSWORD);

    expect(r.stdout).toBe(
      `HA group /pgrepl: 3 node(s), etcd ${ETCD}, cluster pgrepl; created: /pgrepl/node1 /pgrepl/node2 /pgrepl/node3 /pgrepl/haproxy\n` +
        `primary: primary.pgrepl.${L4LB}:5432 (read-write), replicas: replica.pgrepl.${L4LB}:5432 (read-only); marathon/status.sh ${h.m.url} shows the roles\n`,
    );
    expect(h.m.deployments).toEqual([]);
  });

  it('N, a nested group, and the HA settings passed through', async () => {
    const r = await ha(['/db/orders', '2'], {
      PGREPL_CLUSTER: 'orders', PGREPL_SYNC_STANDBYS: '1', PGREPL_TTL: '20', PGREPL_HAPROXY_INSTANCES: '1', PGREPL_REPLICA_MAX_LAG: '1MB',
      PGREPL_PRIMARY_VIP: '/orders.rw:5432', PGREPL_DISK_SIZE: '2048', PGREPL_HEALTH_GRACE: '600', PGREPL_DEBUG: '1', PGREPL_PEERS: 'not passed:5432',
    });
    expect(r.code, r.stderr).toBe(0);
    const [n1, n2, proxy] = h.m.writes().map((p) => p.body);
    expect([n1.id, n2.id, proxy.id]).toEqual(['/db/orders/node1', '/db/orders/node2', '/db/orders/haproxy']);
    expect(n2.env).toMatchObject({
      PGREPL_CLUSTER: 'orders', PGREPL_SYNC_STANDBYS: '1', PGREPL_TTL: '20', PGREPL_DEBUG: '1', PGREPL_NODE_NAME: 'db_orders_node2',
      PGREPL_CONNECT_ADDRESS: `node2.db-orders.${L4LB}:5432`,
    });
    expect(n2.env).not.toHaveProperty('PGREPL_PEERS');
    expect([n2.container.volumes[0].persistent.size, n2.healthChecks[0].gracePeriodSeconds]).toEqual([2048, 600]);
    expect(proxy.instances).toBe(1);
    expect(proxy.container.portMappings.map((p: { labels: object }) => p.labels)).toEqual([{ VIP_0: '/orders.rw:5432' }, { VIP_1: '/replica.db-orders:5432' }]);
    expect(proxy.env.HAPROXY_CFG).toContain('option httpchk GET /replica?lag=1MB');
    expect(proxy.env.HAPROXY_CFG.match(/^ {4}server /gm)).toHaveLength(4);
  });

  it('run again: deploys only what is missing', async () => {
    expect((await ha(['pgrepl'])).code).toBe(0);
    await fetch(`${h.m.url}/v2/apps/pgrepl/haproxy`, { method: 'DELETE' });
    await fetch(`${h.m.url}/v2/apps/pgrepl/node3`, { method: 'DELETE' });
    await h.m.settle();
    const before = h.m.writes().length;
    const r = await ha(['pgrepl']);
    expect(r.code, r.stderr).toBe(0);
    expect(h.m.writes().slice(before).map((p) => `${p.method} ${p.body.id}`)).toEqual(['POST /pgrepl/node3', 'POST /pgrepl/haproxy']);
    expect(r.stderr).toContain('/pgrepl/node1 exists: left as it is');
    // node3 still keeps off the agents of the nodes that were there
    expect(h.m.app('pgrepl/node3').constraints).toEqual([['hostname', 'UNLIKE', '10\\.0\\.1\\.11|10\\.0\\.1\\.12']]);
  });

  // HAProxy's own parser (Debian's haproxy package, as the compose stand-in image has it), where installed.
  const haproxy = spawnSync('haproxy', ['-v']).status === 0;
  it.skipIf(!haproxy)('the HAProxy configuration is one haproxy -c accepts (VIP names that do not resolve yet are servers down, not errors)', async () => {
    expect((await ha(['pgrepl'])).code).toBe(0);
    const dir = mkdtempSync(join(tmpdir(), 'pgrepl-haproxy-'));
    try {
      writeFileSync(join(dir, 'haproxy.cfg'), h.m.app('pgrepl/haproxy').env.HAPROXY_CFG);
      const c = spawnSync('haproxy', ['-c', '-f', join(dir, 'haproxy.cfg')], { encoding: 'utf8' });
      expect(c.status, c.stdout + c.stderr).toBe(0);
      expect(c.stdout + c.stderr).not.toMatch(/\[ALERT\]/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('without PGREPL_ETCD_ENDPOINTS: one line saying what to set, nothing written', async () => {
    const r = await ha(['pgrepl'], { PGREPL_ETCD_ENDPOINTS: undefined });
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^ha\.sh: PGREPL_ETCD_ENDPOINTS is not set: export PGREPL_ETCD_ENDPOINTS=http:\/\/etcd-0\.example:2379,[^\n]*\n$/);
    expect(h.m.requests).toEqual([]);
  });

  it.each([
    [{ PGREPL_ETCD_ENDPOINTS: 'etcd:2379' }, /PGREPL_ETCD_ENDPOINTS must be comma-separated http\(s\):\/\/host:port URLs/],
    [{ PGREPL_IMAGE: undefined }, /PGREPL_IMAGE is not set/],
    [{ PGREPL_TOKEN: undefined }, /PGREPL_TOKEN is not set/],
    [{ PGREPL_CLUSTER: 'a/b' }, /PGREPL_CLUSTER must be 1-63 letters/],
    [{ PGREPL_REPLICA_MAX_LAG: 'lots' }, /PGREPL_REPLICA_MAX_LAG must be bytes or a size/],
  ])('bad setting %j: one line, nothing written', async (env, message) => {
    const r = await ha(['pgrepl'], env);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(message);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(h.m.writes()).toEqual([]);
  });

  it('the primary VIP held by another app (a primary.sh primary): refused before anything is written', async () => {
    h.m.seedApp(nodeApp('/pgrepl1', 'PRIMARY', '/primary.pgrepl:5432'), '10.0.1.11');
    const r = await ha(['pgrepl']);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`the VIP /primary.pgrepl:5432 (primary.pgrepl.${L4LB}:5432) is already on /pgrepl1`);
    expect(h.m.writes()).toEqual([]);
  });

  it.each([[['pgrepl', '0']], [['pgrepl', 'three']], [['pgrepl', '3', 'x']], [['Bad_Group']]])('bad arguments %j: exit 64', async (args) => {
    const r = await ha(args);
    expect(r.code).toBe(64);
    expect(r.stderr).toContain('usage: ha.sh MARATHON_URL GROUP_ID [N]');
    expect(h.m.writes()).toEqual([]);
  });
});
