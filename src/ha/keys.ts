/**
 * The HA keys under /pgrepl/<cluster>/ (SPEC §7) and their values, which are JSON:
 *
 *   initialize      "7312345678901234567"    the system identifier, a JSON string ('' while the
 *                                            bootstrap race's winner runs initdb); bare digits too
 *   leader          {"name":"n1"}            on the leader's lease (the lease comes from etcd, not the value)
 *   members/<name>  MemberKey                on its agent's lease; the value's name is the key's
 *   sync            {"leader":"n1","standbys":["n2"]}
 *   history         [HistoryEntry, ...]      oldest first: one key, so an append is one compare-and-put
 *   switchover      {"from":"n1","to":"n2","at":"2024-05-01T12:00:00Z"}  every field optional
 *   pause           {"at":"..."}             present: paused, whatever its value
 *
 * Decoding never throws: a value that cannot be read is reported (key and why, one line) and left
 * out, and the rest is returned, because one bad key (a hand edit, a newer agent) must not stop
 * every loop of every node. Keys under the prefix that are none of these are ignored (a later
 * version may add some). Nothing here talks to etcd.
 */
import type { KeyValue } from '../etcd/index.js';
import { isLsn, type Lsn } from './lsn.js';
import type { ClusterKeys, HistoryEntry, LeaderKey, MemberKey, SwitchoverRequest } from './types.js';

/** The full key names of one cluster, e.g. haKeys('/pgrepl/orders/').leader === '/pgrepl/orders/leader'. */
export function haKeys(prefix: string) {
  const p = prefix.endsWith('/') ? prefix : `${prefix}/`;
  return {
    prefix: p,
    initialize: `${p}initialize`,
    leader: `${p}leader`,
    /** Every member key starts with this. */
    members: `${p}members/`,
    member: (name: string) => `${p}members/${name}`,
    sync: `${p}sync`,
    history: `${p}history`,
    switchover: `${p}switchover`,
    pause: `${p}pause`,
  };
}

export type HaKeyNames = ReturnType<typeof haKeys>;

/** A key whose value could not be read: left out of ClusterKeys (a history entry: left out of history). */
export interface KeyProblem {
  key: string;
  why: string;
}

/** Where each key was last written (etcd mod revisions), for the transactions that must not overwrite a newer value. */
export interface KeyRevisions {
  initialize?: string;
  leader?: string;
  sync?: string;
  history?: string;
  switchover?: string;
  pause?: string;
  members: Record<string, string>;
}

/** One read of the prefix: the keys, their revisions, what could not be read, and the store's revision the read saw. */
export interface DecodedKeys {
  keys: ClusterKeys;
  revisions: KeyRevisions;
  problems: KeyProblem[];
  revision: string;
}

// ---------------------------------------------------------------------------------------------
// Encoding (what act writes)

export const encodeInitialize = (system: string): string => JSON.stringify(system);
/** The value only: the lease is the put's. */
export const encodeLeader = (name: string): string => JSON.stringify({ name });
export const encodeMember = (m: MemberKey): string => JSON.stringify(m);
export const encodeSync = (s: { leader: string; standbys: string[] }): string => JSON.stringify({ leader: s.leader, standbys: s.standbys });
export const encodeHistory = (h: HistoryEntry[]): string => JSON.stringify(h);
export const encodeSwitchover = (s: SwitchoverRequest): string => JSON.stringify(s);
export const encodePause = (at: Date): string => JSON.stringify({ at: at.toISOString() });

// ---------------------------------------------------------------------------------------------
// Decoding: a value, or why not (one short clause)

type Decoded<T> = { ok: true; value: T } | { ok: false; why: string };
const ok = <T>(value: T): Decoded<T> => ({ ok: true, value });
const bad = (why: string): Decoded<never> => ({ ok: false, why });

/** The value shown in a problem, cut short (a hand-written value may be anything, and long). */
const shown = (raw: string) => JSON.stringify(raw.length > 60 ? `${raw.slice(0, 60)}…` : raw);

