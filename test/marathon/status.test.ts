import { describe, expect, it } from 'vitest';
import { nodeApp, useHarness } from './harness.js';

const h = useHarness();
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
      ['/pgrepl2', 'STANDBY', '10.0.1.12', 'TASK_RUNNING', 'healthy', '/standby.pgrepl:5432 (standby.pgrepl.marathon.l4lb.thisdcos.directory:5432)', `${PRIMARY}:5432`],
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
});
