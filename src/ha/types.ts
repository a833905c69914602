/**
 * What one loop of the HA agent observes, what it remembers between loops, and what decide.ts
 * returns. Facts only here: nothing in these types decides.
 */
import type { PgdataState } from '../observe/pgdata.js';
import type { Lsn } from './lsn.js';
import type { HaTiming } from './timing.js';

// ---------------------------------------------------------------------------------------------
// The keys under /pgrepl/<cluster>/ (values are JSON; the README documents each)

/** `leader`: the primary's name, on its agent's lease. */
export interface LeaderKey {
  name: string;
  /** The etcd lease the key is attached to (decimal string: lease IDs exceed JS numbers). */
  lease: string;
}

/**
 * `members/<name>`: what each agent publishes every loop, on its lease (the same lease as its
 * leader key, when it holds that: as Patroni's etcd3 does, one lease per agent).
 */
export interface MemberKey {
  name: string;
  /** Random per agent start: tells a second agent of the same name from this one. */
  instance: string;
  /** host:port of its postgres. */
  address: string;
  /** host:port of its HTTP API. */
  api: string;
  /** What its PGDATA holds: a primary's cluster, a standby's, or no cluster yet. */
  role: 'primary' | 'standby' | 'none';
  /** stopped; running (a primary, or a standby not streaming); streaming (a standby receiving WAL). */
  state: 'stopped' | 'running' | 'streaming';
  timeline?: number;
  receivedLsn?: Lsn;
  replayedLsn?: Lsn;
  /** A primary's current write position. */
  writeLsn?: Lsn;
  /** A standby whose walreceiver streams: host:port it streams from (the leader's address, or another member's in a cascade). */
  upstream?: string;
  nofailover: boolean;
}

/** `history`: one entry per promotion. */
export interface HistoryEntry {
  /** The timeline the promotion started. */
  timeline: number;
  /** Where it starts: WAL of the previous timeline past this point never reached the new one. */
  lsn: Lsn;
  leader: string;
  /** ISO time. */
  at: string;
  why: string;
}

/**
 * `switchover`: `pgrepl switchover [--to NODE]` (from: the leader to leave) or, with no leader,
 * `pgrepl failover --to NODE` (no from).
 */
export interface SwitchoverRequest {
  from?: string;
  to?: string;
  /** ISO time: not before. */
  at?: string;
}

export interface ClusterKeys {
  /**
   * The cluster's system identifier; '' while the bootstrap race's winner runs initdb (then the
   * key is on the winner's lease, so that a winner that dies frees it); absent: no cluster yet.
   */
  initialize?: string;
  leader?: LeaderKey;
  members: MemberKey[];
  /** The standbys that are synchronous now, under the leader that wrote it. */
  sync?: { leader: string; standbys: string[] };
  history: HistoryEntry[];
  switchover?: SwitchoverRequest;
  pause: boolean;
}

// ---------------------------------------------------------------------------------------------
// This node

/** This node's postgres, as observed this loop. */
export interface LocalPostgres {
  pgdata: PgdataState;
  /** The binaries' major version (13+ re-points a standby with a reload). */
  major: number;
  running: boolean;
  /** Running: pg_is_in_recovery(). */
  inRecovery?: boolean;
  /** Running: the current timeline; otherwise PGDATA's. */
  timeline?: number;
  receivedLsn?: Lsn;
  replayedLsn?: Lsn;
  /** A running primary's write position. */
  writeLsn?: Lsn;
  /** A standby: host:port its primary_conninfo names (none: it replays only what it has). */
  following?: string;
  /**
   * A primary's cluster stopped cleanly (control file 'shut down'): where its shutdown checkpoint
   * record ends, i.e. what a standby must have received to hold everything this node wrote.
   */
  shutdownEnd?: Lsn;
  /** A running primary: pg_stat_replication (application_name, state, flush_lsn). */
  replication: { name: string; state: string; flushLsn?: Lsn }[];
  /**
   * A running primary: the names synchronous_standby_names requires ('*' for any), all of which
   * acknowledge every commit; changedAt: its WAL position right after the last change took
   * effect (recorded by act; absent when unknown, e.g. after the agent restarted).
   */
  synchronous: { standbys: string[]; changedAt?: Lsn };
  /** Whether this node's replication slot exists on the leader (asked when another node leads). */
  slotOnLeader?: boolean;
  /**
   * This agent stopped this postgres's writes for lease safety (demote-fast) while leading on
   * `lease`, at `timeline`; it runs read-only without an upstream since.
   */
  demoted?: { lease: string; timeline: number };
}

/** What a member's API answered when asked for its current position. */
export type Answer = { received: Lsn; timeline: number } | { error: string };

export interface HaSettings {
  /** PGREPL_NODE_NAME */
  name: string;
  /** This agent's run (MemberKey.instance). */
  instance: string;
  /** PGREPL_NOFAILOVER */
  nofailover: boolean;
  /** PGREPL_MAX_LAG_ON_FAILOVER, bytes. */
  maxLagOnFailover: number;
  /** PGREPL_SYNC_STANDBYS (0: asynchronous). */
  syncStandbys: number;
  /** PGREPL_ROLE in HA mode: only a bootstrap hint; STANDBY never initialises a new cluster. */
  hint: 'PRIMARY' | 'STANDBY' | undefined;
  /** PGREPL_RECLONE */
  reclone: 'never' | 'auto';
  /** Replication slots on the upstream (PGREPL_SLOTS). */
  slots: boolean;
  timing: HaTiming;
}

