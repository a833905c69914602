/**
 * Clusters beside PGDATA in PostgreSQL 18's volume layout.
 *
 * From 18 on the official image keeps PGDATA in a major-specific directory,
 * /var/lib/postgresql/<major>/docker, inside one volume mounted at /var/lib/postgresql (so that
 * pg_upgrade --link can work within it). Up to 17 the volume was mounted at
 * /var/lib/postgresql/data and held the cluster itself. An old volume mounted the new way, or
 * a volume that holds another major's directory, leaves PGDATA empty while the user's data
 * sits beside it: a new, empty cluster there would look exactly like data loss, and a standby
 * clone would bury the old data under a copy of someone else's. So the planner refuses instead
 * (as the official entrypoint does), and this module only looks.
 */
import { readdir, readFile, realpath } from 'node:fs/promises';
import { join } from 'node:path';

export interface StrayCluster {
  /** The directory holding PG_VERSION. */
  path: string;
  /** PG_VERSION's contents: 17, 9.6. */
  major: string;
}

/** PGDATA of the 18+ layout: <volume>/<major>/docker. */
const LAYOUT_18 = /^(.+)\/(\d+)\/docker\/?$/;

async function majorAt(dir: string): Promise<string | undefined> {
  try {
    return (await readFile(join(dir, 'PG_VERSION'), 'utf8')).trim() || undefined;
  } catch {
    return undefined;
  }
}

/**
 * The clusters in PGDATA's volume other than PGDATA itself: at the volume's top (the layout up
 * to 17), in its data/ (a volume of that layout's parent), and in any other <major>/docker.
 * Empty when PGDATA does not have the 18+ shape.
 */
export async function findStrayClusters(pgdata: string): Promise<StrayCluster[]> {
  const m = LAYOUT_18.exec(pgdata);
  if (!m) return [];
  const volume = m[1]!;
  const others = (await readdir(volume).catch(() => [] as string[]))
    .filter((e) => /^\d+$/.test(e))
    .map((e) => join(volume, e, 'docker'));
  const own = await realpath(pgdata).catch(() => pgdata);
  const seen = new Set<string>([own]);
  const found: StrayCluster[] = [];
  for (const dir of [volume, join(volume, 'data'), ...others]) {
    // data/ is a link to the volume's top in the official image: look at each place once.
    const real = await realpath(dir).catch(() => undefined);
    if (!real || seen.has(real)) continue;
    seen.add(real);
    const major = await majorAt(dir);
    if (major) found.push({ path: dir, major });
  }
  return found;
}
