/**
 * The image: what `docker build -t postgres_repl .` makes, run as users run it (with podman, on
 * stand-in base images). A primary's first boot, postgres as PID 1 and as the postgres user, the
 * stop signal, a re-entrant restart of a new container on the same volume, `--user 999`, the
 * HEALTHCHECK, and the image's metadata against its base image.
 */
import { chmodSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  ADDED_ENV,
  BASE_IMAGE, IMAGE, PGDATA, Scope, SUPERUSER_PASSWORD, TOKEN, WORK, logs, pgreplLines, pid1, podman, podmanOk, primaryEnv,
  psql, rows, state, top, waitExited, waitForLog, waitReady,
} from './support.js';

const scope = new Scope();

interface ImageInspect {
  Size: number;
  User?: string;
  Config: {
    Entrypoint?: string[];
    Cmd?: string[];
    StopSignal?: string;
    Volumes?: Record<string, object>;
    ExposedPorts?: Record<string, object>;
    User?: string;
    Env?: string[];
  };
  Healthcheck?: { Test?: string[]; Interval?: number; Timeout?: number; StartPeriod?: number; Retries?: number };
}

async function inspectImage(image: string): Promise<ImageInspect> {
  return (JSON.parse(await podmanOk(['image', 'inspect', image])) as ImageInspect[])[0]!;
}

beforeAll(async () => {
  const r = await podman(['image', 'exists', IMAGE]);
  if (r.code !== 0) throw new Error(`${IMAGE} is not built: run the container tests through their vitest project (its globalSetup builds it)`);
});

afterAll(async () => {
  await scope.cleanup();
});

/** postgres is PID 1, runs as `user`, and no Node process is left in the container. */
async function expectPostgresPid1(name: string, user = 'postgres') {
  const procs = await top(name);
  const pid1 = procs.find((p) => p.pid === 1);
  expect(pid1, JSON.stringify(procs)).toMatchObject({ user, args: 'postgres' });
  expect(procs.filter((p) => /\bnode\b|pgrepl/.test(p.args))).toEqual([]);
  const status = await podmanOk(['exec', name, 'cat', '/proc/1/status']);
  expect(status).toMatch(/^Name:\s+postgres$/m);
}

/** The message of the start's decision line (the last start in the log). */
function startLine(text: string): string {
  return pgreplLines(text).filter((l) => l.row).at(-1)?.msg ?? '';
}

describe('the image', () => {
  it('keeps the base image metadata and adds the entrypoint, stop signal, health check and Node compile cache', async () => {
    const [img, base] = await Promise.all([inspectImage(IMAGE), inspectImage(BASE_IMAGE)]);
    expect(img.Config.Entrypoint).toEqual(['pgrepl']);
    expect(img.Config.Cmd).toEqual(['postgres']);
    expect(img.Config.StopSignal).toBe('SIGINT');
    expect(img.Config.Volumes).toEqual(base.Config.Volumes);
    expect(img.Config.Volumes).toHaveProperty([PGDATA]);
    expect(img.Config.ExposedPorts).toEqual(base.Config.ExposedPorts);
    expect(img.Config.User ?? '').toBe(base.Config.User ?? '');
    expect(img.Config.Env).toEqual([...(base.Config.Env ?? []), ...ADDED_ENV]);
    expect(img.Healthcheck?.Test).toEqual(['CMD-SHELL', 'pgrepl health || [ $? -eq 2 ]']);
    const added = img.Size - base.Size;
    process.stderr.write(`image size: ${img.Size} bytes, base ${base.Size} bytes, added ${(added / 1e6).toFixed(1)} MB\n`);
  });

  it('runs any other command as given, with nothing of its own on stdout', async () => {
    const r = await podman(['run', '--rm', '--label', scope.label, IMAGE, 'bash', '-c', 'echo hi']);
    expect(r.code).toBe(0);
    expect(r.stdout).toBe('hi\n');
    const fail = await podman(['run', '--rm', '--label', scope.label, IMAGE, 'bash', '-c', 'exit 7']);
    expect(fail.code).toBe(7);
    expect(fail.stdout).toBe('');
  });

  it('runs postgres --version without a data directory', async () => {
    const r = await podman(['run', '--rm', '--label', scope.label, IMAGE, 'postgres', '--version']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^postgres \(PostgreSQL\) 15\.\d+/);
  });

  it('has pgrepl and node on PATH, for any user', async () => {
    const r = await podman(['run', '--rm', '--label', scope.label, '--user', '12345:12345', IMAGE, 'sh', '-c', 'command -v pgrepl && command -v node && node --version && pgrepl help']);
    expect(r.code, r.stderr).toBe(0);
    // pgrepl help, asked for, prints its usage on stdout (CLI conventions).
    expect(r.stdout).toMatch(/^\/usr\/local\/bin\/pgrepl\n\/usr\/local\/bin\/node\nv24\.21\.0\nusage: pgrepl postgres/);
  });
});

