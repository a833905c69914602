/**
 * The decision table of SPEC §3, as a pure function: what was observed in, a plan out. No I/O
 * here, ever; every row is unit-tested in test/unit/decide.test.ts. Steps act, they do not decide:
 * anything conditional belongs in this file.
 *
 *   PGDATA found          | PRIMARY                          | STANDBY
 *   ----------------------+----------------------------------+--------------------------------------
 *   missing or empty      | initdb + bootstrap in staging    | wait for the upstream, clone it into
 *                         | (single-user mode, or a server   | staging, move in, standby config, start
 *                         | for init scripts), move in, start|
 *   an interrupted initdb | discard the staging copy, init   | discard the staging copy, clone
 *   an interrupted clone  | refuse                           | discard the staging copy, clone
 *   a primary's cluster   | settings, password if the token  | same system and the upstream is on a
 *                         | changed, start                   | newer timeline: rewind (else move aside
 *                         |                                  | and clone), follow. Promoted while it
 *                         |                                  | ran as a standby: stays a primary.
 *                         |                                  | Rewound already (a start killed
 *                         |                                  | after pg_rewind): standby config,
 *                         |                                  | start. Otherwise refuse.
 *   a standby's cluster   | promote on start (new timeline), | keep the data, rewrite the upstream,
 *                         | start writable                   | start (rewind first if the upstream
 *                         |                                  | moved to a newer timeline)
 *   a primary's or a      | fencing (PGREPL_PEERS): a peer   |
 *   standby's, and a      | is a newer primary of the same   |
 *   newer primary among   | system: never writable; rejoin:  |
 *   the peers             | become its standby (as STANDBY   |
 *                         | would), kept across restarts;    |
 *                         | refuse: exit, touch nothing      |
 *   another system        | -                                | refuse, or with PGREPL_RECLONE=auto
 *                         |                                  | move aside and clone
 *   another major, not a  | refuse, touch nothing            | refuse, touch nothing
 *   cluster, unusable     |                                  |
 *   missing or empty, a   | refuse, touch nothing            | refuse, touch nothing
 *   cluster beside it in  |                                  |
 *   its volume (18+)      |                                  |
 *
 * A build half moved in from the swap directory is finished first, then treated as the cluster
 * it is. Data is never deleted: what cannot be kept in place is moved aside inside PGDATA.
 */
import type { Role } from '../config/env.js';
import type { HbaMethod, HostPort } from '../config/validators.js';
import { ASIDE_PARENT, STAGING_CLONE, STAGING_INIT } from '../layout.js';
import type { Observation, PeerFound } from '../observe/observe.js';
import type { Refusal } from '../observe/upstream.js';
import type { ClusterFound } from '../observe/pgdata.js';
import { hostPort, type EffectiveUpstream } from './upstream.js';

export type Staging = typeof STAGING_INIT | typeof STAGING_CLONE;

export type Step =
  | { do: 'prepare-directories' }
  | { do: 'drop-privileges' }
  | { do: 'finish-swap' }
  | { do: 'discard-interrupted-build'; staging: string }
  | { do: 'initdb' }
  /** settings: -c settings for this temporary server only, name=value as postgres takes them (no shell quoting). */
  | { do: 'start-temp-server'; on: 'staging' | 'pgdata'; settings?: string[] }
  | { do: 'create-databases' }
  | { do: 'allow-host-connections' }
  | { do: 'set-replication-role' }
  /** No PGREPL_TOKEN: the pgrepl role, if there is one, cannot log in (replication off). */
  | { do: 'lock-replication-role' }
  | { do: 'run-init-scripts' }
  /**
   * A new cluster's databases and pgrepl role in one single-user run on the staging copy, in
   * place of start-temp-server ... stop-temp-server when no init script needs a server.
   */
  | { do: 'bootstrap-in-single-user-mode'; replicationRole: 'set' | 'lock' }
  | { do: 'promote-temp-server' }
  | { do: 'stop-temp-server' }
  | { do: 'clone' }
  | { do: 'sync-staging'; staging: Staging }
  | { do: 'commit-staging'; staging: Staging }
  | { do: 'move-aside' }
  /** A kept copy whose WAL move was interrupted (aside.ts): finish it, so the WAL directory is free. */
  | { do: 'finish-wal-move'; copy: string }
  | { do: 'rewind'; fallback: Step[] }
  | { do: 'create-slot' }
  /** This node's slot on an upstream it no longer follows: dropped if that one answers and nothing uses it. */
  | { do: 'drop-old-slot'; on: HostPort }
  /**
   * in: a staging directory to write them into (a clone not moved in yet); PGDATA otherwise.
   * walRetrySeconds: how long postgres waits between attempts to reach the upstream (its default, 5 s, if absent).
   */
  | { do: 'write-settings'; as: Role; in?: Staging; walRetrySeconds?: number }
  /** as: the role postgres is handed over as (a standby's records its timeline). */
  | { do: 'record-state'; as: Role }
  | { do: 'hand-over' };

