/**
 * Observing a standby's upstream: wait for it (bounded, with backoff, a log line per try), then
 * read its system identifier, timeline and major version over a replication connection, exactly
 * as the standby will connect. An upstream that refuses us (a wrong token, a pg_hba rule, no
 * replication role) ends the wait at once: waiting does not fix it. What that means for the
 * start (a standby with data starts anyway, an empty one cannot) is the planner's to say.
 */
import type { Secret } from '../config/secret.js';
import type { HostPort } from '../config/validators.js';
import { log } from '../log.js';
import { identifySystem, withReplicationClient, type SystemIdentity } from '../postgres/replication.js';

/** Why a server that answered would not let this node replicate. */
export type Refusal = 'password' | 'no replication role' | 'cannot log in' | 'not allowed';

export type UpstreamFound =
  | ({ reachable: true } & SystemIdentity)
  | { reachable: false; error: string; refused?: Refusal | undefined };

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function describe(err: unknown): string {
  const e = err as { code?: string; message?: string };
  return [e.code, e.message?.split('\n')[0]].filter(Boolean).join(': ') || String(err);
}

/** Authentication and authorization errors: no amount of waiting fixes them. */
function refusal(err: unknown): Refusal | undefined {
  const e = err as { code?: string; message?: string };
  if (e.code === '28P01') return 'password';
  if (e.code === '28000') {
    if (/role "[^"]*" does not exist/.test(e.message ?? '')) return 'no replication role';
    // NOLOGIN: a primary started without PGREPL_TOKEN locks the role (replication off).
    if (/role "[^"]*" is not permitted to log in/.test(e.message ?? '')) return 'cannot log in';
    return 'not allowed';
  }
  return undefined;
}

export interface UpstreamProbe {
  upstream: HostPort;
  password: Secret;
  applicationName: string;
  /** How long to keep trying, in seconds; 0 = one try. */
  patienceSeconds: number;
  /** Where that patience comes from, for messages (default PGREPL_UPSTREAM_TIMEOUT). */
  patienceFrom?: string;
  /** What it is to this node, for messages: its upstream (default), or a peer (PGREPL_PEERS). */
  label?: 'upstream' | 'peer';
}

export async function observeUpstream(p: UpstreamProbe): Promise<UpstreamFound> {
  const where = `${p.upstream.host}:${p.upstream.port}`;
  const label = p.label ?? 'upstream';
  const deadline = Date.now() + p.patienceSeconds * 1000;
  let delay = 500;
  for (let attempt = 1; ; attempt++) {
    try {
      const id = await withReplicationClient(
        { host: p.upstream.host, port: p.upstream.port, password: p.password, applicationName: p.applicationName },
        identifySystem,
      );
      log.info({ [label]: where, ...id }, `${label} ${where} answers`);
      return { reachable: true, ...id };
    } catch (err) {
      const refused = refusal(err);
      if (refused) {
        log.warn({ [label]: where, error: describe(err) }, `the ${label} ${where} refuses this node: ${describe(err)}`);
        return { reachable: false, error: describe(err), refused };
      }
      const left = Math.round((deadline - Date.now()) / 1000);
      if (left <= 0) return { reachable: false, error: describe(err) };
      log.info(
        { upstream: where, attempt, error: describe(err) },
        `waiting for the upstream ${where}: not reachable yet; next try in ${(delay / 1000).toFixed(1)} s (${left} s left of ${p.patienceFrom ?? 'PGREPL_UPSTREAM_TIMEOUT'})`,
      );
      await sleep(Math.min(delay, Math.max(0, deadline - Date.now())));
      delay = Math.min(delay * 2, 10_000);
    }
  }
}
