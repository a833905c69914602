/**
 * TLS configuration (config/tls.ts) and what it renders (postgres/tls.ts, settings.ts): each bad
 * input one line naming the variable; hostssl rules; libpq's and node-postgres's TLS options.
 */
import { execFileSync } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/env.js';
import { UserError } from '../../src/errors.js';
import { TLS_DIR } from '../../src/layout.js';
import { conninfo, renderSettings, replicationMethodIn, withReplicationRules } from '../../src/postgres/settings.js';
import { libpqTls, libpqTlsEnv, pgSsl, serverTlsFiles } from '../../src/postgres/tls.js';
import { writeTlsFiles } from '../../src/steps/tls.js';
import { configErrorOf } from '../support/config.js';

const load = (env: Record<string, string>) => loadConfig({ PGREPL_TOKEN: 'a-test-token', ...env }, 'host');
const errorOf = (env: Record<string, string>) => configErrorOf({ PGREPL_TOKEN: 'a-test-token', ...env }, 'host');

let dir: string;
const file = (name: string) => join(dir, name);
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'pgrepl-tls-unit-'));
  for (const name of ['a', 'b']) {
    execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '1',
      '-subj', `/CN=${name}`, '-keyout', file(`${name}.key`), '-out', file(`${name}.crt`)], { stdio: 'ignore' });
  }
  writeFileSync(file('garbage.crt'), 'not a certificate\n');
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('PGREPL_TLS_*', () => {
  it('is off without any of them', () => {
    expect(load({}).tls).toBeUndefined();
  });

  it('reads a certificate and key by path, by _FILE, or as PEM, and keeps the key secret', () => {
    const byPath = load({ PGREPL_TLS_CERT: file('a.crt'), PGREPL_TLS_KEY: file('a.key'), PGREPL_TLS_CA: file('b.crt') });
    const byFile = load({ PGREPL_TLS_CERT_FILE: file('a.crt'), PGREPL_TLS_KEY_FILE: file('a.key'), PGREPL_TLS_CA_FILE: file('b.crt') });
    const asPem = load({ PGREPL_TLS_CERT: readFileSync(file('a.crt'), 'utf8'), PGREPL_TLS_KEY: readFileSync(file('a.key'), 'utf8') });
    for (const cfg of [byPath, byFile, asPem]) {
      expect(cfg.tls?.source).toBe('files');
      expect(cfg.tls?.cert).toMatch(/^-----BEGIN CERTIFICATE-----/);
      expect(cfg.tls?.key?.reveal()).toMatch(/^-----BEGIN PRIVATE KEY-----/);
      expect(JSON.stringify(cfg)).not.toContain('PRIVATE KEY');
    }
    expect(byPath.tls?.ca).toBe(readFileSync(file('b.crt'), 'utf8'));
    expect(asPem.tls?.ca).toBeUndefined();
  });

  it('PGREPL_TLS=self-signed', () => {
    expect(load({ PGREPL_TLS: 'self-signed' }).tls).toEqual({ source: 'self-signed', cert: undefined, key: undefined, ca: undefined });
  });

  it.each([
    ['an unknown mode', { PGREPL_TLS: 'on' }, 'PGREPL_TLS="on" is not valid: must be self-signed (e.g. PGREPL_TLS=self-signed)'],
    ['an unreadable certificate', { PGREPL_TLS_CERT: '/nonexistent/node.crt', PGREPL_TLS_KEY: '/nonexistent/node.key' },
      'PGREPL_TLS_CERT=/nonexistent/node.crt cannot be read (ENOENT): mount this node\'s certificate there, readable by the user the container starts as, or unset PGREPL_TLS_CERT'],
    ['an unreadable key file secret', { PGREPL_TLS_CERT: '/x.crt', PGREPL_TLS_KEY_FILE: '/run/secrets/nope' },
      'PGREPL_TLS_KEY_FILE=/run/secrets/nope cannot be read (ENOENT): mount the file there or unset PGREPL_TLS_KEY_FILE'],
    ['a relative path', { PGREPL_TLS_CERT: 'node.crt', PGREPL_TLS_KEY: '/x.key' },
      'PGREPL_TLS_CERT=node.crt is not valid: give the absolute path of this node\'s certificate (PEM), or the PEM itself (e.g. PGREPL_TLS_CERT=/etc/pgrepl/tls/node.crt)'],
    ['a key without a certificate', { PGREPL_TLS_KEY: '/x.key' },
      'PGREPL_TLS_KEY is set without PGREPL_TLS_CERT: set PGREPL_TLS_CERT to this node\'s certificate (PEM), or unset PGREPL_TLS_KEY'],
    ['a certificate without a key', { PGREPL_TLS_CERT: '/x.crt' },
      'PGREPL_TLS_CERT is set without PGREPL_TLS_KEY: set PGREPL_TLS_KEY to the private key of that certificate (PEM), or unset PGREPL_TLS_CERT'],
    ['a CA without TLS', { PGREPL_TLS_CA: '/ca.crt' },
      'PGREPL_TLS_CA is set but TLS is off: set PGREPL_TLS_CERT and PGREPL_TLS_KEY (this node\'s certificate, signed by that CA, and its key), or unset PGREPL_TLS_CA'],
    ['self-signed and a certificate', { PGREPL_TLS: 'self-signed', PGREPL_TLS_CERT: '/x.crt' },
      'PGREPL_TLS=self-signed and PGREPL_TLS_CERT are both set: a node uses either a certificate made at its first start or the one given; unset PGREPL_TLS or PGREPL_TLS_CERT'],
    ['self-signed and a CA', { PGREPL_TLS: 'self-signed', PGREPL_TLS_CA: '/ca.crt' },
      'PGREPL_TLS_CA is set with PGREPL_TLS=self-signed: no CA signed the nodes\' self-signed certificates, so none would verify; give every node a certificate signed by that CA (PGREPL_TLS_CERT, PGREPL_TLS_KEY) instead of PGREPL_TLS, or unset PGREPL_TLS_CA (standbys then connect with sslmode=require)'],
    ['a variable and its _FILE', { PGREPL_TLS_CA: '/ca.crt', PGREPL_TLS_CA_FILE: '/ca.crt' }, 'PGREPL_TLS_CA and PGREPL_TLS_CA_FILE are both set: keep only one of them'],
  ])('%s: one line', (_name, env, message) => {
    expect(errorOf(env)).toBe(message);
  });

  it('a file that is not a certificate, a key that is not one or not its certificate\'s: one line each, the key never shown', () => {
    expect(errorOf({ PGREPL_TLS_CERT: file('garbage.crt'), PGREPL_TLS_KEY: file('a.key') })).toMatch(/^PGREPL_TLS_CERT is not a certificate in PEM \(.*\): give a file that starts with -----BEGIN CERTIFICATE-----$/);
    expect(errorOf({ PGREPL_TLS_CERT: file('a.crt'), PGREPL_TLS_KEY: file('garbage.crt') })).toBe('PGREPL_TLS_KEY is not a private key in PEM without a passphrase (postgres cannot ask for one): give the unencrypted key of PGREPL_TLS_CERT');
    expect(errorOf({ PGREPL_TLS_CERT: file('a.crt'), PGREPL_TLS_KEY: file('b.key') })).toBe('PGREPL_TLS_KEY is not the key of PGREPL_TLS_CERT: give the private key that belongs to this node\'s certificate');
    expect(errorOf({ PGREPL_TLS_CERT: file('a.crt'), PGREPL_TLS_KEY: file('a.key'), PGREPL_TLS_CA: file('garbage.crt') })).toMatch(/^PGREPL_TLS_CA is not a CA certificate in PEM/);
    const keyText = readFileSync(file('a.key'), 'utf8');
    expect(errorOf({ PGREPL_TLS_CERT: file('a.crt'), PGREPL_TLS_KEY: 'relative.key' })).toBe(
      'PGREPL_TLS_KEY is not valid: give the absolute path of this node\'s private key (PEM), or the PEM itself (e.g. PGREPL_TLS_KEY=/etc/pgrepl/tls/node.key)');
    expect(errorOf({ PGREPL_TLS_CERT: file('garbage.crt'), PGREPL_TLS_KEY: keyText })).not.toContain('PRIVATE KEY');
  });
});

