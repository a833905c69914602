/**
 * Renders the configuration files the entrypoint owns. Pure functions: the steps write what these
 * return. pgrepl.conf is included at the end of postgresql.conf, so it overrides the defaults
 * there, while postgresql.auto.conf (ALTER SYSTEM) and -c on the command line still override it:
 * the operator always has the last word.
 */
import { REPLICATION_USER } from '../config/token.js';
import type { PasswordEncryption } from './verifier.js';

export const HBA_BEGIN = '# BEGIN pgrepl: managed by the entrypoint, rewritten on every start';
export const HBA_END = '# END pgrepl';

/** How a standby reaches its upstream. */
export interface StandbyConnection {
  host: string;
  port: number;
  /** Absolute path of the libpq password file holding the replication password. */
  passfile: string;
  applicationName: string;
  /** primary_slot_name, or undefined without slots. */
  slot: string | undefined;
}

export interface NodeSettings {
  major: number;
  socketDir: string;
  slotMaxWal: string | undefined;
  /** Present on a standby. */
  standby?: StandbyConnection | undefined;
}

/** A libpq connection string value: single-quoted, \\ and \' escaped. */
export function conninfoValue(v: string): string {
  return `'${v.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`;
}

/**
 * primary_conninfo, with only keys every supported version knows: what `pg_basebackup -R`
 * writes carries options of the client's libpq (channel_binding, sslsni, ...) that an older
 * server rejects as "invalid connection option", after which it never connects.
 */
export function conninfo(c: StandbyConnection, extra: Record<string, string> = {}): string {
  const pairs: Record<string, string> = {
    host: c.host, port: String(c.port), user: REPLICATION_USER, passfile: c.passfile,
    application_name: c.applicationName, connect_timeout: '10', ...extra,
  };
  return Object.entries(pairs).map(([k, v]) => `${k}=${conninfoValue(v)}`).join(' ');
}

function standbyLines(c: StandbyConnection): string[] {
  return [
    `primary_conninfo = ${confValue(conninfo(c))}`,
    ...(c.slot ? [`primary_slot_name = ${confValue(c.slot)}`] : []),
    `recovery_target_timeline = 'latest'`,
  ];
}

/** A libpq password file line for the replication role, on any host, port and database. */
export function renderPassfile(password: string): string {
  return `*:*:*:${REPLICATION_USER}:${password.replace(/\\/g, '\\\\').replace(/:/g, '\\:')}\n`;
}

/** recovery.conf, for PostgreSQL 11 and older (12 moved these settings into the configuration). */
export function renderRecoveryConf(c: StandbyConnection): string {
  return ['# Managed by pgrepl: rewritten on every start.', `standby_mode = 'on'`, ...standbyLines(c)].join('\n') + '\n';
}

/** Quotes a value for postgresql.conf. */
export function confValue(v: string): string {
  return `'${v.replace(/\\/g, '\\\\').replace(/'/g, "''")}'`;
}

export function renderSettings(s: NodeSettings): string {
  const lines: string[] = [
    '# Managed by pgrepl: rewritten on every start from the environment; edits here are lost.',
    '# Override a setting with ALTER SYSTEM (postgresql.auto.conf is read after this file) or with -c.',
    `listen_addresses = '*'`,
    `unix_socket_directories = ${confValue(s.socketDir)}`,
    'wal_level = replica',
    'max_wal_senders = 10',
    'max_replication_slots = 10',
    'hot_standby = on',
    '# pg_rewind needs hint-bit changes in the WAL when data checksums are off.',
    'wal_log_hints = on',
    '# A floor of retained WAL, so a standby briefly behind can catch up without a slot.',
    s.major >= 13 ? `wal_keep_size = '512MB'` : 'wal_keep_segments = 32',
  ];
  if (s.slotMaxWal !== undefined && s.major >= 13) {
    lines.push(`max_slot_wal_keep_size = ${confValue(s.slotMaxWal)}`);
  }
  if (s.standby && s.major >= 12) {
    lines.push('# This node is a standby (standby.signal); it follows:', ...standbyLines(s.standby));
  }
  return lines.join('\n') + '\n';
}

/** Adds the include line to postgresql.conf's text, once. */
export function withInclude(postgresqlConf: string, includeLine: string, settingsFile: string): string {
  const already = new RegExp(`^\\s*include(_if_exists)?\\s*=?\\s*'${settingsFile.replace(/\./g, '\\.')}'`, 'm');
  if (already.test(postgresqlConf)) return postgresqlConf;
  const sep = postgresqlConf.endsWith('\n') || postgresqlConf === '' ? '' : '\n';
  return `${postgresqlConf}${sep}\n${includeLine}\n`;
}


/**
 * pg_hba.conf with pgrepl's block (re)written at the top. At the top because rules match first
 * to last, and initdb's defaults trust replication from localhost: the replication role must
 * always be asked for its password.
 */
export function withReplicationRules(hba: string, cidrs: string[], method: PasswordEncryption): string {
  const block = [
    HBA_BEGIN,
    ...cidrs.map((c) => `host\treplication\t${REPLICATION_USER}\t${c}\t${method}`),
    '# pg_rewind reads the source through a normal connection to the postgres database:',
    ...cidrs.map((c) => `host\tpostgres\t${REPLICATION_USER}\t${c}\t${method}`),
    HBA_END,
  ].join('\n');
  const start = hba.indexOf(HBA_BEGIN);
  const end = hba.indexOf(HBA_END);
  if (start !== -1 && end > start) {
    return hba.slice(0, start) + block + hba.slice(end + HBA_END.length);
  }
  return `${block}\n\n${hba}`;
}

/**
 * The method of the replication rules in pgrepl's block of a pg_hba.conf, if it has one. A clone
 * carries its upstream's block, whose method matches the verifier the pgrepl role has in the
 * cluster (md5 where password_encryption was md5, the default before 14): a `scram-sha-256` rule
 * would reject an md5 verifier, so a standby keeps the method it was cloned with.
 */
export function replicationMethodIn(hba: string): PasswordEncryption | undefined {
  const start = hba.indexOf(HBA_BEGIN);
  const end = hba.indexOf(HBA_END);
  if (start === -1 || end < start) return undefined;
  const m = /^host\s+replication\s+\S+\s+\S+\s+(md5|scram-sha-256)\s*$/m.exec(hba.slice(start, end));
  return m ? (m[1] as PasswordEncryption) : undefined;
}

/** The line the official image appends once, at initdb: password logins from anywhere. */
export function withHostAuthLine(hba: string, method: string): string {
  const sep = hba.endsWith('\n') ? '' : '\n';
  return `${hba}${sep}\nhost all all all ${method}\n`;
}