export interface Intent {
  role: Role;
  pgdata: string;
  hasPostgresPassword: boolean;
  hostAuthMethod: HbaMethod | undefined;
  reclone: 'never' | 'auto';
  slots: boolean;
  upstreamTimeoutSeconds: number;
  /** What a PRIMARY does when a peer is a newer primary of its cluster (PGREPL_FENCE). */
  fence: 'rejoin' | 'refuse';
  /** PGREPL_TOKEN is set: the pgrepl role logs in; without it replication is off. */
  replicationOn: boolean;
  /**
   * POSTGRES_USER, POSTGRES_DB or a gestalt database has a line break in its name: single-user
   * mode, which reads one statement per line, cannot be given its CREATE DATABASE.
   */
  namesWithLineBreaks: boolean;
}

export type Plan =
  | {
      row: string;
      why: string;
      steps: Step[];
      /** A PRIMARY fenced into following a peer: the upstream its steps use instead of none. */
      fencedTo?: EffectiveUpstream;
    }
  | { row: string; why: string; refuse: string };

function refuse(row: string, message: string): Plan {
  return { row, why: 'refused', refuse: message };
}

/** Directories are prepared as root (if we are root); everything after runs as postgres. */
function prepare(obs: Observation): Step[] {
  return obs.runningAsRoot ? [{ do: 'prepare-directories' }, { do: 'drop-privileges' }] : [{ do: 'prepare-directories' }];
}

const finishSwap = (c: ClusterFound): Step[] => (c.swapPending ? [{ do: 'finish-swap' }] : []);
const finishWalMoves = (copies: string[] | undefined): Step[] => (copies ?? []).map((copy) => ({ do: 'finish-wal-move', copy }));
/** The pgrepl role as the token wants it: its password set, or (no token) unable to log in. */
const replicationRole = (intent: Intent): Step => ({ do: intent.replicationOn ? 'set-replication-role' : 'lock-replication-role' });

export function decide(obs: Observation, intent: Intent): Plan {
  return unusable(obs, intent.pgdata) ?? (intent.role === 'PRIMARY' ? decidePrimary(obs, intent) : decideStandby(obs, intent));
}

/**
 * The refusals that do not depend on the role: PGDATA that is not a directory, cannot be read,
 * holds something else, another major's cluster, or sits beside a cluster in its volume. The HA
 * agent asks this too before its first loop (etcd decides its role later).
 */
export function unusable(obs: Observation, pgdata: string): Extract<Plan, { refuse: string }> | undefined {
  const found = obs.pgdata;
  const intent = { pgdata };
  const P = `PGDATA=${pgdata}`;
  const refuse = (row: string, message: string) => ({ row, why: 'refused', refuse: message });

  switch (found.kind) {
    case 'not-a-directory':
      return refuse('unusable PGDATA', `${P} exists and is not a directory: point PGDATA at a directory (e.g. ${intent.pgdata}/pgdata) or move the file away`);
    case 'unreadable':
      return refuse('unusable PGDATA', `${P} cannot be read (${found.code}): make it readable by root or the postgres user, or point PGDATA elsewhere`);
    case 'not-a-cluster':
      return refuse(
        'not a cluster',
        `${P} is not empty and holds no PostgreSQL cluster (found: ${found.entries.slice(0, 5).join(', ')}${found.entries.length > 5 ? ', ...' : ''}): point PGDATA at an empty subdirectory of the volume (e.g. PGDATA=${intent.pgdata}/pgdata); nothing was changed`,
      );
    case 'missing':
    case 'empty': {
      const stray = obs.strayClusters?.[0];
      if (stray) {
        return refuse(
          'cluster beside PGDATA',
          `${P} is ${found.kind}, but ${stray.path} in the same volume holds a PostgreSQL ${stray.major} cluster (up to 17 the volume held the cluster itself, mounted at /var/lib/postgresql/data; from 18 on it is mounted at /var/lib/postgresql with PGDATA in <major>/docker): run the image of PostgreSQL ${stray.major} on this volume, or upgrade that cluster into ${P} with pg_upgrade; to start a new cluster anyway, move it out of the volume; nothing was changed`,
        );
      }
      break;
    }
    case 'cluster':
      if (found.major !== obs.binariesMajor) {
        return refuse(
          'another major version',
          `${P} holds a PostgreSQL ${found.major} cluster but these binaries are PostgreSQL ${obs.binariesMajor}: run the image for ${found.major}, or upgrade the data first (pg_upgrade, or dump and restore); nothing was changed`,
        );
      }
      break;
    default:
      break;
  }
  return undefined;
}

