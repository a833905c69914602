/**
 * The HA agent's decision table (SPEC §7), as a pure function: one loop's observation in (the keys
 * under /pgrepl/<cluster>/, this node's postgres, its settings, what the agent remembers), a list
 * of actions and one sentence out, Patroni-style: what it saw, what it does. No I/O here, ever;
 * every row is unit-tested in test/unit/ha-decide.test.ts. The first row that matches decides.
 *
 *   etcd says / this node                            | actions
 *   -------------------------------------------------+-------------------------------------------------
 *   PGDATA the start-up refuses (not a cluster,      | refuse (the start-up's checks run first and say
 *   unreadable, another major)                       | why; this row only guards)
 *   etcd did not answer, I led at the last read      | keep renewing, retry at once. Within last renewal
 *                                                    | sent + TTL − margin: NEVER demote (an etcd
 *                                                    | election takes 1-3 s); past it: demote-fast
 *   etcd did not answer, I did not lead at the last  | demote-fast: never writable without the key
 *   read, my postgres is writable                    |
 *   etcd did not answer, otherwise                   | nothing changes; retry (stopping: fast stop, exit)
 *   a member key of my name from another instance,   | touch nothing while it may be an earlier run's
 *   or the leader key of my name on another lease    | (2 × TTL after start); then refuse: another agent
 *                                                    | runs under this name
 *   I lead, my last renewal sent is older than       | demote-fast (paused or not); read-only: stay so
 *   TTL − margin (timing.ts)                         | until a renewal succeeds (down, e.g. braked by
 *                                                    | the agent: start it read-only)
 *   initialize names another system than PGDATA's    | refuse; PGREPL_RECLONE=auto and another node
 *                                                    | leads: move aside (kept) and clone it
 *   stopping, I lead                                 | fast stop; ask who received the shutdown
 *                                                    | checkpoint; release the key (saying whether
 *                                                    | anyone did: keeping it only delays), exit
 *   stopping, I do not lead                          | fast stop, revoke the lease, exit
 *   pause                                            | renew, publish: report only. Never promote,
 *                                                    | follow, rewind, bootstrap or switch over; the two
 *                                                    | safety demotes stay (above; writable without the
 *                                                    | key): resume, or a manual failover, would
 *                                                    | otherwise make two writable nodes
 *   I lead, initialize '' and no cluster (the race's | initdb-and-lead (again)
 *   winner)                                          |
 *   I lead, a switchover request from me             | fast stop (shutdown checkpoint); once stopped,
 *                                                    | ask the candidate: it received the checkpoint:
 *                                                    | release the key; otherwise start again as the
 *                                                    | primary and clear the request
 *   I lead, postgres down                            | start it as the primary in place (crash recovery)
 *   I lead, postgres read-only                       | demoted by me on this very lease, on the newest
 *                                                    | timeline: resume writable (no new timeline);
 *                                                    | otherwise promote, checkpoint, append history
 *   I lead                                           | renew, publish, claim initialize if '', keep
 *                                                    | `sync` and synchronous_standby_names consistent
 *                                                    | (sync.ts: widen before narrowing)
 *   someone else leads, my postgres is writable      | demote-fast (then follow)
 *   someone else leads, no cluster here              | clone it once it runs as a primary
 *   someone else leads, my timeline is older         | my WAL ends at or before the fork (history):
 *                                                    | follow; else, or unknown: rewind (else move
 *                                                    | aside, clone): the start-up's rows
 *   someone else leads                               | follow it (reload 13+, restart, or start), its
 *                                                    | slot on it; wait while it is not a primary yet
 *   no initialize, no cluster, may bootstrap (not    | race: one transaction creates initialize '' and
 *   PGREPL_ROLE=STANDBY, no other member holds a     | the leader key on my lease; the winner runs
 *   primary's cluster)                               | initdb; the others wait for a leader and clone
 *   no initialize, a primary's cluster here          | claim initialize with its system id, take the
 *                                                    | key, lead (adopting a non-HA primary)
 *   no initialize, otherwise; initialize ''          | wait for a leader
 *   no leader, my postgres is writable               | demote-fast: never writable without the key
 *   no leader, no cluster / postgres down            | wait / start read-only (to take part)
 *   no leader, a switchover or failover names a live | only it takes the key (no comparison: the old
 *   member                                           | leader checked, or the operator chose)
 *   no leader, I am a healthy standby, not           | ask the other candidates' APIs for their
 *   NOFAILOVER, on the newest timeline, within max   | CURRENT received positions; one answers ahead
 *   lag of the last known primary position, in       | (ties: name order): do not take the key; else
 *   `sync` when synchronous                          | take it (transaction), promote, checkpoint,
 *                                                    | append history
 *   no leader, I do not qualify                      | wait, saying why
 *
 * The timing rule (timing.ts): a leader stops accepting writes by its last renewal SENT + TTL −
 * margin (margin = RETRY_TIMEOUT), on its own clock, whatever etcd's client reports; and
 * LOOP_WAIT + 2 × RETRY_TIMEOUT < TTL. Never two writable: a node is writable only while it holds
 * the key, stops by that deadline, and nobody else can take the key before etcd expires the lease,
 * at least a margin later. decide() also returns the deadline (demoteBy) for the runner's timer.
 *
 * Candidates compare only with members that could lead themselves (not NOFAILOVER, in `sync` when
 * synchronous): an asynchronous standby ahead of the synchronous ones holds no acknowledged commit
 * they lack, and must not block the failover. A member that does not answer is passed over (a
 * bounded wait): only one node can win the key's transaction, whoever asks.
 *
 * The loop: observe, decide; a decision that is only ask-members is acted on (bounded), then
 * decide again with `asked`. Actions run in order; the first that fails or loses its race ends the
 * list for this loop. Data is never deleted: what cannot be kept in place is moved aside.
 */
