/**
 * The decision table of SPEC §3, as a pure function: what was observed in, a plan out. No I/O
 * here, ever; every row is unit-tested in test/unit/decide.test.ts. Steps act, they do not decide:
 * anything conditional belongs in this file.
 *
 *   PGDATA found          | PRIMARY                          | STANDBY
 *   ----------------------+----------------------------------+--------------------------------------
 *   missing or empty      | initdb + bootstrap in staging,   | wait for the upstream, clone it into
 *                         | move in, start                   | staging, move in, standby config, start
 *   an interrupted initdb | discard the staging copy, init   | discard the staging copy, clone
 *   an interrupted clone  | refuse                           | discard the staging copy, clone
 *   a primary's cluster   | settings, password if the token  | same system and the upstream is on a
 *                         | changed, start                   | newer timeline: rewind (else move aside
 *                         |                                  | and clone), follow. Promoted while it
 *                         |                                  | ran as a standby: stays a primary.
 *                         |                                  | Otherwise refuse.
 *   a standby's cluster   | promote on start (new timeline), | keep the data, rewrite the upstream,
 *                         | start writable                   | start (rewind first if the upstream
 *                         |                                  | moved to a newer timeline)
 *   another system        | -                                | refuse, or with PGREPL_RECLONE=auto
 *                         |                                  | move aside and clone
 *   another major, not a  | refuse, touch nothing            | refuse, touch nothing
 *   cluster, unusable     |                                  |
 *
 * A build half moved in from the swap directory is finished first, then treated as the cluster
 * it is. Data is never deleted: what cannot be kept in place is moved aside inside PGDATA.
 */
import type { Role } from '../config/env.js';
import type { HbaMethod } from '../config/validators.js';
import { STAGING_CLONE, STAGING_INIT } from '../layout.js';
import type { Observation } from '../observe/observe.js';
import type { ClusterFound } from '../observe/pgdata.js';
import { hostPort } from './upstream.js';

export type Staging = typeof STAGING_INIT | typeof STAGING_CLONE;

export type Step =
  | { do: 'prepare-directories' }
  | { do: 'drop-privileges' }
  | { do: 'finish-swap' }
  | { do: 'discard-interrupted-build'; staging: string }
  | { do: 'initdb' }
  /** detached: without a connection to the upstream (a standby about to be promoted). */
  | { do: 'start-temp-server'; on: 'staging' | 'pgdata'; detached?: boolean }
  | { do: 'create-databases' }
  | { do: 'allow-host-connections' }
  | { do: 'set-replication-role' }
  | { do: 'run-init-scripts' }
  | { do: 'promote-temp-server' }
  | { do: 'stop-temp-server' }
  | { do: 'clone' }
  | { do: 'sync-staging'; staging: Staging }
  | { do: 'commit-staging'; staging: Staging }
  | { do: 'move-aside' }
  | { do: 'rewind'; fallback: Step[] }
  | { do: 'ensure-slot' }
  | { do: 'write-settings'; as: Role }
  | { do: 'record-state' }
  | { do: 'hand-over' };

export interface Intent {
  role: Role;
  pgdata: string;
  hasPostgresPassword: boolean;
  hostAuthMethod: HbaMethod | undefined;
  reclone: 'never' | 'auto';
  slots: boolean;
  upstreamTimeoutSeconds: number;
}

export type Plan =
  | { row: string; why: string; steps: Step[] }
  | { row: string; why: string; refuse: string };

function refuse(row: string, message: string): Plan {
  return { row, why: 'refused', refuse: message };
}

/** Directories are prepared as root (if we are root); everything after runs as postgres. */
function prepare(obs: Observation): Step[] {
  return obs.runningAsRoot ? [{ do: 'prepare-directories' }, { do: 'drop-privileges' }] : [{ do: 'prepare-directories' }];
}

const finishSwap = (c: ClusterFound): Step[] => (c.swapPending ? [{ do: 'finish-swap' }] : []);

