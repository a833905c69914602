/**
 * A temporary server for bootstrap work, reachable only through the Unix socket
 * (listen_addresses=''), so no client can connect over the network before the cluster is ready.
 */
import { log } from '../log.js';
import { withLocalClient } from '../postgres/client.js';
import { run } from '../postgres/run.js';
import type { PasswordEncryption } from '../postgres/verifier.js';
import type { StepContext } from './context.js';

export function localTarget(ctx: StepContext, database?: string) {
  const { cfg } = ctx;
  return { socketDir: cfg.socketDir, port: cfg.port, user: cfg.postgresUser, password: cfg.postgresPassword, database };
}

export async function startTempServer(ctx: StepContext, dataDir: string): Promise<void> {
  const { cfg } = ctx;
  const opts = `-c listen_addresses='' -p ${cfg.port} -c unix_socket_directories=${cfg.socketDir}`;
  log.info({ dataDir }, 'starting a temporary server on the Unix socket only');
  await run('pg_ctl', ['-D', dataDir, '-w', '-t', '300', '-o', opts, 'start']);
  const encryption = await withLocalClient(localTarget(ctx), async (c) => {
    const r = await c.query<{ password_encryption: string }>('SHOW password_encryption');
    return r.rows[0]?.password_encryption ?? 'md5';
  });
  // Before 10 the setting was a boolean meaning md5.
  const passwordEncryption: PasswordEncryption = encryption === 'scram-sha-256' ? 'scram-sha-256' : 'md5';
  ctx.tempServer = { dataDir, passwordEncryption };
}

export async function stopTempServer(ctx: StepContext): Promise<void> {
  if (!ctx.tempServer) return;
  await run('pg_ctl', ['-D', ctx.tempServer.dataDir, '-m', 'fast', '-w', '-t', '300', 'stop']);
  ctx.tempServer = undefined;
  log.info('temporary server stopped');
}

export function requireTempServer(ctx: StepContext): NonNullable<StepContext['tempServer']> {
  if (!ctx.tempServer) throw new Error('internal: this step needs the temporary server, which is not running');
  return ctx.tempServer;
}
