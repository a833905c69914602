/**
 * Everything the planner needs to know, gathered read-only: the state of PGDATA, the binaries'
 * major version, this node's own state file (scoped to node and system) and, for a standby, its
 * upstream and the versions of the client tools that will copy from it.
 */
import { execFile } from 'node:child_process';
import { readdir } from 'node:fs/promises';
import { promisify } from 'node:util';
import type { Config, Role } from '../config/env.js';
import type { HostPort } from '../config/validators.js';
import { log } from '../log.js';
import { hostPort, upstreamPatience, effectiveUpstream, type EffectiveUpstream } from '../plan/upstream.js';
import { replicationTarget, serverInRecovery, slotExists } from '../postgres/replication.js';
import { fingerprintMatches, readNodeState, type FenceRecord, type FollowOverride, type ReplicationAuthMethod } from '../state/node-state.js';
import { clearPhase, writePhase } from '../state/phase.js';
import { binariesMajor, parseMajor } from './binaries.js';
import { observePgdata, type PgdataState } from './pgdata.js';
import { observeUpstream, type UpstreamFound } from './upstream.js';
import { findStrayClusters, type StrayCluster } from './volume.js';

export interface Observation {
  pgdata: PgdataState;
  /** PGDATA missing or empty: clusters beside it in its volume (18+ layout, see volume.ts). */
  strayClusters?: StrayCluster[] | undefined;
  binariesMajor: number;
  runningAsRoot: boolean;
  /**
   * The pgrepl role is as the configuration wants it, as recorded by the last start: its password
   * the one derived from the current token, or, without a token, locked (it cannot log in).
   */
  replicationRoleCurrent: boolean;
  lastRole: Role | undefined;
  /** The newest timeline this node was a standby on, from its state (NodeState.standbyTimeline). */
  standbyTimeline?: number | undefined;
  /** The upstream this node last followed, from its state: where its slot was. */
  lastUpstream?: HostPort | undefined;
  /** How pg_hba checks the replication password, as recorded when it was last applied. */
  replicationAuthMethod: ReplicationAuthMethod | undefined;
  follow: FollowOverride | undefined;
  /** Why a state file was ignored, if one was. */
  stateIgnored: string | undefined;
  /** For a standby: where it replicates from, and what was found there. */
  upstream?: { target: EffectiveUpstream; found: UpstreamFound; slotExists?: boolean | undefined } | undefined;
  /** For a standby, or a primary with peers: major versions of the client tools that copy and rewind. */
  tools?: { basebackup: number | undefined; rewind: number | undefined } | undefined;
  /** The peer this node was fenced into following (PGREPL_FENCE=rejoin), from its state. */
  fenced?: FenceRecord | undefined;
  /**
   * PGDATA holds no cluster yet: PGREPL_INITDB_DIR has something in it (init scripts, which need
   * a server to connect to while the new cluster is bootstrapped).
   */
  initScripts?: boolean | undefined;
  /** For a PRIMARY with PGREPL_PEERS (or a fence): what each peer is, probed once, briefly. */
  peers?: PeerFound[] | undefined;
}

export interface PeerFound {
  target: HostPort;
  found: UpstreamFound;
  /** pg_is_in_recovery() there; undefined when it could not be asked. */
  inRecovery: boolean | undefined;
}

/** One try at a peer: what system and timeline it is (replication connection), and whether it is a standby. */
async function probePeer(cfg: Config, target: HostPort): Promise<PeerFound> {
  const found = await observeUpstream({
    target: replicationTarget(cfg, target), patienceSeconds: 0, label: 'peer',
  });
  if (!found.reachable) {
    log.info({ peer: hostPort(target), error: found.error }, `peer ${hostPort(target)} does not answer`);
    return { target, found, inRecovery: undefined };
  }
  const inRecovery = await serverInRecovery(replicationTarget(cfg, target));
  return { target, found, inRecovery };
}

async function toolMajor(tool: string): Promise<number | undefined> {
  try {
    return parseMajor((await promisify(execFile)(tool, ['--version'])).stdout);
  } catch {
    return undefined;
  }
}

