/**
 * `pgrepl list [--json]`: the cluster as etcd shows it, rendered (pure, no I/O). The same listing
 * is what the agent's API answers on /cluster, so the table, the JSON and the API never disagree.
 *
 * Lag is how far a member is behind the leader's write position as the leader's member key last
 * published it (up to one loop old), counted from the member's furthest position (received or
 * replayed): the position decide.ts holds against PGREPL_MAX_LAG_ON_FAILOVER. A member that the
 * leader's stale position puts "ahead" is shown 0 behind.
 *
 * The table is the topology as a tree (as the seed README drew it by hand): the leader first, the
 * members streaming from it under it, a cascade under the standby it streams from, then the
 * members streaming from no member (stopped, or not streaming). Who streams from whom: a member's
 * `upstream` (the address its walreceiver streams from) when it is another member's address; a
 * member without one (an agent from before `upstream`) that is 'streaming' streams from the
 * leader, as the agent defines 'streaming'.
 */
import { lsnDistance, maxLsn } from './lsn.js';
import { treeLines } from '../util/tree.js';
import type { ClusterKeys, MemberKey, SwitchoverRequest } from './types.js';

/** What the listing needs from one read of the keys (no lease IDs, no history). */
export interface ClusterView {
  /** PGREPL_CLUSTER */
  cluster: string;
  /** `initialize`: the system identifier; '' while the bootstrap race's winner runs initdb. */
  system?: string;
  /** The leader key's name. */
  leader?: string;
  members: MemberKey[];
  /** The `sync` key: who may be promoted in synchronous mode (kept after its leader is gone, as decide.ts reads it). */
  sync?: { leader: string; standbys: string[] };
  pause: boolean;
  switchover?: SwitchoverRequest;
  /** The timeline the newest promotion started (history), for when no leader shows one. */
  lastPromotedTimeline?: number;
}

export function clusterView(cluster: string, keys: ClusterKeys): ClusterView {
  return {
    cluster,
    system: keys.initialize,
    leader: keys.leader?.name,
    members: keys.members,
    sync: keys.sync,
    pause: keys.pause,
    switchover: keys.switchover,
    lastPromotedTimeline: keys.history.at(-1)?.timeline,
  };
}

export interface ListedMember {
  name: string;
  /** host:port of its postgres. */
  address: string;
  /** host:port of its agent's API. */
  api: string;
  /** What its PGDATA holds. */
  role: MemberKey['role'];
  state: MemberKey['state'];
  timeline: number | null;
  receivedLsn: string | null;
  replayedLsn: string | null;
  writeLsn: string | null;
  /** host:port its walreceiver streams from, as it published it; null when not streaming (or not said). */
  upstream: string | null;
  /** The member it streams from (the tree's parent); null for the leader and for a member streaming from none. */
  upstreamMember: string | null;
  /** Bytes behind the leader's write position; null for the leader itself, or when either position is unknown. */
  lagBytes: number | null;
  leader: boolean;
  sync: boolean;
  nofailover: boolean;
  /** leader, sync, nofailover: the ones that apply. */
  tags: string[];
}

/** What `pgrepl list --json` prints and /cluster answers. */
export interface ClusterListing {
  cluster: string;
  /** null: no cluster initialised yet ('' while the first initdb runs). */
  system: string | null;
  leader: string | null;
  /** The leader's timeline, else the newest promotion's. */
  timeline: number | null;
  pause: boolean;
  /** The standbys the `sync` key names. */
  sync: string[];
  switchover: SwitchoverRequest | null;
  /** The leader first, then the others by name. */
  members: ListedMember[];
}

function lagOf(m: MemberKey, leader: MemberKey | undefined): number | null {
  if (!leader?.writeLsn || m.name === leader.name) return null;
  try {
    const at = maxLsn(m.receivedLsn, m.replayedLsn);
    if (at === undefined) return null;
    const behind = lsnDistance(at, leader.writeLsn);
    return behind > 0n ? Number(behind) : 0;
  } catch {
    // Another agent wrote a position that is not one: unknown, rather than no listing at all.
    return null;
  }
}

