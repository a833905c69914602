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
  /** libpq's TLS keys (sslmode, sslrootcert; postgres/tls.ts), none without TLS. */
  tls?: Record<string, string> | undefined;
}

/**
 * The WAL archive: a directory (a volume) that primaries archive every WAL segment into and
 * standbys restore from. Both commands run pgrepl itself (`self`: the Node binary and the bundle,
 * as this process was started), so they work in the image and outside it alike.
 */
export interface WalArchive {
  dir: string;
  self: readonly string[];
}

export type SyncCommit = 'on' | 'remote_apply' | 'remote_write' | 'local' | 'off';

/** Synchronous replication: how many standbys confirm a commit, chosen how, and what they confirm. */
export interface SyncReplication {
  standbys: number;
  method: 'any' | 'first';
  commit: SyncCommit;
}

export interface NodeSettings {
  major: number;
  socketDir: string;
  slotMaxWal: string | undefined;
  /** Present on a standby. */
  standby?: StandbyConnection | undefined;
  /** Present when PGREPL_ARCHIVE_DIR is set. */
  archive?: WalArchive | undefined;
  sync?: SyncReplication | undefined;
  /** The server's certificate and key (relative to the data directory) when TLS is on. */
  tls?: { cert: string; key: string } | undefined;
  /** A standby's wait between attempts to reach its upstream, when not postgres's default (5 s). */
  walRetrySeconds?: number | undefined;
}

/** A word for `sh -c`: single-quoted, so spaces, quotes, $ and * in it are taken literally. */
export function shellWord(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

/** A literal word in archive_command/restore_command, where % introduces a placeholder (%p, %f). */
const commandWord = (s: string): string => shellWord(s).replace(/%/g, '%%');

/** archive_command: `pgrepl archive-wal --dir DIR %p %f` (%p relative to PGDATA, %f the file name). */
export function archiveCommand(a: WalArchive): string {
  return [...a.self, 'archive-wal', '--dir', a.dir].map(commandWord).join(' ') + ' %p %f';
}

/** restore_command: `pgrepl restore-wal --dir DIR %f %p`; exits 1 when the archive lacks the file. */
export function restoreCommand(a: WalArchive): string {
  return [...a.self, 'restore-wal', '--dir', a.dir].map(commandWord).join(' ') + ' %f %p';
}

/** synchronous_standby_names for n standbys: any of them (quorum) or the first in priority order. */
export function syncStandbyNames(major: number, n: number, method: 'any' | 'first'): string {
  if (major < 10) return `${n} (*)`; // 9.6: priority only, with this syntax
  return `${method === 'first' ? 'FIRST' : 'ANY'} ${n} (*)`;
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
    application_name: c.applicationName, connect_timeout: '10', ...c.tls, ...extra,
  };
  return Object.entries(pairs).map(([k, v]) => `${k}=${conninfoValue(v)}`).join(' ');
}

function standbyLines(c: StandbyConnection, archive: WalArchive | undefined): string[] {
  return [
    `primary_conninfo = ${confValue(conninfo(c))}`,
    ...(c.slot ? [`primary_slot_name = ${confValue(c.slot)}`] : []),
    `recovery_target_timeline = 'latest'`,
    ...(archive ? ['# WAL the upstream no longer has comes from the archive:', `restore_command = ${confValue(restoreCommand(archive))}`] : []),
  ];
}

/** A libpq password file line for the replication role, on any host, port and database. */
export function renderPassfile(password: string): string {
  return `*:*:*:${REPLICATION_USER}:${password.replace(/\\/g, '\\\\').replace(/:/g, '\\:')}\n`;
}

