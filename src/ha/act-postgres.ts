/**
 * The postgres half of the HA agent's act layer: one function per postgres-side Action of
 * types.ts. What the start-up already knows how to do, it does again through the start-up
 * (startup.ts), configured for the role etcd gave: initdb for the bootstrap race's winner, a clone
 * of the leader, a rewind (else move aside, kept, and clone) toward it, a standby's restart toward
 * it; the start-up's own rows decide which steps, and its hand-over starts postgres as the
 * agent's child instead of execve. The rest are small: start and stop the child, re-point with a
 * reload, promote, checkpoint, synchronous_standby_names.
 *
 * HA mode manages synchronous_standby_names itself (ALTER SYSTEM: it survives restarts, so a
 * primary that crashes keeps waiting for its synchronous standbys), so the start-up's own
 * `ANY n (*)` is left out of pgrepl.conf here.
 */
import { readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Config } from '../config/env.js';
import type { HostPort } from '../config/validators.js';
import { STANDBY_SIGNAL } from '../layout.js';
import { log } from '../log.js';
import type { PostgresChild } from '../handover/postgres-child.js';
import { ident, literal } from '../postgres/client.js';
import { promote as promoteServer } from '../postgres/promote.js';
import { converse, createPhysicalSlot, replicationTarget, withReplicationClient } from '../postgres/replication.js';
import { start } from '../startup.js';
import { serverArgs } from '../steps/server-args.js';
import { readPidFile } from '../steps/temp-server.js';
import { writeNodeSettings } from '../steps/settings.js';
import type { Lsn } from './lsn.js';
import type { LocalNode } from './observe.js';
import type { Action } from './types.js';

/** What the postgres actions need: the node's configuration, its postgres child, how to reach it. */
export interface PgActContext {
  cfg: Config;
  child: PostgresChild;
  /** The user's arguments for postgres (`pgrepl postgres ARGS`). */
  postgresArgs: string[];
  local: LocalNode;
  /** A stop signal the agent received: a start-up in progress ends before its next step. */
  stoppedBy: () => NodeJS.Signals | undefined;
}

/** The Actions this module carries out. */
export type PgAction = Extract<Action, { do: PgActionName }>;
type PgActionName =
  | 'initdb-and-lead' | 'clone-from-leader' | 'rewind-or-reclone' | 'start-postgres' | 'stop-postgres' | 'demote-fast'
  | 'resume-writable' | 'promote' | 'checkpoint' | 'follow-leader' | 'create-slot' | 'set-synchronous-standby-names';

const PG_ACTIONS: ReadonlySet<string> = new Set<PgActionName>([
  'initdb-and-lead', 'clone-from-leader', 'rewind-or-reclone', 'start-postgres', 'stop-postgres', 'demote-fast',
  'resume-writable', 'promote', 'checkpoint', 'follow-leader', 'create-slot', 'set-synchronous-standby-names',
]);

export const isPgAction = (a: Action): a is PgAction => PG_ACTIONS.has(a.do);

/** What an action learnt that the agent remembers or publishes. */
export interface PgActResult {
  /** promote: the timeline it started and where (for the history). */
  promotion?: { timeline: number; lsn: Lsn };
  /** set-synchronous-standby-names: the write position right after the change took effect. */
  syncChangedAt?: Lsn;
}

/** Carries out one postgres-side Action; throws (one line) when it fails. */
export async function actPostgres(ctx: PgActContext, action: PgAction, addressOf: (name: string) => string | undefined): Promise<PgActResult> {
  switch (action.do) {
    case 'initdb-and-lead':
      await startUp(ctx, 'PRIMARY');
      return {};
    case 'clone-from-leader':
      await startUp(ctx, 'STANDBY', parseAddress(action.address), action.moveAside ? 'auto' : undefined);
      return {};
    case 'rewind-or-reclone':
      await ctx.child.stop('fast');
      await startUp(ctx, 'STANDBY', parseAddress(action.address));
      return {};
    case 'start-postgres':
      if (action.as === 'read-only') await writeReadOnly(ctx);
      await startChild(ctx);
      return {};
    case 'stop-postgres':
      await ctx.child.stop('fast');
      return {};
    case 'demote-fast':
      // postgres reads standby.signal only at start: write it first, then stop (sessions killed at once) and start read-only.
      await writeReadOnly(ctx);
      await ctx.child.restart(await postgresArgs(ctx), 'fast');
      await waitReady(ctx);
      return {};
    case 'resume-writable':
      // No standby.signal: postgres replays its own WAL to the end and opens on the same timeline (no promotion).
      await rm(join(ctx.cfg.pgdata, STANDBY_SIGNAL), { force: true });
      await ctx.child.restart(await postgresArgs(ctx), 'fast');
      await waitReady(ctx);
      return {};
    case 'promote':
      return { promotion: await promote(ctx) };
    case 'checkpoint':
      await sql(ctx, 'CHECKPOINT', 120_000);
      return {};
    case 'follow-leader':
      await follow(ctx, parseAddress(action.address), action.how);
      return {};
    case 'create-slot': {
      const address = addressOf(action.on);
      if (!address) throw new Error(`create-slot: ${action.on} has no member key to say where it runs`);
      await createSlotOn(ctx, parseAddress(address));
      return {};
    }
    case 'set-synchronous-standby-names':
      return { syncChangedAt: await setSynchronousStandbyNames(ctx, action.standbys) };
  }
}

