/**
 * The etcd half of the HA agent's act layer: one function per etcd-side Action of types.ts. Each
 * returns a small result so the runner can stop the decision's action list at the first failure
 * or lost race; none throws on what etcd answers (a bug of ours still throws).
 *
 * Writes that matter are transactions, so that two agents acting on the same observation cannot
 * both win: create-if-absent for the bootstrap race, `initialize` and the leader key; "still on my
 * lease" for what only the leader may write or delete; compare-and-put on the mod revision for the
 * history. A create-if-absent whose answer did not come (timeout, connection lost) may still have
 * been applied by a member that could not answer: the race and the leader key are read back to see
 * whose value the key holds, so a node never ignores a key it holds, nor claims one it does not.
 */
import { absent, isEtcdError, modRevisionIs, type Compare, type EtcdClient, type EtcdErrorKind, type KeyValue, type Op, type TxnResult } from '../etcd/index.js';
import { decodeInitialize, decodeLeader, decodeMember, encodeHistory, encodeInitialize, encodeLeader, encodeMember, encodeSync, type HaKeyNames } from './keys.js';
import type { Action, AgentMemory, HistoryEntry, MemberKey } from './types.js';

/** What one action came to: done; lost a race or a compare (ends the list, not an error); etcd's lease is gone; or failed. */
export type EtcdActResult =
  | { ok: true; note?: string }
  | { ok: false; lost: true; why: string }
  | { ok: false; expired: true; why: string }
  | { ok: false; error: string; kind?: EtcdErrorKind };

/** What the etcd actions need: the client (its deadline is RETRY_TIMEOUT), the key names, who this agent is, and its memory (the lease lives there). */
export interface EtcdActContext {
  etcd: EtcdClient;
  keys: HaKeyNames;
  /** PGREPL_NODE_NAME */
  name: string;
  /** This agent's run (MemberKey.instance). */
  instance: string;
  /** PGREPL_TTL, seconds. */
  ttl: number;
  /** Read and updated: grant, renew and revoke set `lease`. */
  memory: Pick<AgentMemory, 'lease'>;
  /** The agent's monotonic clock, ms (AgentMemory's). */
  now: () => number;
}

/** The Actions this module carries out. */
export type EtcdAction = Extract<Action, { do: EtcdActionName }>;
type EtcdActionName =
  | 'grant-lease' | 'renew-lease' | 'revoke-lease' | 'publish-member' | 'race-initialize' | 'claim-initialize' | 'set-initialize'
  | 'take-leader-key' | 'release-leader-key' | 'append-history' | 'update-sync-key' | 'clear-switchover';

const ETCD_ACTIONS: ReadonlySet<string> = new Set<EtcdActionName>([
  'grant-lease', 'renew-lease', 'revoke-lease', 'publish-member', 'race-initialize', 'claim-initialize', 'set-initialize',
  'take-leader-key', 'release-leader-key', 'append-history', 'update-sync-key', 'clear-switchover',
]);

export const isEtcdAction = (a: Action): a is EtcdAction => ETCD_ACTIONS.has(a.do);

/** What two actions need beyond the Action itself: this agent's member value, and the promotion act has just made. */
export interface EtcdActFacts {
  member?: MemberKey;
  /** append-history: the new timeline and where it starts (act adds the time and the why). */
  promotion?: { timeline: number; lsn: string };
}

/** Carries out one etcd-side Action. */
export function actEtcd(ctx: EtcdActContext, action: EtcdAction, facts: EtcdActFacts = {}): Promise<EtcdActResult> {
  switch (action.do) {
    case 'grant-lease':
      return grantLease(ctx);
    case 'renew-lease':
      return renewLease(ctx);
    case 'revoke-lease':
      return revokeLease(ctx);
    case 'publish-member':
      return facts.member ? publishMember(ctx, facts.member) : Promise.resolve(bug('publish-member without the member value'));
    case 'race-initialize':
      return raceInitialize(ctx);
    case 'claim-initialize':
      return claimInitialize(ctx, action.system);
    case 'set-initialize':
      return setInitialize(ctx, action.system);
    case 'take-leader-key':
      return takeLeaderKey(ctx);
    case 'release-leader-key':
      return releaseLeaderKey(ctx);
    case 'append-history':
      if (!facts.promotion) return Promise.resolve(bug('append-history without the promotion (timeline, LSN)'));
      return appendHistory(ctx, { ...facts.promotion, leader: ctx.name, at: new Date().toISOString(), why: action.why });
    case 'update-sync-key':
      return updateSyncKey(ctx, action.standbys);
    case 'clear-switchover':
      return clearSwitchover(ctx);
  }
}