export function decide(obs: Observation, intent: Intent): Plan {
  const found = obs.pgdata;
  const P = `PGDATA=${intent.pgdata}`;

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
  return intent.role === 'PRIMARY' ? decidePrimary(obs, intent) : decideStandby(obs, intent);
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
    case 'interrupted-build':
      if (found.build === 'clone') {
        return refuse(
          'interrupted clone × PRIMARY',
          `${P} holds only an interrupted clone (${found.staging}), and PGREPL_ROLE is PRIMARY: start it as PGREPL_ROLE=STANDBY to finish the clone, or remove ${intent.pgdata}/${found.staging} to start a new primary`,
        );
      }
      return newPrimary(obs, intent, `${P} holds an initdb that was interrupted before it finished; it never served data`, [
        { do: 'discard-interrupted-build', staging: found.staging },
      ]);
    case 'cluster':
      if (found.standby) {
        return {
          row: 'standby cluster × PRIMARY',
          why: `${P} holds a standby and PGREPL_ROLE is PRIMARY: promote it on start (a new timeline), data kept`,
          steps: [
            ...prepare(obs),
            ...finishSwap(found),
            { do: 'start-temp-server', on: 'pgdata', detached: true },
            { do: 'promote-temp-server' },
            { do: 'set-replication-role' },
            { do: 'stop-temp-server' },
            { do: 'write-settings', as: 'PRIMARY' },
            { do: 'record-state' },
            { do: 'hand-over' },
          ],
        };
      }
      return restartPrimary(obs, 'primary cluster × PRIMARY', `${P} holds a primary's cluster`, found);
  }
  return refuse('unknown', `${P}: unexpected state`);
}

function restartPrimary(obs: Observation, row: string, why: string, found: ClusterFound): Plan {
  const role: Step[] = obs.replicationPasswordCurrent
    ? []
    : [{ do: 'start-temp-server', on: 'pgdata' }, { do: 'set-replication-role' }, { do: 'stop-temp-server' }];
  return {
    row,
    why: `${why}${found.swapPending ? ' (finishing the move of a completed build first)' : ''}; ${
      obs.replicationPasswordCurrent ? 'the replication password is current' : 'the replication password is re-applied'
    }; no initdb, no init scripts`,
    steps: [...prepare(obs), ...finishSwap(found), ...role, { do: 'write-settings', as: 'PRIMARY' }, { do: 'record-state' }, { do: 'hand-over' }],
  };
}

function newPrimary(obs: Observation, intent: Intent, why: string, before: Step[]): Plan {
  if (!intent.hasPostgresPassword && intent.hostAuthMethod !== 'trust') {
    return refuse(
      'missing/empty × PRIMARY',
      'POSTGRES_PASSWORD is not set: a new cluster needs a superuser password. Set POSTGRES_PASSWORD (or POSTGRES_PASSWORD_FILE), or POSTGRES_HOST_AUTH_METHOD=trust to allow every connection without a password (not recommended)',
    );
  }
  return {
    row: 'missing/empty × PRIMARY',
    why: `${why}: initdb and bootstrap in a staging directory, then move it in`,
    steps: [
      ...prepare(obs),
      ...before,
      { do: 'initdb' },
      { do: 'start-temp-server', on: 'staging' },
      { do: 'create-databases' },
      { do: 'allow-host-connections' },
      { do: 'set-replication-role' },
      { do: 'run-init-scripts' },
      { do: 'stop-temp-server' },
      { do: 'sync-staging', staging: STAGING_INIT },
      { do: 'commit-staging', staging: STAGING_INIT },
      { do: 'write-settings', as: 'PRIMARY' },
      { do: 'record-state' },
      { do: 'hand-over' },
    ],
  };
}

// ---------------------------------------------------------------------------------------------
// STANDBY

const CLONE: Step[] = [{ do: 'clone' }, { do: 'commit-staging', staging: STAGING_CLONE }];
const START_STANDBY: Step[] = [{ do: 'write-settings', as: 'STANDBY' }, { do: 'record-state' }, { do: 'hand-over' }];

