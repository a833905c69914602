/**
 * Bad input, through the bundle: each case ends in one fatal log line with the exact message, a
 * non-zero exit, and the data directory exactly as it was (nothing created, chowned or removed).
 */
import { lstatSync, mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { removeScratch, runBundle, scratchDir } from '../support/node.js';

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
  env?: Record<string, string | undefined>;
  /** Prepares the case directory; returns PGDATA. */
  setup?: (caseDir: string) => string;
  message: string | RegExp;
}

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
];

describe('bad input through the bundle', () => {
  it('covers at least 12 cases', () => expect(CASES.length).toBeGreaterThanOrEqual(12));

  CASES.forEach((c, i) => {
    it(c.name, async () => {
      const caseDir = join(dir, `case${i}`);
      mkdirSync(caseDir, { mode: 0o755 });
      const pgdata = c.setup ? c.setup(caseDir) : join(caseDir, 'data');
      const before = snapshot(caseDir);
      const res = await runBundle({ pgdata, port: 5730, env: c.env });
      expect(res.code).not.toBe(0);
      expect(res.stdout).toBe('');
      const lines = res.stderr.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as { level: number; msg: string });
      const fatal = lines.filter((l) => l.level === 60);
      expect(fatal).toHaveLength(1);
      if (typeof c.message === 'string') expect(fatal[0]!.msg).toBe(c.message);
      else expect(fatal[0]!.msg).toMatch(c.message);
      expect(snapshot(caseDir)).toEqual(before);
    });
  });
});
