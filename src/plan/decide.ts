/**
 * The decision table of SPEC §3, as a pure function: what was observed in, a plan out. No I/O
 * here, ever; every row is unit-tested in test/unit/decide.test.ts. Steps act, they do not decide:
 * anything conditional belongs in this file.
 *
 *   PGDATA found              | PRIMARY                        | STANDBY
 *   --------------------------+--------------------------------+-----------------------------
 *   missing or empty          | initdb + bootstrap, start      | (replication-core issue)
 *   an interrupted initdb     | discard the staging copy, init | (replication-core issue)
 *   an interrupted clone      | refuse                         | (replication-core issue)
 *   a primary's cluster       | re-apply settings/role, start  | (replication-core issue)
 *   a standby's cluster       | (replication-core issue)       | (replication-core issue)
 *   another major, not a      | refuse, touch nothing          | refuse, touch nothing
 *   cluster, unusable path    |                                |
 *
 * A build half moved in from the swap directory is finished first, then treated as the cluster
 * it is.
 */
import type { Role } from '../config/env.js';
import type { HbaMethod } from '../config/validators.js';
import type { Observation } from '../observe/observe.js';

export type Step =
  | { do: 'prepare-directories' }
  | { do: 'drop-privileges' }
  | { do: 'finish-swap' }
  | { do: 'discard-interrupted-build'; staging: string }
  | { do: 'initdb' }
  | { do: 'start-temp-server'; on: 'staging' | 'pgdata' }
  | { do: 'create-databases' }
  | { do: 'allow-host-connections' }
  | { do: 'set-replication-role' }
  | { do: 'run-init-scripts' }
  | { do: 'stop-temp-server' }
  | { do: 'sync-staging' }
  | { do: 'commit-staging' }
  | { do: 'write-settings' }
  | { do: 'record-state' }
  | { do: 'hand-over' };

export interface Intent {
  role: Role;
  pgdata: string;
  hasPostgresPassword: boolean;
  hostAuthMethod: HbaMethod | undefined;
}

export type Plan =
  | { row: string; why: string; steps: Step[] }
  | { row: string; why: string; refuse: string };

/** Directories are prepared as root (if we are root); everything after runs as postgres. */
function prepare(obs: Observation): Step[] {
  return obs.runningAsRoot ? [{ do: 'prepare-directories' }, { do: 'drop-privileges' }] : [{ do: 'prepare-directories' }];
}

export function decide(obs: Observation, intent: Intent): Plan {
  const { pgdata: found } = obs;
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

  if (intent.role === 'STANDBY') {
    return refuse('STANDBY', 'PGREPL_ROLE=STANDBY is not available in this build of pgrepl yet; run the node as PRIMARY');
  }

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
      return newPrimary(obs, intent, `${P} holds an initdb that was interrupted before it finished (${found.staging}); it never served data`, [
        { do: 'discard-interrupted-build', staging: found.staging },
      ]);
    case 'cluster': {
      const finish: Step[] = found.swapPending ? [{ do: 'finish-swap' }] : [];
      const swapNote = found.swapPending ? ' (finishing the move of a completed build first)' : '';
      if (found.standby) {
        return refuse('standby × PRIMARY', `${P} holds a standby; promotion on start is not available in this build of pgrepl yet`);
      }
      const role: Step[] = obs.replicationPasswordCurrent
        ? []
        : [{ do: 'start-temp-server', on: 'pgdata' }, { do: 'set-replication-role' }, { do: 'stop-temp-server' }];
      return {
        row: 'primary cluster × PRIMARY',
        why: `${P} holds a primary's cluster${swapNote}; ${
          obs.replicationPasswordCurrent ? 'the replication password is current' : 'the replication password is re-applied'
        }; no initdb, no init scripts`,
        steps: [...prepare(obs), ...finish, ...role, { do: 'write-settings' }, { do: 'record-state' }, { do: 'hand-over' }],
      };
    }
  }
  return refuse('unknown', `${P}: unexpected state`);
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
      { do: 'sync-staging' },
      { do: 'commit-staging' },
      { do: 'write-settings' },
      { do: 'record-state' },
      { do: 'hand-over' },
    ],
  };
}

function refuse(row: string, message: string): Plan {
  return { row, why: 'refused', refuse: message };
}
