/**
 * The Marathon stand-in itself: the semantics and error shapes the scripts' tests rely on, and
 * the rules it adds to the schema. Requests are made with fetch.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { nodeApp } from './harness.js';
import { MarathonStandIn } from './stand-in.js';

let m: MarathonStandIn;
beforeEach(async () => {
  m = new MarathonStandIn();
  await m.start();
});
afterEach(() => m.stop());

async function call(method: string, path: string, body?: unknown): Promise<{ status: number; body: any; headers: Headers }> {
  const res = await fetch(`${m.url}${path}`, { method, body: body === undefined ? undefined : JSON.stringify(body), headers: body === undefined ? {} : { 'Content-Type': 'application/json' } });
  const text = await res.text();
  return { status: res.status, body: text === '' ? undefined : JSON.parse(text), headers: res.headers };
}

const app = (): any => nodeApp('/db/pg1', 'PRIMARY', '/primary.pgrepl:5432');

describe('Marathon stand-in', () => {
  it('404 for an app that does not exist, in Marathon’s shape', async () => {
    for (const [method, path] of [['GET', '/v2/apps/nope'], ['GET', '/v2/apps/a/nope/tasks'], ['DELETE', '/v2/apps/nope'], ['POST', '/v2/apps/nope/restart']] as const) {
      const r = await call(method, path);
      expect(r.status, `${method} ${path}`).toBe(404);
      expect(r.body.message).toMatch(/^App '\/(a\/)?nope' does not exist$/);
    }
  });

  it('POST creates (201, Location, deployment); a second POST is a 409; the deployment finishes and a task runs', async () => {
    const r = await call('POST', '/v2/apps', app());
    expect(r.status).toBe(201);
    expect(r.headers.get('location')).toBe(`${m.url}/v2/apps/db/pg1`);
    expect(r.body.deployments).toEqual([{ id: r.headers.get('marathon-deployment-id') }]);
    expect((await call('GET', '/v2/deployments')).body.map((d: any) => d.affectedApps)).toEqual([['/db/pg1']]);
    expect((await call('POST', '/v2/apps', app())).body).toEqual({ message: 'An app with id [/db/pg1] already exists.' });
    await m.settle();
    const tasks = (await call('GET', '/v2/apps/db/pg1/tasks')).body.tasks;
    expect(tasks.map((t: any) => [t.host, t.state, t.healthCheckResults[0].alive])).toEqual([['10.0.1.11', 'TASK_RUNNING', true]]);
  });

  it('GET shows read-only fields and nulls: sent back as it is, it is refused by the schema', async () => {
    m.seedApp(app());
    const got = (await call('GET', '/v2/apps/db/pg1')).body.app;
    expect(got).toMatchObject({ args: null, user: null, tasksRunning: 1, tasksHealthy: 1, deployments: [] });
    expect(got.tasks).toHaveLength(1);
    const r = await call('PUT', '/v2/apps/db/pg1', got);
    expect(r.status).toBe(422);
    expect(r.body.message).toBe('Object is not valid');
    expect(m.schemaViolations()).toHaveLength(1);
  });

  it('PUT is a partial update: the fields given replace, the others stay; 200 with version and deployment', async () => {
    m.seedApp(app());
    const r = await call('PUT', '/v2/apps/db/pg1', { id: '/db/pg1', env: { PGREPL_ROLE: 'STANDBY' } });
    expect(r.status).toBe(200);
    expect(Object.keys(r.body).sort()).toEqual(['deploymentId', 'version']);
    expect(m.app('/db/pg1').env).toEqual({ PGREPL_ROLE: 'STANDBY' });
    expect(m.app('/db/pg1').container.volumes[0].containerPath).toBe('pgdata');
  });

  it('PUT of an app that does not exist creates it: 201', async () => {
    const r = await call('PUT', '/v2/apps/db/pg1', app());
    expect(r.status).toBe(201);
    expect(m.app('/db/pg1').id).toBe('/db/pg1');
  });

  it('a deployment locks its app: 409 with the deployments; ?force=true replaces it', async () => {
    m.seedApp(app());
    m.stuckApps.add('/db/pg1');
    const first = await call('PUT', '/v2/apps/db/pg1', { id: '/db/pg1', env: { A: '1' } });
    const locked = await call('PUT', '/v2/apps/db/pg1', { id: '/db/pg1', env: { A: '2' } });
    expect(locked.status).toBe(409);
    expect(locked.body.deployments).toEqual([{ id: first.body.deploymentId }]);
    expect((await call('DELETE', '/v2/apps/db/pg1')).status).toBe(409);
    expect((await call('POST', '/v2/apps/db/pg1/restart')).status).toBe(409);
    const forced = await call('PUT', '/v2/apps/db/pg1?force=true', { id: '/db/pg1', env: { A: '2' } });
    expect(forced.status).toBe(200);
    expect(m.deployments.map((d) => d.id)).toEqual([forced.body.deploymentId]);
  });

  it('422 with details in Marathon’s path notation for a body the schema refuses', async () => {
    const bad = app();
    bad.container.volumes[0].mode = 'RWX';
    bad.bogus = true;
    const r = await call('POST', '/v2/apps', bad);
    expect(r.status).toBe(422);
    expect(r.body.details.map((d: any) => d.path).sort()).toEqual(['/', '/container/volumes(0)/mode']);
  });

  it.each([
    ['a persistent volume’s containerPath with "/"', (a: any) => (a.container.volumes[0].containerPath = '/var/lib/postgresql/data'), '/container/volumes(0)/containerPath', 'value must not contain "/"'],
    ['a resident app with maximumOverCapacity > 0', (a: any) => (a.upgradeStrategy = { minimumHealthCapacity: 0, maximumOverCapacity: 0.5 }), '/upgradeStrategy/maximumOverCapacity', 'got 0.5, expected 0.0'],
    ['a resident app with an unreachableStrategy', (a: any) => (a.unreachableStrategy = { inactiveAfterSeconds: 60, expungeAfterSeconds: 120 }), '/unreachableStrategy', 'unreachableStrategy must be disabled for resident tasks'],
    ['a persistent volume of size 0', (a: any) => (a.container.volumes[0].persistent.size = 0), '/container/volumes(0)/persistent/size', 'got 0, expected more than 0'],
    ['a single-instance app with 2 instances', (a: any) => (a.instances = 2), '/', 'Single instance app may only have one instance'],
    ['portDefinitions with bridge networking', (a: any) => (a.portDefinitions = [{ port: 0 }]), '/', 'portDefinitions are only allowed with host-networking'],
    ['two Mesos health checks', (a: any) => a.healthChecks.push({ protocol: 'MESOS_TCP', portIndex: 0 }), '/healthChecks', 'AppDefinition can contain at most one Mesos health check'],
    ['an UNLIKE constraint without a value', (a: any) => (a.constraints = [['hostname', 'UNLIKE']]), '/constraints(0)', 'A regular expression value must be provided'],
  ])('422 for %s', async (_what, change, path, error) => {
    const a = app();
    change(a);
    const r = await call('POST', '/v2/apps', a);
    expect(r.status).toBe(422);
    expect(r.body.details).toContainEqual({ path, errors: [error] });
    expect(m.schemaViolations()).toEqual([]);
  });

  it('explicit unreachableStrategy "disabled" is fine for a resident app', async () => {
    expect((await call('POST', '/v2/apps', { ...app(), unreachableStrategy: 'disabled' })).status).toBe(201);
  });

  it.each([
    ['cpus', { cpus: 2 }, 'Resident Tasks may not change resource requirements!'],
    ['mem', { mem: 2048 }, 'Resident Tasks may not change resource requirements!'],
    ['the volume size', { container: { ...app().container, volumes: [{ containerPath: 'pgdata', mode: 'RW', persistent: { size: 200 } }] } }, 'Persistent volumes can not be changed!'],
    ['the volume path', { container: { ...app().container, volumes: [{ containerPath: 'data', mode: 'RW', persistent: { size: 100 } }] } }, 'Persistent volumes can not be changed!'],
    ['a host port', { container: { ...app().container, portMappings: [{ containerPort: 5432, hostPort: 5432 }] } }, 'Resident Tasks may not change resource requirements!'],
  ])('an update of a resident app may not change %s', async (_what, change, error) => {
    m.seedApp(app());
    const r = await call('PUT', '/v2/apps/db/pg1', { id: '/db/pg1', ...change });
    expect(r.status).toBe(422);
    expect(r.body.details).toContainEqual({ path: '/', errors: [error] });
  });

  it('DELETE removes the app at once; restart relaunches its task with a new version on the same host', async () => {
    m.seedApp(app(), '10.0.1.13');
    const before = m.tasks('/db/pg1')[0]!;
    const restart = await call('POST', '/v2/apps/db/pg1/restart');
    expect(restart.status).toBe(200);
    await m.settle();
    const after = m.tasks('/db/pg1')[0]!;
    expect([after.host, after.version === restart.body.version, after.id === before.id]).toEqual(['10.0.1.13', true, false]);
    const del = await call('DELETE', '/v2/apps/db/pg1');
    expect(del.status).toBe(200);
    expect((await call('GET', '/v2/apps/db/pg1')).status).toBe(404);
    await m.settle();
  });

  it('hostname constraints place new tasks; an unreachable agent blocks a resident app’s deployment until it is back', async () => {
    m.seedApp(app(), '10.0.1.11');
    const b = { ...nodeApp('/db/pg2', 'STANDBY', '/s:5432'), constraints: [['hostname', 'UNLIKE', '10\\.0\\.1\\.1[12]']] };
    expect((await call('POST', '/v2/apps', b)).status).toBe(201);
    await m.settle();
    expect(m.tasks('/db/pg2').map((t) => t.host)).toEqual(['10.0.1.13']);
    m.setReachable('10.0.1.13', false);
    await call('PUT', '/v2/apps/db/pg2', { id: '/db/pg2', env: { PGREPL_ROLE: 'PRIMARY' } });
    await new Promise((r) => setTimeout(r, 300));
    expect(m.deployments).toHaveLength(1);
    expect(m.tasks('/db/pg2').map((t) => t.state)).toEqual(['TASK_UNREACHABLE']);
    m.setReachable('10.0.1.13', true);
    await m.settle();
    expect(m.tasks('/db/pg2').map((t) => [t.host, t.state])).toEqual([['10.0.1.13', 'TASK_RUNNING']]);
  });

  it('an unknown route is a 404 the tests can see', async () => {
    expect((await call('GET', '/v2/groups')).status).toBe(404);
  });
});
