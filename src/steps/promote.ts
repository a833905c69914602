/** Promotion on start: the temporary server, started on a standby's data, is promoted. */
import { log } from '../log.js';
import { withLocalClient } from '../postgres/client.js';
import { currentTimeline, promote } from '../postgres/promote.js';
import { writePhase } from '../state/phase.js';
import type { StepContext } from './context.js';
import { localTarget, requireTempServer } from './temp-server.js';

export async function promoteTempServer(ctx: StepContext): Promise<void> {
  const { dataDir } = requireTempServer(ctx);
  writePhase(ctx.cfg.socketDir, ctx.cfg.port, 'promoting');
  const timeline = await withLocalClient(localTarget(ctx), async (c) => {
    await promote(c, { major: ctx.obs.binariesMajor, dataDir });
    return currentTimeline(c);
  });
  log.info({ timeline }, `promoted: this node is a primary on timeline ${timeline}`);
}
