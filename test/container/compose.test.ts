/**
 * compose.yaml, run as it is with podman-compose (the compose implementation Debian packages for
 * podman): a primary, two standbys and a cascade, with the password and token as compose
 * secrets; every node healthy and replicating; `down` and `up` again restarts every node on its
 * volume without a copy; a promotion in the middle of the chain, followed by the cascade; the
 * old primary started again after that promotion rejoins as a standby instead of accepting writes
 * (every node lists the others in PGREPL_PEERS: fencing).
 *
 * The file is copied into a scratch project directory with its own secrets/ (compose resolves
 * ./secrets beside the file), and PGREPL_IMAGE points it at the image under test.
 */
import { execFile } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CONTAINERS_CONF, IMAGE, logs, podman, psql, removeComposeLeftovers, ROOT, rows, waitReady } from './support.js';

const PASSWORD = 'compose-Secret-pw-4471';
const TOKEN = 'compose-Token-8820';
const project = `pgreplct${Math.random().toString(36).slice(2, 8)}`;
const container = (service: string) => `${project}_${service}_1`;
let dir: string;

function compose(args: string[]): Promise<{ code: number; out: string }> {
  return new Promise((resolve) => {
    execFile(
      'podman-compose', ['-p', project, '-f', join(dir, 'compose.yaml'), ...args],
      { cwd: dir, env: { ...process.env, CONTAINERS_CONF, PGREPL_IMAGE: IMAGE }, timeout: 300_000, maxBuffer: 16 << 20 },
      (err, stdout, stderr) => resolve({ code: err ? (typeof err.code === 'number' ? err.code : 1) : 0, out: stdout + stderr }),
    );
  });
}

async function eventually(what: string, check: () => Promise<boolean>, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await check().catch(() => false)) return;
    if (Date.now() > deadline) throw new Error(`${what}: not after ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 500));
  }
}

const count = async (service: string) => Number(await psql(container(service), 'SELECT count(*) FROM composed'));

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'pgrepl-compose-'));
  copyFileSync(join(ROOT, 'compose.yaml'), join(dir, 'compose.yaml'));
  mkdirSync(join(dir, 'secrets'), { mode: 0o700 });
  writeFileSync(join(dir, 'secrets', 'postgres_password'), `${PASSWORD}\n`, { mode: 0o600 });
  writeFileSync(join(dir, 'secrets', 'pgrepl_token'), `${TOKEN}\n`, { mode: 0o600 });
});

afterAll(async () => {
  await compose(['down', '-v']);
  await removeComposeLeftovers(project);
  rmSync(dir, { recursive: true, force: true });
});

describe('compose.yaml with podman-compose', () => {
  it('up: a primary, two standbys and a cascade, healthy and replicating; no secret in any output', async () => {
    const up = await compose(['up', '-d']);
    expect(up.code, up.out).toBe(0);
    for (const s of ['pg1', 'pg2', 'pg3', 'pg4']) await waitReady(container(s));
    for (const s of ['pg1', 'pg2', 'pg3', 'pg4']) {
      expect((await podman(['healthcheck', 'run', container(s)])).code).toBe(0);
    }
    await psql(container('pg1'), 'CREATE TABLE composed (v int); INSERT INTO composed VALUES (1)');
    for (const s of ['pg2', 'pg3', 'pg4']) await eventually(`${s} has the row`, async () => (await count(s)) === 1);
    const upstreamOf4 = await psql(container('pg4'), "SELECT sender_host FROM pg_stat_wal_receiver WHERE status = 'streaming'");
    expect(upstreamOf4).toBe('pg2');
    const everything = up.out + (await Promise.all(['pg1', 'pg2', 'pg3', 'pg4'].map((s) => logs(container(s))))).join('\n');
    expect(everything).not.toContain(PASSWORD);
    expect(everything).not.toContain(TOKEN);
  });

  it('down and up again: every node restarts on its volume, none is copied', async () => {
    expect((await compose(['down'])).code).toBe(0);
    const up = await compose(['up', '-d']);
    expect(up.code, up.out).toBe(0);
    for (const s of ['pg1', 'pg2', 'pg3', 'pg4']) await waitReady(container(s));
    expect(rows(await logs(container('pg1')))).toEqual(['primary cluster × PRIMARY']);
    for (const s of ['pg2', 'pg3', 'pg4']) expect(rows(await logs(container(s)))).toEqual(['standby cluster × STANDBY']);
    await psql(container('pg1'), 'INSERT INTO composed VALUES (2)');
    for (const s of ['pg2', 'pg3', 'pg4']) await eventually(`${s} has both rows`, async () => (await count(s)) === 2);
  });

  it('pg1 stopped, pg2 promoted with pgrepl promote: pg4 follows it onto the new timeline', async () => {
    expect((await podman(['stop', '-t', '30', container('pg1')])).code).toBe(0);
    const pr = await podman(['exec', container('pg2'), 'pgrepl', 'promote']);
    expect(pr.stdout, pr.stderr).toBe('promoted: now a primary on timeline 2\n');
    await psql(container('pg2'), 'INSERT INTO composed VALUES (3)');
    await eventually('pg4 has the row written after the promotion', async () => (await count('pg4')) === 3);
    expect(await psql(container('pg4'), 'SELECT received_tli FROM pg_stat_wal_receiver')).toBe('2');
  });

  it('pg1 started again after pg2\'s promotion: it finds pg2 among its peers and rejoins as its standby; no write is accepted on pg1', async () => {
    const pg1 = container('pg1');
    expect((await podman(['start', pg1])).code).toBe(0);
    await waitReady(pg1);
    expect(await psql(pg1, 'SELECT pg_is_in_recovery()')).toBe('t');
    await eventually('pg1 streams from pg2', async () =>
      (await psql(pg1, "SELECT sender_host FROM pg_stat_wal_receiver WHERE status = 'streaming'")) === 'pg2');
    const write = await podman(['exec', pg1, 'psql', '-X', '-U', 'postgres', '-v', 'ON_ERROR_STOP=1', '-c', 'INSERT INTO composed VALUES (4)']);
    expect(write.code).not.toBe(0);
    expect(write.stderr).toContain('cannot execute INSERT in a read-only transaction');
    await eventually('pg1 has the row written on pg2 after the promotion', async () => (await count('pg1')) === 3);
    expect(rows(await logs(pg1)).at(-1)).toBe('fenced × PRIMARY');
  });
});
