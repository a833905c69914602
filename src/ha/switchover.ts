/**
 * What `pgrepl switchover` and `pgrepl failover` decide, pure (no I/O): whether a request may be
 * written (refused in one line, before anything is written, when the agents would refuse it or
 * never act on it), how much a failover may lose, and how far a written request has got.
 *
 * The agents' side is decide.ts: the leader with a request from itself fast-stops, waits until the
 * candidate received its shutdown checkpoint and releases the key, and the named candidate (or the
 * best one) takes it; with no leader a request {to} makes only `to` take the key. A leader clears
 * a request it refuses. The checks here are the ones decide.ts makes, so that a request the
 * leader would only clear is refused here, with the reason, instead.
 */
import { lsnDistance, maxLsn, type Lsn } from './lsn.js';
import type { Answer, ClusterKeys, MemberKey, SwitchoverRequest } from './types.js';

export type RequestCheck = { request: SwitchoverRequest } | { refuse: string };

const NOTHING = 'nothing written';

/** `sync` names standbys: synchronous mode, in which only they hold every acknowledged commit. */
const syncStandbys = (keys: ClusterKeys): string[] | undefined => (keys.sync && keys.sync.standbys.length > 0 ? keys.sync.standbys : undefined);

/** A request already written, as one clause. */
export function describeRequest(r: SwitchoverRequest): string {
  return r.from ? `a switchover from ${r.from} to ${r.to ?? 'the best candidate'}` : `a failover to ${r.to ?? 'the best candidate'}`;
}

/** Refusals both commands share: a pause (the agents act on no request) and a request already pending. */
function blocked(cluster: string, keys: ClusterKeys, switchoverKey: string): string | undefined {
  if (keys.pause) return `cluster ${cluster} is paused: the agents carry out no switchover or failover while paused; run pgrepl resume first; ${NOTHING}`;
  if (keys.switchover) {
    return `${describeRequest(keys.switchover)} is already pending: wait for it (pgrepl list shows it), or withdraw it with etcdctl del ${switchoverKey}; ${NOTHING}`;
  }
  return undefined;
}

/** Why a member cannot lead at all; undefined: it may. */
function cannotLead(m: MemberKey): string | undefined {
  if (m.nofailover) return `${m.name} has PGREPL_NOFAILOVER=on: it never becomes the primary`;
  if (m.role === 'none') return `${m.name} holds no cluster yet (cloning, or waiting to clone)`;
  return undefined;
}

/** Why a member cannot take over from `leader` in a switchover (decide.ts's checks); undefined: it may. */
function cannotTakeOver(keys: ClusterKeys, m: MemberKey, leader: MemberKey | undefined): string | undefined {
  const no = cannotLead(m);
  if (no) return no;
  if (m.role !== 'standby' || m.state === 'stopped') return `${m.name} is not a running standby (role ${m.role}, state ${m.state})`;
  const sync = syncStandbys(keys);
  if (sync && !sync.includes(m.name)) {
    return `${m.name} is not a synchronous standby (sync: ${sync.join(', ')}): in synchronous mode only those hold every acknowledged commit`;
  }
  if (leader?.timeline !== undefined && m.timeline !== undefined && m.timeline !== leader.timeline) {
    return `${m.name} is on timeline ${m.timeline}, the leader ${leader.name} on timeline ${leader.timeline}: it must follow the leader first`;
  }
  return undefined;
}

const memberNames = (keys: ClusterKeys) => (keys.members.length ? keys.members.map((m) => m.name).join(', ') : 'none');

function notAMember(cluster: string, keys: ClusterKeys, name: string): string {
  return `${name} is not a member of cluster ${cluster} (no member key; members: ${memberNames(keys)}); ${NOTHING}`;
}

/** `pgrepl switchover [--to NODE]`: the request to write, or why not. */
export function checkSwitchover(cluster: string, keys: ClusterKeys, switchoverKey: string, to?: string): RequestCheck {
  if (!keys.leader) return { refuse: `cluster ${cluster} has no leader: there is nothing to switch over from; pgrepl failover --to NODE makes NODE the leader (it may lose data); ${NOTHING}` };
  const from = keys.leader.name;
  if (from === '') return { refuse: `the leader key of cluster ${cluster} cannot be read (see pgrepl list): the leader is unknown; ${NOTHING}` };
  const why = blocked(cluster, keys, switchoverKey);
  if (why) return { refuse: why };
  const leader = keys.members.find((m) => m.name === from);
  if (to !== undefined) {
    if (to === from) return { refuse: `${to} is the leader already; ${NOTHING}` };
    const m = keys.members.find((x) => x.name === to);
    if (!m) return { refuse: notAMember(cluster, keys, to) };
    const no = cannotTakeOver(keys, m, leader);
    return no ? { refuse: `${no}; ${NOTHING}` } : { request: { from, to } };
  }
  const others = keys.members.filter((m) => m.name !== from);
  if (others.some((m) => cannotTakeOver(keys, m, leader) === undefined)) return { request: { from } };
  const reasons = others.map((m) => cannotTakeOver(keys, m, leader)).join('; ');
  return { refuse: `no member may take over from ${from}: ${others.length ? reasons : `${from} is the only member`}; ${NOTHING}` };
}

