/**
 * envalid validators for pgrepl's inputs. Each one throws a message that says what is wrong with
 * the value and shows a valid example; env.ts prefixes the variable's name, so the operator reads
 * one complete line such as
 *   PGREPL_ROLE="leader" is not valid: must be PRIMARY or STANDBY (e.g. PGREPL_ROLE=STANDBY)
 */
import { accessSync, constants as fsConstants, statSync } from 'node:fs';
import { isIPv4, isIPv6 } from 'node:net';
import { makeValidator } from 'envalid';

export class InvalidValue extends Error {}

function invalid(problem: string): never {
  throw new InvalidValue(problem);
}

/** One of a fixed set of words, compared case-insensitively; returns the canonical spelling. */
export const oneOf = <T extends string>(choices: readonly T[], example: string) =>
  makeValidator<T>((input) => {
    const hit = choices.find((c) => c.toLowerCase() === input.trim().toLowerCase());
    return hit ?? invalid(`must be ${choices.join(' or ')} (e.g. ${example})`);
  });

export const flag = (example: string) =>
  makeValidator<boolean>((input) => {
    const v = input.trim().toLowerCase();
    if (['1', 'true', 'yes', 'on'].includes(v)) return true;
    if (['0', 'false', 'no', 'off'].includes(v)) return false;
    return invalid(`must be true or false (also 1/0, yes/no, on/off) (e.g. ${example})`);
  });

export const tcpPort = (example: string) =>
  makeValidator<number>((input) => {
    const n = /^\d+$/.test(input.trim()) ? Number(input.trim()) : NaN;
    return n >= 1 && n <= 65535 ? n : invalid(`must be a TCP port from 1 to 65535 (e.g. ${example})`);
  });

export const positiveInt = (example: string) =>
  makeValidator<number>((input) => {
    const n = /^\d+$/.test(input.trim()) ? Number(input.trim()) : NaN;
    return n >= 1 && Number.isSafeInteger(n) ? n : invalid(`must be a whole number of 1 or more (e.g. ${example})`);
  });

export const nonNegativeInt = (example: string) =>
  makeValidator<number>((input) => {
    const n = /^\d+$/.test(input.trim()) ? Number(input.trim()) : NaN;
    return Number.isSafeInteger(n) ? n : invalid(`must be a whole number, 0 or more (e.g. ${example})`);
  });

export function checkAbsolutePath(input: string, example: string): string {
  if (!input.startsWith('/')) invalid(`must be an absolute path (e.g. ${example})`);
  if (input.includes('\0') || input.includes('\n')) invalid(`must not contain NUL or newline characters (e.g. ${example})`);
  // Normalise: no trailing slash, no doubled slashes, so paths compare and join predictably.
  return input.replace(/\/+/g, '/').replace(/(.)\/$/, '$1');
}

export const absolutePath = (example: string) => makeValidator<string>((input) => checkAbsolutePath(input, example));

/** A host name or an IP address (IPv6 with or without brackets). */
export function checkHost(input: string, example: string): string {
  const h = input.trim().replace(/^\[(.*)\]$/, '$1');
  if (isIPv4(h) || isIPv6(h)) return h;
  if (h.length > 0 && h.length <= 253 && /^[A-Za-z0-9]([A-Za-z0-9_.-]*[A-Za-z0-9])?$/.test(h)) return h;
  return invalid(`must be a host name or IP address (e.g. ${example})`);
}

export const host = (example: string) => makeValidator<string>((input) => checkHost(input, example));

/** A PostgreSQL identifier we create: non-empty, at most 63 bytes, no NUL. */
export const identifier = (example: string) =>
  makeValidator<string>((input) => {
    if (input.length === 0) invalid(`must not be empty (e.g. ${example})`);
    if (Buffer.byteLength(input) > 63) invalid(`is longer than PostgreSQL's 63-byte limit for names (e.g. ${example})`);
    if (input.includes('\0')) invalid(`must not contain NUL characters (e.g. ${example})`);
    return input;
  });

