/**
 * Probes can't hang a start (issue 10, point 11): an upstream or peer that accepts the TCP
 * connection and then stalls counts as "not answering", as an unreachable one does. Stalls come
 * from test/support/stall-server.ts (one that never answers; one that relays a real server's
 * authentication, then swallows the first query) and from a real PostgreSQL server whose
 * postmaster is SIGSTOPped. Every run of the bundle here is bounded: a hang fails the test.
 *
 * Ports 5811-5815 are this file's alone.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { standbyOf } from '../support/cluster.js';
import { removeScratch, scratchDir, TestNode, type NodeOptions, type RunResult } from '../support/node.js';
import { stallServer, type StallServer } from '../support/stall-server.js';

const P = 5811, SILENT = 5812, STALLS_AFTER_LOGIN = 5813, S = 5814, Q = 5815;
const TOKEN = 'probes-test-token';
/** Far more than any bounded probe needs; a start still running then is hung. */
const HUNG_AFTER_MS = 90_000;

let dir: string;
let p: TestNode;
const stalls: StallServer[] = [];
const paused = new Set<number>();

const opts = (port: number, env: Record<string, string> = {}): NodeOptions =>
  ({ pgdata: join(dir, `n${port}`), port, env: { PGREPL_TOKEN: TOKEN, ...env } });

/** Runs the bundle to its end, or kills it and fails when it is still running after HUNG_AFTER_MS. */
async function runBounded(o: NodeOptions): Promise<RunResult> {
  const n = new TestNode(o);
  let timer: NodeJS.Timeout | undefined;
  const hung = new Promise<'hung'>((res) => (timer = setTimeout(() => res('hung'), HUNG_AFTER_MS)));
  const r = await Promise.race([n.exited, hung]);
  clearTimeout(timer);
  if (r === 'hung') {
    await n.stop('SIGKILL');
    throw new Error(`still running after ${HUNG_AFTER_MS} ms, hung on a stalled server:\n${n.stderr}`);
  }
  return r;
}

/** Starts a node and waits until it serves, bounded the same way. */
async function startBounded(o: NodeOptions): Promise<TestNode> {
  const n = new TestNode(o);
  try {
    await n.ready(HUNG_AFTER_MS);
  } catch (err) {
    await n.stop('SIGKILL');
    throw err;
  }
  return n;
}

type LogLine = { level: number; msg: string; [k: string]: unknown };
const logsOf = (stderr: string): LogLine[] => stderr.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as LogLine);
const postmasterPid = (port: number) => Number(readFileSync(join(dir, `n${port}`, 'postmaster.pid'), 'utf8').split('\n')[0]);

beforeAll(async () => {
  dir = scratchDir();
  p = await startBounded(opts(P));
  stalls.push(await stallServer(SILENT, { stall: 'accept' }));
  stalls.push(await stallServer(STALLS_AFTER_LOGIN, { stall: 'after-startup', upstreamPort: P }));
});

afterAll(async () => {
  for (const pid of paused) process.kill(pid, 'SIGCONT');
  await Promise.all(stalls.map((s) => s.close()));
  await p?.stop();
  removeScratch(dir);
});

describe('a STANDBY whose upstream accepts and stalls', () => {
  for (const [what, port] of [['never answers', SILENT], ['stalls after the login', STALLS_AFTER_LOGIN]] as const) {
    it(`${what}: refuses with "did not answer" after PGREPL_UPSTREAM_TIMEOUT, creating nothing`, async () => {
      const res = await runBounded(opts(S, standbyOf(port, { PGREPL_UPSTREAM_TIMEOUT: '2' })));
      expect(res.code).toBe(1);
      const fatal = logsOf(res.stderr).filter((l) => l.level >= 50);
      expect(fatal).toHaveLength(1);
      expect(fatal[0]!.msg).toMatch(
        new RegExp(`^the upstream 127\\.0\\.0\\.1:${port} \\(PGREPL_MASTER_IP\\) did not answer within 2 s \\(PGREPL_UPSTREAM_TIMEOUT\\): .*no answer.*; nothing was changed$`),
      );
      expect(existsSync(join(dir, `n${S}`))).toBe(false);
    });
  }
});

describe('a PRIMARY whose peers accept and stall', () => {
  it('starts (an existing cluster): the stalled peers say nothing', async () => {
    const first = await startBounded(opts(Q));
    await first.stop();
    const q = await startBounded(opts(Q, { PGREPL_PEERS: `127.0.0.1:${SILENT},127.0.0.1:${STALLS_AFTER_LOGIN}` }));
    try {
      const silent = logsOf(q.stderr).map((l) => l.msg);
      expect(silent).toContain(`peer 127.0.0.1:${SILENT} does not answer`);
      expect(silent).toContain(`peer 127.0.0.1:${STALLS_AFTER_LOGIN} does not answer`);
      expect(logsOf(q.stderr).find((l) => typeof l.row === 'string')?.row).toBe('primary cluster × PRIMARY');
    } finally {
      await q.stop();
    }
  });
});

describe('a real server that stalls (its postmaster SIGSTOPped)', () => {
  it('is an upstream that did not answer, and a peer that says nothing', async () => {
    const pid = postmasterPid(P);
    process.kill(pid, 'SIGSTOP');
    paused.add(pid);
    try {
      const res = await runBounded(opts(S, standbyOf(P, { PGREPL_UPSTREAM_TIMEOUT: '2' })));
      expect(res.code).toBe(1);
      expect(logsOf(res.stderr).filter((l) => l.level >= 50).map((l) => l.msg)).toEqual([
        expect.stringMatching(new RegExp(`^the upstream 127\\.0\\.0\\.1:${P} \\(PGREPL_MASTER_IP\\) did not answer within 2 s`)),
      ]);
      const q = await startBounded(opts(Q, { PGREPL_PEERS: `127.0.0.1:${P}` }));
      expect(logsOf(q.stderr).map((l) => l.msg)).toContain(`peer 127.0.0.1:${P} does not answer`);
      await q.stop();
    } finally {
      process.kill(pid, 'SIGCONT');
      paused.delete(pid);
    }
  });
});