// ---------------------------------------------------------------------------------------------
// Results and the shared shapes of the transactions

const done = (note?: string): EtcdActResult => (note ? { ok: true, note } : { ok: true });
const lost = (why: string): EtcdActResult => ({ ok: false, lost: true, why });
const bug = (error: string): EtcdActResult => ({ ok: false, error });

/** An etcd failure as a result; anything else is a bug of ours and is thrown. */
function failed(err: unknown, what: string): EtcdActResult {
  if (isEtcdError(err)) return { ok: false, error: `${what}: ${err.message}`, kind: err.kind };
  throw err;
}

/** After these, a write may have been applied without its answer reaching us. */
const mayHaveApplied = (err: unknown): boolean => isEtcdError(err, 'timeout') || isEtcdError(err, 'unavailable');

/** The lease the keys go on; an action that needs one fails without it (grant-lease comes first). */
function leaseOf(ctx: EtcdActContext): string | undefined {
  return ctx.memory.lease?.id;
}
const noLease = (what: string): EtcdActResult => bug(`${what}: this agent holds no lease (grant-lease first)`);

/** The key is on this lease (a key that does not exist is on lease 0: never equal). */
const onLease = (key: string, lease: string): Compare => ({ key, target: 'lease', lease });

/** The kv the failure branch's first range found (undefined: the key does not exist). */
function rangeFound(r: TxnResult, i = 0): KeyValue | undefined {
  const op = r.responses[i];
  return op?.op === 'range' ? op.kvs[0] : undefined;
}

/** Who holds the leader key, for a message. */
function leaderHolder(kv: KeyValue | undefined): string {
  if (!kv) return 'nobody';
  const d = decodeLeader(kv.value, kv.lease);
  return d.ok ? `${d.value.name} (lease ${d.value.lease})` : `an unreadable value on lease ${kv.lease ?? '0'}`;
}

/** The leader key holds this node's name on this lease: the write that timed out was applied (or an earlier one of ours was). */
function leaderIsMine(ctx: EtcdActContext, kv: KeyValue | undefined, lease: string): boolean {
  if (!kv || kv.lease !== lease) return false;
  const d = decodeLeader(kv.value, kv.lease);
  return d.ok && d.value.name === ctx.name;
}

/**
 * A create-if-absent on the leader key (and, for the race, `initialize` with it) whose answer did
 * not come: reads the leader key back. Ours: won. Someone else's: lost (ours can no longer apply,
 * its compare fails). Absent: unknown (it may still apply later): an error, so the next loop
 * reads again.
 */
async function leaderAfterNoAnswer(ctx: EtcdActContext, lease: string, what: string, cause: unknown): Promise<EtcdActResult> {
  let kv: KeyValue | undefined;
  try {
    kv = await ctx.etcd.get(ctx.keys.leader);
  } catch (err) {
    return failed(err, `${what}: no answer, and reading the leader key back failed too (${isEtcdError(cause) ? cause.message : String(cause)})`);
  }
  if (leaderIsMine(ctx, kv, lease)) return done(`${what}: no answer, but the leader key holds this node on its lease: applied`);
  if (kv) return lost(`${what}: no answer; the leader key is held by ${leaderHolder(kv)}`);
  return failed(cause, `${what}: no answer and the leader key is still absent (the write may yet apply)`);
}

// ---------------------------------------------------------------------------------------------
// The lease

