/**
 * The HA operator commands (SPEC §7): `pgrepl list`, `pause`, `resume`, `history`, `switchover`
 * and `failover`. They read and write the keys under /pgrepl/<cluster>/ with the same variables
 * the nodes use (PGREPL_ETCD_*, PGREPL_CLUSTER), from any node or anywhere else; no postgres is
 * asked. switchover and failover only write a request (the agents carry it out, decide.ts) and
 * then watch the keys and the new leader's API until it is done.
 */
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { loadConfig, type HaConfig } from '../config/env.js';
import { UserError } from '../errors.js';
import { absent, isEtcdError, modRevisionIs, type EtcdClient } from '../etcd/index.js';
import { etcdClientFor } from '../ha/etcd-client.js';
import { askMembers, httpGet } from '../ha/ask.js';
import { describeProblems, encodePause, encodeSwitchover, haKeys, type DecodedKeys } from '../ha/keys.js';
import { clusterView, listJson, listTable } from '../ha/list.js';
import { observeKeys } from '../ha/observe.js';
import { checkFailover, checkSwitchover, lossLine, progress, type RequestCheck } from '../ha/switchover.js';
import type { ClusterKeys, HistoryEntry, SwitchoverRequest } from '../ha/types.js';
import { EXIT_USAGE, parseArgs, print, type Command, type ParsedArgs } from './local.js';
import { COMMAND_HELP } from './help.js';

/** This environment's HA configuration; a command of HA mode refuses without it. */
function haConfigFor(command: string): HaConfig {
  const ha = loadConfig().ha;
  if (!ha) {
    throw new UserError(`pgrepl ${command} needs HA mode: set PGREPL_ETCD_ENDPOINTS to the etcd the nodes use (e.g. PGREPL_ETCD_ENDPOINTS=http://etcd1:2379), with the same PGREPL_CLUSTER`);
  }
  return ha;
}

/** One line for etcd not answering (or refusing): where it was asked, and why. */
function etcdFailed(ha: HaConfig, error: string): UserError {
  return new UserError(`etcd at PGREPL_ETCD_ENDPOINTS=${ha.etcd.endpoints.join(',')} did not answer: ${error}; check that etcd runs and this host reaches it`);
}

