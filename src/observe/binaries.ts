/**
 * Which PostgreSQL the binaries on PATH are. Compared with PGDATA's PG_VERSION before anything is
 * touched, and used to pick version-specific settings (wal_keep_size vs wal_keep_segments, ...).
 *
 * `postgres --version` runs once per binary: each start records the binary's identity and major
 * in the state file (record-state), and a restart that finds the very same file there (path,
 * inode, size, modification and change time) takes the major from the state instead of running
 * it again. Another binary (a new image, an upgrade, another PATH) differs in at least one of
 * these, and the change time cannot be set back by hand: then it is asked, as on a first start.
 */
import { execFile } from 'node:child_process';
import { readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { UserError } from '../errors.js';
import { withoutSecrets } from '../handover/postgres-env.js';
import { STATE_FILE } from '../layout.js';
import { resolveCommand } from '../util/command-path.js';

/** The binary whose major a state file recorded (NodeState.binaries). */
export interface RecordedBinaries {
  identity: string;
  major: number;
}

/** "postgres (PostgreSQL) 15.18 (Debian ...)" -> 15; "9.6.24" -> 9.6 (majors before 10 had two parts). */
export function parseMajor(versionOutput: string): number | undefined {
  const m = /\(PostgreSQL\)\s+(\d+)(?:\.(\d+))?/.exec(versionOutput);
  if (!m) return undefined;
  const first = Number(m[1]);
  return first >= 10 ? first : Number(`${m[1]}.${m[2] ?? 0}`);
}

/** `postgres` on PATH as a file: path, inode, size, modification and change time; undefined if not found. */
export function binaryIdentity(): string | undefined {
  try {
    const file = resolveCommand('postgres');
    const st = statSync(file, { bigint: true });
    return [file, st.ino, st.size, st.mtimeNs, st.ctimeNs].join(':');
  } catch {
    return undefined; // not on PATH: binariesMajor() says so
  }
}

/** `postgres --version` started ahead of time (probeBinaries), not asked for yet, with the identity of the binary it runs. */
let probe: { identity: string | undefined; answer: Promise<string> } | undefined;
/** The binary binariesMajor() last answered for. */
let known: RecordedBinaries | undefined;

// Started before the configuration is read (probeBinaries), so before the secrets are withheld from this process's environment.
const askVersion = async (): Promise<string> => (await promisify(execFile)('postgres', ['--version'], { env: withoutSecrets() })).stdout;

/** The identity first, then the question: a binary replaced in between is recorded as the old one, and asked again next time. */
const startProbe = () => ({ identity: binaryIdentity(), answer: askVersion() });

/**
 * The binary PGDATA's state file names, read before the configuration (PGDATA as the environment
 * gives it, the file not yet checked to be this node's): only to tell whether to start the probe.
 */
function recordedInPgdata(): RecordedBinaries | undefined {
  const pgdata = process.env.PGDATA;
  if (!pgdata) return undefined;
  try {
    return (JSON.parse(readFileSync(join(pgdata, STATE_FILE), 'utf8')) as { binaries?: RecordedBinaries }).binaries;
  } catch {
    return undefined; // none (a first start) or unreadable: observe reads it properly
  }
}

/**
 * Starts `postgres --version` now, for the next binariesMajor(): `pgrepl postgres` calls it
 * before it loads the entrypoint, so that the program runs (on another core) while Node loads
 * and configures, instead of after. Not when PGDATA's state file recorded this very binary (a
 * restart): binariesMajor() takes the major from there. Its failure is reported by
 * binariesMajor(), if it is asked.
 */
export function probeBinaries(): void {
  const current = binaryIdentity();
  if (current !== undefined && recordedInPgdata()?.identity === current) return;
  probe = { identity: current, answer: askVersion() };
  probe.answer.catch(() => undefined); // not asked (a refusal came first): not an unhandled rejection
}

/**
 * The binaries' major: what `recorded` (this node's state) says when it names this very binary
 * and no probe was started anyway, otherwise `postgres --version`'s answer.
 */
export async function binariesMajor(recorded?: RecordedBinaries): Promise<number> {
  if (!probe && typeof recorded?.major === 'number' && recorded.identity === binaryIdentity()) {
    known = { identity: recorded.identity, major: recorded.major };
    return recorded.major;
  }
  const asked = probe ?? startProbe();
  probe = undefined; // one answer per probe: the next caller asks again
  let out: string;
  try {
    out = await asked.answer;
  } catch (err) {
    const code = (err as { code?: string }).code;
    throw new UserError(
      code === 'ENOENT'
        ? 'postgres is not on PATH: add PostgreSQL\'s bin directory to PATH (e.g. PATH=/usr/lib/postgresql/15/bin:$PATH)'
        : `postgres --version failed: ${(err as Error).message.split('\n')[0]}`,
    );
  }
  const major = parseMajor(out);
  if (major === undefined) throw new UserError(`cannot tell the PostgreSQL version from "postgres --version": ${out}`);
  known = asked.identity === undefined ? undefined : { identity: asked.identity, major };
  return major;
}

/** The binary the last binariesMajor() answered for, to record in the state file (undefined: none, or not identified). */
export function knownBinaries(): RecordedBinaries | undefined {
  return known;
}
