/**
 * SQL connections to the local server over its Unix socket (the temporary server listens on
 * nothing else). The password, when the cluster wants one locally, is given to node-postgres in
 * memory, never on a command line.
 */
import pg from 'pg';
import type { Secret } from '../config/secret.js';

export interface LocalTarget {
  socketDir: string;
  port: number;
  user: string;
  password?: Secret | undefined;
  database?: string;
}

export async function withLocalClient<T>(target: LocalTarget, fn: (c: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({
    host: target.socketDir,
    port: target.port,
    user: target.user,
    database: target.database ?? 'postgres',
    password: target.password?.reveal(),
    application_name: 'pgrepl',
  });
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end();
  }
}

export const ident = (name: string): string => pg.escapeIdentifier(name);
export const literal = (value: string): string => pg.escapeLiteral(value);