/** A comma-separated list of database names; an empty value means none. */
export const databaseList = (example: string) =>
  makeValidator<string[]>((input) => {
    if (input.trim() === '') return [];
    const names = input.split(',').map((s) => s.trim());
    for (const n of names) {
      if (n === '') invalid(`has an empty name in the list (e.g. ${example}, or empty for none)`);
      if (Buffer.byteLength(n) > 63) invalid(`has "${n}", longer than PostgreSQL's 63-byte limit (e.g. ${example})`);
    }
    return [...new Set(names)];
  });

/** Replication slot / application names: lower-case letters, digits and underscores. */
export const nodeName = (example: string) =>
  makeValidator<string>((input) => {
    if (/^[a-z0-9_]{1,63}$/.test(input)) return input;
    return invalid(`must be 1-63 lower-case letters, digits or underscores, as a replication slot name (e.g. ${example})`);
  });

/** What the hostname becomes when no PGREPL_NODE_NAME is given. */
export function sanitiseNodeName(hostname: string): string {
  const s = hostname.toLowerCase().replace(/[^a-z0-9_]/g, '_').slice(0, 63);
  return s.length > 0 ? s : 'pgrepl';
}

/** `all`, `samehost`, `samenet`, or comma-separated CIDRs/addresses for pg_hba.conf. */
export const cidrList = (example: string) =>
  makeValidator<string[]>((input) => {
    const items = input.split(',').map((s) => s.trim());
    if (items.length === 1 && ['all', 'samehost', 'samenet'].includes(items[0]!.toLowerCase())) {
      return [items[0]!.toLowerCase()];
    }
    for (const item of items) {
      const [addr, bits, extra] = item.split('/');
      const max = isIPv4(addr ?? '') ? 32 : isIPv6(addr ?? '') ? 128 : 0;
      const ok = max > 0 && extra === undefined && (bits === undefined || (/^\d+$/.test(bits) && Number(bits) <= max));
      if (!ok) invalid(`has "${item}", which is not an address or CIDR (e.g. ${example}, or all)`);
    }
    return items.map((i) => (i.includes('/') ? i : `${i}/${isIPv4(i) ? 32 : 128}`));
  });

/** A PostgreSQL size (`max_slot_wal_keep_size`): -1 for no limit, or a number with kB/MB/GB/TB. */
export const walSize = (example: string) =>
  makeValidator<string>((input) => {
    const v = input.trim();
    if (v === '-1' || /^\d+\s*(kB|MB|GB|TB)?$/.test(v)) return v.replace(/\s+/g, '');
    return invalid(`must be -1 or a size such as 512MB or 10GB (units kB, MB, GB, TB) (e.g. ${example})`);
  });

export interface HostPort {
  host: string;
  port: number;
}

/** `host:port,host:port` ([v6]:port for IPv6); the port defaults to 5432. */
export const peerList = (example: string) =>
  makeValidator<HostPort[]>((input) => {
    if (input.trim() === '') return [];
    return input.split(',').map((raw) => parseHostPort(raw.trim(), example));
  });

/** [host, port or undefined] of `host`, `host:port`, `[v6]` or `[v6]:port`. */
const splitHostPort = (raw: string) => /^\[([^\]]+)\](?::(\d+))?$/.exec(raw) ?? /^([^:]+)(?::(\d+))?$/.exec(raw);

export function parseHostPort(raw: string, example: string): HostPort {
  const m = splitHostPort(raw);
  if (!m) return invalid(`has "${raw}", which is not host or host:port (e.g. ${example})`);
  const port = m[2] === undefined ? 5432 : Number(m[2]);
  if (!(port >= 1 && port <= 65535)) invalid(`has port "${m[2]}" out of range 1-65535 (e.g. ${example})`);
  return { host: checkHost(m[1]!, example), port };
}

/** Exactly `host:port` (`[v6]:port`): an address others connect to, or one to listen on. */
export const hostAndPort = (example: string) =>
  makeValidator<HostPort>((input) => {
    const raw = input.trim();
    if (splitHostPort(raw)?.[2] === undefined) invalid(`must be host:port ([v6]:port for IPv6) (e.g. ${example})`);
    return parseHostPort(raw, example);
  });

/** `user:password@host` (a URL's credentials): a value with an @ in it is never quoted in a message. */
export const mayHoldCredentials = (value: string): boolean => value.includes('@');

