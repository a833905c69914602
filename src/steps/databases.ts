/**
 * The databases of a new cluster: POSTGRES_DB (as the official image creates it) and the gestalt
 * databases docker-pgrepl created for the gestalt framework (PGREPL_GESTALT_DATABASES), owned by
 * and granted to POSTGRES_USER. Also the official image's pg_hba line for password logins.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Config } from '../config/env.js';
import { log } from '../log.js';
import { ident, withLocalClient } from '../postgres/client.js';
import { withHostAuthLine } from '../postgres/settings.js';
import { writeFileAtomic } from '../util/atomic-file.js';
import { requirePasswordEncryption, stagingDir, type StepContext } from './context.js';
import { localTarget, requireTempServer } from './temp-server.js';

/** The databases initdb makes: what a cluster bootstrapped in single-user mode starts from. */
export const INITDB_DATABASES: ReadonlySet<string> = new Set(['postgres', 'template0', 'template1']);

/**
 * The statements that create POSTGRES_DB and the gestalt databases a cluster with `existing`
 * databases lacks, and grant the gestalt ones to POSTGRES_USER. From 15 on they are copied
 * file by file (STRATEGY FILE_COPY, the only way before 15): on a new cluster its two
 * checkpoints cost nothing, while the default (WAL_LOG) writes every page of template1 to the
 * WAL and to shared buffers, which the server's shutdown checkpoint then writes out again.
 */
export function databaseStatements(cfg: Config, major: number, existing: ReadonlySet<string>): string[] {
  const strategy = major >= 15 ? ' STRATEGY FILE_COPY' : '';
  const out: string[] = [];
  const made = new Set(existing);
  if (cfg.postgresDb !== 'postgres' && !made.has(cfg.postgresDb)) {
    out.push(`CREATE DATABASE ${ident(cfg.postgresDb)}${strategy}`);
    made.add(cfg.postgresDb);
  }
  for (const db of cfg.gestaltDatabases) {
    if (!made.has(db)) out.push(`CREATE DATABASE ${ident(db)} OWNER ${ident(cfg.postgresUser)}${strategy}`);
    made.add(db);
    out.push(`GRANT ALL PRIVILEGES ON DATABASE ${ident(db)} TO ${ident(cfg.postgresUser)}`);
  }
  return out;
}

export function logDatabasesCreated(cfg: Config): void {
  if (cfg.postgresDb !== 'postgres') log.info({ database: cfg.postgresDb }, 'created POSTGRES_DB');
  if (cfg.gestaltDatabases.length > 0) log.info({ databases: cfg.gestaltDatabases }, 'created the gestalt databases');
}

export async function createDatabases(ctx: StepContext): Promise<void> {
  const { cfg } = ctx;
  requireTempServer(ctx);
  await withLocalClient(localTarget(ctx), async (c) => {
    const existing = new Set((await c.query<{ datname: string }>('SELECT datname FROM pg_database')).rows.map((r) => r.datname));
    for (const sql of databaseStatements(cfg, ctx.obs.binariesMajor, existing)) await c.query(sql);
  });
  logDatabasesCreated(cfg);
}

/** `host all all all METHOD`, appended once at initdb like the official image does. */
export async function allowHostConnections(ctx: StepContext): Promise<void> {
  const method = ctx.cfg.hostAuthMethod ?? requirePasswordEncryption(ctx);
  const hba = join(stagingDir(ctx), 'pg_hba.conf');
  await writeFileAtomic(hba, withHostAuthLine(await readFile(hba, 'utf8'), method), 0o600);
}