// ---------------------------------------------------------------------------------------------
// PRIMARY

function decidePrimary(obs: Observation, intent: Intent): Plan {
  const found = obs.pgdata;
  const P = `PGDATA=${intent.pgdata}`;
  switch (found.kind) {
    case 'missing':
    case 'empty':
      return newPrimary(obs, intent, `${P} is ${found.kind}`, []);
    case 'only-kept-copies':
      return keptCopiesOnly(intent, found.keptCopies);
    case 'interrupted-build':
      if (found.keptCopies.length > 0) return keptCopiesOnly(intent, found.keptCopies);
      if (found.build === 'clone') {
        return refuse(
          'interrupted clone × PRIMARY',
          `${P} holds only an interrupted clone (${found.staging}), and PGREPL_ROLE is PRIMARY: start it as PGREPL_ROLE=STANDBY to finish the clone, or remove ${intent.pgdata}/${found.staging} to start a new primary`,
        );
      }
      return newPrimary(obs, intent, `${P} holds an initdb that was interrupted before it finished; it never served data`, [
        { do: 'discard-interrupted-build', staging: found.staging },
      ]);
    case 'cluster': {
      const fenced = fence(obs, intent, found);
      if (fenced) return fenced;
      if (found.standby) {
        return {
          row: 'standby cluster × PRIMARY',
          why: `${P} holds a standby and PGREPL_ROLE is PRIMARY: promote it on start (a new timeline), data kept`,
          steps: [
            ...prepare(obs),
            ...finishSwap(found),
            // Detached from its old upstream (12+; 11 reads it from recovery.conf, removed by the promotion).
            { do: 'start-temp-server', on: 'pgdata', settings: obs.binariesMajor >= 12 ? ['primary_conninfo='] : [] },
            { do: 'promote-temp-server' },
            replicationRole(intent),
            { do: 'stop-temp-server' },
            { do: 'write-settings', as: 'PRIMARY' },
            { do: 'record-state', as: 'PRIMARY' },
            { do: 'hand-over' },
          ],
        };
      }
      return restartPrimary(obs, intent, 'primary cluster × PRIMARY', `${P} holds a primary's cluster${peersChecked(obs, found.systemIdentifier)}`, found);
    }
  }
  return refuse('unknown', `${P}: unexpected state`);
}

/**
 * PGDATA holds no cluster but data moved aside earlier (a rejoin whose rewind failed and whose
 * clone then failed too): initdb would make a new, empty system beside the real data, and a
 * PRIMARY would serve it. Only a standby, which copies its upstream, may start here.
 */
function keptCopiesOnly(intent: Intent, kept: string[]): Plan {
  const where = kept.map((k) => `${intent.pgdata}/${ASIDE_PARENT}/${k}`);
  return refuse(
    'kept copies only × PRIMARY',
    `PGDATA=${intent.pgdata} holds no cluster, only data moved aside earlier (${where.join(', ')}): a new cluster here would be a new, empty system. To restore that data, stop the node, move everything in ${where[where.length - 1]} but its pg_dynshmem back into PGDATA (as the postgres user), remove what is left of it, and start the node again; to make this node a standby of the cluster instead, start it with PGREPL_ROLE=STANDBY; to start a new cluster on purpose, move the kept copies out of PGDATA first; nothing was changed`,
  );
}

// ---------------------------------------------------------------------------------------------
// PRIMARY: fencing against split brain (PGREPL_PEERS, PGREPL_FENCE)

const peersChecked = (obs: Observation, system: string | undefined): string =>
  obs.peers && obs.peers.length > 0
    ? `; no peer is a newer primary (${obs.peers.map((p) => `${hostPort(p.target)}: ${describePeer(p, system)}`).join(', ')})`
    : '';

function describePeer(p: PeerFound, system: string | undefined): string {
  if (!p.found.reachable) return 'no answer';
  if (p.found.systemIdentifier !== system) return `another system (${p.found.systemIdentifier})`;
  const what = p.inRecovery === undefined ? 'role unknown' : p.inRecovery ? 'standby' : 'primary';
  return `${what}, timeline ${p.found.timeline}`;
}

/**
 * Before a PRIMARY opens for writes (a primary's cluster, or a standby's about to be promoted on
 * start), its peers have their say. A peer that is a primary of the same system on a newer
 * timeline (for a standby: on its own timeline or a newer one) means this node was failed over
 * from: it must not come up writable. With PGREPL_FENCE=rejoin it becomes that peer's standby,
 * exactly as PGREPL_ROLE=STANDBY with the peer as upstream would (rewind, or move aside and
 * clone), and records it, so that later starts keep following; with refuse it exits, touching
 * nothing. Evidence that cannot be followed (another primary on this node's timeline, or only
 * standbys on a newer timeline: the cluster moved on and its primary is not among the reachable
 * peers) is refused in both modes. A node fenced earlier keeps following: the newest primary
 * among its peers, or the peer it recorded. Peers that do not answer, or belong to another
 * system, say nothing. Returns undefined when nothing stands in the way.
 */