describe('rendering', () => {
  const files = { source: 'files' as const, cert: 'x', key: undefined, ca: 'PEM' };

  it('pgrepl.conf turns ssl on with the copies in PGDATA, relative to it', () => {
    const out = renderSettings({ major: 15, socketDir: '/s', slotMaxWal: undefined, tls: serverTlsFiles(files) });
    expect(out).toContain(`ssl = on\nssl_cert_file = '${TLS_DIR}/server.crt'\nssl_key_file = '${TLS_DIR}/server.key'\n`);
    expect(serverTlsFiles({ ...files, source: 'self-signed' })).toEqual({ cert: `${TLS_DIR}/self-signed.crt`, key: `${TLS_DIR}/self-signed.key` });
    expect(renderSettings({ major: 15, socketDir: '/s', slotMaxWal: undefined })).not.toMatch(/^ssl/m);
  });

  it('pg_hba: hostssl rules, and the role rejected without TLS; the method is still read back', () => {
    const hba = withReplicationRules('local all all trust\n', ['10.0.0.0/8'], 'md5', true);
    expect(hba).toMatch(/^hostssl\treplication\tpgrepl\t10\.0\.0\.0\/8\tmd5$/m);
    expect(hba).toMatch(/^hostssl\tpostgres\tpgrepl\t10\.0\.0\.0\/8\tmd5$/m);
    expect(hba).toMatch(/^hostnossl\treplication\tpgrepl\tall\treject$/m);
    expect(hba).toMatch(/^hostnossl\tall\tpgrepl\tall\treject$/m);
    expect(hba).not.toMatch(/^host\t/m);
    expect(replicationMethodIn(hba)).toBe('md5');
    // Turned off again: plain host rules, no reject.
    const off = withReplicationRules(hba, ['10.0.0.0/8'], 'md5');
    expect(off).not.toMatch(/ssl/);
  });

  it('standbys: verify-full with a CA, require without; libpq keys, environment and node-postgres alike', () => {
    expect(libpqTls(undefined, '/d')).toEqual({});
    expect(libpqTls({ ca: undefined }, '/d')).toEqual({ sslmode: 'require' });
    expect(libpqTls({ ca: 'PEM' }, '/d')).toEqual({ sslmode: 'verify-full', sslrootcert: `/d/${TLS_DIR}/ca.crt` });
    expect(libpqTlsEnv({ ca: 'PEM' }, '/d')).toEqual({ PGSSLMODE: 'verify-full', PGSSLROOTCERT: `/d/${TLS_DIR}/ca.crt` });
    expect(libpqTlsEnv(undefined, '/d')).toEqual({});
    expect(pgSsl(undefined)).toBe(false);
    expect(pgSsl({ ca: undefined })).toEqual({ rejectUnauthorized: false });
    expect(pgSsl({ ca: 'PEM' })).toEqual({ ca: 'PEM', rejectUnauthorized: true });
    const c = conninfo({ host: 'h', port: 1, passfile: '/p', applicationName: 'a', slot: undefined, tls: libpqTls({ ca: undefined }, '/d') });
    expect(c).toContain("sslmode='require'");
  });
});

