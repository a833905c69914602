/**
 * Reads what etcd's gRPC gateway answers. A unary call answers its message, or on failure an HTTP
 * error status with `{error, code, message}`. A streamed call (lease keepalive, watch) answers
 * HTTP 200 and one JSON object a line: `{result: message}` or `{error: {grpc_code, message}}`.
 */

/** What one endpoint made of one request. */
export type Outcome =
  | { ok: true; message: Record<string, unknown> }
  | { ok: false; grpcCode: number; error: string; httpStatus: number };

// google.golang.org/grpc/codes
export const GRPC = {
  Unknown: 2,
  InvalidArgument: 3,
  DeadlineExceeded: 4,
  NotFound: 5,
  PermissionDenied: 7,
  FailedPrecondition: 9,
  Unavailable: 14,
  Unauthenticated: 16,
} as const;

/** One streamed (or unary) JSON object, unwrapped. */
export function readObject(obj: unknown, httpStatus: number): Outcome {
  if (obj === null || typeof obj !== 'object') return failure(GRPC.Unknown, `not a JSON object: ${String(obj).slice(0, 200)}`, httpStatus);
  const o = obj as Record<string, unknown>;
  const error = o.error ?? o.Error;
  if (error !== undefined && typeof error === 'object' && error !== null) {
    const e = error as { grpc_code?: number; code?: number; message?: string; http_code?: number };
    return failure(e.grpc_code ?? e.code ?? GRPC.Unknown, e.message ?? JSON.stringify(e), e.http_code ?? httpStatus);
  }
  if (error !== undefined || httpStatus >= 400) {
    return failure(Number(o.code ?? o.Code ?? GRPC.Unknown), String(o.message ?? error ?? JSON.stringify(o)), httpStatus);
  }
  const result = o.result;
  return { ok: true, message: result !== null && typeof result === 'object' ? (result as Record<string, unknown>) : o };
}

/** A complete answer body: its first JSON object (a streamed call sends one per line). */
export function readBody(body: string, httpStatus: number): Outcome {
  const first = body.split('\n').find((line) => line.trim() !== '');
  if (first === undefined) return failure(GRPC.Unavailable, `empty answer (HTTP ${httpStatus})`, httpStatus);
  let parsed: unknown;
  try {
    parsed = JSON.parse(first);
  } catch {
    return plainText(first, httpStatus);
  }
  return readObject(parsed, httpStatus);
}

/**
 * A plain-text answer: the gateway refusing the request itself (4xx), or not etcd speaking at all
 * (a proxy's error page, a truncated answer: another endpoint may do better).
 */
function plainText(text: string, httpStatus: number): Outcome {
  const hint = /CommonName/.test(text) ? ' (with authentication on, use a client certificate without a CommonName)' : '';
  const code = httpStatus === 401 || httpStatus === 403 ? GRPC.PermissionDenied : httpStatus >= 400 && httpStatus < 500 ? GRPC.InvalidArgument : GRPC.Unavailable;
  return failure(code, `HTTP ${httpStatus}: ${text.slice(0, 200)}${hint}`, httpStatus);
}

function failure(grpcCode: number, error: string, httpStatus: number): Outcome {
  return { ok: false, grpcCode, error: error.trim(), httpStatus };
}

/** How the transport treats a failed answer. */
export type FailureClass = 'no-leader' | 'unavailable' | 'token' | 'auth' | 'not-found' | 'rejected';

// api/v3rpc/rpctypes/error.go (the messages are etcd's, stable across 3.x)
const NO_LEADER = 'etcdserver: no leader';
const TOKEN_ERRORS = ['etcdserver: invalid auth token', 'etcdserver: user name is empty', 'etcdserver: revision of auth store is old'];

export function classify(grpcCode: number, error: string): FailureClass {
  if (error === NO_LEADER) return 'no-leader';
  if (TOKEN_ERRORS.includes(error) || grpcCode === GRPC.Unauthenticated) return 'token';
  if (grpcCode === GRPC.PermissionDenied || /authentication failed/.test(error)) return 'auth';
  // "not a primary lessor": a member that just lost the lease leadership (etcd-io/etcd#21671).
  if (grpcCode === GRPC.Unavailable || grpcCode === GRPC.DeadlineExceeded || error === 'not a primary lessor') return 'unavailable';
  if (grpcCode === GRPC.NotFound) return 'not-found';
  return 'rejected';
}
