/** `pgrepl status [--json]`: this node's role, timeline, upstream and lag; its standbys and slots. */
import { execFile } from 'node:child_process';
import { readdir, statfs } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type pg from 'pg';
import type { Config } from '../config/env.js';
import { ASIDE_PARENT, ASIDE_PREFIX } from '../layout.js';
import { readControlData } from '../observe/control-file.js';
import { hostPort } from '../plan/upstream.js';
import { currentTimeline, inRecovery } from '../postgres/promote.js';
import { replicationTarget, upstreamWalPosition } from '../postgres/replication.js';
import { walReceiver, walSenders } from '../postgres/server-state.js';
import { readNodeState } from '../state/node-state.js';
import { temporarySlotName } from '../steps/clone.js';
import { parseArgs, print, withNode, nodeConfig, type Command } from './local.js';
import { COMMAND_HELP } from './help.js';

export interface NodeStatus {
  role: 'primary' | 'standby';
  timeline: number;
  upstream: { host: string | null; port: number | null; status: string } | null;
  /** A standby's own backlog: received but not yet replayed. */
  lag: { bytes: number; seconds: number } | null;
  /**
   * A standby's distance to its upstream: the upstream's WAL position (asked there) minus this
   * node's replay position. null on a primary, or when the upstream cannot be asked.
   */
  behindUpstream?: { bytes: number } | null;
  /**
   * The walsenders on this node. state 'cloning': a node whose base backup is running (then
   * walsender says which part of it this row is: backup, streaming, startup).
   */
  standbys: {
    name: string; address: string | null; state: string; sync: string; walsender?: string;
    replayLagBytes: number | null; replayLagSeconds: number | null;
  }[];
  /** retainedBytes: WAL kept for the slot (this node's position minus its restart_lsn). */
  slots: { name: string; active: boolean; restartLsn: string | null; walStatus: string | null; retainedBytes: number | null }[];
  /** A standby configured as PRIMARY that fencing keeps following this peer (host:port). */
  fencedTo?: string | null;
  /**
   * Data moved aside earlier (a former primary that could not be rewound, another system's
   * standby with PGREPL_RECLONE=auto): kept in PGDATA until someone removes it, so say so.
   */
  keptCopies?: { path: string; kB: number | null }[];
  /** Set when the kept copies take more than KEPT_SHARE_WARN of the filesystem PGDATA is on. */
  keptCopiesWarning?: string | null;
}

/** Kept copies above this share of PGDATA's filesystem are worth a warning: they crowd out the live data. */
export const KEPT_SHARE_WARN = 0.25;

/** A warning when the kept copies' total size is above KEPT_SHARE_WARN of the volume's size (both in kB). */
export function keptCopiesWarning(keptKb: number, volumeKb: number): string | null {
  if (!(volumeKb > 0) || keptKb / volumeKb <= KEPT_SHARE_WARN) return null;
  const pct = Math.round((keptKb / volumeKb) * 100);
  return `kept copies take ${pct}% of the volume PGDATA is on (${keptKb} kB of ${volumeKb} kB): once you have checked them, remove the ones you no longer need, before the live data runs out of space`;
}

/** The peer this node was fenced into following, from its state file (null if none, or unreadable). */
async function fencedTo(cfg: Config): Promise<string | null> {
  try {
    const control = await readControlData(cfg.pgdata);
    if (!control) return null;
    const { state } = await readNodeState(cfg.pgdata, { node: cfg.nodeName, systemIdentifier: control.systemIdentifier });
    return state?.fenced ? hostPort(state.fenced) : null;
  } catch {
    return null;
  }
}

/**
 * Asks the upstream the walreceiver is connected to (else the configured one) how far its WAL
 * reaches, then this node how far it has replayed. Read one after the other, so a busy primary
 * is a little ahead of the snapshot: a few kB under load is sampling skew.
 */
