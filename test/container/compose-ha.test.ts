/**
 * compose.ha.yaml, run as it is with podman-compose: three etcd members, three pgrepl nodes in HA
 * mode and HAProxy (compose/haproxy.cfg), on stand-ins of the etcd and HAProxy images
 * (scripts/container/ha-stand-ins.sh: Debian bookworm's packages). Through HAProxy's read-write
 * port a client writes to whoever leads; the leader's container killed, writes through the same
 * address resume on the new leader (the seconds that took are printed, never asserted); the old
 * leader's container started again rejoins as a standby; `down` and `up` again keeps every row
 * and copies nothing.
 *
 * Expensive (about four minutes, and the stand-ins' first build about a minute more): it runs
 * only with PGREPL_TEST_HA_COMPOSE=1. The file is copied with compose/haproxy.cfg into a scratch
 * project directory with its own secrets/, PGREPL_IMAGE points it at the image under test, and
 * HAProxy is published on this file's host ports.
 */
import { execFile } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CONTAINERS_CONF, IMAGE, logs, podman, podmanOk, removeComposeLeftovers, ROOT, rows, state } from './support.js';

const ENABLED = process.env.PGREPL_TEST_HA_COMPOSE === '1';
const PASSWORD = 'ha-compose-Secret-pw-5190';
const TOKEN = 'ha-compose-Token-7734';
const RW_PORT = 6401;
const RO_PORT = 6402;
const STATS_PORT = 6403;
const NODES = ['pg1', 'pg2', 'pg3'];
const ETCDS = ['etcd1', 'etcd2', 'etcd3'];
const project = `pgreplha${Math.random().toString(36).slice(2, 8)}`;
const container = (service: string) => `${project}_${service}_1`;
const MARKER = 'pgrepl-compose-ha-marker';
let dir: string;

function compose(args: string[]): Promise<{ code: number; out: string }> {
  const env = {
    ...process.env, CONTAINERS_CONF, PGREPL_IMAGE: IMAGE,
    PGREPL_HA_PORT: String(RW_PORT), PGREPL_HA_READ_PORT: String(RO_PORT), PGREPL_HA_STATS_PORT: String(STATS_PORT),
  };
  return new Promise((resolve) => {
    execFile(
      'podman-compose', ['-p', project, '-f', join(dir, 'compose.ha.yaml'), ...args],
      { cwd: dir, env, timeout: 300_000, maxBuffer: 16 << 20 },
      (err, stdout, stderr) => resolve({ code: err ? (typeof err.code === 'number' ? err.code : 1) : 0, out: stdout + stderr }),
    );
  });
}

function runScript(script: string): Promise<void> {
  return new Promise((resolve, reject) => {
    execFile('bash', [join(ROOT, script)], { env: { ...process.env, CONTAINERS_CONF }, timeout: 600_000, maxBuffer: 64 << 20 },
      (err, stdout, stderr) => (err ? reject(new Error(`${script}: ${err.message}\n${stderr.slice(-4000)}`)) : resolve()));
  });
}

async function eventually<T>(what: string, check: () => Promise<T | undefined | false>, timeoutMs = 120_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last = '';
  for (;;) {
    try {
      const v = await check();
      if (v) return v;
    } catch (e) {
      last = (e as Error).message;
    }
    if (Date.now() > deadline) throw new Error(`${what}: not after ${timeoutMs} ms${last ? ` (last: ${last})` : ''}`);
    await new Promise((r) => setTimeout(r, 500));
  }
}

/** One statement through HAProxy's port from the host, as a client would send it. */
async function sql(port: number, text: string): Promise<pg.QueryResultRow[]> {
  const client = new pg.Client({ host: '127.0.0.1', port, user: 'postgres', password: PASSWORD, database: 'postgres', connectionTimeoutMillis: 2000, query_timeout: 5000 });
  client.on('error', () => {});
  try {
    await client.connect();
    return (await client.query(text)).rows;
  } finally {
    await client.end().catch(() => {});
  }
}

interface Listing {
  leader?: string;
  timeline?: number;
  members: { name: string; role: string; state: string; timeline: number | null }[];
}

/** `pgrepl list --json` from the first node whose container runs. */
async function listing(): Promise<Listing> {
  for (const s of NODES) {
    const r = await podman(['exec', container(s), 'pgrepl', 'list', '--json']);
    if (r.code === 0) return JSON.parse(r.stdout) as Listing;
  }
  throw new Error('no node answers pgrepl list');
}

/** The listing once every node but the leader streams from it on its timeline. */
async function settled(): Promise<Listing> {
  let last: Listing | undefined;
  try {
    return await eventually('a leader with its standbys streaming', async () => {
      const l = (last = await listing());
      if (!l.leader) return false;
      const want = NODES.filter((n) => n !== l.leader);
      const ok = want.every((n) => l.members.some((m) => m.name === n && m.role === 'standby' && m.state === 'streaming' && m.timeline === l.timeline));
      return ok && l;
    }, 150_000);
  } catch (e) {
    const tails = await Promise.all(NODES.map(async (s) => `--- ${s}:\n${(await logs(container(s))).split('\n').filter((x) => x.startsWith('{')).slice(-15).join('\n')}`));
    throw new Error(`${(e as Error).message}\nlast listing: ${JSON.stringify(last)}\n${tails.join('\n')}`);
  }
}

const count = async (port: number) => Number((await sql(port, 'SELECT count(*) AS n FROM ha'))[0]!.n);

