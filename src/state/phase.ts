/**
 * What a node is busy with before postgres runs (waiting for its upstream, cloning, rewinding),
 * for `pgrepl health`: a node that is still cloning must read as "starting", not as dead, or an
 * orchestrator would kill it mid-copy and it would never finish.
 *
 * Runtime state, not data: it lives beside the Unix socket (/var/run/postgresql), keyed by port,
 * never in PGDATA, and it names the process that wrote it (PID and start time: in a container
 * the PID is always 1), so a file left by a killed process is recognised as stale.
 */
import { chownSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export type Phase = 'preparing' | 'waiting for upstream' | 'cloning' | 'rewinding' | 'promoting';

const file = (socketDir: string, port: number) => join(socketDir, `.pgrepl-${port}.phase`);

/** The kernel's start time of a process (field 22 of /proc/PID/stat), to tell a reused PID apart. */
function startTime(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19];
  } catch {
    return undefined;
  }
}

interface PhaseFile {
  phase: Phase;
  pid: number;
  started: string | undefined;
  since: string;
}

export function writePhase(socketDir: string, port: number, phase: Phase): void {
  try {
    const path = file(socketDir, port);
    const content: PhaseFile = { phase, pid: process.pid, started: startTime(process.pid), since: new Date().toISOString() };
    writeFileSync(path, JSON.stringify(content) + '\n', { mode: 0o644 });
    // Written as root, it must stay replaceable and removable by postgres after the privilege
    // drop (the socket directory is sticky): give it to the directory's owner.
    if (process.getuid?.() === 0) {
      const dir = statSync(socketDir);
      chownSync(path, dir.uid, dir.gid);
    }
  } catch {
    // Best effort: health then reports what it can see of postgres itself.
  }
}

export function clearPhase(socketDir: string, port: number): void {
  try {
    rmSync(file(socketDir, port), { force: true });
  } catch {
    // Not ours to remove (written by another user): empty it, which reads as no phase.
    try {
      writeFileSync(file(socketDir, port), '');
    } catch {
      // Nothing more to do: readPhase checks that the writer is alive.
    }
  }
}

/** The phase, if the process that wrote it is still the one running. */
export function readPhase(socketDir: string, port: number): PhaseFile | undefined {
  let p: PhaseFile;
  try {
    p = JSON.parse(readFileSync(file(socketDir, port), 'utf8')) as PhaseFile;
  } catch {
    return undefined;
  }
  const now = startTime(p.pid);
  return now !== undefined && now === p.started ? p : undefined;
}
