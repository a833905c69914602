/**
 * TLS for replication and rewind, as each program asks for it: the server's settings (pgrepl.conf),
 * libpq's keys (primary_conninfo, and as PGSSL* variables pg_basebackup and pg_rewind), and
 * node-postgres's `ssl` (the probes). With a CA, a standby verifies its upstream's certificate and
 * name (verify-full); without one it insists on encryption only (require): a self-signed
 * certificate cannot be verified, but nothing travels in the clear.
 */
import { join } from 'node:path';
import type { ConnectionOptions } from 'node:tls';
import type { TlsConfig } from '../config/tls.js';
import { TLS_DIR } from '../layout.js';

/** The files in TLS_DIR. Made certificates have names of their own: a given one is never overwritten by one. */
export const TLS_FILES = {
  cert: 'server.crt', key: 'server.key', ca: 'ca.crt', selfSignedCert: 'self-signed.crt', selfSignedKey: 'self-signed.key',
} as const;

/** What this node needs as a client of its upstream or a peer: TLS, and the CA to verify with (PEM), if any. */
export interface ClientTls {
  ca: string | undefined;
}

export const clientTls = (tls: TlsConfig | undefined): ClientTls | undefined => tls && { ca: tls.ca };

export const sslMode = (t: ClientTls): 'verify-full' | 'require' => (t.ca === undefined ? 'require' : 'verify-full');

/** The server's certificate and key, relative to the data directory (where postgres resolves them). */
export function serverTlsFiles(tls: TlsConfig): { cert: string; key: string } {
  const [cert, key] = tls.source === 'self-signed' ? [TLS_FILES.selfSignedCert, TLS_FILES.selfSignedKey] : [TLS_FILES.cert, TLS_FILES.key];
  return { cert: `${TLS_DIR}/${cert}`, key: `${TLS_DIR}/${key}` };
}

/** libpq's connection keys for TLS (none without it); the CA is the copy in PGDATA. */
export function libpqTls(t: ClientTls | undefined, pgdata: string): Record<string, string> {
  if (!t) return {};
  return { sslmode: sslMode(t), ...(t.ca !== undefined && { sslrootcert: join(pgdata, TLS_DIR, TLS_FILES.ca) }) };
}

/** The same as libpq's environment variables, for pg_basebackup and pg_rewind. */
export function libpqTlsEnv(t: ClientTls | undefined, pgdata: string): Record<string, string> {
  const keys = libpqTls(t, pgdata);
  return {
    ...(keys.sslmode !== undefined && { PGSSLMODE: keys.sslmode }),
    ...(keys.sslrootcert !== undefined && { PGSSLROOTCERT: keys.sslrootcert }),
  };
}

/** node-postgres's `ssl` option: verify the certificate and the host name against the CA, or only encrypt. */
export function pgSsl(t: ClientTls | undefined): false | ConnectionOptions {
  if (!t) return false;
  return t.ca === undefined ? { rejectUnauthorized: false } : { ca: t.ca, rejectUnauthorized: true };
}
