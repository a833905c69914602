/**
 * What a node is busy with before postgres runs (waiting for its upstream, cloning, rewinding),
 * for `pgrepl health`: a node that is still cloning must read as "starting", not as dead, or an
 * orchestrator would kill it mid-copy and it would never finish.
 *
 * Runtime state, not data: it lives beside the Unix socket (/var/run/postgresql), keyed by port,
 * never in PGDATA, and it names the PID that wrote it, so a file left by a killed process is
 * recognised as stale.
 */
import { chownSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export type Phase = 'waiting for upstream' | 'cloning' | 'rewinding' | 'bootstrapping' | 'promoting';

const file = (socketDir: string, port: number) => join(socketDir, `.pgrepl-${port}.phase`);

export function writePhase(socketDir: string, port: number, phase: Phase, owner?: { uid: number; gid: number }): void {
  try {
    const path = file(socketDir, port);
    writeFileSync(path, JSON.stringify({ phase, pid: process.pid, since: new Date().toISOString() }) + '\n', { mode: 0o644 });
    if (owner) chownSync(path, owner.uid, owner.gid);
  } catch {
    // Best effort: health then reports what it can see of postgres itself.
  }
}

export function clearPhase(socketDir: string, port: number): void {
  rmSync(file(socketDir, port), { force: true });
}

/** The phase, if the process that wrote it is still alive. */
export function readPhase(socketDir: string, port: number): { phase: Phase; pid: number; since: string } | undefined {
  try {
    const p = JSON.parse(readFileSync(file(socketDir, port), 'utf8')) as { phase: Phase; pid: number; since: string };
    process.kill(p.pid, 0);
    return p;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EPERM') {
      return JSON.parse(readFileSync(file(socketDir, port), 'utf8'));
    }
    return undefined;
  }
}
