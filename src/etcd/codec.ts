/** etcd's JSON gateway carries keys and values as base64 and 64-bit numbers as strings. */

/** A key or value as the caller gives it: text (UTF-8) or raw bytes. */
export type Bytes = string | Uint8Array;

export function toBase64(v: Bytes): string {
  return (typeof v === 'string' ? Buffer.from(v, 'utf8') : Buffer.from(v)).toString('base64');
}

export function fromBase64(v: string | undefined): Buffer {
  return Buffer.from(v ?? '', 'base64');
}

/** The smallest key greater than every key starting with `prefix` (etcd's range_end for a prefix). */
export function prefixEnd(prefix: Bytes): Buffer {
  const end = Buffer.from(typeof prefix === 'string' ? Buffer.from(prefix, 'utf8') : prefix);
  for (let i = end.length - 1; i >= 0; i--) {
    if (end[i]! < 0xff) {
      end[i]! += 1;
      return end.subarray(0, i + 1);
    }
  }
  return Buffer.from([0]); // the prefix is all 0xff (or empty): every key from it on
}

/** The `key` (and `range_end` for a prefix) fields of a request. */
export function keyRange(key: Bytes, prefix = false): { key: string; range_end?: string } {
  return prefix ? { key: toBase64(key), range_end: toBase64(prefixEnd(key)) } : { key: toBase64(key) };
}

/** One key as etcd stores it. Revisions and lease IDs are strings: they exceed JS numbers. */
export interface KeyValue {
  key: string;
  /** The value decoded as UTF-8. */
  value: string;
  /** The value's raw bytes. */
  bytes: Buffer;
  createRevision: string;
  modRevision: string;
  version: string;
  /** The lease the key is attached to; absent when none. */
  lease?: string;
}

/** etcd's mvccpb.KeyValue in JSON, where fields holding their default value are omitted. */
export interface RawKeyValue {
  key?: string;
  value?: string;
  create_revision?: string;
  mod_revision?: string;
  version?: string;
  lease?: string;
}

export function keyValue(raw: RawKeyValue): KeyValue {
  const bytes = fromBase64(raw.value);
  const kv: KeyValue = {
    key: fromBase64(raw.key).toString('utf8'),
    value: bytes.toString('utf8'),
    bytes,
    createRevision: raw.create_revision ?? '0',
    modRevision: raw.mod_revision ?? '0',
    version: raw.version ?? '0',
  };
  if (raw.lease && raw.lease !== '0') kv.lease = raw.lease;
  return kv;
}

/** The response header's revision (the store's revision when the call was served). */
export function headerRevision(answer: { header?: { revision?: string } }): string {
  return answer.header?.revision ?? '0';
}
