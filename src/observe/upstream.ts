/**
 * Observing a standby's upstream: wait for it (bounded, with backoff, a log line per try), then
 * read its system identifier, timeline and major version over a replication connection, exactly
 * as the standby will connect. An upstream that refuses us (a wrong token, a pg_hba rule, no
 * replication role) ends the wait at once: waiting does not fix it. What that means for the
 * start (a standby with data starts anyway, an empty one cannot) is the planner's to say.
 */
import { log } from '../log.js';
import { identifySystem, withReplicationClient, type ReplicationTarget, type SystemIdentity } from '../postgres/replication.js';

/** Why a server that answered would not let this node replicate. */
export type Refusal = 'password' | 'no replication role' | 'cannot log in' | 'not allowed' | 'needs TLS' | 'no TLS' | 'certificate';

/** Node's words for a certificate that does not verify against the CA, or does not name the host. */
const CERTIFICATE_ERRORS = new Set([
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE', 'UNABLE_TO_GET_ISSUER_CERT', 'UNABLE_TO_GET_ISSUER_CERT_LOCALLY', 'SELF_SIGNED_CERT_IN_CHAIN',
  'DEPTH_ZERO_SELF_SIGNED_CERT', 'CERT_SIGNATURE_FAILURE', 'CERT_HAS_EXPIRED', 'CERT_NOT_YET_VALID', 'CERT_UNTRUSTED',
  'CERT_REJECTED', 'ERR_TLS_CERT_ALTNAME_INVALID',
]);

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
  if (e.code !== undefined && CERTIFICATE_ERRORS.has(e.code)) return 'certificate';
  if (/server does not support SSL/i.test(e.message ?? '')) return 'no TLS';
  if (e.code === '28000') {
    // pg_hba's hostssl rules (a TLS upstream) and its reject of the role without TLS; "SSL off" before 14.
    if (/, (no encryption|SSL off)$/.test(e.message ?? '')) return 'needs TLS';
    if (/role "[^"]*" does not exist/.test(e.message ?? '')) return 'no replication role';
    // NOLOGIN: a primary started without PGREPL_TOKEN locks the role (replication off).
    if (/role "[^"]*" is not permitted to log in/.test(e.message ?? '')) return 'cannot log in';
    return 'not allowed';
  }
  return undefined;
}

export interface UpstreamProbe {
  /** Whom to ask, as this node connects (its password, TLS, name). */
  target: ReplicationTarget;
  /** How long to keep trying, in seconds; 0 = one try. */
  patienceSeconds: number;
  /** Where that patience comes from, for messages (default PGREPL_UPSTREAM_TIMEOUT). */
  patienceFrom?: string;
  /** What it is to this node, for messages: its upstream (default), or a peer (PGREPL_PEERS). */
  label?: 'upstream' | 'peer';
}

export async function observeUpstream(p: UpstreamProbe): Promise<UpstreamFound> {
  const where = `${p.target.host}:${p.target.port}`;
  const label = p.label ?? 'upstream';
  const deadline = Date.now() + p.patienceSeconds * 1000;
  let delay = 500;
  for (let attempt = 1; ; attempt++) {
    try {
      const id = await withReplicationClient(p.target, identifySystem);
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
