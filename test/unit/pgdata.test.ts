import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { STAGING_CLONE, STAGING_INIT, SWAP_DIR } from '../../src/layout.js';
import { parseMajor } from '../../src/observe/binaries.js';
import { observePgdata } from '../../src/observe/pgdata.js';

const fresh = () => mkdtempSync(join(tmpdir(), 'pgdata-'));

/** A minimal stand-in for a cluster: PG_VERSION and a pg_control with a system identifier and state. */
function fakeCluster(dir: string, major: string, state = 1, sysid = 7123456789012345678n, timeline = 3) {
  mkdirSync(join(dir, 'global'), { recursive: true });
  writeFileSync(join(dir, 'PG_VERSION'), `${major}\n`);
  const control = Buffer.alloc(8192);
  control.writeBigUInt64LE(sysid, 0);
  control.writeUInt32LE(Number(major) >= 11 ? 1300 : 1002, 8);
  control.writeInt32LE(state, 16);
  control.writeUInt32LE(timeline, Number(major) >= 11 ? 48 : 56);
  writeFileSync(join(dir, 'global', 'pg_control'), control);
}

describe('observing PGDATA', () => {
  it('missing and empty', async () => {
    const d = fresh();
    expect(await observePgdata(join(d, 'nope'))).toEqual({ kind: 'missing' });
    expect(await observePgdata(d)).toEqual({ kind: 'empty' });
  });

  it('a file where a directory should be', async () => {
    const d = fresh();
    writeFileSync(join(d, 'f'), '');
    expect((await observePgdata(join(d, 'f'))).kind).toBe('not-a-directory');
  });

  it('a mount point with only lost+found is not a cluster', async () => {
    const d = fresh();
    mkdirSync(join(d, 'lost+found'));
    expect(await observePgdata(d)).toEqual({ kind: 'not-a-cluster', entries: ['lost+found'] });
  });

  it("a primary's cluster, with system identifier and state from pg_control", async () => {
    const d = fresh();
    fakeCluster(d, '15', 6);
    expect(await observePgdata(d)).toEqual({
      kind: 'cluster', major: 15, standby: false, systemIdentifier: '7123456789012345678', state: 'in production', timeline: 3, keptCopies: [], swapPending: false,
    });
  });

  it("a standby's cluster: standby.signal (12+) or recovery.conf (11-)", async () => {
    const a = fresh();
    fakeCluster(a, '15');
    writeFileSync(join(a, 'standby.signal'), '');
    expect(await observePgdata(a)).toMatchObject({ kind: 'cluster', standby: true });
    const b = fresh();
    fakeCluster(b, '11');
    writeFileSync(join(b, 'recovery.conf'), "standby_mode = 'on'\n");
    expect(await observePgdata(b)).toMatchObject({ kind: 'cluster', major: 11, standby: true });
  });

  it('a moved-aside copy alone is neither a non-cluster nor empty: it is the data', async () => {
    const d = fresh();
    mkdirSync(join(d, 'pg_dynshmem', 'pgrepl-aside-20260101T000000Z'), { recursive: true });
    expect(await observePgdata(d)).toEqual({ kind: 'only-kept-copies', keptCopies: ['pgrepl-aside-20260101T000000Z'] });
  });

  it('a kept copy whose WAL move a killed start left half done is named', async () => {
    const d = fresh();
    mkdirSync(join(d, 'pg_dynshmem', 'pgrepl-aside-20260101T000000Z', '.pgrepl-wal'), { recursive: true });
    mkdirSync(join(d, 'pg_dynshmem', 'pgrepl-aside-20250101T000000Z'), { recursive: true });
    expect(await observePgdata(d)).toEqual({
      kind: 'only-kept-copies', keptCopies: ['pgrepl-aside-20250101T000000Z', 'pgrepl-aside-20260101T000000Z'], walMoving: ['pgrepl-aside-20260101T000000Z'],
    });
  });

  it('pg_dynshmem with only the remembered node name is empty', async () => {
    const d = fresh();
    mkdirSync(join(d, 'pg_dynshmem'));
    writeFileSync(join(d, 'pg_dynshmem', 'pgrepl-node-name'), 'n1\n');
    expect(await observePgdata(d)).toEqual({ kind: 'empty' });
  });

  it('interrupted builds', async () => {
    const a = fresh();
    mkdirSync(join(a, STAGING_INIT));
    expect(await observePgdata(a)).toEqual({ kind: 'interrupted-build', build: 'init', staging: STAGING_INIT, keptCopies: [] });
    const b = fresh();
    mkdirSync(join(b, STAGING_CLONE));
    mkdirSync(join(b, 'pg_dynshmem', 'pgrepl-aside-20260101T000000Z'), { recursive: true });
    expect(await observePgdata(b)).toEqual({ kind: 'interrupted-build', build: 'clone', staging: STAGING_CLONE, keptCopies: ['pgrepl-aside-20260101T000000Z'] });
  });

  it('a finished build half moved in is a cluster with a pending swap', async () => {
    const d = fresh();
    fakeCluster(join(d, SWAP_DIR), '15');
    mkdirSync(join(d, 'base')); // already moved
    expect(await observePgdata(d)).toMatchObject({ kind: 'cluster', major: 15, swapPending: true, systemIdentifier: '7123456789012345678' });
  });

  it('parses postgres --version', () => {
    expect(parseMajor('postgres (PostgreSQL) 15.18 (Debian 15.18-0+deb12u1)')).toBe(15);
    expect(parseMajor('postgres (PostgreSQL) 9.6.24')).toBe(9.6);
    expect(parseMajor('postgres (PostgreSQL) 18beta1')).toBe(18);
    expect(parseMajor('nonsense')).toBeUndefined();
  });
});