async function behindUpstream(cfg: Config, s: NodeStatus): Promise<{ bytes: number } | null> {
  const target = s.upstream?.host && s.upstream.port ? { host: s.upstream.host, port: s.upstream.port } : cfg.upstream;
  if (!target) return null;
  const lsn = await upstreamWalPosition(replicationTarget(cfg, target));
  if (!lsn) return null;
  const bytes = await withNode(cfg, async (c) =>
    Number((await c.query('SELECT pg_wal_lsn_diff($1::pg_lsn, pg_last_wal_replay_lsn())::float8 AS b', [lsn])).rows[0].b));
  return { bytes: Math.max(0, bytes) };
}

async function keptCopies(pgdata: string): Promise<{ path: string; kB: number | null }[]> {
  const dir = join(pgdata, ASIDE_PARENT);
  const names = (await readdir(dir).catch(() => [] as string[])).filter((e) => e.startsWith(ASIDE_PREFIX)).sort();
  return Promise.all(
    names.map(async (name) => {
      const path = join(dir, name);
      // du rather than a walk in Node: a kept copy is a whole cluster, thousands of files.
      const kB = await promisify(execFile)('du', ['-sk', path]).then((r) => Number(r.stdout.split('\t')[0]), () => null);
      return { path, kB: Number.isFinite(kB) ? kB : null };
    }),
  );
}

export async function readStatus(c: pg.Client): Promise<NodeStatus> {
  const standby = await inRecovery(c);
  const timeline = await currentTimeline(c);
  let upstream: NodeStatus['upstream'] = null;
  let lag: NodeStatus['lag'] = null;
  if (standby) {
    upstream = (await walReceiver(c)) ?? { host: null, port: null, status: 'not connected' };
    const l = (
      await c.query(`SELECT coalesce(pg_wal_lsn_diff(pg_last_wal_receive_lsn(), pg_last_wal_replay_lsn()), 0)::float8 AS bytes,
        CASE WHEN pg_last_wal_receive_lsn() IS NULL OR pg_last_wal_receive_lsn() = pg_last_wal_replay_lsn() THEN 0
             ELSE coalesce(extract(epoch FROM now() - pg_last_xact_replay_timestamp()), 0) END::float8 AS seconds`)
    ).rows[0];
    lag = { bytes: Math.max(0, Number(l.bytes)), seconds: Math.max(0, Number(l.seconds)) };
  }
  const position = standby ? 'pg_last_wal_replay_lsn()' : 'pg_current_wal_lsn()';
  const senders = await walSenders(c, standby);
  // A node that clones has a base backup running: its rows (the backup, pg_basebackup's WAL
  // stream, the connection that made its slot) are one copy in the making, not a standby.
  const cloning = new Set(senders.filter((r) => r.state === 'backup').map((r) => r.name));
  const standbys = senders.map(({ flushLsn: _, ...r }) => ({
    ...r, state: cloning.has(r.name) ? 'cloning' : r.state,
    ...(cloning.has(r.name) ? { walsender: r.state } : {}),
  }));
  const walStatus = (await c.query("SELECT 1 FROM pg_attribute WHERE attrelid = 'pg_replication_slots'::regclass AND attname = 'wal_status'")).rowCount
    ? 'wal_status' : 'NULL::text';
  const slots = (
    await c.query(`SELECT slot_name, active, restart_lsn::text AS restart_lsn, ${walStatus} AS wal_status,
      pg_wal_lsn_diff(${position}, restart_lsn)::float8 AS retained
      FROM pg_replication_slots WHERE slot_type = 'physical' ORDER BY slot_name`)
  ).rows.map((r) => ({
    name: r.slot_name, active: r.active, restartLsn: r.restart_lsn, walStatus: r.wal_status,
    retainedBytes: r.retained === null ? null : Math.max(0, Number(r.retained)),
  }));
  return { role: standby ? 'standby' : 'primary', timeline, upstream, lag, standbys, slots };
}