import type { ClusterFound } from '../observe/pgdata.js';
import { compareLsn, lsnDistance, maxLsn, type Lsn } from './lsn.js';
import { planSync } from './sync.js';
import { demoteDeadline, earlierRunGraceMs, retryDelayMs } from './timing.js';
import type { Action, AgentMemory, ClusterKeys, Decision, HaObservation, HaSettings, LeaderKey, LocalPostgres, MemberKey } from './types.js';

interface Ctx {
  obs: HaObservation;
  s: HaSettings;
  mem: AgentMemory;
  keys: ClusterKeys;
  local: LocalPostgres;
  me: string;
  /** The leader key is on this agent's lease. */
  held: boolean;
}

const secs = (ms: number) => `${(ms / 1000).toFixed(1)} s`;
const names = (ns: string[]) => (ns.length ? ns.join(', ') : 'nobody');

const clusterOf = (l: LocalPostgres): ClusterFound | undefined => (l.pgdata.kind === 'cluster' ? l.pgdata : undefined);
const writable = (l: LocalPostgres) => l.running && l.inRecovery === false;
const timelineOf = (l: LocalPostgres) => l.timeline ?? clusterOf(l)?.timeline;
/** What the standby has: received, or replayed (a standby that never streamed). */
const positionOf = (l: LocalPostgres) => maxLsn(l.receivedLsn, l.replayedLsn);
/** Nothing there that initdb would set aside or lose: empty, or an initdb that never finished. */
const emptyForInitdb = (l: LocalPostgres) =>
  l.pgdata.kind === 'missing' || l.pgdata.kind === 'empty' || (l.pgdata.kind === 'interrupted-build' && l.pgdata.build === 'init' && l.pgdata.keptCopies.length === 0);

const lease = (mem: AgentMemory): Action => (mem.lease ? { do: 'renew-lease' } : { do: 'grant-lease' });
const upkeep = (c: Ctx): Action[] => [lease(c.mem), { do: 'publish-member' }];
const member = (c: Ctx, name: string) => c.keys.members.find((m) => m.name === name);
const syncMode = (c: Ctx) => c.s.syncStandbys > 0;

function act(c: Ctx, row: string, say: string, actions: Action[], opts: { soon?: boolean } = {}): Decision {
  const deadline = c.held && c.mem.lease ? demoteDeadline(c.mem.lease.lastRenewalSentAt, c.s.timing) : undefined;
  return {
    row,
    say,
    actions,
    ...(deadline === undefined ? {} : { demoteBy: deadline }),
    nextLoopMs: opts.soon ? retryDelayMs(c.s.timing) : c.s.timing.loopWait * 1000,
  };
}

const refuse = (row: string, message: string): Decision => ({ row, say: message, refuse: message });

/** Why a member may not lead (undefined: it may). */
function barred(c: Ctx, m: MemberKey | undefined, name: string, mustBeSync = syncMode(c)): string | undefined {
  if (!m) return `${name} is not a member (no member key)`;
  if (m.nofailover) return `${name} has PGREPL_NOFAILOVER=on`;
  if (m.role === 'none') return `${name} holds no cluster`;
  if (mustBeSync && !c.keys.sync?.standbys.includes(name)) return `${name} is not a synchronous standby (sync: ${names(c.keys.sync?.standbys ?? [])})`;
  return undefined;
}