function fence(obs: Observation, intent: Intent, found: ClusterFound): Plan | undefined {
  const P = `PGDATA=${intent.pgdata}`;
  // Following the peer it was fenced into following logs in as pgrepl: that needs the token.
  if (obs.fenced && !intent.replicationOn) {
    return refuse(
      'fenced × no token',
      `${P} holds a node fenced into following ${hostPort(obs.fenced)} (a newer primary of its cluster), which it does on every start, and a standby needs PGREPL_TOKEN to log in there: set PGREPL_TOKEN (or PGREPL_TOKEN_FILE) to the cluster's token; nothing was changed`,
    );
  }
  // A peer that refuses this node's replication password cannot be asked what it is, and a
  // token that differs between nodes is a mistake to fix before anything opens for writes.
  for (const p of obs.peers ?? []) {
    if (!p.found.reachable && p.found.refused) {
      return refuse('peer refuses this node', `${refusalMessage(p.found.refused, p.found.error, hostPort(p.target), 'peer')}; nothing was changed`);
    }
  }
  const mine = (obs.peers ?? []).filter(
    (p): p is PeerFound & { found: { reachable: true } } => p.found.reachable && p.found.systemIdentifier === found.systemIdentifier,
  );
  const primaries = mine.filter((p) => p.inRecovery === false).sort((a, b) => b.found.timeline - a.found.timeline);
  const newest = primaries[0];
  const t = found.timeline;
  const here = `this node's timeline ${t}`;
  const isStandby = standbyEvidence(obs, found).is === 'standby';

  if (isStandby && obs.fenced) {
    const recorded = (obs.peers ?? []).find((p) => hostPort(p.target) === hostPort(obs.fenced!));
    const peer = newest && newest.found.timeline >= t ? newest : recorded;
    // observe always probes the recorded peer; should it not have, never fall through to promotion
    if (!peer) return refuse('fenced standby × PRIMARY', `internal: ${P} holds a fenced standby but its peer ${hostPort(obs.fenced)} was not observed; nothing was changed`);
    return followPeer(obs, intent, peer, 'fenced standby × PRIMARY',
      `${P} holds a standby that was fenced into following ${hostPort(obs.fenced)} instead of coming up writable as a PRIMARY: it stays a standby (promote it with pgrepl promote, or set PGREPL_ROLE=STANDBY), following ${hostPort(peer.target)}${peer === recorded ? '' : ', the newest primary among its peers'}`);
  }

  // A rejoin killed after its pg_rewind finished left the peer's control file (its timeline, "in
  // archive recovery") and no standby.signal: not a primary of that timeline, but this node
  // half-way into following it (see 'rewound × STANDBY').
  const rewoundTo = (p: { found: { timeline: number } }) => !isStandby && found.state === 'in archive recovery' && p.found.timeline === t;
  const follows = newest && (isStandby ? newest.found.timeline >= t : newest.found.timeline > t || rewoundTo(newest));
  if (newest && follows) {
    const peer = hostPort(newest.target);
    const theirs = `timeline ${newest.found.timeline}`;
    if (intent.fence === 'refuse') {
      return refuse(
        'fenced × PRIMARY',
        `PGREPL_FENCE=refuse: the peer ${peer} is a primary of this cluster (system ${found.systemIdentifier}) on ${theirs}, and this node, configured as PRIMARY, is on timeline ${t}: ${isStandby ? 'promoting it' : 'coming up writable'} would make two primaries (split brain). Make this node a standby of ${peer} (PGREPL_ROLE=STANDBY, PGREPL_MASTER_IP, PGREPL_MASTER_PORT), or set PGREPL_FENCE=rejoin to let it rejoin by itself; nothing was changed`,
      );
    }
    return followPeer(obs, intent, newest, 'fenced × PRIMARY',
      rewoundTo(newest)
        ? `${P} holds a cluster rewound to the timeline ${t} of the peer ${peer}, a primary of the same system, by a rejoin that was interrupted, and PGREPL_ROLE is PRIMARY; PGREPL_FENCE=rejoin: it finishes becoming a standby of ${peer}`
        : `${P} holds ${isStandby ? 'a standby' : 'a primary'} on ${here} and PGREPL_ROLE is PRIMARY, but the peer ${peer} is a primary of the same system on ${theirs}: ${isStandby ? 'promoting' : 'coming up writable'} would make two primaries; PGREPL_FENCE=rejoin: it becomes a standby of ${peer} instead`);
  }

  const sameTimeline = !isStandby && newest && newest.found.timeline === t ? newest : undefined;
  if (sameTimeline) {
    return refuse(
      'split brain × PRIMARY',
      `the peer ${hostPort(sameTimeline.target)} is also a primary of this cluster on ${here}: two primaries of one timeline cannot be told apart, and neither can follow the other. Stop one of them, make it a standby of the other (PGREPL_ROLE=STANDBY), then start it again; nothing was changed`,
    );
  }
  const a = mine.find((p) => p.inRecovery !== false && p.found.timeline > t);
  if (a) {
    return refuse(
      'split brain × PRIMARY',
      `the peer ${hostPort(a.target)} is ${a.inRecovery ? 'a standby' : 'a node (role unknown)'} of this cluster on timeline ${a.found.timeline}, newer than ${here}: the cluster failed over without this node, and no peer that answers is its primary. Start this node again once that primary is reachable (with PGREPL_FENCE=rejoin it then rejoins it), or make it a standby (PGREPL_ROLE=STANDBY); nothing was changed`,
    );
  }
  return undefined;
}

