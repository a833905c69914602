/** `pgrepl promote [--json]`: promote this standby, return once it accepts writes, print the timeline. */
import { currentTimeline, inRecovery, promote as promoteServer } from '../postgres/promote.js';
import { refuseInHaMode } from './ha.js';
import { becomePostgres, nodeConfig, parseArgs, print, serverMajor, withNode, type Command } from './local.js';
import { COMMAND_HELP } from './help.js';

const USAGE = COMMAND_HELP.promote.usage;

export const promote: Command = {
  async run(args) {
    const a = parseArgs(args, { flags: ['json'] }, USAGE);
    const cfg = nodeConfig();
    refuseInHaMode(cfg.ha, 'promote');
    becomePostgres(); // pg_ctl promote (before 12) runs as the server's user
    const result = await withNode(cfg, async (c) => {
      if (!(await inRecovery(c))) return { promoted: false, timeline: await currentTimeline(c) };
      await promoteServer(c, { major: await serverMajor(c), dataDir: cfg.pgdata });
      // Write the new timeline into the control file now: pg_rewind, run by a former primary to
      // rejoin this node, reads the timeline from there.
      await c.query('CHECKPOINT');
      return { promoted: true, timeline: await currentTimeline(c) };
    });
    if (a.flags.has('json')) print(JSON.stringify(result));
    else print(result.promoted ? `promoted: now a primary on timeline ${result.timeline}` : `not a standby: already a primary on timeline ${result.timeline}`);
    return result.promoted ? 0 : 1;
  },
};