describe('a primary on a named volume', () => {
  let volume: string;
  let first: string;

  it('boots, with postgres as PID 1 running as postgres', async () => {
    volume = await scope.volume();
    first = await scope.run(scope.name('pg'), [...primaryEnv(), '-v', `${volume}:${PGDATA}`]);
    await waitReady(first);
    const text = await logs(first);
    expect(rows(text)).toEqual(['missing/empty × PRIMARY']);
    await expectPostgresPid1(first);
    expect(text).toMatch(/handing over to postgres/);
    expect(text).not.toMatch(/supervising/);
    await psql(first, 'CREATE TABLE kept (v text); INSERT INTO kept VALUES ($$first boot$$)');
    expect(await psql(first, "SELECT count(*) FROM pg_database WHERE datname LIKE 'gestalt-%'")).toBe('6');
  });

  it('passes its HEALTHCHECK', async () => {
    const r = await podman(['healthcheck', 'run', first]);
    expect(r.code, r.stdout + r.stderr).toBe(0);
  });

  it('keeps secrets out of its log and its processes', async () => {
    const text = await logs(first);
    const procs = (await top(first)).map((p) => p.args).join('\n');
    for (const secret of [SUPERUSER_PASSWORD, TOKEN]) {
      expect(text).not.toContain(secret);
      expect(procs).not.toContain(secret);
    }
    // Only the process's own user (or CAP_SYS_PTRACE) may read /proc/1/environ.
    const environ = await podmanOk(['exec', '--user', 'postgres', first, 'sh', '-c', "tr '\\0' '\\n' < /proc/1/environ"]);
    expect(environ).toMatch(/^PGDATA=/m);
    expect(environ).not.toContain(SUPERUSER_PASSWORD);
    expect(environ).not.toContain(TOKEN);
  });

  it('stops with a fast shutdown on `podman stop` (SIGINT) and exits 0', async () => {
    await podmanOk(['stop', '-t', '30', first]);
    expect(await waitExited(first)).toBe(0);
    const text = await logs(first);
    expect(text).toMatch(/received fast shutdown request/);
    expect(text).toMatch(/database system is shut down/);
    expect(text).not.toMatch(/received (smart|immediate) shutdown request/);
  });

  it('restarts re-entrantly as a new container on the same volume: no initdb, data kept', async () => {
    await podmanOk(['rm', first]);
    const second = await scope.run(scope.name('pg'), [...primaryEnv(), '-v', `${volume}:${PGDATA}`]);
    await waitReady(second);
    const text = await logs(second);
    expect(rows(text)).toEqual(['primary cluster × PRIMARY']);
    expect(startLine(text)).toMatch(/no initdb, no init scripts/);
    expect(pgreplLines(text).filter((l) => l.msg === 'initdb')).toEqual([]);
    expect(text).not.toMatch(/creating subdirectories/);
    expect(await psql(second, 'SELECT v FROM kept')).toBe('first boot');
    await expectPostgresPid1(second);
    await podmanOk(['stop', second]);
    expect(await waitExited(second)).toBe(0);
    await podmanOk(['rm', second]);
  });

  let recreatedLog = '';
  it('re-created once more on the same volume, it starts as the same primary', async () => {
    const again = await scope.run(scope.name('pg'), [...primaryEnv(), '-v', `${volume}:${PGDATA}`]);
    await waitReady(again);
    recreatedLog = await logs(again);
    expect(rows(recreatedLog)).toEqual(['primary cluster × PRIMARY']);
    await podmanOk(['stop', again]);
    expect(await waitExited(again)).toBe(0);
    await podmanOk(['rm', again]);
  });

  // PGREPL_NODE_NAME defaults to the host name, which for a container is its ID unless --hostname
  // is given; the volume remembers the first one, so a re-created container is the same node.
  it('... and finds its own state file (no temporary server to re-apply the password)', () => {
    expect(recreatedLog).not.toBe('');
    expect(startLine(recreatedLog)).toMatch(/the replication password is current/);
  });

  it('with a fixed --hostname, a restart finds its own state: no temporary server', async () => {
    const args = [...primaryEnv(), '-v', `${volume}:${PGDATA}`, '--hostname', 'pg-fixed'];
    const third = await scope.run(scope.name('pg'), args);
    await waitReady(third);
    await podmanOk(['stop', third]);
    expect(await waitExited(third)).toBe(0);
    await podmanOk(['rm', third]);
    const fourth = await scope.run(scope.name('pg'), args);
    await waitReady(fourth);
    const text = await logs(fourth);
    expect(rows(text)).toEqual(['primary cluster × PRIMARY']);
    expect(startLine(text)).toMatch(/the replication password is current/);
    expect(text).not.toMatch(/temporary server/);
    expect(await psql(fourth, 'SELECT v FROM kept')).toBe('first boot');
    await podmanOk(['stop', fourth]);
    expect(await waitExited(fourth)).toBe(0);
  });

  it('restarts the same container (podman start) the same way', async () => {
    const name = await scope.run(scope.name('pg'), [...primaryEnv(), '-v', `${volume}:${PGDATA}`]);
    await waitReady(name);
    await podmanOk(['stop', name]);
    expect(await waitExited(name)).toBe(0);
    await podmanOk(['start', name]);
    await waitReady(name);
    const text = await logs(name);
    expect(rows(text)).toEqual(['primary cluster × PRIMARY', 'primary cluster × PRIMARY']);
    expect(startLine(text)).toMatch(/the replication password is current/);
    expect(await psql(name, 'SELECT v FROM kept')).toBe('first boot');
    await expectPostgresPid1(name);
    await podmanOk(['stop', name]);
    expect((await state(name)).exitCode).toBe(0);
  });
});

