/**
 * A client of etcd's v3 JSON API (the gRPC gateway), as small as what the HA agent needs. Every
 * call has a deadline (`timeoutMs`, default the client's, and/or an AbortSignal) and fails with an
 * EtcdError whose `kind` says why.
 */
import type { Bytes } from './codec.js';
import * as kv from './kv.js';
import * as lease from './lease.js';
import { Transport, type CallOptions, type TransportOptions } from './transport.js';
import { Watch, type WatchEvent, type WatchOptions } from './watch.js';

export type EtcdClientOptions = TransportOptions;

export class EtcdClient {
  private readonly t: Transport;

  constructor(options: EtcdClientOptions) {
    this.t = new Transport(options);
  }

  /** Keys (linearizable read unless `serializable`). */
  range(key: Bytes, options?: kv.RangeOptions): Promise<kv.RangeResult> {
    return kv.range(this.t, key, options);
  }

  /** One key, or undefined when it does not exist. */
  async get(key: Bytes, options?: CallOptions & { serializable?: boolean }): Promise<kv.RangeResult['kvs'][number] | undefined> {
    return (await kv.range(this.t, key, { ...options, prefix: false })).kvs[0];
  }

  put(key: Bytes, value: Bytes, options?: kv.PutOptions): Promise<{ revision: string }> {
    return kv.put(this.t, key, value, options);
  }

  delete(key: Bytes, options?: kv.DeleteOptions): Promise<{ deleted: number; revision: string }> {
    return kv.remove(this.t, key, options);
  }

  txn(request: kv.Txn, options?: CallOptions): Promise<kv.TxnResult> {
    return kv.txn(this.t, request, options);
  }

  leaseGrant(ttlSeconds: number, options?: lease.GrantOptions): Promise<lease.Lease> {
    return lease.grant(this.t, ttlSeconds, options);
  }

  leaseKeepAlive(id: string, options?: CallOptions): Promise<lease.KeepAlive> {
    return lease.keepAlive(this.t, id, options);
  }

  leaseRevoke(id: string, options?: CallOptions): Promise<boolean> {
    return lease.revoke(this.t, id, options);
  }

  /** Calls `onEvent` on every change of the key (or prefix) until cancelled. */
  watch(key: Bytes, onEvent: (event: WatchEvent) => void, options?: WatchOptions): Watch {
    return new Watch(this.t, key, onEvent, options);
  }

  /** Closes idle connections; watches are cancelled by their owners. */
  close(): void {
    this.t.close();
  }
}
