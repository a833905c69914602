/**
 * The configuration: every environment variable pgrepl reads, validated with envalid before
 * anything touches PGDATA. A bad value ends in one line per variable that names it, says what is
 * wrong and shows a valid example (UserError). Secrets are wrapped in Secret so they cannot be
 * logged by accident.
 */
import { readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { cleanEnv, str } from 'envalid';
import { UserError } from '../errors.js';
import { checkHaOnly, haConfig, haSpec, type HaConfig } from './ha.js';
import { Secret } from './secret.js';
import { tlsConfig, type TlsConfig } from './tls.js';
import type { SyncCommit } from '../postgres/settings.js';
import { replicationPassword } from './token.js';
import { shellWords, ShellWordsError } from '../util/shell-words.js';
import {
  absolutePath, cidrList, databaseList, flag, hbaMethod, host, identifier, InvalidValue, mayHoldCredentials, nodeName,
  nonNegativeInt, oneOf, peerList, positiveInt, sanitiseNodeName, tcpPort, walSize,
  type HbaMethod, type HostPort,
} from './validators.js';

export type Role = 'PRIMARY' | 'STANDBY';
export type { HaConfig } from './ha.js';
export type { TlsConfig } from './tls.js';

export const GESTALT_DATABASES = [
  'gestalt-security', 'gestalt-meta', 'gestalt-lambda', 'gestalt-laser', 'gestalt-apigateway', 'gestalt-kong',
];

export interface Upstream extends HostPort {
  /** Which variables named it, for messages. */
  source: 'PGREPL_MASTER_IP' | 'POSTGRES_PORT_5432_TCP_ADDR' | 'the leader key in etcd';
}

export interface Config {
  role: Role;
  upstream: Upstream | undefined;
  nodeName: string;
  /** PGREPL_NODE_NAME was given; otherwise nodeName comes from the host name (see state/node-name.ts). */
  nodeNameFromEnv: boolean;
  pgdata: string;
  port: number;
  /** Where this node's Unix socket lives (the official image's and Debian's default). */
  socketDir: string;
  /** PGREPL_TOKEN; without it a PRIMARY runs with replication off (a STANDBY and HA mode refuse). */
  token: Secret | undefined;
  /** A token was given: the pgrepl role logs in and pg_hba lets it replicate. */
  replicationOn: boolean;
  /**
   * md5 hex of token + "\n": the pgrepl role's password. Without a token its reveal() throws:
   * only a PRIMARY may start without one, and a PRIMARY without peers never logs in as pgrepl.
   */
  replicationPassword: Secret;
  debug: boolean;
  logFormat: 'json' | 'pretty';
  postgresUser: string;
  postgresPassword: Secret | undefined;
  postgresDb: string;
  initdbArgs: string[];
  initdbWaldir: string | undefined;
  hostAuthMethod: HbaMethod | undefined;
  upstreamTimeoutSeconds: number;
  /** `pgrepl health --standby`: how long a standby may go without streaming before it is unhealthy. */
  healthStreamGraceSeconds: number;
  slots: boolean;
  slotMaxWal: string | undefined;
  reclone: 'never' | 'auto';
  replicationCidrs: string[];
  gestaltDatabases: string[];
  initdbDir: string;
  archiveDir: string | undefined;
  syncStandbys: number;
  syncMethod: 'any' | 'first';
  syncCommit: SyncCommit;
  peers: HostPort[];
  fence: 'rejoin' | 'refuse';
  /** TLS for replication and rewind (PGREPL_TLS_*, config/tls.ts); undefined: off. */
  tls: TlsConfig | undefined;
  /**
   * HA mode (PGREPL_ETCD_ENDPOINTS, SPEC §7); undefined without it. With it, upstream and peers
   * are empty (etcd decides) and role is only a bootstrap hint.
   */
  ha?: HaConfig;
  /** Things worth saying loudly at start, e.g. that replication is off. */
  warnings: string[];
}

export const SOCKET_DIR = '/var/run/postgresql';

/** Variables that may instead be given as a file (Docker/Kubernetes secrets), as in the official image. */
const FILE_VARIANTS = ['POSTGRES_PASSWORD', 'POSTGRES_USER', 'POSTGRES_DB', 'POSTGRES_INITDB_ARGS', 'PGREPL_TOKEN', 'PGREPL_ETCD_PASSWORD',
  'PGREPL_TLS_CERT', 'PGREPL_TLS_KEY', 'PGREPL_TLS_CA'];

/** Values never echoed back in an error message. */
const SECRET_VARS = new Set(['POSTGRES_PASSWORD', 'PGREPL_TOKEN', 'PGREPL_ETCD_PASSWORD', 'PGREPL_TLS_KEY']);

/** Variables where an empty value means something (an empty list), not "unset". */
const EMPTY_IS_A_VALUE = new Set(['PGREPL_GESTALT_DATABASES']);

type Env = Record<string, string | undefined>;

/** Resolves X_FILE into X (file content without trailing newlines, like the shell's $(< file)). */
function resolveFileVariants(env: Env): Env {
  const out: Env = { ...env };
  for (const name of FILE_VARIANTS) {
    const file = env[`${name}_FILE`];
    if (file === undefined || file === '') continue;
    if (env[name] !== undefined && env[name] !== '') {
      throw new UserError(`${name} and ${name}_FILE are both set: keep only one of them`);
    }
    try {
      out[name] = readFileSync(file, 'utf8').replace(/\n+$/, '');
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code ?? 'error';
      throw new UserError(`${name}_FILE=${file} cannot be read (${code}): mount the file there or unset ${name}_FILE`);
    }
  }
  return out;
}

function withoutEmptyValues(env: Env): Env {
  const out: Env = {};
  for (const [k, v] of Object.entries(env)) {
    if (v === '' && !EMPTY_IS_A_VALUE.has(k)) continue;
    out[k] = v;
  }
  return out;
}

const spec = {
  PGREPL_ROLE: oneOf(['PRIMARY', 'STANDBY'] as const, 'PGREPL_ROLE=STANDBY')({ default: 'PRIMARY' }),
  PGREPL_MASTER_IP: host('PGREPL_MASTER_IP=10.0.0.5')({ default: undefined }),
  PGREPL_MASTER_PORT: tcpPort('PGREPL_MASTER_PORT=5432')({ default: undefined }),
  POSTGRES_PORT_5432_TCP_ADDR: host('POSTGRES_PORT_5432_TCP_ADDR=172.17.0.2')({ default: undefined }),
  POSTGRES_PORT_5432_TCP_PORT: tcpPort('POSTGRES_PORT_5432_TCP_PORT=5432')({ default: undefined }),
  PGREPL_TOKEN: str({ default: undefined }),
  PGREPL_DEBUG: flag('PGREPL_DEBUG=true')({ default: false }),
  PGREPL_LOG_FORMAT: oneOf(['json', 'pretty'] as const, 'PGREPL_LOG_FORMAT=pretty')({ default: 'json' }),
  PGDATA: absolutePath('PGDATA=/var/lib/postgresql/data')({ default: '/var/lib/postgresql/data' }),
  PGPORT: tcpPort('PGPORT=5432')({ default: 5432 }),
  POSTGRES_USER: identifier('POSTGRES_USER=postgres')({ default: 'postgres' }),
  POSTGRES_PASSWORD: str({ default: undefined }),
  POSTGRES_DB: identifier('POSTGRES_DB=app')({ default: undefined }),
  POSTGRES_INITDB_ARGS: str({ default: '' }),
  POSTGRES_INITDB_WALDIR: absolutePath('POSTGRES_INITDB_WALDIR=/var/lib/postgresql/wal')({ default: undefined }),
  POSTGRES_HOST_AUTH_METHOD: hbaMethod('POSTGRES_HOST_AUTH_METHOD=scram-sha-256')({ default: undefined }),
  PGREPL_NODE_NAME: nodeName('PGREPL_NODE_NAME=pg_standby_1')({ default: undefined }),
  PGREPL_UPSTREAM_TIMEOUT: positiveInt('PGREPL_UPSTREAM_TIMEOUT=300')({ default: 300 }),
  PGREPL_HEALTH_STREAM_GRACE: nonNegativeInt('PGREPL_HEALTH_STREAM_GRACE=60')({ default: 60 }),
  PGREPL_SLOTS: flag('PGREPL_SLOTS=on')({ default: true }),
  PGREPL_SLOT_MAX_WAL: walSize('PGREPL_SLOT_MAX_WAL=10GB')({ default: undefined }),
  PGREPL_RECLONE: oneOf(['never', 'auto'] as const, 'PGREPL_RECLONE=auto')({ default: 'never' }),
  PGREPL_REPLICATION_CIDR: cidrList('PGREPL_REPLICATION_CIDR=10.0.0.0/8')({ default: ['all'] }),
  PGREPL_GESTALT_DATABASES: databaseList('PGREPL_GESTALT_DATABASES=gestalt-meta,gestalt-security')({
    default: GESTALT_DATABASES,
  }),
  PGREPL_INITDB_DIR: absolutePath('PGREPL_INITDB_DIR=/docker-entrypoint-initdb.d')({
    default: '/docker-entrypoint-initdb.d',
  }),
  PGREPL_ARCHIVE_DIR: absolutePath('PGREPL_ARCHIVE_DIR=/var/lib/postgresql/archive')({ default: undefined }),
  PGREPL_SYNC_STANDBYS: nonNegativeInt('PGREPL_SYNC_STANDBYS=1')({ default: 0 }),
  PGREPL_SYNC_METHOD: oneOf(['any', 'first'] as const, 'PGREPL_SYNC_METHOD=any')({ default: 'any' }),
  PGREPL_SYNC_COMMIT: oneOf(['on', 'remote_apply', 'remote_write', 'local', 'off'] as const, 'PGREPL_SYNC_COMMIT=remote_apply')({ default: 'on' }),
  PGREPL_PEERS: peerList('PGREPL_PEERS=pg1:5432,pg2:5432')({ default: [] }),
  PGREPL_FENCE: oneOf(['rejoin', 'refuse'] as const, 'PGREPL_FENCE=rejoin')({ default: 'rejoin' }),
  PGREPL_TLS: oneOf(['self-signed'] as const, 'PGREPL_TLS=self-signed')({ default: undefined }),
  // A PEM file's path or the PEM itself; read and checked by config/tls.ts.
  PGREPL_TLS_CERT: str({ default: undefined }),
  PGREPL_TLS_KEY: str({ default: undefined }),
  PGREPL_TLS_CA: str({ default: undefined }),
  ...haSpec,
};

/** Every variable the configuration reads (the _FILE variants too), for checking deployment files against. */
export const CONFIG_VARIABLES: readonly string[] = [...Object.keys(spec), ...FILE_VARIANTS.map((name) => `${name}_FILE`)];


/** The one warning of a PRIMARY started without a token. */
export const REPLICATION_OFF =
  'PGREPL_TOKEN is not set: replication is off. This node runs as a plain PostgreSQL server: the role pgrepl cannot log in and pg_hba.conf has no replication rule for it. To turn replication on, start it again with PGREPL_TOKEN (or PGREPL_TOKEN_FILE) set to a long random value, the same on every node';

/**
 * Without a token only a plain PRIMARY may start (with replication off): what would have to log in
 * as pgrepl, or wait for a standby that cannot, is refused before anything touches PGDATA.
 */
function refuseWithoutToken(role: Role, hasPeers: boolean, syncStandbys: number): void {
  const set = 'set PGREPL_TOKEN (or PGREPL_TOKEN_FILE)';
  if (role === 'STANDBY') {
    throw new UserError(`PGREPL_ROLE=STANDBY needs PGREPL_TOKEN: a standby logs in to its upstream with it; ${set} to the token of its upstream`);
  }
  if (hasPeers) {
    throw new UserError(`PGREPL_PEERS needs PGREPL_TOKEN: this node asks its peers what they are over replication connections, which log in with it; ${set}, the same on every node, or unset PGREPL_PEERS`);
  }
  if (syncStandbys > 0) {
    throw new UserError(`PGREPL_SYNC_STANDBYS=${syncStandbys} needs PGREPL_TOKEN: without it replication is off, no standby can connect, and every commit would wait for one forever; ${set}, the same on every node, or set PGREPL_SYNC_STANDBYS=0`);
  }
}

/**
 * What starting a node needs beyond what every command needs. HA nodes replicate from each other
 * whatever role etcd gives them, so HA mode needs a token to start; the HA commands (`pgrepl
 * list`, `switchover`) only talk to etcd and run without one.
 */
export function checkNodeStart(cfg: Config): void {
  if (cfg.ha && !cfg.replicationOn) {
    throw new UserError('PGREPL_ETCD_ENDPOINTS (HA mode) needs PGREPL_TOKEN: HA nodes replicate from each other and log in with it; set PGREPL_TOKEN (or PGREPL_TOKEN_FILE) to a long random value, the same on every node');
  }
}

/** POSTGRES_INITDB_ARGS, split as the official entrypoint's eval splits it (quotes, backslashes). */
function initdbArgsOf(text: string): string[] {
  try {
    return shellWords(text);
  } catch (err) {
    if (!(err instanceof ShellWordsError)) throw err;
    throw new UserError(`POSTGRES_INITDB_ARGS is not valid: ${err.message}`);
  }
}

export function loadConfig(rawEnv: Env = process.env, host_name: string = hostname()): Config {
  checkHaOnly(rawEnv);
  const env = withoutEmptyValues(resolveFileVariants(rawEnv));
  const e = cleanEnv(env, spec, {
    reporter: ({ errors }) => {
      const lines = Object.entries(errors).map(([name, err]) => {
        const raw = env[name];
        const shown = SECRET_VARS.has(name) || mayHoldCredentials(raw ?? '') ? '' : `=${JSON.stringify(raw)}`;
        const why = err instanceof InvalidValue ? err.message : String((err as Error)?.message ?? err);
        return `${name}${shown} is not valid: ${why}`;
      });
      if (lines.length > 0) throw new UserError(lines.join('\n'));
    },
  });

  const warnings: string[] = [];
  const tls = tlsConfig(env, e.PGREPL_TLS);
  const ha = haConfig({ env: e, raw: env, role: e.PGREPL_ROLE, port: e.PGPORT, hostName: host_name, warnings });
  const upstream: Upstream | undefined = ha
    ? undefined
    : e.PGREPL_MASTER_IP
      ? { host: e.PGREPL_MASTER_IP, port: e.PGREPL_MASTER_PORT ?? 5432, source: 'PGREPL_MASTER_IP' }
      : e.POSTGRES_PORT_5432_TCP_ADDR
        ? { host: e.POSTGRES_PORT_5432_TCP_ADDR, port: e.POSTGRES_PORT_5432_TCP_PORT ?? 5432, source: 'POSTGRES_PORT_5432_TCP_ADDR' }
        : undefined;
  if (e.PGREPL_ROLE === 'STANDBY' && !upstream && !ha) {
    throw new UserError(
      'PGREPL_ROLE=STANDBY needs an upstream: set PGREPL_MASTER_IP (and PGREPL_MASTER_PORT, default 5432), or run with --link UPSTREAM:postgres',
    );
  }

  const token = e.PGREPL_TOKEN;
  if (token === undefined && !ha) {
    refuseWithoutToken(e.PGREPL_ROLE, e.PGREPL_PEERS.length > 0, e.PGREPL_SYNC_STANDBYS);
    warnings.push(REPLICATION_OFF);
  }

  const initdbArgs = initdbArgsOf(e.POSTGRES_INITDB_ARGS);
  const owned = initdbArgs.find((a) => /^(-D|--pgdata)(=|$)/.test(a));
  if (owned) {
    throw new UserError(`POSTGRES_INITDB_ARGS must not contain ${owned}: the data directory is PGDATA`);
  }
  const archiveDir = e.PGREPL_ARCHIVE_DIR;
  if (archiveDir !== undefined && (archiveDir === e.PGDATA || archiveDir.startsWith(`${e.PGDATA}/`) || e.PGDATA === '/')) {
    throw new UserError(
      `PGREPL_ARCHIVE_DIR=${archiveDir} is inside PGDATA=${e.PGDATA}: every clone and rewind would copy the archive, and data moved aside would take it along; use a directory (a volume) outside PGDATA, e.g. PGREPL_ARCHIVE_DIR=/var/lib/postgresql/archive`,
    );
  }
  if (e.POSTGRES_HOST_AUTH_METHOD === 'trust') {
    warnings.push(
      'POSTGRES_HOST_AUTH_METHOD=trust: every host that can reach this node may connect as any user without a password',
    );
  }
  if (e.PGREPL_SYNC_STANDBYS > 0 && (e.PGREPL_SYNC_COMMIT === 'local' || e.PGREPL_SYNC_COMMIT === 'off')) {
    warnings.push(
      `PGREPL_SYNC_STANDBYS=${e.PGREPL_SYNC_STANDBYS} with PGREPL_SYNC_COMMIT=${e.PGREPL_SYNC_COMMIT}: commits do not wait for any standby, so a failover can lose acknowledged commits; use PGREPL_SYNC_COMMIT=on (or remote_apply)`,
    );
  }

  return {
    role: e.PGREPL_ROLE,
    upstream,
    nodeName: e.PGREPL_NODE_NAME ?? sanitiseNodeName(host_name),
    nodeNameFromEnv: e.PGREPL_NODE_NAME !== undefined,
    pgdata: e.PGDATA,
    port: e.PGPORT,
    socketDir: SOCKET_DIR,
    token: token === undefined ? undefined : new Secret(token),
    replicationOn: token !== undefined,
    replicationPassword: token === undefined
      ? Secret.missing('the replication password is needed, but PGREPL_TOKEN is not set (replication is off)')
      : new Secret(replicationPassword(token)),
    debug: e.PGREPL_DEBUG,
    logFormat: e.PGREPL_LOG_FORMAT,
    postgresUser: e.POSTGRES_USER,
    postgresPassword: e.POSTGRES_PASSWORD === undefined ? undefined : new Secret(e.POSTGRES_PASSWORD),
    postgresDb: e.POSTGRES_DB ?? e.POSTGRES_USER,
    initdbArgs,
    initdbWaldir: e.POSTGRES_INITDB_WALDIR,
    hostAuthMethod: e.POSTGRES_HOST_AUTH_METHOD,
    upstreamTimeoutSeconds: e.PGREPL_UPSTREAM_TIMEOUT,
    healthStreamGraceSeconds: e.PGREPL_HEALTH_STREAM_GRACE,
    slots: e.PGREPL_SLOTS,
    slotMaxWal: e.PGREPL_SLOT_MAX_WAL,
    reclone: e.PGREPL_RECLONE,
    replicationCidrs: e.PGREPL_REPLICATION_CIDR,
    gestaltDatabases: e.PGREPL_GESTALT_DATABASES,
    initdbDir: e.PGREPL_INITDB_DIR,
    archiveDir: e.PGREPL_ARCHIVE_DIR,
    syncStandbys: e.PGREPL_SYNC_STANDBYS,
    syncMethod: e.PGREPL_SYNC_METHOD,
    syncCommit: e.PGREPL_SYNC_COMMIT,
    peers: ha ? [] : e.PGREPL_PEERS,
    fence: e.PGREPL_FENCE,
    tls,
    ...(ha && { ha }),
    warnings,
  };
}
