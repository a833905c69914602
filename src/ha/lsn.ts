/**
 * WAL positions as PostgreSQL prints them ('16/B374D848'): two hex halves of a 64-bit byte
 * position. Compared as BigInt, since the full range exceeds a JS number's exact integers.
 */
export type Lsn = string;

const LSN = /^([0-9A-Fa-f]{1,8})\/([0-9A-Fa-f]{1,8})$/;

export function lsnBytes(lsn: Lsn): bigint {
  const m = LSN.exec(lsn);
  if (!m) throw new Error(`not a WAL position: ${JSON.stringify(lsn)} (expected e.g. 0/5000060)`);
  return (BigInt(`0x${m[1]}`) << 32n) | BigInt(`0x${m[2]}`);
}

/** Whether `v` is a WAL position as PostgreSQL prints it. */
export function isLsn(v: unknown): v is Lsn {
  return typeof v === 'string' && LSN.test(v);
}

/** Negative, zero or positive as a is before, at or after b. */
export function compareLsn(a: Lsn, b: Lsn): number {
  const d = lsnBytes(a) - lsnBytes(b);
  return d < 0n ? -1 : d > 0n ? 1 : 0;
}

/** Bytes from `from` up to `to` (negative when `to` is behind). */
export function lsnDistance(from: Lsn, to: Lsn): bigint {
  return lsnBytes(to) - lsnBytes(from);
}

/** The furthest of the positions given (undefined ones ignored). */
export function maxLsn(...positions: (Lsn | undefined)[]): Lsn | undefined {
  let best: Lsn | undefined;
  for (const p of positions) if (p !== undefined && (best === undefined || compareLsn(p, best) > 0)) best = p;
  return best;
}