/** recovery.conf, for PostgreSQL 11 and older (12 moved these settings into the configuration). */
export function renderRecoveryConf(c: StandbyConnection, archive?: WalArchive): string {
  return ['# Managed by pgrepl: rewritten on every start.', `standby_mode = 'on'`, ...standbyLines(c, archive)].join('\n') + '\n';
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
  if (s.archive) {
    // On standbys too: archiving starts when one is promoted (archive_mode=on does not archive
    // during recovery), so the new primary archives its timeline from its first segment on.
    lines.push(
      '# Every WAL segment is archived (pgrepl archive-wal: atomic, never overwrites a different file):',
      'archive_mode = on',
      `archive_command = ${confValue(archiveCommand(s.archive))}`,
    );
  }
  if (s.tls) {
    lines.push(
      '# TLS: replication and pg_rewind connect only over it (hostssl in pg_hba.conf).',
      'ssl = on',
      `ssl_cert_file = ${confValue(s.tls.cert)}`,
      `ssl_key_file = ${confValue(s.tls.key)}`,
    );
  }
  if (s.sync) {
    // On standbys too, so that a promoted standby keeps it; a standby ignores both.
    if (s.sync.standbys > 0) {
      lines.push(`synchronous_standby_names = ${confValue(syncStandbyNames(s.major, s.sync.standbys, s.sync.method))}`);
    }
    lines.push(`synchronous_commit = ${s.sync.commit}`);
  }
  if (s.standby && s.walRetrySeconds !== undefined) {
    lines.push(
      '# The upstream refused this node at start: try again (and log why) this often, not every 5 s.',
      `wal_retrieve_retry_interval = '${s.walRetrySeconds}s'`,
    );
  }
  if (s.standby && s.major >= 12) {
    lines.push('# This node is a standby (standby.signal); it follows:', ...standbyLines(s.standby, s.archive));
  } else if (s.archive && s.major >= 12) {
    // Used only in recovery: by pg_rewind --restore-target-wal when this node rejoins as a standby.
    lines.push(`restore_command = ${confValue(restoreCommand(s.archive))}`);
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


/** Where pgrepl's block is in a pg_hba.conf: from its first line to just after its last; undefined if it has none. */
function replicationBlock(hba: string): { start: number; end: number } | undefined {
  const start = hba.indexOf(HBA_BEGIN);
  const end = hba.indexOf(HBA_END);
  return start !== -1 && end > start ? { start, end: end + HBA_END.length } : undefined;
}

/**
 * pg_hba.conf with pgrepl's block (re)written at the top. At the top because rules match first
 * to last, and initdb's defaults trust replication from localhost: the replication role must
 * always be asked for its password. With TLS the rules are hostssl: a connection of the role
 * without encryption matches none of them and no rule further down, so it is refused.
 */
export function withReplicationRules(hba: string, cidrs: string[], method: PasswordEncryption, tls = false): string {
  const type = tls ? 'hostssl' : 'host';
  const block = [
    HBA_BEGIN,
    ...cidrs.map((c) => `${type}\treplication\t${REPLICATION_USER}\t${c}\t${method}`),
    '# pg_rewind reads the source through a normal connection to the postgres database:',
    ...cidrs.map((c) => `${type}\tpostgres\t${REPLICATION_USER}\t${c}\t${method}`),
    // ("all" does not match replication connections: both are named.)
    ...(tls ? [
      `# TLS is on (PGREPL_TLS_*): without it, the role ${REPLICATION_USER} may not connect from anywhere.`,
      `hostnossl\treplication\t${REPLICATION_USER}\tall\treject`,
      `hostnossl\tall\t${REPLICATION_USER}\tall\treject`,
    ] : []),
    HBA_END,
  ].join('\n');
  const found = replicationBlock(hba);
  if (found) return hba.slice(0, found.start) + block + hba.slice(found.end);
  return `${block}\n\n${hba}`;
}

/** pg_hba.conf without pgrepl's block (replication off): as it was before the block was added. */
export function withoutReplicationRules(hba: string): string {
  const found = replicationBlock(hba);
  if (!found) return hba;
  return hba.slice(0, found.start) + hba.slice(found.end).replace(/^\n\n?/, '');
}

/**
 * The method of the replication rules in pgrepl's block of a pg_hba.conf, if it has one. A clone
 * carries its upstream's block, whose method matches the verifier the pgrepl role has in the
 * cluster (md5 where password_encryption was md5, the default before 14): a `scram-sha-256` rule
 * would reject an md5 verifier, so a standby keeps the method it was cloned with.
 */
export function replicationMethodIn(hba: string): PasswordEncryption | undefined {
  const found = replicationBlock(hba);
  if (!found) return undefined;
  const m = /^host(?:ssl)?\s+replication\s+\S+\s+\S+\s+(md5|scram-sha-256)\s*$/m.exec(hba.slice(found.start, found.end));
  return m ? (m[1] as PasswordEncryption) : undefined;
}

/** The line the official image appends once, at initdb: password logins from anywhere. */
export function withHostAuthLine(hba: string, method: string): string {
  const sep = hba.endsWith('\n') ? '' : '\n';
  return `${hba}${sep}\nhost all all all ${method}\n`;
}