/** A new lease of TTL seconds; its grant counts as a renewal SENT when the request was sent. */
export async function grantLease(ctx: EtcdActContext): Promise<EtcdActResult> {
  const sentAt = ctx.now();
  try {
    const lease = await ctx.etcd.leaseGrant(ctx.ttl);
    ctx.memory.lease = { id: lease.id, lastRenewalSentAt: sentAt };
    return done();
  } catch (err) {
    // A grant applied without an answer leaves a lease nobody uses: it expires after TTL by itself.
    return failed(err, 'grant-lease');
  }
}

/**
 * One keepalive, retried across endpoints until the client's deadline (an etcd election is ridden
 * out, not failed on). The demote deadline counts from when the renewal was SENT: the first
 * attempt's time is kept, which is earlier than (or equal to) the one etcd received, so the
 * deadline is never later than the lease's real end. `expired`: etcd has no such lease any more;
 * every key on it is gone.
 */
export async function renewLease(ctx: EtcdActContext): Promise<EtcdActResult> {
  const lease = ctx.memory.lease;
  if (!lease) return noLease('renew-lease');
  const sentAt = ctx.now();
  try {
    const answer = await ctx.etcd.leaseKeepAlive(lease.id, { untilDeadline: true });
    if (answer.status === 'expired') {
      ctx.memory.lease = undefined;
      return { ok: false, expired: true, why: `renew-lease: etcd says lease ${lease.id} has expired; the keys on it are gone` };
    }
    // Another call may have replaced the lease meanwhile (it should not: the runner is sequential).
    if (ctx.memory.lease?.id === lease.id) ctx.memory.lease = { id: lease.id, lastRenewalSentAt: sentAt };
    return done();
  } catch (err) {
    return failed(err, `renew-lease ${lease.id}`);
  }
}

/** Ends the lease (its member key and, if held, the leader key go with it). Already gone is done too. */
export async function revokeLease(ctx: EtcdActContext): Promise<EtcdActResult> {
  const lease = ctx.memory.lease;
  if (!lease) return done('no lease to revoke');
  try {
    const existed = await ctx.etcd.leaseRevoke(lease.id);
    ctx.memory.lease = undefined;
    return done(existed ? undefined : `lease ${lease.id} had already expired`);
  } catch (err) {
    return failed(err, `revoke-lease ${lease.id}`);
  }
}

// ---------------------------------------------------------------------------------------------
// members/<name>

const PUBLISH_ATTEMPTS = 3;

/**
 * members/<name> = member, on the lease: created if absent, rewritten if it holds this agent's
 * instance (compare-and-put on the revision read, so a second agent of the same name that writes
 * in between is not overwritten); another instance's: lost, naming it (a duplicate name, or this
 * node's earlier run whose lease has not expired yet: decide tells them apart).
 */
export async function publishMember(ctx: EtcdActContext, member: MemberKey): Promise<EtcdActResult> {
  const lease = leaseOf(ctx);
  if (!lease) return noLease('publish-member');
  const key = ctx.keys.member(ctx.name);
  const value = encodeMember({ ...member, name: ctx.name, instance: ctx.instance });
  const put: Op = { put: { key, value, lease } };
  try {
    let condition: Compare = absent(key);
    for (let attempt = 1; attempt <= PUBLISH_ATTEMPTS; attempt++) {
      const r = await ctx.etcd.txn({ compare: [condition], success: [put], failure: [{ range: { key } }] });
      if (r.succeeded) return done();
      const kv = rangeFound(r);
      if (!kv) {
        condition = absent(key); // deleted (its lease expired) since: create it
        continue;
      }
      const held = decodeMember(kv.value, ctx.name);
      if (!held.ok || held.value.instance !== ctx.instance) {
        return lost(`publish-member: ${key} is held by another agent (${held.ok ? `instance ${held.value.instance} at ${held.value.address}` : held.why}); a second agent with the name ${ctx.name}?`);
      }
      condition = modRevisionIs(key, kv.modRevision);
    }
    return bug(`publish-member: ${key} kept changing under this agent (${PUBLISH_ATTEMPTS} attempts)`);
  } catch (err) {
    return failed(err, 'publish-member');
  }
}

// ---------------------------------------------------------------------------------------------
// initialize and the leader key