/** Runs `fn` with a client, closing it after, and turns an etcd failure into one line. */
async function withEtcd<T>(ha: HaConfig, fn: (etcd: EtcdClient) => Promise<T>): Promise<T> {
  const etcd = etcdClientFor(ha);
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
async function readKeysWith(ha: HaConfig, etcd: EtcdClient): Promise<DecodedKeys> {
  const read = await observeKeys(etcd, ha.keyPrefix);
  if (!read.ok) throw etcdFailed(ha, read.error);
  if (read.problems.length > 0) process.stderr.write(`warning: some keys could not be read and are left out: ${describeProblems(read.problems)}\n`);
  return read;
}

const readKeys = (ha: HaConfig): Promise<DecodedKeys> => withEtcd(ha, (etcd) => readKeysWith(ha, etcd));

const LIST_USAGE = COMMAND_HELP.list.usage;

export const list: Command = {
  async run(args) {
    const a = parseArgs(args, { flags: ['json'] }, LIST_USAGE);
    const ha = haConfigFor('list');
    const view = clusterView(ha.cluster, (await readKeys(ha)).keys);
    process.stdout.write(a.flags.has('json') ? listJson(view) : listTable(view));
    return 0;
  },
};

export const pause: Command = {
  async run(args) {
    parseArgs(args, {}, COMMAND_HELP.pause.usage);
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
  async run(args) {
    parseArgs(args, {}, COMMAND_HELP.resume.usage);
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

const HISTORY_USAGE = COMMAND_HELP.history.usage;

export const history: Command = {
  async run(args) {
    const a = parseArgs(args, { flags: ['json'] }, HISTORY_USAGE);
    const ha = haConfigFor('history');
    const entries = (await readKeys(ha)).keys.history;
    process.stdout.write(a.flags.has('json') ? `${JSON.stringify(entries, null, 2)}\n` : historyTable(ha.cluster, entries));
    return 0;
  },
};

// ---------------------------------------------------------------------------------------------
// switchover and failover

const SWITCHOVER_USAGE = COMMAND_HELP.switchover.usage;
const FAILOVER_USAGE = COMMAND_HELP.failover.usage;
const DEFAULT_WAIT_SECONDS = 60;
const POLL_MS = 250;

/** --wait SECONDS (default 60): how long the command watches the request before it gives up (the request stays). */
function waitSeconds(a: ParsedArgs, usage: string): number {
  const raw = a.values.get('wait');
  if (raw === undefined) return DEFAULT_WAIT_SECONDS;
  const n = /^\d+(\.\d+)?$/.test(raw) ? Number(raw) : NaN;
  if (!(n > 0)) throw new UserError(`--wait ${raw} is not a number of seconds (more than 0); usage: ${usage}`, EXIT_USAGE);
  return n;
}

type Check = (keys: ClusterKeys) => RequestCheck;

/**
 * Writes the request if no request exists and the leader key is as `read` saw it (create-if-absent,
 * one transaction): a request never names a leader that has changed, and never replaces another.
 * Losing the race is said as the check says it on a fresh read.
 */
async function writeRequest(ha: HaConfig, etcd: EtcdClient, read: DecodedKeys, request: SwitchoverRequest, check: Check): Promise<void> {
  const k = haKeys(ha.keyPrefix);
  const leaderAsRead = read.revisions.leader ? modRevisionIs(k.leader, read.revisions.leader) : absent(k.leader);
  let written: boolean;
  try {
    written = (await etcd.txn({ compare: [absent(k.switchover), leaderAsRead], success: [{ put: { key: k.switchover, value: encodeSwitchover(request) } }] })).succeeded;
  } catch (err) {
    if (!isEtcdError(err)) throw err;
    throw etcdFailed(ha, `${err.message} (while writing the request: it may or may not have been written; pgrepl list shows it)`);
  }
  if (written) return;
  const now = check((await readKeysWith(ha, etcd)).keys);
  throw new UserError('refuse' in now ? now.refuse : `the leader changed while the request was being written: nothing written; see pgrepl list, then ask again`);
}

/**
 * Watches the keys (and the new leader's API) until the leader key names another node than
 * request.from and that node answers 200 on /primary, or the request was refused, or `waitS` ran out.
 */
async function awaitHandover(ha: HaConfig, etcd: EtcdClient, request: SwitchoverRequest, waitS: number): Promise<number> {
  const to = request.to ? ` to ${request.to}` : '';
  const what = request.from ? `switchover from ${request.from}${to}` : `failover${to}`;
  const started = performance.now();
  const deadline = started + waitS * 1000;
  // Each call gets its whole bound, even near the deadline: a call cut short would only report
  // its own timeout instead of where the handover stands (the wait may end one bound late).
  const boundMs = ha.timing.retryTimeout * 1000;
  let state = 'etcd was not read yet';
  let pending = true;
  for (;;) {
    const read = await observeKeys(etcd, ha.keyPrefix, { timeoutMs: boundMs });
    if (!read.ok) state = `etcd did not answer (${read.error})`;
    else {
      pending = read.keys.switchover !== undefined;
      const p = progress(read.keys, request);
      if (p.state === 'refused') {
        throw new UserError(request.from
          ? `${request.from} refused the switchover${to} and stays the leader (a leader clears a request it cannot carry out: the candidate not ready, or nobody received its shutdown checkpoint); ${request.from}'s log says why`
          : `the ${what} was withdrawn before any node took the lead (cleared by hand, or by a node that refused it); no node leads; see ${request.to}'s log`);
      }
      if (p.state === 'waiting') state = p.why;
      else {
        const api = read.keys.members.find((m) => m.name === p.leader)?.api;
        const reply = api ? await httpGet(api, '/primary', boundMs) : undefined;
        if (reply && 'status' in reply && reply.status === 200) {
          const took = `${request.from ? `switchover from ${request.from}` : 'failover'}, took ${((performance.now() - started) / 1000).toFixed(1)} s`;
          if (request.to && p.leader !== request.to) throw new UserError(`${p.leader} is the primary now, not ${request.to} as asked (${took})`);
          print(`${p.leader} is the primary now (${took})`);
          return 0;
        }
        state = !api
          ? `${p.leader} holds the leader key but has published no member key yet`
          : `${p.leader} holds the leader key but its API at ${api} does not answer 200 on /primary yet (${reply && 'status' in reply ? `HTTP ${reply.status}` : reply?.error})`;
      }
    }
    const left = deadline - performance.now();
    if (left <= 0) {
      throw new UserError(`${what} not done after ${waitS} s: ${state}; ${pending ? 'the request is left in place (pgrepl list shows it)' : 'the request is no longer pending'}`);
    }
    await sleep(Math.min(POLL_MS, left));
  }
}

export const switchover: Command = {
  async run(args) {
    const a = parseArgs(args, { values: ['to', 'wait'] }, SWITCHOVER_USAGE);
    const waitS = waitSeconds(a, SWITCHOVER_USAGE);
    const ha = haConfigFor('switchover');
    const key = haKeys(ha.keyPrefix).switchover;
    const check: Check = (keys) => checkSwitchover(ha.cluster, keys, key, a.values.get('to'));
    return withEtcd(ha, async (etcd) => {
      const read = await readKeysWith(ha, etcd);
      const c = check(read.keys);
      if ('refuse' in c) throw new UserError(c.refuse);
      await writeRequest(ha, etcd, read, c.request, check);
      return awaitHandover(ha, etcd, c.request, waitS);
    });
  },
};

export const failover: Command = {
  async run(args) {
    const a = parseArgs(args, { values: ['to', 'wait'] }, FAILOVER_USAGE);
    const to = a.values.get('to');
    if (to === undefined) throw new UserError(`failover needs --to NODE (the member to make the leader); usage: ${FAILOVER_USAGE}`, EXIT_USAGE);
    const waitS = waitSeconds(a, FAILOVER_USAGE);
    const ha = haConfigFor('failover');
    const key = haKeys(ha.keyPrefix).switchover;
    const check: Check = (keys) => checkFailover(ha.cluster, keys, key, to);
    return withEtcd(ha, async (etcd) => {
      const read = await readKeysWith(ha, etcd);
      const c = check(read.keys);
      if ('refuse' in c) throw new UserError(c.refuse);
      const asked = await askMembers(read.keys.members, [to], ha.timing.retryTimeout * 1000);
      print(lossLine(read.keys, to, asked[to]!));
      await writeRequest(ha, etcd, read, c.request, check);
      return awaitHandover(ha, etcd, c.request, waitS);
    });
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
