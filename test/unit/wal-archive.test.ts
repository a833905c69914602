import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { archiveDirOf, archiveWal, archiveWalCommand } from '../../src/cli/archive-wal.js';
import { restoreWal } from '../../src/cli/restore-wal.js';
import { archiveCommand, restoreCommand } from '../../src/postgres/settings.js';
import { UserError } from '../../src/errors.js';

const root = mkdtempSync(join(tmpdir(), 'wal-archive-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

let n = 0;
function setup(): { pgwal: string; archive: string } {
  const base = join(root, `case${++n}`);
  const pgwal = join(base, 'pg_wal');
  const archive = join(base, 'archive');
  mkdirSync(pgwal, { recursive: true });
  mkdirSync(archive, { recursive: true });
  return { pgwal, archive };
}

const SEG = '000000010000000000000003';

describe('archive-wal', () => {
  it('copies a segment into the archive, private (0600), leaving no temporary file', async () => {
    const { pgwal, archive } = setup();
    writeFileSync(join(pgwal, SEG), Buffer.alloc(3 << 20, 7));
    expect(await archiveWal(join(pgwal, SEG), SEG, archive)).toBe('archived');
    expect(readdirSync(archive)).toEqual([SEG]);
    expect(readFileSync(join(archive, SEG)).equals(Buffer.alloc(3 << 20, 7))).toBe(true);
    expect(statSync(join(archive, SEG)).mode & 0o777).toBe(0o600);
  });

  it('succeeds again on an identical file (PostgreSQL retries after an interrupted archive)', async () => {
    const { pgwal, archive } = setup();
    writeFileSync(join(pgwal, SEG), 'same bytes');
    await archiveWal(join(pgwal, SEG), SEG, archive);
    expect(await archiveWal(join(pgwal, SEG), SEG, archive)).toBe('already archived');
    expect(readdirSync(archive)).toEqual([SEG]);
  });

  it('refuses to overwrite a different file of the same name, and leaves it as it was', async () => {
    const { pgwal, archive } = setup();
    writeFileSync(join(archive, SEG), 'written by another primary');
    writeFileSync(join(pgwal, SEG), 'written by this primary...');
    const err = await archiveWal(join(pgwal, SEG), SEG, archive).then(() => undefined, (e: unknown) => e);
    expect(err).toBeInstanceOf(UserError);
    expect((err as UserError).exitCode).toBe(1);
    expect((err as Error).message).toMatch(new RegExp(`^archive-wal: ${join(archive, SEG)} already exists with different content: refusing to overwrite it\\.`));
    expect((err as Error).message).not.toContain('\n');
    expect(readFileSync(join(archive, SEG), 'utf8')).toBe('written by another primary');
    expect(readdirSync(archive)).toEqual([SEG]);
  });

  it('a missing source is an error, not a success', async () => {
    const { pgwal, archive } = setup();
    await expect(archiveWal(join(pgwal, SEG), SEG, archive)).rejects.toThrow(/ENOENT/);
    expect(readdirSync(archive)).toEqual([]);
  });

  it('accepts only WAL file names, and needs an absolute archive directory', async () => {
    await expect(archiveWalCommand.run(['--dir', '/a', 'pg_wal/x', '../etc/passwd'])).rejects.toMatchObject({ exitCode: 64 });
    await expect(archiveWalCommand.run(['--dir', 'rel', `pg_wal/${SEG}`, SEG])).rejects.toMatchObject({ exitCode: 64 });
    for (const ok of [SEG, '00000002.history', `${SEG}.partial`, `${SEG}.00000028.backup`]) {
      await expect(archiveWalCommand.run(['--dir', '/nonexistent-archive', `/nonexistent/${ok}`, ok])).rejects.toThrow(/ENOENT/);
    }
    expect(archiveDirOf(undefined, 'u', { PGREPL_ARCHIVE_DIR: '/srv//archive/' })).toBe('/srv/archive');
    expect(() => archiveDirOf(undefined, 'u', {})).toThrow(/give --dir DIR or set PGREPL_ARCHIVE_DIR/);
  });
});

describe('restore-wal', () => {
  it('copies a file from the archive, and answers false (exit 1) when the archive lacks it', async () => {
    const { pgwal, archive } = setup();
    writeFileSync(join(archive, SEG), 'segment');
    expect(await restoreWal(SEG, join(pgwal, 'RECOVERYXLOG'), archive)).toBe(true);
    expect(readFileSync(join(pgwal, 'RECOVERYXLOG'), 'utf8')).toBe('segment');
    expect(await restoreWal('00000002.history', join(pgwal, 'RECOVERYHISTORY'), archive)).toBe(false);
    await expect(restoreWal(SEG, join(pgwal, 'missing-dir', 'RECOVERYXLOG'), archive)).rejects.toThrow(/cannot copy/);
  });
});

describe('archive_command and restore_command', () => {
  /** What PostgreSQL does before handing the command to sh -c. */
  const substitute = (cmd: string, p: string, f: string) =>
    cmd.replace(/%(.)/g, (m, c: string) => (c === 'p' ? p : c === 'f' ? f : c === '%' ? '%' : m));

  it('pass every path through the shell unchanged: spaces, quotes, $, * and %', () => {
    const dir = mkdtempSync(join(tmpdir(), 'quote-'));
    const script = join(dir, "it's $HOME * 100%p.sh");
    writeFileSync(script, '#!/bin/sh\nfor a in "$@"; do printf "%s\\n" "$a"; done\n', { mode: 0o755 });
    const archive = { dir: "/srv/wal 'archive' $X %f", self: [script, '/opt/pg repl/pgrepl.cjs'] };
    const run = (cmd: string) => execFileSync('sh', ['-c', substitute(cmd, `pg_wal/${SEG}`, SEG)], { encoding: 'utf8' }).split('\n').slice(0, -1);
    expect(run(archiveCommand(archive))).toEqual(['/opt/pg repl/pgrepl.cjs', 'archive-wal', '--dir', archive.dir, `pg_wal/${SEG}`, SEG]);
    expect(run(restoreCommand(archive))).toEqual(['/opt/pg repl/pgrepl.cjs', 'restore-wal', '--dir', archive.dir, SEG, `pg_wal/${SEG}`]);
    rmSync(dir, { recursive: true, force: true });
  });
});
