/**
 * The seed README's walkthrough through the docker/ scripts, with the podman CLI: a primary, two
 * standbys and a cascade; data on all; a standby removed and run again on its volume; the primary
 * killed; a standby promoted; the cascade following; the orphan standby re-pointed with
 * follow.sh; on a network, the old primary started again rejoining the promoted one as a standby
 * (every node lists the others in PGREPL_PEERS: fencing). It runs once per major and mode:
 *   - PostgreSQL 15 on a user-defined network (PGREPL_NETWORK, what the README recommends);
 *   - PostgreSQL 18, whose image keeps PGDATA in /var/lib/postgresql/18/docker under a volume at
 *     /var/lib/postgresql: the scripts must mount their volumes there (and any other major in
 *     PGREPL_TEST_PG_MAJORS, see support.ts);
 *   - PostgreSQL 15 with --link, as docker-pgrepl did. podman has no --link, so the container CLI
 *     is fixtures/podman-with-links.sh: podman, with each --link turned into what Docker's legacy
 *     links give a container (the linked address as ALIAS_PORT_5432_TCP_ADDR etc., and hosts
 *     entries).
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { CONTAINERS_CONF, IMAGE, imageFor, logs, MAJORS, podman, podmanOk, psql, ROOT, rows, SUPERUSER_PASSWORD, TOKEN, waitReady } from './support.js';

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

interface Mode {
  title: string;
  image: string;
  /** Where the scripts must mount each node's volume: the image's VOLUME. */
  volumeAt: string;
  links: boolean;
}

const volumeAt = (major: number) => (major >= 18 ? '/var/lib/postgresql' : '/var/lib/postgresql/data');
const MODES: Mode[] = [
  ...MAJORS.map((major) => ({
    title: `PostgreSQL ${major} on a user-defined network`, image: major === 15 ? IMAGE : imageFor(major), volumeAt: volumeAt(major), links: false,
  })),
  { title: 'PostgreSQL 15 with --link (legacy)', image: IMAGE, volumeAt: volumeAt(15), links: true },
];

