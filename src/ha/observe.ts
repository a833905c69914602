/**
 * The HA agent's observe half: what etcd says (every key under /pgrepl/<cluster>/, in one read)
 * and what this node's postgres is, as facts for decide.ts. Nothing here decides or writes, and
 * nothing here throws on what it observes: etcd not answering is an observation (decide.ts has
 * its rows), and so is a postgres that is down or does not answer. Every call is bounded: the
 * etcd read by the client's deadline (RETRY_TIMEOUT), the local connection and its queries by
 * `timeoutMs`.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type pg from 'pg';
import type { Secret } from '../config/secret.js';
import { isEtcdError, type EtcdClient, type EtcdErrorKind } from '../etcd/index.js';
import { RECOVERY_CONF } from '../layout.js';
import { checkpointRecordEnd } from '../observe/checkpoint-end.js';
import { observePgdata } from '../observe/pgdata.js';
import { currentTimeline, inRecovery } from '../postgres/promote.js';
import { converse } from '../postgres/replication.js';
import { walReceiver, walSenders } from '../postgres/server-state.js';
import { decodeKeys, haKeys, type DecodedKeys } from './keys.js';
import type { LocalPostgres } from './types.js';

// ---------------------------------------------------------------------------------------------
// etcd

/**
 * One read of the keys: what decide.ts takes as HaObservation['etcd'] (assignable to it as it is), plus what act needs for its
 * transactions (mod revisions) and what the loop logs (keys that could not be read).
 */
export type EtcdObservation =
  | ({ ok: true } & DecodedKeys)
  | { ok: false; error: string; kind: EtcdErrorKind };

/**
 * Every key under `prefix` (HaConfig.keyPrefix) in ONE range request, so the keys are one
 * consistent snapshot (one store revision). The read is linearizable, etcd v3's default for a
 * range (not `serializable`): it goes through the raft leader (ReadIndex), so it sees every write
 * acknowledged before it started, and a member cut off from its quorum cannot answer it from a
 * stale copy. The client sends `hasleader` and tries each endpoint within its deadline
 * (`timeoutMs`, default the client's RETRY_TIMEOUT): without a quorum the answer is
 * `{ ok: false }` within that bound, never a hang.
 */
export async function observeKeys(etcd: EtcdClient, prefix: string, options: { timeoutMs?: number; signal?: AbortSignal } = {}): Promise<EtcdObservation> {
  const names = haKeys(prefix);
  try {
    const read = await etcd.range(names.prefix, { prefix: true, ...options });
    return { ok: true, ...decodeKeys(names, read.kvs, read.revision) };
  } catch (err) {
    if (isEtcdError(err)) return { ok: false, error: err.message, kind: err.kind };
    throw err; // a bug of ours, not an observation
  }
}

// ---------------------------------------------------------------------------------------------
// This node's postgres

/** How the agent reaches its own postgres: the local Unix socket, as `pgrepl status` does. */
export interface LocalNode {
  pgdata: string;
  socketDir: string;
  port: number;
  user: string;
  password?: Secret | undefined;
  /** The binaries' major version (read once at start: binariesMajor()). */
  major: number;
  /** Bound of the connection, and of all the queries together, each (ms). */
  timeoutMs: number;
}

/**
 * LocalPostgres, and two facts types.ts has no field for: a postgres that runs but does not answer
 * (starting up, in crash recovery, shutting down, stalled), and a standby's walreceiver (whether
 * it streams, and from where: `following` says only what primary_conninfo names).
 */
export interface ObservedPostgres extends LocalPostgres {
  /** running, but the connection or a query failed: why (running is true: do not start another). */
  notAnswering?: string;
  /** A running standby's walreceiver; absent when none runs (not connected to any upstream). */
  walReceiver?: { status: string; from?: string };
}

/** Errors of a connection that mean no server is there at all: nothing listens on the socket. */
const NOBODY_THERE = new Set(['ENOENT', 'ECONNREFUSED']);

/**
 * This node's postgres: PGDATA as it is on disk, then (a cluster there) what the running server
 * says over the local socket. Down: running false, the timeline PGDATA's (its kind and system
 * identifier are in `pgdata`), and for a primary's cluster shut down cleanly, where its shutdown
 * checkpoint ends. Not set here: `slotOnLeader` (asked on the leader), `demoted` and
 * `synchronous.changedAt` (the agent's own memory).
 */
export async function observeLocal(n: LocalNode): Promise<ObservedPostgres> {
  const pgdata = await observePgdata(n.pgdata);
  // No cluster here: whatever answers on this socket is not this PGDATA's server.
  if (pgdata.kind !== 'cluster') return { pgdata, major: n.major, running: false, replication: [], synchronous: { standbys: [] } };
  const down: ObservedPostgres = { pgdata, major: n.major, running: false, timeline: pgdata.timeline, replication: [], synchronous: { standbys: [] } };
  const config = { host: n.socketDir, port: n.port, user: n.user, password: n.password?.reveal(), database: 'postgres', application_name: 'pgrepl' };
  try {
    return await converse(config, { connectMs: n.timeoutMs, queryMs: n.timeoutMs }, (c) => running(c, n, down));
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code !== undefined && NOBODY_THERE.has(code)) return withShutdownEnd(down, n.pgdata);
    return { ...down, running: true, notAnswering: (err as Error).message };
  }
}

