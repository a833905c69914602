/**
 * This node's TLS files in PGDATA (layout.ts TLS_DIR), written on every start as the user postgres
 * runs as: the given certificate, key and CA, copied (postgres refuses a key file that others may
 * read, which a mounted secret often is), or with PGREPL_TLS=self-signed a certificate made once
 * for this node. Node's crypto cannot make an X.509 certificate, so that takes the openssl command
 * (the official Debian-based images have it: postgresql-common needs ssl-cert, which needs openssl).
 */
import { execFile } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { chmod, mkdir, readFile, rename, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type { Config } from '../config/env.js';
import { UserError } from '../errors.js';
import { TLS_DIR } from '../layout.js';
import { log } from '../log.js';
import { TLS_FILES } from '../postgres/tls.js';
import { writeFileAtomic } from '../util/atomic-file.js';

/** Writes `content` unless the file already holds it. */
async function keep(path: string, content: string): Promise<void> {
  if ((await readFile(path, 'utf8').catch(() => undefined)) !== content) await writeFileAtomic(path, content, 0o600);
}

/** The subject a made certificate names this node by. */
const subjectOf = (node: string) => `CN=${node}`;

/** Whether the made certificate there is this node's (a copied PGDATA, or a renamed node, makes a new one). */
async function madeForThisNode(dir: string, node: string): Promise<boolean> {
  try {
    const [cert] = await Promise.all([readFile(join(dir, TLS_FILES.selfSignedCert), 'utf8'), readFile(join(dir, TLS_FILES.selfSignedKey))]);
    return new X509Certificate(cert).subject === subjectOf(node);
  } catch {
    return false;
  }
}

async function makeSelfSigned(dir: string, node: string): Promise<void> {
  const [certTmp, keyTmp] = [join(dir, `.${TLS_FILES.selfSignedCert}.tmp`), join(dir, `.${TLS_FILES.selfSignedKey}.tmp`)];
  try {
    await promisify(execFile)('openssl', [
      'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '3650',
      '-subj', `/${subjectOf(node)}`, '-keyout', keyTmp, '-out', certTmp,
    ], { env: { PATH: process.env.PATH ?? '/usr/bin:/bin' } });
  } catch (err) {
    await Promise.all([rm(certTmp, { force: true }), rm(keyTmp, { force: true })]);
    const e = err as NodeJS.ErrnoException & { stderr?: string };
    if (e.code === 'ENOENT') {
      throw new UserError('PGREPL_TLS=self-signed needs the openssl command to make this node\'s certificate, and there is none on PATH: install openssl (the official Debian-based postgres images have it), or give PGREPL_TLS_CERT and PGREPL_TLS_KEY instead');
    }
    throw new UserError(`PGREPL_TLS=self-signed: openssl could not make this node's certificate (${(e.stderr ?? e.message).trim().split('\n')[0]}); give PGREPL_TLS_CERT and PGREPL_TLS_KEY instead`);
  }
  await chmod(keyTmp, 0o600);
  // The key first: a certificate is only ever found next to its key.
  await rename(keyTmp, join(dir, TLS_FILES.selfSignedKey));
  await rename(certTmp, join(dir, TLS_FILES.selfSignedCert));
  log.info({ subject: subjectOf(node) }, `PGREPL_TLS=self-signed: made this node's certificate (${TLS_DIR}/${TLS_FILES.selfSignedCert} in PGDATA)`);
}

/** Writes what TLS needs into PGDATA; nothing without TLS (files of an earlier start stay, unused). */
export async function writeTlsFiles(cfg: Config): Promise<void> {
  const tls = cfg.tls;
  if (!tls) return;
  const dir = join(cfg.pgdata, TLS_DIR);
  await mkdir(dir, { recursive: true, mode: 0o700 });
  if (tls.source === 'self-signed') {
    if (!(await madeForThisNode(dir, cfg.nodeName))) await makeSelfSigned(dir, cfg.nodeName);
    return;
  }
  await keep(join(dir, TLS_FILES.cert), tls.cert ?? '');
  await keep(join(dir, TLS_FILES.key), tls.key?.reveal() ?? '');
  if (tls.ca !== undefined) await keep(join(dir, TLS_FILES.ca), tls.ca);
}
