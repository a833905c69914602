/**
 * One POST to one etcd member over node:http / node:https. Not fetch: its body timeout closes a
 * watch that stays idle for 300 s.
 */
import http from 'node:http';
import https from 'node:https';
import { readBody, readObject, type Outcome } from './answer.js';

/** TLS to etcd: PEM contents (not paths) of the CA that signed the members, and our client certificate. */
export interface EtcdTls {
  ca?: string | Buffer;
  cert?: string | Buffer;
  key?: string | Buffer;
}

/** One member's client URL, with the connection pool that talks to it. */
export class Endpoint {
  readonly url: URL;
  readonly agent: http.Agent;

  constructor(url: string, tls: EtcdTls | undefined) {
    this.url = new URL(url);
    if (this.url.protocol !== 'http:' && this.url.protocol !== 'https:') {
      throw new Error(`etcd endpoint ${url}: expected http://host:port or https://host:port`);
    }
    this.agent = this.url.protocol === 'https:' ? new https.Agent({ keepAlive: true, ...tls }) : new http.Agent({ keepAlive: true });
  }

  get name(): string {
    return this.url.origin;
  }
}

/** A request that got no answer at all. */
export class NoAnswer extends Error {
  constructor(
    readonly reason: 'timeout' | 'connection' | 'aborted',
    message: string,
  ) {
    super(message);
  }
}

export interface SendOptions {
  timeoutMs: number;
  signal?: AbortSignal;
  /** The auth token, when authentication is on. */
  token?: string;
}

function open(endpoint: Endpoint, path: string, body: object, token: string | undefined): http.ClientRequest {
  const payload = JSON.stringify(body);
  const headers: Record<string, string | number> = {
    'Content-Type': 'application/json',
    'Content-Length': Buffer.byteLength(payload),
    // A member without a leader answers "no leader" at once instead of holding the call.
    'Grpc-Metadata-hasleader': 'true',
  };
  if (token) headers.Authorization = token;
  const request = (endpoint.url.protocol === 'https:' ? https : http).request({
    protocol: endpoint.url.protocol,
    hostname: endpoint.url.hostname,
    port: endpoint.url.port,
    path,
    method: 'POST',
    headers,
    agent: endpoint.agent,
  });
  request.end(payload);
  return request;
}

/** Bounds a request: `fail` runs once, on the timeout or the caller's abort, and destroys it. */
function bound(request: http.ClientRequest, what: string, timeoutMs: number, signal: AbortSignal | undefined, fail: (e: NoAnswer) => void): () => void {
  const stop = (e: NoAnswer) => {
    fail(e);
    request.destroy(e);
  };
  const timer = setTimeout(() => stop(new NoAnswer('timeout', `${what}: no answer within ${timeoutMs} ms`)), Math.max(1, timeoutMs));
  const onAbort = () => stop(new NoAnswer('aborted', `${what}: aborted`));
  signal?.addEventListener('abort', onAbort, { once: true });
  return () => {
    clearTimeout(timer);
    signal?.removeEventListener('abort', onAbort);
  };
}

/** A unary call (or a streamed one that answers once, like a lease keepalive): its first answer. */
export function post(endpoint: Endpoint, path: string, body: object, options: SendOptions): Promise<Outcome> {
  const what = `${endpoint.name}${path}`;
  return new Promise((resolve, reject) => {
    if (options.signal?.aborted) return reject(new NoAnswer('aborted', `${what}: aborted`));
    let settled = false;
    const settle = (fn: () => void) => {
      if (settled) return;
      settled = true;
      unbind();
      fn();
    };
    const request = open(endpoint, path, body, options.token);
    const unbind = bound(request, what, options.timeoutMs, options.signal, (e) => settle(() => reject(e)));
    request.on('error', (err) => settle(() => reject(new NoAnswer('connection', `${what}: ${err.message}`))));
    request.on('response', (response) => {
      const chunks: Buffer[] = [];
      response.on('data', (c: Buffer) => chunks.push(c));
      response.on('error', (err) => settle(() => reject(new NoAnswer('connection', `${what}: ${err.message}`))));
      response.on('end', () => settle(() => resolve(readBody(Buffer.concat(chunks).toString('utf8'), response.statusCode ?? 0))));
    });
  });
}

export interface StreamHandlers {
  /** Every JSON object the stream sends. */
  onObject(outcome: Outcome): void;
  /** The stream is over (closed by either side, or never opened); `reason` says why. Called once. */
  onEnd(reason: string): void;
}

/** A long-lived streamed call (a watch). `connectTimeoutMs` bounds the wait for the answer's headers. */
export function openStream(endpoint: Endpoint, path: string, body: object, connectTimeoutMs: number, token: string | undefined, handlers: StreamHandlers): { close(): void } {
  const what = `${endpoint.name}${path}`;
  let ended = false;
  const end = (reason: string) => {
    if (ended) return;
    ended = true;
    unbind();
    handlers.onEnd(reason);
  };
  const request = open(endpoint, path, body, token);
  const unbind = bound(request, what, connectTimeoutMs, undefined, (e) => end(e.message));
  request.on('error', (err) => end(`${what}: ${err.message}`));
  request.on('response', (response) => {
    unbind();
    const status = response.statusCode ?? 0;
    let pending = '';
    response.setEncoding('utf8');
    response.on('data', (text: string) => {
      pending += text;
      let newline: number;
      while (!ended && (newline = pending.indexOf('\n')) >= 0) {
        const line = pending.slice(0, newline).trim();
        pending = pending.slice(newline + 1);
        if (line) handlers.onObject(parseLine(line, status));
      }
    });
    response.on('error', (err) => end(`${what}: ${err.message}`));
    response.on('close', () => {
      if (!ended && pending.trim()) handlers.onObject(parseLine(pending.trim(), status));
      end(`${what}: stream closed by the server`);
    });
  });
  return {
    close() {
      end('closed');
      request.destroy();
    },
  };
}

function parseLine(line: string, status: number): Outcome {
  try {
    return readObject(JSON.parse(line), status);
  } catch {
    return readBody(line, status);
  }
}
