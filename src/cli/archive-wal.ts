/**
 * `pgrepl archive-wal --dir DIR WALPATH WALNAME`: PostgreSQL's archive_command (%p %f), which
 * pgrepl.conf sets when PGREPL_ARCHIVE_DIR is given. It copies one WAL file into the archive:
 *   - atomically and durably: a temporary file in the archive directory, fsync, then a hard link
 *     to the final name (a rename would silently replace a file of that name), fsync the directory;
 *   - never over a different file: an archived segment of the same name with other content means
 *     two primaries write into one archive (split brain) or an old archive was restored; it is
 *     refused (exit 1, one line in the server's log) and PostgreSQL keeps the segment and retries;
 *   - idempotently: an identical file already there is success (PostgreSQL re-runs the command
 *     for a segment whose archiving was interrupted after the copy).
 * The directory defaults to PGREPL_ARCHIVE_DIR; pgrepl.conf always names it, so the command does
 * not depend on the server's environment.
 */
import { link, open, rm } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { checkAbsolutePath } from '../config/validators.js';
import { UserError } from '../errors.js';
import { fsyncDir } from '../util/atomic-file.js';
import { EXIT_USAGE, parseArgs, type Command } from './args.js';
import { COMMAND_HELP } from './help.js';

/** WAL segments, timeline history files, backup labels and partial segments: all PostgreSQL archives. */
const WAL_NAME = /^[0-9A-F]{8}(?:\.history|[0-9A-F]{16}(?:\.partial|\.[0-9A-F]{8}\.backup)?)$/;

export type ArchiveResult = 'archived' | 'already archived';

/** Resolves the archive directory: --dir, else PGREPL_ARCHIVE_DIR (validated as in the configuration). */
export function archiveDirOf(flag: string | undefined, usage: string, env: NodeJS.ProcessEnv = process.env): string {
  const raw = flag ?? env.PGREPL_ARCHIVE_DIR;
  if (raw === undefined || raw === '') throw new UserError(`no archive directory: give --dir DIR or set PGREPL_ARCHIVE_DIR; usage: ${usage}`, EXIT_USAGE);
  try {
    return checkAbsolutePath(raw, '--dir /var/lib/postgresql/archive');
  } catch (err) {
    throw new UserError(`archive directory "${raw}" ${(err as Error).message}; usage: ${usage}`, EXIT_USAGE);
  }
}

export function checkWalName(name: string, usage: string): void {
  if (!WAL_NAME.test(name)) throw new UserError(`"${name}" is not the name of a WAL file (e.g. 000000010000000000000003); usage: ${usage}`, EXIT_USAGE);
}

/** Whether two files have the same bytes. */
async function sameContent(a: string, b: string): Promise<boolean> {
  const fa = await open(a, 'r');
  try {
    const fb = await open(b, 'r');
    try {
      const [sa, sb] = await Promise.all([fa.stat(), fb.stat()]);
      if (sa.size !== sb.size) return false;
      const size = 1 << 20;
      const ba = Buffer.alloc(size);
      const bb = Buffer.alloc(size);
      for (let pos = 0; pos < sa.size; pos += size) {
        const [ra, rb] = await Promise.all([fa.read(ba, 0, size, pos), fb.read(bb, 0, size, pos)]);
        if (ra.bytesRead !== rb.bytesRead || !ba.subarray(0, ra.bytesRead).equals(bb.subarray(0, rb.bytesRead))) return false;
      }
      return true;
    } finally {
      await fb.close();
    }
  } finally {
    await fa.close();
  }
}

function conflict(target: string): UserError {
  return new UserError(
    `archive-wal: ${target} already exists with different content: refusing to overwrite it. Two primaries archiving into one directory (split brain), or an archive of another cluster or an older run? Find out which node wrote it before moving it away; PostgreSQL keeps the segment and retries`,
  );
}

/** Copies `source` into `dir` as `name`; see the file's comment. */
export async function archiveWal(source: string, name: string, dir: string): Promise<ArchiveResult> {
  const target = join(dir, name);
  const exists = async () => {
    try {
      return await sameContent(source, target) ? 'same' : 'different';
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT' && (err as NodeJS.ErrnoException).path === target) return 'none';
      throw err;
    }
  };
  const before = await exists();
  if (before === 'same') {
    await fsyncDir(dir); // an earlier run may have died between its link and its fsync
    return 'already archived';
  }
  if (before === 'different') throw conflict(target);

  // A name no other run picks (it is created exclusively, wx): 48 random bits, from Math.random,
  // not node:crypto, whose loading alone costs every segment a few ms.
  const tmp = join(dir, `.${name}.pgrepl-tmp-${Math.floor(Math.random() * 2 ** 48).toString(16).padStart(12, '0')}`);
  const src = await open(source, 'r');
  try {
    try {
      const out = await open(tmp, 'wx', 0o600);
      try {
        const buf = Buffer.alloc(1 << 20);
        for (;;) {
          const { bytesRead } = await src.read(buf, 0, buf.length, null);
          if (bytesRead === 0) break;
          await out.write(buf, 0, bytesRead);
        }
        await out.sync();
      } finally {
        await out.close();
      }
      try {
        await link(tmp, target); // fails if the name exists: never replaces a file
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
        // Someone archived this name meanwhile: fine if it is the same file.
        if (!(await sameContent(tmp, target))) throw conflict(target);
        return 'already archived';
      }
    } finally {
      // Also after a failed copy (the archive's disk full): PostgreSQL retries, and a partial
      // copy left behind on every try would keep the disk full.
      await rm(tmp, { force: true });
    }
    await fsyncDir(dir);
  } finally {
    await src.close();
  }
  return 'archived';
}

const USAGE = COMMAND_HELP['archive-wal'].usage;

export const archiveWalCommand: Command = {
  async run(args) {
    const a = parseArgs(args, { values: ['dir'], positional: 2 }, USAGE);
    if (a.positional.length !== 2) throw new UserError(`archive-wal needs WALPATH and WALNAME (%p %f); usage: ${USAGE}`, EXIT_USAGE);
    const [path, name] = a.positional as [string, string];
    checkWalName(name, USAGE);
    await archiveWal(resolve(path), name, archiveDirOf(a.values.get('dir'), USAGE));
    return 0;
  },
};