function decideStandby(obs: Observation, intent: Intent): Plan {
  const found = obs.pgdata;
  const P = `PGDATA=${intent.pgdata}`;
  const up = obs.upstream;
  if (!up) return refuse('STANDBY', 'internal: a standby was planned without observing its upstream');
  const U = `the upstream ${hostPort(up.target)} (${up.target.source})`;
  const slot: Step[] = intent.slots ? [{ do: 'ensure-slot' }] : [];

  if (!up.found.reachable) {
    if (found.kind === 'cluster' && found.standby) {
      return {
        row: 'standby cluster × STANDBY',
        why: `${P} holds a standby; ${U} does not answer (${up.found.error}): starting on the data it has; it streams once the upstream is back`,
        steps: [...prepare(obs), ...finishSwap(found), ...START_STANDBY],
      };
    }
    if (found.kind === 'cluster' && obs.lastRole === 'STANDBY') {
      return restartPrimary(obs, 'promoted standby × STANDBY', `${P} holds a primary promoted while this node ran as a standby, and ${U} does not answer: it stays a primary (set PGREPL_ROLE=PRIMARY to say so)`, found);
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
      : { row, why, steps: [...prepare(obs), ...before, ...CLONE, ...slot, ...START_STANDBY] };

  switch (found.kind) {
    case 'missing':
    case 'empty':
      return cloneInto('missing/empty × STANDBY', `${P} is ${found.kind}: clone ${U} (no initdb, no init scripts)`, []);
    case 'interrupted-build':
      return cloneInto(
        'interrupted build × STANDBY',
        `${P} holds an interrupted ${found.build === 'clone' ? 'clone' : 'initdb'} that never served data: discard only that copy and clone ${U}`,
        [{ do: 'discard-interrupted-build', staging: found.staging }],
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

  const rewindCanWork = obs.tools?.rewind === found.major;
  const rewindOrReclone = (): Step[] => {
    const reclone: Step[] = [{ do: 'move-aside' }, ...CLONE];
    if (clientTooOld) return rewindCanWork ? [{ do: 'rewind', fallback: [] }] : [];
    return rewindCanWork ? [{ do: 'rewind', fallback: reclone }] : reclone;
  };

  if (found.standby) {
    if (u.timeline < found.timeline) {
      return refuse(
        'standby cluster × STANDBY',
        `${P} is on timeline ${found.timeline}, newer than ${U} on timeline ${u.timeline}: a standby cannot follow an older timeline. Point it at the newest primary (PGREPL_MASTER_IP, or pgrepl follow); nothing was changed`,
      );
    }
    const behind = u.timeline > found.timeline;
    return {
      row: 'standby cluster × STANDBY',
      why: behind
        ? `${P} holds a standby on timeline ${found.timeline} and ${U} is on timeline ${u.timeline}: rewind if it diverged, then follow; no copy`
        : `${P} holds a standby of the same system: keep the data, rewrite the upstream connection, start; no copy`,
      steps: [...prepare(obs), ...finishSwap(found), ...(behind ? rewindOrReclone() : []), ...slot, ...START_STANDBY],
    };
  }

  // A primary's cluster asked to follow.
  if (u.timeline > found.timeline) {
    if (clientTooOld && !rewindCanWork) return refuse('primary cluster × STANDBY', clientTooOld);
    return {
      row: 'primary cluster × STANDBY',
      why: `${P} holds a former primary (timeline ${found.timeline}) and ${U} is a newer timeline (${u.timeline}) of the same system: ${
        rewindCanWork ? 'rewind it with pg_rewind (if that fails: move it aside, kept, and clone)' : `pg_rewind ${obs.tools?.rewind ?? '(missing)'} cannot rewind a PostgreSQL ${found.major} cluster: move it aside (kept) and clone`
      }, then follow`,
      steps: [...prepare(obs), ...finishSwap(found), ...rewindOrReclone(), ...slot, ...START_STANDBY],
    };
  }
  if (obs.lastRole === 'STANDBY') {
    return restartPrimary(
      obs,
      'promoted standby × STANDBY',
      `${P} holds a primary promoted while this node ran as a standby (timeline ${found.timeline}), and ${U} is not newer (timeline ${u.timeline}): it stays a primary (set PGREPL_ROLE=PRIMARY to say so)`,
      found,
    );
  }
  return refuse(
    'primary cluster × STANDBY',
    `${P} holds a primary on timeline ${found.timeline} and PGREPL_ROLE=STANDBY, but ${U} is not on a newer timeline (${u.timeline}): there is nothing newer to follow. Promote the upstream first, or start this node with PGREPL_ROLE=PRIMARY; nothing was changed`,
  );
}
