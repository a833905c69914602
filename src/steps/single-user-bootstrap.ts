/**
 * A new cluster's bootstrap in single-user mode: the databases and the pgrepl role made by one
 * `postgres --single` run on the staging copy initdb just made, instead of a temporary server
 * that must start, take connections and stop (with its shutdown checkpoint). The planner chooses
 * it when no init script needs a server to connect to (plan/decide.ts); the statements are the
 * ones the temporary server's steps run (steps/databases.ts, steps/replication-role.ts), on a
 * catalog known without asking: what initdb makes, and no pgrepl role.
 *
 * password_encryption, which the role's verifier and pg_hba's method follow, is read the way
 * the official entrypoint reads it: `postgres -C password_encryption` with the user's arguments.
 */
import { UserError } from '../errors.js';
import { log } from '../log.js';
import { ProgramFailed } from '../postgres/run.js';
import { readSetting, runSingleUser } from '../postgres/single-user.js';
import { asPasswordEncryption } from '../postgres/verifier.js';
import { stagingDir, type StepContext } from './context.js';
import { databaseStatements, INITDB_DATABASES, logDatabasesCreated } from './databases.js';
import { logReplicationRoleSet, replicationRoleFor, replicationRoleStatements } from './replication-role.js';
import { serverArgs } from './server-args.js';
import { STAGING_SETTINGS } from './staging.js';

export async function bootstrapInSingleUserMode(ctx: StepContext, replicationRole: 'set' | 'lock'): Promise<void> {
  const { cfg } = ctx;
  const dataDir = stagingDir(ctx);
  const major = ctx.obs.binariesMajor;
  // The user's arguments first, as for every server pgrepl starts; pgrepl's after them, and win.
  const args = await serverArgs(ctx.postgresArgs, dataDir);
  const settings = [...STAGING_SETTINGS, 'synchronous_standby_names='].flatMap((s) => ['-c', s]);
  try {
    ctx.passwordEncryption = asPasswordEncryption(await readSetting(dataDir, args, 'password_encryption'));
    const role = replicationRole === 'set' ? replicationRoleFor(ctx) : undefined;
    const statements = [
      ...databaseStatements(cfg, major, INITDB_DATABASES),
      // No token: a new cluster gets no pgrepl role at all, as with the official image.
      ...(role ? replicationRoleStatements(role.verifier, major, false) : []),
    ];
    log.info('bootstrapping the new cluster in single-user mode (no init scripts to run)');
    await runSingleUser(dataDir, [...args, ...settings], 'postgres', statements);
    logDatabasesCreated(cfg);
    if (role) logReplicationRoleSet(role.method, false);
    ctx.replicationAuth = role ? role.auth : 'off';
  } catch (err) {
    if (!(err instanceof ProgramFailed)) throw err;
    throw new UserError(
      `the new cluster's bootstrap in single-user mode failed (${postgresComplaint(err.lines) ?? `exit ${err.exitCode ?? err.signal}`}): check the arguments given to postgres (the container's command) and POSTGRES_INITDB_ARGS; ${cfg.pgdata} holds no cluster yet, and the next start discards this build and begins again`,
    );
  }
}

/** The last FATAL, ERROR or PANIC postgres printed, without its log line prefix. */
function postgresComplaint(lines: readonly string[]): string | undefined {
  const line = [...lines].reverse().find((l) => /\b(FATAL|ERROR|PANIC):/.test(l));
  return line?.replace(/^.*?\b(FATAL|ERROR|PANIC):\s*/, '$1: ');
}
