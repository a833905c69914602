/**
 * HA mode's inputs (SPEC §7), validated like every other variable. PGREPL_ETCD_ENDPOINTS turns HA
 * mode on; every other variable here only means something with it, so setting one without it is
 * an error (a cluster name or a TTL that silently does nothing is a misconfiguration waiting to
 * surprise someone). The timing rule is the agent's own (ha/timing.ts), not repeated here.
 */
import { str, type CleanedEnv } from 'envalid';
import { UserError } from '../errors.js';
import { HA_TIMING_DEFAULTS, timingProblem, type HaTiming } from '../ha/timing.js';
import { Secret } from './secret.js';
import {
  byteSize, checkHost, etcdEndpoints, flag, hostAndPort, InvalidValue, keySegment, positiveInt, printableName, readableFile,
  type HostPort,
} from './validators.js';

export interface EtcdConfig {
  /** Normalised `http(s)://host:port` URLs, one scheme for all. */
  endpoints: string[];
  /** PGREPL_ETCD_CACERT: the CA that signed etcd's certificates (otherwise the system's CAs). */
  caCert?: string;
  /** PGREPL_ETCD_CERT and PGREPL_ETCD_KEY: a client certificate (always both). */
  clientCert?: { cert: string; key: string };
  /** PGREPL_ETCD_USER with PGREPL_ETCD_PASSWORD(_FILE): etcd's own authentication (always both). */
  auth?: { user: string; password: Secret };
}

export interface HaConfig {
  etcd: EtcdConfig;
  /** PGREPL_CLUSTER */
  cluster: string;
  /** Where this cluster's keys live: /pgrepl/<cluster>/ */
  keyPrefix: string;
  /** PGREPL_CONNECT_ADDRESS: where the others reach this node's postgres. */
  connectAddress: HostPort;
  /** PGREPL_API_LISTEN: where the agent's HTTP API listens. */
  apiListen: HostPort;
  /** PGREPL_API_CONNECT_ADDRESS: where the others reach that API. */
  apiConnectAddress: HostPort;
  timing: HaTiming;
  /** PGREPL_MAX_LAG_ON_FAILOVER, bytes. */
  maxLagOnFailover: number;
  /** PGREPL_NOFAILOVER */
  nofailover: boolean;
  /** PGREPL_ROLE when it was set: in HA mode only a bootstrap hint (STANDBY never initialises a new cluster). */
  roleHint: 'PRIMARY' | 'STANDBY' | undefined;
}

export const HA_DEFAULT_API_PORT = 8008;
export const HA_DEFAULT_MAX_LAG = 1024 * 1024;

export const haSpec = {
  PGREPL_ETCD_ENDPOINTS: etcdEndpoints('PGREPL_ETCD_ENDPOINTS=http://etcd1:2379,http://etcd2:2379,http://etcd3:2379')({ default: undefined }),
  PGREPL_ETCD_CACERT: readableFile('PGREPL_ETCD_CACERT=/etc/pgrepl/etcd/ca.crt')({ default: undefined }),
  PGREPL_ETCD_CERT: readableFile('PGREPL_ETCD_CERT=/etc/pgrepl/etcd/client.crt')({ default: undefined }),
  PGREPL_ETCD_KEY: readableFile('PGREPL_ETCD_KEY=/etc/pgrepl/etcd/client.key')({ default: undefined }),
  PGREPL_ETCD_USER: printableName('PGREPL_ETCD_USER=pgrepl')({ default: undefined }),
  PGREPL_ETCD_PASSWORD: str({ default: undefined }),
  PGREPL_CLUSTER: keySegment('PGREPL_CLUSTER=orders')({ default: 'pgrepl' }),
  PGREPL_CONNECT_ADDRESS: hostAndPort('PGREPL_CONNECT_ADDRESS=10.0.0.5:5432')({ default: undefined }),
  PGREPL_API_LISTEN: hostAndPort(`PGREPL_API_LISTEN=0.0.0.0:${HA_DEFAULT_API_PORT}`)({ default: { host: '0.0.0.0', port: HA_DEFAULT_API_PORT } }),
  PGREPL_API_CONNECT_ADDRESS: hostAndPort(`PGREPL_API_CONNECT_ADDRESS=10.0.0.5:${HA_DEFAULT_API_PORT}`)({ default: undefined }),
  PGREPL_TTL: positiveInt(`PGREPL_TTL=${HA_TIMING_DEFAULTS.ttl}`)({ default: HA_TIMING_DEFAULTS.ttl }),
  PGREPL_LOOP_WAIT: positiveInt(`PGREPL_LOOP_WAIT=${HA_TIMING_DEFAULTS.loopWait}`)({ default: HA_TIMING_DEFAULTS.loopWait }),
  PGREPL_RETRY_TIMEOUT: positiveInt(`PGREPL_RETRY_TIMEOUT=${HA_TIMING_DEFAULTS.retryTimeout}`)({ default: HA_TIMING_DEFAULTS.retryTimeout }),
  PGREPL_MAX_LAG_ON_FAILOVER: byteSize('PGREPL_MAX_LAG_ON_FAILOVER=16MB')({ default: HA_DEFAULT_MAX_LAG }),
  PGREPL_NOFAILOVER: flag('PGREPL_NOFAILOVER=on')({ default: false }),
};

