import { createHash, createHmac, pbkdf2Sync } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { md5Verifier, scramVerifier } from '../../src/postgres/verifier.js';

describe('password verifiers', () => {
  it('md5 is "md5" + md5(password + user), as PostgreSQL stores it', () => {
    expect(md5Verifier('secret', 'pgrepl')).toBe('md5' + createHash('md5').update('secretpgrepl').digest('hex'));
  });
  it('SCRAM-SHA-256 has the server format and keys that check a client proof', () => {
    const salt = Buffer.from('0123456789abcdef');
    const v = scramVerifier('pencil', salt, 4096);
    const m = /^SCRAM-SHA-256\$4096:([^$]+)\$([^:]+):(.+)$/.exec(v);
    expect(m).not.toBeNull();
    expect(Buffer.from(m![1]!, 'base64')).toEqual(salt);
    // A client that knows the password derives the same StoredKey (RFC 5802 §3).
    const salted = pbkdf2Sync('pencil', salt, 4096, 32, 'sha256');
    const clientKey = createHmac('sha256', salted).update('Client Key').digest();
    expect(m![2]).toBe(createHash('sha256').update(clientKey).digest('base64'));
    expect(scramVerifier('pencil', salt, 4096)).toBe(v);
    expect(scramVerifier('pencil')).not.toBe(scramVerifier('pencil'));
  });
});
