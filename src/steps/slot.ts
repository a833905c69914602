/**
 * This node's physical replication slot on its upstream, named after the node. Created at clone
 * time; ensured again on every start, because the upstream may have changed (a follow, a
 * promotion) and a standby whose primary_slot_name does not exist there never streams.
 */
import { log } from '../log.js';
import { createPhysicalSlot, slotExists, withReplicationClient } from '../postgres/replication.js';
import { requireUpstream, type StepContext } from './context.js';

export async function ensureSlot(ctx: StepContext): Promise<void> {
  const up = requireUpstream(ctx);
  const name = ctx.cfg.nodeName;
  const target = { host: up.host, port: up.port, password: ctx.cfg.replicationPassword, applicationName: name };
  // Look first: a failed CREATE would leave an ERROR line in the upstream's log on every start.
  const created = (await slotExists(target, name)) ? false : await withReplicationClient(target, (c) => createPhysicalSlot(c, name));
  log.info({ slot: name, upstream: `${up.host}:${up.port}` }, created ? 'created this node\'s slot on the upstream' : 'this node\'s slot exists on the upstream');
}