/** Every variable that only means something in HA mode (the password file too: it is never read without it). */
const HA_ONLY = [...Object.keys(haSpec).filter((k) => k !== 'PGREPL_ETCD_ENDPOINTS'), 'PGREPL_ETCD_PASSWORD_FILE'];

type Env = Record<string, string | undefined>;

/** Before anything is read: HA-only variables set without PGREPL_ETCD_ENDPOINTS, one line each. */
export function checkHaOnly(env: Env): void {
  if (env.PGREPL_ETCD_ENDPOINTS) return;
  const lines = HA_ONLY.filter((name) => env[name] !== undefined && env[name] !== '').map(
    (name) => `${name} is set but is an HA mode setting, and HA mode needs PGREPL_ETCD_ENDPOINTS: set PGREPL_ETCD_ENDPOINTS (e.g. PGREPL_ETCD_ENDPOINTS=http://etcd1:2379) or unset ${name}`,
  );
  if (lines.length > 0) throw new UserError(lines.join('\n'));
}

/** What HA mode makes of the non-HA variables it replaces: ignored, with one warning each. */
const IGNORED_IN_HA: Record<string, string> = {
  PGREPL_MASTER_IP: 'etcd decides which node leads, and every standby follows the leader',
  PGREPL_MASTER_PORT: 'etcd decides which node leads, and every standby follows the leader',
  PGREPL_PEERS: "the leader key in etcd decides which node may be writable, instead of asking peers",
};

export interface HaInputs {
  env: CleanedEnv<typeof haSpec>;
  /** The environment as given (empty values removed, _FILE variants read). */
  raw: Env;
  role: 'PRIMARY' | 'STANDBY';
  port: number;
  hostName: string;
  warnings: string[];
}