/**
 * etcd v3 client URLs: comma-separated `http(s)://host:port`, one scheme for all (the TLS and auth
 * settings apply to every member); duplicates dropped.
 */
export const etcdEndpoints = (example: string) =>
  makeValidator<string[]>((input) => {
    const urls: string[] = [];
    for (const raw of input.split(',').map((s) => s.trim())) {
      if (raw === '') invalid(`has an empty URL in the list (e.g. ${example})`);
      if (mayHoldCredentials(raw)) {
        invalid(`has user:password@ in a URL: give them in PGREPL_ETCD_USER and PGREPL_ETCD_PASSWORD (e.g. ${example})`);
      }
      const m = /^(https?):\/\/([^/]+?)\/?$/i.exec(raw);
      if (!m || splitHostPort(m[2]!)?.[2] === undefined) {
        invalid(`has "${raw}", which is not an http:// or https:// URL with a host and a port (e.g. ${example})`);
      }
      const { host: h, port } = parseHostPort(m[2]!, example);
      urls.push(`${m[1]!.toLowerCase()}://${isIPv6(h) ? `[${h}]` : h}:${port}`);
    }
    if (new Set(urls.map((u) => u.split(':')[0])).size > 1) {
      invalid(`mixes http:// and https:// URLs: use one scheme for every member (e.g. ${example})`);
    }
    return [...new Set(urls)];
  });

/** An absolute path of a regular file this process can read (certificates, keys). */
export const readableFile = (example: string) =>
  makeValidator<string>((input) => {
    const path = checkAbsolutePath(input, example);
    try {
      accessSync(path, fsConstants.R_OK);
      if (!statSync(path).isFile()) invalid(`is not a regular file; mount the file there (e.g. ${example})`);
    } catch (err) {
      if (err instanceof InvalidValue) throw err;
      invalid(`cannot be read (${(err as NodeJS.ErrnoException).code ?? 'error'}); mount the file there (e.g. ${example})`);
    }
    return path;
  });

/** One segment of an etcd key (/pgrepl/<segment>/...): no slash, nothing a shell or a URL mangles. */
export const keySegment = (example: string) =>
  makeValidator<string>((input) => {
    if (/^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$/.test(input)) return input;
    return invalid(`must be 1-63 letters, digits, dots, dashes or underscores, starting with a letter or digit (e.g. ${example})`);
  });

/** A name without control characters (an etcd user). */
export const printableName = (example: string) =>
  makeValidator<string>((input) => {
    if (/^[^\x00-\x1f\x7f]+$/.test(input)) return input;
    return invalid(`must not contain control characters (e.g. ${example})`);
  });

const BYTE_UNITS: Record<string, number> = { '': 1, b: 1, kb: 1024, mb: 1024 ** 2, gb: 1024 ** 3, tb: 1024 ** 4 };

/** Bytes: a whole number, or with a unit kB, MB, GB, TB (powers of 1024, as PostgreSQL's sizes). */
export const byteSize = (example: string) =>
  makeValidator<number>((input) => {
    const m = /^(\d+)\s*([kmgt]?b)?$/i.exec(input.trim());
    const n = m ? Number(m[1]) * BYTE_UNITS[(m[2] ?? '').toLowerCase()]! : NaN;
    return Number.isSafeInteger(n) ? n : invalid(`must be a number of bytes, or a size such as 512kB or 16MB (units kB, MB, GB, TB) (e.g. ${example})`);
  });

/** The pg_hba.conf methods the official image accepts in POSTGRES_HOST_AUTH_METHOD. */
export const HBA_METHODS = [
  'trust', 'reject', 'scram-sha-256', 'md5', 'password', 'gss', 'sspi', 'ident', 'peer', 'ldap', 'radius', 'cert', 'pam', 'bsd',
] as const;
export type HbaMethod = (typeof HBA_METHODS)[number];

export const hbaMethod = (example: string) =>
  makeValidator<HbaMethod>((input) => {
    const hit = HBA_METHODS.find((m) => m === input.trim());
    return hit ?? invalid(`is not a pg_hba.conf method; use one of ${HBA_METHODS.join(', ')} (e.g. ${example})`);
  });
