/**
 * What PGDATA holds, read without changing anything. The planner turns this into a decision;
 * nothing here decides.
 */
import { readdir, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { ASIDE_PARENT, ASIDE_PREFIX, ASIDE_WAL_MOVING, RECOVERY_CONF, STAGING_CLONE, STAGING_INIT, STANDBY_SIGNAL, SWAP_DIR } from '../layout.js';
import { readControlFile, type ClusterState } from './control-file.js';

export interface ClusterFound {
  kind: 'cluster';
  /** PG_VERSION: 15, or 9.6 for two-part majors. */
  major: number;
  /** standby.signal (12+) or recovery.conf (11 and older) present. */
  standby: boolean;
  systemIdentifier: string | undefined;
  state: ClusterState;
  /**
   * The newest timeline this cluster knows: the latest checkpoint's, or a newer one whose history
   * file is in pg_wal (a promotion writes it at once; the checkpoint may come later).
   */
  timeline: number;
  /** Data moved aside earlier, kept in PGDATA/pg_dynshmem (names). */
  keptCopies: string[];
  /** A finished build that was half moved in from SWAP_DIR; the move must be finished first. */
  swapPending: boolean;
}

export type PgdataState =
  | { kind: 'missing' }
  | { kind: 'empty' }
  /**
   * No cluster, only data moved aside earlier (a rejoin whose rewind and then clone failed):
   * not empty. A new cluster here would be a new system with the real data set aside.
   */
  | {
      kind: 'only-kept-copies';
      keptCopies: string[];
      /** Kept copies whose WAL was still being moved in when a start was killed (aside.ts). */
      walMoving?: string[] | undefined;
    }
  | ClusterFound
  /** A build (initdb or clone) that never finished; only its staging directory (and kept copies) exist. */
  | { kind: 'interrupted-build'; build: 'init' | 'clone'; staging: string; keptCopies: string[]; walMoving?: string[] | undefined }
  | { kind: 'not-a-cluster'; entries: string[] }
  | { kind: 'not-a-directory' }
  | { kind: 'unreadable'; code: string };

async function exists(path: string): Promise<boolean> {
  try {
    await stat(path);
    return true;
  } catch {
    return false;
  }
}

/** Reads PG_VERSION etc. from PGDATA, or from the swap directory for files not moved yet. */
async function inspectCluster(pgdata: string, swapPending: boolean): Promise<ClusterFound | undefined> {
  const dirs = swapPending ? [pgdata, join(pgdata, SWAP_DIR)] : [pgdata];
  const find = async (name: string): Promise<string | undefined> => {
    for (const d of dirs) if (await exists(join(d, name))) return join(d, name);
    return undefined;
  };
  const versionFile = await find('PG_VERSION');
  if (!versionFile) return undefined;
  const major = Number((await readFile(versionFile, 'utf8')).trim());
  const controlFile = await find(join('global', 'pg_control'));
  const control = controlFile ? await readControlFile(controlFile) : undefined;
  return {
    kind: 'cluster',
    major,
    standby: (await find(STANDBY_SIGNAL)) !== undefined || (await find(RECOVERY_CONF)) !== undefined,
    systemIdentifier: control?.systemIdentifier,
    state: control?.state ?? 'unknown',
    timeline: Math.max(control?.timeline ?? 0, await newestHistoryTimeline(dirs)),
    keptCopies: await keptCopiesIn(pgdata),
    swapPending,
  };
}

/** Names of the copies moved aside earlier (layout.ts), oldest first. */
async function keptCopiesIn(pgdata: string): Promise<string[]> {
  return (await readdir(join(pgdata, ASIDE_PARENT)).catch(() => [] as string[])).filter((e) => e.startsWith(ASIDE_PREFIX)).sort();
}

/** The newest timeline a cluster knows (see ClusterFound.timeline). */
export async function newestTimeline(pgdata: string, controlTimeline: number): Promise<number> {
  return Math.max(controlTimeline, await newestHistoryTimeline([pgdata]));
}

/** The kept copies holding ASIDE_WAL_MOVING: their WAL move was interrupted. */
async function walMovingIn(pgdata: string, kept: string[]): Promise<string[]> {
  const found = await Promise.all(kept.map(async (k) => ((await exists(join(pgdata, ASIDE_PARENT, k, ASIDE_WAL_MOVING))) ? k : undefined)));
  return found.filter((k): k is string => k !== undefined);
}

async function newestHistoryTimeline(dirs: string[]): Promise<number> {
  let newest = 0;
  for (const d of dirs) {
    const names = await readdir(join(d, 'pg_wal')).catch(() => [] as string[]);
    for (const n of names) {
      const m = /^([0-9A-F]{8})\.history$/.exec(n);
      if (m) newest = Math.max(newest, parseInt(m[1]!, 16));
    }
  }
  return newest;
}

export async function observePgdata(pgdata: string): Promise<PgdataState> {
  let entries: string[];
  try {
    const st = await stat(pgdata);
    if (!st.isDirectory()) return { kind: 'not-a-directory' };
    entries = await readdir(pgdata);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? 'error';
    return code === 'ENOENT' ? { kind: 'missing' } : { kind: 'unreadable', code };
  }
  if (entries.length === 0) return { kind: 'empty' };

  const cluster = await inspectCluster(pgdata, entries.includes(SWAP_DIR));
  if (cluster) return cluster;

  // Without PG_VERSION, a pg_dynshmem directory is what a move aside left (see layout.ts): empty
  // if it holds no kept copy (only the remembered node name), else the copies are the data.
  const others = entries.filter((e) => e !== STAGING_INIT && e !== STAGING_CLONE && e !== ASIDE_PARENT);
  if (others.length === 0) {
    const keptCopies = await keptCopiesIn(pgdata);
    const moving = await walMovingIn(pgdata, keptCopies);
    const walMoving = moving.length > 0 ? { walMoving: moving } : {};
    if (entries.includes(STAGING_INIT) || entries.includes(STAGING_CLONE)) {
      const build = entries.includes(STAGING_CLONE) ? 'clone' : 'init';
      return { kind: 'interrupted-build', build, staging: build === 'clone' ? STAGING_CLONE : STAGING_INIT, keptCopies, ...walMoving };
    }
    return keptCopies.length > 0 ? { kind: 'only-kept-copies', keptCopies, ...walMoving } : { kind: 'empty' };
  }
  return { kind: 'not-a-cluster', entries: entries.sort() };
}