export function decide(obs: HaObservation, s: HaSettings, mem: AgentMemory): Decision {
  const local = obs.local;
  const found = local.pgdata;
  if (found.kind === 'not-a-cluster' || found.kind === 'not-a-directory' || found.kind === 'unreadable' || (found.kind === 'cluster' && found.major !== local.major)) {
    return refuse('unusable PGDATA', `internal: PGDATA (${found.kind}) reached the HA table; the start-up's checks refuse it first; nothing was changed`);
  }
  if (!obs.etcd.ok) return etcdDown(obs, s, mem, obs.etcd.error);

  const keys = obs.etcd.keys;
  const held = keys.leader !== undefined && keys.leader.name === s.name && keys.leader.lease === mem.lease?.id;
  const c: Ctx = { obs, s, mem, keys, local, me: s.name, held };

  return nameInUse(c) ?? leaseRunningOut(c) ?? anotherSystem(c) ?? (obs.stopping ? stopping(c) : undefined) ?? (keys.pause ? paused(c) : undefined)
    ?? (held ? leading(c) : keys.leader ? following(c, keys.leader) : noLeader(c));
}

// ---------------------------------------------------------------------------------------------
// etcd does not answer

function etcdDown(obs: HaObservation, s: HaSettings, mem: AgentMemory, error: string): Decision {
  const c: Ctx = { obs, s, mem, keys: { members: [], history: [], pause: false }, local: obs.local, me: s.name, held: mem.ledAtLastRead };
  const saw = `etcd did not answer (${error})`;
  if (obs.stopping) {
    return act(c, 'stopping', `stopping: ${saw}; ${obs.local.running ? 'fast-stopping postgres and ' : ''}exiting (a leader key of mine expires with my lease)`,
      [...(obs.local.running ? [{ do: 'stop-postgres' as const }] : []), { do: 'exit' }]);
  }
  if (!mem.ledAtLastRead && writable(obs.local)) {
    return act(c, 'etcd unreachable × writable without the key', `${saw}, and my postgres accepts writes though I did not lead at the last read: stopping them now (fast stop, sessions killed), read-only from now on; retrying`,
      [{ do: 'demote-fast', why: 'not the leader' }, lease(mem)], { soon: true });
  }
  if (!mem.ledAtLastRead) return act(c, 'etcd unreachable', `${saw}: nothing changes here; retrying`, [lease(mem)], { soon: true });
  const late = lateBy(c);
  if (late !== undefined && writable(obs.local)) {
    return act(c, 'etcd unreachable × lease running out', `${saw}; I lead, but ${late}: stopping writes now (fast stop, sessions killed), before my lease can expire; retrying`,
      [{ do: 'demote-fast', why: 'lease running out' }, lease(mem)], { soon: true });
  }
  if (late !== undefined) {
    return act(c, 'etcd unreachable × lease running out', `${saw}; I led, but ${late}: ${readOnlyUntilRenewed(obs.local)}; retrying`,
      [...startReadOnly(obs.local), lease(mem)], { soon: true });
  }
  const sent = obs.now - mem.lease!.lastRenewalSentAt;
  const left = demoteDeadline(mem.lease!.lastRenewalSentAt, s.timing) - obs.now;
  return act(c, 'etcd unreachable × leader',
    `${saw}; I lead, my last renewal was sent ${secs(sent)} ago: retrying, not demoting (writes stop in ${secs(left)} unless a renewal succeeds)`,
    [lease(mem)], { soon: true });
}

/** When this node leads: why its lease may be running out (its deadline passed), or undefined. */
function lateBy(c: Ctx): string | undefined {
  const l = c.mem.lease;
  if (!l) return 'this agent has no lease';
  const t = c.s.timing;
  if (c.obs.now < demoteDeadline(l.lastRenewalSentAt, t)) return undefined;
  return `my last confirmed renewal was sent ${secs(c.obs.now - l.lastRenewalSentAt)} ago (TTL ${t.ttl} s, margin ${t.retryTimeout} s)`;
}

// ---------------------------------------------------------------------------------------------
// Rows that come before the roles

function nameInUse(c: Ctx): Decision | undefined {
  const other = c.keys.members.find((m) => m.name === c.me && m.instance !== c.s.instance);
  const staleLeader = c.keys.leader?.name === c.me && !c.held ? c.keys.leader : undefined;
  if (!other && !staleLeader) return undefined;
  const what = other
    ? `a member key named ${c.me} from another agent (instance ${other.instance}, postgres ${other.address}, API ${other.api})`
    : `the leader key names ${c.me} on another lease (${staleLeader!.lease})`;
  const since = c.obs.now - c.mem.startedAt;
  const grace = earlierRunGraceMs(c.s.timing);
  if (!c.mem.published && since < grace) {
    return act(c, 'name in use?', `${what} exists: waiting up to ${secs(grace - since)} for it to expire (an earlier run of this node leaves one until its lease ends); touching nothing`, []);
  }
  return refuse('name in use',
    `${what} is still alive ${secs(since)} after this agent started: another agent runs as PGREPL_NODE_NAME=${c.me}. Give every node its own PGREPL_NODE_NAME; nothing was changed`);
}