/** `pgrepl failover --to NODE`: the request to write, or why not. */
export function checkFailover(cluster: string, keys: ClusterKeys, switchoverKey: string, to: string): RequestCheck {
  if (keys.leader) {
    const who = keys.leader.name || 'a member (its leader key cannot be read)';
    return { refuse: `${who} leads cluster ${cluster}: failover is for a cluster without a leader; pgrepl switchover --to ${to} hands over without losing anything; ${NOTHING}` };
  }
  const why = blocked(cluster, keys, switchoverKey);
  if (why) return { refuse: why };
  const m = keys.members.find((x) => x.name === to);
  if (!m) return { refuse: notAMember(cluster, keys, to) };
  const no = cannotLead(m);
  return no ? { refuse: `${no}; ${NOTHING}` } : { request: { to } };
}

/**
 * The furthest position a primary is known to have reached: the write positions members with a
 * primary's cluster published, the other members' received positions (a standby holds only what
 * a primary wrote), and where the newest promotion began. Undefined: nothing is known.
 */
export function lastPrimaryPosition(keys: ClusterKeys, except: string): Lsn | undefined {
  const others = keys.members.filter((m) => m.name !== except);
  return maxLsn(
    ...others.filter((m) => m.role === 'primary').map((m) => m.writeLsn),
    ...others.map((m) => maxLsn(m.receivedLsn, m.replayedLsn)),
    keys.history.at(-1)?.lsn,
  );
}

/** What `pgrepl failover` says before it writes: how far `to` got (asked live, else as last published) and how much may be lost. */
export function lossLine(keys: ClusterKeys, to: string, answer: Answer): string {
  const m = keys.members.find((x) => x.name === to);
  const published = m && maxLsn(m.receivedLsn, m.replayedLsn);
  let has: { at: Lsn; said: string };
  if ('error' in answer) {
    const silent = `${to} did not answer on its API (${answer.error})`;
    if (!published) return `${silent} and has published no position: how much may be lost cannot be said`;
    has = { at: published, said: `${silent}; it last published ${published}` };
  } else has = { at: answer.received, said: `${to} has received up to ${answer.received}` };
  const last = lastPrimaryPosition(keys, to);
  if (last === undefined) return `${has.said}; no primary position is known (no primary's member key, no history): how much may be lost cannot be said`;
  const behind = lsnDistance(has.at, last);
  return behind > 0n
    ? `${has.said}; the last known primary position was ${last}: up to ${behind} bytes of acknowledged WAL may be lost`
    : `${has.said}; the last known primary position was ${last}: nothing known to be lost`;
}

/** How far a written request has got, from one read of the keys. */
export type Progress =
  | { state: 'moved'; leader: string }
  | { state: 'refused' }
  | { state: 'waiting'; why: string };

const sameRequest = (a: SwitchoverRequest | undefined, b: SwitchoverRequest) => a !== undefined && a.from === b.from && a.to === b.to && a.at === b.at;

/**
 * `request` was written while `request.from` led (a switchover) or nobody did (a failover). Moved:
 * the leader key names another node. Refused: the request is gone and nothing moved (the leader,
 * or the named candidate, cleared it: its log says why). Otherwise: what it waits for.
 */
export function progress(keys: ClusterKeys, request: SwitchoverRequest): Progress {
  const leader = keys.leader?.name;
  if (leader !== undefined && leader !== '' && leader !== request.from) return { state: 'moved', leader };
  const pending = sameRequest(keys.switchover, request);
  if (!pending && (leader === request.from || leader === undefined)) return { state: 'refused' };
  if (leader === '') return { state: 'waiting', why: `the leader key cannot be read (see pgrepl list)${pending ? '; the request is pending' : ''}` };
  if (leader === undefined) {
    const taker = request.to ? `${request.to} has not taken it (see ${request.to}'s log)` : `no candidate has taken it yet (see the candidates' logs)`;
    return { state: 'waiting', why: `no leader yet${request.from ? `: ${request.from} released the leader key` : ''}; ${taker}` };
  }
  return { state: 'waiting', why: `${leader} still leads and has not handed over; the request is pending (is its agent running? see ${leader}'s log)` };
}
