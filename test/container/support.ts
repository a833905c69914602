/**
 * Container tests (SPEC §6 tier 3): the real Dockerfile, built and run with podman on stand-in
 * base images (scripts/container/stand-ins.sh), since no image registry is reachable here.
 *
 * podman is called with CONTAINERS_CONF pointing at the file the stand-ins script writes for
 * this machine (runtime runc, ulimits within the hard limits), never at /etc/containers. Every
 * container, volume and network a test file creates is named with that file's unique prefix,
 * labelled with it, and removed in its afterAll (`cleanup()`); tests touch nothing else.
 */
import { execFile, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createWriteStream, mkdirSync } from 'node:fs';
import { join, resolve } from 'node:path';

export const ROOT = resolve(import.meta.dirname, '..', '..');
export const WORK = join(ROOT, '.tmp', 'container');
export const CONTAINERS_CONF = process.env.CONTAINERS_CONF || join(WORK, 'containers.conf');
/**
 * The majors the container tests build the image for, on stand-ins of Debian's packages: 15, the
 * layout of 12-17 (PGDATA and VOLUME /var/lib/postgresql/data), and 18, the layout from 18 on
 * (PGDATA /var/lib/postgresql/18/docker, VOLUME /var/lib/postgresql). PGREPL_TEST_PG_MAJORS adds
 * others the stand-ins script knows (13, 16, 17): "13 15 17 18" runs the docker/ walkthrough on each.
 */
export const MAJORS: number[] = [
  ...new Set([15, 18, ...(process.env.PGREPL_TEST_PG_MAJORS ?? '').split(/[\s,]+/).filter(Boolean).map(Number)]),
].sort((a, b) => a - b);
export const imageFor = (major: number) => `localhost/pgrepl-test:pg${major}`;
/**
 * The major of the client tools (pg_basebackup, pg_rewind, psql) in the image of `major`: its own,
 * except in the stand-in of postgres:16, which no Debian release packages: 16's server with
 * Debian's 18 client tools (scripts/container/stand-ins.sh). `PGREPL_TEST_PG_MAJORS=16` runs it.
 */
export const clientMajorOf = (major: number) => (major === 16 ? 18 : major);
/** The image most tests run: PostgreSQL 15. */
export const IMAGE = process.env.PGREPL_TEST_IMAGE || imageFor(15);
export const BASE_IMAGE = 'docker.io/library/postgres:15';
export const PGDATA = '/var/lib/postgresql/data';

/** The one variable the image adds to its base image's environment: Node's compile cache, filled at build time (Dockerfile). */
export const ADDED_ENV = ['NODE_COMPILE_CACHE=/var/cache/pgrepl/node-compile-cache'];

export const SUPERUSER_PASSWORD = 'ct-Super-pw-8812';
export const TOKEN = 'ct-token-5531';

const podmanEnv = () => ({ ...process.env, CONTAINERS_CONF });

