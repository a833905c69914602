import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { checkNodeStart, GESTALT_DATABASES, loadConfig, REPLICATION_OFF } from '../../src/config/env.js';
import { HA_TIMING_DEFAULTS } from '../../src/ha/timing.js';
import { replicationPassword } from '../../src/config/token.js';
import { sanitiseNodeName } from '../../src/config/validators.js';
import { UserError } from '../../src/errors.js';
import { configErrorOf } from '../support/config.js';

const load = (env: Record<string, string>) => loadConfig(env, 'My-Host.example');
/** A token, for the configurations that need one (a standby, peers, synchronous standbys). */
const TOKEN = { PGREPL_TOKEN: 'a-test-token' };

const errorOf = (env: Record<string, string>) => configErrorOf(env, 'My-Host.example');

describe('defaults', () => {
  const cfg = load({});
  it('is a primary with the official image defaults', () => {
    expect(cfg.role).toBe('PRIMARY');
    expect(cfg.pgdata).toBe('/var/lib/postgresql/data');
    expect(cfg.port).toBe(5432);
    expect(cfg.postgresUser).toBe('postgres');
    expect(cfg.postgresDb).toBe('postgres');
    expect(cfg.gestaltDatabases).toEqual(GESTALT_DATABASES);
    expect(cfg.replicationCidrs).toEqual(['all']);
    expect(cfg.slots).toBe(true);
    expect(cfg.reclone).toBe('never');
    expect(cfg.logFormat).toBe('json');
    expect(cfg.initdbDir).toBe('/docker-entrypoint-initdb.d');
    expect(cfg.healthStreamGraceSeconds).toBe(60);
  });
  it('has no token: replication is off, one warning says so, and there is no replication password to reveal', () => {
    expect(cfg.token).toBeUndefined();
    expect(cfg.replicationOn).toBe(false);
    expect(() => cfg.replicationPassword.reveal()).toThrow(/PGREPL_TOKEN is not set/);
    expect(String(cfg.replicationPassword)).toBe('[secret]');
    expect(cfg.warnings).toEqual([REPLICATION_OFF]);
    expect(REPLICATION_OFF).toMatch(/^PGREPL_TOKEN is not set: replication is off\. .*start it again with PGREPL_TOKEN/);
  });
  it('names the node after the sanitised hostname', () => {
    expect(cfg.nodeName).toBe('my_host_example');
  });
});

