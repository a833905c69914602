/** A node's postmaster acted on directly, behind pgrepl's back. */
import { spawn } from 'node:child_process';
import { existsSync, readFileSync, readlinkSync } from 'node:fs';
import { join } from 'node:path';
import type { RunResult } from './node.js';

/**
 * `pg_ctl promote -w` as `docker exec NODE gosu postgres pg_ctl promote` runs it: as the postgres
 * user, with nothing but PATH (the node's binaries first) and PGDATA.
 */
export function pgCtlPromote(pgdata: string, path: string): Promise<RunResult> {
  return new Promise((resolve) => {
    const c = spawn('runuser', ['-u', 'postgres', '--', 'pg_ctl', 'promote', '-w'], {
      env: { PATH: path, LANG: 'C.UTF-8', PGDATA: pgdata },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '', stderr = '';
    c.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    c.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    c.on('exit', (code, signal) => resolve({ code, signal, stdout, stderr }));
  });
}

/** The PID in pgdata's postmaster.pid, if there is one. */
export function postmasterPid(pgdata: string): number | undefined {
  const pidFile = join(pgdata, 'postmaster.pid');
  return existsSync(pidFile) ? Number(readFileSync(pidFile, 'utf8').split('\n')[0]) : undefined;
}

/**
 * Stops (SIGQUIT) a server left running in pgdata, e.g. by a failed start: only a postmaster of
 * this data directory (it runs in it), never a recycled PID.
 */
export function stopLeftoverPostmaster(pgdata: string): void {
  const pid = postmasterPid(pgdata);
  if (pid === undefined) return;
  try {
    if (readlinkSync(`/proc/${pid}/cwd`) === pgdata) process.kill(pid, 'SIGQUIT');
  } catch {
    // already gone
  }
}
