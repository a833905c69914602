/**
 * Durable, atomic replacement of a small file: a reader sees the old content or the new, never a
 * torn mix, and after return the new content survives a power loss. The sequence is the classic
 * one: write a temp file in the same directory, fsync it, rename it over the target, fsync the
 * directory (the rename itself lives in the directory's metadata).
 */
import { open, readFile, rename, rm, stat } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';

export async function fsyncDir(dir: string): Promise<void> {
  const fh = await open(dir, 'r');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

export async function writeFileAtomic(path: string, content: string, mode = 0o600): Promise<void> {
  const dir = dirname(path);
  const tmp = join(dir, `.${basename(path)}.tmp-${process.pid}`);
  const fh = await open(tmp, 'w', mode);
  try {
    await fh.writeFile(content);
    await fh.chmod(mode); // open()'s mode is filtered by the umask
    await fh.sync();
  } catch (err) {
    await fh.close();
    await rm(tmp, { force: true });
    throw err;
  }
  await fh.close();
  await rename(tmp, path);
  await fsyncDir(dir);
}

/**
 * writeFileAtomic, unless the file already holds exactly this with this mode: a restart mostly
 * writes what is there, and then two fsyncs and a new inode buy nothing.
 */
export async function writeFileAtomicIfChanged(path: string, content: string, mode = 0o600): Promise<void> {
  try {
    const [current, st] = await Promise.all([readFile(path, 'utf8'), stat(path)]);
    if (current === content && (st.mode & 0o777) === mode) return;
  } catch {
    // missing or unreadable: written below
  }
  await writeFileAtomic(path, content, mode);
}
