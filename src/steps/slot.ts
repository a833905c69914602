/**
 * This node's physical replication slot on its upstream, named after the node. Created at clone
 * time (steps/clone.ts); created again at a start that did not find it there (observe), because
 * the upstream may have changed (a follow, a promotion) and a standby whose primary_slot_name does
 * not exist there never streams. The slot
 * on an upstream this node left is dropped when that one answers and nothing uses the slot: it
 * would keep WAL there for ever.
 */
import type { Config } from '../config/env.js';
import type { HostPort } from '../config/validators.js';
import { log } from '../log.js';
import { hostPort } from '../plan/upstream.js';
import { createPhysicalSlot, dropInactiveSlot, replicationTarget, withReplicationClient, type OldSlotOutcome } from '../postgres/replication.js';
import { requireUpstream, type StepContext } from './context.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Creates this node's slot on its upstream; the planner asks only when it was not seen there. */
export async function createSlot(ctx: StepContext): Promise<void> {
  const up = requireUpstream(ctx);
  const name = ctx.cfg.nodeName;
  const target = replicationTarget(ctx.cfg, up, name);
  const created = await withReplicationClient(target, (c) => createPhysicalSlot(c, name));
  log.info({ slot: name, upstream: `${up.host}:${up.port}` }, created ? 'created this node\'s slot on the upstream' : 'this node\'s slot exists on the upstream');
}

/**
 * Drops this node's slot on the upstream it left, so that it does not keep WAL there for ever.
 * Its old walsender may take a moment to notice the walreceiver left: an active slot gets a few
 * more looks, then is left alone.
 */
export async function dropOldSlot(cfg: Config, old: HostPort): Promise<OldSlotOutcome> {
  const target = replicationTarget(cfg, old);
  let outcome = await dropInactiveSlot(target, cfg.nodeName);
  for (let i = 0; outcome === 'active' && i < 20; i++) {
    await sleep(250);
    outcome = await dropInactiveSlot(target, cfg.nodeName);
  }
  const where = hostPort(old);
  const fields = { slot: cfg.nodeName, oldUpstream: where };
  const hint = `SELECT pg_drop_replication_slot('${cfg.nodeName}') there once nothing uses it`;
  if (outcome === 'dropped') log.info(fields, `dropped this node's slot on the old upstream ${where}`);
  if (outcome === 'active') log.warn(fields, `left the slot ${cfg.nodeName} on the old upstream ${where}: a walsender still uses it (this node's old connection, or another node of this name); ${hint}`);
  if (outcome === 'unreachable') log.warn(fields, `the old upstream ${where} cannot be asked: this node's slot there, if any, keeps WAL until dropped (${hint})`);
  return outcome;
}
