/**
 * The replication protocol, spoken as a standby speaks it: a physical replication connection as
 * the pgrepl role, with the password derived from the token. Used to observe an upstream
 * (IDENTIFY_SYSTEM, its version) and to manage this node's slot on it.
 */
import type pg from 'pg';
import type { Secret } from '../config/secret.js';
import { REPLICATION_USER } from '../config/token.js';
import { loadPg } from './client.js';

export interface ReplicationTarget {
  host: string;
  port: number;
  password: Secret;
  applicationName: string;
}

export async function withReplicationClient<T>(t: ReplicationTarget, fn: (c: pg.Client) => Promise<T>, timeoutMs = 5000): Promise<T> {
  const { Client } = await loadPg();
  const client = new Client({
    host: t.host,
    port: t.port,
    user: REPLICATION_USER,
    password: t.password.reveal(),
    database: 'replication',
    application_name: t.applicationName,
    connectionTimeoutMillis: timeoutMs,
    replication: true,
  } as pg.ClientConfig);
  client.on('error', () => undefined); // a dropped connection surfaces through the query instead
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end().catch(() => undefined);
  }
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

/** CHECKPOINT on the upstream as the pgrepl role (a member of pg_checkpoint on 15+); false if refused. */
export async function checkpoint(t: ReplicationTarget): Promise<boolean> {
  return (await asReplicationUser(t, async (c) => (await c.query('CHECKPOINT'), true))) ?? false;
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

/** An ordinary SQL connection to the postgres database as pgrepl; undefined if it fails. */
async function asReplicationUser<T>(t: ReplicationTarget, fn: (c: pg.Client) => Promise<T>): Promise<T | undefined> {
  const { Client } = await loadPg();
  const client = new Client({
    host: t.host, port: t.port, user: REPLICATION_USER, password: t.password.reveal(), database: 'postgres',
    application_name: t.applicationName, connectionTimeoutMillis: 5000,
  });
  client.on('error', () => undefined);
  try {
    await client.connect();
    return await fn(client);
  } catch {
    return undefined;
  } finally {
    await client.end().catch(() => undefined);
  }
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
