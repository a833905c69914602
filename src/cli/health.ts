/**
 * `pgrepl health [--primary|--standby] [--max-lag BYTES]`, for HEALTHCHECK and Marathon COMMAND
 * checks. Exit 0 healthy, 1 unhealthy, 2 starting: a node that is still waiting for its upstream,
 * cloning, rewinding or recovering is not dead, and an orchestrator that killed it would only make
 * it start over.
 */
import { UserError } from '../errors.js';
import { inRecovery } from '../postgres/promote.js';
import { readPhase } from '../state/phase.js';
import { EXIT_USAGE, nodeConfig, parseArgs, print, withNode, type Command } from './local.js';

export const HEALTHY = 0;
export const UNHEALTHY = 1;
export const STARTING = 2;

const USAGE = 'pgrepl health [--primary|--standby] [--max-lag BYTES]';

export const health: Command = {
  summary: 'exit 0 healthy, 1 unhealthy, 2 still starting (waiting, cloning, recovering)',
  usage: USAGE,
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
    let verdict: [number, string];
    if (phase) {
      verdict = [STARTING, `starting: ${phase.phase} since ${phase.since}`];
    } else {
      try {
        verdict = await withNode(cfg, async (c) => {
          const standby = await inRecovery(c);
          if (a.flags.has('primary') && standby) return [UNHEALTHY, 'unhealthy: a standby, not a primary'];
          if (a.flags.has('standby') && !standby) return [UNHEALTHY, 'unhealthy: a primary, not a standby'];
          if (standby && maxLag !== undefined) {
            const r = await c.query<{ lag: number }>(
              'SELECT coalesce(pg_wal_lsn_diff(pg_last_wal_receive_lsn(), pg_last_wal_replay_lsn()), 0)::float8 AS lag',
            );
            const lag = Number(r.rows[0]!.lag);
            if (lag > maxLag) return [UNHEALTHY, `unhealthy: replay lag ${lag} bytes > ${maxLag}`];
          }
          return [HEALTHY, `healthy: ${standby ? 'standby' : 'primary'}`] as [number, string];
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
