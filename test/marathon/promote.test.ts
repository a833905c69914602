import { describe, expect, it } from 'vitest';
import { nodeApp, useHarness } from './harness.js';
import type { MarathonStandIn } from './stand-in.js';

const h = useHarness();
const PRIMARY = 'primary.pgrepl.marathon.l4lb.thisdcos.directory';

/** pgrepl1 PRIMARY on .11; pgrepl2 and pgrepl3 STANDBY of its VIP on .12 and .13; an unrelated app. */
function seedCluster(m: MarathonStandIn): void {
  m.seedApp(nodeApp('/pgrepl1', 'PRIMARY', '/primary.pgrepl:5432'), '10.0.1.11');
  m.seedApp(nodeApp('/pgrepl2', 'STANDBY', '/standby.pgrepl:5432', { upstream: [PRIMARY, '5432'], avoid: '10\\.0\\.1\\.11' }), '10.0.1.12');
  m.seedApp(nodeApp('/pgrepl3', 'STANDBY', '/standby3.pgrepl:5432', { upstream: [PRIMARY, '5432'], avoid: '10\\.0\\.1\\.11' }), '10.0.1.13');
  m.seedApp({ id: '/web', cmd: 'python3 -m http.server', instances: 2, cpus: 0.1, mem: 64 });
}

function writes(m: MarathonStandIn): string[] {
  return m.writes().map((q) => `${q.method} ${q.path}${q.query.force ? '?force=' + q.query.force : ''}`);
}

/** No app but the new primary is a primary, or has the primary's VIP. */
function expectOnePrimary(m: MarathonStandIn, primary: string): void {
  const apps = [...m.apps.values()].map((a) => a.def);
  expect(apps.filter((a) => a.env?.PGREPL_ROLE === 'PRIMARY').map((a) => a.id)).toEqual([primary]);
  expect(apps.filter((a) => JSON.stringify(a.container?.portMappings ?? []).includes('primary.pgrepl:5432')).map((a) => a.id)).toEqual([primary]);
}

