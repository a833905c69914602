/**
 * The replication protocol, spoken as a standby speaks it: a physical replication connection as
 * the pgrepl role, with the password derived from the token. Used to observe an upstream
 * (IDENTIFY_SYSTEM, its version) and to manage this node's slot on it.
 */
import { Socket } from 'node:net';
import type pg from 'pg';
import type { Config } from '../config/env.js';
import type { Secret } from '../config/secret.js';
import { REPLICATION_USER } from '../config/token.js';
import type { HostPort } from '../config/validators.js';
import { loadPg } from './client.js';
import { clientTls, pgSsl, type ClientTls } from './tls.js';

export interface ReplicationTarget {
  host: string;
  port: number;
  password: Secret;
  applicationName: string;
  /** TLS (PGREPL_TLS_*), as a standby connects; undefined: none. replicationTarget() sets it from the configuration. */
  tls?: ClientTls | undefined;
}

/** How this node reaches an upstream or peer as pgrepl: its password and TLS, named as this node (or as `applicationName`). */
export function replicationTarget(cfg: Config, at: HostPort, applicationName = cfg.nodeName): ReplicationTarget {
  return { host: at.host, port: at.port, password: cfg.replicationPassword, applicationName, tls: clientTls(cfg.tls) };
}

/**
 * How long one conversation with an upstream or peer may take. A server that accepts the TCP
 * connection and then stalls (a frozen machine, a half-dead network path, a SIGSTOPped postmaster)
 * must count as not answering, as an unreachable one does, instead of hanging a start.
 */
export interface Patience {
  /** From the TCP connect until the server is ready for queries (authenticated). */
  connectMs: number;
  /** For everything asked once connected; also the server's statement_timeout. 0: no bound (a connection held open while another program works, see steps/clone.ts). */
  queryMs: number;
}

/** Probes and slot commands: small questions that a healthy server answers at once. */
export const PROBE_PATIENCE: Patience = { connectMs: 5000, queryMs: 10_000 };
/** An immediate CHECKPOINT writes every dirty buffer, which takes a while on a busy server. */
export const CHECKPOINT_PATIENCE: Patience = { connectMs: 5000, queryMs: 120_000 };

const seconds = (ms: number) => `${ms / 1000} s`;

/**
 * Connects, runs fn and closes, each step bounded at the socket: when a bound passes, the socket
 * is destroyed with an error that says which step got no answer, and that error is what the
 * pending connect or query throws. Closing is bounded too (a stalled server never acknowledges
 * the goodbye).
 */
export async function converse<T>(config: pg.ClientConfig, p: Patience, fn: (c: pg.Client) => Promise<T>): Promise<T> {
  const { Client } = await loadPg();
  const socket = new Socket();
  const client = new Client({ ...config, stream: () => socket, statement_timeout: p.queryMs });
  client.on('error', () => undefined); // a destroyed socket surfaces through the pending connect or query
  const bound = (ms: number, why: () => string) =>
    setTimeout(() => socket.destroy(new Error(`no answer within ${seconds(ms)} ${why()}`)), ms);
  let timer = bound(p.connectMs, () => (socket.connecting ? '(the TCP connection was not accepted)' : '(the connection was accepted, the login not answered)'));
  try {
    await client.connect();
    clearTimeout(timer);
    if (p.queryMs > 0) timer = bound(p.queryMs, () => '(the login was answered, a query was not)');
    return await fn(client);
  } finally {
    clearTimeout(timer);
    await new Promise<void>((done) => {
      const closing = setTimeout(done, 1000);
      void client.end().catch(() => undefined).finally(() => (clearTimeout(closing), done()));
    });
    socket.destroy();
  }
}

/** A physical replication connection as pgrepl. timeoutMs bounds the connect, queryTimeoutMs what fn asks. */
export function withReplicationClient<T>(
  t: ReplicationTarget, fn: (c: pg.Client) => Promise<T>, timeoutMs = PROBE_PATIENCE.connectMs, queryTimeoutMs = PROBE_PATIENCE.queryMs,
): Promise<T> {
  return converse(
    {
      host: t.host, port: t.port, user: REPLICATION_USER, password: t.password.reveal(), database: 'replication',
      application_name: t.applicationName, replication: true, ssl: pgSsl(t.tls),
    } as pg.ClientConfig,
    { connectMs: timeoutMs, queryMs: queryTimeoutMs },
    fn,
  );
}

export interface SystemIdentity {
  systemIdentifier: string;
  timeline: number;
  /** server_version_num / 10000, e.g. 15. */
  major: number;
}

export async function identifySystem(c: pg.Client): Promise<SystemIdentity> {
  const id = (await c.query('IDENTIFY_SYSTEM')).rows[0] as { systemid: string; timeline: string | number };
  const ver = (await c.query('SHOW server_version_num')).rows[0] as { server_version_num: string };
  const num = Number(ver.server_version_num);
  return {
    systemIdentifier: String(id.systemid),
    timeline: Number(id.timeline),
    major: num >= 100000 ? Math.floor(num / 10000) : Math.floor(num / 100) / 100,
  };
}

