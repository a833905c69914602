/**
 * Promoting a standby and reading timelines, shared by promotion on start (temporary server) and
 * `pgrepl promote` (the running server). pg_promote() exists from 12; before, `pg_ctl promote`.
 */
import type pg from 'pg';
import { run } from './run.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export async function inRecovery(c: pg.Client): Promise<boolean> {
  return (await c.query<{ r: boolean }>('SELECT pg_is_in_recovery() AS r')).rows[0]!.r;
}

/**
 * This server's current timeline. A primary: from the name of its current WAL file (the
 * checkpoint's timeline lags behind a promotion). A standby: the timeline it receives or replays.
 */
export async function currentTimeline(c: pg.Client): Promise<number> {
  if (!(await inRecovery(c))) {
    const r = await c.query<{ f: string }>('SELECT pg_walfile_name(pg_current_wal_lsn()) AS f');
    return parseInt(r.rows[0]!.f.slice(0, 8), 16);
  }
  const r = await c.query<{ tli: number | null }>(
    'SELECT coalesce((SELECT received_tli FROM pg_stat_wal_receiver), (SELECT timeline_id FROM pg_control_checkpoint())) AS tli',
  );
  return Number(r.rows[0]!.tli);
}

/** Promotes and returns once the server accepts writes (or throws after timeoutSeconds). */
export async function promote(c: pg.Client, opts: { major: number; dataDir: string; timeoutSeconds?: number }): Promise<void> {
  const timeout = opts.timeoutSeconds ?? 300;
  if (opts.major >= 12) {
    await c.query('SELECT pg_promote(true, $1)', [timeout]);
  } else {
    await run('pg_ctl', ['promote', '-D', opts.dataDir, '-w', '-t', String(timeout)]);
  }
  const deadline = Date.now() + timeout * 1000;
  while (await inRecovery(c)) {
    if (Date.now() > deadline) throw new Error(`the server did not leave recovery within ${timeout} s of the promote request`);
    await sleep(50);
  }
}