describe('inputs', () => {
  it('reads PGREPL_ROLE case-insensitively', () => {
    expect(load({ ...TOKEN, PGREPL_ROLE: 'standby', PGREPL_MASTER_IP: '10.0.0.1' }).role).toBe('STANDBY');
    expect(load({ PGREPL_ROLE: 'Primary' }).role).toBe('PRIMARY');
    expect(load({ PGREPL_ROLE: '' }).role).toBe('PRIMARY');
  });
  it('takes the upstream from PGREPL_MASTER_* before the --link variables', () => {
    const cfg = load({
      ...TOKEN, PGREPL_ROLE: 'STANDBY', PGREPL_MASTER_IP: 'pg1', PGREPL_MASTER_PORT: '6432',
      POSTGRES_PORT_5432_TCP_ADDR: '172.17.0.2', POSTGRES_PORT_5432_TCP_PORT: '5432',
    });
    expect(cfg.upstream).toEqual({ host: 'pg1', port: 6432, source: 'PGREPL_MASTER_IP' });
    const linked = load({ ...TOKEN, PGREPL_ROLE: 'STANDBY', POSTGRES_PORT_5432_TCP_ADDR: '172.17.0.2', POSTGRES_PORT_5432_TCP_PORT: '5433' });
    expect(linked.upstream).toEqual({ host: '172.17.0.2', port: 5433, source: 'POSTGRES_PORT_5432_TCP_ADDR' });
  });
  it('derives the password from PGREPL_TOKEN', () => {
    const cfg = load({ PGREPL_TOKEN: 's3cret' });
    expect(cfg.replicationPassword.reveal()).toBe(replicationPassword('s3cret'));
    expect(cfg.replicationOn).toBe(true);
    expect(cfg.warnings).toEqual([]);
    // The original image's default token, set on purpose, is a token like any other.
    expect(load({ PGREPL_TOKEN: 'abc123' }).replicationPassword.reveal()).toBe(replicationPassword('abc123'));
  });
  it('reads _FILE variants without their trailing newline', () => {
    const dir = mkdtempSync(join(tmpdir(), 'cfg-'));
    writeFileSync(join(dir, 'pw'), 'from-file\n');
    writeFileSync(join(dir, 'tok'), 'token-from-file\n\n');
    const cfg = load({ POSTGRES_PASSWORD_FILE: join(dir, 'pw'), PGREPL_TOKEN_FILE: join(dir, 'tok') });
    expect(cfg.postgresPassword?.reveal()).toBe('from-file');
    expect(cfg.replicationPassword.reveal()).toBe(replicationPassword('token-from-file'));
  });
  it('treats an empty PGREPL_GESTALT_DATABASES as none and parses a list', () => {
    expect(load({ PGREPL_GESTALT_DATABASES: '' }).gestaltDatabases).toEqual([]);
    expect(load({ PGREPL_GESTALT_DATABASES: 'a, b,a' }).gestaltDatabases).toEqual(['a', 'b']);
  });
  it('splits POSTGRES_INITDB_ARGS on whitespace', () => {
    expect(load({ POSTGRES_INITDB_ARGS: '  --data-checksums  -E UTF8 ' }).initdbArgs).toEqual(['--data-checksums', '-E', 'UTF8']);
  });

  it("splits POSTGRES_INITDB_ARGS as the official entrypoint's eval does: quotes keep a word whole", () => {
    expect(load({ POSTGRES_INITDB_ARGS: `--waldir='/var/lib/my wal' --locale="C"` }).initdbArgs).toEqual(['--waldir=/var/lib/my wal', '--locale=C']);
  });
  it('normalises CIDRs and PGDATA', () => {
    expect(load({ PGREPL_REPLICATION_CIDR: '10.0.0.0/8, 192.168.1.5' }).replicationCidrs).toEqual(['10.0.0.0/8', '192.168.1.5/32']);
    expect(load({ PGDATA: '/mnt/mesos//sandbox/pgdata/' }).pgdata).toBe('/mnt/mesos/sandbox/pgdata');
  });
  it('parses peers with default ports and IPv6', () => {
    expect(load({ ...TOKEN, PGREPL_PEERS: 'pg1,pg2:6543,[::1]:7000' }).peers).toEqual([
      { host: 'pg1', port: 5432 }, { host: 'pg2', port: 6543 }, { host: '::1', port: 7000 },
    ]);
  });
  it('reads synchronous replication settings, and warns when commits would not wait anyway', () => {
    const cfg = load({});
    expect([cfg.syncStandbys, cfg.syncMethod, cfg.syncCommit]).toEqual([0, 'any', 'on']);
    const sync = load({ ...TOKEN, PGREPL_SYNC_STANDBYS: '2', PGREPL_SYNC_METHOD: 'FIRST', PGREPL_SYNC_COMMIT: 'Remote_Apply' });
    expect([sync.syncStandbys, sync.syncMethod, sync.syncCommit]).toEqual([2, 'first', 'remote_apply']);
    expect(sync.warnings.join(' ')).not.toMatch(/PGREPL_SYNC/);
    expect(load({ ...TOKEN, PGREPL_SYNC_STANDBYS: '1', PGREPL_SYNC_COMMIT: 'local' }).warnings.join(' ')).toMatch(
      /PGREPL_SYNC_STANDBYS=1 with PGREPL_SYNC_COMMIT=local: commits do not wait for any standby/,
    );
  });
  it('accepts an archive directory beside PGDATA, not inside it', () => {
    expect(load({ PGDATA: '/data', PGREPL_ARCHIVE_DIR: '/data2/' }).archiveDir).toBe('/data2');
    const cfg = load({ ...TOKEN, PGREPL_ARCHIVE_DIR: '/srv/archive', PGREPL_SYNC_STANDBYS: '1', PGREPL_PEERS: 'pg1' });
    expect(cfg.warnings.join(' ')).not.toMatch(/not acted on/);
  });
  it('sanitises host names into slot names', () => {
    expect(sanitiseNodeName('0b0fb5dec403')).toBe('0b0fb5dec403');
    expect(sanitiseNodeName('PG-Node.1')).toBe('pg_node_1');
    expect(sanitiseNodeName('x'.repeat(80))).toHaveLength(63);
  });
  it('never shows a secret through JSON or string conversion', () => {
    const cfg = load({ PGREPL_TOKEN: 'tok-VISIBLE', POSTGRES_PASSWORD: 'pw-VISIBLE' });
    const dumped = JSON.stringify(cfg) + String(cfg.token) + `${cfg.postgresPassword}`;
    expect(dumped).not.toContain('VISIBLE');
    expect(dumped).not.toContain(replicationPassword('tok-VISIBLE'));
  });
});

/** HA mode's files: TLS certificates and a password file (contents never read by the configuration, only checked). */
const HA_FILES = mkdtempSync(join(tmpdir(), 'cfg-ha-'));
const CA = join(HA_FILES, 'ca.crt');
const CERT = join(HA_FILES, 'client.crt');
const KEY = join(HA_FILES, 'client.key');
const ETCD_PASSWORD = 'etcd-pw-VISIBLE';
const ETCD_PASSWORD_FILE = join(HA_FILES, 'etcd-password');
for (const f of [CA, CERT, KEY]) writeFileSync(f, '-----BEGIN CERTIFICATE-----\n');
writeFileSync(ETCD_PASSWORD_FILE, `${ETCD_PASSWORD}\n`);
mkdirSync(join(HA_FILES, 'dir'));

const HA = { PGREPL_ETCD_ENDPOINTS: 'http://etcd1:2379' };
const HA_TLS = { PGREPL_ETCD_ENDPOINTS: 'https://etcd1:2379' };

