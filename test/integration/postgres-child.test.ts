/**
 * postgres as the child of a process that stays beside it (the HA agent's process model,
 * src/handover/postgres-child.ts), on a real server. The agent is played by a small driver
 * (fixtures/postgres-child-driver.ts) bundled here with esbuild: it owns postgres through the
 * module exactly as the agent does, so the test can SIGKILL it, signal it and read its exit.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { chownSync, existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { readControlData } from '../../src/observe/control-file.js';
import { waitFor } from '../support/cluster.js';
import { bundleFixture } from '../support/bundle.js';
import { PG_PATH, testEnv } from '../support/env.js';
import { query, removeScratch, scratchDir } from '../support/node.js';
import { processesOf } from '../support/process-group.js';

const PORT = 5891;
const DRIVER = 'test/integration/fixtures/postgres-child-driver.ts';
let dir: string;
let pgdata: string;
let driverBundle: string;

const postgresUser = () => {
  const id = (flag: string) => spawnSync('id', [flag, 'postgres']).stdout.toString().trim();
  return { uid: Number(id('-u')), groups: id('-G').split(' ').map(Number).sort((a, b) => a - b) };
};

/** No unix socket (the scratch directory is root's), TCP on 127.0.0.1 only. */
const BASE_ARGS = ['-c', 'listen_addresses=127.0.0.1', '-c', 'unix_socket_directories='];

beforeAll(async () => {
  dir = scratchDir('pgrepl-child-');
  pgdata = join(dir, 'data');
  mkdirSync(pgdata, { mode: 0o700 });
  const { uid } = postgresUser();
  chownSync(pgdata, uid, Number(spawnSync('id', ['-g', 'postgres']).stdout.toString().trim()));
  const initdb = spawnSync('runuser', ['-u', 'postgres', '--', 'initdb', '-D', pgdata, '-A', 'trust', '-U', 'postgres', '--no-sync'], {
    env: { PATH: PG_PATH, LANG: 'C.UTF-8' },
  });
  if (initdb.status !== 0) throw new Error(`initdb failed: ${initdb.stderr.toString()}`);
  driverBundle = await bundleFixture(DRIVER, join(dir, 'driver.cjs'));
});

interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

interface DriverEvent {
  event: 'started' | 'restarted' | 'stopped' | 'error';
  pid?: number;
  exit?: { code: number | null; signal: string | null; status: number };
  message?: string;
}

/** The agent stand-in: a process that starts postgres through the module and owns it. */
class Driver {
  readonly child: ChildProcess;
  stderr = '';
  private events: DriverEvent[] = [];
  readonly exited: Promise<Exit>;

  constructor(args: string[] = BASE_ARGS, env: Record<string, string> = {}) {
    this.child = spawn(process.execPath, [driverBundle, JSON.stringify(args)], {
      env: { PATH: PG_PATH, LANG: 'C.UTF-8', PGDATA: pgdata, PGPORT: String(PORT), ...env },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let out = '';
    this.child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      const lines = out.split('\n');
      out = lines.pop()!;
      for (const l of lines) this.events.push(JSON.parse(l) as DriverEvent);
    });
    this.child.stderr!.on('data', (d: Buffer) => (this.stderr += d.toString()));
    this.exited = new Promise((res) => this.child.on('exit', (code, signal) => res({ code, signal })));
    running.add(this);
    void this.exited.then(() => running.delete(this));
  }

  /** The next event of this kind not taken yet (an error event fails the wait). */
  async next(kind: DriverEvent['event']): Promise<DriverEvent> {
    let exited = false;
    void this.exited.then(() => (exited = true));
    return waitFor(`the driver's "${kind}" event`, async () => {
      const i = this.events.findIndex((e) => e.event === kind || e.event === 'error');
      if (i < 0) {
        if (exited) throw new Error(`the driver exited:\n${this.stderr}`);
        return undefined;
      }
      const [e] = this.events.splice(i, 1);
      if (e!.event === 'error') throw new Error(`driver: ${e!.message}\n${this.stderr}`);
      return e;
    });
  }

  send(cmd: object): void {
    this.child.stdin!.write(JSON.stringify(cmd) + '\n');
  }

  /** Started, and postgres accepts connections. */
  async ready(): Promise<number> {
    const { pid } = await this.next('started');
    await waitFor('postgres to accept connections', () => query(PORT, 'SELECT 1').then(() => true));
    return pid!;
  }
}