function leaseRunningOut(c: Ctx): Decision | undefined {
  if (!c.held) return undefined;
  const late = lateBy(c);
  if (late === undefined) return undefined;
  if (writable(c.local)) {
    return act(c, 'lease running out', `I lead, but ${late}: stopping writes now (fast stop, sessions killed), before my lease can expire`,
      [{ do: 'demote-fast', why: 'lease running out' }, lease(c.mem)], { soon: true });
  }
  return act(c, 'lease running out', `I lead, but ${late}: ${readOnlyUntilRenewed(c.local)}`, [...startReadOnly(c.local), lease(c.mem)], { soon: true });
}

/** A leader past its deadline whose postgres was stopped (the agent's brake, or a crash) serves reads meanwhile. */
const startReadOnly = (l: LocalPostgres): Action[] => (l.running ? [] : [{ do: 'start-postgres', as: 'read-only' }]);
const readOnlyUntilRenewed = (l: LocalPostgres) =>
  l.running ? 'staying read-only until a renewal succeeds' : 'postgres is down: starting it read-only, writable again only once a renewal succeeds';

/** The leader's member key, if it runs as a primary that can be cloned or followed. */
function runningLeader(c: Ctx): MemberKey | undefined {
  const m = c.keys.leader && !c.held ? member(c, c.keys.leader.name) : undefined;
  return m && m.role === 'primary' && m.state !== 'stopped' ? m : undefined;
}

function anotherSystem(c: Ctx): Decision | undefined {
  const found = clusterOf(c.local);
  const system = c.keys.initialize;
  if (!found || !system || found.systemIdentifier === undefined || found.systemIdentifier === system) return undefined;
  const what = `PGDATA holds system ${found.systemIdentifier} but this cluster (initialize) is system ${system}`;
  if (c.s.reclone !== 'auto' || c.held) {
    return refuse('another system',
      `${what}: this data belongs to another cluster. Point the node at its own cluster (PGREPL_CLUSTER, PGREPL_ETCD_ENDPOINTS), or set PGREPL_RECLONE=auto to move the data aside (kept inside PGDATA) and clone; nothing was changed`);
  }
  const leader = runningLeader(c);
  if (!leader) return act(c, 'another system', `${what}; PGREPL_RECLONE=auto: waiting for a running leader to clone`, upkeep(c));
  return act(c, 'another system', `${what}; PGREPL_RECLONE=auto: moving the data aside (kept) and cloning ${leader.name}`,
    [...upkeep(c), { do: 'clone-from-leader', leader: leader.name, address: leader.address, moveAside: true }]);
}

// ---------------------------------------------------------------------------------------------
// Stopping (SIGTERM) and pause

function stopping(c: Ctx): Decision {
  const exit: Action[] = [{ do: 'revoke-lease' }, { do: 'exit' }];
  if (!c.held) {
    return act(c, 'stopping', `stopping: ${c.local.running ? 'fast-stopping postgres, then ' : ''}leaving the cluster (lease revoked)`,
      [...(c.local.running ? [{ do: 'stop-postgres' as const }] : []), ...exit]);
  }
  if (c.local.running) {
    return act(c, 'stopping × leader', 'stopping: I lead; fast-stopping postgres (sessions killed, shutdown checkpoint), keeping the leader key until a standby received it',
      [lease(c.mem), { do: 'stop-postgres' }], { soon: true });
  }
  const end = c.local.shutdownEnd;
  if (end === undefined) {
    return act(c, 'stopping × leader', 'stopping: I lead and postgres is down (not a clean stop): releasing the leader key', [{ do: 'release-leader-key' }, ...exit]);
  }
  const candidates = c.keys.members.filter((m) => m.name !== c.me && barred(c, m, m.name) === undefined).map((m) => m.name);
  if (candidates.length > 0 && !c.obs.asked) return ask(c, candidates, 'stopping: who received my shutdown checkpoint');
  const { got, report } = received(c, candidates, end);
  return act(c, 'stopping × leader',
    got.length > 0
      ? `stopping: postgres stopped cleanly at ${end}; ${names(got)} received it (${report}): releasing the leader key`
      : `stopping: postgres stopped cleanly at ${end}; no standby that may lead confirmed it (${report || 'none'}): releasing the leader key anyway`,
    [{ do: 'release-leader-key' }, ...exit]);
}

function ask(c: Ctx, who: string[], why: string): Decision {
  return act(c, 'ask members', `${why}: asking ${names(who)} for their current received position`, [{ do: 'ask-members', names: who }], { soon: true });
}