export interface Result {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs podman to completion, `input` on its stdin if given; never throws for a non-zero exit (see `podmanOk`). */
export function podman(args: string[], opts: { timeoutMs?: number; input?: string } = {}): Promise<Result> {
  return new Promise((res, rej) => {
    const child = execFile(
      'podman',
      args,
      { env: podmanEnv(), maxBuffer: 64 << 20, timeout: opts.timeoutMs ?? 120_000, encoding: 'utf8' },
      (err, stdout, stderr) => {
        if (err && typeof err.code !== 'number') return rej(new Error(`podman ${args.join(' ')}: ${err.message}\n${stderr}`));
        res({ code: err ? (err.code as number) : 0, stdout, stderr });
      },
    );
    if (opts.input !== undefined) child.stdin?.end(opts.input);
  });
}

/** podman, expecting exit 0; returns stdout. */
export async function podmanOk(args: string[], opts: { timeoutMs?: number; input?: string } = {}): Promise<string> {
  const r = await podman(args, opts);
  if (r.code !== 0) throw new Error(`podman ${args.join(' ')} exited ${r.code}:\n${r.stderr}${r.stdout}`);
  return r.stdout;
}

/** Runs a command, its output into a log file; throws with the log's tail if it fails. */
function runLogged(cmd: string, args: string[], log: string): Promise<void> {
  mkdirSync(WORK, { recursive: true });
  return new Promise((res, rej) => {
    const out = createWriteStream(log);
    const child = spawn(cmd, args, { cwd: ROOT, env: podmanEnv(), stdio: ['ignore', 'pipe', 'pipe'] });
    let tail = '';
    const keep = (d: Buffer) => {
      out.write(d);
      tail = (tail + d.toString()).slice(-4000);
    };
    child.stdout.on('data', keep);
    child.stderr.on('data', keep);
    child.on('error', rej);
    child.on('close', (code) => {
      out.end();
      if (code === 0) res();
      else rej(new Error(`${cmd} ${args.join(' ')} exited ${code} (log: ${log}):\n${tail}`));
    });
  });
}

/**
 * Builds the stand-in base images (cached: the script skips what is up to date) and the image
 * under test from the repository's Dockerfile for each of MAJORS, as the README tells users to,
 * with only what a registry-less machine needs on top: the stand-ins, the host's network for npm.
 * The previous image of the same tag is removed once nothing names it any more.
 */
export async function buildImage(): Promise<{ standInsMs: number; imageMs: number }> {
  let t = Date.now();
  await runLogged('bash', [join(ROOT, 'scripts', 'container', 'stand-ins.sh'), ...MAJORS.map(String)], join(WORK, 'stand-ins.log'));
  const standInsMs = Date.now() - t;
  t = Date.now();
  for (const major of MAJORS) {
    const image = major === 15 ? IMAGE : imageFor(major);
    const previous = (await podman(['image', 'inspect', '--format', '{{.Id}}', image])).stdout.trim();
    await runLogged(
      'podman',
      ['build', '--pull=never', '--format', 'docker', '--network', 'host', '--build-arg', `PG_MAJOR=${major}`, '-t', image, ROOT],
      join(WORK, `build-image-${major}.log`),
    );
    if (previous) {
      const tags = await podman(['image', 'inspect', '--format', '{{len .RepoTags}}', previous]);
      if (tags.code === 0 && tags.stdout.trim() === '0') await podman(['rmi', previous]);
    }
  }
  return { standInsMs, imageMs: Date.now() - t };
}

/** Names and labels for what one test file creates, and their removal. */
export class Scope {
  readonly prefix = `pgrepl-ct-${randomBytes(3).toString('hex')}`;
  readonly label = `io.pgrepl.test.scope=${this.prefix}`;
  private n = 0;

  name(what: string): string {
    return `${this.prefix}-${what}-${++this.n}`;
  }

  /** `podman run -d` with this scope's label; returns the container's name. */
  async run(name: string, args: string[], image = IMAGE): Promise<string> {
    await podmanOk(['run', '-d', '--name', name, '--label', this.label, ...args, image]);
    return name;
  }

  async volume(what = 'data'): Promise<string> {
    const name = this.name(what);
    await podmanOk(['volume', 'create', '--label', this.label, name]);
    return name;
  }

  async network(what = 'net'): Promise<string> {
    const name = this.name(what);
    await podmanOk(['network', 'create', '--label', this.label, name]);
    return name;
  }

  /** Removes every container, then volume, then network carrying this scope's label. */
  async cleanup(): Promise<void> {
    const filter = ['--filter', `label=${this.label}`];
    const ids = async (kind: string[], fmt: string) =>
      (await podman([...kind, ...filter, '--format', fmt])).stdout.split('\n').map((s) => s.trim()).filter(Boolean);
    const containers = await ids(['ps', '-a'], '{{.ID}}');
    if (containers.length) await podman(['rm', '-f', '-v', '-t', '0', ...containers]);
    const volumes = await ids(['volume', 'ls'], '{{.Name}}');
    if (volumes.length) await podman(['volume', 'rm', '-f', ...volumes]);
    const networks = await ids(['network', 'ls'], '{{.Name}}');
    if (networks.length) await podman(['network', 'rm', '-f', ...networks]);
  }
}

/** Removes what `podman-compose down -v` may leave of PROJECT when a test failed half-way: its containers, volumes and network. */
export async function removeComposeLeftovers(project: string): Promise<void> {
  const filter = ['--filter', `label=io.podman.compose.project=${project}`];
  const left = (await podman(['ps', '-a', ...filter, '--format', '{{.ID}}'])).stdout.split('\n').filter(Boolean);
  if (left.length) await podman(['rm', '-f', '-t', '0', ...left]);
  const vols = (await podman(['volume', 'ls', ...filter, '--format', '{{.Name}}'])).stdout.split('\n').filter(Boolean);
  if (vols.length) await podman(['volume', 'rm', '-f', ...vols]);
  await podman(['network', 'rm', '-f', `${project}_default`]);
}

/** stdout and stderr of a container, in one string. */
export async function logs(name: string): Promise<string> {
  const r = await podman(['logs', name]);
  return r.stdout + r.stderr;
}

/** pgrepl's own log lines (JSON), parsed; postgres's and initdb's lines are skipped. */
export function pgreplLines(text: string): { level: number; msg: string; row?: string; [k: string]: unknown }[] {
  return text
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l));
}

