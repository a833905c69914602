/**
 * The HA agent (SPEC §7): `pgrepl postgres` with PGREPL_ETCD_ENDPOINTS. It stays beside postgres,
 * its child, for the node's whole life, and runs the start-up's architecture in a loop:
 *
 *   observe  one linearizable read of the keys + this node's postgres      (observe.ts)
 *   decide   a pure function: one sentence and a list of actions           (decide.ts)
 *   act      etcd actions (act-etcd.ts), postgres actions (act-postgres.ts)
 *
 * every PGREPL_LOOP_WAIT, and at once when the leader, switchover, pause, sync or initialize key
 * changes (etcd watch: a wake-up only; each loop reads the keys again), when postgres exits
 * unasked, and on a stop signal. Every loop logs one sentence: what it saw, what it does.
 *
 * Beside the loop, a brake: whatever the loop is doing (an etcd call, a clone, a promotion), once
 * this agent leads and its last renewal SENT is older than TTL − margin (timing.ts), it fast-stops
 * postgres at once (sessions killed, no new connection). The loop then brings postgres back
 * read-only; writable again only after a renewal. And while a postgres action runs (initdb, clone,
 * rewind, a start through crash recovery), the lease is renewed in the background, so that neither
 * the member key nor a leader key held meanwhile expires under it.
 */
import { randomBytes } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import type { Config } from '../config/env.js';
import { UserError } from '../errors.js';
import type { EtcdClient, Watch } from '../etcd/index.js';
import { PostgresChild } from '../handover/postgres-child.js';
import { log } from '../log.js';
import { binariesMajor } from '../observe/binaries.js';
import { observe } from '../observe/observe.js';
import { unusable } from '../plan/decide.js';
import { postgresEnv } from '../handover/postgres-env.js';
import { stopRunningPrograms } from '../postgres/run.js';
import { prepareNodeDirectories } from '../steps/directories.js';
import { dropPrivileges, lookupUser, runningAsRoot } from '../handover/privileges.js';
import { actEtcd, isEtcdAction, renewLease, type EtcdActContext, type EtcdActFacts } from './act-etcd.js';
import { actPostgres, isPgAction, startupConfig, type PgActContext } from './act-postgres.js';
import { startApi, type ApiSnapshot, type HaApi } from './api.js';
import { askMembers } from './ask.js';
import { decide } from './decide.js';
import { haKeys } from './keys.js';
import { clusterView } from './list.js';
import { maxLsn, type Lsn } from './lsn.js';
import { observeKeys, observeLocal, type EtcdObservation, type LocalNode, type ObservedPostgres } from './observe.js';
import { etcdClientFor } from './etcd-client.js';
import { demoteDeadline, retryDelayMs } from './timing.js';
import type { Action, AgentMemory, ClusterKeys, Decision, HaObservation, HaSettings, MemberKey } from './types.js';

/** The oldest major HA mode runs: standby.signal and pg_promote() exist from 12. */
const HA_MIN_MAJOR = 12;

const hostPortOf = (h: { host: string; port: number }) => (h.host.includes(':') ? `[${h.host}]:${h.port}` : `${h.host}:${h.port}`);

export async function runAgent(cfg: Config, postgresArgs: string[]): Promise<never> {
  const ha = cfg.ha!;
  for (const ignored of ['PGREPL_MASTER_IP', 'PGREPL_PEERS'] as const) {
    if (process.env[ignored]) log.warn(`${ignored} is ignored in HA mode: etcd decides whom this node follows`);
  }
  const major = await binariesMajor();
  if (major < HA_MIN_MAJOR) {
    throw new UserError(`HA mode (PGREPL_ETCD_ENDPOINTS) needs PostgreSQL ${HA_MIN_MAJOR} or newer, and these binaries are PostgreSQL ${major}: run the image of a newer major, or unset PGREPL_ETCD_ENDPOINTS; nothing was changed`);
  }
  // The start-up's refusals that do not depend on the role (etcd decides it later), before anything is written.
  const refused = unusable(await observe(startupConfig(cfg, 'PRIMARY')), cfg.pgdata);
  if (refused) throw new UserError(refused.refuse);
  const agent = new Agent(cfg, ha, major, postgresArgs);
  await agent.listen();
  // As the start-up does first: directories as root, then everything as the postgres user.
  await prepareNodeDirectories(cfg);
  if (runningAsRoot()) dropPrivileges(lookupUser());
  const status = await agent.run();
  process.exit(status);
}