/**
 * The bootstrap race, one transaction: if neither `initialize` nor `leader` exists, initialize = ''
 * and leader = this node, both on the lease. Lost: someone else's race (or cluster) got there first.
 */
export async function raceInitialize(ctx: EtcdActContext): Promise<EtcdActResult> {
  const lease = leaseOf(ctx);
  if (!lease) return noLease('race-initialize');
  const { initialize, leader } = ctx.keys;
  try {
    const r = await ctx.etcd.txn({
      compare: [absent(initialize), absent(leader)],
      success: [{ put: { key: initialize, value: encodeInitialize(''), lease } }, { put: { key: leader, value: encodeLeader(ctx.name), lease } }],
      failure: [{ range: { key: initialize } }, { range: { key: leader } }],
    });
    if (r.succeeded) return done();
    // This node on this lease already: an earlier attempt (of this call, at another member) applied without its answer.
    if (leaderIsMine(ctx, rangeFound(r, 1), lease)) return done('the race was already won by this node (an earlier attempt applied)');
    const init = rangeFound(r, 0);
    return lost(`race-initialize: lost (initialize ${init ? JSON.stringify(init.value) : 'absent'}, leader ${leaderHolder(rangeFound(r, 1))})`);
  } catch (err) {
    // Both keys are written together: the leader key on this lease tells that the race was won.
    if (mayHaveApplied(err)) return leaderAfterNoAnswer(ctx, lease, 'race-initialize', err);
    return failed(err, 'race-initialize');
  }
}

/** `initialize` holds `system` (as a value this node wrote, or bare digits): the claim is already made. */
function initializeIs(kv: KeyValue | undefined, system: string): boolean {
  if (!kv) return false;
  const d = decodeInitialize(kv.value);
  return d.ok && d.value === system;
}

/** Adopting a cluster: initialize = system if absent (no lease: it outlives every agent). Already that system: done. */
export async function claimInitialize(ctx: EtcdActContext, system: string): Promise<EtcdActResult> {
  const key = ctx.keys.initialize;
  try {
    const r = await ctx.etcd.txn({ compare: [absent(key)], success: [{ put: { key, value: encodeInitialize(system) } }], failure: [{ range: { key } }] });
    if (r.succeeded) return done();
    const kv = rangeFound(r);
    if (initializeIs(kv, system)) return done(`initialize already holds ${system}`);
    return lost(`claim-initialize: initialize already holds ${JSON.stringify(kv?.value ?? '')}, not ${system}`);
  } catch (err) {
    return failed(err, 'claim-initialize');
  }
}

/**
 * The leader records the system its cluster has (the race's '' placeholder, or a value lost or
 * unreadable), with no lease. Only while it holds the leader key: a node whose lease ran out
 * must not overwrite the record of whoever won after it.
 */
export function setInitialize(ctx: EtcdActContext, system: string): Promise<EtcdActResult> {
  return putAsLeader(ctx, 'set-initialize', { key: ctx.keys.initialize, value: encodeInitialize(system) });
}

/** Puts the key (on no lease) only while the leader key is on this agent's lease; lost otherwise. */
async function putAsLeader(ctx: EtcdActContext, what: string, put: { key: string; value: string }): Promise<EtcdActResult> {
  const lease = leaseOf(ctx);
  if (!lease) return noLease(what);
  try {
    const r = await ctx.etcd.txn({ compare: [onLease(ctx.keys.leader, lease)], success: [{ put }], failure: [{ range: { key: ctx.keys.leader } }] });
    return r.succeeded ? done() : lost(`${what}: this node no longer holds the leader key (held by ${leaderHolder(rangeFound(r))})`);
  } catch (err) {
    return failed(err, what);
  }
}