describe('HA mode', () => {
  it('is off without PGREPL_ETCD_ENDPOINTS, or with it empty', () => {
    expect(load({}).ha).toBeUndefined();
    expect(load({ PGREPL_ETCD_ENDPOINTS: '' }).ha).toBeUndefined();
  });
  it('has safe defaults: cluster pgrepl, this host at PGPORT, the API on 8008, the timing of ha/timing.ts, 1 MiB', () => {
    expect(load(HA).ha).toEqual({
      etcd: { endpoints: ['http://etcd1:2379'] },
      cluster: 'pgrepl',
      keyPrefix: '/pgrepl/pgrepl/',
      connectAddress: { host: 'My-Host.example', port: 5432 },
      apiListen: { host: '0.0.0.0', port: 8008 },
      apiConnectAddress: { host: 'My-Host.example', port: 8008 },
      timing: HA_TIMING_DEFAULTS,
      maxLagOnFailover: 1048576,
      nofailover: false,
      roleHint: undefined,
    });
    const ha = load({ ...HA, PGPORT: '6543', PGREPL_API_LISTEN: '127.0.0.1:9008' }).ha!;
    expect([ha.connectAddress, ha.apiListen, ha.apiConnectAddress]).toEqual([
      { host: 'My-Host.example', port: 6543 }, { host: '127.0.0.1', port: 9008 }, { host: '127.0.0.1', port: 9008 },
    ]);
  });
  it('reaches the API where it listens, when that is one address; else at the connect address\'s host; else at this host', () => {
    const api = (env: Record<string, string>) => load({ ...HA, ...env }).ha!.apiConnectAddress;
    expect(api({ PGREPL_CONNECT_ADDRESS: '127.0.0.1:6011', PGREPL_API_LISTEN: '127.0.0.1:6111' })).toEqual({ host: '127.0.0.1', port: 6111 });
    expect(api({ PGREPL_CONNECT_ADDRESS: 'pg1.example:5432', PGREPL_API_LISTEN: '0.0.0.0:8008' })).toEqual({ host: 'pg1.example', port: 8008 });
    expect(api({ PGREPL_CONNECT_ADDRESS: 'pg1.example:5432', PGREPL_API_LISTEN: '[::]:8008' })).toEqual({ host: 'pg1.example', port: 8008 });
    expect(api({})).toEqual({ host: 'My-Host.example', port: 8008 });
  });
  it('normalises the endpoints: lower-case scheme, no trailing slash, IPv6 in brackets, no duplicates', () => {
    expect(load({ PGREPL_ETCD_ENDPOINTS: ' HTTPS://etcd1:2379/, https://[::1]:2379,https://etcd1:2379' }).ha!.etcd.endpoints).toEqual([
      'https://etcd1:2379', 'https://[::1]:2379',
    ]);
  });
  it('reads every HA variable', () => {
    const ha = load({
      ...HA_TLS, PGREPL_ETCD_CACERT: CA, PGREPL_ETCD_CERT: CERT, PGREPL_ETCD_KEY: `${KEY}/`,
      PGREPL_ETCD_USER: 'pgrepl', PGREPL_ETCD_PASSWORD: ETCD_PASSWORD, PGREPL_CLUSTER: 'orders-eu.1',
      PGREPL_CONNECT_ADDRESS: '10.0.0.5:5433', PGREPL_API_LISTEN: '[::]:8010', PGREPL_API_CONNECT_ADDRESS: 'pg1.example:18010',
      PGREPL_TTL: '6', PGREPL_LOOP_WAIT: '1', PGREPL_RETRY_TIMEOUT: '2', PGREPL_MAX_LAG_ON_FAILOVER: '16MB', PGREPL_NOFAILOVER: 'on',
    }).ha!;
    expect(ha.etcd.caCert).toBe(CA);
    expect(ha.etcd.clientCert).toEqual({ cert: CERT, key: KEY });
    expect(ha.etcd.auth?.user).toBe('pgrepl');
    expect(ha.etcd.auth?.password.reveal()).toBe(ETCD_PASSWORD);
    expect([ha.cluster, ha.keyPrefix]).toEqual(['orders-eu.1', '/pgrepl/orders-eu.1/']);
    expect([ha.connectAddress, ha.apiListen, ha.apiConnectAddress]).toEqual([
      { host: '10.0.0.5', port: 5433 }, { host: '::', port: 8010 }, { host: 'pg1.example', port: 18010 },
    ]);
    expect(ha.timing).toEqual({ ttl: 6, loopWait: 1, retryTimeout: 2 });
    expect([ha.maxLagOnFailover, ha.nofailover]).toEqual([16 * 1024 * 1024, true]);
  });
  it('reads sizes as bytes, units as powers of 1024', () => {
    const lag = (v: string) => load({ ...HA, PGREPL_MAX_LAG_ON_FAILOVER: v }).ha!.maxLagOnFailover;
    expect([lag('0'), lag('1048576'), lag('512kB'), lag('1 mb'), lag('2GB'), lag('1TB')]).toEqual([0, 1048576, 524288, 1048576, 2 * 1024 ** 3, 1024 ** 4]);
  });
  it('reads the etcd password from PGREPL_ETCD_PASSWORD_FILE', () => {
    const ha = load({ ...HA, PGREPL_ETCD_USER: 'root', PGREPL_ETCD_PASSWORD_FILE: ETCD_PASSWORD_FILE }).ha!;
    expect(ha.etcd.auth?.password.reveal()).toBe(ETCD_PASSWORD);
  });
  it('takes PGREPL_ROLE as a bootstrap hint only: STANDBY needs no upstream', () => {
    const cfg = load({ ...HA, PGREPL_ROLE: 'standby' });
    expect([cfg.role, cfg.ha!.roleHint, cfg.upstream]).toEqual(['STANDBY', 'STANDBY', undefined]);
    expect(load({ ...HA, PGREPL_ROLE: 'PRIMARY' }).ha!.roleHint).toBe('PRIMARY');
  });
  it('ignores PGREPL_MASTER_IP, PGREPL_MASTER_PORT and PGREPL_PEERS with one warning each', () => {
    const cfg = load({ ...HA, PGREPL_MASTER_IP: 'pg1', PGREPL_MASTER_PORT: '5433', PGREPL_PEERS: 'pg1,pg2', POSTGRES_PORT_5432_TCP_ADDR: '172.17.0.2' });
    expect([cfg.upstream, cfg.peers]).toEqual([undefined, []]);
    expect(cfg.warnings.filter((w) => / is ignored in HA mode /.test(w))).toEqual([
      'PGREPL_MASTER_IP is ignored in HA mode (PGREPL_ETCD_ENDPOINTS): etcd decides which node leads, and every standby follows the leader; unset PGREPL_MASTER_IP',
      'PGREPL_MASTER_PORT is ignored in HA mode (PGREPL_ETCD_ENDPOINTS): etcd decides which node leads, and every standby follows the leader; unset PGREPL_MASTER_PORT',
      "PGREPL_PEERS is ignored in HA mode (PGREPL_ETCD_ENDPOINTS): the leader key in etcd decides which node may be writable, instead of asking peers; unset PGREPL_PEERS",
    ]);
    expect(load(HA).warnings.join(' ')).not.toMatch(/ignored/);
  });
  it('needs no host name when both connect addresses are given', () => {
    const env = { ...HA, PGREPL_CONNECT_ADDRESS: '10.0.0.5:5432', PGREPL_API_CONNECT_ADDRESS: '10.0.0.5:8008' };
    expect(loadConfig(env, 'bad host!').ha!.connectAddress).toEqual({ host: '10.0.0.5', port: 5432 });
    expect(() => loadConfig(HA, 'bad host!')).toThrow(
      'this machine\'s host name "bad host!" cannot be used to reach this node: set PGREPL_CONNECT_ADDRESS and PGREPL_API_CONNECT_ADDRESS (e.g. PGREPL_CONNECT_ADDRESS=10.0.0.5:5432 PGREPL_API_CONNECT_ADDRESS=10.0.0.5:8008)',
    );
  });
  it('never shows the etcd password: not through JSON, not in any message', () => {
    const cfg = load({ ...HA, PGREPL_ETCD_USER: 'root', PGREPL_ETCD_PASSWORD: ETCD_PASSWORD });
    expect(JSON.stringify(cfg) + String(cfg.ha!.etcd.auth!.password)).not.toContain('VISIBLE');
    for (const [env] of BAD.filter(([e]) => Object.values(e).includes(ETCD_PASSWORD) || Object.values(e).some((v) => v.includes('@')))) {
      expect(errorOf(env)).not.toContain('VISIBLE');
    }
  });
});

