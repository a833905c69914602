/**
 * `docker run --user UID` with a UID that /etc/passwd does not name, as the official image allows:
 * initdb needs a user name for the UID, which nss_wrapper (libnss-wrapper, in the base image) makes
 * up for it. The data directory is the host's, owned by that UID, as the official image's
 * documentation tells such users to mount it.
 */
import { chownSync, mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { IMAGE, PGDATA, Scope, WORK, logs, podman, podmanOk, primaryEnv, psql, rows, top, waitExited, waitReady } from './support.js';

const scope = new Scope();
const UID = 12345;
const data = join(WORK, `${scope.prefix}-uid-${UID}`);

beforeAll(async () => {
  const r = await podman(['image', 'exists', IMAGE]);
  if (r.code !== 0) throw new Error(`${IMAGE} is not built: run the container tests through their vitest project (its globalSetup builds it)`);
  mkdirSync(data, { recursive: true, mode: 0o700 });
  chownSync(data, UID, UID);
});

afterAll(async () => {
  await scope.cleanup();
  rmSync(data, { recursive: true, force: true });
});

describe(`--user ${UID} (not in /etc/passwd)`, () => {
  it('the image has libnss_wrapper.so where the official entrypoint looks for it', async () => {
    const found = await podmanOk(['run', '--rm', '--label', scope.label, '--entrypoint', 'sh', IMAGE, '-c', 'ls /usr/lib/*/libnss_wrapper.so /usr/lib/libnss_wrapper.so /lib/*/libnss_wrapper.so 2>/dev/null || true']);
    expect(found.trim()).not.toBe('');
  });

  it('boots with initdb (nss_wrapper), runs postgres as that UID, and stops cleanly', async () => {
    // --passwd=false: podman would otherwise add the UID to the container's /etc/passwd, which docker does not.
    const name = await scope.run(scope.name('uid'), ['--user', `${UID}:${UID}`, '--passwd=false', ...primaryEnv(), '-v', `${data}:${PGDATA}`]);
    expect((await podman(['exec', name, 'getent', 'passwd', String(UID)])).code).not.toBe(0);
    await waitReady(name);
    expect(rows(await logs(name))).toEqual(['missing/empty × PRIMARY']);
    const pid1 = (await top(name)).find((p) => p.pid === 1);
    expect(pid1).toMatchObject({ user: String(UID), args: 'postgres' });
    expect(await psql(name, 'SELECT current_user')).toBe('postgres');
    await podmanOk(['stop', name]);
    expect(await waitExited(name)).toBe(0);
  });
});