/** The plan of a standby of `peer` (what PGREPL_ROLE=STANDBY with the peer as upstream would do), fenced. */
function followPeer(obs: Observation, intent: Intent, peer: PeerFound, row: string, why: string): Plan {
  const target: EffectiveUpstream = { host: peer.target.host, port: peer.target.port, source: 'PGREPL_PEERS', dropFollow: false };
  const plan = decideStandby({ ...obs, upstream: { target, found: peer.found } }, intent);
  if ('refuse' in plan) return refuse(row, `${why}, but it cannot: ${plan.refuse}`);
  return { row, why: `${why}: ${plan.why}`, steps: plan.steps, fencedTo: target };
}

function restartPrimary(obs: Observation, intent: Intent, row: string, why: string, found: ClusterFound): Plan {
  const role: Step[] = obs.replicationRoleCurrent
    ? []
    : [{ do: 'start-temp-server', on: 'pgdata' }, replicationRole(intent), { do: 'stop-temp-server' }];
  const roleWhy = intent.replicationOn
    ? obs.replicationRoleCurrent ? 'the replication password is current' : 'the replication password is re-applied'
    : `replication is off (no PGREPL_TOKEN): ${obs.replicationRoleCurrent ? 'the role pgrepl is locked already' : 'the role pgrepl, if any, is locked'}`;
  return {
    row,
    why: `${why}${found.swapPending ? ' (finishing the move of a completed build first)' : ''}; ${roleWhy}; no initdb, no init scripts`,
    steps: [...prepare(obs), ...finishSwap(found), ...role, { do: 'write-settings', as: 'PRIMARY' }, { do: 'record-state', as: 'PRIMARY' }, { do: 'hand-over' }],
  };
}

function newPrimary(obs: Observation, intent: Intent, why: string, before: Step[]): Plan {
  if (!intent.hasPostgresPassword && intent.hostAuthMethod !== 'trust') {
    return refuse(
      'missing/empty × PRIMARY',
      'POSTGRES_PASSWORD is not set: a new cluster needs a superuser password. Set POSTGRES_PASSWORD (or POSTGRES_PASSWORD_FILE), or POSTGRES_HOST_AUTH_METHOD=trust to allow every connection without a password (not recommended)',
    );
  }
  // Init scripts connect to a server (psql): the temporary one, as in the official image.
  // Without any, one single-user run does the same work, without a server's start and stop.
  const singleUser = !obs.initScripts && !intent.namesWithLineBreaks;
  const bootstrap: Step[] = singleUser
    ? [
        { do: 'bootstrap-in-single-user-mode', replicationRole: intent.replicationOn ? 'set' : 'lock' },
        { do: 'allow-host-connections' },
      ]
    : [
        { do: 'start-temp-server', on: 'staging' },
        { do: 'create-databases' },
        { do: 'allow-host-connections' },
        replicationRole(intent),
        { do: 'run-init-scripts' },
        { do: 'stop-temp-server' },
      ];
  return {
    row: 'missing/empty × PRIMARY',
    why: `${why}: initdb and bootstrap in a staging directory (${singleUser ? 'single-user mode' : obs.initScripts ? 'a temporary server, for the init scripts' : 'a temporary server: a name has a line break'}), then move it in`,
    steps: [
      ...prepare(obs),
      ...before,
      { do: 'initdb' },
      ...bootstrap,
      { do: 'sync-staging', staging: STAGING_INIT },
      { do: 'commit-staging', staging: STAGING_INIT },
      { do: 'write-settings', as: 'PRIMARY' },
      { do: 'record-state', as: 'PRIMARY' },
      { do: 'hand-over' },
    ],
  };
}

