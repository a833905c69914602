/**
 * TLS for replication and rewind: the node's certificate and key (PGREPL_TLS_CERT, PGREPL_TLS_KEY),
 * the CA its upstream's certificate is checked against (PGREPL_TLS_CA), or PGREPL_TLS=self-signed
 * (a certificate made on this node at its first start). Each of the three is a PEM file's path,
 * or the PEM itself (what PGREPL_TLS_CERT_FILE and a Kubernetes secretKeyRef give); they are read
 * and checked here, before anything touches PGDATA, while the entrypoint may still run as root (a
 * Docker secret readable only by root works: pgrepl copies it, as postgres wants it, into PGDATA).
 */
import { createPrivateKey, X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { isAbsolute } from 'node:path';
import { UserError } from '../errors.js';
import { Secret } from './secret.js';

export interface TlsConfig {
  /** Where the node's certificate comes from: the operator's files, or made here at first start. */
  source: 'files' | 'self-signed';
  /** PEM (source 'files'). */
  cert: string | undefined;
  key: Secret | undefined;
  /** PEM of the CA an upstream's certificate must chain to: then standbys verify it (sslmode=verify-full). */
  ca: string | undefined;
}

type Env = Record<string, string | undefined>;

const PEM = /^-----BEGIN [A-Z0-9 ]+-----/;

/** The PEM a variable gives: its value if that is PEM, else the content of the file it names. */
function pemOf(name: string, value: string, what: string): string {
  if (PEM.test(value.trimStart())) return value;
  const shown = name === 'PGREPL_TLS_KEY' ? '' : `=${value}`;
  if (!isAbsolute(value)) {
    throw new UserError(`${name}${shown} is not valid: give the absolute path of ${what} (PEM), or the PEM itself (e.g. ${name}=/etc/pgrepl/tls/${name === 'PGREPL_TLS_CA' ? 'ca.crt' : name === 'PGREPL_TLS_KEY' ? 'node.key' : 'node.crt'})`);
  }
  try {
    return readFileSync(value, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? 'error';
    throw new UserError(`${name}${shown} cannot be read (${code}): mount ${what} there, readable by the user the container starts as, or unset ${name}`);
  }
}

function certificate(name: string, pem: string, what: string): X509Certificate {
  try {
    return new X509Certificate(pem);
  } catch (err) {
    throw new UserError(`${name} is not ${what} in PEM (${(err as Error).message}): give a file that starts with -----BEGIN CERTIFICATE-----`);
  }
}

/** The TLS configuration, or undefined when TLS is off; one line per mistake, naming the variable. */
export function tlsConfig(env: Env, mode: 'self-signed' | undefined): TlsConfig | undefined {
  const given = (name: string) => (env[name] === undefined || env[name] === '' ? undefined : env[name]);
  const [certVar, keyVar, caVar] = [given('PGREPL_TLS_CERT'), given('PGREPL_TLS_KEY'), given('PGREPL_TLS_CA')];
  if (mode === 'self-signed') {
    const files = [certVar && 'PGREPL_TLS_CERT', keyVar && 'PGREPL_TLS_KEY'].filter(Boolean).join(' and ');
    if (files) {
      throw new UserError(`PGREPL_TLS=self-signed and ${files} are both set: a node uses either a certificate made at its first start or the one given; unset PGREPL_TLS or ${files}`);
    }
    if (caVar) {
      throw new UserError('PGREPL_TLS_CA is set with PGREPL_TLS=self-signed: no CA signed the nodes\' self-signed certificates, so none would verify; give every node a certificate signed by that CA (PGREPL_TLS_CERT, PGREPL_TLS_KEY) instead of PGREPL_TLS, or unset PGREPL_TLS_CA (standbys then connect with sslmode=require)');
    }
    return { source: 'self-signed', cert: undefined, key: undefined, ca: undefined };
  }
  if (!certVar && !keyVar) {
    if (caVar) {
      throw new UserError('PGREPL_TLS_CA is set but TLS is off: set PGREPL_TLS_CERT and PGREPL_TLS_KEY (this node\'s certificate, signed by that CA, and its key), or unset PGREPL_TLS_CA');
    }
    return undefined;
  }
  if (!certVar) throw new UserError('PGREPL_TLS_KEY is set without PGREPL_TLS_CERT: set PGREPL_TLS_CERT to this node\'s certificate (PEM), or unset PGREPL_TLS_KEY');
  if (!keyVar) throw new UserError('PGREPL_TLS_CERT is set without PGREPL_TLS_KEY: set PGREPL_TLS_KEY to the private key of that certificate (PEM), or unset PGREPL_TLS_CERT');

  const cert = pemOf('PGREPL_TLS_CERT', certVar, "this node's certificate");
  const key = pemOf('PGREPL_TLS_KEY', keyVar, "this node's private key");
  const ca = caVar === undefined ? undefined : pemOf('PGREPL_TLS_CA', caVar, 'the CA certificate');
  const x509 = certificate('PGREPL_TLS_CERT', cert, 'a certificate');
  let privateKey;
  try {
    privateKey = createPrivateKey(key);
  } catch {
    throw new UserError('PGREPL_TLS_KEY is not a private key in PEM without a passphrase (postgres cannot ask for one): give the unencrypted key of PGREPL_TLS_CERT');
  }
  if (!x509.checkPrivateKey(privateKey)) {
    throw new UserError('PGREPL_TLS_KEY is not the key of PGREPL_TLS_CERT: give the private key that belongs to this node\'s certificate');
  }
  if (ca !== undefined) certificate('PGREPL_TLS_CA', ca, 'a CA certificate');
  return { source: 'files', cert, key: new Secret(key), ca };
}