/** Which of the members asked have received up to `end`, and a report of every answer. */
function received(c: Ctx, who: string[], end: Lsn): { got: string[]; report: string } {
  const got: string[] = [];
  const parts = who.map((n) => {
    const a = c.obs.asked?.[n];
    if (!a || 'error' in a) return `${n} did not answer`;
    if (compareLsn(a.received, end) >= 0) got.push(n);
    return `${n} at ${a.received}`;
  });
  return { got, report: parts.join(', ') };
}

function paused(c: Ctx): Decision {
  const pg = c.local.running ? (c.local.inRecovery ? 'read-only' : 'writable') : 'down';
  if (writable(c.local) && !c.held) return notTheLeader(c, 'paused, but ');
  const who = c.held ? 'I lead' : c.keys.leader ? `${c.keys.leader.name} leads` : 'no leader';
  return act(c, 'pause', `paused: ${who}; my postgres is ${pg}: reporting only${c.held ? ' (the leader key is still renewed)' : ''}`, upkeep(c));
}

/** A writable postgres without the key: stop its writes at once. */
function notTheLeader(c: Ctx, prefix = ''): Decision {
  const who = c.keys.leader ? `${c.keys.leader.name} leads` : 'nobody holds the leader key';
  return act(c, 'writable without the key', `${prefix}${who} and my postgres accepts writes: stopping them now (fast stop, sessions killed), read-only from now on`,
    [...upkeep(c), { do: 'demote-fast', why: 'not the leader' }]);
}

// ---------------------------------------------------------------------------------------------
// I hold the leader key

function leading(c: Ctx): Decision {
  const found = clusterOf(c.local);
  if (!found) {
    if (c.keys.initialize === '' && emptyForInitdb(c.local)) {
      return act(c, 'bootstrap winner', 'I won the bootstrap race (initialize is claimed, I lead) but there is no cluster yet: initdb and lead', [...upkeep(c), { do: 'initdb-and-lead' }]);
    }
    return act(c, 'leader without data', `I hold the leader key but PGDATA holds no cluster (${c.local.pgdata.kind}): releasing the key`, [...upkeep(c), { do: 'release-leader-key' }]);
  }
  const claim: Action[] = found.systemIdentifier && c.keys.initialize !== found.systemIdentifier ? [{ do: 'set-initialize', system: found.systemIdentifier }] : [];
  const base = [...upkeep(c), ...claim];

  const sw = c.keys.switchover;
  if (sw && (sw.from === undefined || sw.from !== c.me)) {
    return act(c, 'stale switchover', `I lead; a ${sw.from ? `switchover from ${sw.from}` : `failover to ${sw.to}`} was asked, but I lead: clearing the request`, [...base, { do: 'clear-switchover' }]);
  }
  if (sw && (sw.at === undefined || Date.parse(sw.at) <= c.obs.wallNow)) {
    const d = switchingOver(c, base, sw.to);
    if (d) return d;
  }
  const scheduled = sw?.at ? `; switchover scheduled at ${sw.at}` : '';

  if (!c.local.running) {
    return found.standby
      ? act(c, 'leader, postgres down', `I lead; postgres is down and PGDATA holds a standby: starting it read-only, to promote it${scheduled}`, [...base, { do: 'start-postgres', as: 'read-only' }])
      : act(c, 'leader, postgres down', `I lead; postgres is down: starting it again as the primary, in place (crash recovery)${scheduled}`, [...base, { do: 'start-postgres', as: 'primary' }]);
  }
  const t = timelineOf(c.local) ?? 0;
  if (c.local.inRecovery) {
    const d = c.local.demoted;
    if (d && d.lease === c.mem.lease?.id && d.timeline === t && t >= newestTimeline(c)) {
      return act(c, 'leader, read-only', `I lead again on the lease I demoted on (timeline ${t}, nobody promoted since): writable again, same timeline`, [...base, { do: 'resume-writable' }]);
    }
    return act(c, 'leader, read-only', `I lead; postgres is read-only (timeline ${t}): promoting it`, [...base, ...promotion(c, 'leader key held by a standby')], { soon: true });
  }
  const syncing = syncMode(c)
    ? planSync({
        want: c.s.syncStandbys,
        key: c.keys.sync?.leader === c.me ? c.keys.sync.standbys : [],
        required: c.local.synchronous.standbys,
        changedAt: c.local.synchronous.changedAt,
        current: c.local.writeLsn,
        replication: c.local.replication,
        mayLead: (n) => n !== c.me && barred(c, member(c, n), n, false) === undefined,
      })
    : { actions: [], say: '', pending: false };
  const sent = c.obs.now - c.mem.lease!.lastRenewalSentAt;
  return act(c, 'leader', `I lead (timeline ${t}${c.local.writeLsn ? `, at ${c.local.writeLsn}` : ''}; last renewal sent ${secs(sent)} ago): renewing${claim.length ? `, recording system ${found.systemIdentifier} in initialize` : ''}${syncing.say ? `; ${syncing.say}` : ''}${scheduled}`,
    [...base, ...syncing.actions], { soon: syncing.pending });
}