beforeAll(async () => {
  if (!ENABLED) return;
  await runScript('scripts/container/ha-stand-ins.sh');
  dir = mkdtempSync(join(tmpdir(), 'pgrepl-compose-ha-'));
  copyFileSync(join(ROOT, 'compose.ha.yaml'), join(dir, 'compose.ha.yaml'));
  mkdirSync(join(dir, 'compose'));
  copyFileSync(join(ROOT, 'compose', 'haproxy.cfg'), join(dir, 'compose', 'haproxy.cfg'));
  mkdirSync(join(dir, 'secrets'), { mode: 0o700 });
  writeFileSync(join(dir, 'secrets', 'postgres_password'), `${PASSWORD}\n`, { mode: 0o600 });
  writeFileSync(join(dir, 'secrets', 'pgrepl_token'), `${TOKEN}\n`, { mode: 0o600 });
});

afterAll(async () => {
  if (!ENABLED) return;
  await compose(['down', '-v']);
  await removeComposeLeftovers(project);
  rmSync(dir, { recursive: true, force: true });
});

describe.skipIf(!ENABLED)('compose.ha.yaml with podman-compose (PGREPL_TEST_HA_COMPOSE=1)', () => {
  let oldLeader: string;

  it('up: one leader, two streaming standbys, every etcd member and node healthy; HAProxy: 5432 writable, 5433 a standby; no secret in any output', async () => {
    const up = await compose(['up', '-d']);
    expect(up.code, up.out).toBe(0);
    const l = await settled();
    // No systemd here to run the checks on a timer: each is run once, as the timer would.
    for (const s of [...ETCDS, ...NODES]) {
      const h = await podman(['healthcheck', 'run', container(s)]);
      expect(h.code, `${s}: ${h.stdout}${h.stderr}`).toBe(0);
    }
    await eventually('HAProxy routes 5432 to the leader', async () => (await sql(RW_PORT, 'SELECT pg_is_in_recovery() AS r'))[0]!.r === false);
    await sql(RW_PORT, "CREATE TABLE ha (v int, leader text); INSERT INTO ha VALUES (1, 'first')");
    await eventually('HAProxy routes 5433 to a standby that has the row', async () => {
      const [r] = await sql(RO_PORT, 'SELECT pg_is_in_recovery() AS r, (SELECT count(*) FROM ha) AS n');
      return r!.r === true && Number(r!.n) === 1;
    });
    const ro = await sql(RO_PORT, 'INSERT INTO ha VALUES (0)').then(() => 'written', (e: Error) => e.message);
    expect(ro).toBe('cannot execute INSERT in a read-only transaction');
    oldLeader = l.leader!;
    const everything = up.out + (await Promise.all([...ETCDS, ...NODES, 'haproxy'].map((s) => logs(container(s))))).join('\n');
    expect(everything).not.toContain(PASSWORD);
    expect(everything).not.toContain(TOKEN);
  }, 300_000);

  it("the leader's container killed: writes through the same HAProxy address resume on a new leader", async () => {
    const killedAt = Date.now();
    await podmanOk(['kill', container(oldLeader)]);
    let attempts = 0;
    await eventually('a write through HAProxy after the kill', async () => {
      attempts++;
      await sql(RW_PORT, "INSERT INTO ha VALUES (2, 'after the kill')");
      return true;
    }, 120_000);
    const seconds = (Date.now() - killedAt) / 1000;
    process.stderr.write(`compose-ha: writes through HAProxy resumed ${seconds.toFixed(1)} s after the leader (${oldLeader}) was killed (${attempts} attempts)\n`);
    // Killed for real, and left down (no restart policy brought it back under the test).
    expect((await state(container(oldLeader))).status).toBe('exited');
    const l = await listing();
    expect(l.leader).toBeDefined();
    expect(l.leader).not.toBe(oldLeader);
    expect(await count(RW_PORT)).toBe(2);
  }, 300_000);

  it('the old leader started again rejoins as a standby of the new one and refuses writes', async () => {
    await podmanOk(['start', container(oldLeader)]);
    const l = await settled();
    expect(l.leader).not.toBe(oldLeader);
    await sql(RW_PORT, "INSERT INTO ha VALUES (3, 'after the rejoin')");
    const psql = (q: string) => podman(['exec', container(oldLeader), 'psql', '-X', '-U', 'postgres', '-v', 'ON_ERROR_STOP=1', '-Atc', q]);
    await eventually('the old leader has every row', async () => (await psql('SELECT count(*) FROM ha')).stdout.trim() === '3');
    const write = await psql("INSERT INTO ha VALUES (4, 'on the old leader')");
    expect(write.code).not.toBe(0);
    expect(write.stderr).toContain('cannot execute INSERT in a read-only transaction');
  }, 300_000);

  it('down and up again: every row kept, no node copied or initialised again', async () => {
    for (const s of NODES) await podmanOk(['exec', container(s), 'sh', '-c', `touch "$PGDATA/${MARKER}"`]);
    const down = await compose(['down']);
    expect(down.code, down.out).toBe(0);
    const up = await compose(['up', '-d']);
    expect(up.code, up.out).toBe(0);
    await settled();
    await eventually('HAProxy routes 5432 to the leader', async () => (await sql(RW_PORT, 'SELECT pg_is_in_recovery() AS r'))[0]!.r === false);
    expect(await count(RW_PORT)).toBe(3);
    for (const s of NODES) {
      expect((await podman(['exec', container(s), 'sh', '-c', `test -e "$PGDATA/${MARKER}"`])).code, `${s}: PGDATA replaced`).toBe(0);
      const text = await logs(container(s));
      expect(rows(text), s).not.toContain('clone');
      expect(rows(text), s).not.toContain('bootstrap race');
      expect(text, s).not.toMatch(/cloning the upstream|"msg":"initdb"/);
    }
  }, 300_000);
});
