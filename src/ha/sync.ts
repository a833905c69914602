/**
 * Synchronous mode on the leader (PGREPL_SYNC_STANDBYS = n > 0), pure: which standbys the `sync`
 * key names and which synchronous_standby_names requires, and in which order to change them.
 *
 * The invariant: every standby the `sync` key names holds every acknowledged commit, so any of
 * them may be promoted. It holds because synchronous_standby_names requires ALL the standbys it
 * lists (FIRST k of k), the key only names standbys it lists, and a standby enters the key only
 * once it has flushed past the point where it was added (earlier commits were waiting for the
 * others). Hence the order, which never leaves the key naming a standby that may lack a commit:
 *
 *   widen:  add to synchronous_standby_names first; add to `sync` once it has caught up
 *   narrow: remove from `sync` first; then from synchronous_standby_names
 *
 * and a replacement widens before it narrows (the new standby is in `sync` before the old one
 * leaves it), so `sync` does not go empty on the way. Strict like the non-HA setting: with fewer
 * healthy standbys than n, the listed ones stay listed and commits wait for them.
 */
import type { Lsn } from './lsn.js';
import { compareLsn } from './lsn.js';
import type { Action } from './types.js';

export interface SyncInputs {
  want: number;
  /** The `sync` key's standbys when this node wrote it; [] otherwise. */
  key: string[];
  /** What synchronous_standby_names requires now ('*': any standby, as the start-up writes it). */
  required: string[];
  changedAt?: Lsn;
  /** The primary's current write position (stands in for changedAt when that is unknown: stricter). */
  current?: Lsn;
  replication: { name: string; state: string; flushLsn?: Lsn }[];
  /** A member that may be promoted (a member key, not nofailover). */
  mayLead: (name: string) => boolean;
}

const same = (a: string[], b: string[]) => a.length === b.length && a.every((n) => b.includes(n));
const list = (names: string[]) => (names.length ? names.join(', ') : 'nobody');

/** pending: `sync` does not yet name the standbys wanted (the leader looks again soon, not after LOOP_WAIT). */
export function planSync(x: SyncInputs): { actions: Action[]; say: string; pending: boolean } {
  if (x.want === 0) return { actions: [], say: '', pending: false };
  const any = x.required.includes('*');
  const listed = any ? [] : x.required;
  const healthy = [...new Set(x.replication.filter((r) => r.state === 'streaming' && x.mayLead(r.name)).map((r) => r.name))].sort();
  // Keep who is listed and healthy (no churn), then the other healthy ones by name; short of n,
  // keep the listed ones that are not healthy: commits wait for them, as n asks.
  let wanted = [...listed.filter((n) => healthy.includes(n)), ...healthy.filter((n) => !listed.includes(n))].slice(0, x.want);
  if (wanted.length < x.want) wanted = [...wanted, ...listed.filter((n) => !wanted.includes(n))].slice(0, x.want);

  const flush = (n: string) => x.replication.find((r) => r.name === n && r.flushLsn !== undefined)?.flushLsn;
  const since = x.changedAt ?? x.current;
  const caughtUp = (n: string) => since !== undefined && flush(n) !== undefined && compareLsn(flush(n)!, since) >= 0;
  // Only names that synchronous_standby_names requires may stay in the key.
  const valid = x.key.filter((n) => listed.includes(n));
  const key = [...valid, ...listed.filter((n) => wanted.includes(n) && !valid.includes(n) && caughtUp(n))];
  const writeKey = (standbys: string[]): Action[] => (same(standbys, x.key) ? [] : [{ do: 'update-sync-key', standbys }]);

  if (wanted.length === 0) {
    return {
      actions: writeKey([]),
      say: `sync: no standby can be synchronous (synchronous_standby_names left as it is, commits wait for ${x.want}); sync names nobody: no automatic failover`,
      // Just promoted (any standby acknowledges): the standbys are re-pointing to us right now.
      pending: any,
    };
  }
  const adding = wanted.filter((n) => !listed.includes(n));
  if (adding.length > 0) {
    return {
      actions: [...writeKey(key), { do: 'set-synchronous-standby-names', standbys: [...listed, ...adding] }],
      say: `sync: adding ${list(adding)} to synchronous_standby_names first; sync stays ${list(key)} until ${adding.length > 1 ? 'they have' : 'it has'} caught up`,
      pending: true,
    };
  }
  const pending = wanted.filter((n) => !key.includes(n));
  if (pending.length > 0) {
    return {
      actions: writeKey(key),
      say: `sync: ${list(key)}; waiting for ${pending.map((n) => `${n} (flushed ${flush(n) ?? 'nothing'}, needs ${since ?? 'a known position'})`).join(', ')} to catch up before it enters sync`,
      pending: true,
    };
  }
  const leaving = [...new Set([...x.key, ...listed])].filter((n) => !wanted.includes(n));
  return {
    actions: [...writeKey(wanted), ...(same(wanted, x.required) ? [] : [{ do: 'set-synchronous-standby-names' as const, standbys: wanted }])],
    say: leaving.length > 0 ? `sync: removing ${list(leaving)} from sync first, then from synchronous_standby_names; sync ${list(wanted)}` : `sync ${list(wanted)}`,
    pending: false,
  };
}