/** Variables that mean something only in HA mode: each is an error without PGREPL_ETCD_ENDPOINTS. */
const HA_ONLY: Record<string, string> = {
  PGREPL_ETCD_CACERT: CA, PGREPL_ETCD_CERT: CERT, PGREPL_ETCD_KEY: KEY, PGREPL_ETCD_USER: 'root',
  PGREPL_ETCD_PASSWORD: ETCD_PASSWORD, PGREPL_ETCD_PASSWORD_FILE: ETCD_PASSWORD_FILE, PGREPL_CLUSTER: 'orders',
  PGREPL_CONNECT_ADDRESS: '10.0.0.5:5432', PGREPL_API_LISTEN: '0.0.0.0:8008', PGREPL_API_CONNECT_ADDRESS: '10.0.0.5:8008',
  PGREPL_TTL: '10', PGREPL_LOOP_WAIT: '2', PGREPL_RETRY_TIMEOUT: '3', PGREPL_MAX_LAG_ON_FAILOVER: '1MB', PGREPL_NOFAILOVER: 'on',
};
const needsEndpoints = (name: string) =>
  `${name} is set but is an HA mode setting, and HA mode needs PGREPL_ETCD_ENDPOINTS: set PGREPL_ETCD_ENDPOINTS (e.g. PGREPL_ETCD_ENDPOINTS=http://etcd1:2379) or unset ${name}`;
const ENDPOINTS_EXAMPLE = '(e.g. PGREPL_ETCD_ENDPOINTS=http://etcd1:2379,http://etcd2:2379,http://etcd3:2379)';

