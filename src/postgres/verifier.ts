/**
 * Password verifiers computed on our side, so that `ALTER ROLE ... PASSWORD` carries a verifier
 * and never the password itself: PostgreSQL logs the text of a failing statement, and a verifier
 * in a log line is not a usable password. Same formats as the server's own:
 *   md5:            "md5" + md5hex(password + username)
 *   scram-sha-256:  SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>   (RFC 5802/7677)
 * Our passwords are hex strings, so SASLprep leaves them unchanged.
 */
import { createHash, createHmac, pbkdf2Sync, randomBytes } from 'node:crypto';

export type PasswordEncryption = 'scram-sha-256' | 'md5';

/** password_encryption as the server shows it; before 10 it was a boolean meaning md5. */
export const asPasswordEncryption = (shown: string): PasswordEncryption => (shown === 'scram-sha-256' ? 'scram-sha-256' : 'md5');

export function md5Verifier(password: string, user: string): string {
  return 'md5' + createHash('md5').update(password + user).digest('hex');
}

export function scramVerifier(password: string, salt: Buffer = randomBytes(16), iterations = 4096): string {
  const salted = pbkdf2Sync(password, salt, iterations, 32, 'sha256');
  const clientKey = createHmac('sha256', salted).update('Client Key').digest();
  const storedKey = createHash('sha256').update(clientKey).digest();
  const serverKey = createHmac('sha256', salted).update('Server Key').digest();
  return `SCRAM-SHA-256$${iterations}:${salt.toString('base64')}$${storedKey.toString('base64')}:${serverKey.toString('base64')}`;
}

export function passwordVerifier(method: PasswordEncryption, password: string, user: string): string {
  return method === 'md5' ? md5Verifier(password, user) : scramVerifier(password);
}