/**
 * Promote, checkpoint, record it. In synchronous mode first require ANY n of whichever standbys
 * stream (`*`): the synchronous_standby_names this node carries from its time as a standby (its
 * postgresql.auto.conf, cloned from a leader) may name the dead leader, and every commit would
 * wait for it until sync.ts had widened and narrowed the list, loops later. `*` is safe for the
 * key: a standby enters `sync` only once it flushed past the position where specific names were
 * set, so it holds every WAL record before, whoever acknowledged them (sync.ts).
 */
const promotion = (c: Ctx, why: string): Action[] => [
  ...(syncMode(c) ? [{ do: 'set-synchronous-standby-names' as const, standbys: ['*'] }] : []),
  { do: 'promote' }, { do: 'checkpoint' }, { do: 'append-history', why },
];

/** The newest timeline anyone reports: the history's, the members'. */
function newestTimeline(c: Ctx): number {
  return Math.max(0, ...c.keys.history.map((h) => h.timeline), ...c.keys.members.map((m) => m.timeline ?? 0));
}

/** The leader's side of a due switchover; undefined when it is not its business now (postgres crashed: restart first). */
function switchingOver(c: Ctx, base: Action[], to: string | undefined): Decision | undefined {
  const t = timelineOf(c.local);
  const why = (m: MemberKey | undefined, n: string) =>
    barred(c, m, n) ?? (m!.role !== 'standby' || m!.state === 'stopped' ? `${n} is not a running standby` : m!.timeline !== t ? `${n} is on timeline ${m!.timeline}, mine is ${t}` : undefined);
  const candidates = c.keys.members.filter((m) => m.name !== c.me && why(m, m.name) === undefined);
  if (to !== undefined) {
    const no = to === c.me ? `${to} is this node` : why(member(c, to), to);
    if (no) return act(c, 'switchover refused', `switchover to ${to} asked, but ${no}: clearing the request; I stay the leader`, [...base, { do: 'clear-switchover' }]);
  } else if (candidates.length === 0) {
    return act(c, 'switchover refused', 'switchover asked, but no standby may take over (running, same timeline, not NOFAILOVER, synchronous when in synchronous mode): clearing the request; I stay the leader',
      [...base, { do: 'clear-switchover' }]);
  }
  const target = to ? `to ${to}` : `to the best of ${names(candidates.map((m) => m.name))}`;
  if (writable(c.local)) {
    return act(c, 'switchover', `switchover ${target}: fast-stopping postgres (sessions killed, shutdown checkpoint), keeping the leader key until it has received everything`,
      [...base, { do: 'stop-postgres' }], { soon: true });
  }
  const end = c.local.shutdownEnd;
  if (c.local.running || end === undefined) return undefined;
  const asked = to ? [to] : candidates.map((m) => m.name);
  if (!c.obs.asked) return ask(c, asked, `switchover ${target}: postgres stopped cleanly at ${end}`);
  const { got, report } = received(c, asked, end);
  if (got.length > 0) {
    return act(c, 'switchover', `switchover ${target}: ${names(got)} received my shutdown checkpoint (${report}; stopped at ${end}): releasing the leader key`,
      [lease(c.mem), { do: 'release-leader-key' }]);
  }
  return act(c, 'switchover abandoned', `switchover ${target}: nobody received my shutdown checkpoint at ${end} (${report}): abandoning it, starting again as the primary`,
    [...base, { do: 'clear-switchover' }, { do: 'start-postgres', as: 'primary' }]);
}

// ---------------------------------------------------------------------------------------------
// Someone else leads