/** The HA configuration, or undefined without PGREPL_ETCD_ENDPOINTS; the checks across variables. */
export function haConfig({ env: e, raw, role, port, hostName, warnings }: HaInputs): HaConfig | undefined {
  const endpoints = e.PGREPL_ETCD_ENDPOINTS;
  if (endpoints === undefined) return undefined;
  const https = endpoints[0]!.startsWith('https:');

  const problems: string[] = [];
  for (const name of ['PGREPL_ETCD_CACERT', 'PGREPL_ETCD_CERT', 'PGREPL_ETCD_KEY'] as const) {
    if (e[name] !== undefined && !https) {
      problems.push(`${name} is set but PGREPL_ETCD_ENDPOINTS are http:// URLs: TLS files need https:// endpoints (e.g. PGREPL_ETCD_ENDPOINTS=https://etcd1:2379), or unset ${name}`);
    }
  }
  const pairs = [
    ['PGREPL_ETCD_CERT', 'PGREPL_ETCD_KEY', 'a client certificate and its key go together'],
    ['PGREPL_ETCD_KEY', 'PGREPL_ETCD_CERT', 'a client certificate and its key go together'],
    ['PGREPL_ETCD_USER', 'PGREPL_ETCD_PASSWORD', 'etcd authentication needs a user and a password'],
    ['PGREPL_ETCD_PASSWORD', 'PGREPL_ETCD_USER', 'etcd authentication needs a user and a password'],
  ] as const;
  for (const [set, missing, why] of pairs) {
    if (e[set] !== undefined && e[missing] === undefined) {
      const orFile = missing === 'PGREPL_ETCD_PASSWORD' ? ' (or PGREPL_ETCD_PASSWORD_FILE)' : '';
      problems.push(`${set} is set without ${missing}: ${why}; set ${missing}${orFile} too, or unset ${set}`);
    }
  }
  const timing: HaTiming = { ttl: e.PGREPL_TTL, loopWait: e.PGREPL_LOOP_WAIT, retryTimeout: e.PGREPL_RETRY_TIMEOUT };
  const timingLine = timingProblem(timing);
  if (timingLine) problems.push(timingLine);
  if (e.PGREPL_API_LISTEN.port === port) {
    const other = port === HA_DEFAULT_API_PORT ? HA_DEFAULT_API_PORT + 1 : HA_DEFAULT_API_PORT;
    problems.push(`PGREPL_API_LISTEN is on port ${port}, which is PGPORT, where postgres listens: give the API another port (e.g. PGREPL_API_LISTEN=0.0.0.0:${other})`);
  }
  if (problems.length > 0) throw new UserError(problems.join('\n'));

  for (const [name, why] of Object.entries(IGNORED_IN_HA)) {
    if (raw[name] !== undefined) warnings.push(`${name} is ignored in HA mode (PGREPL_ETCD_ENDPOINTS): ${why}; unset ${name}`);
  }
  const host = e.PGREPL_CONNECT_ADDRESS && e.PGREPL_API_CONNECT_ADDRESS ? '' : defaultHost(hostName);
  // Where the others reach the API, unless said: the address it listens on, when that is one
  // address; otherwise the host the others reach postgres at; otherwise this host's name.
  const wildcard = ['0.0.0.0', '::'].includes(e.PGREPL_API_LISTEN.host);
  const apiHost = !wildcard ? e.PGREPL_API_LISTEN.host : e.PGREPL_CONNECT_ADDRESS?.host ?? host;
  return {
    etcd: {
      endpoints,
      ...(e.PGREPL_ETCD_CACERT !== undefined && { caCert: e.PGREPL_ETCD_CACERT }),
      ...(e.PGREPL_ETCD_CERT !== undefined && e.PGREPL_ETCD_KEY !== undefined && { clientCert: { cert: e.PGREPL_ETCD_CERT, key: e.PGREPL_ETCD_KEY } }),
      ...(e.PGREPL_ETCD_USER !== undefined && e.PGREPL_ETCD_PASSWORD !== undefined && {
        auth: { user: e.PGREPL_ETCD_USER, password: new Secret(e.PGREPL_ETCD_PASSWORD) },
      }),
    },
    cluster: e.PGREPL_CLUSTER,
    keyPrefix: `/pgrepl/${e.PGREPL_CLUSTER}/`,
    connectAddress: e.PGREPL_CONNECT_ADDRESS ?? { host, port },
    apiListen: e.PGREPL_API_LISTEN,
    apiConnectAddress: e.PGREPL_API_CONNECT_ADDRESS ?? { host: apiHost, port: e.PGREPL_API_LISTEN.port },
    timing,
    maxLagOnFailover: e.PGREPL_MAX_LAG_ON_FAILOVER,
    nofailover: e.PGREPL_NOFAILOVER,
    roleHint: raw.PGREPL_ROLE !== undefined ? role : undefined,
  };
}

/** The host name others reach this node by, when no connect address says otherwise. */
function defaultHost(hostName: string): string {
  try {
    return checkHost(hostName, '');
  } catch (err) {
    if (!(err instanceof InvalidValue)) throw err;
    throw new UserError(
      `this machine's host name "${hostName}" cannot be used to reach this node: set PGREPL_CONNECT_ADDRESS and PGREPL_API_CONNECT_ADDRESS (e.g. PGREPL_CONNECT_ADDRESS=10.0.0.5:5432 PGREPL_API_CONNECT_ADDRESS=10.0.0.5:8008)`,
    );
  }
}