/** Each bad input: the exact one-line message, naming the variable, the problem and an example. */
const BAD: [Record<string, string>, string][] = [
  ...Object.entries(HA_ONLY).map(([name, value]): [Record<string, string>, string] => [{ [name]: value }, needsEndpoints(name)]),
  [{ PGREPL_ETCD_ENDPOINTS: 'etcd1:2379' }, `PGREPL_ETCD_ENDPOINTS="etcd1:2379" is not valid: has "etcd1:2379", which is not an http:// or https:// URL with a host and a port ${ENDPOINTS_EXAMPLE}`],
  [{ PGREPL_ETCD_ENDPOINTS: 'http://etcd1' }, `PGREPL_ETCD_ENDPOINTS="http://etcd1" is not valid: has "http://etcd1", which is not an http:// or https:// URL with a host and a port ${ENDPOINTS_EXAMPLE}`],
  [{ PGREPL_ETCD_ENDPOINTS: 'ftp://etcd1:2379' }, `PGREPL_ETCD_ENDPOINTS="ftp://etcd1:2379" is not valid: has "ftp://etcd1:2379", which is not an http:// or https:// URL with a host and a port ${ENDPOINTS_EXAMPLE}`],
  [{ PGREPL_ETCD_ENDPOINTS: 'http://etcd1:2379/v3' }, `PGREPL_ETCD_ENDPOINTS="http://etcd1:2379/v3" is not valid: has "http://etcd1:2379/v3", which is not an http:// or https:// URL with a host and a port ${ENDPOINTS_EXAMPLE}`],
  [{ PGREPL_ETCD_ENDPOINTS: 'http://etcd1:2379,' }, `PGREPL_ETCD_ENDPOINTS="http://etcd1:2379," is not valid: has an empty URL in the list ${ENDPOINTS_EXAMPLE}`],
  [{ PGREPL_ETCD_ENDPOINTS: 'http://etcd1:99999' }, `PGREPL_ETCD_ENDPOINTS="http://etcd1:99999" is not valid: has port "99999" out of range 1-65535 ${ENDPOINTS_EXAMPLE}`],
  [{ PGREPL_ETCD_ENDPOINTS: 'http://etcd_1!:2379' }, `PGREPL_ETCD_ENDPOINTS="http://etcd_1!:2379" is not valid: must be a host name or IP address ${ENDPOINTS_EXAMPLE}`],
  [{ PGREPL_ETCD_ENDPOINTS: 'http://etcd1:2379,https://etcd2:2379' }, `PGREPL_ETCD_ENDPOINTS="http://etcd1:2379,https://etcd2:2379" is not valid: mixes http:// and https:// URLs: use one scheme for every member ${ENDPOINTS_EXAMPLE}`],
  [{ PGREPL_ETCD_ENDPOINTS: `http://root:${ETCD_PASSWORD}@etcd1:2379` }, `PGREPL_ETCD_ENDPOINTS is not valid: has user:password@ in a URL: give them in PGREPL_ETCD_USER and PGREPL_ETCD_PASSWORD ${ENDPOINTS_EXAMPLE}`],
  [{ PGREPL_ETCD_ENDPOINTS: `root:${ETCD_PASSWORD}@etcd1:2379` }, `PGREPL_ETCD_ENDPOINTS is not valid: has user:password@ in a URL: give them in PGREPL_ETCD_USER and PGREPL_ETCD_PASSWORD ${ENDPOINTS_EXAMPLE}`],
  [{ ...HA_TLS, PGREPL_ETCD_CACERT: 'ca.crt' }, 'PGREPL_ETCD_CACERT="ca.crt" is not valid: must be an absolute path (e.g. PGREPL_ETCD_CACERT=/etc/pgrepl/etcd/ca.crt)'],
  [{ ...HA_TLS, PGREPL_ETCD_CACERT: '/nonexistent/ca.crt' }, 'PGREPL_ETCD_CACERT="/nonexistent/ca.crt" is not valid: cannot be read (ENOENT); mount the file there (e.g. PGREPL_ETCD_CACERT=/etc/pgrepl/etcd/ca.crt)'],
  [{ ...HA_TLS, PGREPL_ETCD_CERT: join(HA_FILES, 'dir'), PGREPL_ETCD_KEY: KEY }, `PGREPL_ETCD_CERT="${join(HA_FILES, 'dir')}" is not valid: is not a regular file; mount the file there (e.g. PGREPL_ETCD_CERT=/etc/pgrepl/etcd/client.crt)`],
  [{ ...HA_TLS, PGREPL_ETCD_KEY: '/nonexistent/client.key', PGREPL_ETCD_CERT: CERT }, 'PGREPL_ETCD_KEY="/nonexistent/client.key" is not valid: cannot be read (ENOENT); mount the file there (e.g. PGREPL_ETCD_KEY=/etc/pgrepl/etcd/client.key)'],
  [{ ...HA_TLS, PGREPL_ETCD_CERT: CERT }, 'PGREPL_ETCD_CERT is set without PGREPL_ETCD_KEY: a client certificate and its key go together; set PGREPL_ETCD_KEY too, or unset PGREPL_ETCD_CERT'],
  [{ ...HA_TLS, PGREPL_ETCD_KEY: KEY }, 'PGREPL_ETCD_KEY is set without PGREPL_ETCD_CERT: a client certificate and its key go together; set PGREPL_ETCD_CERT too, or unset PGREPL_ETCD_KEY'],
  [{ ...HA, PGREPL_ETCD_CACERT: CA }, 'PGREPL_ETCD_CACERT is set but PGREPL_ETCD_ENDPOINTS are http:// URLs: TLS files need https:// endpoints (e.g. PGREPL_ETCD_ENDPOINTS=https://etcd1:2379), or unset PGREPL_ETCD_CACERT'],
  [{ ...HA, PGREPL_ETCD_USER: 'root' }, 'PGREPL_ETCD_USER is set without PGREPL_ETCD_PASSWORD: etcd authentication needs a user and a password; set PGREPL_ETCD_PASSWORD (or PGREPL_ETCD_PASSWORD_FILE) too, or unset PGREPL_ETCD_USER'],
  [{ ...HA, PGREPL_ETCD_PASSWORD: ETCD_PASSWORD }, 'PGREPL_ETCD_PASSWORD is set without PGREPL_ETCD_USER: etcd authentication needs a user and a password; set PGREPL_ETCD_USER too, or unset PGREPL_ETCD_PASSWORD'],
  [{ ...HA, PGREPL_ETCD_USER: 'root', PGREPL_ETCD_PASSWORD: ETCD_PASSWORD, PGREPL_ETCD_PASSWORD_FILE: ETCD_PASSWORD_FILE }, 'PGREPL_ETCD_PASSWORD and PGREPL_ETCD_PASSWORD_FILE are both set: keep only one of them'],
  [{ ...HA, PGREPL_ETCD_USER: 'root', PGREPL_ETCD_PASSWORD_FILE: '/run/secrets/etcd' }, 'PGREPL_ETCD_PASSWORD_FILE=/run/secrets/etcd cannot be read (ENOENT): mount the file there or unset PGREPL_ETCD_PASSWORD_FILE'],
  [{ ...HA, PGREPL_ETCD_USER: 'ro\not', PGREPL_ETCD_PASSWORD: ETCD_PASSWORD }, 'PGREPL_ETCD_USER="ro\\not" is not valid: must not contain control characters (e.g. PGREPL_ETCD_USER=pgrepl)'],
  [{ ...HA, PGREPL_CLUSTER: 'a/b' }, 'PGREPL_CLUSTER="a/b" is not valid: must be 1-63 letters, digits, dots, dashes or underscores, starting with a letter or digit (e.g. PGREPL_CLUSTER=orders)'],
  [{ ...HA, PGREPL_CLUSTER: '..' }, 'PGREPL_CLUSTER=".." is not valid: must be 1-63 letters, digits, dots, dashes or underscores, starting with a letter or digit (e.g. PGREPL_CLUSTER=orders)'],
  [{ ...HA, PGREPL_CONNECT_ADDRESS: 'pg1' }, 'PGREPL_CONNECT_ADDRESS="pg1" is not valid: must be host:port ([v6]:port for IPv6) (e.g. PGREPL_CONNECT_ADDRESS=10.0.0.5:5432)'],
  [{ ...HA, PGREPL_CONNECT_ADDRESS: 'pg1:0' }, 'PGREPL_CONNECT_ADDRESS="pg1:0" is not valid: has port "0" out of range 1-65535 (e.g. PGREPL_CONNECT_ADDRESS=10.0.0.5:5432)'],
  [{ ...HA, PGREPL_API_LISTEN: ':8008' }, 'PGREPL_API_LISTEN=":8008" is not valid: must be host:port ([v6]:port for IPv6) (e.g. PGREPL_API_LISTEN=0.0.0.0:8008)'],
  [{ ...HA, PGREPL_API_LISTEN: '127.0.0.1:5432' }, 'PGREPL_API_LISTEN is on port 5432, which is PGPORT, where postgres listens: give the API another port (e.g. PGREPL_API_LISTEN=0.0.0.0:8008)'],
  [{ ...HA, PGPORT: '8008' }, 'PGREPL_API_LISTEN is on port 8008, which is PGPORT, where postgres listens: give the API another port (e.g. PGREPL_API_LISTEN=0.0.0.0:8009)'],
  [{ ...HA, PGREPL_API_CONNECT_ADDRESS: 'pg 1:8008' }, 'PGREPL_API_CONNECT_ADDRESS="pg 1:8008" is not valid: must be a host name or IP address (e.g. PGREPL_API_CONNECT_ADDRESS=10.0.0.5:8008)'],
  [{ ...HA, PGREPL_TTL: 'ten' }, 'PGREPL_TTL="ten" is not valid: must be a whole number of 1 or more (e.g. PGREPL_TTL=10)'],
  [{ ...HA, PGREPL_LOOP_WAIT: '0' }, 'PGREPL_LOOP_WAIT="0" is not valid: must be a whole number of 1 or more (e.g. PGREPL_LOOP_WAIT=2)'],
  [{ ...HA, PGREPL_RETRY_TIMEOUT: '1.5' }, 'PGREPL_RETRY_TIMEOUT="1.5" is not valid: must be a whole number of 1 or more (e.g. PGREPL_RETRY_TIMEOUT=3)'],
  [{ ...HA, PGREPL_TTL: '8' }, 'PGREPL_TTL=8, PGREPL_LOOP_WAIT=2, PGREPL_RETRY_TIMEOUT=3: LOOP_WAIT + 2 × RETRY_TIMEOUT = 8 must be below TTL, or a leader may demote on one slow etcd call; raise PGREPL_TTL or lower the other two (defaults: 10, 2, 3)'],
  [{ ...HA, PGREPL_LOOP_WAIT: '5' }, 'PGREPL_TTL=10, PGREPL_LOOP_WAIT=5, PGREPL_RETRY_TIMEOUT=3: LOOP_WAIT + 2 × RETRY_TIMEOUT = 11 must be below TTL, or a leader may demote on one slow etcd call; raise PGREPL_TTL or lower the other two (defaults: 10, 2, 3)'],
  [{ ...HA, PGREPL_MAX_LAG_ON_FAILOVER: '1 megabyte' }, 'PGREPL_MAX_LAG_ON_FAILOVER="1 megabyte" is not valid: must be a number of bytes, or a size such as 512kB or 16MB (units kB, MB, GB, TB) (e.g. PGREPL_MAX_LAG_ON_FAILOVER=16MB)'],
  [{ ...HA, PGREPL_MAX_LAG_ON_FAILOVER: '-1' }, 'PGREPL_MAX_LAG_ON_FAILOVER="-1" is not valid: must be a number of bytes, or a size such as 512kB or 16MB (units kB, MB, GB, TB) (e.g. PGREPL_MAX_LAG_ON_FAILOVER=16MB)'],
  [{ ...HA, PGREPL_NOFAILOVER: 'sometimes' }, 'PGREPL_NOFAILOVER="sometimes" is not valid: must be true or false (also 1/0, yes/no, on/off) (e.g. PGREPL_NOFAILOVER=on)'],
  [{ PGREPL_ROLE: 'leader' }, 'PGREPL_ROLE="leader" is not valid: must be PRIMARY or STANDBY (e.g. PGREPL_ROLE=STANDBY)'],
  [{ PGREPL_ROLE: 'STANDBY' }, 'PGREPL_ROLE=STANDBY needs an upstream: set PGREPL_MASTER_IP (and PGREPL_MASTER_PORT, default 5432), or run with --link UPSTREAM:postgres'],
  [{ PGREPL_MASTER_PORT: '70000' }, 'PGREPL_MASTER_PORT="70000" is not valid: must be a TCP port from 1 to 65535 (e.g. PGREPL_MASTER_PORT=5432)'],
  [{ PGREPL_MASTER_IP: 'bad host!' }, 'PGREPL_MASTER_IP="bad host!" is not valid: must be a host name or IP address (e.g. PGREPL_MASTER_IP=10.0.0.5)'],
  [{ PGPORT: 'abc' }, 'PGPORT="abc" is not valid: must be a TCP port from 1 to 65535 (e.g. PGPORT=5432)'],
  [{ PGDATA: 'relative/path' }, 'PGDATA="relative/path" is not valid: must be an absolute path (e.g. PGDATA=/var/lib/postgresql/data)'],
  [{ PGREPL_DEBUG: 'maybe' }, 'PGREPL_DEBUG="maybe" is not valid: must be true or false (also 1/0, yes/no, on/off) (e.g. PGREPL_DEBUG=true)'],
  [{ PGREPL_LOG_FORMAT: 'xml' }, 'PGREPL_LOG_FORMAT="xml" is not valid: must be json or pretty (e.g. PGREPL_LOG_FORMAT=pretty)'],
  [{ PGREPL_NODE_NAME: 'Node-1' }, 'PGREPL_NODE_NAME="Node-1" is not valid: must be 1-63 lower-case letters, digits or underscores, as a replication slot name (e.g. PGREPL_NODE_NAME=pg_standby_1)'],
  [{ PGREPL_UPSTREAM_TIMEOUT: '0' }, 'PGREPL_UPSTREAM_TIMEOUT="0" is not valid: must be a whole number of 1 or more (e.g. PGREPL_UPSTREAM_TIMEOUT=300)'],
  [{ PGREPL_HEALTH_STREAM_GRACE: 'a minute' }, 'PGREPL_HEALTH_STREAM_GRACE="a minute" is not valid: must be a whole number, 0 or more (e.g. PGREPL_HEALTH_STREAM_GRACE=60)'],
  [{ PGREPL_SLOTS: 'sometimes' }, 'PGREPL_SLOTS="sometimes" is not valid: must be true or false (also 1/0, yes/no, on/off) (e.g. PGREPL_SLOTS=on)'],
  [{ PGREPL_SLOT_MAX_WAL: '10 gigs' }, 'PGREPL_SLOT_MAX_WAL="10 gigs" is not valid: must be -1 or a size such as 512MB or 10GB (units kB, MB, GB, TB) (e.g. PGREPL_SLOT_MAX_WAL=10GB)'],
  [{ PGREPL_RECLONE: 'always' }, 'PGREPL_RECLONE="always" is not valid: must be never or auto (e.g. PGREPL_RECLONE=auto)'],
  [{ PGREPL_REPLICATION_CIDR: '10.0.0.0/33' }, 'PGREPL_REPLICATION_CIDR="10.0.0.0/33" is not valid: has "10.0.0.0/33", which is not an address or CIDR (e.g. PGREPL_REPLICATION_CIDR=10.0.0.0/8, or all)'],
  [{ PGREPL_GESTALT_DATABASES: 'a,,b' }, 'PGREPL_GESTALT_DATABASES="a,,b" is not valid: has an empty name in the list (e.g. PGREPL_GESTALT_DATABASES=gestalt-meta,gestalt-security, or empty for none)'],
  [{ PGREPL_INITDB_DIR: 'initdb.d' }, 'PGREPL_INITDB_DIR="initdb.d" is not valid: must be an absolute path (e.g. PGREPL_INITDB_DIR=/docker-entrypoint-initdb.d)'],
  [{ PGREPL_SYNC_METHOD: 'all' }, 'PGREPL_SYNC_METHOD="all" is not valid: must be any or first (e.g. PGREPL_SYNC_METHOD=any)'],
  [{ PGREPL_SYNC_STANDBYS: 'two' }, 'PGREPL_SYNC_STANDBYS="two" is not valid: must be a whole number, 0 or more (e.g. PGREPL_SYNC_STANDBYS=1)'],
  [{ PGREPL_SYNC_COMMIT: 'remote' }, 'PGREPL_SYNC_COMMIT="remote" is not valid: must be on or remote_apply or remote_write or local or off (e.g. PGREPL_SYNC_COMMIT=remote_apply)'],
  [{ PGREPL_PEERS: 'pg1:99999' }, 'PGREPL_PEERS="pg1:99999" is not valid: has port "99999" out of range 1-65535 (e.g. PGREPL_PEERS=pg1:5432,pg2:5432)'],
  [{ PGREPL_FENCE: 'shoot' }, 'PGREPL_FENCE="shoot" is not valid: must be rejoin or refuse (e.g. PGREPL_FENCE=rejoin)'],
  [{ POSTGRES_HOST_AUTH_METHOD: 'scram' }, 'POSTGRES_HOST_AUTH_METHOD="scram" is not valid: is not a pg_hba.conf method; use one of trust, reject, scram-sha-256, md5, password, gss, sspi, ident, peer, ldap, radius, cert, pam, bsd (e.g. POSTGRES_HOST_AUTH_METHOD=scram-sha-256)'],
  [{ POSTGRES_USER: 'u'.repeat(64) }, `POSTGRES_USER="${'u'.repeat(64)}" is not valid: is longer than PostgreSQL's 63-byte limit for names (e.g. POSTGRES_USER=postgres)`],
  [{ POSTGRES_PASSWORD: 'a', POSTGRES_PASSWORD_FILE: '/run/secrets/pw' }, 'POSTGRES_PASSWORD and POSTGRES_PASSWORD_FILE are both set: keep only one of them'],
  [{ PGREPL_TOKEN: 'a', PGREPL_TOKEN_FILE: '/run/secrets/tok' }, 'PGREPL_TOKEN and PGREPL_TOKEN_FILE are both set: keep only one of them'],
  [{ PGREPL_TOKEN_FILE: '/nonexistent/token' }, 'PGREPL_TOKEN_FILE=/nonexistent/token cannot be read (ENOENT): mount the file there or unset PGREPL_TOKEN_FILE'],
  [{ PGREPL_ARCHIVE_DIR: 'archive' }, 'PGREPL_ARCHIVE_DIR="archive" is not valid: must be an absolute path (e.g. PGREPL_ARCHIVE_DIR=/var/lib/postgresql/archive)'],
  [{ PGDATA: '/data', PGREPL_ARCHIVE_DIR: '/data/archive' }, 'PGREPL_ARCHIVE_DIR=/data/archive is inside PGDATA=/data: every clone and rewind would copy the archive, and data moved aside would take it along; use a directory (a volume) outside PGDATA, e.g. PGREPL_ARCHIVE_DIR=/var/lib/postgresql/archive'],
  [{ POSTGRES_INITDB_ARGS: '-D /elsewhere' }, 'POSTGRES_INITDB_ARGS must not contain -D: the data directory is PGDATA'],
  [{ POSTGRES_INITDB_ARGS: `--locale='C` }, "POSTGRES_INITDB_ARGS is not valid: a ' is not closed"],
  // Without a token only a plain PRIMARY starts (replication off); what needs one is refused.
  [{ PGREPL_ROLE: 'STANDBY', PGREPL_MASTER_IP: 'pg1' }, 'PGREPL_ROLE=STANDBY needs PGREPL_TOKEN: a standby logs in to its upstream with it; set PGREPL_TOKEN (or PGREPL_TOKEN_FILE) to the token of its upstream'],
  [{ PGREPL_PEERS: 'pg2' }, 'PGREPL_PEERS needs PGREPL_TOKEN: this node asks its peers what they are over replication connections, which log in with it; set PGREPL_TOKEN (or PGREPL_TOKEN_FILE), the same on every node, or unset PGREPL_PEERS'],
  [{ PGREPL_SYNC_STANDBYS: '1' }, 'PGREPL_SYNC_STANDBYS=1 needs PGREPL_TOKEN: without it replication is off, no standby can connect, and every commit would wait for one forever; set PGREPL_TOKEN (or PGREPL_TOKEN_FILE), the same on every node, or set PGREPL_SYNC_STANDBYS=0'],
];

