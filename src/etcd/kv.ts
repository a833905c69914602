/** Range, put, delete and transactions (etcd's KV service). */
import { headerRevision, keyRange, keyValue, toBase64, type Bytes, type KeyValue, type RawKeyValue } from './codec.js';
import type { CallOptions, Transport } from './transport.js';

export interface RangeOptions extends CallOptions {
  /** Every key starting with `key`. */
  prefix?: boolean;
  /** Served by the member alone, possibly stale; the default is a linearizable read. */
  serializable?: boolean;
  limit?: number;
}

export interface RangeResult {
  kvs: KeyValue[];
  /** How many keys are in the range (more than `kvs.length` when limited). */
  count: number;
  /** The store's revision the read saw. */
  revision: string;
}

interface RawRange {
  header?: { revision?: string };
  kvs?: RawKeyValue[];
  count?: string;
}

function rangeResult(raw: RawRange): RangeResult {
  return { kvs: (raw.kvs ?? []).map(keyValue), count: Number(raw.count ?? 0), revision: headerRevision(raw) };
}

function rangeRequest(key: Bytes, o: { prefix?: boolean; serializable?: boolean; limit?: number }): object {
  return { ...keyRange(key, o.prefix), ...(o.serializable ? { serializable: true } : {}), ...(o.limit ? { limit: o.limit } : {}) };
}

export async function range(t: Transport, key: Bytes, options: RangeOptions = {}): Promise<RangeResult> {
  return rangeResult(await t.call('/v3/kv/range', rangeRequest(key, options), options));
}

export interface PutOptions extends CallOptions {
  /** Attach the key to this lease: it is deleted when the lease expires or is revoked. */
  lease?: string;
}

function putRequest(key: Bytes, value: Bytes, lease: string | undefined): object {
  return { key: toBase64(key), value: toBase64(value), ...(lease ? { lease } : {}) };
}

/** Writes the key; resolves with the store's revision after the write. */
export async function put(t: Transport, key: Bytes, value: Bytes, options: PutOptions = {}): Promise<{ revision: string }> {
  return { revision: headerRevision(await t.call('/v3/kv/put', putRequest(key, value, options.lease), options)) };
}

export interface DeleteOptions extends CallOptions {
  prefix?: boolean;
}

/** Deletes the key (or every key under the prefix); `deleted` says how many there were. */
export async function remove(t: Transport, key: Bytes, options: DeleteOptions = {}): Promise<{ deleted: number; revision: string }> {
  const raw = (await t.call('/v3/kv/deleterange', keyRange(key, options.prefix), options)) as { deleted?: string; header?: { revision?: string } };
  return { deleted: Number(raw.deleted ?? 0), revision: headerRevision(raw) };
}

export type CompareResult = 'equal' | 'not-equal' | 'greater' | 'less';

/** A condition of a transaction on one key. A key that does not exist has create revision "0". */
export type Compare = { key: Bytes; result?: CompareResult } & (
  | { target: 'create'; createRevision: string }
  | { target: 'mod'; modRevision: string }
  | { target: 'version'; version: string }
  | { target: 'value'; value: Bytes }
  | { target: 'lease'; lease: string }
);

/** The key does not exist (its create revision is 0): the condition of create-if-absent. */
export const absent = (key: Bytes): Compare => ({ key, target: 'create', createRevision: '0' });
export const valueIs = (key: Bytes, value: Bytes): Compare => ({ key, target: 'value', value });
/** The key was last written at `modRevision` (nobody wrote it since we read it). */
export const modRevisionIs = (key: Bytes, modRevision: string): Compare => ({ key, target: 'mod', modRevision });

export type Op =
  | { put: { key: Bytes; value: Bytes; lease?: string } }
  | { delete: { key: Bytes; prefix?: boolean } }
  | { range: { key: Bytes; prefix?: boolean; limit?: number } };

export type OpResult = { op: 'put'; revision: string } | { op: 'delete'; deleted: number } | ({ op: 'range' } & RangeResult);

export interface Txn {
  compare: Compare[];
  /** Run when every comparison holds. */
  success: Op[];
  /** Run otherwise (e.g. a range, to see who holds a key we failed to create). */
  failure?: Op[];
}

export interface TxnResult {
  succeeded: boolean;
  revision: string;
  /** One per op of the branch that ran, in order. */
  responses: OpResult[];
}

const RESULTS: Record<CompareResult, string> = { equal: 'EQUAL', 'not-equal': 'NOT_EQUAL', greater: 'GREATER', less: 'LESS' };

function compareRequest(c: Compare): object {
  const common = { key: toBase64(c.key), result: RESULTS[c.result ?? 'equal'] };
  switch (c.target) {
    case 'create':
      return { ...common, target: 'CREATE', create_revision: c.createRevision };
    case 'mod':
      return { ...common, target: 'MOD', mod_revision: c.modRevision };
    case 'version':
      return { ...common, target: 'VERSION', version: c.version };
    case 'value':
      return { ...common, target: 'VALUE', value: toBase64(c.value) };
    case 'lease':
      return { ...common, target: 'LEASE', lease: c.lease };
  }
}

function opRequest(op: Op): object {
  if ('put' in op) return { request_put: putRequest(op.put.key, op.put.value, op.put.lease) };
  if ('delete' in op) return { request_delete_range: keyRange(op.delete.key, op.delete.prefix) };
  return { request_range: rangeRequest(op.range.key, op.range) };
}

interface RawOpResult {
  response_put?: { header?: { revision?: string } };
  response_delete_range?: { deleted?: string; header?: { revision?: string } };
  response_range?: RawRange;
}

function opResult(raw: RawOpResult, revision: string): OpResult {
  if (raw.response_range) return { op: 'range', ...rangeResult({ header: { revision }, ...raw.response_range }) };
  if (raw.response_delete_range) return { op: 'delete', deleted: Number(raw.response_delete_range.deleted ?? 0) };
  return { op: 'put', revision };
}

/**
 * One transaction: compare, then the success or the failure ops, atomically. After a `timeout` or
 * `unavailable` error it may have been applied (by a member that could not answer in time, before
 * the call moved on): a create-if-absent then reads the key back to see whose value it holds.
 */
export async function txn(t: Transport, request: Txn, options: CallOptions = {}): Promise<TxnResult> {
  const body = { compare: request.compare.map(compareRequest), success: request.success.map(opRequest), failure: (request.failure ?? []).map(opRequest) };
  const raw = (await t.call('/v3/kv/txn', body, options)) as { succeeded?: boolean; responses?: RawOpResult[]; header?: { revision?: string } };
  const revision = headerRevision(raw);
  return { succeeded: raw.succeeded === true, revision, responses: (raw.responses ?? []).map((r) => opResult(r, revision)) };
}
