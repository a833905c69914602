/**
 * The databases of a new cluster: POSTGRES_DB (as the official image creates it) and the gestalt
 * databases docker-pgrepl created for the gestalt framework (PGREPL_GESTALT_DATABASES), owned by
 * and granted to POSTGRES_USER. Also the official image's pg_hba line for password logins.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { log } from '../log.js';
import { ident, withLocalClient } from '../postgres/client.js';
import { withHostAuthLine } from '../postgres/settings.js';
import { writeFileAtomic } from '../util/atomic-file.js';
import { stagingDir, type StepContext } from './context.js';
import { localTarget, requireTempServer } from './temp-server.js';

export async function createDatabases(ctx: StepContext): Promise<void> {
  const { cfg } = ctx;
  requireTempServer(ctx);
  await withLocalClient(localTarget(ctx), async (c) => {
    const exists = async (db: string) =>
      ((await c.query('SELECT 1 FROM pg_database WHERE datname = $1', [db])).rowCount ?? 0) > 0;
    if (cfg.postgresDb !== 'postgres' && !(await exists(cfg.postgresDb))) {
      await c.query(`CREATE DATABASE ${ident(cfg.postgresDb)}`);
      log.info({ database: cfg.postgresDb }, 'created POSTGRES_DB');
    }
    for (const db of cfg.gestaltDatabases) {
      if (!(await exists(db))) await c.query(`CREATE DATABASE ${ident(db)} OWNER ${ident(cfg.postgresUser)}`);
      await c.query(`GRANT ALL PRIVILEGES ON DATABASE ${ident(db)} TO ${ident(cfg.postgresUser)}`);
    }
    if (cfg.gestaltDatabases.length > 0) log.info({ databases: cfg.gestaltDatabases }, 'created the gestalt databases');
  });
}

/** `host all all all METHOD`, appended once at initdb like the official image does. */
export async function allowHostConnections(ctx: StepContext): Promise<void> {
  const method = ctx.cfg.hostAuthMethod ?? requireTempServer(ctx).passwordEncryption;
  const hba = join(stagingDir(ctx), 'pg_hba.conf');
  await writeFileAtomic(hba, withHostAuthLine(await readFile(hba, 'utf8'), method), 0o600);
}
