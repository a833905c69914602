/**
 * Everything the planner needs to know, gathered in one read-only pass: the state of PGDATA, the
 * binaries' major version, and this node's own state file (scoped to node and system).
 */
import type { Config, Role } from '../config/env.js';
import { fingerprintMatches, readNodeState, type ReplicationAuthMethod } from '../state/node-state.js';
import { binariesMajor } from './binaries.js';
import { observePgdata, type PgdataState } from './pgdata.js';

export interface Observation {
  pgdata: PgdataState;
  binariesMajor: number;
  runningAsRoot: boolean;
  /** The pgrepl role's password in the cluster is the one derived from the current token. */
  replicationPasswordCurrent: boolean;
  lastRole: Role | undefined;
  /** How pg_hba checks the replication password, as recorded when it was last applied. */
  replicationAuthMethod: ReplicationAuthMethod | undefined;
  /** Why a state file was ignored, if one was. */
  stateIgnored: string | undefined;
}

export async function observe(cfg: Config): Promise<Observation> {
  const [pgdata, major] = await Promise.all([observePgdata(cfg.pgdata), binariesMajor()]);
  let replicationPasswordCurrent = false;
  let lastRole: Role | undefined;
  let stateIgnored: string | undefined;
  let replicationAuthMethod: ReplicationAuthMethod | undefined;
  if (pgdata.kind === 'cluster' && !pgdata.swapPending && pgdata.systemIdentifier) {
    const read = await readNodeState(cfg.pgdata, { node: cfg.nodeName, systemIdentifier: pgdata.systemIdentifier });
    stateIgnored = read.ignored;
    lastRole = read.state?.lastRole;
    const auth = read.state?.replicationAuth;
    replicationAuthMethod = auth?.method;
    replicationPasswordCurrent = auth !== undefined && fingerprintMatches(cfg.replicationPassword.reveal(), auth.fingerprint);
  }
  return {
    pgdata,
    binariesMajor: major,
    runningAsRoot: process.getuid?.() === 0,
    replicationPasswordCurrent,
    lastRole,
    replicationAuthMethod,
    stateIgnored,
  };
}
