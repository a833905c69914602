/** What the steps of one start share: the inputs, what was observed, and what earlier steps learnt. */
import { join } from 'node:path';
import type { Config } from '../config/env.js';
import { STAGING_INIT } from '../layout.js';
import type { Observation } from '../observe/observe.js';
import type { EffectiveUpstream } from '../plan/upstream.js';
import type { PasswordEncryption } from '../postgres/verifier.js';
import type { ReplicationAuthMethod } from '../state/node-state.js';

export interface StepContext {
  cfg: Config;
  obs: Observation;
  /** Arguments for postgres at hand-over (`pgrepl postgres ARGS`). */
  postgresArgs: string[];
  /** Set while a temporary, socket-only server runs. */
  tempServer?: { dataDir: string };
  /** The cluster's password_encryption, learnt by the bootstrap (temporary server or single-user mode). */
  passwordEncryption?: PasswordEncryption;
  /** The upstream a standby follows (after any `pgrepl follow` override, or the peer it is fenced into following). */
  upstream?: EffectiveUpstream | undefined;
  /** This start follows `upstream` because fencing kept a PRIMARY from coming up writable. */
  fenced?: boolean;
  /**
   * Set when this start (re)applied the replication role's password, or made sure the role
   * cannot log in ('off': no PGREPL_TOKEN).
   */
  replicationAuth?: { fingerprint: string; method: ReplicationAuthMethod } | 'off';
}

export const stagingDir = (ctx: StepContext): string => join(ctx.cfg.pgdata, STAGING_INIT);

export function requireUpstream(ctx: StepContext): EffectiveUpstream {
  if (!ctx.upstream) throw new Error('internal: this step needs an upstream, and none is configured');
  return ctx.upstream;
}

export function requirePasswordEncryption(ctx: StepContext): PasswordEncryption {
  if (!ctx.passwordEncryption) throw new Error("internal: this step needs the cluster's password_encryption, which no step before it learnt");
  return ctx.passwordEncryption;
}