class Agent {
  private readonly now = () => performance.now();
  private readonly settings: HaSettings;
  private readonly memory: AgentMemory;
  private readonly etcd: EtcdClient;
  private readonly etcdCtx: EtcdActContext;
  private readonly pgCtx: PgActContext;
  private readonly child: PostgresChild;
  private readonly local: LocalNode;
  private api: HaApi | undefined;
  private watch: Watch | undefined;
  private brakeTimer: NodeJS.Timeout | undefined;
  private stopSignal: NodeJS.Signals | undefined;
  private wake: () => void = () => undefined;
  private woken = false;
  private acting: { what: string; since: number } | undefined;
  private braked = false;
  /** This agent stopped a leader's writes (brake or demote-fast) on this lease and timeline. */
  private demoted: ObservedPostgres['demoted'];
  private syncChangedAt: Lsn | undefined;
  private lastKeys: ClusterKeys | undefined;

  constructor(
    private readonly cfg: Config,
    private readonly ha: NonNullable<Config['ha']>,
    major: number,
    postgresArgs: string[],
  ) {
    const instance = randomBytes(8).toString('hex');
    this.settings = {
      name: cfg.nodeName,
      instance,
      nofailover: ha.nofailover,
      maxLagOnFailover: ha.maxLagOnFailover,
      syncStandbys: cfg.syncStandbys,
      hint: ha.roleHint,
      reclone: cfg.reclone,
      slots: cfg.slots,
      timing: ha.timing,
    };
    this.memory = { startedAt: this.now(), ledAtLastRead: false, published: false };
    this.etcd = etcdClientFor(ha);
    this.etcdCtx = { etcd: this.etcd, keys: haKeys(ha.keyPrefix), name: cfg.nodeName, instance, ttl: ha.timing.ttl, memory: this.memory, now: this.now };
    this.child = new PostgresChild({
      env: () => postgresEnv(cfg),
      onExit: (exit) => {
        if (!this.stopSignal && !this.child.stoppedBy) log.warn({ ...exit }, 'postgres exited without the agent asking');
        this.poke();
      },
      onStopSignal: (sig) => this.stop(sig),
    });
    this.local = {
      pgdata: cfg.pgdata,
      socketDir: cfg.socketDir,
      port: cfg.port,
      user: cfg.postgresUser,
      password: cfg.postgresPassword,
      major,
      timeoutMs: ha.timing.retryTimeout * 1000,
    };
    this.pgCtx = { cfg, child: this.child, postgresArgs, local: this.local, stoppedBy: () => this.stopSignal };
  }

  /** The HTTP API, first: a port in use is refused before anything is written. */
  async listen(): Promise<void> {
    const { ha } = this;
    this.api = await startApi({ host: ha.apiListen.host, port: ha.apiListen.port, ttl: ha.timing.ttl, now: this.now, position: () => this.position() });
  }

  async run(): Promise<number> {
    const { ha } = this;
    log.info({ node: this.cfg.nodeName, cluster: ha.cluster, etcd: ha.etcd.endpoints, api: hostPortOf(ha.apiListen) }, 'HA mode: the agent starts');
    const keys = this.etcdCtx.keys;
    const wakers = new Set([keys.leader, keys.switchover, keys.pause, keys.sync, keys.initialize]);
    this.watch = this.etcd.watch(keys.prefix, (e) => (e.type === 'resync' || wakers.has(e.key) ? this.poke() : undefined), { prefix: true });
    this.brakeTimer = setInterval(() => this.brake(), 50);
    try {
      for (;;) {
        this.woken = false;
        const next = await this.loop();
        if (next === 'exit') return 0;
        if (!this.woken) await new Promise<void>((resolve) => {
          const t = setTimeout(resolve, next);
          this.wake = () => {
            clearTimeout(t);
            resolve();
          };
        });
        this.wake = () => undefined;
      }
    } finally {
      clearInterval(this.brakeTimer);
      this.watch.cancel();
      await this.api?.close().catch(() => undefined);
      this.etcd.close();
      this.child.close();
    }
  }

  private poke(): void {
    this.woken = true;
    this.wake();
  }

  private stop(sig: NodeJS.Signals): void {
    if (this.stopSignal) return;
    this.stopSignal = sig;
    log.info(`${sig}: stopping (a leader hands its key over first)`);
    stopRunningPrograms(sig); // a clone or rewind in progress ends; the loop then stops
    this.poke();
  }

  /** Stops a leader's writes the instant its lease may be running out, whatever the loop is doing. */
  private brake(): void {
    const lease = this.memory.lease;
    if (!this.memory.ledAtLastRead) return;
    const late = !lease || this.now() >= demoteDeadline(lease.lastRenewalSentAt, this.ha.timing);
    if (!late) {
      this.braked = false;
      return;
    }
    if (this.braked || this.child.pid === undefined) return;
    this.braked = true;
    log.warn(`the lease may be running out (no renewal confirmed within TTL − RETRY_TIMEOUT): fast-stopping postgres now, before anyone else can lead`);
    if (lease) this.demoted = { lease: lease.id, timeline: this.demoted?.timeline ?? 0 };
    void this.child.stop('fast');
    this.poke();
  }

