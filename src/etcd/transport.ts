/**
 * Calls over several endpoints, each call within a deadline: an endpoint that refuses, does not
 * answer in its share of the time left, or answers that it has no leader (or is unavailable) is
 * left for the next one, starting with the last one that answered. By default every endpoint is
 * tried once per call, so a call fails fast when etcd has no quorum (or is electing a leader), and
 * a frozen member costs a call at most its share of the deadline; `untilDeadline` keeps trying
 * rounds until the deadline instead (e.g. a lease renewal that should ride out an election).
 */
import { classify, type FailureClass, type Outcome } from './answer.js';
import { LoginRefused, TokenHolder, type EtcdCredentials } from './auth.js';
import { EtcdError, type EtcdErrorKind } from './errors.js';
import { Endpoint, NoAnswer, openStream, post, type EtcdTls, type StreamHandlers } from './http.js';

export interface TransportOptions {
  /** Client URLs of etcd's members, `http(s)://host:port`. */
  endpoints: string[];
  /** Deadline of a call that sets none (the caller's RETRY_TIMEOUT). */
  timeoutMs: number;
  tls?: EtcdTls;
  auth?: EtcdCredentials;
}

/** Every call takes a deadline: a timeout (default: the client's) and/or the caller's signal. */
export interface CallOptions {
  timeoutMs?: number;
  signal?: AbortSignal;
  /** Try the endpoints again, round after round, until one serves the call or the deadline passes. */
  untilDeadline?: boolean;
}

const ROUND_PAUSE_MS = 100;

/** What one endpoint answered, or why it did not. */
export type AttemptOutcome = Outcome | { ok: false; error: string; noAnswer: NoAnswer };

const FINAL_KINDS: Partial<Record<FailureClass, EtcdErrorKind>> = { token: 'auth', auth: 'auth', 'not-found': 'not-found', rejected: 'rejected' };

export class Transport {
  readonly endpoints: Endpoint[];
  readonly timeoutMs: number;
  private readonly tokens: TokenHolder;
  /** Index of the endpoint that answered last: calls start there. */
  private preferred = 0;

  constructor(options: TransportOptions) {
    if (options.endpoints.length === 0) throw new Error('etcd: no endpoints given');
    this.endpoints = options.endpoints.map((url) => new Endpoint(url, options.tls));
    this.timeoutMs = options.timeoutMs;
    this.tokens = new TokenHolder(options.auth);
  }

  /** The endpoint that answered last. */
  get preferredEndpoint(): number {
    return this.preferred;
  }

  /** One call, answered by the first endpoint that can; its (unwrapped) answer. Throws EtcdError. */
  async call(path: string, body: object, options: CallOptions = {}): Promise<Record<string, unknown>> {
    const timeoutMs = options.timeoutMs ?? this.timeoutMs;
    const deadline = Date.now() + timeoutMs;
    const n = this.endpoints.length;
    let noLeader = false; // in any round: the reason to give, whatever the last round met
    for (;;) {
      const start = this.preferred;
      const notes: string[] = [];
      let timedOut = false;
      for (let k = 0; k < n; k++) {
        const i = (start + k) % n;
        const left = deadline - Date.now();
        if (left <= 0) break;
        const outcome = await this.attempt(i, path, body, deadline - Math.floor((left * (n - k - 1)) / (n - k)), options.signal);
        if (outcome.ok) {
          this.preferred = i;
          return outcome.message;
        }
        const failure = 'noAnswer' in outcome ? outcome.noAnswer.reason : classify(outcome.grpcCode, outcome.error);
        const kind = failure === 'aborted' ? 'aborted' : FINAL_KINDS[failure as FailureClass];
        if (kind) throw new EtcdError(kind, `etcd ${path} at ${this.endpoints[i]!.name}: ${outcome.error}`, 'grpcCode' in outcome ? outcome.grpcCode : undefined);
        if (failure === 'no-leader') noLeader = true;
        if (failure === 'timeout') timedOut = true;
        notes.push('noAnswer' in outcome ? outcome.error : `${this.endpoints[i]!.name}: ${outcome.error}`);
      }
      this.preferred = (start + 1) % n; // the next round (or call) starts elsewhere
      if (options.untilDeadline && deadline - Date.now() > ROUND_PAUSE_MS && (await pause(ROUND_PAUSE_MS, options.signal))) continue;
      if (options.signal?.aborted) throw new EtcdError('aborted', `etcd ${path}: aborted`);
      const [kind, why]: [EtcdErrorKind, string] = noLeader
        ? ['no-leader', 'no member has a leader (etcd has lost its quorum, or is electing a leader)']
        : timedOut || Date.now() >= deadline
          ? ['timeout', `no answer within ${timeoutMs} ms`]
          : ['unavailable', 'no endpoint could serve the call'];
      throw new EtcdError(kind, `etcd ${path}: ${why}: ${notes.join('; ')}`);
    }
  }

  /** One request to endpoint `i` (logging in first if needed), by `deadline`. Never throws. */
  async attempt(i: number, path: string, body: object, deadline: number, signal?: AbortSignal): Promise<AttemptOutcome> {
    const endpoint = this.endpoints[i]!;
    const send = (p: string, b: object, token: string | undefined) => post(endpoint, p, b, { timeoutMs: deadline - Date.now(), signal, token });
    try {
      return await this.tokens.send(send, path, body);
    } catch (err) {
      if (err instanceof LoginRefused) return err.outcome;
      if (err instanceof NoAnswer) return { ok: false, error: err.message, noAnswer: err };
      throw err;
    }
  }

  /**
   * A streamed call on endpoint `i` (a watch), after logging in if needed. Resolves once the
   * stream is opening; `handlers.onEnd` says when it is over (including when it could not open).
   */
  async stream(i: number, path: string, body: object, connectTimeoutMs: number, handlers: StreamHandlers): Promise<{ close(): void }> {
    const endpoint = this.endpoints[i]!;
    let token: string | undefined;
    try {
      token = await this.tokens.token((p, b, t) => post(endpoint, p, b, { timeoutMs: connectTimeoutMs, token: t }));
    } catch (err) {
      const why = err instanceof LoginRefused || err instanceof NoAnswer ? err.message : String(err);
      queueMicrotask(() => handlers.onEnd(`${endpoint.name}: ${why}`));
      return { close() {} };
    }
    return openStream(endpoint, path, body, connectTimeoutMs, token, handlers);
  }

  /** etcd refused the token a stream carried: the next call logs in again. */
  forgetToken(): void {
    this.tokens.forget();
  }

  /** Closes the idle connections (calls still work afterwards: they open new ones). */
  close(): void {
    for (const e of this.endpoints) e.agent.destroy();
  }
}

/** Waits `ms`; false when the signal fired meanwhile. */
function pause(ms: number, signal: AbortSignal | undefined): Promise<boolean> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve(false);
    const done = (ok: boolean) => {
      clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
      resolve(ok);
    };
    const onAbort = () => done(false);
    const timer = setTimeout(() => done(true), ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}
