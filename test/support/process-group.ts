/** The processes of a node's process group (nodes started with `detached: true`). */
import { readdirSync, readFileSync } from 'node:fs';
import { waitFor } from './cluster.js';

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
