/**
 * The `pgrepl` role standbys connect as: REPLICATION LOGIN, with the password derived from
 * PGREPL_TOKEN. Set at initdb and again whenever the token changed (rotation). What is sent is a
 * verifier computed here, in the cluster's password_encryption, never the password itself.
 * Without a token the role is locked instead: it cannot log in (replication off).
 */
import type pg from 'pg';
import { REPLICATION_USER } from '../config/token.js';
import { log } from '../log.js';
import { CHECKPOINT_FUNCTION } from '../postgres/checkpoint.js';
import { ident, literal, withLocalClient } from '../postgres/client.js';
import { passwordVerifier, type PasswordEncryption } from '../postgres/verifier.js';
import { fingerprint } from '../state/node-state.js';
import { requirePasswordEncryption, type StepContext } from './context.js';
import { localTarget, requireTempServer } from './temp-server.js';

const REWIND_FUNCTIONS = [
  'pg_catalog.pg_ls_dir(text, boolean, boolean)',
  'pg_catalog.pg_stat_file(text, boolean)',
  'pg_catalog.pg_read_binary_file(text)',
  'pg_catalog.pg_read_binary_file(text, bigint, bigint, boolean)',
];

export async function setReplicationRole(ctx: StepContext): Promise<void> {
  requireTempServer(ctx);
  const role = replicationRoleFor(ctx);
  await withLocalClient(localTarget(ctx), async (c) => {
    const found = await replicationRoleExists(c);
    for (const sql of replicationRoleStatements(role.verifier, ctx.obs.binariesMajor, found)) await c.query(sql);
    logReplicationRoleSet(role.method, found);
  });
  ctx.replicationAuth = role.auth;
}

/**
 * The pgrepl role's verifier in the cluster's password_encryption, and what the state file
 * records of it (a fingerprint of the password, never the password).
 */
export function replicationRoleFor(ctx: StepContext): { verifier: string; method: PasswordEncryption; auth: NonNullable<StepContext['replicationAuth']> } {
  const method = requirePasswordEncryption(ctx);
  const password = ctx.cfg.replicationPassword.reveal();
  return { verifier: passwordVerifier(method, password, REPLICATION_USER), method, auth: { fingerprint: fingerprint(password), method } };
}

/**
 * The statements that create (or, if it `exists`, alter) the role with this verifier and give it
 * what it needs, in the database they run in (postgres): pg_rewind's functions, when this node is
 * the source of a rewind (as Patroni grants its rewind user), and a checkpoint, so that a node
 * about to be rewound can make its new upstream write its timeline down: on every major through a
 * function of the superuser's (CHECKPOINT is superuser-only before 15).
 */
export function replicationRoleStatements(verifier: string, major: number, exists: boolean): string[] {
  const role = ident(REPLICATION_USER);
  return [
    `${exists ? 'ALTER' : 'CREATE'} ROLE ${role} WITH REPLICATION LOGIN PASSWORD ${literal(verifier)}`,
    ...REWIND_FUNCTIONS.map((fn) => `GRANT EXECUTE ON FUNCTION ${fn} TO ${role}`),
    ...checkpointFunction(),
    ...(major >= 15 ? [`GRANT pg_checkpoint TO ${role}`] : []),
  ];
}

export function logReplicationRoleSet(method: PasswordEncryption, existed: boolean): void {
  log.info({ role: REPLICATION_USER, method }, existed ? 'replication role password re-applied' : 'replication role created');
}

/**
 * No PGREPL_TOKEN: the pgrepl role, if the cluster has one (from a start with a token, or copied
 * from a primary that had one), can no longer log in and has no password. A new cluster gets no
 * such role at all, as with the official image; a later start with a token creates it.
 */
export async function lockReplicationRole(ctx: StepContext): Promise<void> {
  requireTempServer(ctx);
  await withLocalClient(localTarget(ctx), async (c) => {
    if (!(await replicationRoleExists(c))) return;
    await c.query(`ALTER ROLE ${ident(REPLICATION_USER)} WITH NOLOGIN PASSWORD NULL`);
    log.info({ role: REPLICATION_USER }, 'replication role locked: it cannot log in until a start with PGREPL_TOKEN');
  });
  ctx.replicationAuth = 'off';
}

async function replicationRoleExists(c: pg.Client): Promise<boolean> {
  return ((await c.query('SELECT 1 FROM pg_roles WHERE rolname = $1', [REPLICATION_USER])).rowCount ?? 0) > 0;
}

/**
 * The statements that (re)create the checkpoint function in the current (postgres) database,
 * owned by the connected superuser, in a schema of its own that only the pgrepl role may use;
 * idempotent. The search_path is fixed so that no object of another role is resolved in it.
 */
function checkpointFunction(): string[] {
  const schema = ident(CHECKPOINT_FUNCTION.schema);
  const fn = `${schema}.${ident(CHECKPOINT_FUNCTION.name)}()`;
  const role = ident(REPLICATION_USER);
  return [
    `CREATE SCHEMA IF NOT EXISTS ${schema}`,
    `REVOKE ALL ON SCHEMA ${schema} FROM PUBLIC`,
    `GRANT USAGE ON SCHEMA ${schema} TO ${role}`,
    `CREATE OR REPLACE FUNCTION ${fn} RETURNS void LANGUAGE sql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS 'CHECKPOINT'`,
    `REVOKE ALL ON FUNCTION ${fn} FROM PUBLIC`,
    `GRANT EXECUTE ON FUNCTION ${fn} TO ${role}`,
  ];
}
