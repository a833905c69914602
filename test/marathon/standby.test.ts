import { describe, expect, it } from 'vitest';
import { IMAGE, PASSWORD, TOKEN, nodeApp, useHarness } from './harness.js';

const h = useHarness();
const PRIMARY_HOST = 'primary.pgrepl.marathon.l4lb.thisdcos.directory';

function seedPrimary(extra: { size?: number; image?: string; vip?: string } = {}): void {
  const app = nodeApp('/pgrepl1', 'PRIMARY', extra.vip ?? '/primary.pgrepl:5432', { size: extra.size ?? 100 }) as Record<string, any>;
  if (extra.image) app.container.docker.image = extra.image;
  h.m.seedApp(app, '10.0.1.11');
}

describe('marathon/standby.sh', () => {
  it('creates a standby of the primary’s VIP, on another host, with the primary’s volume size and image', async () => {
    seedPrimary({ size: 250, image: 'registry.example.com/pgrepl:15' });
    const r = await h.run('standby', [h.m.url, 'pgrepl1', 'pgrepl2', '/standby.pgrepl:5432'], { PGREPL_IMAGE: undefined });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toBe(`standby /pgrepl2 of /pgrepl1 deployed: streams from ${PRIMARY_HOST}:5432, at standby.pgrepl.marathon.l4lb.thisdcos.directory:5432\n`);
    expect(h.m.requests.map((q) => `${q.method} ${q.path}`).filter((q) => q !== 'GET /v2/deployments')).toEqual([
      'GET /v2/apps/pgrepl1',
      'GET /v2/apps/pgrepl1/tasks',
      'GET /v2/apps',
      'POST /v2/apps',
    ]);
    expect(h.m.writes()[0]!.body).toEqual({
      id: '/pgrepl2',
      instances: 1,
      cpus: 1,
      mem: 1024,
      container: {
        type: 'DOCKER',
        docker: { image: 'registry.example.com/pgrepl:15' },
        volumes: [{ containerPath: 'pgdata', mode: 'RW', persistent: { size: 250 } }],
        portMappings: [{ name: 'postgres', containerPort: 5432, hostPort: 0, protocol: 'tcp', labels: { VIP_0: '/standby.pgrepl:5432' } }],
      },
      networks: [{ mode: 'container/bridge' }],
      env: {
        PGREPL_ROLE: 'STANDBY',
        PGDATA: '/mnt/mesos/sandbox/pgdata',
        PGREPL_NODE_NAME: 'pgrepl2',
        // a primary deployed before PGREPL_PEERS: its VIP's address, then this node's own
        PGREPL_PEERS: `${PRIMARY_HOST}:5432,standby.pgrepl.marathon.l4lb.thisdcos.directory:5432`,
        PGREPL_MASTER_IP: PRIMARY_HOST,
        PGREPL_MASTER_PORT: '5432',
        PGREPL_TOKEN: TOKEN,
        POSTGRES_PASSWORD: PASSWORD,
      },
      labels: { MARATHON_SINGLE_INSTANCE_APP: 'true' },
      constraints: [['hostname', 'UNLIKE', '10\\.0\\.1\\.11']],
      healthChecks: [{ protocol: 'COMMAND', command: { value: 'pgrepl health' }, gracePeriodSeconds: 900, intervalSeconds: 30, timeoutSeconds: 20, maxConsecutiveFailures: 3, delaySeconds: 15 }],
      taskKillGracePeriodSeconds: 120,
      upgradeStrategy: { minimumHealthCapacity: 0, maximumOverCapacity: 0 },
    });
    expect(h.m.tasks('pgrepl2').map((t) => t.host)).toEqual(['10.0.1.12']);
  });

  it('PGREPL_DISK_SIZE, PGREPL_IMAGE, PGREPL_CPUS, PGREPL_MEM override the primary’s (a bigger disk to promote later)', async () => {
    seedPrimary({ size: 100 });
    const r = await h.run('standby', [h.m.url, 'pgrepl1', 'pgrepl-bigger', '/standby.pgrepl:5432'], {
      PGREPL_DISK_SIZE: '250',
      PGREPL_IMAGE: 'registry.example.com/pgrepl:17-new',
      PGREPL_CPUS: '2',
      PGREPL_MEM: '2048',
    });
    expect(r.code, r.stderr).toBe(0);
    const body = h.m.writes()[0]!.body;
    expect(body.container.volumes[0].persistent.size).toBe(250);
    expect(body.container.docker.image).toBe('registry.example.com/pgrepl:17-new');
    expect([body.cpus, body.mem]).toEqual([2, 2048]);
    expect(body.env.PGREPL_NODE_NAME).toBe('pgrepl_bigger');
  });

  it('a standby of a standby (cascade) streams from that standby’s VIP, away from its host', async () => {
    seedPrimary();
    h.m.seedApp(nodeApp('/pgrepl2', 'STANDBY', '/standby.pgrepl:5432', { upstream: [PRIMARY_HOST, '5432'] }), '10.0.1.12');
    const r = await h.run('standby', [h.m.url, 'pgrepl2', 'pgrepl3', '/cascade.pgrepl:5433']);
    expect(r.code, r.stderr).toBe(0);
    const body = h.m.writes()[0]!.body;
    expect([body.env.PGREPL_MASTER_IP, body.env.PGREPL_MASTER_PORT]).toEqual(['standby.pgrepl.marathon.l4lb.thisdcos.directory', '5432']);
    expect(body.constraints).toEqual([['hostname', 'UNLIKE', '10\\.0\\.1\\.12']]);
    expect(h.m.tasks('pgrepl3').map((t) => t.host)).toEqual(['10.0.1.11']);
  });

  it('the upstream address follows DC/OS’s naming of the VIP label: slashes dropped, "_" as "-", lower case', async () => {
    seedPrimary({ vip: '/db/Main_DB.pgrepl:6543' });
    const r = await h.run('standby', [h.m.url, 'pgrepl1', 'pgrepl2', '/standby.pgrepl:5432']);
    expect(r.code, r.stderr).toBe(0);
    const env = h.m.writes()[0]!.body.env;
    expect([env.PGREPL_MASTER_IP, env.PGREPL_MASTER_PORT]).toEqual(['dbmain-db.pgrepl.marathon.l4lb.thisdcos.directory', '6543']);
  });

  it('PGREPL_PEERS: its upstream’s peers, its upstream’s VIP address and its own, each once, so every node lists the primary’s VIP', async () => {
    h.m.seedApp(nodeApp('/pgrepl1', 'PRIMARY', '/primary.pgrepl:5432', { peers: `${PRIMARY_HOST}:5432` }), '10.0.1.11');
    let r = await h.run('standby', [h.m.url, 'pgrepl1', 'pgrepl2', '/standby.pgrepl:5432']);
    expect(r.code, r.stderr).toBe(0);
    expect(h.m.app('pgrepl2').env.PGREPL_PEERS).toBe(`${PRIMARY_HOST}:5432,standby.pgrepl.marathon.l4lb.thisdcos.directory:5432`);
    r = await h.run('standby', [h.m.url, 'pgrepl2', 'pgrepl3', '/cascade.pgrepl:5433']);
    expect(r.code, r.stderr).toBe(0);
    expect(h.m.app('pgrepl3').env.PGREPL_PEERS).toBe(
      `${PRIMARY_HOST}:5432,standby.pgrepl.marathon.l4lb.thisdcos.directory:5432,cascade.pgrepl.marathon.l4lb.thisdcos.directory:5433`,
    );
  });

  it('needs only PGREPL_TOKEN: a standby never runs initdb', async () => {
    seedPrimary();
    const r = await h.run('standby', [h.m.url, 'pgrepl1', 'pgrepl2', '/standby.pgrepl:5432'], { POSTGRES_PASSWORD: undefined });
    expect(r.code, r.stderr).toBe(0);
    expect(h.m.writes()[0]!.body.env).not.toHaveProperty('POSTGRES_PASSWORD');
  });

  it('PGREPL_TOKEN missing is an error; so is one that differs from the primary’s (without showing either)', async () => {
    seedPrimary();
    let r = await h.run('standby', [h.m.url, 'pgrepl1', 'pgrepl2', '/standby.pgrepl:5432'], { PGREPL_TOKEN: undefined });
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('PGREPL_TOKEN is not set');
    r = await h.run('standby', [h.m.url, 'pgrepl1', 'pgrepl2', '/standby.pgrepl:5432'], { PGREPL_TOKEN: 'another-token-value' });
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("PGREPL_TOKEN differs from /pgrepl1's");
    expect(r.stderr + r.stdout + r.argv).not.toContain('another-token-value');
    expect(h.m.writes()).toEqual([]);
  });

  it('PGREPL_INSECURE=1 does not let a standby go without PGREPL_TOKEN; a primary that runs without one is refused (replication off)', async () => {
    seedPrimary();
    let r = await h.run('standby', [h.m.url, 'pgrepl1', 'pgrepl2', '/standby.pgrepl:5432'], { PGREPL_INSECURE: '1', PGREPL_TOKEN: undefined });
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('PGREPL_TOKEN is not set');
    const tokenless = nodeApp('/pgrepl9', 'PRIMARY', '/tokenless.pgrepl:5432');
    delete (tokenless.env as Record<string, unknown>).PGREPL_TOKEN;
    h.m.seedApp(tokenless, '10.0.1.19');
    r = await h.run('standby', [h.m.url, 'pgrepl9', 'pgrepl10', '/standby.pgrepl:5432']);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('/pgrepl9 runs without PGREPL_TOKEN, so with replication off: no standby can log in to it');
    expect(h.m.writes()).toEqual([]);
  });

  it.each([
    [[]],
    [['http://m:8080', 'pgrepl1', 'pgrepl2']],
    [['http://m:8080', 'pgrepl1', 'pgrepl2', '/standby.pgrepl:5432', 'extra']],
  ])('wrong number of arguments %j: usage, exit 64', async (args) => {
    const r = await h.run('standby', args);
    expect(r.code).toBe(64);
    expect(r.stderr).toContain('usage: standby.sh MARATHON_URL PRIMARY_APP_ID APP_ID VIP');
    expect(h.m.requests).toEqual([]);
  });

  it.each([
    ['pgrepl1', 'pgrepl1', '/standby.pgrepl:5432', "the standby's app id must differ from its primary's"],
    ['pgrepl1', 'pgrepl_2', '/standby.pgrepl:5432', "invalid app id 'pgrepl_2'"],
    ['pgrepl1', 'pgrepl2', 'standby', "invalid VIP 'standby'"],
  ])('bad arguments %s %s %s: exit 64', async (primary, id, vip, message) => {
    const r = await h.run('standby', [h.m.url, primary, id, vip]);
    expect(r.code).toBe(64);
    expect(r.stderr).toContain(message);
    expect(h.m.requests).toEqual([]);
  });

  it('the primary’s own VIP for the standby: exit 64 before anything is sent', async () => {
    seedPrimary();
    const r = await h.run('standby', [h.m.url, 'pgrepl1', 'pgrepl2', 'primary.pgrepl:5432']);
    expect(r.code).toBe(64);
    expect(r.stderr).toContain("the standby's VIP primary.pgrepl:5432 is its primary's address");
    expect(h.m.writes()).toEqual([]);
  });

  it('a primary that does not exist (404): exit 1', async () => {
    const r = await h.run('standby', [h.m.url, 'pgrepl1', 'pgrepl2', '/standby.pgrepl:5432']);
    expect(r.code).toBe(1);
    expect(r.stderr).toBe(`standby.sh: no app /pgrepl1 in Marathon at ${h.m.url} (the primary)\n`);
    expect(h.m.writes()).toEqual([]);
  });

  it('a primary without a VIP, or without a task (host unknown): exit 1', async () => {
    const app = nodeApp('/pgrepl1', 'PRIMARY', '/primary.pgrepl:5432') as Record<string, any>;
    app.container.portMappings[0].labels = {};
    h.m.seedApp(app, '10.0.1.11');
    let r = await h.run('standby', [h.m.url, 'pgrepl1', 'pgrepl2', '/standby.pgrepl:5432']);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('/pgrepl1 has no VIP label');

    h.m.stuckApps.add('/pgrepl0');
    h.m.seedApp(nodeApp('/pgrepl0', 'PRIMARY', '/zero.pgrepl:5432'));
    h.m.apps.get('/pgrepl0')!.tasks = [];
    r = await h.run('standby', [h.m.url, 'pgrepl0', 'pgrepl2', '/standby.pgrepl:5432']);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('/pgrepl0 has no task, so its host is unknown');
    expect(h.m.writes()).toEqual([]);
  });

  it('an app id whose node name another node has (/a-b and /a/b are both a_b): exit 1', async () => {
    h.m.seedApp(nodeApp('/a/b', 'PRIMARY', '/primary.pgrepl:5432'), '10.0.1.11');
    const r = await h.run('standby', [h.m.url, '/a/b', 'a-b', '/standby.pgrepl:5432']);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('/a/b already has the node name a_b that /a-b would get');
    expect(h.m.writes()).toEqual([]);
  });

  it('an existing app: Marathon’s 409 reported', async () => {
    seedPrimary();
    h.m.seedApp(nodeApp('/pgrepl2', 'STANDBY', '/other.pgrepl:5432', { upstream: [PRIMARY_HOST, '5432'] }), '10.0.1.12');
    const r = await h.run('standby', [h.m.url, 'pgrepl1', 'pgrepl2', '/standby.pgrepl:5432']);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('creating /pgrepl2 (an app with this id exists: delete it first, or choose another id): Marathon answered 409: An app with id [/pgrepl2] already exists.');
  });

  it('a 422 is reported with its details', async () => {
    seedPrimary();
    h.m.inject({ method: 'POST', path: '/v2/apps', status: 422, body: { message: 'Object is not valid', details: [{ path: '/constraints(0)', errors: ["'[' is not a valid regular expression"] }] } });
    const r = await h.run('standby', [h.m.url, 'pgrepl1', 'pgrepl2', '/standby.pgrepl:5432']);
    expect(r.code).toBe(1);
    expect(r.stderr).toBe("standby.sh: creating /pgrepl2: Marathon answered 422: Object is not valid\n  /constraints(0): '[' is not a valid regular expression\n");
  });

  it('a clone longer than the timeout: exit 3 (the deployment goes on)', async () => {
    seedPrimary();
    h.m.stuckApps.add('/pgrepl2');
    const r = await h.run('standby', [h.m.url, 'pgrepl1', 'pgrepl2', '/standby.pgrepl:5432'], { PGREPL_DEPLOY_TIMEOUT: '1' });
    expect(r.code).toBe(3);
    expect(r.stderr).toContain('of /pgrepl2 still running after 1s');
  });
});
