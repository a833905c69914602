/**
 * Records, scoped to this node and cluster: the role the environment asked for, a standby's
 * timeline (see NodeState.standbyTimeline), the replication password applied (a salted hash) or
 * that replication is off, the peer a fenced PRIMARY follows (cleared on any other start), and
 * drops a `pgrepl follow` override the environment has since overruled.
 */
import type { Role } from '../config/env.js';
import { UserError } from '../errors.js';
import { knownBinaries } from '../observe/binaries.js';
import { readControlData } from '../observe/control-file.js';
import { newestTimeline } from '../observe/pgdata.js';
import { rememberNodeName } from '../state/node-name.js';
import { updateNodeState } from '../state/node-state.js';
import type { StepContext } from './context.js';

export async function recordState(ctx: StepContext, as: Role): Promise<void> {
  const { cfg } = ctx;
  await rememberNodeName(cfg.pgdata, cfg.nodeName);
  const control = await readControlData(cfg.pgdata);
  if (!control) throw new UserError(`PGDATA=${cfg.pgdata} has no readable global/pg_control: the cluster is damaged`);
  await updateNodeState(
    cfg.pgdata,
    { node: cfg.nodeName, systemIdentifier: control.systemIdentifier },
    {
      lastRole: cfg.role,
      binaries: knownBinaries(),
      ...(as === 'STANDBY' ? { standbyTimeline: await newestTimeline(cfg.pgdata, control.timeline) } : {}),
      ...(as === 'STANDBY' && ctx.upstream ? { upstream: { host: ctx.upstream.host, port: ctx.upstream.port } } : {}),
      ...(ctx.replicationAuth === 'off'
        ? { replicationAuth: undefined, replicationOff: true as const }
        : ctx.replicationAuth ? { replicationAuth: ctx.replicationAuth, replicationOff: undefined } : {}),
      ...(ctx.upstream?.dropFollow ? { follow: null } : {}),
      fenced: ctx.fenced && ctx.upstream ? { host: ctx.upstream.host, port: ctx.upstream.port } : null,
    },
  );
}