describe('bad inputs', () => {
  for (const [env, message] of BAD) {
    it(`rejects ${JSON.stringify(env).slice(0, 80)}`, () => {
      expect(errorOf(env)).toBe(message);
    });
  }
  it('HA mode without a token: the commands load it, a node refuses to start', () => {
    const cfg = load({ ...HA });
    expect(cfg.warnings).toEqual([]);
    expect(() => checkNodeStart(cfg)).toThrow(
      new UserError('PGREPL_ETCD_ENDPOINTS (HA mode) needs PGREPL_TOKEN: HA nodes replicate from each other and log in with it; set PGREPL_TOKEN (or PGREPL_TOKEN_FILE) to a long random value, the same on every node'),
    );
    expect(() => checkNodeStart(load({ ...HA, ...TOKEN }))).not.toThrow();
    expect(() => checkNodeStart(load({}))).not.toThrow();
  });
  it('reports several HA variables set without PGREPL_ETCD_ENDPOINTS one line each, before reading any file', () => {
    const lines = errorOf({ PGREPL_CLUSTER: 'x/y', PGREPL_ETCD_PASSWORD_FILE: '/nonexistent/pw' }).split('\n');
    expect(lines).toEqual([needsEndpoints('PGREPL_CLUSTER'), needsEndpoints('PGREPL_ETCD_PASSWORD_FILE')]);
  });
  it('reports several bad variables one line each', () => {
    const lines = errorOf({ PGPORT: 'x', PGREPL_ROLE: 'y' }).split('\n');
    expect(lines).toHaveLength(2);
    expect(lines.some((l) => l.startsWith('PGPORT='))).toBe(true);
    expect(lines.some((l) => l.startsWith('PGREPL_ROLE='))).toBe(true);
  });
});
