/**
 * Cloning the upstream with pg_basebackup into the clone staging directory inside PGDATA:
 * --checkpoint=fast (docker-pgrepl waited for a spread checkpoint, minutes on a quiet primary),
 * -X stream (the WAL needed to make the copy consistent comes along).
 *
 * The slot first, then pg_basebackup with --no-slot. pg_basebackup's WAL stream reports flush
 * positions whenever it streams into a slot (its --slot, or the temporary one it makes by
 * default), and a walsender that reports them counts for `synchronous_standby_names = 'ANY n (*)'`:
 * a half-written copy would acknowledge commits, on the node a failover might pick. Without a
 * slot it reports none, so only a started standby counts. The WAL the copy needs is still kept:
 * a physical slot created with RESERVE_WAL holds it from the upstream's last redo point, and the
 * backup starts at a checkpoint (a restartpoint on a standby) made after that. With PGREPL_SLOTS=on
 * it is this node's own slot, which it then streams through once started; with off, a temporary
 * slot, dropped when the connection held open for the length of the copy closes.
 * The password travels in the child's environment, never on its command line.
 */
import { join } from 'node:path';
import type pg from 'pg';
import { REPLICATION_USER } from '../config/token.js';
import { UserError } from '../errors.js';
import { STAGING_CLONE } from '../layout.js';
import { log } from '../log.js';
import { createPhysicalSlot, createTemporaryPhysicalSlot, dropSlotIfExists, PROBE_PATIENCE, replicationTarget, withReplicationClient } from '../postgres/replication.js';
import { runWithLines } from '../postgres/run.js';
import { libpqTlsEnv } from '../postgres/tls.js';
import { writePhase } from '../state/phase.js';
import { requireUpstream, type StepContext } from './context.js';
import { writeTlsFiles } from './tls.js';

/** The temporary slot of a clone with PGREPL_SLOTS=off: next to the node's own name, 63 characters at most. */
export const temporarySlotName = (node: string) => `${node.slice(0, 57)}_clone`;

/**
 * Makes the slot that keeps the copy's WAL, and returns its name. A slot of this node's name left
 * on the upstream by an earlier, interrupted attempt is ours to replace; one in use, or made in
 * between, belongs to another node of the same name.
 */
async function reserveWal(c: pg.Client, ctx: StepContext): Promise<string> {
  const up = requireUpstream(ctx);
  const name = ctx.cfg.nodeName;
  const sameName = (slot: string) =>
    new UserError(`PGREPL_NODE_NAME=${name}: another standby with this name is streaming from ${up.host}:${up.port} through slot "${slot}": give every node its own PGREPL_NODE_NAME`);
  if (!ctx.cfg.slots) {
    const slot = temporarySlotName(name);
    if (!(await createTemporaryPhysicalSlot(c, slot))) throw sameName(slot);
    return slot;
  }
  try {
    if (await dropSlotIfExists(c, name)) log.info({ slot: name }, 'dropped a slot of this node\'s name left by an earlier attempt');
  } catch (err) {
    if ((err as { code?: string }).code === '55006') throw sameName(name);
    throw err;
  }
  if (!(await createPhysicalSlot(c, name))) throw sameName(name);
  return name;
}

export async function clone(ctx: StepContext): Promise<void> {
  const { cfg } = ctx;
  const up = requireUpstream(ctx);
  const args = [
    '-h', up.host, '-p', String(up.port), '-U', REPLICATION_USER, '-D', join(cfg.pgdata, STAGING_CLONE),
    '--checkpoint=fast', '-X', 'stream', '--no-slot', '--no-password', '--progress', '--verbose',
  ];
  if (cfg.initdbWaldir) args.push(`--waldir=${cfg.initdbWaldir}`);
  // The connection stays open while pg_basebackup runs: it holds the temporary slot. So what it
  // is asked is not bounded as a probe's questions are (the copy may take hours); connecting is.
  const target = replicationTarget(cfg, up);
  await writeTlsFiles(cfg); // the CA pg_basebackup verifies the upstream with
  await withReplicationClient(target, async (c) => {
    const slot = await reserveWal(c, ctx);
    writePhase(cfg.socketDir, cfg.port, 'cloning');
    log.info({ upstream: `${up.host}:${up.port}`, slot, temporary: !cfg.slots || undefined }, 'cloning the upstream with pg_basebackup');

    // pg_basebackup redraws its progress line; log it at most every 2 s.
    let last = 0;
    const env = { PGPASSWORD: cfg.replicationPassword.reveal(), PGAPPNAME: cfg.nodeName, PGCONNECT_TIMEOUT: '10', ...libpqTlsEnv(target.tls, cfg.pgdata) };
    await runWithLines('pg_basebackup', args, { env }, (line) => {
      const progress = /^(\d+)\/(\d+) kB \((\d+)%\)/.exec(line);
      if (!progress) return log.info(line);
      if (Date.now() - last >= 2000 || progress[3] === '100') {
        last = Date.now();
        log.info({ doneKb: Number(progress[1]), totalKb: Number(progress[2]) }, `clone ${progress[3]}%`);
      }
    });
  }, PROBE_PATIENCE.connectMs, 0);
}
