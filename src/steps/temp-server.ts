/**
 * A temporary server for bootstrap work, reachable only through the Unix socket
 * (listen_addresses empty), so no client can connect over the network before the cluster is ready.
 *
 * Readiness and shutdown are watched in postmaster.pid every 10 ms rather than with `pg_ctl -w`,
 * which looks only every 100 ms (two of those waits were a third of a restart's overhead).
 *
 * On a cluster still being built in staging, the server also runs with fsync off: if the machine
 * crashes, the staging copy is discarded on the next start anyway, and sync-staging flushes it to
 * disk once, before it is moved in.
 *
 * The user's postgres arguments come first, as the official image's temporary server gets "$@"
 * (an init script may need -c shared_preload_libraries=...); pgrepl's settings follow, and win.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { log } from '../log.js';
import { withLocalClient } from '../postgres/client.js';
import { run } from '../postgres/run.js';
import { shellWord } from '../postgres/settings.js';
import { asPasswordEncryption } from '../postgres/verifier.js';
import type { StepContext } from './context.js';
import { serverArgs } from './server-args.js';
import { STAGING_SETTINGS } from './staging.js';

const TIMEOUT_MS = 300_000;
const POLL_MS = 10;

export function localTarget(ctx: StepContext, database?: string) {
  const { cfg } = ctx;
  return { socketDir: cfg.socketDir, port: cfg.port, user: cfg.postgresUser, password: cfg.postgresPassword, database };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** postmaster.pid: line 1 the PID, line 8 the status (starting, ready, standby, stopping). */
export async function readPidFile(dataDir: string): Promise<{ pid: number; status: string } | undefined> {
  try {
    const lines = (await readFile(join(dataDir, 'postmaster.pid'), 'utf8')).split('\n');
    return { pid: Number(lines[0]), status: (lines[7] ?? '').trim() };
  } catch {
    return undefined;
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

async function waitUntilReady(dataDir: string): Promise<void> {
  const started = Date.now();
  let seen = false;
  for (;;) {
    const pidFile = await readPidFile(dataDir);
    if (pidFile) {
      seen = true;
      if (pidFile.status === 'ready' || pidFile.status === 'standby') return;
      if (!alive(pidFile.pid)) break;
    } else if (seen || Date.now() - started > 10_000) {
      break; // it removed its pid file again, or never wrote one: it failed
    }
    if (Date.now() - started > TIMEOUT_MS) break;
    await sleep(POLL_MS);
  }
  throw new Error(`the temporary server on ${dataDir} did not start; its log is above`);
}

async function waitUntilStopped(dataDir: string): Promise<void> {
  const deadline = Date.now() + TIMEOUT_MS;
  for (;;) {
    const pidFile = await readPidFile(dataDir);
    if (!pidFile || !alive(pidFile.pid)) return;
    if (Date.now() > deadline) throw new Error(`the temporary server on ${dataDir} did not stop`);
    await sleep(POLL_MS);
  }
}

export async function startTempServer(ctx: StepContext, dataDir: string, opts: { staging: boolean; extra?: string[] }): Promise<void> {
  const { cfg } = ctx;
  // No standby can reach a socket-only server: with synchronous replication configured, every
  // commit there (the replication role's password, after a promotion) would wait forever.
  const settings = [
    'listen_addresses=', `port=${cfg.port}`, `unix_socket_directories=${cfg.socketDir}`, 'synchronous_standby_names=', ...(opts.extra ?? []),
  ];
  if (opts.staging) settings.push(...STAGING_SETTINGS);
  log.info({ dataDir }, 'starting a temporary server on the Unix socket only');
  // pg_ctl hands -o to postgres through sh -c: every word quoted.
  const args = [...(await serverArgs(ctx.postgresArgs, dataDir)), ...settings.flatMap((s) => ['-c', s])];
  await run('pg_ctl', ['-D', dataDir, '-W', '-o', args.map(shellWord).join(' '), 'start']);
  await waitUntilReady(dataDir);
  const encryption = await withLocalClient(localTarget(ctx), async (c) => {
    const r = await c.query<{ password_encryption: string }>('SHOW password_encryption');
    return r.rows[0]?.password_encryption ?? 'md5';
  });
  ctx.passwordEncryption = asPasswordEncryption(encryption);
  ctx.tempServer = { dataDir };
}

export async function stopTempServer(ctx: StepContext): Promise<void> {
  if (!ctx.tempServer) return;
  const { dataDir } = ctx.tempServer;
  await run('pg_ctl', ['-D', dataDir, '-m', 'fast', '-W', 'stop']);
  await waitUntilStopped(dataDir);
  ctx.tempServer = undefined;
  log.info('temporary server stopped');
}

export function requireTempServer(ctx: StepContext): NonNullable<StepContext['tempServer']> {
  if (!ctx.tempServer) throw new Error('internal: this step needs the temporary server, which is not running');
  return ctx.tempServer;
}