function following(c: Ctx, leader: LeaderKey): Decision {
  if (writable(c.local)) return notTheLeader(c);
  const L = member(c, leader.name);
  const ready = L && L.role === 'primary' && L.state !== 'stopped' && L.timeline !== undefined ? L : undefined;
  const found = clusterOf(c.local);
  if (!ready) {
    // Soon, not LOOP_WAIT: its member key is no wake-up, and in synchronous mode its commits wait for us.
    return act(c, 'follow', `${leader.name} leads but ${L ? 'does not run as a primary yet' : 'has not published its member key yet'}: waiting`, upkeep(c), { soon: true });
  }
  const lt = ready.timeline!;
  if (!found) {
    return act(c, 'clone', `${leader.name} leads (timeline ${lt}) and PGDATA holds no cluster (${c.local.pgdata.kind}): cloning it`,
      [...upkeep(c), { do: 'clone-from-leader', leader: ready.name, address: ready.address, moveAside: false }]);
  }
  const t = timelineOf(c.local)!;
  const standby = c.local.running ? c.local.inRecovery === true : found.standby;
  if (t > lt) {
    return act(c, 'follow', `${leader.name} leads on timeline ${lt}, older than mine (${t}): cannot follow it; waiting`, upkeep(c));
  }
  if (t === lt && !standby) {
    return act(c, 'follow',
      `${leader.name} leads on my timeline ${t} while PGDATA holds a primary of that timeline: it cannot be followed without a newer timeline; waiting (if this lasts, the two were written apart: stop this node and move its data away to clone)`,
      upkeep(c));
  }
  if (t < lt) {
    const fork = c.keys.history.find((h) => h.timeline === t + 1)?.lsn;
    // A standby's WAL may reach past its last restartpoint: only a running one says where it ends.
    const end = c.local.running ? positionOf(c.local) : !found.standby && found.state === 'shut down' ? c.local.shutdownEnd : undefined;
    if (!(fork && end && compareLsn(end, fork) <= 0)) {
      const why = !fork ? `the history does not say where timeline ${t + 1} began` : !end ? `where my WAL ends is unknown` : `my WAL reaches ${end}, past the fork at ${fork}`;
      return act(c, 'rejoin', `${leader.name} leads on timeline ${lt}; I am on timeline ${t} and ${why}: rewind (else move aside, kept, and clone), then follow`,
        [...upkeep(c), { do: 'rewind-or-reclone', leader: ready.name, address: ready.address }]);
    }
  }
  const how = !c.local.running ? 'start' : c.local.following === ready.address ? undefined : c.local.major >= 13 ? 'reload' : 'restart';
  const slot: Action[] = c.s.slots && c.local.slotOnLeader === false ? [{ do: 'create-slot', on: ready.name }] : [];
  const at = `${leader.name} leads (timeline ${lt}${ready.writeLsn ? `, at ${ready.writeLsn}` : ''})`;
  if (!how) {
    return act(c, 'follow', `${at}: following it (timeline ${t}, received ${c.local.receivedLsn ?? 'nothing yet'})${slot.length ? '; creating my slot on it' : ''}`, [...upkeep(c), ...slot]);
  }
  const verb = how === 'start' ? 'starting as its standby' : `re-pointing to it (${how}${how === 'restart' ? `: PostgreSQL ${c.local.major} reads primary_conninfo only at start` : ''})`;
  return act(c, 'follow', `${at}: ${verb}, no copy${slot.length ? '; creating my slot on it' : ''}`,
    [...upkeep(c), ...slot, { do: 'follow-leader', leader: ready.name, address: ready.address, how }]);
}

// ---------------------------------------------------------------------------------------------
// No leader

function noLeader(c: Ctx): Decision {
  const found = clusterOf(c.local);
  const init = c.keys.initialize;
  if (init === undefined) return bootstrap(c, found);
  if (writable(c.local)) return notTheLeader(c);
  if (init === '') return act(c, 'bootstrap: waiting', 'another node won the bootstrap race (initialize is claimed) and has not taken the lead yet: waiting to clone it', upkeep(c));
  if (!found) return act(c, 'no leader', `no leader, and PGDATA holds no cluster (${c.local.pgdata.kind}): waiting for a leader to clone`, upkeep(c));
  if (!c.local.running && c.keys.switchover?.from === c.me) {
    return act(c, 'no leader', 'no leader; I handed the lead over (switchover) and stopped cleanly: waiting for the new leader to follow it', upkeep(c));
  }
  if (!c.local.running) return act(c, 'no leader', 'no leader; postgres is down: starting it read-only, to take part', [...upkeep(c), { do: 'start-postgres', as: 'read-only' }]);
  return race(c);
}