describe('a primary stopped during its first boot', () => {
  let volume: string;
  let name: string;
  let initdbDir: string;

  beforeAll(() => {
    // An init script that takes a while: the node is bootstrapping as long as it runs.
    initdbDir = join(WORK, `${scope.prefix}-initdb.d`);
    mkdirSync(initdbDir, { recursive: true });
    chmodSync(initdbDir, 0o755);
    writeFileSync(join(initdbDir, '50-slow.sh'), '#!/bin/sh\necho slow init script: sleeping\nsleep 60\n', { mode: 0o755 });
  });

  afterAll(() => {
    rmSync(initdbDir, { recursive: true, force: true });
  });

  let bootHealth: { code: number; out: string } | undefined;
  it('passes its HEALTHCHECK while it bootstraps (starting is not unhealthy)', async () => {
    volume = await scope.volume();
    name = await scope.run(scope.name('boot'), [...primaryEnv(), '-v', `${volume}:${PGDATA}`, '-v', `${initdbDir}:/docker-entrypoint-initdb.d:ro`]);
    await waitForLog(name, /slow init script: sleeping/);
    expect(await pid1(name)).not.toBe('postgres'); // still the entrypoint (Node names its thread MainThread)
    const r = await podman(['healthcheck', 'run', name]);
    expect(r.code, r.stdout + r.stderr).toBe(0);
    const h = await podman(['exec', name, 'pgrepl', 'health']);
    bootHealth = { code: h.code, out: h.stdout.trim() };
    expect([0, 2]).toContain(h.code);
    expect(await pid1(name)).not.toBe('postgres');
  });

  // The entrypoint's temporary server listens on the node's socket: health must not take it for
  // the node serving (it reads the entrypoint's phase first).
  it('`pgrepl health` says "starting" (exit 2) while it bootstraps', () => {
    expect(bootHealth).toBeDefined();
    expect(`${bootHealth!.code} ${bootHealth!.out}`).toMatch(/^2 starting/);
  });

  it('stops on `podman stop` before postgres runs, and the next start builds it again', async () => {
    await podmanOk(['stop', '-t', '30', name]);
    expect(await waitExited(name)).toBe(128 + 2);
    const text = await logs(name);
    expect(text).toMatch(/stopped by SIGINT before postgres started/);
    await podmanOk(['rm', name]);
    const again = await scope.run(scope.name('boot'), [...primaryEnv(), '-v', `${volume}:${PGDATA}`]);
    await waitReady(again);
    const start = pgreplLines(await logs(again)).find((l) => l.row);
    expect(start?.row).toBe('missing/empty × PRIMARY');
    expect(start?.msg).toMatch(/interrupted/);
    expect(await psql(again, "SELECT count(*) FROM pg_database WHERE datname LIKE 'gestalt-%'")).toBe('6');
    await podmanOk(['stop', again]);
    expect(await waitExited(again)).toBe(0);
  });
});

describe('--user 999 (the postgres user)', () => {
  it('boots, runs, passes its health check and stops cleanly', async () => {
    const volume = await scope.volume();
    const name = await scope.run(scope.name('pg999'), ['--user', '999', ...primaryEnv(), '-v', `${volume}:${PGDATA}`]);
    await waitReady(name);
    expect(rows(await logs(name))).toEqual(['missing/empty × PRIMARY']);
    await expectPostgresPid1(name);
    expect((await podman(['healthcheck', 'run', name])).code).toBe(0);
    await psql(name, 'SELECT 1');
    await podmanOk(['stop', name]);
    expect(await waitExited(name)).toBe(0);
  });
});
