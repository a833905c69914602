/**
 * PostgreSQL 18's image layout: PGDATA is /var/lib/postgresql/18/docker, inside one volume at
 * /var/lib/postgresql (up to 17 the volume was PGDATA itself, /var/lib/postgresql/data). The image
 * keeps it; the entrypoint creates the directories between the volume and PGDATA so that the
 * postgres user can pass through them; and a volume of the old layout mounted the new way is
 * refused, not given a new empty cluster beside the user's data. (The docker/ scripts'
 * walkthrough on 18 is in docker-scripts.test.ts.)
 */
import { afterAll, describe, expect, it } from 'vitest';
import { ADDED_ENV, IMAGE, imageFor, logs, pgreplLines, podman, podmanOk, primaryEnv, psql, Scope, top, waitExited, waitReady } from './support.js';

const IMAGE_18 = imageFor(18);
const BASE_18 = 'docker.io/library/postgres:18';
const scope = new Scope();

afterAll(async () => {
  await scope.cleanup();
});

interface Config {
  Volumes?: Record<string, object>;
  Env?: string[];
  ExposedPorts?: Record<string, object>;
  User?: string;
  Entrypoint?: string[];
}
const config = async (image: string) => (JSON.parse(await podmanOk(['image', 'inspect', '--format', '{{json .Config}}', image])) as Config);

/** `ls -la`-like listing of a volume, through a throw-away container. */
async function listing(volume: string): Promise<string> {
  return podmanOk(['run', '--rm', '--label', scope.label, '--entrypoint', 'find', '-v', `${volume}:/v`, IMAGE_18, '/v', '-maxdepth', '2', '-printf', '%p %m %u\\n']);
}

describe('the image for PostgreSQL 18', () => {
  it("keeps its base image's layout: PGDATA /var/lib/postgresql/18/docker, VOLUME /var/lib/postgresql", async () => {
    const [img, base] = await Promise.all([config(IMAGE_18), config(BASE_18)]);
    expect(img.Entrypoint).toEqual(['pgrepl']);
    expect(img.Env).toEqual([...(base.Env ?? []), ...ADDED_ENV]);
    expect(img.Env).toContain('PGDATA=/var/lib/postgresql/18/docker');
    expect(img.Volumes).toEqual({ '/var/lib/postgresql': {} });
    expect(img.Volumes).toEqual(base.Volumes);
    expect(img.ExposedPorts).toEqual(base.ExposedPorts);
    expect(img.User ?? '').toBe(base.User ?? '');
  });

  it('boots a primary in a fresh volume: postgres is PID 1 and owns PGDATA; the directory above it is passable', async () => {
    const volume = await scope.volume();
    const name = await scope.run(scope.name('p18'), ['-v', `${volume}:/var/lib/postgresql`, ...primaryEnv()], IMAGE_18);
    await waitReady(name);
    expect(await psql(name, 'SHOW server_version_num')).toMatch(/^18/);
    expect(await psql(name, 'SHOW data_directory')).toBe('/var/lib/postgresql/18/docker');
    expect((await top(name)).find((p) => p.pid === 1)).toMatchObject({ user: 'postgres', args: 'postgres' });
    await podmanOk(['stop', '-t', '30', name]);
    expect(await waitExited(name)).toBe(0);
    const list = await listing(volume);
    expect(list).toMatch(/^\/v\/18 755 root$/m);
    expect(list).toMatch(/^\/v\/18\/docker 700 postgres$/m);
  });

  it('refuses a volume of the layout up to 17 mounted at /var/lib/postgresql: one line, exit 1, the volume unchanged', async () => {
    // A PostgreSQL 15 node's volume: the cluster at the volume's top.
    const volume = await scope.volume();
    const old = await scope.run(scope.name('p15'), ['-v', `${volume}:/var/lib/postgresql/data`, ...primaryEnv()], IMAGE);
    await waitReady(old);
    await podmanOk(['stop', '-t', '30', old]);
    const before = await listing(volume);
    expect(before).toMatch(/^\/v\/PG_VERSION /m);

    const name = await scope.run(scope.name('p18old'), ['-v', `${volume}:/var/lib/postgresql`, ...primaryEnv()], IMAGE_18);
    expect(await waitExited(name)).toBe(1);
    const fatal = pgreplLines(await logs(name)).filter((l) => l.level >= 50);
    expect(fatal.map((l) => l.msg)).toEqual([
      'PGDATA=/var/lib/postgresql/18/docker is missing, but /var/lib/postgresql in the same volume holds a PostgreSQL 15 cluster (up to 17 the volume held the cluster itself, mounted at /var/lib/postgresql/data; from 18 on it is mounted at /var/lib/postgresql with PGDATA in <major>/docker): run the image of PostgreSQL 15 on this volume, or upgrade that cluster into PGDATA=/var/lib/postgresql/18/docker with pg_upgrade; to start a new cluster anyway, move it out of the volume; nothing was changed',
    ]);
    expect(await listing(volume)).toBe(before);
    // ... and the PostgreSQL 15 image still runs on it.
    const again = (await podman(['start', old])).code;
    expect(again).toBe(0);
    await waitReady(old);
  });
});