/** Nothing more is worth observing when PGDATA is unusable as it is: the plan will refuse. */
function unusable(pgdata: PgdataState, major: number): boolean {
  return ['not-a-cluster', 'not-a-directory', 'unreadable'].includes(pgdata.kind) || (pgdata.kind === 'cluster' && pgdata.major !== major);
}

export async function observe(cfg: Config): Promise<Observation> {
  const pgdata = await observePgdata(cfg.pgdata);
  // This node's state, if PGDATA holds its cluster; it may name the binaries' major (a restart).
  const read = pgdata.kind === 'cluster' && !pgdata.swapPending && pgdata.systemIdentifier
    ? await readNodeState(cfg.pgdata, { node: cfg.nodeName, systemIdentifier: pgdata.systemIdentifier })
    : undefined;
  const major = await binariesMajor(read?.state?.binaries);
  const obs: Observation = {
    pgdata,
    binariesMajor: major,
    runningAsRoot: process.getuid?.() === 0,
    replicationRoleCurrent: false,
    lastRole: undefined,
    replicationAuthMethod: undefined,
    follow: undefined,
    stateIgnored: undefined,
  };
  if (pgdata.kind === 'missing' || pgdata.kind === 'empty') {
    obs.strayClusters = await findStrayClusters(cfg.pgdata);
    if (obs.strayClusters.length > 0) return obs; // the plan refuses: nothing more to look at
  }
  if (pgdata.kind !== 'cluster') obs.initScripts = (await readdir(cfg.initdbDir).catch(() => [])).length > 0;
  if (read) {
    const auth = read.state?.replicationAuth;
    obs.stateIgnored = read.ignored;
    obs.lastRole = read.state?.lastRole;
    obs.standbyTimeline = read.state?.standbyTimeline;
    obs.lastUpstream = read.state?.upstream;
    obs.follow = read.state?.follow;
    obs.fenced = read.state?.fenced;
    obs.replicationAuthMethod = auth?.method;
    obs.replicationRoleCurrent = cfg.replicationOn
      ? auth !== undefined && fingerprintMatches(cfg.replicationPassword.reveal(), auth.fingerprint)
      : read.state?.replicationOff === true;
  }
  const target = effectiveUpstream(cfg.upstream, obs.follow);
  if (cfg.role === 'STANDBY' && target && !unusable(pgdata, major)) {
    const [basebackup, rewind] = await Promise.all([toolMajor('pg_basebackup'), toolMajor('pg_rewind')]);
    obs.tools = { basebackup, rewind };
    const patience = upstreamPatience(pgdata, obs.lastRole, cfg.upstreamTimeoutSeconds);
    if (patience > 5) writePhase(cfg.socketDir, cfg.port, 'waiting for upstream');
    const found = await observeUpstream({
      target: replicationTarget(cfg, target),
      patienceSeconds: patience,
    }).finally(() => clearPhase(cfg.socketDir, cfg.port));
    // Whether this node's slot is there (undefined: could not be asked).
    const slotThere = found.reachable && cfg.slots
      ? await slotExists(replicationTarget(cfg, target), cfg.nodeName)
      : undefined;
    obs.upstream = { target, found, slotExists: slotThere };
  }
  // Fencing: a PRIMARY about to open for writes first looks at its peers (and a fenced node at
  // the peer it follows), all at once, one try each.
  // (Without a token there are no peers, and a fenced node is refused: nothing to ask.)
  if (cfg.role === 'PRIMARY' && cfg.replicationOn && pgdata.kind === 'cluster' && !unusable(pgdata, major) && (cfg.peers.length > 0 || obs.fenced)) {
    const targets = [...cfg.peers];
    const fenced = obs.fenced;
    if (fenced && !targets.some((t) => hostPort(t) === hostPort(fenced))) targets.push({ host: fenced.host, port: fenced.port });
    const [[basebackup, rewind], peers] = await Promise.all([
      Promise.all([toolMajor('pg_basebackup'), toolMajor('pg_rewind')]),
      Promise.all(targets.map((t) => probePeer(cfg, t))),
    ]);
    obs.tools = { basebackup, rewind };
    obs.peers = peers;
  }
  return obs;
}
