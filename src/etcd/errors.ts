/**
 * Why an etcd call failed, in the terms a caller acts on:
 * - `no-leader`: members answered that they have no leader (etcd lost its quorum, or an election
 *   is under way); nothing was written.
 * - `unavailable`: no endpoint served the call (connection refused or reset, member unavailable).
 * - `timeout`: the call's deadline passed before any endpoint answered (e.g. a frozen member).
 * - `auth`: authentication failed or permission denied (not retried: it will not get better).
 * - `not-found`: etcd says the thing asked about does not exist (e.g. a lease).
 * - `rejected`: etcd refused the request itself (invalid argument and the like).
 * - `aborted`: the caller's AbortSignal fired.
 *
 * After `timeout` or `unavailable` a write may or may not have been applied (an endpoint may have
 * applied it and failed to answer): callers that must know read the key back.
 */
export type EtcdErrorKind = 'no-leader' | 'unavailable' | 'timeout' | 'auth' | 'not-found' | 'rejected' | 'aborted';

export class EtcdError extends Error {
  constructor(
    readonly kind: EtcdErrorKind,
    message: string,
    /** gRPC status code etcd answered with, when it answered. */
    readonly grpcCode?: number,
  ) {
    super(message);
    this.name = 'EtcdError';
  }
}

export function isEtcdError(err: unknown, kind?: EtcdErrorKind): err is EtcdError {
  return err instanceof EtcdError && (kind === undefined || err.kind === kind);
}
