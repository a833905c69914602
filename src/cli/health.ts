/**
 * `pgrepl health [--primary|--standby] [--max-lag BYTES]`, for HEALTHCHECK and Marathon COMMAND
 * checks. Exit 0 healthy, 1 unhealthy, 2 starting: a node that is still waiting for its upstream,
 * cloning, rewinding or recovering is not dead, and an orchestrator that killed it would only make
 * it start over. Asked about a standby (--standby, --max-lag), it also wants the standby streaming,
 * and not more than --max-lag bytes behind its upstream.
 */
import type pg from 'pg';
import type { Config } from '../config/env.js';
import { UserError } from '../errors.js';
import { inRecovery } from '../postgres/promote.js';
import { replicationTarget, upstreamWalPosition } from '../postgres/replication.js';
import { readPhase } from '../state/phase.js';
import { EXIT_USAGE, nodeConfig, parseArgs, print, withNode, type Command } from './local.js';
import { COMMAND_HELP } from './help.js';

export const HEALTHY = 0;
export const UNHEALTHY = 1;
export const STARTING = 2;

type Verdict = [number, string];

/**
 * A standby is healthy while it streams and its replay is at most maxLag bytes behind what its
 * upstream has (asked there, as pgrepl status does; else the last end of WAL the upstream
 * reported to the walreceiver). Received but unreplayed WAL counts: reads see only what is
 * replayed. Not streaming, it is unhealthy once it has gone PGREPL_HEALTH_STREAM_GRACE seconds
 * without WAL arriving, counted from the server's start at the earliest. That time comes from
 * postgres alone (the walreceiver's last message, the newest file in pg_wal), so a check that
 * runs once, or an upstream that restarts, needs no memory of earlier checks.
 */
async function standbyVerdict(c: pg.Client, cfg: Config, maxLag: number | undefined): Promise<Verdict> {
  const w = (
    await c.query(`SELECT w.status, w.sender_host, w.sender_port,
      extract(epoch FROM now() - greatest(pg_postmaster_start_time(), w.last_msg_receipt_time,
        (SELECT max(modification) FROM pg_ls_waldir())))::float8 AS quiet
      FROM (SELECT 1) AS one LEFT JOIN pg_stat_wal_receiver AS w ON true`)
  ).rows[0] as { status: string | null; sender_host: string | null; sender_port: number | null; quiet: number };
  const grace = cfg.healthStreamGraceSeconds;
  if (w.status !== 'streaming') {
    const quiet = Math.max(0, Math.round(w.quiet));
    const why = `not streaming (walreceiver ${w.status ?? 'not running'}), no WAL received for ${quiet} s`;
    return quiet > grace
      ? [UNHEALTHY, `unhealthy: ${why}, more than PGREPL_HEALTH_STREAM_GRACE=${grace}`]
      : [HEALTHY, `healthy: standby, ${why}, within PGREPL_HEALTH_STREAM_GRACE=${grace}`];
  }
  if (maxLag === undefined) return [HEALTHY, 'healthy: standby, streaming'];
  const upstream = w.sender_host && w.sender_port ? { host: w.sender_host, port: Number(w.sender_port) } : cfg.upstream;
  const where = upstream ? ` ${upstream.host}:${upstream.port}` : '';
  const upstreamLsn = upstream && (await upstreamWalPosition(replicationTarget(cfg, upstream)));
  const lag = Math.max(0, Number((
    await c.query(`SELECT pg_wal_lsn_diff(coalesce($1::pg_lsn, (SELECT latest_end_lsn FROM pg_stat_wal_receiver)),
      pg_last_wal_replay_lsn())::float8 AS lag`, [upstreamLsn ?? null])
  ).rows[0].lag));
  const asked = upstreamLsn ? '' : ' (as last reported to the walreceiver: the upstream cannot be asked)';
  return lag > maxLag
    ? [UNHEALTHY, `unhealthy: ${lag} bytes behind the upstream${where}${asked}, more than --max-lag ${maxLag}`]
    : [HEALTHY, `healthy: standby, streaming, ${lag} bytes behind the upstream${where}${asked}`];
}

const USAGE = COMMAND_HELP.health.usage;

export const health: Command = {
  async run(args) {
    const a = parseArgs(args, { flags: ['primary', 'standby'], values: ['max-lag'] }, USAGE);
    if (a.flags.has('primary') && a.flags.has('standby')) throw new UserError(`--primary and --standby exclude each other; usage: ${USAGE}`, EXIT_USAGE);
    const maxLagRaw = a.values.get('max-lag');
    if (maxLagRaw !== undefined && !/^\d+$/.test(maxLagRaw)) throw new UserError(`--max-lag must be a number of bytes, e.g. --max-lag 16777216; usage: ${USAGE}`, EXIT_USAGE);
    const maxLag = maxLagRaw === undefined ? undefined : Number(maxLagRaw);
    const cfg = nodeConfig();
    // First what the entrypoint says it is doing: until it hands over, the server that answers on
    // the socket may be its temporary, socket-only one, which is not the node serving yet.
    const phase = readPhase(cfg.socketDir, cfg.port);
    let verdict: Verdict;
    if (phase) {
      verdict = [STARTING, `starting: ${phase.phase} since ${phase.since}`];
    } else {
      try {
        verdict = await withNode(cfg, async (c): Promise<Verdict> => {
          const standby = await inRecovery(c);
          if (a.flags.has('primary') && standby) return [UNHEALTHY, 'unhealthy: a standby, not a primary'];
          if (a.flags.has('standby') && !standby) return [UNHEALTHY, 'unhealthy: a primary, not a standby'];
          if (standby && (a.flags.has('standby') || maxLag !== undefined)) return standbyVerdict(c, cfg, maxLag);
          return [HEALTHY, `healthy: ${standby ? 'standby' : 'primary'}`];
        });
      } catch (err) {
        const e = err as { code?: string; message?: string };
        verdict = e.code === '57P03'
          ? [STARTING, `starting: ${e.message?.split('\n')[0]}`]
          : [UNHEALTHY, `unhealthy: ${e.code ?? ''} ${e.message?.split('\n')[0] ?? ''}`.replace(/\s+/g, ' ').trim()];
      }
    }
    print(verdict[1]);
    return verdict[0];
  },
};