/** leader = this node on its lease, if absent. Lost: another node took it first. */
export async function takeLeaderKey(ctx: EtcdActContext): Promise<EtcdActResult> {
  const lease = leaseOf(ctx);
  if (!lease) return noLease('take-leader-key');
  const key = ctx.keys.leader;
  try {
    const r = await ctx.etcd.txn({ compare: [absent(key)], success: [{ put: { key, value: encodeLeader(ctx.name), lease } }], failure: [{ range: { key } }] });
    if (r.succeeded) return done();
    const kv = rangeFound(r);
    // Held by this node on this lease already (an earlier attempt applied without its answer): it is ours.
    if (leaderIsMine(ctx, kv, lease)) return done('the leader key already holds this node on its lease');
    return lost(`take-leader-key: held by ${leaderHolder(kv)}`);
  } catch (err) {
    if (mayHaveApplied(err)) return leaderAfterNoAnswer(ctx, lease, 'take-leader-key', err);
    return failed(err, 'take-leader-key');
  }
}

/** Deletes the leader key if it is still on this agent's lease; held by someone else (or nobody): nothing to do. */
export async function releaseLeaderKey(ctx: EtcdActContext): Promise<EtcdActResult> {
  const lease = leaseOf(ctx);
  if (!lease) return done('no lease: this agent holds no leader key');
  const key = ctx.keys.leader;
  try {
    const r = await ctx.etcd.txn({ compare: [onLease(key, lease)], success: [{ delete: { key } }], failure: [{ range: { key } }] });
    return r.succeeded ? done() : done(`not released: held by ${leaderHolder(rangeFound(r))}`);
  } catch (err) {
    return failed(err, 'release-leader-key');
  }
}

// ---------------------------------------------------------------------------------------------
// history, sync, switchover

const HISTORY_ATTEMPTS = 5;

const sameEntry = (a: unknown, b: HistoryEntry): boolean => {
  const o = a as Partial<HistoryEntry> | null;
  return typeof o === 'object' && o !== null && o.timeline === b.timeline && o.lsn === b.lsn && o.leader === b.leader;
};

/**
 * Appends one promotion to `history` (one key, a JSON list): compare-and-put on the revision read,
 * again on a lost compare (another node appended meanwhile). Entries this version cannot read are
 * kept as they are (never delete data); a value that is not a list is left alone and reported. An
 * entry already last (an earlier attempt applied without its answer) is not added twice.
 */
export async function appendHistory(ctx: EtcdActContext, entry: HistoryEntry): Promise<EtcdActResult> {
  const key = ctx.keys.history;
  try {
    for (let attempt = 1; attempt <= HISTORY_ATTEMPTS; attempt++) {
      const kv = await ctx.etcd.get(key);
      let entries: unknown[] = [];
      if (kv) {
        const parsed = parseList(kv.value);
        if (!parsed) return bug(`append-history: ${key} is not a JSON list (${JSON.stringify(kv.value.slice(0, 60))}); left as it is: fix or delete it by hand`);
        entries = parsed;
        if (entries.length > 0 && sameEntry(entries[entries.length - 1], entry)) return done('already recorded');
      }
      const r = await ctx.etcd.txn({ compare: [kv ? modRevisionIs(key, kv.modRevision) : absent(key)], success: [{ put: { key, value: encodeHistory([...(entries as HistoryEntry[]), entry]) } }] });
      if (r.succeeded) return done();
    }
    return lost(`append-history: ${key} kept changing (${HISTORY_ATTEMPTS} attempts)`);
  } catch (err) {
    return failed(err, 'append-history');
  }
}

function parseList(raw: string): unknown[] | undefined {
  try {
    const v = JSON.parse(raw) as unknown;
    return Array.isArray(v) ? v : undefined;
  } catch {
    return undefined;
  }
}

/** sync = {leader: this node, standbys}, only while this node holds the leader key (on its lease). */
export function updateSyncKey(ctx: EtcdActContext, standbys: string[]): Promise<EtcdActResult> {
  return putAsLeader(ctx, 'update-sync-key', { key: ctx.keys.sync, value: encodeSync({ leader: ctx.name, standbys }) });
}

/** Deletes the switchover request (handled or refused). Already gone: done. */
export async function clearSwitchover(ctx: EtcdActContext): Promise<EtcdActResult> {
  try {
    await ctx.etcd.delete(ctx.keys.switchover);
    return done();
  } catch (err) {
    return failed(err, 'clear-switchover');
  }
}
