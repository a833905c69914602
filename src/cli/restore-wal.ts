/**
 * `pgrepl restore-wal --dir DIR WALNAME DESTPATH`: PostgreSQL's restore_command (%f %p), which a
 * standby's configuration sets when PGREPL_ARCHIVE_DIR is given. It copies one file from the
 * archive to where the server asked for it. A file the archive does not have is an ordinary
 * answer, not an error: PostgreSQL asks for files that may not exist (the next timeline's history
 * file, the segment after the last one archived) and then streams from its upstream instead; so
 * it exits 1 without a word, as restore_command must (any exit above 125 would end recovery).
 */
import { access, copyFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { UserError } from '../errors.js';
import { archiveDirOf, checkWalName } from './archive-wal.js';
import { EXIT_USAGE, parseArgs, type Command } from './args.js';
import { COMMAND_HELP } from './help.js';

export const NOT_IN_ARCHIVE = 1;

/** Copies `name` from the archive `dir` to `dest`; false if the archive does not have it. */
export async function restoreWal(name: string, dest: string, dir: string): Promise<boolean> {
  const source = join(dir, name);
  try {
    await copyFile(source, dest);
    return true;
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    // ENOENT names the source for a missing destination directory too: look again.
    if (e.code === 'ENOENT' && !(await access(source).then(() => true, () => false))) return false;
    throw new UserError(`restore-wal: cannot copy ${source} to ${dest}: ${e.code ?? e.message}`);
  }
}

const USAGE = COMMAND_HELP['restore-wal'].usage;

export const restoreWalCommand: Command = {
  async run(args) {
    const a = parseArgs(args, { values: ['dir'], positional: 2 }, USAGE);
    if (a.positional.length !== 2) throw new UserError(`restore-wal needs WALNAME and DESTPATH (%f %p); usage: ${USAGE}`, EXIT_USAGE);
    const [name, dest] = a.positional as [string, string];
    checkWalName(name, USAGE);
    return (await restoreWal(name, resolve(dest), archiveDirOf(a.values.get('dir'), USAGE))) ? 0 : NOT_IN_ARCHIVE;
  },
};