  /** /position: this node's current position, asked live (candidates compare them in a failover). */
  private async position(): Promise<{ received: Lsn; timeline: number }> {
    const l = await observeLocal({ ...this.local, timeoutMs: 2000 });
    const received = l.inRecovery ? maxLsn(l.receivedLsn, l.replayedLsn) : l.writeLsn;
    if (!l.running || l.notAnswering || !received || l.timeline === undefined) throw new Error(l.notAnswering ?? 'postgres is not running');
    return { received, timeline: l.timeline };
  }

  private async observe(): Promise<{ keys: EtcdObservation; local: ObservedPostgres }> {
    const [keys, observed] = await Promise.all([observeKeys(this.etcd, this.etcdCtx.keys.prefix), observeLocal(this.local)]);
    const local: ObservedPostgres = {
      ...observed,
      synchronous: { ...observed.synchronous, ...(this.syncChangedAt && { changedAt: this.syncChangedAt }) },
      ...(this.demoted && { demoted: { lease: this.demoted.lease, timeline: this.demoted.timeline || (observed.timeline ?? 0) } }),
    };
    return { keys, local };
  }

  /** One loop: observe, decide (asking members when the decision says so), act. Returns ms to the next loop, or 'exit'. */
  private async loop(): Promise<number | 'exit'> {
    const { keys: read, local } = await this.observe();
    if (read.ok) {
      this.lastKeys = read.keys;
      const leader = read.keys.leader;
      this.memory.ledAtLastRead = leader !== undefined && leader.name === this.settings.name && leader.lease === this.memory.lease?.id;
      const lm = leader && read.keys.members.find((m) => m.name === leader.name);
      if (lm?.writeLsn) this.memory.lastLeaderLsn = lm.writeLsn;
    }
    const obs: HaObservation = {
      now: this.now(),
      wallNow: Date.now(),
      etcd: read.ok ? { ok: true, keys: read.keys } : { ok: false, error: read.error },
      local,
      stopping: this.stopSignal !== undefined,
    };
    let d = decide(obs, this.settings, this.memory);
    if (!('refuse' in d) && d.actions.length === 1 && d.actions[0]!.do === 'ask-members') {
      log.info({ row: d.row }, d.say);
      const names = d.actions[0]!.names;
      const asked = await askMembers(read.ok ? read.keys.members : [], names, this.ha.timing.retryTimeout * 1000);
      d = decide({ ...obs, now: this.now(), asked }, this.settings, this.memory);
    }
    log.info({ row: d.row }, d.say);
    if ('refuse' in d) {
      await this.child.stop('fast');
      await actEtcd(this.etcdCtx, { do: 'revoke-lease' });
      throw new UserError(d.refuse);
    }
    const outcome = await this.act(d, local, read.ok ? read.keys : undefined);
    if (outcome === 'exit') return 'exit';
    await this.publishSnapshot(outcome.pgChanged ? await observeLocal(this.local) : local);
    return outcome.failed ? retryDelayMs(this.ha.timing) : d.nextLoopMs;
  }

  /** Runs the decision's actions in order; the first that fails or loses ends the list. */
  private async act(d: Extract<Decision, { actions: Action[] }>, local: ObservedPostgres, keys: ClusterKeys | undefined): Promise<'exit' | { failed: boolean; pgChanged: boolean }> {
    const facts: EtcdActFacts = { member: this.memberValue(local, keys) };
    let pgChanged = false;
    for (const action of d.actions) {
      if (action.do === 'exit') {
        log.info('the agent stops; postgres is stopped');
        return 'exit';
      }
      if (action.do === 'ask-members') continue; // handled in loop()
      if (isEtcdAction(action)) {
        const r = await actEtcd(this.etcdCtx, action, facts);
        if (!r.ok) {
          // Losing a race is how the race works (info); etcd failing or the lease gone is not (warn).
          if ('lost' in r) log.info({ action: action.do }, r.why);
          else log.warn({ action: action.do }, 'why' in r ? r.why : r.error);
          return { failed: !('lost' in r), pgChanged };
        }
        this.afterEtcd(action);
        continue;
      }
      if (!isPgAction(action)) continue;
      const led = this.memory.ledAtLastRead;
      try {
        const r = await this.during(action.do, () => actPostgres(this.pgCtx, action, (n) => keys?.members.find((m) => m.name === n)?.address));
        pgChanged = true;
        if (r.promotion) facts.promotion = r.promotion;
        if (r.syncChangedAt) this.syncChangedAt = r.syncChangedAt;
        if (action.do === 'demote-fast' && led && this.memory.lease) this.demoted = { lease: this.memory.lease.id, timeline: local.timeline ?? 0 };
        if (action.do === 'promote' || action.do === 'resume-writable') {
          this.demoted = undefined;
          this.syncChangedAt = undefined;
        }
      } catch (err) {
        log.warn({ action: action.do }, `${action.do} failed: ${(err as Error).message}`);
        return { failed: true, pgChanged: true };
      }
    }
    return { failed: false, pgChanged };
  }

