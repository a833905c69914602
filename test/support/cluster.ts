/** Helpers for tests with several nodes: polling, standby env. */
import { query } from './node.js';

/** Polls `fn` until it returns a truthy value (returned) or the time is up (throws). */
export async function waitFor<T>(what: string, fn: () => Promise<T | undefined | false>, timeoutMs = 60_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await fn();
      if (v) return v;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}${last ? `: ${(last as Error).message}` : ''}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

export function standbyOf(upstreamPort: number, extra: Record<string, string> = {}): Record<string, string> {
  return { PGREPL_ROLE: 'STANDBY', PGREPL_MASTER_IP: '127.0.0.1', PGREPL_MASTER_PORT: String(upstreamPort), ...extra };
}

/** Waits until `port` has `count` rows in table `t`. */
export function waitForRows(port: number, table: string, count: number, timeoutMs = 60_000): Promise<true> {
  return waitFor(`${count} rows in ${table} on port ${port}`, async () => {
    const r = await query<{ n: number }>(port, `SELECT count(*)::int AS n FROM ${table}`);
    return r[0]!.n === count ? true : undefined;
  }, timeoutMs);
}

export async function isInRecovery(port: number): Promise<boolean> {
  return (await query<{ r: boolean }>(port, 'SELECT pg_is_in_recovery() AS r'))[0]!.r;
}

/** The primary sees this standby streaming (pg_stat_replication, by application_name node_PORT). */
export async function streamingTo(primary: number, standbyPort: number): Promise<boolean> {
  const r = await query<{ state: string }>(primary, 'SELECT state FROM pg_stat_replication WHERE application_name = $1', [`node_${standbyPort}`]);
  return r[0]?.state === 'streaming';
}
