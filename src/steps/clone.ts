/**
 * Cloning the upstream with pg_basebackup into the clone staging directory inside PGDATA:
 * --checkpoint=fast (docker-pgrepl waited for a spread checkpoint, minutes on a quiet primary),
 * -X stream (the WAL needed to make the copy consistent comes along), and this node's physical
 * slot created on the upstream in the same step, so no WAL it needs is recycled between the copy
 * and the first start. The password travels in the child's environment, never on its command line.
 */
import { join } from 'node:path';
import { REPLICATION_USER } from '../config/token.js';
import { UserError } from '../errors.js';
import { STAGING_CLONE } from '../layout.js';
import { log } from '../log.js';
import { dropSlotIfExists, withReplicationClient } from '../postgres/replication.js';
import { runWithLines } from '../postgres/run.js';
import { writePhase } from '../state/phase.js';
import { requireUpstream, type StepContext } from './context.js';

/** A slot of this node's name left on the upstream by an earlier, interrupted attempt is ours to replace. */
async function dropStaleSlot(ctx: StepContext): Promise<void> {
  const up = requireUpstream(ctx);
  const name = ctx.cfg.nodeName;
  await withReplicationClient({ host: up.host, port: up.port, password: ctx.cfg.replicationPassword, applicationName: name }, async (c) => {
    try {
      if (await dropSlotIfExists(c, name)) log.info({ slot: name }, 'dropped a slot of this node\'s name left by an earlier attempt');
    } catch (err) {
      if ((err as { code?: string }).code === '55006') {
        throw new UserError(
          `PGREPL_NODE_NAME=${name}: another standby with this name is streaming from ${up.host}:${up.port} through slot "${name}": give every node its own PGREPL_NODE_NAME`,
        );
      }
      throw err;
    }
  });
}

export async function clone(ctx: StepContext): Promise<void> {
  const { cfg } = ctx;
  const up = requireUpstream(ctx);
  if (cfg.slots) await dropStaleSlot(ctx);
  const args = [
    '-h', up.host, '-p', String(up.port), '-U', REPLICATION_USER, '-D', join(cfg.pgdata, STAGING_CLONE),
    '--checkpoint=fast', '-X', 'stream', '--no-password', '--progress', '--verbose',
  ];
  if (cfg.slots) args.push('--create-slot', `--slot=${cfg.nodeName}`);
  if (cfg.initdbWaldir) args.push(`--waldir=${cfg.initdbWaldir}`);
  writePhase(cfg.socketDir, cfg.port, 'cloning');
  log.info({ upstream: `${up.host}:${up.port}`, slot: cfg.slots ? cfg.nodeName : undefined }, 'cloning the upstream with pg_basebackup');

  // pg_basebackup redraws its progress line; log it at most every 2 s.
  let last = 0;
  await runWithLines('pg_basebackup', args, { env: { PGPASSWORD: cfg.replicationPassword.reveal(), PGAPPNAME: cfg.nodeName } }, (line) => {
    const progress = /^(\d+)\/(\d+) kB \((\d+)%\)/.exec(line);
    if (!progress) return log.info(line);
    if (Date.now() - last >= 2000 || progress[3] === '100') {
      last = Date.now();
      log.info({ doneKb: Number(progress[1]), totalKb: Number(progress[2]) }, `clone ${progress[3]}%`);
    }
  });
}
