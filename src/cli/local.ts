/**
 * What the operator commands share: the node's configuration (the same environment the
 * entrypoint read: `docker exec` inherits it), a SQL connection to the local server over its
 * socket; and, re-exported, argument parsing with one-line usage errors (args.ts).
 */
import type pg from 'pg';
import { loadConfig, type Config } from '../config/env.js';
import { UserError } from '../errors.js';
import { dropPrivileges, lookupUser, runningAsRoot } from '../handover/privileges.js';
import { withLocalClient } from '../postgres/client.js';
import { withStableNodeName } from '../state/node-name.js';

export { EXIT_USAGE, parseArgs, type Command, type ParsedArgs } from './args.js';

export function nodeConfig(): Config {
  return withStableNodeName(loadConfig());
}

/** Commands that write into PGDATA or run pg_ctl do it as postgres, as the server does. */
export function becomePostgres(): void {
  if (runningAsRoot()) dropPrivileges(lookupUser());
}

export async function withNode<T>(cfg: Config, fn: (c: pg.Client) => Promise<T>): Promise<T> {
  try {
    return await withLocalClient(
      { socketDir: cfg.socketDir, port: cfg.port, user: cfg.postgresUser, password: cfg.postgresPassword },
      fn,
    );
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ECONNREFUSED') {
      throw new UserError(`no server answers on ${cfg.socketDir}/.s.PGSQL.${cfg.port}: is the node running, and is PGPORT=${cfg.port} its port?`);
    }
    throw err;
  }
}

export async function serverMajor(c: pg.Client): Promise<number> {
  const n = Number((await c.query<{ v: string }>("SELECT current_setting('server_version_num') AS v")).rows[0]!.v);
  return Math.floor(n / 10000);
}

export function print(line: string): void {
  process.stdout.write(line + '\n');
}
