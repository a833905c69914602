import { describe, expect, it } from 'vitest';
import { IMAGE, PASSWORD, TOKEN, nodeApp, useHarness } from './harness.js';

const h = useHarness();

const HEALTH = { protocol: 'COMMAND', command: { value: 'pgrepl health' }, intervalSeconds: 30, timeoutSeconds: 20, maxConsecutiveFailures: 3, delaySeconds: 15 };

describe('marathon/primary.sh', () => {
  it('creates a resident primary with a VIP, and waits for its deployment', async () => {
    const r = await h.run('primary', [h.m.url, 'pgrepl1', '/primary.pgrepl:5432']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/waiting for deployment [0-9a-f-]{36} of \/pgrepl1/);
    expect(r.stdout).toBe(`primary /pgrepl1 deployed: ${IMAGE}, at primary.pgrepl.marathon.l4lb.thisdcos.directory:5432\n`);
    expect(h.m.writes().map((p) => `${p.method} ${p.path}`)).toEqual(['POST /v2/apps']);
    expect(h.m.writes()[0]!.body).toEqual({
      id: '/pgrepl1',
      instances: 1,
      cpus: 1,
      mem: 1024,
      container: {
        type: 'DOCKER',
        docker: { image: IMAGE },
        volumes: [{ containerPath: 'pgdata', mode: 'RW', persistent: { size: 100 } }],
        portMappings: [{ name: 'postgres', containerPort: 5432, hostPort: 0, protocol: 'tcp', labels: { VIP_0: '/primary.pgrepl:5432' } }],
      },
      networks: [{ mode: 'container/bridge' }],
      env: {
        PGREPL_ROLE: 'PRIMARY',
        PGDATA: '/mnt/mesos/sandbox/pgdata',
        PGREPL_NODE_NAME: 'pgrepl1',
        // its own VIP's address: a standby promoted in its place answers there (fencing)
        PGREPL_PEERS: 'primary.pgrepl.marathon.l4lb.thisdcos.directory:5432',
        PGREPL_TOKEN: TOKEN,
        POSTGRES_PASSWORD: PASSWORD,
      },
      labels: { MARATHON_SINGLE_INSTANCE_APP: 'true' },
      constraints: [],
      healthChecks: [{ ...HEALTH, gracePeriodSeconds: 900 }],
      taskKillGracePeriodSeconds: 120,
      upgradeStrategy: { minimumHealthCapacity: 0, maximumOverCapacity: 0 },
    });
    // The deployment finished before the script returned: the task runs.
    const gets = h.m.requests.filter((q) => q.path === '/v2/deployments');
    expect(gets.length).toBeGreaterThan(0);
    expect(h.m.deployments).toEqual([]);
    expect(h.m.tasks('pgrepl1').map((t) => [t.state, t.host])).toEqual([['TASK_RUNNING', '10.0.1.11']]);
  });

  it('takes sizes from the environment; the health grace grows with the volume; node settings pass through', async () => {
    const r = await h.run('primary', [h.m.url, '/db/pgrepl-1', 'db.primary:6543'], {
      PGREPL_DISK_SIZE: '102400',
      PGREPL_CPUS: '2.5',
      PGREPL_MEM: '4096',
      PGREPL_KILL_GRACE: '300',
      POSTGRES_USER: 'gestalt',
      PGREPL_GESTALT_DATABASES: '',
      PGREPL_SLOT_MAX_WAL: '10GB',
      UNRELATED: 'not passed',
    });
    expect(r.code, r.stderr).toBe(0);
    const body = h.m.writes()[0]!.body;
    expect(body.id).toBe('/db/pgrepl-1');
    expect([body.cpus, body.mem, body.taskKillGracePeriodSeconds]).toEqual([2.5, 4096, 300]);
    expect(body.container.volumes).toEqual([{ containerPath: 'pgdata', mode: 'RW', persistent: { size: 102400 } }]);
    expect(body.healthChecks[0].gracePeriodSeconds).toBe(10240);
    expect(body.env).toEqual({
      POSTGRES_USER: 'gestalt',
      PGREPL_GESTALT_DATABASES: '',
      PGREPL_SLOT_MAX_WAL: '10GB',
      PGREPL_ROLE: 'PRIMARY',
      PGDATA: '/mnt/mesos/sandbox/pgdata',
      PGREPL_NODE_NAME: 'db_pgrepl_1',
      PGREPL_PEERS: 'db.primary.marathon.l4lb.thisdcos.directory:6543',
      PGREPL_TOKEN: TOKEN,
      POSTGRES_PASSWORD: PASSWORD,
    });
    expect(r.stdout).toContain('at db.primary.marathon.l4lb.thisdcos.directory:6543');
  });

  it('PGREPL_HEALTH_GRACE overrides the grace period', async () => {
    const r = await h.run('primary', [h.m.url, 'pgrepl1', '/primary.pgrepl:5432'], { PGREPL_HEALTH_GRACE: '60' });
    expect(r.code, r.stderr).toBe(0);
    expect(h.m.writes()[0]!.body.healthChecks[0].gracePeriodSeconds).toBe(60);
  });

  it.each([
    [[]],
    [['http://m:8080']],
    [['http://m:8080', 'pgrepl1']],
    [['http://m:8080', 'pgrepl1', '/primary.pgrepl:5432', 'extra']],
  ])('wrong number of arguments %j: usage, exit 64', async (args) => {
    const r = await h.run('primary', args);
    expect(r.code).toBe(64);
    expect(r.stderr).toContain('usage: primary.sh MARATHON_URL APP_ID VIP');
    expect(h.m.requests).toEqual([]);
  });

  it.each([
    ['marathon.mesos:8080', 'pgrepl1', '/primary.pgrepl:5432', 'MARATHON_URL must be an http(s) URL'],
    ['URL', 'pgrepl_bigger', '/primary.pgrepl:5432', "invalid app id 'pgrepl_bigger'"],
    ['URL', 'PgRepl1', '/primary.pgrepl:5432', "invalid app id 'PgRepl1'"],
    ['URL', '-pgrepl', '/primary.pgrepl:5432', "invalid app id '-pgrepl'"],
    ['URL', 'pgrepl1', '/primary.pgrepl', "invalid VIP '/primary.pgrepl'"],
    ['URL', 'pgrepl1', '/primary.pgrepl:70000', "invalid VIP '/primary.pgrepl:70000'"],
    ['URL', 'pgrepl1', '/primary.pgrepl:0', "invalid VIP '/primary.pgrepl:0'"],
    ['URL', 'pgrepl1', 'primary pgrepl:5432', "invalid VIP 'primary pgrepl:5432'"],
  ])('bad argument (%s %s %s): exit 64', async (url, id, vip, message) => {
    const r = await h.run('primary', [url === 'URL' ? h.m.url : url, id, vip]);
    expect(r.code).toBe(64);
    expect(r.stderr).toContain(message);
    expect(r.stderr).toContain('usage:');
    expect(h.m.writes()).toEqual([]);
  });

  it.each([
    ['POSTGRES_PASSWORD', 'PGREPL_INSECURE=1'],
    ['PGREPL_TOKEN', 'the image has no default token, and a node without one does not replicate'],
  ])('%s missing (or empty) is an error: nothing is sent', async (name, hint) => {
    for (const value of [undefined, '']) {
      const r = await h.run('primary', [h.m.url, 'pgrepl1', '/primary.pgrepl:5432'], { [name]: value });
      expect(r.code).toBe(1);
      expect(r.stderr).toContain(`${name} is not set`);
      expect(r.stderr).toContain(hint);
    }
    expect(h.m.writes()).toEqual([]);
  });

  it('PGREPL_INSECURE=1 goes on without a superuser password, loudly: trust authentication', async () => {
    const r = await h.run('primary', [h.m.url, 'pgrepl1', '/primary.pgrepl:5432'], { PGREPL_INSECURE: '1', POSTGRES_PASSWORD: undefined });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toContain('warning: POSTGRES_PASSWORD is not set and PGREPL_INSECURE is: the primary trusts every connection');
    expect(h.m.writes()[0]!.body.env).toEqual({
      PGREPL_ROLE: 'PRIMARY',
      PGDATA: '/mnt/mesos/sandbox/pgdata',
      PGREPL_NODE_NAME: 'pgrepl1',
      PGREPL_PEERS: 'primary.pgrepl.marathon.l4lb.thisdcos.directory:5432',
      PGREPL_TOKEN: TOKEN,
      POSTGRES_HOST_AUTH_METHOD: 'trust',
    });
  });

  it('PGREPL_INSECURE=1 never goes on without PGREPL_TOKEN: there is no default token to fall back on', async () => {
    const r = await h.run('primary', [h.m.url, 'pgrepl1', '/primary.pgrepl:5432'], { PGREPL_INSECURE: '1', PGREPL_TOKEN: undefined });
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('PGREPL_TOKEN is not set');
    expect(h.m.writes()).toEqual([]);
  });

  it('PGREPL_IMAGE missing is an error', async () => {
    const r = await h.run('primary', [h.m.url, 'pgrepl1', '/primary.pgrepl:5432'], { PGREPL_IMAGE: undefined });
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('PGREPL_IMAGE is not set');
    expect(h.m.requests).toEqual([]);
  });

  it.each([
    ['PGREPL_DISK_SIZE', '0'],
    ['PGREPL_DISK_SIZE', '1.5G'],
    ['PGREPL_CPUS', '0'],
    ['PGREPL_CPUS', '.5'],
    ['PGREPL_MEM', 'lots'],
    ['PGREPL_DEPLOY_TIMEOUT', '-1'],
  ])('a bad %s=%s is an error', async (name, value) => {
    const r = await h.run('primary', [h.m.url, 'pgrepl1', '/primary.pgrepl:5432'], { [name]: value });
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`${name} must be`);
    expect(h.m.writes()).toEqual([]);
  });

  it('an existing app: Marathon’s 409 reported, nothing changed', async () => {
    h.m.seedApp(nodeApp('/pgrepl1', 'PRIMARY', '/other.pgrepl:5432'));
    const before = h.m.app('pgrepl1');
    const r = await h.run('primary', [h.m.url, 'pgrepl1', '/primary.pgrepl:5432']);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('primary.sh: creating /pgrepl1 (an app with this id exists: delete it first, or choose another id): Marathon answered 409: An app with id [/pgrepl1] already exists.');
    expect(h.m.app('pgrepl1')).toEqual(before);
  });

  it('a VIP another app has is refused before anything is sent', async () => {
    h.m.seedApp(nodeApp('/other', 'PRIMARY', 'primary.pgrepl:5432'));
    const r = await h.run('primary', [h.m.url, 'pgrepl1', '/primary.pgrepl:5432']);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('the VIP /primary.pgrepl:5432 (primary.pgrepl.marathon.l4lb.thisdcos.directory:5432) is already on /other');
    expect(h.m.writes()).toEqual([]);
  });

  it('a 422 is reported with Marathon’s details', async () => {
    h.m.inject({
      method: 'POST',
      path: '/v2/apps',
      status: 422,
      body: { message: 'Object is not valid', details: [{ path: '/container/volumes(0)/persistent/size', errors: ['got 0, expected more than 0'] }, { path: '/cpus', errors: ['error.min', 'too few'] }] },
    });
    const r = await h.run('primary', [h.m.url, 'pgrepl1', '/primary.pgrepl:5432']);
    expect(r.code).toBe(1);
    expect(r.stderr).toBe(
      'primary.sh: creating /pgrepl1: Marathon answered 422: Object is not valid\n' +
        '  /container/volumes(0)/persistent/size: got 0, expected more than 0\n' +
        '  /cpus: error.min; too few\n',
    );
  });

  it('an error page that is not JSON is shown as it is', async () => {
    h.m.inject({ method: 'POST', path: '/v2/apps', status: 503, body: 'upstream unavailable' });
    const r = await h.run('primary', [h.m.url, 'pgrepl1', '/primary.pgrepl:5432']);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('Marathon answered 503: "upstream unavailable"');
  });

  it('a deployment that does not finish in time: exit 3, and it goes on', async () => {
    h.m.stuckApps.add('/pgrepl1');
    const r = await h.run('primary', [h.m.url, 'pgrepl1', '/primary.pgrepl:5432'], { PGREPL_DEPLOY_TIMEOUT: '1' });
    expect(r.code).toBe(3);
    const id = h.m.deployments[0]!.id;
    expect(r.stderr).toContain(`deployment ${id} of /pgrepl1 still running after 1s (StartApplication /pgrepl1); it goes on in Marathon`);
    expect(r.stderr).toContain(`DELETE ${h.m.url}/v2/deployments/${id}`);
  });

  it('Marathon unreachable: exit 1, saying where', async () => {
    const r = await h.run('primary', ['http://127.0.0.1:9', 'pgrepl1', '/primary.pgrepl:5432']);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('cannot reach Marathon at http://127.0.0.1:9 (GET /v2/apps failed)');
  });

  it('DCOS_ACS_TOKEN goes in an Authorization header on every request, never on a command line', async () => {
    const acs = 'acs-T0ken-"q"-\\-0d9e';
    const r = await h.run('primary', [`${h.m.url}/`, 'pgrepl1', '/primary.pgrepl:5432'], { DCOS_ACS_TOKEN: acs });
    expect(r.code, r.stderr).toBe(0);
    expect(h.m.requests.length).toBeGreaterThan(2);
    for (const q of h.m.requests) expect(q.headers.authorization).toBe(`token=${acs}`);
    expect(r.argv).not.toContain(acs);
    expect(r.stdout + r.stderr).not.toContain(acs);
  });
});