// ---------------------------------------------------------------------------------------------
// STANDBY

/**
 * Whether a cluster is a standby, from durable evidence. Its marker (standby.signal, recovery.conf)
 * says so, but pgrepl itself removes the marker for crash recovery before a rewind (single-user
 * mode refuses standby mode), so a missing marker alone does not mean "promoted". A standby's
 * timeline is recorded at every hand-over and before that removal (NodeState.standbyTimeline): a
 * promotion always moves to a newer timeline than any the node knew, so a cluster without its
 * marker on a timeline that is not newer is a standby whose start was interrupted. State written
 * before pgrepl recorded timelines: missing marker and last run as a standby means promoted.
 */
function standbyEvidence(obs: Observation, found: ClusterFound): { is: 'standby' | 'promoted' | 'primary'; why: string } {
  if (found.standby) return { is: 'standby', why: 'a standby' };
  if (obs.lastRole !== 'STANDBY' && !obs.fenced) return { is: 'primary', why: "a primary's cluster" };
  const recorded = obs.standbyTimeline;
  if (recorded !== undefined && found.timeline <= recorded) {
    return {
      is: 'standby',
      why: `a standby whose start was interrupted while pgrepl had taken it out of standby mode for crash recovery (timeline ${found.timeline}, not newer than timeline ${recorded} it was a standby on: not promoted)`,
    };
  }
  return {
    is: 'promoted',
    why: `a primary promoted while this node ran as a standby (timeline ${found.timeline}${recorded === undefined ? '' : `, newer than timeline ${recorded} it was a standby on`})`,
  };
}

/** One line for an upstream or peer that answered but will not let this node replicate. */
export function refusalMessage(refused: Refusal, error: string, where: string, label: 'upstream' | 'peer'): string {
  switch (refused) {
    case 'password':
      return `the ${label} ${where} rejected the replication password (${error}): PGREPL_TOKEN (or PGREPL_TOKEN_FILE) must be the same on every node`;
    case 'no replication role':
      return `the ${label} ${where} has no role pgrepl (${error}): it runs without replication, as a primary first started without PGREPL_TOKEN does; set PGREPL_TOKEN (the same on every node) on its primary and restart that`;
    case 'cannot log in':
      return `the ${label} ${where} does not let the role pgrepl log in (${error}): it runs with replication off, as a primary started without PGREPL_TOKEN does; set PGREPL_TOKEN (the same on every node) on its primary and restart that`;
    case 'not allowed':
      return `the ${label} ${where} does not allow this node to replicate (${error}): widen PGREPL_REPLICATION_CIDR on the ${label}, or, if it was started without PGREPL_TOKEN (replication off), set PGREPL_TOKEN there (the same on every node) and restart it`;
    case 'needs TLS':
      return `the ${label} ${where} lets the role pgrepl in only over TLS (${error}): turn TLS on for this node too, as on the ${label}: PGREPL_TLS=self-signed, or PGREPL_TLS_CERT and PGREPL_TLS_KEY (and PGREPL_TLS_CA to verify the ${label})`;
    case 'no TLS':
      return `the ${label} ${where} does not offer TLS (${error}), and with PGREPL_TLS_* this node replicates only over TLS: turn TLS on there too (PGREPL_TLS_*, then restart it), or turn it off here`;
    case 'certificate':
      return `the ${label} ${where} has a certificate that PGREPL_TLS_CA does not verify (${error}): give the CA that signed the ${label}'s certificate, and the ${label} a certificate whose names (subjectAltName) include the host this node connects to`;
  }
}

/**
 * The copy is made a standby (standby.signal or recovery.conf, whom it follows) while it is still
 * in staging: from its first byte in PGDATA it can only ever start as a standby, whatever happens
 * between the move and the hand-over.
 */
const CLONE: Step[] = [
  { do: 'clone' },
  { do: 'write-settings', as: 'STANDBY', in: STAGING_CLONE },
  { do: 'commit-staging', staging: STAGING_CLONE },
];
const START_STANDBY: Step[] = [{ do: 'write-settings', as: 'STANDBY' }, { do: 'record-state', as: 'STANDBY' }, { do: 'hand-over' }];

/**
 * A standby its upstream refused at start (a token being rotated, pg_hba) serves reads and keeps
 * trying: postgres, which pgrepl has handed over to, logs the refusal at every attempt, so the
 * attempts come once a minute instead of every 5 s; it streams within a minute once let in. The
 * next start, with the upstream letting it in, goes back to the default.
 */
export const REFUSED_RETRY_SECONDS = 60;
const START_REFUSED_STANDBY: Step[] = START_STANDBY.map((s) => (s.do === 'write-settings' ? { ...s, walRetrySeconds: REFUSED_RETRY_SECONDS } : s));

