import { createHash } from 'node:crypto';

/** The replication role's name, fixed since docker-pgrepl: old and new nodes must agree on it. */
export const REPLICATION_USER = 'pgrepl';

/**
 * The password of the replication role, derived exactly as docker-pgrepl did with
 * `echo $TOKEN | md5sum`: the lowercase hex MD5 of the token's UTF-8 bytes followed by a newline.
 * Keeping this byte-for-byte lets nodes of the old image and of this one replicate from each other
 * (docker-pgrepl's default token, abc123, works too when it is set on purpose).
 */
export function replicationPassword(token: string): string {
  return createHash('md5').update(Buffer.from(token + '\n', 'utf8')).digest('hex');
}
