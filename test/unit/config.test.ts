import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { GESTALT_DATABASES, loadConfig } from '../../src/config/env.js';
import { replicationPassword } from '../../src/config/token.js';
import { sanitiseNodeName } from '../../src/config/validators.js';
import { UserError } from '../../src/errors.js';

const load = (env: Record<string, string>) => loadConfig(env, 'My-Host.example');

function errorOf(env: Record<string, string>): string {
  try {
    load(env);
  } catch (err) {
    expect(err).toBeInstanceOf(UserError);
    return (err as Error).message;
  }
  throw new Error('expected loadConfig to fail');
}

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
  it('uses the default token and warns loudly', () => {
    expect(cfg.tokenIsDefault).toBe(true);
    expect(cfg.replicationPassword.reveal()).toBe(replicationPassword('abc123'));
    expect(cfg.warnings.join(' ')).toMatch(/PGREPL_TOKEN is not set/);
  });
  it('names the node after the sanitised hostname', () => {
    expect(cfg.nodeName).toBe('my_host_example');
  });
});

describe('inputs', () => {
  it('reads PGREPL_ROLE case-insensitively', () => {
    expect(load({ PGREPL_ROLE: 'standby', PGREPL_MASTER_IP: '10.0.0.1' }).role).toBe('STANDBY');
    expect(load({ PGREPL_ROLE: 'Primary' }).role).toBe('PRIMARY');
    expect(load({ PGREPL_ROLE: '' }).role).toBe('PRIMARY');
  });
  it('takes the upstream from PGREPL_MASTER_* before the --link variables', () => {
    const cfg = load({
      PGREPL_ROLE: 'STANDBY', PGREPL_MASTER_IP: 'pg1', PGREPL_MASTER_PORT: '6432',
      POSTGRES_PORT_5432_TCP_ADDR: '172.17.0.2', POSTGRES_PORT_5432_TCP_PORT: '5432',
    });
    expect(cfg.upstream).toEqual({ host: 'pg1', port: 6432, source: 'PGREPL_MASTER_IP' });
    const linked = load({ PGREPL_ROLE: 'STANDBY', POSTGRES_PORT_5432_TCP_ADDR: '172.17.0.2', POSTGRES_PORT_5432_TCP_PORT: '5433' });
    expect(linked.upstream).toEqual({ host: '172.17.0.2', port: 5433, source: 'POSTGRES_PORT_5432_TCP_ADDR' });
  });
  it('derives the password from PGREPL_TOKEN', () => {
    const cfg = load({ PGREPL_TOKEN: 's3cret' });
    expect(cfg.replicationPassword.reveal()).toBe(replicationPassword('s3cret'));
    expect(cfg.tokenIsDefault).toBe(false);
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
  it('normalises CIDRs and PGDATA', () => {
    expect(load({ PGREPL_REPLICATION_CIDR: '10.0.0.0/8, 192.168.1.5' }).replicationCidrs).toEqual(['10.0.0.0/8', '192.168.1.5/32']);
    expect(load({ PGDATA: '/mnt/mesos//sandbox/pgdata/' }).pgdata).toBe('/mnt/mesos/sandbox/pgdata');
  });
  it('parses peers with default ports and IPv6', () => {
    expect(load({ PGREPL_PEERS: 'pg1,pg2:6543,[::1]:7000' }).peers).toEqual([
      { host: 'pg1', port: 5432 }, { host: 'pg2', port: 6543 }, { host: '::1', port: 7000 },
    ]);
  });
  it('reads synchronous replication settings, and warns when commits would not wait anyway', () => {
    const cfg = load({});
    expect([cfg.syncStandbys, cfg.syncMethod, cfg.syncCommit]).toEqual([0, 'any', 'on']);
    const sync = load({ PGREPL_SYNC_STANDBYS: '2', PGREPL_SYNC_METHOD: 'FIRST', PGREPL_SYNC_COMMIT: 'Remote_Apply' });
    expect([sync.syncStandbys, sync.syncMethod, sync.syncCommit]).toEqual([2, 'first', 'remote_apply']);
    expect(sync.warnings.join(' ')).not.toMatch(/PGREPL_SYNC/);
    expect(load({ PGREPL_SYNC_STANDBYS: '1', PGREPL_SYNC_COMMIT: 'local' }).warnings.join(' ')).toMatch(
      /PGREPL_SYNC_STANDBYS=1 with PGREPL_SYNC_COMMIT=local: commits do not wait for any standby/,
    );
  });
  it('accepts an archive directory beside PGDATA, not inside it', () => {
    expect(load({ PGDATA: '/data', PGREPL_ARCHIVE_DIR: '/data2/' }).archiveDir).toBe('/data2');
    const cfg = load({ PGREPL_ARCHIVE_DIR: '/srv/archive', PGREPL_SYNC_STANDBYS: '1', PGREPL_PEERS: 'pg1' });
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

/** Each bad input: the exact one-line message, naming the variable, the problem and an example. */
const BAD: [Record<string, string>, string][] = [
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
];

describe('bad inputs', () => {
  for (const [env, message] of BAD) {
    it(`rejects ${JSON.stringify(env).slice(0, 80)}`, () => {
      expect(errorOf(env)).toBe(message);
    });
  }
  it('reports several bad variables one line each', () => {
    const lines = errorOf({ PGPORT: 'x', PGREPL_ROLE: 'y' }).split('\n');
    expect(lines).toHaveLength(2);
    expect(lines.some((l) => l.startsWith('PGPORT='))).toBe(true);
    expect(lines.some((l) => l.startsWith('PGREPL_ROLE='))).toBe(true);
  });
});