/** What the agent carries from one loop to the next (times: its own monotonic clock, ms). */
export interface AgentMemory {
  startedAt: number;
  /**
   * This agent's lease as etcd last confirmed it; lastRenewalSentAt: when the confirmed grant or
   * keepalive was SENT (not answered). Absent: none yet, or etcd said it is gone.
   */
  lease?: { id: string; lastRenewalSentAt: number };
  /** The last successful read showed the leader key on this agent's lease. */
  ledAtLastRead: boolean;
  /** Whether this agent has written its member key yet. */
  published: boolean;
  /** The leader's write position, as its member key last showed it. */
  lastLeaderLsn?: Lsn;
}

export interface HaObservation {
  /** Monotonic ms, the clock of AgentMemory. */
  now: number;
  /** Wall clock ms (only for a switchover's `at`). */
  wallNow: number;
  /** One linearizable read of the keys, or why it failed. */
  etcd: { ok: true; keys: ClusterKeys } | { ok: false; error: string };
  local: LocalPostgres;
  /** The members' current positions, asked through their APIs because a decision said ask-members. */
  asked?: Record<string, Answer>;
  /** The agent was told to stop (SIGTERM/SIGINT). */
  stopping: boolean;
}

// ---------------------------------------------------------------------------------------------
// The decision

export type Action =
  /** Ask these members' APIs for their current received position (bounded wait), then decide again with `asked`. Alone in its decision. */
  | { do: 'ask-members'; names: string[] }
  | { do: 'grant-lease' }
  /** Keepalive of this agent's lease: renews its member key and, when it leads, the leader key. */
  | { do: 'renew-lease' }
  | { do: 'revoke-lease' }
  /** members/<name>, on the lease; created only if absent or already this instance's. */
  | { do: 'publish-member' }
  /**
   * The bootstrap race, one transaction: if `initialize` and `leader` are both absent, create
   * initialize = '' and leader = this node, both on this agent's lease (the winner leads; if it
   * dies, both go with its lease). Losing ends the list.
   */
  | { do: 'race-initialize' }
  /** Transaction: create `initialize` = system if absent (adopting a cluster). Losing ends the list. */
  | { do: 'claim-initialize'; system: string }
  /** The race's winner records the system its initdb made (no lease from now on). */
  | { do: 'set-initialize'; system: string }
  /** Transaction: create `leader` = this node on its lease if absent. Losing ends the list. */
  | { do: 'take-leader-key' }
  /** Transaction: delete `leader` if it is still on this agent's lease. */
  | { do: 'release-leader-key' }
  /** The start-up's 'missing/empty × PRIMARY' row; postgres comes up writable. */
  | { do: 'initdb-and-lead' }
  /** The start-up's 'missing/empty × STANDBY' row (moveAside: its 'another system × STANDBY' with PGREPL_RECLONE=auto). */
  | { do: 'clone-from-leader'; leader: string; address: string; moveAside: boolean }
  /** The start-up's 'primary/standby cluster × STANDBY' rows toward the leader: pg_rewind, else move aside and clone; postgres stopped first. */
  | { do: 'rewind-or-reclone'; leader: string; address: string }
  /** read-only: standby mode without an upstream (replays what it has, takes part in a race). */
  | { do: 'start-postgres'; as: 'primary' | 'read-only' }
  /** Fast stop (sessions killed, new connections refused, shutdown checkpoint); stays stopped. */
  | { do: 'stop-postgres' }
  /** Fast stop, then start read-only without an upstream; records LocalPostgres.demoted when it led. */
  | { do: 'demote-fast'; why: 'lease running out' | 'not the leader' }
  /** Restart a primary this agent demoted, as a primary on the same timeline (no promotion). */
  | { do: 'resume-writable' }
  | { do: 'promote' }
  | { do: 'checkpoint' }
  /** act adds the new timeline, its first LSN and the time. */
  | { do: 'append-history'; why: string }
  /** Re-point to the leader: primary_conninfo, then a reload (13+), a restart, or a start. */
  | { do: 'follow-leader'; leader: string; address: string; how: 'reload' | 'restart' | 'start' }
  | { do: 'create-slot'; on: string }
  /** Write the `sync` key: {leader: this node, standbys}. */
  | { do: 'update-sync-key'; standbys: string[] }
  /** synchronous_standby_names = FIRST n (standbys), n = their number: each acknowledges every commit. */
  | { do: 'set-synchronous-standby-names'; standbys: string[] }
  | { do: 'clear-switchover' }
  | { do: 'exit' };

export type Decision =
  | {
      row: string;
      /** What it saw and what it does, one sentence, logged every loop. */
      say: string;
      /** In order; the first that fails or loses its race ends the list for this loop. */
      actions: Action[];
      /** This node leads: the instant writes must have stopped unless a renewal succeeds (arm a timer). */
      demoteBy?: number;
      nextLoopMs: number;
    }
  | { row: string; say: string; refuse: string };
