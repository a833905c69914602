/**
 * SQL connections to the local server over its Unix socket (the temporary server listens on
 * nothing else). The password, when the cluster wants one locally, is given to node-postgres in
 * memory, never on a command line. node-postgres is loaded on first use: a plain restart never
 * opens a connection, and loading it costs tens of milliseconds.
 */
import type pg from 'pg';
import type { Secret } from '../config/secret.js';

export interface LocalTarget {
  socketDir: string;
  port: number;
  user: string;
  password?: Secret | undefined;
  database?: string;
}

export async function loadPg(): Promise<typeof pg> {
  return (await import('pg')).default;
}

export async function withLocalClient<T>(target: LocalTarget, fn: (c: pg.Client) => Promise<T>): Promise<T> {
  const { Client } = await loadPg();
  const client = new Client({
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

/** A quoted identifier, as pg.escapeIdentifier / quote_ident. */
export const ident = (name: string): string => `"${name.replace(/"/g, '""')}"`;

/** A quoted string literal (standard_conforming_strings, E'' when it holds a backslash). */
export const literal = (value: string): string => {
  const quoted = `'${value.replace(/'/g, "''")}'`;
  return value.includes('\\') ? `E${quoted.replace(/\\/g, '\\\\')}` : quoted;
};
