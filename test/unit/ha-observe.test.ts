/** The pure parts of src/ha/observe.ts: reading primary_conninfo and synchronous_standby_names. */
import { describe, expect, it } from 'vitest';
import { conninfoAddress, requiredStandbys } from '../../src/ha/observe.js';

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
