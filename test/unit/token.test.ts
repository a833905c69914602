import { execFileSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { replicationPassword } from '../../src/config/token.js';

/** What docker-pgrepl computed: `echo "$TOKEN" | md5sum`, the hex digest before the two spaces. */
function md5sumOfEcho(token: string): string {
  const out = execFileSync('bash', ['--norc', '--noprofile', '-c', 'echo "$T" | md5sum'], { env: { T: token, PATH: process.env.PATH } }).toString();
  return out.split(' ')[0]!;
}

describe('replication password derivation', () => {
  const tokens = ['abc123', 'thisismytoken', 'with spaces in it', '  leading and trailing  ', 'ünïcødé-トークン', 'quote\'s "and" $dollars', 'x'];
  for (const token of tokens) {
    it(`matches md5sum for ${JSON.stringify(token)}`, () => {
      expect(replicationPassword(token)).toBe(md5sumOfEcho(token));
    });
  }

  it('is lowercase hex of 32 characters', () => {
    expect(replicationPassword('abc123')).toMatch(/^[0-9a-f]{32}$/);
  });

  it('differs between tokens', () => {
    expect(replicationPassword('a')).not.toBe(replicationPassword('b'));
  });
});