function bootstrap(c: Ctx, found: ClusterFound | undefined): Decision {
  const hintStandby = c.s.hint === 'STANDBY';
  if (found && !found.standby && !hintStandby && found.systemIdentifier) {
    return act(c, 'adopt', `no cluster in etcd yet and PGDATA holds a primary's cluster (system ${found.systemIdentifier}): claiming initialize with it and leading`,
      [...upkeep(c), { do: 'claim-initialize', system: found.systemIdentifier }, { do: 'take-leader-key' }, ...(c.local.running ? [] : [{ do: 'start-postgres' as const, as: 'primary' as const }])]);
  }
  if (writable(c.local)) return notTheLeader(c);
  if (emptyForInitdb(c.local) && !hintStandby) {
    const adopter = c.keys.members.find((m) => m.name !== c.me && m.role === 'primary');
    if (adopter) return act(c, 'bootstrap: waiting', `no cluster in etcd yet, but ${adopter.name} holds a primary's cluster: leaving it to claim the cluster; waiting to clone it`, upkeep(c));
    return act(c, 'bootstrap race', `no cluster yet (no initialize) and PGDATA is ${c.local.pgdata.kind === 'interrupted-build' ? 'an interrupted initdb' : c.local.pgdata.kind}: racing to initialise it (the winner leads)`,
      [...upkeep(c), { do: 'race-initialize' }, { do: 'initdb-and-lead' }]);
  }
  const why = hintStandby
    ? 'PGREPL_ROLE=STANDBY never initialises one'
    : found?.standby
      ? 'PGDATA holds a standby, which waits for its primary to claim the cluster'
      : found
        ? `PGDATA's system identifier is unknown`
        : `PGDATA (${c.local.pgdata.kind}) is not empty enough to initialise`;
  return act(c, 'bootstrap: waiting', `no cluster yet (no initialize); ${why}: waiting for a leader`, upkeep(c));
}

/** The failover race: a healthy standby takes the key only if no candidate that answers is ahead. */
function race(c: Ctx): Decision {
  const me = c.me;
  const pos = positionOf(c.local);
  const t = timelineOf(c.local) ?? 0;
  const sw = c.keys.switchover;
  const swTo = sw?.to !== undefined && member(c, sw.to) ? sw.to : undefined;
  const take = (why: string, say: string) =>
    act(c, 'failover', say, [...upkeep(c), { do: 'take-leader-key' }, ...promotion(c, why), ...(sw ? [{ do: 'clear-switchover' as const }] : [])], { soon: true });
  const wait = (why: string) => act(c, 'no leader: waiting', `no leader; ${why}: not taking the lock`, upkeep(c));

  if (c.s.nofailover) return wait('PGREPL_NOFAILOVER=on here');
  if (swTo !== undefined && swTo !== me) return wait(`a ${sw!.from ? `switchover from ${sw!.from}` : 'failover'} to ${swTo} was asked: it takes the lock`);
  if (swTo === me) {
    return take(sw!.from ? `switchover from ${sw!.from}` : 'failover asked', `no leader; a ${sw!.from ? `switchover from ${sw!.from}` : 'failover'} to me was asked: taking the lock and promoting`);
  }
  // The leader that handed over (switchover) stays out: it stopped where the others received to.
  const others = c.keys.members.filter((m) => m.name !== me && m.name !== sw?.from && barred(c, m, m.name) === undefined);
  if (sw?.from === me && others.length > 0) return wait(`I am switching over to ${names(others.map((m) => m.name))}`);
  if (pos === undefined) return wait('my position is unknown');
  const newest = newestTimeline(c);
  if (t < newest) return wait(`I am on timeline ${t}, the cluster reached timeline ${newest}`);
  const last = maxLsn(c.mem.lastLeaderLsn, ...c.keys.members.filter((m) => m.role === 'primary').map((m) => m.writeLsn));
  if (last !== undefined && lsnDistance(pos, last) > BigInt(c.s.maxLagOnFailover)) {
    return wait(`I am ${lsnDistance(pos, last)} bytes behind the last known primary position (${pos} < ${last}), over PGREPL_MAX_LAG_ON_FAILOVER=${c.s.maxLagOnFailover}`);
  }
  if (syncMode(c) && !c.keys.sync?.standbys.includes(me)) {
    const sync = c.keys.sync?.standbys ?? [];
    return wait(`synchronous mode and I am not a synchronous standby (sync: ${names(sync)})${sync.length === 0 ? ': no node may lead without losing acknowledged commits; pgrepl failover --to NODE forces one' : ''}`);
  }
  if (others.length > 0 && !c.obs.asked) return ask(c, others.map((m) => m.name), `no leader; I may take over at ${pos}`);
  const report: string[] = [];
  for (const m of others) {
    const a = c.obs.asked?.[m.name];
    if (!a || 'error' in a) {
      report.push(`${m.name} did not answer`);
      continue;
    }
    if (a.timeline > t) return wait(`${m.name} is on a newer timeline (${a.timeline} > ${t})`);
    const cmp = a.timeline < t ? -1 : compareLsn(a.received, pos);
    if (cmp > 0) return wait(`${m.name} is ahead of me (${a.received} > ${pos})`);
    if (cmp === 0 && m.name < me) return wait(`${m.name} is as far as I am (${pos}) and comes first by name`);
    report.push(`${m.name} at ${a.received}`);
  }
  return take(`no leader; ${me} was the healthiest at ${pos}`,
    `no leader; I am the healthiest (${pos}${report.length ? `; ${report.join(', ')}` : ''}): taking the lock and promoting`);
}
