/** The processes of a node's process group (nodes started with `detached: true`), and of its PGDATA. */
import { readdirSync, readFileSync } from 'node:fs';
import { waitFor } from './cluster.js';
import type { TestNode } from './node.js';

/** Members of process group `pgid`, zombies included, read from /proc. */
export function groupMembers(pgid: number): number[] {
  const out: number[] = [];
  for (const e of readdirSync('/proc')) {
    if (!/^\d+$/.test(e)) continue;
    try {
      const stat = readFileSync(`/proc/${e}/stat`, 'utf8');
      if (Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[2]) === pgid) out.push(Number(e));
    } catch {
      // gone meanwhile
    }
  }
  return out;
}

/**
 * Waits until every process of the group is gone and reaped. A killed postmaster's zombie, until
 * PID 1 reaps it, still "exists": a server started on its port or its data directory meanwhile
 * refuses ("lock file already exists").
 */
export function groupGone(pgid: number, timeoutMs = 60_000): Promise<true> {
  return waitFor(`process group ${pgid} to be gone`, async () => groupMembers(pgid).length === 0, timeoutMs);
}

export interface NodeProcess {
  pid: number;
  ppid: number;
  state: string;
  cmd: string;
}

/**
 * Processes that belong to a node: their command line or environment names its PGDATA (postgres
 * inherits PGDATA; pg_ctl, pg_basebackup and pg_rewind are given a directory inside it). Read
 * from /proc, as root. Zombies are left out: they have done all they will ever do.
 */
export function processesOf(pgdataPrefix: string): NodeProcess[] {
  const found: NodeProcess[] = [];
  for (const e of readdirSync('/proc')) {
    if (!/^\d+$/.test(e) || Number(e) === process.pid) continue;
    try {
      const cmd = readFileSync(`/proc/${e}/cmdline`, 'utf8').replace(/\0/g, ' ').trim();
      const env = readFileSync(`/proc/${e}/environ`, 'utf8').split('\0');
      // "pid (comm) state ppid ...": a zombie (Z) has done all it will ever do.
      const [, state = '?', ppid = '0'] = /\) (\S) (\d+)/.exec(readFileSync(`/proc/${e}/stat`, 'utf8')) ?? [];
      if (state === 'Z') continue;
      if (cmd.includes(pgdataPrefix) || env.some((v) => v.startsWith(`PGDATA=${pgdataPrefix}`))) found.push({ pid: Number(e), ppid: Number(ppid), state, cmd });
    } catch {
      // gone, or a kernel thread
    }
  }
  return found;
}

/**
 * The clean-up of a test file whose nodes are process groups (`detached: true`): a clean stop of
 * every node still running, a kill of its whole group if it does not stop within 30 s; then
 * nothing may be left running under `dir` (no postgres, pg_basebackup, temporary server, script):
 * whatever is, is killed. Returns what went wrong, for the caller to throw once it has finished.
 */
export async function stopAllNodes(nodes: Map<number, TestNode>, dir: string): Promise<string[]> {
  const problems: string[] = [];
  for (const [port, n] of [...nodes]) {
    const stopped = await Promise.race([n.stop('SIGINT').then(() => true), new Promise<false>((r) => setTimeout(() => r(false), 30_000))]);
    if (!stopped) {
      problems.push(`node ${port} did not stop on SIGINT within 30 s`);
      await n.killGroup();
    }
    nodes.delete(port);
  }
  let left: NodeProcess[] = [];
  try {
    await waitFor('no process left', async () => (left = processesOf(dir)).length === 0, 20_000);
  } catch {
    for (const p of left) {
      try {
        process.kill(p.pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
    problems.push(`processes left behind: ${left.map((p) => `${p.pid} ${p.cmd}`).join('; ')}`);
  }
  return problems;
}