describe('marathon/promote.sh', () => {
  it('with --old-primary: stops the old primary, makes it a standby of the VIP, then promotes, then restarts the other standbys', async () => {
    seedCluster(h.m);
    const oldTask = h.m.tasks('pgrepl1')[0]!;
    const before2 = h.m.app('pgrepl2');
    const r = await h.run('promote', [h.m.url, 'pgrepl2', '/primary.pgrepl:5432', '--old-primary', 'pgrepl1']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toBe(
      `promoted /pgrepl2: PRIMARY at ${PRIMARY}:5432\n` +
        `/pgrepl1: now a STANDBY of ${PRIMARY}:5432; it rejoins by rewind when it runs again\n` +
        `restarted the standbys of ${PRIMARY}:5432: /pgrepl3\n`,
    );
    expect(writes(h.m)).toEqual(['PUT /v2/apps/pgrepl1', 'PUT /v2/apps/pgrepl2', 'POST /v2/apps/pgrepl3/restart']);
    const [put1, put2, restart] = h.m.writes();

    // The old primary: a partial update with the fields that change, its VIP label gone.
    expect(Object.keys(put1!.body).sort()).toEqual(['container', 'env', 'id']);
    expect(put1!.body.id).toBe('/pgrepl1');
    expect(put1!.body.env).toEqual({
      ...nodeApp('/pgrepl1', 'PRIMARY', '').env as object, PGREPL_ROLE: 'STANDBY', PGREPL_MASTER_IP: PRIMARY, PGREPL_MASTER_PORT: '5432', PGREPL_PEERS: `${PRIMARY}:5432`,
    });
    expect(put1!.body.container.portMappings).toEqual([{ name: 'postgres', containerPort: 5432, hostPort: 0, protocol: 'tcp', labels: {}, servicePort: expect.any(Number) }]);
    expect(put1!.body.container.volumes).toEqual(h.m.app('pgrepl1').container.volumes);
    expect(put1!.rawBody).not.toContain('null');

    // The new primary: PRIMARY, no upstream, the VIP instead of its own.
    expect(Object.keys(put2!.body).sort()).toEqual(['container', 'env', 'id']);
    const { PGREPL_MASTER_IP: _ip, PGREPL_MASTER_PORT: _port, ...env2 } = before2.env;
    expect(put2!.body.env).toEqual({ ...env2, PGREPL_ROLE: 'PRIMARY', PGREPL_PEERS: `${PRIMARY}:5432` });
    expect(put2!.body.container.portMappings[0].labels).toEqual({ VIP_0: '/primary.pgrepl:5432' });
    expect({ ...put2!.body.container, portMappings: undefined }).toEqual({ ...before2.container, portMappings: undefined });
    expect(put2!.rawBody).not.toContain('null');
    expect(put1!.query.force ?? put2!.query.force ?? restart!.query.force).toBeUndefined();

    // Safety: the old primary's task was dead before the promotion was asked for.
    const killed = h.m.events.find((e) => e.kind === 'kill' && e.taskId === oldTask.id);
    expect(killed, 'the old primary was killed').toBeDefined();
    expect(killed!.at).toBeLessThan(put2!.at);
    // The promotion's deployment was over before the followers were restarted.
    const launched2 = h.m.events.find((e) => e.kind === 'launch' && e.appId === '/pgrepl2' && e.version === put2!.response.version);
    expect(launched2!.at).toBeLessThan(restart!.at);

    await h.m.settle();
    expectOnePrimary(h.m, '/pgrepl2');
    expect(h.m.app('pgrepl1').env).toMatchObject({ PGREPL_ROLE: 'STANDBY', PGREPL_MASTER_IP: PRIMARY, PGREPL_MASTER_PORT: '5432' });
    expect(h.m.app('pgrepl2').env).not.toHaveProperty('PGREPL_MASTER_IP');
    // Data kept: volumes and resources as they were; each app still on its host.
    for (const id of ['pgrepl1', 'pgrepl2', 'pgrepl3']) expect(h.m.tasks(id).map((t) => t.state)).toEqual(['TASK_RUNNING']);
    expect(h.m.tasks('pgrepl1')[0]!.host).toBe('10.0.1.11');
    expect(h.m.tasks('pgrepl2')[0]!.host).toBe('10.0.1.12');
  });

  it('PGREPL_PEERS: the VIP’s address is added to both nodes’ peers, which are kept, each address once', async () => {
    const standbyVip = 'standby.pgrepl.marathon.l4lb.thisdcos.directory:5432';
    h.m.seedApp(nodeApp('/pgrepl1', 'PRIMARY', '/primary.pgrepl:5432', { peers: `${PRIMARY}:5432` }), '10.0.1.11');
    h.m.seedApp(nodeApp('/pgrepl2', 'STANDBY', '/standby.pgrepl:5432', { upstream: [PRIMARY, '5432'], peers: `${PRIMARY}:5432,${standbyVip}` }), '10.0.1.12');
    const r = await h.run('promote', [h.m.url, 'pgrepl2', '/primary.pgrepl:5432', '--old-primary', 'pgrepl1']);
    expect(r.code, r.stderr).toBe(0);
    expect(h.m.app('pgrepl1').env.PGREPL_PEERS).toBe(`${PRIMARY}:5432`);
    expect(h.m.app('pgrepl2').env.PGREPL_PEERS).toBe(`${PRIMARY}:5432,${standbyVip}`);
    await h.m.settle();
    expectOnePrimary(h.m, '/pgrepl2');
  });

  it('the VIP defaults to the old primary’s', async () => {
    seedCluster(h.m);
    const r = await h.run('promote', [h.m.url, 'pgrepl2', '--old-primary=pgrepl1', '--no-restart-followers']);
    expect(r.code, r.stderr).toBe(0);
    expect(writes(h.m)).toEqual(['PUT /v2/apps/pgrepl1', 'PUT /v2/apps/pgrepl2']);
    expectOnePrimary(h.m, '/pgrepl2');
  });

  it('the old primary’s agent is gone: its new definition waits for it, the promotion does not; when it is back it comes back a standby', async () => {
    seedCluster(h.m);
    h.m.setReachable('10.0.1.11', false);
    const r = await h.run('promote', [h.m.url, 'pgrepl2', '/primary.pgrepl:5432', '--old-primary', 'pgrepl1']);
    expect(r.code, r.stderr).toBe(0);
    expectOnePrimary(h.m, '/pgrepl2');
    // The old primary's update is pending, its task unreachable.
    expect(h.m.deployments.map((d) => d.appId)).toContain('/pgrepl1');
    expect(h.m.tasks('pgrepl1').map((t) => t.state)).toEqual(['TASK_UNREACHABLE']);
    // The agent comes back: the old task (a primary) is killed, a standby starts on the same volume.
    const newVersion = h.m.writes()[0]!.response.version;
    h.m.setReachable('10.0.1.11', true);
    await h.m.settle();
    expect(h.m.tasks('pgrepl1').map((t) => [t.state, t.host, t.version])).toEqual([['TASK_RUNNING', '10.0.1.11', newVersion]]);
    expect(h.m.app('pgrepl1').env.PGREPL_ROLE).toBe('STANDBY');
  });

  it('the old primary does not stop in time: exit 3, nothing promoted', async () => {
    seedCluster(h.m);
    h.m.unkillableApps.add('/pgrepl1');
    const r = await h.run('promote', [h.m.url, 'pgrepl2', '/primary.pgrepl:5432', '--old-primary', 'pgrepl1'], { PGREPL_STOP_TIMEOUT: '1' });
    expect(r.code).toBe(3);
    expect(r.stderr).toMatch(/\/pgrepl1 still runs its task as a primary \(pgrepl1\.[0-9a-f-]+ on 10\.0\.1\.11\) after 1s: not promoting \/pgrepl2/);
    expect(writes(h.m)).toEqual(['PUT /v2/apps/pgrepl1']);
    expect(h.m.app('pgrepl2').env.PGREPL_ROLE).toBe('STANDBY');
    // Run again (its deployment forced): the old primary is re-pointed already, and still runs: still no promotion.
    const again = await h.run('promote', [h.m.url, 'pgrepl2', '/primary.pgrepl:5432', '--old-primary', 'pgrepl1', '--force'], { PGREPL_STOP_TIMEOUT: '1' });
    expect(again.code).toBe(3);
    expect(writes(h.m)).toEqual(['PUT /v2/apps/pgrepl1']);
    // It dies at last: the run goes through.
    h.m.unkillableApps.delete('/pgrepl1');
    const last = await h.run('promote', [h.m.url, 'pgrepl2', '/primary.pgrepl:5432', '--old-primary', 'pgrepl1', '--force']);
    expect(last.code, last.stderr).toBe(0);
    await h.m.settle();
    expectOnePrimary(h.m, '/pgrepl2');
  });

  it('refuses to promote a standby that does not run (its agent gone): there would be no primary at all', async () => {
    seedCluster(h.m);
    h.m.setReachable('10.0.1.12', false);
    const r = await h.run('promote', [h.m.url, 'pgrepl2', '/primary.pgrepl:5432', '--old-primary', 'pgrepl1']);
    expect(r.code).toBe(1);
    expect(r.stderr).toBe('promote.sh: /pgrepl2 has no running task (TASK_UNREACHABLE on 10.0.1.12): promote a standby that runs, or pass --force to update it anyway; nothing changed\n');
    expect(h.m.writes()).toEqual([]);
  });

  it('refuses to take a VIP another app holds, unless that app is the --old-primary', async () => {
    seedCluster(h.m);
    const r = await h.run('promote', [h.m.url, 'pgrepl2', '/primary.pgrepl:5432']);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(
      `the VIP /primary.pgrepl:5432 (${PRIMARY}:5432) is on /pgrepl1: clients would be balanced between two databases. Pass --old-primary /pgrepl1 (it becomes a standby of /pgrepl2), or delete it, first`,
    );
    expect(h.m.writes()).toEqual([]);
  });

  it('the seed’s way: the old primary deleted first, then its VIP taken; the standbys of the VIP restart', async () => {
    seedCluster(h.m);
    const del = await fetch(`${h.m.url}/v2/apps/pgrepl1`, { method: 'DELETE' });
    expect(del.status).toBe(200);
    await h.m.settle();
    const r = await h.run('promote', [h.m.url, 'pgrepl2', '/primary.pgrepl:5432']);
    expect(r.code, r.stderr).toBe(0);
    expect(writes(h.m)).toEqual(['DELETE /v2/apps/pgrepl1', 'PUT /v2/apps/pgrepl2', 'POST /v2/apps/pgrepl3/restart']);
    expectOnePrimary(h.m, '/pgrepl2');
  });

  it('without a VIP: only the role changes, with a warning that the upstream stays writable', async () => {
    seedCluster(h.m);
    const r = await h.run('promote', [h.m.url, 'pgrepl3']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toContain('warning: /pgrepl1, /pgrepl3\'s upstream, stays a writable primary: two primaries now. Run again with --old-primary /pgrepl1');
    expect(writes(h.m)).toEqual(['PUT /v2/apps/pgrepl3']);
    expect(Object.keys(h.m.writes()[0]!.body).sort()).toEqual(['env', 'id']);
    expect(r.stdout).toBe('promoted /pgrepl3: PRIMARY\n');
  });

  it('run again, it changes nothing', async () => {
    seedCluster(h.m);
    expect((await h.run('promote', [h.m.url, 'pgrepl2', '/primary.pgrepl:5432', '--old-primary', 'pgrepl1'])).code).toBe(0);
    await h.m.settle();
    const n = h.m.writes().length;
    const r = await h.run('promote', [h.m.url, 'pgrepl2', '/primary.pgrepl:5432', '--old-primary', 'pgrepl1']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toBe(`/pgrepl2 is already the primary at ${PRIMARY}:5432: nothing to change\n/pgrepl1: already a STANDBY of ${PRIMARY}:5432\n`);
    expect(h.m.writes().length).toBe(n);
  });

  it('a deployment locking either app: refused before any change; --force overrides it', async () => {
    seedCluster(h.m);
    h.m.stuckApps.add('/pgrepl1');
    await fetch(`${h.m.url}/v2/apps/pgrepl1/restart`, { method: 'POST' });
    const locking = h.m.deployments.find((d) => d.appId === '/pgrepl1')!.id;
    let r = await h.run('promote', [h.m.url, 'pgrepl2', '/primary.pgrepl:5432', '--old-primary', 'pgrepl1']);
    expect(r.code).toBe(1);
    expect(r.stderr).toBe(`promote.sh: /pgrepl1 is locked by deployment ${locking}: wait for it to finish (status.sh shows +deploying), or pass --force to override it; nothing changed\n`);
    expect(writes(h.m)).toEqual(['POST /v2/apps/pgrepl1/restart']);
    h.m.stuckApps.delete('/pgrepl1');
    r = await h.run('promote', [h.m.url, 'pgrepl2', '/primary.pgrepl:5432', '--old-primary', 'pgrepl1', '--force']);
    expect(r.code, r.stderr).toBe(0);
    expect(writes(h.m)).toEqual(['POST /v2/apps/pgrepl1/restart', 'PUT /v2/apps/pgrepl1?force=true', 'PUT /v2/apps/pgrepl2?force=true', 'POST /v2/apps/pgrepl3/restart?force=true']);
    await h.m.settle();
    expectOnePrimary(h.m, '/pgrepl2');
  });

  it('Marathon’s 409 (a deployment started meanwhile) is reported with the deployment', async () => {
    seedCluster(h.m);
    h.m.inject({
      method: 'PUT',
      path: '/v2/apps/pgrepl2',
      status: 409,
      body: { message: "App is locked by one or more deployments. Override with the option '?force=true'. View details at '/v2/deployments/<DEPLOYMENT_ID>'.", deployments: [{ id: '5ed4c0c5-9ff8-4a6f-a0cd-f57f59a34b43' }] },
    });
    const r = await h.run('promote', [h.m.url, 'pgrepl2', '/primary.pgrepl:5432', '--old-primary', 'pgrepl1']);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(
      `promote.sh: updating /pgrepl2: Marathon answered 409: App is locked by one or more deployments. Override with the option '?force=true'. View details at '/v2/deployments/<DEPLOYMENT_ID>'.\n` +
        `  locked by deployment 5ed4c0c5-9ff8-4a6f-a0cd-f57f59a34b43: wait for it to finish, or pass --force to override it\n`,
    );
    // Run again once the deployment is over: it finishes the job (pgrepl1 is already re-pointed).
    const again = await h.run('promote', [h.m.url, 'pgrepl2', '/primary.pgrepl:5432', '--old-primary', 'pgrepl1']);
    expect(again.code, again.stderr).toBe(0);
    expect(again.stdout).toContain('/pgrepl1: already a STANDBY of');
    await h.m.settle();
    expectOnePrimary(h.m, '/pgrepl2');
  });

  it('a 422 is reported with its details', async () => {
    seedCluster(h.m);
    h.m.inject({ method: 'PUT', path: '/v2/apps/pgrepl2', status: 422, body: { message: 'Object is not valid', details: [{ path: '/', errors: ['Resident Tasks may not change resource requirements!'] }] } });
    const r = await h.run('promote', [h.m.url, 'pgrepl2', '/primary.pgrepl:5432', '--old-primary', 'pgrepl1']);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('promote.sh: updating /pgrepl2: Marathon answered 422: Object is not valid\n  /: Resident Tasks may not change resource requirements!\n');
  });

  it('a promotion whose deployment does not finish in time: exit 3', async () => {
    seedCluster(h.m);
    h.m.stuckApps.add('/pgrepl2');
    const r = await h.run('promote', [h.m.url, 'pgrepl2', '/primary.pgrepl:5432', '--old-primary', 'pgrepl1'], { PGREPL_DEPLOY_TIMEOUT: '1' });
    expect(r.code).toBe(3);
    expect(r.stderr).toContain('of /pgrepl2 still running after 1s (RestartApplication /pgrepl2)');
    expect(writes(h.m)).toEqual(['PUT /v2/apps/pgrepl1', 'PUT /v2/apps/pgrepl2']);
  });

  it('a follower that cannot be restarted is a warning', async () => {
    seedCluster(h.m);
    h.m.inject({ method: 'POST', path: '/v2/apps/pgrepl3/restart', status: 409, body: { message: 'App is locked by one or more deployments.', deployments: [{ id: 'd-1' }] } });
    const r = await h.run('promote', [h.m.url, 'pgrepl2', '/primary.pgrepl:5432', '--old-primary', 'pgrepl1']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toContain('warning: restarting /pgrepl3, a standby of primary.pgrepl.marathon.l4lb.thisdcos.directory:5432: Marathon answered 409');
    expect(r.stdout).not.toContain('restarted');
  });

  it.each([
    [[], 'usage: promote.sh MARATHON_URL APP_ID [VIP] [--old-primary APP_ID] [--force] [--no-restart-followers]'],
    [['URL'], 'usage:'],
    [['URL', 'pgrepl2', '/primary.pgrepl:5432', 'extra'], 'usage:'],
    [['URL', 'pgrepl2', '--bogus'], 'unknown option --bogus'],
    [['URL', 'pgrepl2', '--old-primary'], '--old-primary needs an app id'],
    [['URL', 'pgrepl2', '--old-primary', 'pgrepl2'], '--old-primary must name another app'],
    [['URL', 'pgrepl2', '--old-primary', 'Bad_Id'], "invalid app id 'Bad_Id'"],
    [['URL', 'pgrepl2', 'primary:port'], "invalid VIP 'primary:port'"],
  ])('bad arguments %j: exit 64', async (args, message) => {
    const r = await h.run('promote', args.map((a) => (a === 'URL' ? h.m.url : a)));
    expect(r.code).toBe(64);
    expect(r.stderr).toContain(message);
    expect(h.m.requests).toEqual([]);
  });

  it('--help prints the usage', async () => {
    const r = await h.run('promote', ['--help']);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('usage: promote.sh');
  });

  it('apps that do not exist (404), or are not pgrepl nodes: exit 1', async () => {
    seedCluster(h.m);
    let r = await h.run('promote', [h.m.url, 'pgrepl9', '/primary.pgrepl:5432']);
    expect([r.code, r.stderr]).toEqual([1, `promote.sh: no app /pgrepl9 in Marathon at ${h.m.url} (the standby to promote)\n`]);
    r = await h.run('promote', [h.m.url, 'pgrepl2', '--old-primary', 'pgrepl9']);
    expect([r.code, r.stderr]).toEqual([1, `promote.sh: no app /pgrepl9 in Marathon at ${h.m.url} (the old primary)\n`]);
    r = await h.run('promote', [h.m.url, 'web', '/primary.pgrepl:5432']);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('/web is not a pgrepl node');
    expect(h.m.writes()).toEqual([]);
  });

  it('an old primary without a VIP, and none given: exit 64', async () => {
    h.m.seedApp(nodeApp('/pgrepl2', 'STANDBY', '/standby.pgrepl:5432'), '10.0.1.12');
    const app = nodeApp('/pgrepl1', 'PRIMARY', 'x:1') as Record<string, any>;
    app.container.portMappings[0].labels = {};
    h.m.seedApp(app, '10.0.1.11');
    const r = await h.run('promote', [h.m.url, 'pgrepl2', '--old-primary', 'pgrepl1']);
    expect(r.code).toBe(64);
    expect(r.stderr).toContain('/pgrepl1 has no VIP and none is given');
    expect(h.m.writes()).toEqual([]);
  });
});