/**
 * Whether a slot exists, read over an ordinary connection to the postgres database (the
 * replication protocol only gained READ_REPLICATION_SLOT in 15). undefined if that connection is
 * not allowed: the caller then just tries to create the slot.
 */
export function slotExists(t: ReplicationTarget, name: string): Promise<boolean | undefined> {
  return asReplicationUser(t, async (c) => ((await c.query('SELECT 1 FROM pg_replication_slots WHERE slot_name = $1', [name])).rowCount ?? 0) > 0);
}

export type OldSlotOutcome = 'dropped' | 'absent' | 'active' | 'unreachable';

/**
 * Drops the slot `name` on a server this node no longer streams from, unless a walsender uses
 * it: an active slot is someone's (this node's old walsender not gone yet, or another node of the
 * same name), and only postgres's own check (55006) decides that race. 'unreachable' if the
 * server cannot be asked.
 */
export async function dropInactiveSlot(t: ReplicationTarget, name: string): Promise<OldSlotOutcome> {
  const outcome = await asReplicationUser(t, async (c): Promise<OldSlotOutcome> => {
    const slot = (await c.query<{ active: boolean }>('SELECT active FROM pg_replication_slots WHERE slot_name = $1', [name])).rows[0];
    if (!slot) return 'absent';
    if (slot.active) return 'active';
    try {
      await c.query('SELECT pg_drop_replication_slot($1)', [name]);
      return 'dropped';
    } catch (err) {
      const code = (err as { code?: string }).code;
      if (code === '55006') return 'active'; // taken since we looked
      if (code === '42704') return 'absent'; // dropped since we looked
      throw err;
    }
  });
  return outcome ?? 'unreachable';
}

/**
 * Whether a server is in recovery (a standby), asked over an ordinary connection as pgrepl:
 * IDENTIFY_SYSTEM does not tell a standby from a primary. undefined if that connection fails.
 */
export function serverInRecovery(t: ReplicationTarget): Promise<boolean | undefined> {
  return asReplicationUser(t, async (c) => (await c.query<{ r: boolean }>('SELECT pg_is_in_recovery() AS r')).rows[0]!.r);
}

/**
 * How far the upstream's WAL reaches, as an LSN: a primary's current write position, a
 * (cascading) standby's received position, which is what it can send on. Asked as pgrepl over an
 * ordinary connection; undefined if that fails.
 */
export function upstreamWalPosition(t: ReplicationTarget): Promise<string | undefined> {
  return asReplicationUser(t, async (c) =>
    String((await c.query(`SELECT (CASE WHEN pg_is_in_recovery() THEN coalesce(pg_last_wal_receive_lsn(), pg_last_wal_replay_lsn())
      ELSE pg_current_wal_lsn() END)::text AS lsn`)).rows[0]!.lsn));
}

/** An ordinary SQL connection to the postgres database as pgrepl; undefined if it fails or stalls. */
export async function asReplicationUser<T>(t: ReplicationTarget, fn: (c: pg.Client) => Promise<T>, p: Patience = PROBE_PATIENCE): Promise<T | undefined> {
  const config = {
    host: t.host, port: t.port, user: REPLICATION_USER, password: t.password.reveal(), database: 'postgres', application_name: t.applicationName,
    ssl: pgSsl(t.tls),
  };
  return converse(config, p, fn).catch(() => undefined);
}

const quoteName = (name: string) => `"${name.replace(/"/g, '""')}"`;

/** Creates a physical slot that reserves WAL from now; false if it already existed. */
export async function createPhysicalSlot(c: pg.Client, name: string): Promise<boolean> {
  try {
    await c.query(`CREATE_REPLICATION_SLOT ${quoteName(name)} PHYSICAL RESERVE_WAL`);
    return true;
  } catch (err) {
    if ((err as { code?: string }).code === '42710') return false; // duplicate_object
    throw err;
  }
}

/** Drops a slot if it exists. Throws with code 55006 if a walsender is using it. */
export async function dropSlotIfExists(c: pg.Client, name: string): Promise<boolean> {
  try {
    await c.query(`DROP_REPLICATION_SLOT ${quoteName(name)}`);
    return true;
  } catch (err) {
    if ((err as { code?: string }).code === '42704') return false; // undefined_object
    throw err;
  }
}

/**
 * Creates a physical slot that reserves WAL from now until this connection ends, which drops it;
 * false if a slot of that name exists.
 */
export async function createTemporaryPhysicalSlot(c: pg.Client, name: string): Promise<boolean> {
  try {
    await c.query(`CREATE_REPLICATION_SLOT ${quoteName(name)} TEMPORARY PHYSICAL RESERVE_WAL`);
    return true;
  } catch (err) {
    if ((err as { code?: string }).code === '42710') return false; // duplicate_object
    throw err;
  }
}