describe('the files in PGDATA (steps/tls.ts)', () => {
  const tlsDir = (pgdata: string) => join(pgdata, TLS_DIR);

  it('self-signed: made once for this node with openssl (key 0600), kept on the next start, made anew for another node', async () => {
    const pgdata = join(dir, 'self');
    const cfg = load({ PGREPL_TLS: 'self-signed', PGDATA: pgdata, PGREPL_NODE_NAME: 'pg_one' });
    await writeTlsFiles(cfg);
    const cert = readFileSync(join(tlsDir(pgdata), 'self-signed.crt'), 'utf8');
    expect(new X509Certificate(cert).subject).toBe('CN=pg_one');
    expect(statSync(join(tlsDir(pgdata), 'self-signed.key')).mode & 0o777).toBe(0o600);
    await writeTlsFiles(cfg);
    expect(readFileSync(join(tlsDir(pgdata), 'self-signed.crt'), 'utf8')).toBe(cert);
    // A copy of this PGDATA started as another node makes that node's own.
    await writeTlsFiles(load({ PGREPL_TLS: 'self-signed', PGDATA: pgdata, PGREPL_NODE_NAME: 'pg_two' }));
    expect(new X509Certificate(readFileSync(join(tlsDir(pgdata), 'self-signed.crt'))).subject).toBe('CN=pg_two');
  });

  it('self-signed without openssl on PATH: one line that says what to do', async () => {
    const cfg = load({ PGREPL_TLS: 'self-signed', PGDATA: join(dir, 'no-openssl') });
    const path = process.env.PATH;
    process.env.PATH = join(dir, 'empty-bin');
    try {
      await expect(writeTlsFiles(cfg)).rejects.toThrow(new UserError('PGREPL_TLS=self-signed needs the openssl command to make this node\'s certificate, and there is none on PATH: install openssl (the official Debian-based postgres images have it), or give PGREPL_TLS_CERT and PGREPL_TLS_KEY instead'));
    } finally {
      process.env.PATH = path;
    }
  });

  it('given files: copied as postgres wants them (0600), the CA beside them', async () => {
    const pgdata = join(dir, 'given');
    await writeTlsFiles(load({ PGREPL_TLS_CERT: file('a.crt'), PGREPL_TLS_KEY: file('a.key'), PGREPL_TLS_CA: file('b.crt'), PGDATA: pgdata }));
    for (const [copy, original] of [['server.crt', 'a.crt'], ['server.key', 'a.key'], ['ca.crt', 'b.crt']] as const) {
      expect(readFileSync(join(tlsDir(pgdata), copy), 'utf8')).toBe(readFileSync(file(original), 'utf8'));
      expect(statSync(join(tlsDir(pgdata), copy)).mode & 0o777).toBe(0o600);
    }
  });
});