const running = new Set<Driver>();

/** State (R, S, Z, ...) of a process, or undefined once it is gone (reaped). */
function procState(pid: number): string | undefined {
  try {
    return /\) (\S) /.exec(readFileSync(`/proc/${pid}/stat`, 'utf8'))![1];
  } catch {
    return undefined;
  }
}

function procStatus(pid: number): { uid: number; ppid: number; groups: number[] } {
  const s = readFileSync(`/proc/${pid}/status`, 'utf8');
  return {
    uid: Number(/^Uid:\s+(\d+)/m.exec(s)![1]),
    ppid: Number(/^PPid:\s+(\d+)/m.exec(s)![1]),
    groups: /^Groups:[ \t]*(.*)$/m.exec(s)![1]!.trim().split(/\s+/).filter(Boolean).map(Number).sort((a, b) => a - b),
  };
}

/** Whether some socket listens on `port` (/proc/net/tcp and tcp6: local address :PORT in state 0A). */
function listening(port: number): boolean {
  const hex = `:${port.toString(16).toUpperCase().padStart(4, '0')}`;
  return ['/proc/net/tcp', '/proc/net/tcp6'].some((f) =>
    readFileSync(f, 'utf8').split('\n').slice(1).some((l) => {
      const [, local, , st] = l.trim().split(/\s+/);
      return local?.endsWith(hex) && st === '0A';
    }),
  );
}

/** Until the last postmaster's zombie is reaped, a new one refuses its lock file. */
async function postmasterGone(pid: number): Promise<void> {
  await waitFor(`postmaster ${pid} to be gone`, async () => procState(pid) === undefined);
}

afterEach(async () => {
  for (const d of running) {
    d.child.kill('SIGINT');
    await d.exited;
  }
  const left = processesOf(pgdata);
  for (const p of left) process.kill(p.pid, 'SIGKILL');
  expect(left, 'processes left behind').toEqual([]);
});

afterAll(() => removeScratch(dir));

