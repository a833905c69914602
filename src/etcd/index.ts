/**
 * etcd v3 client over the JSON gateway (node:http/https), for the HA agent:
 *
 *   const etcd = new EtcdClient({ endpoints, timeoutMs: retryTimeoutMs, tls?: { ca, cert, key }, auth?: { user, password } });
 *   await etcd.txn({ compare: [absent(key)], success: [{ put: { key, value, lease } }], failure: [{ range: { key } }] });
 *   const lease = await etcd.leaseGrant(ttl); await etcd.leaseKeepAlive(lease.id); // { status: 'alive', ttl } | { status: 'expired' }
 *   const w = etcd.watch(prefix, () => wake(), { prefix: true }); w.cancel();
 *
 * Every call fails with an EtcdError (kind: no-leader, unavailable, timeout, auth, not-found,
 * rejected, aborted). TLS material is PEM contents, not paths.
 */
export { EtcdClient, type EtcdClientOptions } from './client.js';
export { EtcdError, isEtcdError, type EtcdErrorKind } from './errors.js';
export type { EtcdCredentials } from './auth.js';
export type { EtcdTls } from './http.js';
export type { CallOptions } from './transport.js';
export type { Bytes, KeyValue } from './codec.js';
export { absent, modRevisionIs, valueIs, type Compare, type CompareResult, type Op, type OpResult, type RangeResult, type Txn, type TxnResult } from './kv.js';
export type { KeepAlive, Lease } from './lease.js';
export type { Watch, WatchEvent, WatchOptions } from './watch.js';