/** Each member's parent in the tree (see the head comment); a member in a loop of upstreams gets none. */
function upstreamMembers(members: MemberKey[], leader: MemberKey | undefined): Map<string, string> {
  const byAddress = new Map(members.map((m) => [m.address, m.name]));
  const parent = new Map<string, string>();
  for (const m of members) {
    const from = m.upstream !== undefined ? byAddress.get(m.upstream) : m.state === 'streaming' ? leader?.name : undefined;
    if (from !== undefined && from !== m.name) parent.set(m.name, from);
  }
  // Two agents claiming each other (stale keys, one address reused): cut the loop where it closes.
  for (const m of members) {
    const seen = new Set([m.name]);
    for (let p = parent.get(m.name); p !== undefined; p = parent.get(p)) {
      if (seen.has(p)) {
        parent.delete(m.name);
        break;
      }
      seen.add(p);
    }
  }
  return parent;
}

export function listing(view: ClusterView): ClusterListing {
  const leader = view.members.find((m) => m.name === view.leader);
  const parents = upstreamMembers(view.members, leader);
  const sync = view.sync?.standbys ?? [];
  const key = (m: MemberKey) => (m.name === view.leader ? '0' : `1${m.name}`);
  const members = [...view.members].sort((a, b) => (key(a) < key(b) ? -1 : key(a) > key(b) ? 1 : 0)).map((m): ListedMember => {
    const isLeader = m.name === view.leader;
    const isSync = sync.includes(m.name);
    return {
      name: m.name,
      address: m.address,
      api: m.api,
      role: m.role,
      state: m.state,
      timeline: m.timeline ?? null,
      receivedLsn: m.receivedLsn ?? null,
      replayedLsn: m.replayedLsn ?? null,
      writeLsn: m.writeLsn ?? null,
      upstream: m.upstream ?? null,
      upstreamMember: parents.get(m.name) ?? null,
      lagBytes: lagOf(m, leader),
      leader: isLeader,
      sync: isSync,
      nofailover: m.nofailover,
      tags: [isLeader && 'leader', isSync && 'sync', m.nofailover && 'nofailover'].filter((t): t is string => !!t),
    };
  });
  return {
    cluster: view.cluster,
    system: view.system ?? null,
    leader: view.leader ?? null,
    timeline: leader?.timeline ?? view.lastPromotedTimeline ?? null,
    pause: view.pause,
    sync,
    switchover: view.switchover ?? null,
    members,
  };
}

/** `pgrepl list --json`, and the body of /cluster. */
export const listJson = (view: ClusterView): string => `${JSON.stringify(listing(view), null, 2)}\n`;

const MiB = 1024 * 1024;

/** Bytes as the table shows them: exact below 1 MB, else MB (PostgreSQL's: 1024²) to one decimal. */
export function formatLag(bytes: number): string {
  return bytes < MiB ? `${bytes} B` : `${(bytes / MiB).toFixed(1)} MB`;
}

function headerLines(l: ClusterListing): string[] {
  const system = l.system === null ? 'not initialised' : l.system === '' ? 'initialising' : `system ${l.system}`;
  const timeline = l.timeline === null ? '' : `, timeline ${l.timeline}`;
  const lines = [`Cluster ${l.cluster} (${system}): ${l.leader === null ? 'no leader' : `leader ${l.leader}`}${timeline}`];
  if (l.pause) lines.push('Paused: no automatic failover, promotion or switchover until `pgrepl resume`');
  const s = l.switchover;
  if (s) {
    const when = s.at ? ` at ${s.at}` : '';
    lines.push(s.from ? `Switchover requested: from ${s.from} to ${s.to ?? 'the best candidate'}${when}` : `Failover requested: to ${s.to ?? 'the best candidate'}${when}`);
  }
  return lines;
}

/**
 * The human picture: a header line (cluster, system, leader, timeline), notes (pause, a pending
 * request), then one row per member, the Member column drawn as the tree of who streams from whom.
 */
export function listTable(view: ClusterView): string {
  const l = listing(view);
  if (!l.members.length) return `${[...headerLines(l), 'No members: no agent has published itself yet'].join('\n')}\n`;
  const table = treeLines({
    head: ['Member', 'Address', 'Role', 'State', 'TL', 'Lag', 'Tags'],
    rightAligned: [4, 5],
    rows: l.members.map((m) => ({
      name: m.name,
      parent: m.upstreamMember,
      cells: [m.address, m.role, m.state, m.timeline === null ? '?' : String(m.timeline),
        m.leader ? '' : m.lagBytes === null ? 'unknown' : formatLag(m.lagBytes), m.tags.join(' ')],
    })),
  });
  return `${[...headerLines(l), ...table].join('\n')}\n`;
}
