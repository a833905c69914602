/**
 * Which upstream a standby follows, and how patiently it waits for it: small pure decisions the
 * entrypoint needs before it can observe the upstream at all.
 */
import type { Role, Upstream } from '../config/env.js';
import type { HostPort } from '../config/validators.js';
import type { PgdataState } from '../observe/pgdata.js';
import type { FollowOverride } from '../state/node-state.js';

export const hostPort = (u: HostPort): string => `${u.host}:${u.port}`;

export interface EffectiveUpstream extends HostPort {
  /** What named it: a variable, or `pgrepl follow`. */
  source: string;
  /** A follow override exists but the environment changed since: it is to be dropped. */
  dropFollow: boolean;
}

export function effectiveUpstream(env: Upstream | undefined, follow: FollowOverride | undefined): EffectiveUpstream | undefined {
  if (!env) return undefined;
  if (follow && follow.envUpstream === hostPort(env)) {
    return { host: follow.host, port: follow.port, source: 'pgrepl follow', dropFollow: false };
  }
  return { host: env.host, port: env.port, source: env.source, dropFollow: follow !== undefined };
}

/**
 * Seconds to wait for the upstream. A node that has nothing to serve without it (empty, a half
 * clone, a former primary that must be rewound first) waits the full PGREPL_UPSTREAM_TIMEOUT. A
 * node with data to serve only checks briefly: a standby can start, serve reads and reconnect
 * later; a standby promoted behind pgrepl's back (`pg_ctl promote`; its environment still says
 * STANDBY) stays a primary unless its old upstream is back on a newer timeline, and waiting long
 * for a primary that is usually dead would keep the new one down on every restart.
 */
export function upstreamPatience(found: PgdataState, lastRole: Role | undefined, timeoutSeconds: number): number {
  if (found.kind === 'cluster' && (found.standby || lastRole === 'STANDBY')) return Math.min(timeoutSeconds, 5);
  return timeoutSeconds;
}