/** The decision-table row of each start in a container's log, in order. */
export function rows(text: string): string[] {
  return pgreplLines(text)
    .filter((l) => typeof l.row === 'string')
    .map((l) => l.row!);
}

export async function state(name: string): Promise<{ status: string; exitCode: number }> {
  const out = await podmanOk(['inspect', '--format', '{{.State.Status}} {{.State.ExitCode}}', name]);
  const [status, code] = out.trim().split(' ');
  return { status: status!, exitCode: Number(code) };
}

/** The command name of the container's PID 1 (`postgres` once the entrypoint has handed over). */
export async function pid1(name: string): Promise<string> {
  const r = await podman(['exec', name, 'cat', '/proc/1/comm']);
  return r.code === 0 ? r.stdout.trim() : '';
}

/**
 * Waits until the node serves: the entrypoint has handed over (PID 1 is postgres) and `pgrepl
 * health` inside the container exits 0. Fails early if the container stops. (`pgrepl health`
 * alone is not enough: it also exits 0 while the entrypoint's temporary server runs.)
 */
export async function waitReady(name: string, timeoutMs = 120_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last = '';
  for (;;) {
    const st = await state(name);
    if (st.status !== 'running') {
      throw new Error(`container ${name} is ${st.status} (exit ${st.exitCode}) before it was ready:\n${await logs(name)}`);
    }
    if ((await pid1(name)) === 'postgres') {
      const h = await podman(['exec', name, 'pgrepl', 'health']);
      if (h.code === 0) return;
      last = `pgrepl health exited ${h.code}: ${h.stdout}${h.stderr}`;
    } else last = 'PID 1 is not postgres yet';
    if (Date.now() > deadline) throw new Error(`container ${name} not ready after ${timeoutMs} ms (${last}):\n${await logs(name)}`);
    await new Promise((r) => setTimeout(r, 300));
  }
}

/** Waits until the container's log matches `re`; fails early if the container stops. */
export async function waitForLog(name: string, re: RegExp, timeoutMs = 120_000): Promise<string> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const text = await logs(name);
    if (re.test(text)) return text;
    const st = await state(name);
    if (st.status !== 'running') throw new Error(`container ${name} is ${st.status} (exit ${st.exitCode}), its log never matched ${re}:\n${text}`);
    if (Date.now() > deadline) throw new Error(`container ${name}: log did not match ${re} after ${timeoutMs} ms:\n${text}`);
    await new Promise((r) => setTimeout(r, 300));
  }
}

/** Waits until the container has exited; returns its exit code. */
export async function waitExited(name: string, timeoutMs = 60_000): Promise<number> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const st = await state(name);
    if (st.status === 'exited' || st.status === 'stopped') return st.exitCode;
    if (Date.now() > deadline) throw new Error(`container ${name} still ${st.status} after ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

/** psql inside the container, over the Unix socket, as the superuser; returns unaligned rows. */
export async function psql(name: string, sql: string, db = 'postgres'): Promise<string> {
  return (await podmanOk(['exec', name, 'psql', '-X', '-v', 'ON_ERROR_STOP=1', '-U', 'postgres', '-d', db, '-Atc', sql])).trim();
}

/** `podman top NAME pid user args`, parsed. */
export async function top(name: string): Promise<{ pid: number; user: string; args: string }[]> {
  const out = await podmanOk(['top', name, 'pid', 'user', 'args']);
  return out
    .split('\n')
    .slice(1)
    .filter((l) => l.trim())
    .map((l) => {
      const m = /^\s*(\d+)\s+(\S+)\s+(.*)$/.exec(l);
      if (!m) throw new Error(`unexpected podman top line: ${l}`);
      return { pid: Number(m[1]), user: m[2]!, args: m[3]!.trim() };
    });
}

/** The environment of a primary, as `-e` arguments. */
export function primaryEnv(extra: Record<string, string> = {}): string[] {
  const env = { POSTGRES_PASSWORD: SUPERUSER_PASSWORD, PGREPL_TOKEN: TOKEN, ...extra };
  return Object.entries(env).flatMap(([k, v]) => ['-e', `${k}=${v}`]);
}