/** host:port as a member key publishes it (PGREPL_CONNECT_ADDRESS; an IPv6 host in brackets). */
export function parseAddress(address: string): HostPort {
  const m = /^\[?([^\]]+?)\]?:(\d+)$/.exec(address);
  if (!m) throw new Error(`internal: "${address}" is not host:port`);
  return { host: m[1]!, port: Number(m[2]) };
}

/**
 * The configuration of one start-up run for the role etcd gave: a PRIMARY (the race's winner) or
 * a STANDBY of the leader; no peers (etcd fences), no `ANY n (*)` (see the header). The leader is
 * known to run: waiting long for it would keep the loop from seeing that it died.
 */
export function startupConfig(cfg: Config, role: Config['role'], leader?: HostPort, reclone?: 'auto'): Config {
  return {
    ...cfg,
    role,
    upstream: leader && { host: leader.host, port: leader.port, source: 'the leader key in etcd' },
    peers: [],
    syncStandbys: 0,
    reclone: reclone ?? cfg.reclone,
    upstreamTimeoutSeconds: Math.min(cfg.upstreamTimeoutSeconds, 30),
    ha: undefined,
  };
}

async function startUp(ctx: PgActContext, role: Config['role'], leader?: HostPort, reclone?: 'auto'): Promise<void> {
  await start(startupConfig(ctx.cfg, role, leader, reclone), {
    postgresArgs: ctx.postgresArgs,
    stoppedBy: ctx.stoppedBy,
    handOver: async () => startChild(ctx),
  });
}

/** The user's arguments for postgres, as every start of it gets them (a config_file among them loads pgrepl's settings too). */
const postgresArgs = (ctx: PgActContext): Promise<string[]> => serverArgs(ctx.postgresArgs, ctx.cfg.pgdata);

async function startChild(ctx: PgActContext): Promise<void> {
  await ctx.child.start(await postgresArgs(ctx));
  await waitReady(ctx);
}

/**
 * Until postgres accepts connections, as its postmaster.pid says (line 8: ready, or standby for a
 * hot standby; what pg_ctl -w reads: asking over the socket meanwhile would only fill the log
 * with "the database system is starting up"), it exits, or a minute passes (crash recovery).
 */
async function waitReady(ctx: PgActContext, boundMs = 60_000): Promise<void> {
  const until = Date.now() + boundMs;
  const pid = ctx.child.pid;
  while (pid !== undefined && ctx.child.pid === pid && Date.now() < until) {
    const file = await readPidFile(ctx.cfg.pgdata);
    if (file?.pid === pid && (file.status === 'ready' || file.status === 'standby')) return;
    await new Promise((r) => setTimeout(r, 20));
  }
  if (ctx.child.pid === pid) log.warn(`postgres did not accept connections within ${boundMs / 1000} s of its start; the agent goes on and looks again`);
}

/** Standby mode without an upstream: replays what it has, accepts no writes, follows nobody. */
async function writeReadOnly(ctx: PgActContext): Promise<void> {
  await writeNodeSettings({ cfg: startupConfig(ctx.cfg, 'STANDBY'), major: ctx.local.major, upstream: undefined, replicationAuthMethod: undefined });
  await writeFile(join(ctx.cfg.pgdata, STANDBY_SIGNAL), '', { mode: 0o600 });
}

