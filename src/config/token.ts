import { createHash } from 'node:crypto';

/** The token docker-pgrepl used when none was given; still accepted, with a loud warning. */
export const DEFAULT_TOKEN = 'abc123';

/** The replication role's name, fixed since docker-pgrepl: old and new nodes must agree on it. */
export const REPLICATION_USER = 'pgrepl';

/**
 * The password of the replication role, derived exactly as docker-pgrepl did with
 * `echo $TOKEN | md5sum`: the lowercase hex MD5 of the token's UTF-8 bytes followed by a newline.
 * Keeping this byte-for-byte lets nodes of the old image and of this one replicate from each other.
 */
export function replicationPassword(token: string): string {
  return createHash('md5').update(Buffer.from(token + '\n', 'utf8')).digest('hex');
}