describe('postgres as the child of the agent', () => {
  it('runs as the postgres user with its groups; a fast stop leaves a cleanly shut down cluster; a restart read-only refuses writes', async () => {
    const d = new Driver();
    const pid = await d.ready();
    const status = procStatus(pid);
    expect(status.ppid).toBe(d.child.pid);
    expect(status.uid).toBe(postgresUser().uid);
    expect(status.groups).toEqual(postgresUser().groups); // initgroups: ssl-cert too, on Debian
    await query(PORT, 'CREATE TABLE IF NOT EXISTS t (x int)');

    d.send({ do: 'stop', mode: 'fast' });
    const stopped = await d.next('stopped');
    expect(stopped.exit).toMatchObject({ code: 0, status: 0 });
    expect((await readControlData(pgdata))?.state).toBe('shut down');
    expect(d.stderr).toMatch(/received fast shutdown request/);
    expect(d.child.exitCode).toBeNull(); // asked for: the agent lives on

    d.send({ do: 'restart', args: [...BASE_ARGS, '-c', 'default_transaction_read_only=on'] });
    const again = (await d.next('restarted')).pid!;
    expect(again).not.toBe(pid);
    await waitFor('postgres to accept connections', () => query(PORT, 'SELECT 1').then(() => true));
    await expect(query(PORT, 'INSERT INTO t VALUES (1)')).rejects.toThrow(/read-only transaction/);

    // A restart of a running server stops it (fast) and starts it with the new arguments.
    d.send({ do: 'restart', args: BASE_ARGS });
    expect((await d.next('restarted')).pid).not.toBe(again);
    await waitFor('postgres to accept writes', () => query(PORT, 'INSERT INTO t VALUES (1)').then(() => true));
    expect(d.child.exitCode).toBeNull();

    d.child.kill('SIGINT');
    expect(await d.exited).toEqual({ code: 0, signal: null });
    expect((await readControlData(pgdata))?.state).toBe('shut down');
  });

  for (const asPostgres of [false, true]) {
    it(`SIGKILL of the agent (${asPostgres ? 'dropped to postgres' : 'root'}): the postmaster dies with it, its backends exit, the port is free`, async () => {
      const d = new Driver(BASE_ARGS, asPostgres ? { DRIVER_AS_POSTGRES: '1' } : {});
      const pid = await d.ready();
      expect(procStatus(pid).uid).toBe(postgresUser().uid);
      expect(procStatus(d.child.pid!).uid).toBe(asPostgres ? postgresUser().uid : 0);
      // An open session: a backend that must not outlive its postmaster.
      const session = new pg.Client({ host: '127.0.0.1', port: PORT, user: 'postgres', database: 'postgres' });
      session.on('error', () => undefined);
      await session.connect();
      const [{ backend }] = (await session.query<{ backend: number }>('SELECT pg_backend_pid() AS backend')).rows as [{ backend: number }];
      expect(procState(backend)).toBeDefined();

      d.child.kill('SIGKILL');
      expect(await d.exited).toEqual({ code: null, signal: 'SIGKILL' });
      await waitFor('the postmaster to die', async () => procState(pid) === undefined || procState(pid) === 'Z', 10_000);
      await waitFor('its backend to exit', async () => procState(backend) === undefined || procState(backend) === 'Z', 10_000);
      expect(listening(PORT)).toBe(false);
      expect(processesOf(pgdata)).toEqual([]);
      await session.end().catch(() => undefined);
      await postmasterGone(pid);
    });
  }

  it('exits with postgres\'s status when postgres dies on its own: 128+9 for a SIGKILL, its code for a bad setting', async () => {
    const d = new Driver();
    const pid = await d.ready();
    process.kill(pid, 'SIGKILL');
    expect(await d.exited).toEqual({ code: 128 + 9, signal: null });
    await postmasterGone(pid);

    const bad = new Driver([...BASE_ARGS, '-c', 'no_such_setting_xyz=1']);
    await bad.next('started');
    expect(await bad.exited).toEqual({ code: 1, signal: null });
    expect(bad.stderr).toMatch(/no_such_setting_xyz/);
  });

  for (const [signal, shutdown] of [['SIGINT', 'fast'], ['SIGTERM', 'smart']] as const) {
    it(`forwards ${signal} (${shutdown} shutdown) and exits 0; SIGHUP reloads and changes nothing else`, async () => {
      const d = new Driver();
      const pid = await d.ready();
      d.child.kill('SIGHUP');
      await waitFor('the reload', async () => /received SIGHUP, reloading configuration files/.test(d.stderr));
      expect(procState(pid)).toBeDefined();
      expect(await query(PORT, 'SELECT 1 AS ok')).toEqual([{ ok: 1 }]);
      d.child.kill(signal);
      expect(await d.exited).toEqual({ code: 0, signal: null });
      expect(d.stderr).toMatch(new RegExp(`received ${shutdown} shutdown request`));
      expect((await readControlData(pgdata))?.state).toBe('shut down');
    });
  }

  it('a stop signal during a restart it asked for: postgres is not started again and the agent exits 0', async () => {
    const d = new Driver();
    await d.ready();
    // A smart shutdown waits for this session: the restart is under way, postgres still runs.
    const session = new pg.Client({ host: '127.0.0.1', port: PORT, user: 'postgres', database: 'postgres' });
    session.on('error', () => undefined);
    await session.connect();
    d.send({ do: 'restart', args: BASE_ARGS, mode: 'smart' });
    await waitFor('the smart shutdown', async () => /received smart shutdown request/.test(d.stderr));
    d.child.kill('SIGINT');
    expect(await d.exited).toEqual({ code: 0, signal: null });
    expect(d.stderr).toMatch(/received fast shutdown request/);
    expect(d.stderr).toMatch(/SIGINT: stopping; postgres will not be started again/);
    expect(d.stderr.match(/postgres started as a child/g)).toHaveLength(1);
    expect(processesOf(pgdata)).toEqual([]);
    await session.end().catch(() => undefined);
  });

  it('without setpriv on PATH: says that postgres would outlive the agent, and still runs it as the postgres user', async () => {
    expect(existsSync(join(testEnv.pgBin, 'setpriv'))).toBe(false);
    const d = new Driver(BASE_ARGS, { PATH: testEnv.pgBin });
    const pid = await d.ready();
    expect(d.stderr).toMatch(/setpriv \(util-linux\) with --pdeathsig is not on PATH: postgres would outlive this process/);
    expect(procStatus(pid)).toMatchObject({ uid: postgresUser().uid, ppid: d.child.pid });
    d.child.kill('SIGINT');
    expect(await d.exited).toEqual({ code: 0, signal: null });
  });
});
