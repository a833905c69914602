/** The pure parts of the HA observation: primary_conninfo, synchronous_standby_names, a WAL record's end. */
import { describe, expect, it } from 'vitest';
import { conninfoAddress, requiredStandbys } from '../../src/ha/observe.js';
import { recordEnd } from '../../src/observe/checkpoint-end.js';

describe('conninfoAddress: host:port of primary_conninfo, nothing else', () => {
  it("reads what pgrepl writes (quoted values), and libpq's plain form", () => {
    expect(conninfoAddress("host='10.0.0.1' port='5433' user='pgrepl' passfile='/var/lib/x' application_name='n2' connect_timeout='10'")).toBe('10.0.0.1:5433');
    expect(conninfoAddress('host=db1 port=5432 user=pgrepl password=secret')).toBe('db1:5432');
    expect(conninfoAddress("user=pgrepl host = 'my host' ")).toBe('my host:5432');
    expect(conninfoAddress("hostaddr=127.0.0.1 port=5931 password='it\\'s'")).toBe('127.0.0.1:5931');
  });
  it('no host: undefined (replays only what it has)', () => {
    expect(conninfoAddress('')).toBeUndefined();
    expect(conninfoAddress("user='pgrepl'")).toBeUndefined();
  });
});

describe('requiredStandbys: who synchronous_standby_names makes acknowledge every commit', () => {
  it('as many required as listed: all of them', () => {
    expect(requiredStandbys('FIRST 2 (n2, n3)')).toEqual(['n2', 'n3']);
    expect(requiredStandbys('ANY 1 ("n-2")')).toEqual(['n-2']);
    expect(requiredStandbys('2 (n2,n3)')).toEqual(['n2', 'n3']);
    expect(requiredStandbys('n2')).toEqual(['n2']);
  });
  it("the start-up's '*': any standby", () => {
    expect(requiredStandbys('FIRST 1 (*)')).toEqual(['*']);
    expect(requiredStandbys('ANY 2 (*)')).toEqual(['*']);
  });
  it('fewer required than listed, or nothing set: none in particular', () => {
    expect(requiredStandbys('FIRST 1 (n2, n3)')).toEqual([]);
    expect(requiredStandbys('ANY 1 (n2, n3)')).toEqual([]);
    expect(requiredStandbys('n2, n3')).toEqual([]);
    expect(requiredStandbys('')).toEqual([]);
  });
});

describe('recordEnd: where a WAL record ends (the shutdown checkpoint a standby must have received)', () => {
  const SEG = 16n * 1024n * 1024n;
  it('within a page: start + MAXALIGN(length)', () => {
    expect(recordEnd(0x3000028n, 114, SEG)).toBe(0x30000a0n);
  });
  it('ending exactly at a page boundary: the boundary, not past the next header', () => {
    expect(recordEnd(8192n - 120n, 114, SEG)).toBe(8192n);
  });
  it('crossing a page: skips the short page header (24 bytes)', () => {
    expect(recordEnd(8192n - 16n, 114, SEG)).toBe(8192n + 24n + 104n);
  });
  it("crossing into the next segment: skips its first page's long header (40 bytes)", () => {
    expect(recordEnd(SEG - 16n, 114, SEG)).toBe(SEG + 40n + 104n);
  });
});
