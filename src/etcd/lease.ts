/**
 * Leases: a key attached to one is deleted when it expires (TTL seconds without a keepalive) or is
 * revoked. Lease IDs are 64-bit: kept as strings end to end.
 */
import { EtcdError } from './errors.js';
import type { CallOptions, Transport } from './transport.js';

export interface Lease {
  id: string;
  /** Seconds etcd granted (at least its minimum, 1.5 × its election timeout, rounded up). */
  ttl: number;
}

export interface GrantOptions extends CallOptions {
  /** Ask for this ID (a decimal string); by default etcd picks one. */
  id?: string;
}

export async function grant(t: Transport, ttlSeconds: number, options: GrantOptions = {}): Promise<Lease> {
  const raw = (await t.call('/v3/lease/grant', { TTL: ttlSeconds, ...(options.id ? { ID: options.id } : {}) }, options)) as { ID?: string; TTL?: string; error?: string };
  // etcd 3.4 reports some refusals (e.g. a duplicate ID) in the answer's `error` field.
  if (raw.error || !raw.ID) throw new EtcdError('rejected', `etcd /v3/lease/grant: ${raw.error || 'no lease ID in the answer'}`);
  return { id: raw.ID, ttl: Number(raw.TTL ?? 0) };
}

/** Where a lease stands after a keepalive: renewed for `ttl` seconds, or gone for good. */
export type KeepAlive = { status: 'alive'; ttl: number } | { status: 'expired' };

/**
 * Renews the lease once. etcd answers a lease it no longer has (expired, revoked) with no TTL (or
 * TTL 0, or "lease not found"): that is `expired`, never alive; keys on it are gone.
 */
export async function keepAlive(t: Transport, id: string, options: CallOptions = {}): Promise<KeepAlive> {
  try {
    const raw = (await t.call('/v3/lease/keepalive', { ID: id }, options)) as { TTL?: string };
    const ttl = Number(raw.TTL ?? 0);
    return ttl > 0 ? { status: 'alive', ttl } : { status: 'expired' };
  } catch (err) {
    if (err instanceof EtcdError && err.kind === 'not-found') return { status: 'expired' };
    throw err;
  }
}

/** Ends the lease now, deleting its keys. False when etcd had no such lease (already expired or revoked). */
export async function revoke(t: Transport, id: string, options: CallOptions = {}): Promise<boolean> {
  try {
    await t.call('/v3/lease/revoke', { ID: id }, options);
    return true;
  } catch (err) {
    if (err instanceof EtcdError && err.kind === 'not-found') return false;
    throw err;
  }
}
