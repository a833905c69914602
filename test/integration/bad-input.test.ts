/**
 * Bad input, through the bundle: each case ends in one fatal log line with the exact message, a
 * non-zero exit, and the data directory exactly as it was (nothing created, chowned or removed).
 */
import { lstatSync, mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { nodeEnv, removeScratch, runBundle, runCommand, scratchDir, SUPERUSER_PASSWORD } from '../support/node.js';

let dir: string;
beforeAll(() => {
  dir = scratchDir();
});
afterAll(() => removeScratch(dir));

/** Every path under `root` with its type, mode, owner, size and mtime. */
function snapshot(root: string): string[] {
  const out: string[] = [];
  const walk = (p: string) => {
    let st;
    try {
      st = lstatSync(p);
    } catch {
      out.push(`${p} absent`);
      return;
    }
    out.push(`${p} ${st.mode.toString(8)} ${st.uid}:${st.gid} ${st.size} ${st.mtimeMs}`);
    if (st.isDirectory()) for (const e of readdirSync(p).sort()) walk(join(p, e));
  };
  walk(root);
  return out;
}

function fakeCluster(pgdata: string, major: string) {
  mkdirSync(join(pgdata, 'global'), { recursive: true, mode: 0o700 });
  writeFileSync(join(pgdata, 'PG_VERSION'), `${major}\n`);
  const control = Buffer.alloc(8192);
  control.writeBigUInt64LE(7000000000000000042n, 0);
  control.writeInt32LE(1, 16);
  writeFileSync(join(pgdata, 'global', 'pg_control'), control);
  writeFileSync(join(pgdata, 'postgresql.conf'), '# theirs\n');
}

interface Case {
  name: string;
  /** The environment on top of the test defaults; a function gets PGDATA. */
  env?: Record<string, string | undefined> | ((pgdata: string) => Record<string, string | undefined>);
  /** Prepares the case directory; returns PGDATA. */
  setup?: (caseDir: string) => string;
  /** A function gets PGDATA. */
  message: string | RegExp | ((pgdata: string) => string);
  /** An operator command (`node dist/pgrepl.cjs ARGS`) instead of `pgrepl postgres`. */
  command?: string[];
  /** The exact exit code (otherwise: not 0). */
  exit?: number;
  /** The port (PGPORT); nothing listens on it. Default 5730. */
  port?: number;
}

/** Ports for the cases added later: 5790-5799, where nothing listens during these tests. */
const FREE_PORT = 5799;
const LONG_USER = 'u'.repeat(64);
const ETCD_PASSWORD = 'etcd-Secret-pw-0815';
/** Secrets no case may print: the test defaults' and the etcd password some cases set. */
const SECRETS = [SUPERUSER_PASSWORD, nodeEnv({ pgdata: '/', port: 1 }).PGREPL_TOKEN!, ETCD_PASSWORD];
const HA = { PGREPL_ETCD_ENDPOINTS: 'http://127.0.0.1:2379' };
const HA_TLS = { PGREPL_ETCD_ENDPOINTS: 'https://127.0.0.1:2379' };
const ENDPOINTS_EXAMPLE = '(e.g. PGREPL_ETCD_ENDPOINTS=http://etcd1:2379,http://etcd2:2379,http://etcd3:2379)';

const CASES: Case[] = [
  { name: 'unknown role', env: { PGREPL_ROLE: 'leader' }, message: 'PGREPL_ROLE="leader" is not valid: must be PRIMARY or STANDBY (e.g. PGREPL_ROLE=STANDBY)' },
  { name: 'standby without upstream', env: { PGREPL_ROLE: 'standby' }, message: 'PGREPL_ROLE=STANDBY needs an upstream: set PGREPL_MASTER_IP (and PGREPL_MASTER_PORT, default 5432), or run with --link UPSTREAM:postgres' },
  { name: 'port not a number', env: { PGPORT: 'fivefour' }, message: 'PGPORT="fivefour" is not valid: must be a TCP port from 1 to 65535 (e.g. PGPORT=5432)' },
  { name: 'upstream port out of range', env: { PGREPL_MASTER_PORT: '0' }, message: 'PGREPL_MASTER_PORT="0" is not valid: must be a TCP port from 1 to 65535 (e.g. PGREPL_MASTER_PORT=5432)' },
  { name: 'relative PGDATA', setup: () => 'data', message: 'PGDATA="data" is not valid: must be an absolute path (e.g. PGDATA=/var/lib/postgresql/data)' },
  { name: 'token and token file', env: { PGREPL_TOKEN_FILE: '/etc/hostname' }, message: 'PGREPL_TOKEN and PGREPL_TOKEN_FILE are both set: keep only one of them' },
  { name: 'unreadable password file', env: { POSTGRES_PASSWORD: undefined, POSTGRES_PASSWORD_FILE: '/run/secrets/nope' }, message: 'POSTGRES_PASSWORD_FILE=/run/secrets/nope cannot be read (ENOENT): mount the file there or unset POSTGRES_PASSWORD_FILE' },
  { name: 'bad node name', env: { PGREPL_NODE_NAME: 'Node-1' }, message: 'PGREPL_NODE_NAME="Node-1" is not valid: must be 1-63 lower-case letters, digits or underscores, as a replication slot name (e.g. PGREPL_NODE_NAME=pg_standby_1)' },
  { name: 'bad replication CIDR', env: { PGREPL_REPLICATION_CIDR: '10.0.0.0/40' }, message: 'PGREPL_REPLICATION_CIDR="10.0.0.0/40" is not valid: has "10.0.0.0/40", which is not an address or CIDR (e.g. PGREPL_REPLICATION_CIDR=10.0.0.0/8, or all)' },
  { name: 'bad debug flag', env: { PGREPL_DEBUG: 'loud' }, message: 'PGREPL_DEBUG="loud" is not valid: must be true or false (also 1/0, yes/no, on/off) (e.g. PGREPL_DEBUG=true)' },
  { name: 'bad host auth method', env: { POSTGRES_HOST_AUTH_METHOD: 'scram' }, message: /^POSTGRES_HOST_AUTH_METHOD="scram" is not valid: is not a pg_hba.conf method/ },
  { name: 'initdb args naming another data directory', env: { POSTGRES_INITDB_ARGS: '--pgdata=/elsewhere' }, message: 'POSTGRES_INITDB_ARGS must not contain --pgdata=/elsewhere: the data directory is PGDATA' },
  { name: 'new cluster without a password', env: { POSTGRES_PASSWORD: undefined }, message: /^POSTGRES_PASSWORD is not set: a new cluster needs a superuser password/ },
  {
    name: 'a mount point with only lost+found',
    setup: (d) => {
      mkdirSync(join(d, 'mnt', 'lost+found'), { recursive: true });
      return join(d, 'mnt');
    },
    message: /^PGDATA=\/.*\/mnt is not empty and holds no PostgreSQL cluster \(found: lost\+found\): point PGDATA at an empty subdirectory of the volume \(e.g. PGDATA=\/.*\/mnt\/pgdata\); nothing was changed$/,
  },
  {
    name: 'a cluster of another major version',
    setup: (d) => {
      fakeCluster(join(d, 'old'), '11');
      return join(d, 'old');
    },
    message: /^PGDATA=\/.*\/old holds a PostgreSQL 11 cluster but these binaries are PostgreSQL \d+: run the image for 11, or upgrade the data first \(pg_upgrade, or dump and restore\); nothing was changed$/,
  },
  {
    name: 'PGDATA is a file',
    setup: (d) => {
      writeFileSync(join(d, 'file'), 'x');
      return join(d, 'file');
    },
    message: /^PGDATA=\/.*\/file exists and is not a directory/,
  },
  {
    name: 'an interrupted clone started as PRIMARY',
    setup: (d) => {
      mkdirSync(join(d, 'half', '.pgrepl-staging-clone', 'base'), { recursive: true });
      return join(d, 'half');
    },
    message: /^PGDATA=\/.*\/half holds only an interrupted clone \(.pgrepl-staging-clone\), and PGREPL_ROLE is PRIMARY: start it as PGREPL_ROLE=STANDBY/,
  },
  {
    name: 'PGDATA the postgres user cannot reach',
    setup: (d) => {
      mkdirSync(join(d, 'private'), { mode: 0o700 });
      return join(d, 'private', 'data');
    },
    message: /^PGDATA=\/.*\/private\/data is not reachable by the postgres user \(uid \d+\): \/.*\/private is mode 700 owned by uid 0; make it searchable \(chmod o\+x .*\/private\) or choose another PGDATA$/,
  },
  {
    name: 'postgres not on PATH',
    env: { PATH: '/usr/bin:/bin' },
    message: "postgres is not on PATH: add PostgreSQL's bin directory to PATH (e.g. PATH=/usr/lib/postgresql/15/bin:$PATH)",
  },
  // More variables: each is validated before anything touches PGDATA (exit 1).
  { name: 'slot WAL cap not a size', port: FREE_PORT, exit: 1, env: { PGREPL_SLOT_MAX_WAL: '10 gigs' }, message: 'PGREPL_SLOT_MAX_WAL="10 gigs" is not valid: must be -1 or a size such as 512MB or 10GB (units kB, MB, GB, TB) (e.g. PGREPL_SLOT_MAX_WAL=10GB)' },
  { name: 'unknown reclone mode', port: FREE_PORT, exit: 1, env: { PGREPL_RECLONE: 'always' }, message: 'PGREPL_RECLONE="always" is not valid: must be never or auto (e.g. PGREPL_RECLONE=auto)' },
  { name: 'unknown sync method', port: FREE_PORT, exit: 1, env: { PGREPL_SYNC_METHOD: 'all' }, message: 'PGREPL_SYNC_METHOD="all" is not valid: must be any or first (e.g. PGREPL_SYNC_METHOD=any)' },
  { name: 'sync standbys not a number', port: FREE_PORT, exit: 1, env: { PGREPL_SYNC_STANDBYS: 'two' }, message: 'PGREPL_SYNC_STANDBYS="two" is not valid: must be a whole number, 0 or more (e.g. PGREPL_SYNC_STANDBYS=1)' },
  { name: 'unknown synchronous_commit', port: FREE_PORT, exit: 1, env: { PGREPL_SYNC_COMMIT: 'remote' }, message: 'PGREPL_SYNC_COMMIT="remote" is not valid: must be on or remote_apply or remote_write or local or off (e.g. PGREPL_SYNC_COMMIT=remote_apply)' },
  { name: 'unknown fence mode', port: FREE_PORT, exit: 1, env: { PGREPL_FENCE: 'shoot' }, message: 'PGREPL_FENCE="shoot" is not valid: must be rejoin or refuse (e.g. PGREPL_FENCE=rejoin)' },
  { name: 'peer port out of range', port: FREE_PORT, exit: 1, env: { PGREPL_PEERS: 'pg1:99999' }, message: 'PGREPL_PEERS="pg1:99999" is not valid: has port "99999" out of range 1-65535 (e.g. PGREPL_PEERS=pg1:5432,pg2:5432)' },
  { name: 'unknown log format', port: FREE_PORT, exit: 1, env: { PGREPL_LOG_FORMAT: 'xml' }, message: 'PGREPL_LOG_FORMAT="xml" is not valid: must be json or pretty (e.g. PGREPL_LOG_FORMAT=pretty)' },
  { name: 'upstream timeout of zero', port: FREE_PORT, exit: 1, env: { PGREPL_UPSTREAM_TIMEOUT: '0' }, message: 'PGREPL_UPSTREAM_TIMEOUT="0" is not valid: must be a whole number of 1 or more (e.g. PGREPL_UPSTREAM_TIMEOUT=300)' },
  { name: 'health stream grace not a number', port: FREE_PORT, exit: 1, env: { PGREPL_HEALTH_STREAM_GRACE: 'a minute' }, message: 'PGREPL_HEALTH_STREAM_GRACE="a minute" is not valid: must be a whole number, 0 or more (e.g. PGREPL_HEALTH_STREAM_GRACE=60)' },
  { name: 'empty name among the gestalt databases', port: FREE_PORT, exit: 1, env: { PGREPL_GESTALT_DATABASES: 'a,,b' }, message: 'PGREPL_GESTALT_DATABASES="a,,b" is not valid: has an empty name in the list (e.g. PGREPL_GESTALT_DATABASES=gestalt-meta,gestalt-security, or empty for none)' },
  { name: 'relative init scripts directory', port: FREE_PORT, exit: 1, env: { PGREPL_INITDB_DIR: 'initdb.d' }, message: 'PGREPL_INITDB_DIR="initdb.d" is not valid: must be an absolute path (e.g. PGREPL_INITDB_DIR=/docker-entrypoint-initdb.d)' },
  {
    name: 'archive directory inside PGDATA', port: FREE_PORT, exit: 1,
    env: (pgdata) => ({ PGREPL_ARCHIVE_DIR: `${pgdata}/archive` }),
    message: (pgdata) => `PGREPL_ARCHIVE_DIR=${pgdata}/archive is inside PGDATA=${pgdata}: every clone and rewind would copy the archive, and data moved aside would take it along; use a directory (a volume) outside PGDATA, e.g. PGREPL_ARCHIVE_DIR=/var/lib/postgresql/archive`,
  },
  { name: 'relative archive directory', port: FREE_PORT, exit: 1, env: { PGREPL_ARCHIVE_DIR: 'archive' }, message: 'PGREPL_ARCHIVE_DIR="archive" is not valid: must be an absolute path (e.g. PGREPL_ARCHIVE_DIR=/var/lib/postgresql/archive)' },
  { name: 'superuser name too long', port: FREE_PORT, exit: 1, env: { POSTGRES_USER: LONG_USER }, message: `POSTGRES_USER="${LONG_USER}" is not valid: is longer than PostgreSQL's 63-byte limit for names (e.g. POSTGRES_USER=postgres)` },
  { name: 'unreadable database name file', port: FREE_PORT, exit: 1, env: { POSTGRES_DB_FILE: '/run/secrets/nodb' }, message: 'POSTGRES_DB_FILE=/run/secrets/nodb cannot be read (ENOENT): mount the file there or unset POSTGRES_DB_FILE' },
  { name: 'password and password file', port: FREE_PORT, exit: 1, env: { POSTGRES_PASSWORD_FILE: '/etc/hostname' }, message: 'POSTGRES_PASSWORD and POSTGRES_PASSWORD_FILE are both set: keep only one of them' },
  { name: 'bad slots flag', port: FREE_PORT, exit: 1, env: { PGREPL_SLOTS: 'sometimes' }, message: 'PGREPL_SLOTS="sometimes" is not valid: must be true or false (also 1/0, yes/no, on/off) (e.g. PGREPL_SLOTS=on)' },
  { name: 'upstream not a host name', port: FREE_PORT, exit: 1, env: { PGREPL_ROLE: 'STANDBY', PGREPL_MASTER_IP: 'bad host!' }, message: 'PGREPL_MASTER_IP="bad host!" is not valid: must be a host name or IP address (e.g. PGREPL_MASTER_IP=10.0.0.5)' },
  { name: 'initdb args with -D', port: FREE_PORT, exit: 1, env: { POSTGRES_INITDB_ARGS: '-D /elsewhere' }, message: 'POSTGRES_INITDB_ARGS must not contain -D: the data directory is PGDATA' },
  { name: 'unreadable token file', port: FREE_PORT, exit: 1, env: { PGREPL_TOKEN: undefined, PGREPL_TOKEN_FILE: '/nonexistent/token' }, message: 'PGREPL_TOKEN_FILE=/nonexistent/token cannot be read (ENOENT): mount the file there or unset PGREPL_TOKEN_FILE' },
  // No token, no replication: only a plain PRIMARY starts without one (exit 1, PGDATA untouched).
  { name: 'standby without a token', port: FREE_PORT, exit: 1, env: { PGREPL_TOKEN: undefined, PGREPL_ROLE: 'STANDBY', PGREPL_MASTER_IP: '127.0.0.1', PGREPL_MASTER_PORT: '5798' }, message: 'PGREPL_ROLE=STANDBY needs PGREPL_TOKEN: a standby logs in to its upstream with it; set PGREPL_TOKEN (or PGREPL_TOKEN_FILE) to the token of its upstream' },
  { name: 'peers without a token', port: FREE_PORT, exit: 1, env: { PGREPL_TOKEN: undefined, PGREPL_PEERS: '127.0.0.1:5798' }, message: 'PGREPL_PEERS needs PGREPL_TOKEN: this node asks its peers what they are over replication connections, which log in with it; set PGREPL_TOKEN (or PGREPL_TOKEN_FILE), the same on every node, or unset PGREPL_PEERS' },
  { name: 'synchronous standbys without a token', port: FREE_PORT, exit: 1, env: { PGREPL_TOKEN: undefined, PGREPL_SYNC_STANDBYS: '1' }, message: 'PGREPL_SYNC_STANDBYS=1 needs PGREPL_TOKEN: without it replication is off, no standby can connect, and every commit would wait for one forever; set PGREPL_TOKEN (or PGREPL_TOKEN_FILE), the same on every node, or set PGREPL_SYNC_STANDBYS=0' },
  { name: 'unreadable TLS certificate', port: FREE_PORT, exit: 1, env: { PGREPL_TLS_CERT: '/nonexistent/node.crt', PGREPL_TLS_KEY: '/nonexistent/node.key' }, message: 'PGREPL_TLS_CERT=/nonexistent/node.crt cannot be read (ENOENT): mount this node\'s certificate there, readable by the user the container starts as, or unset PGREPL_TLS_CERT' },
  { name: 'TLS key without a certificate', port: FREE_PORT, exit: 1, env: { PGREPL_TLS_KEY_FILE: '/etc/hostname' }, message: 'PGREPL_TLS_KEY is set without PGREPL_TLS_CERT: set PGREPL_TLS_CERT to this node\'s certificate (PEM), or unset PGREPL_TLS_KEY' },
  { name: 'TLS CA without TLS', port: FREE_PORT, exit: 1, env: { PGREPL_TLS_CA: '/etc/hostname' }, message: 'PGREPL_TLS_CA is set but TLS is off: set PGREPL_TLS_CERT and PGREPL_TLS_KEY (this node\'s certificate, signed by that CA, and its key), or unset PGREPL_TLS_CA' },
  { name: 'self-signed TLS with a CA', port: FREE_PORT, exit: 1, env: { PGREPL_TLS: 'self-signed', PGREPL_TLS_CA: '/etc/hostname' }, message: /^PGREPL_TLS_CA is set with PGREPL_TLS=self-signed: no CA signed the nodes' self-signed certificates/ },
  { name: 'HA mode without a token', port: FREE_PORT, exit: 1, env: { ...HA, PGREPL_TOKEN: undefined }, message: 'PGREPL_ETCD_ENDPOINTS (HA mode) needs PGREPL_TOKEN: HA nodes replicate from each other and log in with it; set PGREPL_TOKEN (or PGREPL_TOKEN_FILE) to a long random value, the same on every node' },
  // HA mode (SPEC §7): its variables, validated before anything touches PGDATA (exit 1).
  { name: 'HA setting without PGREPL_ETCD_ENDPOINTS', port: FREE_PORT, exit: 1, env: { PGREPL_CLUSTER: 'orders' }, message: 'PGREPL_CLUSTER is set but is an HA mode setting, and HA mode needs PGREPL_ETCD_ENDPOINTS: set PGREPL_ETCD_ENDPOINTS (e.g. PGREPL_ETCD_ENDPOINTS=http://etcd1:2379) or unset PGREPL_CLUSTER' },
  { name: 'etcd password file without PGREPL_ETCD_ENDPOINTS', port: FREE_PORT, exit: 1, env: { PGREPL_ETCD_PASSWORD_FILE: '/nonexistent/etcd-password' }, message: 'PGREPL_ETCD_PASSWORD_FILE is set but is an HA mode setting, and HA mode needs PGREPL_ETCD_ENDPOINTS: set PGREPL_ETCD_ENDPOINTS (e.g. PGREPL_ETCD_ENDPOINTS=http://etcd1:2379) or unset PGREPL_ETCD_PASSWORD_FILE' },
  { name: 'etcd endpoint without a scheme', port: FREE_PORT, exit: 1, env: { PGREPL_ETCD_ENDPOINTS: 'etcd1:2379' }, message: `PGREPL_ETCD_ENDPOINTS="etcd1:2379" is not valid: has "etcd1:2379", which is not an http:// or https:// URL with a host and a port ${ENDPOINTS_EXAMPLE}` },
  { name: 'etcd endpoints mixing http and https', port: FREE_PORT, exit: 1, env: { PGREPL_ETCD_ENDPOINTS: 'http://etcd1:2379,https://etcd2:2379' }, message: `PGREPL_ETCD_ENDPOINTS="http://etcd1:2379,https://etcd2:2379" is not valid: mixes http:// and https:// URLs: use one scheme for every member ${ENDPOINTS_EXAMPLE}` },
  { name: 'etcd endpoint with a password in it', port: FREE_PORT, exit: 1, env: { PGREPL_ETCD_ENDPOINTS: `http://root:${ETCD_PASSWORD}@etcd1:2379` }, message: `PGREPL_ETCD_ENDPOINTS is not valid: has user:password@ in a URL: give them in PGREPL_ETCD_USER and PGREPL_ETCD_PASSWORD ${ENDPOINTS_EXAMPLE}` },
  { name: 'etcd CA certificate missing', port: FREE_PORT, exit: 1, env: { ...HA_TLS, PGREPL_ETCD_CACERT: '/nonexistent/ca.crt' }, message: 'PGREPL_ETCD_CACERT="/nonexistent/ca.crt" is not valid: cannot be read (ENOENT); mount the file there (e.g. PGREPL_ETCD_CACERT=/etc/pgrepl/etcd/ca.crt)' },
  { name: 'etcd client certificate without its key', port: FREE_PORT, exit: 1, env: { ...HA_TLS, PGREPL_ETCD_CERT: '/etc/hostname' }, message: 'PGREPL_ETCD_CERT is set without PGREPL_ETCD_KEY: a client certificate and its key go together; set PGREPL_ETCD_KEY too, or unset PGREPL_ETCD_CERT' },
  { name: 'etcd TLS file with http endpoints', port: FREE_PORT, exit: 1, env: { ...HA, PGREPL_ETCD_CACERT: '/etc/hostname' }, message: 'PGREPL_ETCD_CACERT is set but PGREPL_ETCD_ENDPOINTS are http:// URLs: TLS files need https:// endpoints (e.g. PGREPL_ETCD_ENDPOINTS=https://etcd1:2379), or unset PGREPL_ETCD_CACERT' },
  { name: 'etcd user without a password', port: FREE_PORT, exit: 1, env: { ...HA, PGREPL_ETCD_USER: 'root' }, message: 'PGREPL_ETCD_USER is set without PGREPL_ETCD_PASSWORD: etcd authentication needs a user and a password; set PGREPL_ETCD_PASSWORD (or PGREPL_ETCD_PASSWORD_FILE) too, or unset PGREPL_ETCD_USER' },
  { name: 'etcd password without a user', port: FREE_PORT, exit: 1, env: { ...HA, PGREPL_ETCD_PASSWORD: ETCD_PASSWORD }, message: 'PGREPL_ETCD_PASSWORD is set without PGREPL_ETCD_USER: etcd authentication needs a user and a password; set PGREPL_ETCD_USER too, or unset PGREPL_ETCD_PASSWORD' },
  { name: 'etcd password and password file', port: FREE_PORT, exit: 1, env: { ...HA, PGREPL_ETCD_USER: 'root', PGREPL_ETCD_PASSWORD: ETCD_PASSWORD, PGREPL_ETCD_PASSWORD_FILE: '/etc/hostname' }, message: 'PGREPL_ETCD_PASSWORD and PGREPL_ETCD_PASSWORD_FILE are both set: keep only one of them' },
  { name: 'unreadable etcd password file', port: FREE_PORT, exit: 1, env: { ...HA, PGREPL_ETCD_USER: 'root', PGREPL_ETCD_PASSWORD_FILE: '/run/secrets/etcd' }, message: 'PGREPL_ETCD_PASSWORD_FILE=/run/secrets/etcd cannot be read (ENOENT): mount the file there or unset PGREPL_ETCD_PASSWORD_FILE' },
  { name: 'cluster name with a slash', port: FREE_PORT, exit: 1, env: { ...HA, PGREPL_CLUSTER: 'a/b' }, message: 'PGREPL_CLUSTER="a/b" is not valid: must be 1-63 letters, digits, dots, dashes or underscores, starting with a letter or digit (e.g. PGREPL_CLUSTER=orders)' },
  { name: 'connect address without a port', port: FREE_PORT, exit: 1, env: { ...HA, PGREPL_CONNECT_ADDRESS: 'pg1' }, message: 'PGREPL_CONNECT_ADDRESS="pg1" is not valid: must be host:port ([v6]:port for IPv6) (e.g. PGREPL_CONNECT_ADDRESS=10.0.0.5:5432)' },
  { name: 'API on the postgres port', port: FREE_PORT, exit: 1, env: { ...HA, PGREPL_API_LISTEN: `127.0.0.1:${FREE_PORT}` }, message: `PGREPL_API_LISTEN is on port ${FREE_PORT}, which is PGPORT, where postgres listens: give the API another port (e.g. PGREPL_API_LISTEN=0.0.0.0:8008)` },
  { name: 'API connect address not a host', port: FREE_PORT, exit: 1, env: { ...HA, PGREPL_API_CONNECT_ADDRESS: 'pg 1:8008' }, message: 'PGREPL_API_CONNECT_ADDRESS="pg 1:8008" is not valid: must be a host name or IP address (e.g. PGREPL_API_CONNECT_ADDRESS=10.0.0.5:8008)' },
  { name: 'TTL not a number', port: FREE_PORT, exit: 1, env: { ...HA, PGREPL_TTL: 'ten' }, message: 'PGREPL_TTL="ten" is not valid: must be a whole number of 1 or more (e.g. PGREPL_TTL=10)' },
  { name: 'loop wait of zero', port: FREE_PORT, exit: 1, env: { ...HA, PGREPL_LOOP_WAIT: '0' }, message: 'PGREPL_LOOP_WAIT="0" is not valid: must be a whole number of 1 or more (e.g. PGREPL_LOOP_WAIT=2)' },
  { name: 'retry timeout not whole seconds', port: FREE_PORT, exit: 1, env: { ...HA, PGREPL_RETRY_TIMEOUT: '1.5' }, message: 'PGREPL_RETRY_TIMEOUT="1.5" is not valid: must be a whole number of 1 or more (e.g. PGREPL_RETRY_TIMEOUT=3)' },
  { name: 'TTL too short for loop wait and retry timeout', port: FREE_PORT, exit: 1, env: { ...HA, PGREPL_TTL: '8' }, message: 'PGREPL_TTL=8, PGREPL_LOOP_WAIT=2, PGREPL_RETRY_TIMEOUT=3: LOOP_WAIT + 2 × RETRY_TIMEOUT = 8 must be below TTL, or a leader may demote on one slow etcd call; raise PGREPL_TTL or lower the other two (defaults: 10, 2, 3)' },
  { name: 'max lag on failover not a size', port: FREE_PORT, exit: 1, env: { ...HA, PGREPL_MAX_LAG_ON_FAILOVER: '1 megabyte' }, message: 'PGREPL_MAX_LAG_ON_FAILOVER="1 megabyte" is not valid: must be a number of bytes, or a size such as 512kB or 16MB (units kB, MB, GB, TB) (e.g. PGREPL_MAX_LAG_ON_FAILOVER=16MB)' },
  { name: 'bad nofailover flag', port: FREE_PORT, exit: 1, env: { ...HA, PGREPL_NOFAILOVER: 'sometimes' }, message: 'PGREPL_NOFAILOVER="sometimes" is not valid: must be true or false (also 1/0, yes/no, on/off) (e.g. PGREPL_NOFAILOVER=on)' },
  // HA mode: the start-up's refusals of PGDATA that do not depend on the role come before the
  // agent writes anything (PGDATA untouched, not even created; etcd is never asked).
  {
    name: 'HA mode, PGDATA holds something else', port: FREE_PORT, exit: 1, env: { ...HA, PGREPL_ETCD_USER: 'root', PGREPL_ETCD_PASSWORD: ETCD_PASSWORD, PGREPL_CLUSTER: 'orders' },
    message: (pgdata) => `PGDATA=${pgdata} is not empty and holds no PostgreSQL cluster (found: notes.txt): point PGDATA at an empty subdirectory of the volume (e.g. PGDATA=${pgdata}/pgdata); nothing was changed`,
    setup: (d) => {
      mkdirSync(join(d, 'other'));
      writeFileSync(join(d, 'other', 'notes.txt'), 'mine\n');
      return join(d, 'other');
    },
  },
  {
    name: 'HA mode, PGDATA holds another major\'s cluster', port: FREE_PORT, exit: 1, env: { ...HA, PGREPL_ROLE: 'STANDBY', PGREPL_MASTER_IP: '127.0.0.1' },
    message: (pgdata) => `PGDATA=${pgdata} holds a PostgreSQL 14 cluster but these binaries are PostgreSQL 15: run the image for 14, or upgrade the data first (pg_upgrade, or dump and restore); nothing was changed`,
    setup: (d) => {
      fakeCluster(join(d, 'cluster'), '14');
      return join(d, 'cluster');
    },
  },
  // Operator commands, with a PGPORT where nothing listens: usage errors exit 64.
  { name: 'health --max-lag not a number', port: FREE_PORT, exit: 64, command: ['health', '--max-lag', 'x'], message: '--max-lag must be a number of bytes, e.g. --max-lag 16777216; usage: pgrepl health [--primary|--standby] [--max-lag BYTES]' },
  { name: 'health --max-lag without a value', port: FREE_PORT, exit: 64, command: ['health', '--max-lag'], message: '--max-lag needs a value; usage: pgrepl health [--primary|--standby] [--max-lag BYTES]' },
  { name: 'health --primary --standby', port: FREE_PORT, exit: 64, command: ['health', '--primary', '--standby'], message: '--primary and --standby exclude each other; usage: pgrepl health [--primary|--standby] [--max-lag BYTES]' },
  { name: 'follow without an upstream', port: FREE_PORT, exit: 64, command: ['follow'], message: 'follow needs exactly one HOST[:PORT]; usage: pgrepl follow HOST[:PORT] [--json]' },
  { name: 'follow with two upstreams', port: FREE_PORT, exit: 64, command: ['follow', 'pg2', 'pg3'], message: 'follow needs exactly one HOST[:PORT]; usage: pgrepl follow HOST[:PORT] [--json]' },
  { name: 'follow bad:host:port', port: FREE_PORT, exit: 64, command: ['follow', 'bad:host:port'], message: '"bad:host:port" has "bad:host:port", which is not host or host:port (e.g. pgrepl follow pg2:5432)' },
  { name: 'follow a port out of range', port: FREE_PORT, exit: 64, command: ['follow', 'pg2:99999'], message: '"pg2:99999" has port "99999" out of range 1-65535 (e.g. pgrepl follow pg2:5432)' },
  { name: 'follow on a node not configured as a standby', port: FREE_PORT, exit: 1, command: ['follow', '127.0.0.1:5798'], message: 'this node is not configured as a standby (PGREPL_ROLE=STANDBY with an upstream): nothing to re-point' },
  { name: 'follow outside the node (no pg_control)', port: FREE_PORT, exit: 1, env: { PGREPL_ROLE: 'STANDBY', PGREPL_MASTER_IP: '127.0.0.1' }, command: ['follow', '127.0.0.1:5798'], message: (pgdata) => `PGDATA=${pgdata} has no readable global/pg_control: run follow inside the node` },
  { name: 'status --bogus', port: FREE_PORT, exit: 64, command: ['status', '--bogus'], message: 'unknown option --bogus; usage: pgrepl status [--json]' },
  { name: 'status --json=1', port: FREE_PORT, exit: 64, command: ['status', '--json=1'], message: 'unknown option --json=1; usage: pgrepl status [--json]' },
  { name: 'promote --bogus', port: FREE_PORT, exit: 64, command: ['promote', '--bogus'], message: 'unknown option --bogus; usage: pgrepl promote [--json]' },
  { name: 'promote with an argument', port: FREE_PORT, exit: 64, command: ['promote', 'pg2'], message: 'unexpected argument "pg2"; usage: pgrepl promote [--json]' },
  { name: 'status with an argument', port: FREE_PORT, exit: 64, command: ['status', 'pg1'], message: 'unexpected argument "pg1"; usage: pgrepl status [--json]' },
  { name: 'health with an argument', port: FREE_PORT, exit: 64, command: ['health', 'standby'], message: 'unexpected argument "standby"; usage: pgrepl health [--primary|--standby] [--max-lag BYTES]' },
  { name: 'status with no server on the socket', port: FREE_PORT, exit: 1, command: ['status'], message: `no server answers on /var/run/postgresql/.s.PGSQL.${FREE_PORT}: is the node running, and is PGPORT=${FREE_PORT} its port?` },
  { name: 'promote with no server on the socket', port: FREE_PORT, exit: 1, command: ['promote'], message: `no server answers on /var/run/postgresql/.s.PGSQL.${FREE_PORT}: is the node running, and is PGPORT=${FREE_PORT} its port?` },
  { name: 'status with a bad PGPORT', port: FREE_PORT, exit: 1, env: { PGPORT: 'abc' }, command: ['status'], message: 'PGPORT="abc" is not valid: must be a TCP port from 1 to 65535 (e.g. PGPORT=5432)' },
  { name: 'archive-wal without arguments', port: FREE_PORT, exit: 64, command: ['archive-wal'], message: 'archive-wal needs WALPATH and WALNAME (%p %f); usage: pgrepl archive-wal [--dir DIR] WALPATH WALNAME' },
  { name: 'restore-wal without arguments', port: FREE_PORT, exit: 64, command: ['restore-wal'], message: 'restore-wal needs WALNAME and DESTPATH (%f %p); usage: pgrepl restore-wal [--dir DIR] WALNAME DESTPATH' },
];

describe('bad input through the bundle', () => {
  it('covers at least 25 cases', () => expect(CASES.length).toBeGreaterThanOrEqual(25));

  CASES.forEach((c, i) => {
    it(c.name, async () => {
      const caseDir = join(dir, `case${i}`);
      mkdirSync(caseDir, { mode: 0o755 });
      const pgdata = c.setup ? c.setup(caseDir) : join(caseDir, 'data');
      const before = snapshot(caseDir);
      const env = typeof c.env === 'function' ? c.env(pgdata) : c.env;
      const opts = { pgdata, port: c.port ?? 5730, env };
      const res = c.command ? await runCommand(opts, c.command) : await runBundle(opts);
      if (c.exit !== undefined) expect(res.code).toBe(c.exit);
      else expect(res.code).not.toBe(0);
      expect(res.stdout).toBe('');
      const lines = res.stderr.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as { level: number; msg: string });
      const fatal = lines.filter((l) => l.level === 60);
      expect(fatal).toHaveLength(1);
      if (typeof c.message === 'function') expect(fatal[0]!.msg).toBe(c.message(pgdata));
      else if (typeof c.message === 'string') expect(fatal[0]!.msg).toBe(c.message);
      else expect(fatal[0]!.msg).toMatch(c.message);
      expect(snapshot(caseDir)).toEqual(before);
      for (const secret of SECRETS) expect(res.stderr).not.toContain(secret);
    });
  });
});
