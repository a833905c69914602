/**
 * A watch on a key or a prefix: calls back on every change. It is a wake-up, not a replica of the
 * keys: the caller re-reads what it needs. The stream moves to another endpoint when it breaks,
 * when etcd cancels it, or when its member stops answering a probe (a frozen member, or one that
 * lost its leader, keeps the stream open but silent), and resumes from the next revision, so no
 * change is missed; when that revision was compacted away, it says `resync` instead.
 */
import { classify, type Outcome } from './answer.js';
import { keyRange, keyValue, type Bytes, type RawKeyValue } from './codec.js';
import type { Transport } from './transport.js';

export type WatchEvent =
  | { type: 'put' | 'delete'; key: string; value: string; bytes: Buffer; modRevision: string }
  /** Changes may have been missed (the revision to resume from was compacted): re-read everything. */
  | { type: 'resync'; reason: string };

export interface WatchOptions {
  /** Every key starting with the key. */
  prefix?: boolean;
  /** First revision to report (e.g. the revision of a read just made, plus one); default: from now on. */
  startRevision?: string;
  /** How often the member serving the watch is probed (default: the client's call timeout). */
  probeIntervalMs?: number;
  /** The watch has (re)connected, or lost its stream and is reconnecting: for logs. */
  onStatus?(status: { connected: boolean; endpoint: string; reason?: string }): void;
}

interface WatchResult {
  header?: { revision?: string };
  created?: boolean;
  canceled?: boolean;
  compact_revision?: string;
  cancel_reason?: string;
  events?: { type?: 'PUT' | 'DELETE'; kv?: RawKeyValue }[];
}

export class Watch {
  private endpoint: number;
  /** The revision to resume from; undefined until the first stream is created (unless given). */
  private next: bigint | undefined;
  private stream: { close(): void } | undefined;
  private generation = 0;
  private failures = 0;
  private timer: NodeJS.Timeout | undefined;
  private cancelled = false;
  private readonly probeIntervalMs: number;

  constructor(
    private readonly t: Transport,
    private readonly key: Bytes,
    private readonly onEvent: (event: WatchEvent) => void,
    private readonly options: WatchOptions = {},
  ) {
    this.endpoint = t.preferredEndpoint;
    this.next = options.startRevision ? BigInt(options.startRevision) : undefined;
    this.probeIntervalMs = options.probeIntervalMs ?? t.timeoutMs;
    void this.connect();
  }

  /** Stops watching; no callback comes after this returns. */
  cancel(): void {
    this.cancelled = true;
    clearTimeout(this.timer);
    this.stream?.close();
    this.stream = undefined;
  }

  private async connect(): Promise<void> {
    if (this.cancelled) return;
    const generation = ++this.generation;
    const current = () => generation === this.generation && !this.cancelled;
    const create = { ...keyRange(this.key, this.options.prefix), ...(this.next !== undefined ? { start_revision: this.next.toString() } : {}) };
    const stream = await this.t.stream(this.endpoint, '/v3/watch', { create_request: create }, this.t.timeoutMs, {
      onObject: (o) => current() && this.onObject(o),
      onEnd: (reason) => current() && this.reconnect(reason),
    });
    if (current()) this.stream = stream;
    else stream.close();
  }

  private onObject(outcome: Outcome): void {
    if (!outcome.ok) {
      if (classify(outcome.grpcCode, outcome.error) === 'token') this.t.forgetToken();
      return this.reconnect(outcome.error);
    }
    const result = outcome.message as WatchResult;
    if (result.canceled) {
      if (result.compact_revision && result.compact_revision !== '0') {
        this.next = undefined;
        this.onEvent({ type: 'resync', reason: `revision ${result.compact_revision} and older were compacted` });
      }
      return this.reconnect(`etcd cancelled the watch${result.cancel_reason ? `: ${result.cancel_reason}` : ''}`);
    }
    if (result.created) {
      this.failures = 0;
      this.next ??= BigInt(result.header?.revision ?? '0') + 1n;
      this.options.onStatus?.({ connected: true, endpoint: this.t.endpoints[this.endpoint]!.name });
      this.probeLater();
    }
    for (const event of result.events ?? []) {
      const kv = keyValue(event.kv ?? {});
      if (this.next === undefined || BigInt(kv.modRevision) >= this.next) this.next = BigInt(kv.modRevision) + 1n;
      this.onEvent({ type: event.type === 'DELETE' ? 'delete' : 'put', key: kv.key, value: kv.value, bytes: kv.bytes, modRevision: kv.modRevision });
      if (this.cancelled) return;
    }
  }

  /** Drops the stream and opens one on the next endpoint, at once the first time, then backing off. */
  private reconnect(reason: string): void {
    if (this.cancelled) return;
    clearTimeout(this.timer);
    this.stream?.close();
    this.stream = undefined;
    this.generation++; // what the old stream still says is ignored
    this.options.onStatus?.({ connected: false, endpoint: this.t.endpoints[this.endpoint]!.name, reason });
    this.endpoint = (this.endpoint + 1) % this.t.endpoints.length;
    const delay = this.failures === 0 ? 0 : Math.min(1000, 50 * 2 ** this.failures);
    this.failures++;
    this.timer = setTimeout(() => void this.connect(), delay);
  }

  /** Asks the watch's member, now and then, whether it still answers (and has a leader). */
  private probeLater(): void {
    clearTimeout(this.timer);
    const generation = this.generation;
    this.timer = setTimeout(async () => {
      const probe = { ...keyRange(this.key), limit: 1, keys_only: true, serializable: true };
      const outcome = await this.t.attempt(this.endpoint, '/v3/kv/range', probe, Date.now() + Math.min(this.probeIntervalMs, this.t.timeoutMs));
      if (generation !== this.generation || this.cancelled) return;
      if (outcome.ok) this.probeLater();
      else this.reconnect(`probe: ${outcome.error}`);
    }, this.probeIntervalMs);
  }
}