function parseJson(raw: string): Decoded<unknown> {
  try {
    return ok(JSON.parse(raw) as unknown);
  } catch {
    return bad(`not JSON: ${shown(raw)}`);
  }
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const isName = (v: unknown): v is string => typeof v === 'string' && v.length > 0;
const isTimeline = (v: unknown): v is number => typeof v === 'number' && Number.isInteger(v) && v >= 1;
const isTime = (v: unknown): v is string => typeof v === 'string' && !Number.isNaN(Date.parse(v));

/** The JSON object in `raw`, or why not. */
function object(raw: string): Decoded<Record<string, unknown>> {
  const j = parseJson(raw);
  if (!j.ok) return j;
  return isObject(j.value) ? ok(j.value) : bad(`not a JSON object: ${shown(raw)}`);
}

/** The first field that fails its check, as a clause; undefined when all pass. Optional fields may be absent. */
function wrongField(o: Record<string, unknown>, checks: Record<string, [(v: unknown) => boolean, string, 'optional'?]>): string | undefined {
  for (const [field, [check, want, optional]] of Object.entries(checks)) {
    const v = o[field];
    if (v === undefined && optional) continue;
    if (!check(v)) return v === undefined ? `no ${field}` : `${field} ${JSON.stringify(v)} is not ${want}`;
  }
  return undefined;
}

/** A system identifier (digits), or '' while the bootstrap race's winner runs initdb. Bare digits are read too (etcdctl put). */
export function decodeInitialize(raw: string): Decoded<string> {
  const text = /^\d*$/.test(raw) ? raw : (() => {
    const j = parseJson(raw);
    return j.ok && typeof j.value === 'string' ? j.value : undefined;
  })();
  return text !== undefined && /^\d*$/.test(text) ? ok(text) : bad(`not a system identifier (a JSON string of digits): ${shown(raw)}`);
}

/** The leader's name; the lease is the key's (etcd's), '0' when it is on none. */
export function decodeLeader(raw: string, lease: string | undefined): Decoded<LeaderKey> {
  const o = object(raw);
  if (!o.ok) return o;
  return isName(o.value.name) ? ok({ name: o.value.name, lease: lease ?? '0' }) : bad('no name');
}

const ROLES = ['primary', 'standby', 'none'];
const STATES = ['stopped', 'running', 'streaming'];

/** A member key; `name` is the one its key ends with, which the value must repeat. */
export function decodeMember(raw: string, name: string): Decoded<MemberKey> {
  const o = object(raw);
  if (!o.ok) return o;
  const v = o.value;
  const wrong = wrongField(v, {
    name: [(x) => x === name, `the key's name "${name}"`],
    instance: [isName, 'a non-empty string'],
    address: [isName, 'host:port'],
    api: [isName, 'host:port'],
    role: [(x) => ROLES.includes(x as string), ROLES.join(', ')],
    state: [(x) => STATES.includes(x as string), STATES.join(', ')],
    timeline: [isTimeline, 'a timeline (1 or more)', 'optional'],
    receivedLsn: [isLsn, 'a WAL position', 'optional'],
    replayedLsn: [isLsn, 'a WAL position', 'optional'],
    writeLsn: [isLsn, 'a WAL position', 'optional'],
    nofailover: [(x) => typeof x === 'boolean', 'true or false'],
  });
  if (wrong) return bad(wrong);
  // Only the fields MemberKey has: a newer agent's extra fields are not carried along.
  const m: MemberKey = {
    name, instance: v.instance as string, address: v.address as string, api: v.api as string,
    role: v.role as MemberKey['role'], state: v.state as MemberKey['state'], nofailover: v.nofailover as boolean,
  };
  for (const k of ['timeline', 'receivedLsn', 'replayedLsn', 'writeLsn'] as const) if (v[k] !== undefined) (m as unknown as Record<string, unknown>)[k] = v[k];
  // Only drawn in `pgrepl list`, never decided on: one that is not a string is left out rather
  // than making the member no member (no candidate) over a picture.
  if (isName(v.upstream)) m.upstream = v.upstream;
  return ok(m);
}

export function decodeSync(raw: string): Decoded<{ leader: string; standbys: string[] }> {
  const o = object(raw);
  if (!o.ok) return o;
  const wrong = wrongField(o.value, {
    leader: [isName, 'a name'],
    standbys: [(x) => Array.isArray(x) && x.every(isName), 'a list of names'],
  });
  return wrong ? bad(wrong) : ok({ leader: o.value.leader as string, standbys: [...(o.value.standbys as string[])] });
}

function historyEntry(v: unknown): Decoded<HistoryEntry> {
  if (!isObject(v)) return bad(`${JSON.stringify(v)} is not an object`);
  const wrong = wrongField(v, {
    timeline: [isTimeline, 'a timeline (1 or more)'],
    lsn: [isLsn, 'a WAL position'],
    leader: [isName, 'a name'],
    at: [isTime, 'a time'],
    why: [(x) => typeof x === 'string', 'a string'],
  });
  return wrong ? bad(wrong) : ok({ timeline: v.timeline as number, lsn: v.lsn as string, leader: v.leader as string, at: v.at as string, why: v.why as string });
}

/** The entries that can be read, in order; each one that cannot is a problem (a history is still useful without it). */
export function decodeHistory(raw: string): { entries: HistoryEntry[]; problems: string[] } {
  const j = parseJson(raw);
  if (!j.ok) return { entries: [], problems: [j.why] };
  if (!Array.isArray(j.value)) return { entries: [], problems: [`not a JSON list: ${shown(raw)}`] };
  const entries: HistoryEntry[] = [];
  const problems: string[] = [];
  j.value.forEach((v, i) => {
    const e = historyEntry(v);
    if (e.ok) entries.push(e.value);
    else problems.push(`entry ${i}: ${e.why}`);
  });
  return { entries, problems };
}

export function decodeSwitchover(raw: string): Decoded<SwitchoverRequest> {
  const o = object(raw);
  if (!o.ok) return o;
  const v = o.value;
  const wrong = wrongField(v, {
    from: [isName, 'a name', 'optional'],
    to: [isName, 'a name', 'optional'],
    at: [isTime, 'a time', 'optional'],
  });
  if (wrong) return bad(wrong);
  if (v.from === undefined && v.to === undefined) return bad('neither from nor to');
  return ok({
    ...(v.from !== undefined && { from: v.from as string }),
    ...(v.to !== undefined && { to: v.to as string }),
    ...(v.at !== undefined && { at: v.at as string }),
  });
}

// ---------------------------------------------------------------------------------------------
// One read of the whole prefix

/**
 * The keys of one read of the prefix (every key under it, in any order). A key whose value cannot
 * be read is a problem and is left out: a member is then not a member (it cannot be a candidate),
 * a bad `switchover` is no request, a bad `sync` names nobody (no standby may be promoted in
 * synchronous mode: the safe side). Two exceptions, because leaving them out would be unsafe:
 * a bad `leader` still holds the key (its name unknown: '', so nobody follows it and nobody can
 * create the key over it), and a bad `initialize` still says a cluster exists: '' (claimed, system
 * not known yet), so nobody bootstraps a second one, nobody refuses or re-clones its data over it,
 * and the leader records its system there again.
 */
export function decodeKeys(names: HaKeyNames, kvs: KeyValue[], revision: string): DecodedKeys {
  const keys: ClusterKeys = { members: [], history: [], pause: false };
  const revisions: KeyRevisions = { members: {} };
  const problems: KeyProblem[] = [];
  const problem = (key: string, why: string) => problems.push({ key, why });

  for (const kv of kvs) {
    const { key, value } = kv;
    if (key === names.initialize) {
      const d = decodeInitialize(value);
      keys.initialize = d.ok ? d.value : '';
      if (!d.ok) problem(key, d.why);
      revisions.initialize = kv.modRevision;
    } else if (key === names.leader) {
      const d = decodeLeader(value, kv.lease);
      keys.leader = d.ok ? d.value : { name: '', lease: kv.lease ?? '0' };
      if (!d.ok) problem(key, `${d.why}: the leader key is held by an unknown member until it expires or is deleted`);
      revisions.leader = kv.modRevision;
    } else if (key.startsWith(names.members)) {
      const name = key.slice(names.members.length);
      const d = decodeMember(value, name);
      if (d.ok) {
        keys.members.push(d.value);
        revisions.members[name] = kv.modRevision;
      } else problem(key, d.why);
    } else if (key === names.sync) {
      const d = decodeSync(value);
      if (d.ok) keys.sync = d.value;
      else problem(key, d.why);
      revisions.sync = kv.modRevision;
    } else if (key === names.history) {
      const d = decodeHistory(value);
      keys.history = d.entries;
      for (const why of d.problems) problem(key, why);
      revisions.history = kv.modRevision;
    } else if (key === names.switchover) {
      const d = decodeSwitchover(value);
      if (d.ok) keys.switchover = d.value;
      else problem(key, d.why);
      revisions.switchover = kv.modRevision;
    } else if (key === names.pause) {
      keys.pause = true;
      revisions.pause = kv.modRevision;
    }
  }
  keys.members.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  return { keys, revisions, problems, revision };
}

/** One line for the log: the keys that could not be read, and why. */
export const describeProblems = (problems: KeyProblem[]): string => problems.map((p) => `${p.key}: ${p.why}`).join('; ');
