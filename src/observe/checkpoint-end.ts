/**
 * Where a cleanly stopped cluster's shutdown checkpoint record ENDS: the position a standby must
 * have received to hold everything the stopped primary wrote (a switchover, a clean stop of the HA
 * leader). pg_control says where the record starts (checkPoint, offset 32 in every version since
 * 9.3); its length is the record's first field (xl_tot_len, in the WAL segment). The end is where
 * PostgreSQL's XLogInsert put it, and what the standby reports as received: the start plus the
 * MAXALIGNed length, skipping the page headers the record crosses (24 bytes, 40 at a segment's
 * first page; 8 kB WAL pages, PostgreSQL's default). Read-only; undefined when anything is missing.
 */
import { open, readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { Lsn } from '../ha/lsn.js';

const PAGE = 8192n;
const SHORT_HEADER = 24n;
const LONG_HEADER = 40n;
const maxAlign = (n: bigint) => (n + 7n) & ~7n;
const hex8 = (n: bigint) => n.toString(16).toUpperCase().padStart(8, '0');
const lsnText = (p: bigint): Lsn => `${(p >> 32n).toString(16).toUpperCase()}/${(p & 0xffffffffn).toString(16).toUpperCase()}`;

async function readAt(path: string, offset: number, length: number): Promise<Buffer | undefined> {
  const fh = await open(path, 'r').catch(() => undefined);
  if (!fh) return undefined;
  try {
    const buf = Buffer.alloc(length);
    const { bytesRead } = await fh.read(buf, 0, length, offset);
    return bytesRead === length ? buf : undefined;
  } finally {
    await fh.close();
  }
}

/** The end of the record that starts at `start`, `length` bytes long, in WAL of `segSize`-byte segments. */
export function recordEnd(start: bigint, length: number, segSize: bigint): bigint {
  let pos = start;
  let left = maxAlign(BigInt(length));
  for (;;) {
    const pageEnd = (pos / PAGE + 1n) * PAGE;
    if (left <= pageEnd - pos) return pos + left;
    left -= pageEnd - pos;
    pos = pageEnd + (pageEnd % segSize === 0n ? LONG_HEADER : SHORT_HEADER);
  }
}

/** The end of the latest checkpoint record of the cluster in `pgdata` (on `timeline`), or undefined. */
export async function checkpointRecordEnd(pgdata: string, timeline: number): Promise<Lsn | undefined> {
  const control = await readAt(join(pgdata, 'global', 'pg_control'), 32, 8);
  if (!control) return undefined;
  const start = control.readBigUInt64LE(0);
  const walDir = join(pgdata, 'pg_wal');
  const anySegment = (await readdir(walDir).catch(() => [] as string[])).find((f) => /^[0-9A-F]{24}$/.test(f));
  if (!anySegment) return undefined;
  const segSize = BigInt((await stat(join(walDir, anySegment))).size); // segments are always full size
  if (segSize < PAGE) return undefined;
  const segno = start / segSize;
  const perId = 0x100000000n / segSize;
  const file = join(walDir, `${hex8(BigInt(timeline))}${hex8(segno / perId)}${hex8(segno % perId)}`);
  const header = await readAt(file, Number(start % segSize), 4);
  if (!header) return undefined;
  return lsnText(recordEnd(start, header.readUInt32LE(0), segSize));
}
