/**
 * `pgrepl follow HOST[:PORT]`: point this standby at another upstream without re-cloning. The
 * choice is saved in the node's state, so a restart keeps it, until the environment names a
 * different upstream than it did when the choice was made (the operator's newer intent wins).
 * PostgreSQL 13+ applies it with a reload; 12 and older read primary_conninfo only at start.
 */
import type { Config } from '../config/env.js';
import { parseHostPort } from '../config/validators.js';
import { UserError } from '../errors.js';
import { readControlData } from '../observe/control-file.js';
import { observeUpstream } from '../observe/upstream.js';
import { log } from '../log.js';
import { effectiveUpstream, hostPort } from '../plan/upstream.js';
import { inRecovery } from '../postgres/promote.js';
import { createPhysicalSlot, replicationTarget, withReplicationClient } from '../postgres/replication.js';
import { readNodeState, updateNodeState } from '../state/node-state.js';
import { writeNodeSettings } from '../steps/settings.js';
import { dropOldSlot } from '../steps/slot.js';
import { refuseInHaMode } from './ha.js';
import { becomePostgres, EXIT_USAGE, nodeConfig, parseArgs, print, serverMajor, withNode, type Command } from './local.js';
import { COMMAND_HELP } from './help.js';

const USAGE = COMMAND_HELP.follow.usage;
/** How long follow keeps trying to reach the new upstream. */
const FOLLOW_PATIENCE_S = 60;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export const follow: Command = {
  async run(args) {
    const a = parseArgs(args, { flags: ['json'], positional: 1 }, USAGE);
    if (a.positional.length !== 1) throw new UserError(`follow needs exactly one HOST[:PORT]; usage: ${USAGE}`, EXIT_USAGE);
    let target;
    try {
      target = parseHostPort(a.positional[0]!, 'pgrepl follow pg2:5432');
    } catch (err) {
      throw new UserError(`"${a.positional[0]}" ${(err as Error).message}`, EXIT_USAGE);
    }
    const cfg = nodeConfig();
    refuseInHaMode(cfg.ha, 'follow');
    if (!cfg.upstream) throw new UserError('this node is not configured as a standby (PGREPL_ROLE=STANDBY with an upstream): nothing to re-point');
    becomePostgres(); // it rewrites files in PGDATA, which belong to postgres

    const control = await readControlData(cfg.pgdata);
    if (!control) throw new UserError(`PGDATA=${cfg.pgdata} has no readable global/pg_control: run follow inside the node`);
    const { major, sender } = await withNode(cfg, async (c) => {
      if (!(await inRecovery(c))) throw new UserError('this node is not a standby (it accepts writes): follow re-points standbys only');
      const wr = (await c.query('SELECT sender_host, sender_port FROM pg_stat_wal_receiver')).rows[0];
      return { major: await serverMajor(c), sender: wr?.sender_host && wr.sender_port ? { host: String(wr.sender_host), port: Number(wr.sender_port) } : undefined };
    });
    const me = { node: cfg.nodeName, systemIdentifier: control.systemIdentifier };
    const { state } = await readNodeState(cfg.pgdata, me);
    // Where its slot is now: the upstream it streams from, else the one it was configured to.
    const oldUpstream = sender ?? effectiveUpstream(cfg.upstream, state?.follow);
    // A minute of patience: right after a failover the new upstream may be busy, or briefly out
    // of reach while the network forgets the old primary (seen with podman's bridge networks).
    const found = await observeUpstream({
      target: replicationTarget(cfg, target), patienceSeconds: FOLLOW_PATIENCE_S, patienceFrom: 'follow\'s wait',
    });
    const where = hostPort(target);
    if (!found.reachable) throw new UserError(`the new upstream ${where} does not answer (${found.error}): nothing was changed`);
    if (found.systemIdentifier !== control.systemIdentifier) {
      throw new UserError(`the new upstream ${where} is system ${found.systemIdentifier}, this node is system ${control.systemIdentifier}: it can only follow a node of its own cluster; nothing was changed`);
    }
    if (found.major !== major) throw new UserError(`the new upstream ${where} runs PostgreSQL ${found.major}, this node ${major}: nothing was changed`);

    if (cfg.slots) {
      await withReplicationClient(replicationTarget(cfg, target), (c) => createPhysicalSlot(c, cfg.nodeName));
    }
    await updateNodeState(cfg.pgdata, me, { follow: { host: target.host, port: target.port, envUpstream: hostPort(cfg.upstream) } });
    await writeNodeSettings({ cfg, major, upstream: target, replicationAuthMethod: state?.replicationAuth?.method });

    let streaming = false;
    if (major >= 13) {
      streaming = await withNode(cfg, async (c) => {
        await c.query('SELECT pg_reload_conf()');
        for (let i = 0; i < 200; i++) {
          const r = (await c.query('SELECT status, sender_host, sender_port FROM pg_stat_wal_receiver')).rows[0];
          if (r && r.status === 'streaming' && r.sender_host === target.host && Number(r.sender_port) === target.port) return true;
          await sleep(100);
        }
        return false;
      });
    }
    // Only once it streams from the new upstream does it no longer need the old one's WAL.
    const oldSlot = streaming && cfg.slots && oldUpstream && hostPort(oldUpstream) !== where
      ? { upstream: hostPort(oldUpstream), slot: await dropOldSlot(cfg, oldUpstream) }
      : null;
    const result = { upstream: where, timeline: found.timeline, streaming, restartNeeded: major < 13, oldSlot };
    if (a.flags.has('json')) print(JSON.stringify(result));
    else if (major < 13) print(`following ${where} after a restart: PostgreSQL ${major} reads primary_conninfo only at start (the choice is saved)`);
    else if (streaming) print(`following ${where} (timeline ${found.timeline}): streaming`);
    else print(`following ${where}, but not streaming yet: if this node had gone past the new timeline's fork point, restart it: the entrypoint rewinds it`);
    return major < 13 || streaming ? 0 : 1;
  },
};
