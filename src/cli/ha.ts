/**
 * The HA operator commands that need only etcd (SPEC §7): `pgrepl list`, `pause`, `resume` and
 * `history`. They read and write the keys under /pgrepl/<cluster>/ with the same variables the
 * nodes use (PGREPL_ETCD_*, PGREPL_CLUSTER), from any node or anywhere else; no postgres is asked.
 */
import { readFileSync } from 'node:fs';
import { loadConfig, type HaConfig } from '../config/env.js';
import { UserError } from '../errors.js';
import { absent, EtcdClient, isEtcdError, type EtcdClientOptions } from '../etcd/index.js';
import { describeProblems, encodePause, haKeys, type DecodedKeys } from '../ha/keys.js';
import { clusterView, listJson, listTable } from '../ha/list.js';
import { observeKeys } from '../ha/observe.js';
import type { HistoryEntry } from '../ha/types.js';
import { parseArgs, print, type Command } from './local.js';

/** This environment's HA configuration; a command of HA mode refuses without it. */
function haConfigFor(command: string): HaConfig {
  const ha = loadConfig().ha;
  if (!ha) {
    throw new UserError(`pgrepl ${command} needs HA mode: set PGREPL_ETCD_ENDPOINTS to the etcd the nodes use (e.g. PGREPL_ETCD_ENDPOINTS=http://etcd1:2379), with the same PGREPL_CLUSTER`);
  }
  return ha;
}

/** The etcd client the nodes would use: TLS files read here (the client takes PEM contents), calls bounded by PGREPL_RETRY_TIMEOUT. */
function etcdClient(ha: HaConfig): EtcdClient {
  const { caCert, clientCert, auth, endpoints } = ha.etcd;
  const options: EtcdClientOptions = {
    endpoints,
    timeoutMs: ha.timing.retryTimeout * 1000,
    ...((caCert || clientCert) && {
      tls: {
        ...(caCert && { ca: readFileSync(caCert) }),
        ...(clientCert && { cert: readFileSync(clientCert.cert), key: readFileSync(clientCert.key) }),
      },
    }),
    ...(auth && { auth: { user: auth.user, password: auth.password.reveal() } }),
  };
  return new EtcdClient(options);
}

/** One line for etcd not answering (or refusing): where it was asked, and why. */
function etcdFailed(ha: HaConfig, error: string): UserError {
  return new UserError(`etcd at PGREPL_ETCD_ENDPOINTS=${ha.etcd.endpoints.join(',')} did not answer: ${error}; check that etcd runs and this host reaches it`);
}

/** Runs `fn` with a client, closing it after, and turns an etcd failure into one line. */
async function withEtcd<T>(ha: HaConfig, fn: (etcd: EtcdClient) => Promise<T>): Promise<T> {
  const etcd = etcdClient(ha);
  try {
    return await fn(etcd);
  } catch (err) {
    if (isEtcdError(err)) throw etcdFailed(ha, err.message);
    throw err;
  } finally {
    etcd.close();
  }
}

/** One read of the cluster's keys; keys that could not be read are said on stderr (the rest is still shown). */
async function readKeys(ha: HaConfig): Promise<DecodedKeys> {
  const read = await withEtcd(ha, (etcd) => observeKeys(etcd, ha.keyPrefix));
  if (!read.ok) throw etcdFailed(ha, read.error);
  if (read.problems.length > 0) process.stderr.write(`warning: some keys could not be read and are left out: ${describeProblems(read.problems)}\n`);
  return read;
}

const LIST_USAGE = 'pgrepl list [--json]';

export const list: Command = {
  summary: 'HA mode: the cluster as etcd shows it: leader, members, roles, timelines, lag',
  usage: LIST_USAGE,
  async run(args) {
    const a = parseArgs(args, { flags: ['json'] }, LIST_USAGE);
    const ha = haConfigFor('list');
    const view = clusterView(ha.cluster, (await readKeys(ha)).keys);
    process.stdout.write(a.flags.has('json') ? listJson(view) : listTable(view));
    return 0;
  },
};

export const pause: Command = {
  summary: 'HA mode: no automatic failover, promotion or switchover until `pgrepl resume`',
  usage: 'pgrepl pause',
  async run(args) {
    parseArgs(args, {}, 'pgrepl pause');
    const ha = haConfigFor('pause');
    const key = haKeys(ha.keyPrefix).pause;
    // Create-if-absent: pausing twice keeps the time of the first pause.
    const created = await withEtcd(ha, async (etcd) => (await etcd.txn({ compare: [absent(key)], success: [{ put: { key, value: encodePause(new Date()) } }] })).succeeded);
    print(created
      ? `paused cluster ${ha.cluster}: no automatic failover, promotion or switchover until \`pgrepl resume\``
      : `cluster ${ha.cluster} was already paused: nothing changed`);
    return 0;
  },
};

export const resume: Command = {
  summary: 'HA mode: end a pause: automatic failover, promotion and switchover again',
  usage: 'pgrepl resume',
  async run(args) {
    parseArgs(args, {}, 'pgrepl resume');
    const ha = haConfigFor('resume');
    const key = haKeys(ha.keyPrefix).pause;
    const { deleted } = await withEtcd(ha, (etcd) => etcd.delete(key));
    print(deleted > 0
      ? `resumed cluster ${ha.cluster}: automatic failover, promotion and switchover are on again`
      : `cluster ${ha.cluster} was not paused: nothing changed`);
    return 0;
  },
};

/** The history as a table, oldest first; `why` last and unpadded (it is the long one). */
export function historyTable(cluster: string, entries: HistoryEntry[]): string {
  if (entries.length === 0) return `Cluster ${cluster}: no promotions recorded\n`;
  const head = ['Timeline', 'LSN', 'Leader', 'At', 'Why'];
  const rows = entries.map((e) => [String(e.timeline), e.lsn, e.leader, e.at, e.why]);
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]) => cells.map((c, i) => (i === 0 ? c.padStart(widths[i]!) : c.padEnd(widths[i]!))).join('  ').trimEnd();
  return `${[line(head), ...rows.map(line)].join('\n')}\n`;
}

const HISTORY_USAGE = 'pgrepl history [--json]';

export const history: Command = {
  summary: "HA mode: the cluster's promotions, oldest first: timeline, LSN, leader, when, why",
  usage: HISTORY_USAGE,
  async run(args) {
    const a = parseArgs(args, { flags: ['json'] }, HISTORY_USAGE);
    const ha = haConfigFor('history');
    const entries = (await readKeys(ha)).keys.history;
    process.stdout.write(a.flags.has('json') ? `${JSON.stringify(entries, null, 2)}\n` : historyTable(ha.cluster, entries));
    return 0;
  },
};

/**
 * promote and follow change which node leads or whom a standby follows: in HA mode that is the
 * agent's decision, and a hand-made change would be undone by it, or fight it.
 */
export function refuseInHaMode(ha: HaConfig | undefined, command: string): void {
  if (!ha) return;
  throw new UserError(`pgrepl ${command} is not for HA mode (PGREPL_ETCD_ENDPOINTS is set): etcd and the agents decide which node leads and whom the standbys follow; use pgrepl switchover [--to NODE] for a planned change of leader, or pgrepl failover --to NODE when there is no leader`);
}