function decideStandby(obs: Observation, intent: Intent): Plan {
  const found = obs.pgdata;
  const P = `PGDATA=${intent.pgdata}`;
  const up = obs.upstream;
  if (!up) return refuse('STANDBY', 'internal: a standby was planned without observing its upstream');
  const U = `the upstream ${hostPort(up.target)} (${up.target.source})`;
  const left = obs.lastUpstream && hostPort(obs.lastUpstream) !== hostPort(up.target) ? obs.lastUpstream : undefined;
  // This node's slot on the upstream: made by a clone; otherwise made when it was not seen there.
  const slot: Step[] = intent.slots
    ? [...(up.slotExists === true ? [] : [{ do: 'create-slot' as const }]), ...(left ? [{ do: 'drop-old-slot' as const, on: left }] : [])]
    : [];

  const standby = found.kind === 'cluster' ? standbyEvidence(obs, found) : undefined;

  if (!up.found.reachable) {
    const refused = up.found.refused;
    const reason = refused ? refusalMessage(refused, up.found.error, hostPort(up.target), 'upstream') : `does not answer (${up.found.error})`;
    if (found.kind === 'cluster' && standby?.is === 'standby') {
      return {
        row: 'standby cluster × STANDBY',
        why: `${P} holds ${standby.why}; ${U} ${refused ? `refuses it: ${reason}` : reason}: starting on the data it has, serving reads; it streams once the upstream ${refused ? `lets it in (postgres tries again, and logs why it cannot, every ${REFUSED_RETRY_SECONDS} s)` : 'is back'}`,
        steps: [...prepare(obs), ...finishSwap(found), ...(refused ? START_REFUSED_STANDBY : START_STANDBY)],
      };
    }
    if (refused) return refuse('upstream refuses this node', `${reason}; nothing was changed`);
    if (found.kind === 'cluster' && standby?.is === 'promoted') {
      return restartPrimary(obs, intent, 'promoted standby × STANDBY', `${P} holds ${standby.why}, and ${U} does not answer: it stays a primary (set PGREPL_ROLE=PRIMARY to say so)`, found);
    }
    return refuse(
      'upstream unreachable',
      `${U} did not answer within ${intent.upstreamTimeoutSeconds} s (PGREPL_UPSTREAM_TIMEOUT): ${up.found.error}; start the upstream, or check PGREPL_MASTER_IP/PGREPL_MASTER_PORT and the network; nothing was changed`,
    );
  }

  const u = up.found;
  if (u.major !== obs.binariesMajor) {
    return refuse(
      'upstream of another major version',
      `${U} runs PostgreSQL ${u.major} but this node's binaries are PostgreSQL ${obs.binariesMajor}: every node of a cluster must run the same major version; nothing was changed`,
    );
  }
  const clientTooOld = obs.tools?.basebackup !== undefined && obs.tools.basebackup < u.major
    ? `pg_basebackup is version ${obs.tools.basebackup} but ${U} runs PostgreSQL ${u.major} (incompatible server version): put pg_basebackup ${u.major} or newer on PATH; nothing was changed`
    : undefined;
  const cloneInto = (row: string, why: string, before: Step[]): Plan =>
    clientTooOld
      ? refuse(row, clientTooOld)
      : { row, why, steps: [...prepare(obs), ...before, ...CLONE, ...START_STANDBY] };

  switch (found.kind) {
    case 'missing':
    case 'empty':
      return cloneInto('missing/empty × STANDBY', `${P} is ${found.kind}: clone ${U} (no initdb, no init scripts)`, []);
    case 'only-kept-copies':
      return cloneInto('kept copies only × STANDBY', `${P} holds no cluster, only data moved aside earlier (${found.keptCopies.join(', ')}, kept where it is): clone ${U}`, finishWalMoves(found.walMoving));
    case 'interrupted-build':
      return cloneInto(
        'interrupted build × STANDBY',
        `${P} holds an interrupted ${found.build === 'clone' ? 'clone' : 'initdb'} that never served data: discard only that copy and clone ${U}`,
        [...finishWalMoves(found.walMoving), { do: 'discard-interrupted-build', staging: found.staging }],
      );
    case 'cluster':
      break;
    default:
      return refuse('unknown', `${P}: unexpected state`);
  }

  if (found.systemIdentifier !== u.systemIdentifier) {
    if (intent.reclone === 'auto') {
      return cloneInto(
        'another system × STANDBY',
        `${P} holds system ${found.systemIdentifier} but ${U} is system ${u.systemIdentifier}; PGREPL_RECLONE=auto: move the data aside (kept) and clone`,
        [...finishSwap(found), { do: 'move-aside' }],
      );
    }
    return refuse(
      'another system × STANDBY',
      `${P} holds system ${found.systemIdentifier} but ${U} is system ${u.systemIdentifier}: this data belongs to another cluster. Point the node at its own upstream, or set PGREPL_RECLONE=auto to move the data aside (kept inside PGDATA) and clone; nothing was changed`,
    );
  }

  // pg_rewind deletes whatever its source lacks, data kept aside included: with kept copies in
  // PGDATA, move aside and clone instead (the kept copies stay where they are).
  const rewindCanWork = obs.tools?.rewind === found.major && found.keptCopies.length === 0;
  const whyNoRewind = found.keptCopies.length > 0
    ? `it holds data kept aside earlier (${found.keptCopies.join(', ')}), which pg_rewind would delete`
    : `pg_rewind ${obs.tools?.rewind ?? '(missing)'} cannot rewind a PostgreSQL ${found.major} cluster`;
  // The slot steps follow a rewind (the data stays); a clone makes its own slot.
  const rewindOrReclone = (): Step[] => {
    const reclone: Step[] = [{ do: 'move-aside' }, ...CLONE];
    if (clientTooOld) return rewindCanWork ? [{ do: 'rewind', fallback: [] }, ...slot] : [];
    return rewindCanWork ? [{ do: 'rewind', fallback: reclone }, ...slot] : reclone;
  };

  if (standby?.is === 'standby') {
    if (u.timeline < found.timeline) {
      return refuse(
        'standby cluster × STANDBY',
        `${P} is on timeline ${found.timeline}, newer than ${U} on timeline ${u.timeline}: a standby cannot follow an older timeline. Point it at the newest primary (PGREPL_MASTER_IP, or pgrepl follow); nothing was changed`,
      );
    }
    const behind = u.timeline > found.timeline;
    const onTimelines = `${P} holds a standby on timeline ${found.timeline} and ${U} is on timeline ${u.timeline}`;
    return {
      row: 'standby cluster × STANDBY',
      why: !behind
        ? `${P} holds ${standby.why}, of the same system: keep the data, rewrite the upstream connection, start; no copy`
        : rewindCanWork
          ? `${onTimelines}: rewind if it diverged, then follow; no copy`
          : clientTooOld
            ? `${onTimelines}; ${whyNoRewind}, and pg_basebackup ${obs.tools?.basebackup} cannot clone PostgreSQL ${u.major}: follow without a rewind (if it diverged, it will not stream)`
            : `${onTimelines}; it may have diverged, and ${whyNoRewind}: move it aside (kept) and clone, then follow`,
      steps: [...prepare(obs), ...finishSwap(found), ...(behind ? rewindOrReclone() : slot), ...START_STANDBY],
    };
  }

  // A primary's cluster asked to follow.
  if (u.timeline > found.timeline) {
    if (clientTooOld && !rewindCanWork) return refuse('primary cluster × STANDBY', clientTooOld);
    return {
      row: 'primary cluster × STANDBY',
      why: `${P} holds a former primary (timeline ${found.timeline}) and ${U} is a newer timeline (${u.timeline}) of the same system: ${
        rewindCanWork ? 'rewind it with pg_rewind (if that fails: move it aside, kept, and clone)' : `${whyNoRewind}: move it aside (kept) and clone`
      }, then follow`,
      steps: [...prepare(obs), ...finishSwap(found), ...rewindOrReclone(), ...START_STANDBY],
    };
  }
  // A start killed after pg_rewind finished but before it wrote the standby configuration:
  // pg_rewind leaves the upstream's control file (its timeline, state "in archive recovery") and
  // a backup label, and no standby.signal. A primary that ran never has that state; finish the
  // start that was interrupted (no rewind again: pg_rewind refuses a cluster not shut down).
  if (u.timeline === found.timeline && found.state === 'in archive recovery') {
    return {
      row: 'rewound × STANDBY',
      why: `${P} holds a cluster rewound to ${U}'s timeline ${u.timeline} (in archive recovery, no standby configuration yet: the start that rewound it was interrupted): keep the data, write the standby configuration, start; no copy`,
      steps: [...prepare(obs), ...finishSwap(found), ...slot, ...START_STANDBY],
    };
  }
  if (standby?.is === 'promoted') {
    return restartPrimary(
      obs,
      intent,
      'promoted standby × STANDBY',
      `${P} holds ${standby.why}, and ${U} is not newer (timeline ${u.timeline}): it stays a primary (set PGREPL_ROLE=PRIMARY to say so)`,
      found,
    );
  }
  return refuse(
    'primary cluster × STANDBY',
    `${P} holds a primary on timeline ${found.timeline} and PGREPL_ROLE=STANDBY, but ${U} is not on a newer timeline (${u.timeline}): there is nothing newer to follow. Promote the upstream first, or start this node with PGREPL_ROLE=PRIMARY; nothing was changed`,
  );
}
