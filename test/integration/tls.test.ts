/**
 * TLS for replication and rewind (issue 13, point 8), on real servers through the bundle. With
 * PGREPL_TLS=self-signed every node makes its own certificate and standbys insist on encryption
 * (sslmode=require); with PGREPL_TLS_CERT/KEY/CA they verify their upstream (verify-full). Every
 * walsender is encrypted (pg_stat_ssl), a standby and a cascade alike, and so is the rewind of a
 * former primary; a standby without TLS, one whose CA does not verify its upstream, and one with
 * TLS facing an upstream without it are each refused with one line that says what to do.
 */
import { execFileSync } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TLS_DIR } from '../../src/layout.js';
import { isInRecovery, standbyOf, waitFor, waitForRows } from '../support/cluster.js';
import { query, removeScratch, scratchDir, TestNode, type RunResult, exitWithin } from '../support/node.js';

/** Ports 6501-6529 belong to this file. */
const P = 6501, S = 6502, C = 6503, NO_TLS = 6504;
const P2 = 6511, S2 = 6512, WRONG_CA = 6513;
const PLAIN = 6521, TLS_STANDBY = 6522;
const SELF_SIGNED = { PGREPL_TLS: 'self-signed' };

let dir: string;
const pgdata = (port: number) => join(dir, `n${port}`);
const running = new Set<TestNode>();

function node(port: number, env: Record<string, string | undefined> = {}): TestNode {
  const n = new TestNode({ pgdata: pgdata(port), port, env });
  running.add(n);
  void n.exited.then(() => running.delete(n));
  return n;
}

async function started(port: number, env: Record<string, string | undefined> = {}): Promise<TestNode> {
  const n = node(port, env);
  await n.ready();
  return n;
}


/** The one fatal line of a refused start. */
function fatalLine(res: RunResult): string {
  const fatal = res.stderr.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as { level: number; msg: string }).filter((l) => l.level === 60);
  expect(fatal).toHaveLength(1);
  return fatal[0]!.msg;
}

/** Every walsender of the server on `port`, with whether pg_stat_ssl shows it encrypted. */
const walsenders = (port: number) =>
  query<{ name: string; ssl: boolean }>(port, `SELECT a.application_name AS name, s.ssl FROM pg_stat_activity a JOIN pg_stat_ssl s USING (pid)
    WHERE a.backend_type = 'walsender' ORDER BY 1`);

/** Waits until `port` has exactly these walsenders (by application name), streaming, and returns them. */
async function walsendersTo(port: number, names: string[]): Promise<{ name: string; ssl: boolean }[]> {
  await waitFor(`walsenders ${names.join(', ')} streaming on ${port}`, async () => {
    const r = await query<{ name: string }>(port, "SELECT application_name AS name FROM pg_stat_replication WHERE state = 'streaming' ORDER BY 1");
    return JSON.stringify(r.map((x) => x.name)) === JSON.stringify(names);
  });
  return walsenders(port);
}

const conf = (port: number) => readFileSync(join(pgdata(port), 'pgrepl.conf'), 'utf8');
const certSubject = (port: number) => new X509Certificate(readFileSync(join(pgdata(port), TLS_DIR, 'self-signed.crt'))).subject;

/** A CA, and node certificates it signs for 127.0.0.1, made with openssl into `dir`. */
function makeCa(name: string): { crt: string; key: string } {
  const [crt, key] = [join(dir, `${name}.crt`), join(dir, `${name}.key`)];
  execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '2',
    '-subj', `/CN=${name}`, '-keyout', key, '-out', crt], { stdio: 'ignore' });
  return { crt, key };
}
function makeNodeCert(ca: { crt: string; key: string }, name: string): { crt: string; key: string } {
  const [crt, key, csr, ext] = ['crt', 'key', 'csr', 'ext'].map((e) => join(dir, `${name}.${e}`)) as [string, string, string, string];
  writeFileSync(ext, 'subjectAltName = IP:127.0.0.1, DNS:localhost\n');
  execFileSync('openssl', ['req', '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-subj', `/CN=${name}`,
    '-keyout', key, '-out', csr], { stdio: 'ignore' });
  execFileSync('openssl', ['x509', '-req', '-in', csr, '-CA', ca.crt, '-CAkey', ca.key, '-CAcreateserial', '-days', '2',
    '-extfile', ext, '-out', crt], { stdio: 'ignore' });
  return { crt, key };
}

beforeAll(() => {
  dir = scratchDir();
});
afterAll(async () => {
  for (const n of [...running]) await n.stop().catch(() => undefined);
  removeScratch(dir);
});

