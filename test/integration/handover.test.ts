/**
 * The hand-over to postgres, both ways: process.execve (Node 24, the image's runtime) and the
 * supervising fallback (this machine's Node 20). Also the dispatcher's "run as given" path.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BUNDLE, PG_PATH, testEnv } from '../support/env.js';
import { query, removeScratch, scratchDir, TestNode } from '../support/node.js';

let dir: string;
beforeAll(() => {
  dir = scratchDir();
});
afterAll(() => removeScratch(dir));

const postgresUid = () => Number(execFileSync('id', ['-u', 'postgres']).toString().trim());

function procStatus(pid: number): { name: string; uid: number } {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  return {
    name: /^Name:\s+(\S+)/m.exec(status)![1]!,
    uid: Number(/^Uid:\s+(\d+)/m.exec(status)![1]),
  };
}

describe('with process.execve (Node 24)', () => {
  it('postgres replaces the Node process: same PID, postgres user, SIGINT = fast shutdown, exit 0', async () => {
    const n = new TestNode({ pgdata: join(dir, 'exec'), port: 5721, node: testEnv.node24 });
    await n.ready();
    expect(procStatus(n.pid)).toEqual({ name: 'postgres', uid: postgresUid() });
    const pidFile = readFileSync(join(dir, 'exec', 'postmaster.pid'), 'utf8').split('\n')[0];
    expect(Number(pidFile)).toBe(n.pid);
    expect(n.stderr).not.toMatch(/supervising/);
    const res = await n.stop('SIGINT');
    expect(res.stderr).toMatch(/received fast shutdown request/);
    expect(res.code).toBe(0);
  });
});

/**
 * docker stop while the start hands over: the signal must not be lost between pgrepl's own stop
 * handling and postgres's. Sent the moment the "handing over" line appears, several times, since
 * where it lands varies by microseconds; each time the node must end, and no postgres stay behind.
 */
describe('a stop signal during the hand-over', () => {
  const postmasterAlive = (pgdata: string): boolean => {
    const pid = Number((existsSync(join(pgdata, 'postmaster.pid')) ? readFileSync(join(pgdata, 'postmaster.pid'), 'utf8') : '').split('\n')[0]);
    if (!(pid > 0)) return false;
    try {
      process.kill(pid, 0);
      return true;
    } catch {
      return false;
    }
  };
  for (const [label, node] of [['Node 20, supervising', undefined], ['Node 24, execve', testEnv.node24]] as const) {
    it(`${label}: the node ends, postgres with it`, async () => {
      const pgdata = join(dir, `stop-${node ? 'exec' : 'sup'}`);
      const first = new TestNode({ pgdata, port: 5724, node });
      await first.ready();
      expect((await first.stop()).code).toBe(0);
      for (let i = 0; i < 6; i++) {
        const n = new TestNode({ pgdata, port: 5724, node });
        let sent = false;
        n.child.stderr!.on('data', () => {
          if (!sent && n.stderr.includes('handing over to postgres')) {
            sent = true;
            n.child.kill('SIGINT');
          }
        });
        const res = await Promise.race([n.exited, new Promise<undefined>((r) => setTimeout(() => r(undefined), 20_000))]);
        if (!res) await n.stop('SIGINT');
        expect(res, `try ${i + 1}: still running 20 s after SIGINT:\n${n.stderr}`).toBeDefined();
        // Stopped before postgres started (130, or the signal's own default action in the
        // microseconds before execve), or postgres's fast shutdown (0).
        expect([0, 130, 'SIGINT']).toContain(res!.code ?? res!.signal);
        expect(postmasterAlive(pgdata), `try ${i + 1}: a postgres outlived the node`).toBe(false);
      }
    });
  }
});

describe('without process.execve (Node 20): the supervisor', () => {
  it('says so, runs postgres as a child as the postgres user, forwards SIGINT and exits 0', async () => {
    const n = new TestNode({ pgdata: join(dir, 'sup'), port: 5722 });
    await n.ready();
    expect(n.stderr).toMatch(/no process.execve: supervising postgres/);
    const pid = Number(readFileSync(join(dir, 'sup', 'postmaster.pid'), 'utf8').split('\n')[0]);
    expect(pid).not.toBe(n.pid);
    expect(procStatus(pid).uid).toBe(postgresUid());
    expect(procStatus(n.pid).uid).toBe(postgresUid()); // the supervisor dropped privileges too
    const res = await n.stop('SIGINT');
    expect(res.stderr).toMatch(/received fast shutdown request/);
    expect(res.code).toBe(0);
  });

  it('forwards SIGTERM (smart shutdown) and exits 0', async () => {
    const n = new TestNode({ pgdata: join(dir, 'sup'), port: 5722 });
    await n.ready();
    const res = await n.stop('SIGTERM');
    expect(res.stderr).toMatch(/received smart shutdown request/);
    expect(res.code).toBe(0);
  });

  it('exits 128+n when postgres dies of signal n', async () => {
    const n = new TestNode({ pgdata: join(dir, 'sup'), port: 5722 });
    await n.ready();
    const pid = Number(readFileSync(join(dir, 'sup', 'postmaster.pid'), 'utf8').split('\n')[0]);
    process.kill(pid, 'SIGKILL');
    const res = await n.exited;
    expect(res.code).toBe(128 + 9);
  });

  it('recovers after that crash on the next start', async () => {
    const n = new TestNode({ pgdata: join(dir, 'sup'), port: 5722 });
    await n.ready();
    expect(await query(5722, 'SELECT 1 AS ok')).toEqual([{ ok: 1 }]);
    expect((await n.stop()).code).toBe(0);
  });
});

describe('the dispatcher', () => {
  for (const [label, node] of [['Node 20', process.execPath], ['Node 24', testEnv.node24]] as const) {
    it(`${label}: runs any other command as given, stdout untouched, exit status passed on`, () => {
      const env = { PATH: PG_PATH };
      const hi = spawnSync(node, [BUNDLE, 'bash', '-c', 'echo hi'], { env });
      expect(hi.stdout.toString()).toBe('hi\n');
      expect(hi.status).toBe(0);
      const fail = spawnSync(node, [BUNDLE, 'bash', '-c', 'exit 7'], { env });
      expect(fail.status).toBe(7);
      const missing = spawnSync(node, [BUNDLE, 'no-such-command-xyz'], { env });
      expect(missing.status).toBe(127);
      expect(missing.stdout.toString()).toBe('');
      expect(missing.stderr.toString()).toMatch(/no-such-command-xyz: command not found/);
    });
  }

  it('a first argument starting with "-" means postgres ARGS', () => {
    const res = spawnSync(process.execPath, [BUNDLE, '--version'], {
      env: { PATH: PG_PATH, PGDATA: join(dir, 'dash'), PGPORT: '5723', POSTGRES_PASSWORD: 'x', PGREPL_INITDB_DIR: '/nonexistent' },
    });
    expect(res.stdout.toString()).toMatch(/^postgres \(PostgreSQL\) \d+/);
    expect(res.status).toBe(0);
    // As in the official image, asking postgres for its version or help sets nothing up.
    expect(existsSync(join(dir, 'dash'))).toBe(false);
  });
});