/** Re-points a standby to the leader: with a reload (13+), or a start-up of the standby toward it. */
async function follow(ctx: PgActContext, leader: HostPort, how: 'reload' | 'restart' | 'start'): Promise<void> {
  if (how === 'reload') {
    // Its slot first: a standby whose primary_slot_name does not exist upstream never streams.
    if (ctx.cfg.slots) await createSlotOn(ctx, leader);
    await writeNodeSettings({ cfg: startupConfig(ctx.cfg, 'STANDBY', leader), major: ctx.local.major, upstream: leader, replicationAuthMethod: undefined });
    await sql(ctx, 'SELECT pg_reload_conf()');
    return;
  }
  await ctx.child.stop('fast');
  await startUp(ctx, 'STANDBY', leader);
}

async function createSlotOn(ctx: PgActContext, on: HostPort): Promise<void> {
  const name = ctx.cfg.nodeName;
  const created = await withReplicationClient(replicationTarget(ctx.cfg, on, name), (c) => createPhysicalSlot(c, name));
  if (created) log.info({ slot: name, on: `${on.host}:${on.port}` }, "created this node's slot on the leader");
}

/** Promotes the running standby; returns the timeline it started and where (from its history file). */
async function promote(ctx: PgActContext): Promise<{ timeline: number; lsn: Lsn }> {
  await converse(localConfig(ctx), { connectMs: 5000, queryMs: 0 }, (c) => promoteServer(c, { major: ctx.local.major, dataDir: ctx.cfg.pgdata, timeoutSeconds: 60 }));
  const timeline = Number((await sql(ctx, "SELECT ('x' || substr(pg_walfile_name(pg_current_wal_lsn()), 1, 8))::bit(32)::int AS t")).t);
  const history = await readFile(join(ctx.cfg.pgdata, 'pg_wal', `${timeline.toString(16).toUpperCase().padStart(8, '0')}.history`), 'utf8');
  return { timeline, lsn: switchPoint(history) };
}

/** The last line of a timeline history file: "<parent timeline>\t<switch LSN>\t<reason>". */
export function switchPoint(history: string): Lsn {
  const lines = history.split('\n').map((l) => l.trim()).filter((l) => l && !l.startsWith('#'));
  const m = /^\d+\s+([0-9A-Fa-f]+\/[0-9A-Fa-f]+)/.exec(lines[lines.length - 1] ?? '');
  if (!m) throw new Error('the new timeline history file names no switch point');
  return m[1]! as Lsn;
}

/**
 * synchronous_standby_names = FIRST n (all n names): each of them acknowledges every commit
 * (sync.ts); ['*'] is ANY n (*). Returns the write position once the change has taken effect: a new session sees it
 * (the reload reached the postmaster, and through it every process).
 */
async function setSynchronousStandbyNames(ctx: PgActContext, standbys: string[]): Promise<Lsn> {
  // ['*']: any n of the standbys that stream (right after a promotion, decide.ts); otherwise all of those named.
  const value = standbys.length === 0 ? '' : standbys.includes('*') ? `ANY ${Math.max(1, ctx.cfg.syncStandbys)} (*)` : `FIRST ${standbys.length} (${standbys.map(ident).join(', ')})`;
  await sql(ctx, `ALTER SYSTEM SET synchronous_standby_names = ${literal(value)}`);
  await sql(ctx, 'SELECT pg_reload_conf()');
  for (let i = 0; i < 50; i++) {
    // On a standby about to be promoted (decide.ts promotion()) there is no write position yet: its replay position.
    const now = await sql(ctx, "SELECT current_setting('synchronous_standby_names') AS s, (CASE WHEN pg_is_in_recovery() THEN pg_last_wal_replay_lsn() ELSE pg_current_wal_lsn() END)::text AS w");
    if (now.s === value) {
      log.info({ synchronous_standby_names: value }, 'synchronous_standby_names changed');
      return now.w as Lsn;
    }
    await new Promise((r) => setTimeout(r, 20));
  }
  throw new Error(`synchronous_standby_names did not take the value ${value} after a reload`);
}

const localConfig = (ctx: PgActContext) => ({
  host: ctx.local.socketDir, port: ctx.local.port, user: ctx.local.user, password: ctx.local.password?.reveal(), database: 'postgres', application_name: 'pgrepl',
});

/** One statement on the local server, bounded; its first row. */
async function sql(ctx: PgActContext, text: string, queryMs = 5000): Promise<Record<string, unknown>> {
  return converse(localConfig(ctx), { connectMs: 2000, queryMs }, async (c) => (await c.query(text)).rows[0] ?? {});
}