describe('PGREPL_TLS=self-signed: a primary, a standby and a cascade', () => {
  let p: TestNode, s: TestNode, c: TestNode;

  it('every walsender is encrypted (pg_stat_ssl), the standby\'s and the cascade\'s; each node has a certificate of its own', async () => {
    p = await started(P, SELF_SIGNED);
    await query(P, 'CREATE TABLE t (v text)');
    await query(P, "INSERT INTO t VALUES ('first')");
    s = await started(S, standbyOf(P, SELF_SIGNED));
    c = await started(C, standbyOf(S, SELF_SIGNED));
    await waitForRows(C, 't', 1);
    expect(await walsendersTo(P, [`node_${S}`])).toEqual([{ name: `node_${S}`, ssl: true }]);
    expect(await walsendersTo(S, [`node_${C}`])).toEqual([{ name: `node_${C}`, ssl: true }]);
    expect(conf(S)).toMatch(/^primary_conninfo = '.*sslmode=''require''/m);
    expect(conf(P)).toMatch(/^ssl = on$/m);
    // The clone did not bring the primary's key along: the standby made its own.
    expect([certSubject(P), certSubject(S), certSubject(C)]).toEqual([`CN=node_${P}`, `CN=node_${S}`, `CN=node_${C}`]);
    const rules = await query<{ type: string }>(P, "SELECT DISTINCT type FROM pg_hba_file_rules WHERE 'pgrepl' = ANY(user_name) ORDER BY 1");
    expect(rules.map((r) => r.type)).toEqual(['hostnossl', 'hostssl']);
  });

  it('a standby without TLS is refused with one line that names PGREPL_TLS_*; it creates nothing', async () => {
    const res = await exitWithin(node(NO_TLS, standbyOf(P)));
    expect(res.code).toBe(1);
    expect(fatalLine(res)).toMatch(
      new RegExp(`^the upstream 127\\.0\\.0\\.1:${P} lets the role pgrepl in only over TLS \\(28000: .*no encryption\\): turn TLS on for this node too, as on the upstream: PGREPL_TLS=self-signed, or PGREPL_TLS_CERT and PGREPL_TLS_KEY .*; nothing was changed$`),
    );
    expect(existsSync(pgdata(NO_TLS))).toBe(false);
  });

  it('a former primary rejoins over TLS: rewound by pg_rewind, then streams encrypted', async () => {
    await c.stop();
    await s.stop();
    await query(P, "INSERT INTO t VALUES ('only on the old primary')");
    await p.stop();
    s = await started(S, SELF_SIGNED); // the standby's cluster started as PRIMARY: promoted
    expect(await isInRecovery(S)).toBe(false);
    await query(S, "INSERT INTO t VALUES ('on the new primary')");
    p = await started(P, standbyOf(S, SELF_SIGNED));
    expect(p.stderr).toMatch(/pg_rewind: servers diverged at WAL location/);
    expect(p.stderr).toMatch(/pg_rewind finished/);
    expect(p.stderr).not.toMatch(/pg_basebackup|moved the old data aside/);
    expect(await walsendersTo(S, [`node_${P}`])).toEqual([{ name: `node_${P}`, ssl: true }]);
    await waitForRows(P, 't', 2);
    expect((await query<{ v: string }>(P, 'SELECT v FROM t ORDER BY v')).map((r) => r.v)).toEqual(['first', 'on the new primary']);
    await p.stop();
    await s.stop();
  });
});

describe('PGREPL_TLS_CERT/KEY/CA: standbys verify their upstream (verify-full)', () => {
  let ca: { crt: string; key: string };

  beforeAll(() => {
    ca = makeCa('ca');
  });

  it('a standby given the CA (as _FILE secrets) streams, verified and encrypted', async () => {
    const pc = makeNodeCert(ca, 'p2');
    const sc = makeNodeCert(ca, 's2');
    await started(P2, { PGREPL_TLS_CERT: pc.crt, PGREPL_TLS_KEY: pc.key, PGREPL_TLS_CA: ca.crt });
    await query(P2, 'CREATE TABLE t (v text)');
    await query(P2, "INSERT INTO t VALUES ('verified')");
    await started(S2, standbyOf(P2, { PGREPL_TLS_CERT_FILE: sc.crt, PGREPL_TLS_KEY_FILE: sc.key, PGREPL_TLS_CA_FILE: ca.crt }));
    await waitForRows(S2, 't', 1);
    expect(await walsendersTo(P2, [`node_${S2}`])).toEqual([{ name: `node_${S2}`, ssl: true }]);
    expect(conf(S2)).toMatch(/^primary_conninfo = '.*sslmode=''verify-full'' sslrootcert=''[^']*\/pgrepl-tls\/ca\.crt''/m);
    // postgres reads a copy of the key that only it may read.
    expect((await query<{ setting: string }>(S2, "SELECT setting FROM pg_settings WHERE name = 'ssl_key_file'"))[0]!.setting).toBe(`${TLS_DIR}/server.key`);
  });

  it('a standby with the wrong CA is refused with one line that names PGREPL_TLS_CA; it creates nothing', async () => {
    const other = makeCa('other-ca');
    const wc = makeNodeCert(other, 'wrong');
    const res = await exitWithin(node(WRONG_CA, standbyOf(P2, { PGREPL_TLS_CERT: wc.crt, PGREPL_TLS_KEY: wc.key, PGREPL_TLS_CA: other.crt })));
    expect(res.code).toBe(1);
    expect(fatalLine(res)).toMatch(
      new RegExp(`^the upstream 127\\.0\\.0\\.1:${P2} has a certificate that PGREPL_TLS_CA does not verify \\(.*\\): give the CA that signed the upstream's certificate, .*; nothing was changed$`),
    );
    expect(existsSync(pgdata(WRONG_CA))).toBe(false);
  });
});

describe('a standby with TLS, an upstream without', () => {
  it('is refused with one line: the upstream does not offer TLS', async () => {
    const plain = await started(PLAIN);
    const res = await exitWithin(node(TLS_STANDBY, standbyOf(PLAIN, SELF_SIGNED)));
    expect(res.code).toBe(1);
    expect(fatalLine(res)).toMatch(
      new RegExp(`^the upstream 127\\.0\\.0\\.1:${PLAIN} does not offer TLS \\(.*\\), and with PGREPL_TLS_\\* this node replicates only over TLS: .*; nothing was changed$`),
    );
    expect(existsSync(pgdata(TLS_STANDBY))).toBe(false);
    await plain.stop();
  });
});