/** A primary's cluster that was stopped cleanly: where its shutdown checkpoint ends (a standby that received it has everything). */
async function withShutdownEnd(down: ObservedPostgres, pgdata: string): Promise<ObservedPostgres> {
  const c = down.pgdata.kind === 'cluster' ? down.pgdata : undefined;
  if (!c || c.standby || c.state !== 'shut down' || c.swapPending) return down;
  const end = await checkpointRecordEnd(pgdata, c.timeline);
  return end === undefined ? down : { ...down, shutdownEnd: end };
}

async function running(c: pg.Client, n: LocalNode, down: ObservedPostgres): Promise<ObservedPostgres> {
  const standby = await inRecovery(c);
  // A standby whose walreceiver does not run (its primary just died) reports the timeline of its
  // last restartpoint, which may be older than the one it replays: the newest timeline whose
  // history file it holds counts too, as for a stopped cluster (ClusterFound.timeline).
  const timeline = standby ? Math.max(await currentTimeline(c), down.timeline ?? 0) : await currentTimeline(c);
  const base = { ...down, running: true, inRecovery: standby, timeline };
  if (!standby) {
    const r = (await c.query("SELECT pg_current_wal_lsn()::text AS w, current_setting('synchronous_standby_names') AS s")).rows[0];
    const senders = await walSenders(c, false);
    return {
      ...base,
      writeLsn: r.w,
      replication: senders.map((s) => ({ name: s.name, state: s.state, ...(s.flushLsn !== null && { flushLsn: s.flushLsn }) })),
      synchronous: { standbys: requiredStandbys(r.s) },
    };
  }
  const r = (await c.query('SELECT pg_last_wal_receive_lsn()::text AS rcv, pg_last_wal_replay_lsn()::text AS rep')).rows[0];
  const receiver = await walReceiver(c);
  const conninfo = n.major >= 12
    ? ((await c.query("SELECT current_setting('primary_conninfo') AS v")).rows[0].v as string)
    : await recoveryConfConninfo(n.pgdata);
  const following = conninfoAddress(conninfo);
  return {
    ...base,
    ...(r.rcv !== null && { receivedLsn: r.rcv }),
    ...(r.rep !== null && { replayedLsn: r.rep }),
    ...(following !== undefined && { following }),
    ...(receiver && { walReceiver: { status: receiver.status, ...(receiver.host && receiver.port !== null && { from: `${receiver.host}:${receiver.port}` }) } }),
  };
}

/** PostgreSQL 11 and older: primary_conninfo from recovery.conf ('' when there is none). */
async function recoveryConfConninfo(pgdata: string): Promise<string> {
  const text = await readFile(join(pgdata, RECOVERY_CONF), 'utf8').catch(() => '');
  const m = /^\s*primary_conninfo\s*=\s*'((?:[^'\\]|''|\\.)*)'/m.exec(text);
  return m ? m[1]!.replace(/''/g, "'").replace(/\\(.)/g, '$1') : '';
}

/**
 * host:port a libpq connection string names (`key=value`, values quoted '...' with \' and \\), or
 * undefined when it names no host. Only these two keys are kept: the rest may hold a password.
 */
export function conninfoAddress(conninfo: string): string | undefined {
  const pairs = new Map<string, string>();
  const re = /\s*([A-Za-z_]+)\s*=\s*(?:'((?:[^'\\]|\\.)*)'|(\S*))/gy;
  for (let m = re.exec(conninfo); m; m = re.exec(conninfo)) pairs.set(m[1]!, m[2] !== undefined ? m[2].replace(/\\(.)/g, '$1') : m[3]!);
  const host = pairs.get('host') || pairs.get('hostaddr');
  return host ? `${host}:${pairs.get('port') || '5432'}` : undefined;
}

/**
 * The standbys synchronous_standby_names requires, every one of which acknowledges every commit:
 * all the names when as many are required as listed (FIRST k / ANY k of k names, or one name);
 * ['*'] when it allows any standby (as the start-up writes it); [] when none is required in
 * particular (FIRST k of more names: a listed one that drops out is replaced by the next, which
 * lacks what was committed meanwhile; ANY k of more), or the setting is empty.
 */
export function requiredStandbys(setting: string): string[] {
  const s = setting.trim();
  if (s === '') return [];
  const m = /^(?:(?:FIRST|ANY)\s+)?(\d+)\s*\((.*)\)$/is.exec(s);
  const k = m ? Number(m[1]) : 1;
  const listed = (m ? m[2]! : s).split(',').map((x) => x.trim()).filter(Boolean).map((x) => (/^".*"$/.test(x) ? x.slice(1, -1).replace(/""/g, '"') : x));
  if (listed.includes('*')) return ['*'];
  return k >= listed.length ? listed : [];
}
