/**
 * The image in HA mode (PGREPL_ETCD_ENDPOINTS set): the agent stays beside postgres, so PID 1 is
 * tini (the entrypoint runs itself again under it, src/handover/init.ts), not postgres, and the
 * container ends with the entrypoint's status. Without HA the image is unchanged (image.test.ts:
 * postgres is PID 1). And the image has what the agent's postgres needs to die with the agent:
 * util-linux's setpriv with --pdeathsig, shown by the agent stand-in of postgres-child.test.ts
 * running in the image under tini.
 */
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bundleFixture } from '../support/bundle.js';
import { IMAGE, WORK, Scope, logs, podman, podmanOk, primaryEnv, waitExited, waitForLog } from './support.js';

const scope = new Scope();
let driver: string;

beforeAll(async () => {
  const r = await podman(['image', 'exists', IMAGE]);
  if (r.code !== 0) throw new Error(`${IMAGE} is not built: run the container tests through their vitest project (its globalSetup builds it)`);
  driver = await bundleFixture('test/integration/fixtures/postgres-child-driver.ts', join(WORK, `${scope.prefix}-driver.cjs`));
});

afterAll(async () => {
  await scope.cleanup();
  rmSync(driver, { force: true });
});

/** The processes of a container with their parents. */
async function tree(name: string): Promise<{ pid: number; ppid: number; user: string; args: string }[]> {
  const out = await podmanOk(['top', name, 'pid', 'ppid', 'user', 'args']);
  return out.split('\n').slice(1).filter((l) => l.trim()).map((l) => {
    const [pid, ppid, user, ...args] = l.trim().split(/\s+/);
    return { pid: Number(pid), ppid: Number(ppid), user: user!, args: args.join(' ') };
  });
}

describe('HA mode in the image', () => {
  it('the entrypoint runs again under tini as PID 1; the agent is its child; a stop reaches the agent, which exits 0, and so does the container', async () => {
    // No etcd in the container's network: the agent keeps retrying ("etcd did not answer") and
    // touches nothing; what is shown here is the process model, not the cluster.
    const name = await scope.run(scope.name('ha'), primaryEnv({ PGREPL_ETCD_ENDPOINTS: 'http://127.0.0.1:2379', PGREPL_RETRY_TIMEOUT: '1', PGREPL_TTL: '5' }));
    await waitForLog(name, /etcd did not answer/);
    const lines = (await logs(name)).split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as { pid: number; msg: string });
    expect(lines[0]).toMatchObject({ pid: 1, msg: 'PID 1 in HA mode: running again under tini, which reaps orphans and passes signals on' });
    const procs = await tree(name);
    expect(procs.find((p) => p.pid === 1)?.args, JSON.stringify(procs)).toMatch(/tini/);
    const agent = procs.find((p) => p.ppid === 1 && /pgrepl/.test(p.args));
    expect(agent, JSON.stringify(procs)).toBeDefined();
    expect(lines.find((l) => l.msg.startsWith('HA mode: the agent starts'))?.pid).toBe(agent!.pid);
    await podmanOk(['stop', name]);
    expect(await waitExited(name)).toBe(0);
    // The image's STOPSIGNAL is SIGINT, as the official image's.
    const text = await logs(name);
    expect(text, text).toMatch(/SIGINT: stopping \(a leader hands its key over first\)/);
    expect(text).not.toMatch(/postgres exited without the agent asking/);
  });

  it("the agent's postgres in the image: under tini, started through setpriv as postgres, the stop signal passed on twice, exit 0", async () => {
    const name = scope.name('agent');
    const start = [
      'set -e',
      'install -d -o postgres -m 0700 /tmp/pgdata',
      'gosu postgres initdb -D /tmp/pgdata -A trust >/dev/null',
      `exec node /driver.cjs '["-c", "listen_addresses="]'`,
    ].join('; ');
    await podmanOk(['run', '-d', '--name', name, '--label', scope.label, '-e', 'PGDATA=/tmp/pgdata', '-v', `${driver}:/driver.cjs:ro`,
      '--entrypoint', 'tini', IMAGE, '--', 'sh', '-c', start]);
    const text = await waitForLog(name, /postgres started as a child of this process[\s\S]*database system is ready to accept connections/);
    expect(text).not.toMatch(/setpriv .* is not on PATH/);
    const procs = await tree(name);
    const agent = procs.find((p) => p.args === 'node /driver.cjs ["-c", "listen_addresses="]' || p.args.startsWith('node /driver.cjs'));
    expect(agent, JSON.stringify(procs)).toMatchObject({ ppid: 1 });
    const postmaster = procs.find((p) => p.ppid === agent!.pid);
    expect(postmaster, JSON.stringify(procs)).toMatchObject({ user: 'postgres' });
    expect(postmaster!.args).toMatch(/^\S*postgres -c listen_addresses=/);
    await podmanOk(['stop', name]);
    expect(await waitExited(name)).toBe(0);
    expect(await logs(name)).toMatch(/received fast shutdown request/);
  });
});