  /** What a successful etcd action tells the memory at once (the next read confirms it). */
  private afterEtcd(action: Action): void {
    switch (action.do) {
      case 'publish-member':
        this.memory.published = true;
        return;
      // Holding the key counts from the moment etcd said so: a leader whose next read fails must
      // still keep to its lease deadline (decide.ts: etcd down × I led).
      case 'take-leader-key':
      case 'race-initialize':
        this.memory.ledAtLastRead = true;
        return;
      case 'release-leader-key':
      case 'revoke-lease':
        this.memory.ledAtLastRead = false;
        return;
    }
  }

  /**
   * Runs a postgres action with the lease renewed in the background (a clone may take hours, crash
   * recovery minutes), announced on /liveness.
   */
  private async during<T>(what: string, fn: () => Promise<T>): Promise<T> {
    this.acting = { what, since: this.now() };
    let renewing = false;
    const renew = setInterval(() => {
      if (renewing) return;
      renewing = true;
      void renewLease(this.etcdCtx).finally(() => (renewing = false));
    }, this.ha.timing.loopWait * 1000);
    void this.publishSnapshot(undefined);
    try {
      return await fn();
    } finally {
      clearInterval(renew);
      this.acting = undefined;
    }
  }

  private memberValue(l: ObservedPostgres, keys: ClusterKeys | undefined): MemberKey {
    const cluster = l.pgdata.kind === 'cluster' ? l.pgdata : undefined;
    const role: MemberKey['role'] = l.running && l.inRecovery !== undefined ? (l.inRecovery ? 'standby' : 'primary') : cluster ? (cluster.standby ? 'standby' : 'primary') : 'none';
    const leader = keys?.leader && keys.members.find((m) => m.name === keys.leader!.name);
    const streaming = l.walReceiver?.status === 'streaming';
    return {
      name: this.settings.name,
      instance: this.settings.instance,
      address: hostPortOf(this.ha.connectAddress),
      api: hostPortOf(this.ha.apiConnectAddress),
      role,
      state: !l.running ? 'stopped' : streaming && (!leader || l.walReceiver?.from === leader.address) ? 'streaming' : 'running',
      ...(l.timeline !== undefined && { timeline: l.timeline }),
      ...(l.receivedLsn && { receivedLsn: l.receivedLsn }),
      ...(l.replayedLsn && { replayedLsn: l.replayedLsn }),
      ...(l.writeLsn && { writeLsn: l.writeLsn }),
      ...(streaming && l.walReceiver?.from && { upstream: l.walReceiver.from }),
      nofailover: this.settings.nofailover,
    };
  }

  private async publishSnapshot(l: ObservedPostgres | undefined): Promise<void> {
    if (!this.api) return;
    const keys = this.lastKeys;
    const leaderName = keys?.leader?.name;
    const leaderMember = leaderName ? keys?.members.find((m) => m.name === leaderName) : undefined;
    const lease = this.memory.lease;
    const held = this.memory.ledAtLastRead && lease !== undefined;
    const pg = l ?? this.lastLocal;
    if (l) this.lastLocal = l;
    const snapshot: ApiSnapshot = {
      name: this.settings.name,
      holdsLeaderKey: held,
      ...(held && { leaseDeadline: demoteDeadline(lease!.lastRenewalSentAt, this.ha.timing) }),
      postgres: {
        running: pg?.running ?? false,
        ...(pg?.inRecovery !== undefined && { inRecovery: pg.inRecovery }),
        ...(pg?.timeline !== undefined && { timeline: pg.timeline }),
        streamingFromLeader: pg?.walReceiver?.status === 'streaming' && leaderMember !== undefined && pg.walReceiver.from === leaderMember.address,
        ...(pg?.receivedLsn && { receivedLsn: pg.receivedLsn }),
        ...(pg?.replayedLsn && { replayedLsn: pg.replayedLsn }),
        ...(pg?.writeLsn && { writeLsn: pg.writeLsn }),
      },
      ...((held ? pg?.writeLsn : leaderMember?.writeLsn) && { leaderWriteLsn: (held ? pg!.writeLsn : leaderMember!.writeLsn)! }),
      loopAt: this.now(),
      ...(this.acting && { acting: this.acting }),
      ...(keys && { cluster: clusterView(this.ha.cluster, keys) }),
    };
    this.api.update(snapshot);
  }

  private lastLocal: ObservedPostgres | undefined;
}

