/**
 * The little state the entrypoint keeps between starts, in PGDATA/pgrepl.state.json.
 *
 * Why it is scoped: PGDATA travels. pg_basebackup copies every file of the primary's data
 * directory to each standby, pg_rewind copies files back, volumes are snapshotted and restored
 * elsewhere. docker-pgrepl's sentinel file was copied into every standby exactly this way. So the
 * file records who wrote it, the node name and the cluster's system identifier, and a node that
 * finds a file written by another node, or for another cluster, treats it as absent. Absent state
 * must always be safe: it only ever makes the entrypoint do more work (re-apply the replication
 * password, fall back to the upstream given in the environment), never less.
 *
 * Why it is durable: it is written with writeFileAtomic (temp file, fsync, rename, fsync dir), so a
 * crash leaves the old state or the new, and it is mode 0600 because it holds a salted hash of the
 * replication password.
 */
import { pbkdf2Sync, randomBytes, timingSafeEqual } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Role } from '../config/env.js';
import { STATE_FILE } from '../layout.js';
import type { RecordedBinaries } from '../observe/binaries.js';
import type { PasswordEncryption } from '../postgres/verifier.js';
import { writeFileAtomic } from '../util/atomic-file.js';

export interface NodeIdentity {
  node: string;
  systemIdentifier: string;
}

/** How pg_hba checks the replication password: the cluster's password_encryption at the time. */
export type ReplicationAuthMethod = PasswordEncryption;

export interface NodeState extends NodeIdentity {
  version: 1;
  /** When the state last changed (an update that changes nothing leaves the file as it is). */
  writtenAt: string;
  /** The role this node last handed over to postgres as. */
  lastRole?: Role;
  /** What the pgrepl role's password was last set to (a salted hash), and how pg_hba checks it. */
  replicationAuth?: { fingerprint: string; method: ReplicationAuthMethod };
  /**
   * The last start had no PGREPL_TOKEN: the pgrepl role was left unable to log in (replication
   * off). Never set together with replicationAuth: a start with a token clears it.
   */
  replicationOff?: true;
  /**
   * `pgrepl follow HOST:PORT`: the upstream the operator pointed this standby at, and the
   * upstream the environment named at the time. It holds while the environment still names that
   * one; once the environment names another, the operator's newer intent wins.
   */
  follow?: FollowOverride;
  /**
   * Fencing (PGREPL_PEERS, PGREPL_FENCE=rejoin): configured as PRIMARY, this node found a newer
   * primary of its cluster among its peers and became its standby instead of coming up writable.
   * It stays that peer's standby on every start while PGREPL_ROLE is PRIMARY, until an operator
   * promotes it (`pgrepl promote`) or gives it PGREPL_ROLE=STANDBY.
   */
  fenced?: FenceRecord;
  /**
   * The newest timeline this node has been a standby on: recorded at every hand-over as a
   * standby, and before pgrepl itself removes standby.signal (crash recovery before a rewind,
   * which single-user mode needs), raised to the timeline it is being rewound to. A cluster with
   * no standby marker on a newer timeline than this was promoted (pg_ctl promote); on this one
   * or an older one, it is the standby pgrepl detached and did not get to finish.
   */
  standbyTimeline?: number;
  /** The upstream this node last handed over following, as a standby: its slot is there. */
  upstream?: FenceRecord;
  /**
   * The postgres binary of the last start (its path, inode, size, times) and its major version:
   * a restart on the very same file need not run `postgres --version` (observe/binaries.ts).
   */
  binaries?: RecordedBinaries;
}

export interface FenceRecord {
  host: string;
  port: number;
}

export interface FollowOverride {
  host: string;
  port: number;
  /** `host:port` of the environment's upstream when the override was made. */
  envUpstream: string;
}

/** Fields to set; `follow: null` removes the override, `fenced: null` the fence. */
export type StateUpdate = Partial<Pick<NodeState, 'lastRole' | 'replicationAuth' | 'replicationOff' | 'standbyTimeline' | 'upstream' | 'binaries'>> & {
  follow?: FollowOverride | null;
  fenced?: FenceRecord | null;
};

const ITERATIONS = 4096;

/** A salted, slow hash of a password: enough to tell "same as last time" without storing it. */
export function fingerprint(password: string, salt: Buffer = randomBytes(16)): string {
  const hash = pbkdf2Sync(password, salt, ITERATIONS, 32, 'sha256');
  return `pbkdf2-sha256$${ITERATIONS}$${salt.toString('base64')}$${hash.toString('base64')}`;
}

export function fingerprintMatches(password: string, stored: string): boolean {
  const [scheme, iterations, salt, hash] = stored.split('$');
  if (scheme !== 'pbkdf2-sha256' || !salt || !hash) return false;
  const expected = Buffer.from(hash, 'base64');
  const actual = pbkdf2Sync(password, Buffer.from(salt, 'base64'), Number(iterations), expected.length, 'sha256');
  return expected.length === actual.length && timingSafeEqual(expected, actual);
}

export interface StateRead {
  state: NodeState | undefined;
  /** Why a file that exists was not used, for a debug line. */
  ignored?: string;
}

export async function readNodeState(pgdata: string, me: NodeIdentity): Promise<StateRead> {
  let raw: string;
  try {
    raw = await readFile(join(pgdata, STATE_FILE), 'utf8');
  } catch {
    return { state: undefined };
  }
  let parsed: NodeState;
  try {
    parsed = JSON.parse(raw) as NodeState;
  } catch {
    return { state: undefined, ignored: `${STATE_FILE} is not valid JSON` };
  }
  if (parsed.version !== 1) return { state: undefined, ignored: `${STATE_FILE} has unknown version ${parsed.version}` };
  if (parsed.node !== me.node) return { state: undefined, ignored: `${STATE_FILE} was written by node ${parsed.node}` };
  if (parsed.systemIdentifier !== me.systemIdentifier) {
    return { state: undefined, ignored: `${STATE_FILE} belongs to system ${parsed.systemIdentifier}` };
  }
  return { state: parsed };
}

/** Merges `update` into this node's state (starting afresh if the file is another node's). */
export async function updateNodeState(pgdata: string, me: NodeIdentity, update: StateUpdate): Promise<NodeState> {
  const { state } = await readNodeState(pgdata, me);
  const { follow, fenced, ...rest } = update;
  const next: NodeState = {
    ...(state ?? {}),
    ...rest,
    ...(follow === undefined ? {} : follow === null ? { follow: undefined } : { follow }),
    ...(fenced === undefined ? {} : fenced === null ? { fenced: undefined } : { fenced }),
    version: 1,
    node: me.node,
    systemIdentifier: me.systemIdentifier,
    writtenAt: new Date().toISOString(),
  };
  // A restart mostly records what is there already: then no write (two fsyncs) at all.
  if (state && JSON.stringify({ ...next, writtenAt: state.writtenAt }) === JSON.stringify(state)) return state;
  await writeFileAtomic(join(pgdata, STATE_FILE), JSON.stringify(next, null, 2) + '\n', 0o600);
  return next;
}