function render(s: NodeStatus): string[] {
  const lines = [`role: ${s.role}`, `timeline: ${s.timeline}`];
  if (s.upstream) lines.push(`upstream: ${s.upstream.host ?? '-'}:${s.upstream.port ?? '-'} (${s.upstream.status})`);
  if (s.fencedTo) lines.push(`fenced: configured as PRIMARY, kept a standby of ${s.fencedTo} (PGREPL_FENCE=rejoin); pgrepl promote makes it a primary`);
  if (s.lag) lines.push(`replay lag: ${s.lag.bytes} bytes, ${s.lag.seconds.toFixed(1)} s`);
  if (s.behindUpstream !== undefined) lines.push(`behind upstream: ${s.behindUpstream ? `${s.behindUpstream.bytes} bytes` : 'unknown (the upstream cannot be asked)'}`);
  lines.push(s.standbys.length === 0 ? 'standbys: none' : 'standbys:');
  const part: Record<string, string> = { backup: 'the base backup', streaming: 'its WAL stream', catchup: 'its WAL stream', startup: 'the connection that made its slot' };
  for (const d of s.standbys) {
    lines.push(d.state === 'cloning'
      ? `  ${d.name} ${d.address ?? 'local'} cloning (${part[d.walsender!] ?? d.walsender}): not a standby until its clone has started`
      : `  ${d.name} ${d.address ?? 'local'} ${d.state} ${d.sync} replay lag ${d.replayLagBytes ?? '-'} bytes`);
  }
  if (s.keptCopies?.length) {
    lines.push('kept copies (data moved aside, never removed by pgrepl; delete one once you no longer need it):');
    for (const k of s.keptCopies) lines.push(`  ${k.path} ${k.kB === null ? '' : `${k.kB} kB`}`.trimEnd());
    if (s.keptCopiesWarning) lines.push(`warning: ${s.keptCopiesWarning}`);
  }
  lines.push(s.slots.length === 0 ? 'slots: none' : 'slots:');
  const cloning = s.standbys.filter((d) => d.state === 'cloning').map((d) => d.name);
  for (const sl of s.slots) {
    const retained = sl.retainedBytes === null ? '' : `, retains ${sl.retainedBytes} bytes of WAL`;
    // An inactive slot keeps its WAL until its node comes back, or it is dropped: a node gone for
    // good fills the disk (PGREPL_SLOT_MAX_WAL caps it on 13+). A cloning node's is in use.
    const hint = cloning.some((n) => sl.name === n || sl.name === temporarySlotName(n))
      ? ' (keeps the WAL of the clone in progress)'
      : sl.active ? '' : ` (kept until its node reconnects; if it is gone for good: SELECT pg_drop_replication_slot('${sl.name}'))`;
    lines.push(`  ${sl.name} ${sl.active ? 'active' : 'inactive'} restart_lsn ${sl.restartLsn ?? '-'}${sl.walStatus ? ` wal ${sl.walStatus}` : ''}${retained}${hint}`);
  }
  return lines;
}

const USAGE = COMMAND_HELP.status.usage;

export const status: Command = {
  async run(args) {
    const a = parseArgs(args, { flags: ['json'] }, USAGE);
    const cfg = nodeConfig();
    const s = await withNode(cfg, readStatus);
    s.fencedTo = s.role === 'standby' && cfg.role === 'PRIMARY' ? await fencedTo(cfg) : null;
    if (s.role === 'standby') s.behindUpstream = await behindUpstream(cfg, s);
    s.keptCopies = await keptCopies(cfg.pgdata);
    const volume = await statfs(cfg.pgdata).then((f) => (f.blocks * f.bsize) / 1024, () => 0);
    s.keptCopiesWarning = keptCopiesWarning(s.keptCopies.reduce((sum, k) => sum + (k.kB ?? 0), 0), volume);
    if (a.flags.has('json')) print(JSON.stringify(s));
    else render(s).forEach(print);
    return 0;
  },
};
