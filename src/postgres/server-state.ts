/**
 * What a running server says about its replication, read over a connection the caller holds:
 * shared by `pgrepl status` (cli/status.ts) and the HA agent's observation (ha/observe.ts), so both
 * read the same views the same way. Reads only.
 */
import type pg from 'pg';

/** A standby's walreceiver: its status ('streaming', 'catchup', ...) and the server it is connected to. */
export interface WalReceiver {
  host: string | null;
  port: number | null;
  status: string;
}

/** pg_stat_wal_receiver's row, or null when no walreceiver runs (a primary, or a standby not connected). */
export async function walReceiver(c: pg.Client): Promise<WalReceiver | null> {
  const r = (await c.query('SELECT status, sender_host, sender_port FROM pg_stat_wal_receiver')).rows[0];
  return r ? { host: r.sender_host, port: r.sender_port === null ? null : Number(r.sender_port), status: r.status } : null;
}

/** One walsender: a standby (or a base backup) connected to this server. */
export interface WalSender {
  name: string;
  address: string | null;
  state: string;
  sync: string;
  /** What it has flushed (null while it has not said). */
  flushLsn: string | null;
  /** This server's position (replay on a standby, write on a primary) minus its replay. */
  replayLagBytes: number | null;
  replayLagSeconds: number | null;
}

/** pg_stat_replication, by application_name; `standby`: this server is in recovery (lag counts from its replay position). */
export async function walSenders(c: pg.Client, standby: boolean): Promise<WalSender[]> {
  const position = standby ? 'pg_last_wal_replay_lsn()' : 'pg_current_wal_lsn()';
  const rows = (
    await c.query(`SELECT application_name, host(client_addr) AS addr, state, sync_state, flush_lsn::text AS flush_lsn,
      pg_wal_lsn_diff(${position}, replay_lsn)::float8 AS lag_bytes, extract(epoch FROM replay_lag)::float8 AS lag_seconds
      FROM pg_stat_replication ORDER BY application_name, state`)
  ).rows;
  return rows.map((r) => ({
    name: r.application_name, address: r.addr, state: r.state, sync: r.sync_state, flushLsn: r.flush_lsn,
    replayLagBytes: r.lag_bytes === null ? null : Number(r.lag_bytes),
    replayLagSeconds: r.lag_seconds === null ? null : Number(r.lag_seconds),
  }));
}
