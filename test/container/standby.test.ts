/**
 * A standby in a container: cloned from a primary container on a podman network, it passes its
 * HEALTHCHECK; `podman rm` + re-run on its volume is a restart without a copy, streaming again
 * with postgres as PID 1. And the HEALTHCHECK fails where no postgres runs.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  IMAGE, logs, pgreplLines, podman, primaryEnv, psql, rows, Scope, top, waitReady,
} from './support.js';

const scope = new Scope();
let net: string;
let primary: string;
let volume: string;

async function startStandby(name: string): Promise<string> {
  return scope.run(name, [
    '--network', net, '--hostname', 'standby1', '-v', `${volume}:/var/lib/postgresql/data`,
    ...primaryEnv({ PGREPL_ROLE: 'STANDBY', PGREPL_MASTER_IP: primary }), // names resolve on a podman network
  ]);
}

async function eventually<T>(what: string, fn: () => Promise<T | undefined>, ms = 60_000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await fn().catch(() => undefined);
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out: ${what}`);
    await new Promise((r) => setTimeout(r, 300));
  }
}

beforeAll(async () => {
  net = await scope.network();
  volume = await scope.volume('standby');
  primary = await scope.run(scope.name('primary'), ['--network', net, '--hostname', 'primary1', ...primaryEnv()]);
  await waitReady(primary);
  await psql(primary, 'CREATE TABLE t (v int); INSERT INTO t VALUES (1)');
});
afterAll(() => scope.cleanup());

describe('a standby container', () => {
  let first: string;

  it('clones its primary, streams, and passes its HEALTHCHECK', async () => {
    first = await startStandby(scope.name('standby'));
    await waitReady(first);
    expect(rows(await logs(first))).toEqual(['missing/empty × STANDBY']);
    expect(await psql(first, 'SELECT pg_is_in_recovery()')).toBe('t');
    expect(await psql(first, 'SELECT count(*) FROM t')).toBe('1');
    expect((await podman(['healthcheck', 'run', first])).code).toBe(0);
    expect((await podman(['exec', first, 'pgrepl', 'health', '--standby'])).code).toBe(0);
  });

  it('re-created on the same volume: no copy, postgres is PID 1 as postgres, streaming again', async () => {
    expect((await podman(['stop', first])).code).toBe(0);
    await podman(['rm', first]);
    const again = await startStandby(scope.name('standby'));
    await waitReady(again);
    const text = await logs(again);
    expect(rows(text)).toEqual(['standby cluster × STANDBY']);
    expect(text).not.toMatch(/pg_basebackup/);
    expect(pgreplLines(text).some((l) => /cloning/.test(l.msg))).toBe(false);
    const procs = await top(again);
    expect(procs.find((p) => p.pid === 1)).toMatchObject({ user: 'postgres' });
    expect(procs.find((p) => p.pid === 1)?.args).toMatch(/^postgres/);
    await psql(primary, 'INSERT INTO t VALUES (2)');
    expect(await eventually('row 2 on the standby', async () => ((await psql(again, 'SELECT count(*) FROM t')) === '2' ? true : undefined))).toBe(true);
    const status = JSON.parse((await podman(['exec', again, 'pgrepl', 'status', '--json'])).stdout);
    expect(status).toMatchObject({ role: 'standby', upstream: { status: 'streaming' } });
  });

  it('fails its HEALTHCHECK where no postgres runs', async () => {
    // The dispatcher runs any command as given: here a container with no postgres at all.
    const name = scope.name('nopg');
    await podman(['run', '-d', '--name', name, '--label', scope.label, ...primaryEnv(), IMAGE, 'sleep', '600']);
    const h = await podman(['healthcheck', 'run', name]);
    expect(h.code).not.toBe(0);
    const direct = await podman(['exec', name, 'pgrepl', 'health']);
    expect(direct.code).toBe(1);
    expect(direct.stdout).toMatch(/^unhealthy/);
  });
});