describe.each(MODES)('docker/ scripts with podman: $title', ({ image, volumeAt, links }) => {
  const tag = `ds${randomBytes(3).toString('hex')}`;
  const [n1, n2, n3, n4] = [1, 2, 3, 4].map((i) => `${tag}n${i}`) as [string, string, string, string];
  const network = `${tag}-net`;

  function script(name: string, args: string[], env: Record<string, string | undefined> = {}): Promise<Run> {
    const full: Record<string, string> = {
      PATH: process.env.PATH ?? '/usr/bin:/bin',
      HOME: '/root',
      CONTAINERS_CONF,
      PGREPL_CONTAINER_CLI: links ? join(ROOT, 'test', 'container', 'fixtures', 'podman-with-links.sh') : 'podman',
      PGREPL_IMAGE: image,
      POSTGRES_PASSWORD: SUPERUSER_PASSWORD,
      PGREPL_TOKEN: TOKEN,
    };
    if (!links) full.PGREPL_NETWORK = network;
    // The same podman store as the tests' own podman calls (set when testing against a cold store).
    if (process.env.CONTAINERS_STORAGE_CONF) full.CONTAINERS_STORAGE_CONF = process.env.CONTAINERS_STORAGE_CONF;
    for (const [k, v] of Object.entries(env)) {
      if (v === undefined) delete full[k];
      else full[k] = v;
    }
    return new Promise((resolve) => {
      const child = spawn('bash', [join(ROOT, 'docker', name), ...args], { env: full, stdio: ['ignore', 'pipe', 'pipe'] });
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
      child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
      child.on('exit', (code) => resolve({ code, stdout, stderr }));
    });
  }

  /** Until `name` resolves inside `container` (the network's DNS answers again). */
  async function waitForName(container: string, name: string): Promise<void> {
    const deadline = Date.now() + 150_000;
    while ((await podman(['exec', container, 'timeout', '10', 'getent', 'hosts', name])).code !== 0) {
      if (Date.now() > deadline) throw new Error(`${name} never resolved inside ${container}`);
      await new Promise((r) => setTimeout(r, 500));
    }
  }

  /** The container's PGREPL_PEERS, as a list. */
  async function peersOf(name: string): Promise<string[]> {
    const env = JSON.parse(await podmanOk(['container', 'inspect', '--format', '{{json .Config.Env}}', name])) as string[];
    const value = env.find((e) => e.startsWith('PGREPL_PEERS='))?.slice('PGREPL_PEERS='.length);
    return value ? value.split(',') : [];
  }

  async function count(name: string): Promise<number> {
    return Number(await psql(name, 'SELECT count(*) FROM walk'));
  }

  async function eventuallyCount(name: string, n: number): Promise<void> {
    const deadline = Date.now() + 60_000;
    for (;;) {
      try {
        if ((await count(name)) === n) return;
      } catch {
        // not replicated yet
      }
      if (Date.now() > deadline) throw new Error(`${name} never had ${n} rows`);
      await new Promise((r) => setTimeout(r, 300));
    }
  }

  afterAll(async () => {
    await podman(['rm', '-f', '-t', '0', n1, n2, n3, n4]);
    await podman(['volume', 'rm', '-f', ...[n1, n2, n3, n4].map((n) => `pgrepl-${n}`)]);
    await podman(['network', 'rm', '-f', network]);
  });

  it('refuse bad arguments and missing secrets, without printing a secret', async () => {
    expect((await script('primary.sh', [])).code).toBe(64);
    expect((await script('standby.sh', [n1])).code).toBe(64);
    const noPw = await script('primary.sh', [n1], { POSTGRES_PASSWORD: undefined });
    expect(noPw.code).toBe(1);
    expect(noPw.stderr).toMatch(/POSTGRES_PASSWORD is not set/);
    const both = await script('primary.sh', [n1], { PGREPL_TOKEN_FILE: '/etc/hostname' });
    expect(both.code).toBe(1);
    expect(both.stderr).toBe('primary.sh: PGREPL_TOKEN and PGREPL_TOKEN_FILE are both set: keep one of them\n');
    const noFile = await script('primary.sh', [n1], { POSTGRES_PASSWORD: undefined, POSTGRES_PASSWORD_FILE: '/nonexistent/pw' });
    expect(noFile.code).toBe(1);
    expect(noFile.stderr).toBe("primary.sh: POSTGRES_PASSWORD_FILE=/nonexistent/pw is not a readable file: point it at the file that holds the superuser's password\n");
    const noUp = await script('standby.sh', [`${tag}-nobody`, n2]);
    expect(noUp.code).toBe(1);
    expect(noUp.stderr).toMatch(/no container named/);
    const badName = await script('primary.sh', [`${tag} n1`]);
    expect(badName.code).toBe(1);
    expect(badName.stderr).toContain(`primary.sh: invalid NAME '${tag} n1': container names are letters, digits`);
    if (links) {
      const peersWithoutNetwork = await script('primary.sh', [n1, n2]);
      expect(peersWithoutNetwork.code).toBe(1);
      expect(peersWithoutNetwork.stderr).toContain('only a user-defined network resolves: export PGREPL_NETWORK');
    }
    expect((await podman(['container', 'exists', n1])).code).toBe(1);
  });

  it('primary.sh, standby.sh ×2 and a cascade: every node replicates; on a network every node lists the others as peers', async () => {
    // On a network the primary is told its standbys to be; with --link names do not resolve.
    const p = await script('primary.sh', links ? [n1] : [n1, n2, n3, n4]);
    expect(p.code).toBe(0);
    expect(p.stdout).toMatch(/^Container ID: [0-9a-f]{64}\n$/);
    await waitReady(n1);
    for (const [up, name] of [[n1, n2], [n1, n3], [n2, n4]] as const) {
      const s = await script('standby.sh', [up, name]);
      expect(s.code).toBe(0);
      await waitReady(name);
    }
    await psql(n1, 'CREATE TABLE walk (v int); INSERT INTO walk VALUES (1)');
    for (const n of [n2, n3, n4]) await eventuallyCount(n, 1);
    const status = await script('status.sh', [n1, '--json']);
    expect(JSON.parse(status.stdout).standbys.map((s: { name: string }) => s.name).sort()).toEqual([n2, n3]);
    // Without a name: every node as a tree (other tests' nodes may be listed too: only ours are looked at).
    const tree = await script('status.sh', []);
    expect(tree.code, tree.stderr).toBe(0);
    expect(tree.stdout.split('\n').filter((l) => l.includes(tag)).map((l) => /^((?:[│ ] {2})*(?:[├└]─ )?\S+) +(\S+)/.exec(l)!.slice(1).join(' '))).toEqual([
      `${n1} primary`, `├─ ${n2} standby`, `│  └─ ${n4} standby`, `└─ ${n3} standby`,
    ]);
    for (const r of [p]) expect(r.stdout + r.stderr).not.toContain(SUPERUSER_PASSWORD);
    for (const n of [n1, n2, n3, n4]) {
      const others = [n1, n2, n3, n4].filter((o) => o !== n).map((o) => `${o}:5432`);
      expect((await peersOf(n)).sort(), `PGREPL_PEERS of ${n}`).toEqual(links ? [] : others);
    }
  });

  it('a name whose node name another container has (case and punctuation aside) is refused', async () => {
    const twin = n1.toUpperCase();
    const r = await script('standby.sh', [n1, twin]);
    expect(r.code).toBe(1);
    expect(r.stderr).toBe(`standby.sh: ${n1} already has the node name ${n1} that ${twin} would get (its replication slot name): choose a name that differs in more than case and punctuation\n`);
    expect((await podman(['container', 'exists', twin])).code).toBe(1);
  });

  it.runIf(image === IMAGE && !links)('takes the secrets from files too (*_FILE): mounted read-only, never in the container\'s environment', async () => {
    const secrets = mkdtempSync(join(tmpdir(), 'pgrepl-secrets-'));
    const name = `${tag}f`;
    try {
      writeFileSync(join(secrets, 'pw'), `${SUPERUSER_PASSWORD}\n`, { mode: 0o600 });
      writeFileSync(join(secrets, 'token'), `${TOKEN}\n`, { mode: 0o600 });
      const r = await script('primary.sh', [name], {
        POSTGRES_PASSWORD: undefined, PGREPL_TOKEN: undefined, POSTGRES_PASSWORD_FILE: join(secrets, 'pw'), PGREPL_TOKEN_FILE: join(secrets, 'token'),
      });
      expect(r.code, r.stderr).toBe(0);
      await waitReady(name);
      const env = await podmanOk(['container', 'inspect', '--format', '{{json .Config.Env}}', name]);
      expect(env).toContain('"PGREPL_TOKEN_FILE=/run/secrets/pgrepl_token"');
      expect(env).not.toContain(TOKEN);
      expect(env).not.toContain(SUPERUSER_PASSWORD);
      // It took the token from the file: a standby given the same token by value can clone it.
      expect((await script('standby.sh', [name, `${name}s`])).code).toBe(0);
      await waitReady(`${name}s`);
      expect(await psql(`${name}s`, 'SELECT pg_is_in_recovery()')).toBe('t');
    } finally {
      await podman(['rm', '-f', '-t', '0', `${name}s`, name]);
      await podman(['volume', 'rm', '-f', `pgrepl-${name}s`, `pgrepl-${name}`]);
      rmSync(secrets, { recursive: true, force: true });
    }
  });

  it(`each node's named volume is mounted at the image's VOLUME (${volumeAt})`, async () => {
    for (const n of [n1, n2, n3, n4]) {
      const mounts = JSON.parse(await podmanOk(['container', 'inspect', '--format', '{{json .Mounts}}', n])) as { Name?: string; Destination: string }[];
      expect(mounts.map((m) => `${m.Name}:${m.Destination}`)).toEqual([`pgrepl-${n}:${volumeAt}`]);
    }
  });

  it('standby.sh again after rm, on the same volume: no copy, streaming again', async () => {
    await podmanOk(['rm', '-f', '-t', '10', n3]);
    const s = await script('standby.sh', [n1, n3]);
    expect(s.code).toBe(0);
    await waitReady(n3);
    expect(rows(await logs(n3))).toEqual(['standby cluster × STANDBY']);
    await psql(n1, 'INSERT INTO walk VALUES (10)');
    await eventuallyCount(n3, 2);
    await psql(n1, 'DELETE FROM walk WHERE v = 10');
    await eventuallyCount(n3, 1);
  });

  it('the primary is killed; promote.sh promotes n2; the cascade n4 follows it', async () => {
    await podman(['kill', n1]);
    const pr = await script('promote.sh', [n2]);
    expect(pr.stdout).toBe('promoted: now a primary on timeline 2\n');
    expect(pr.code).toBe(0);
    expect(pr.stderr).toContain(links ? 'warning: without PGREPL_NETWORK the nodes list no peers' : `promote.sh: ${n1} lists ${n2} among its peers: started again, it rejoins as its standby\n`);
    await psql(n2, 'INSERT INTO walk VALUES (2)');
    await eventuallyCount(n4, 2);
  });

  it('follow.sh re-points the orphan n3 at n2, without re-cloning', async () => {
    // podman 4.3's aardvark-dns (Debian bookworm) sometimes stops answering for 30-60 s after a
    // container on the network is killed (seen here; getent in n3 hangs, then answers). That is
    // the test network's weather, not what follow.sh is about: wait it out first.
    if (!links) await waitForName(n3, n2);
    const f = await script('follow.sh', [n3, n2]);
    expect(f.stdout, f.stderr).toMatch(/streaming/);
    expect(f.code).toBe(0);
    await eventuallyCount(n3, 2);
    const st = JSON.parse((await script('status.sh', [n2, '--json'])).stdout);
    expect(st.role).toBe('primary');
    expect(st.standbys.map((s: { name: string }) => s.name).sort()).toEqual([n3, n4]);
  }, 300_000);

  it.runIf(!links)('the old primary n1 started again finds n2 among its peers: it rejoins as n2\'s standby, no write accepted', async () => {
    expect((await podman(['start', n1])).code).toBe(0);
    await waitReady(n1);
    expect(rows(await logs(n1)).at(-1)).toBe('fenced × PRIMARY');
    expect(await psql(n1, 'SELECT pg_is_in_recovery()')).toBe('t');
    const write = await podman(['exec', n1, 'psql', '-X', '-U', 'postgres', '-v', 'ON_ERROR_STOP=1', '-c', 'INSERT INTO walk VALUES (3)']);
    expect(write.code).not.toBe(0);
    expect(write.stderr).toContain('cannot execute INSERT in a read-only transaction');
    await eventuallyCount(n1, 2);
  });

  it.runIf(!links && image === IMAGE)('primary.sh n1 again on its volume, without PEERs: it finds the nodes that name it, and stays n2\'s standby', async () => {
    await podmanOk(['rm', '-f', '-t', '10', n1]);
    const p = await script('primary.sh', [n1]);
    expect(p.code, p.stderr).toBe(0);
    expect((await peersOf(n1)).sort()).toEqual([n2, n3, n4].map((o) => `${o}:5432`));
    await waitReady(n1);
    expect(rows(await logs(n1))).toEqual(['fenced standby × PRIMARY']);
    expect(await psql(n1, 'SELECT pg_is_in_recovery()')).toBe('t');
  });
});
