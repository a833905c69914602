import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { writeFileAtomicIfChanged } from '../../src/util/atomic-file.js';

describe('writeFileAtomicIfChanged', () => {
  it('writes a missing file, leaves one with the same content and mode, replaces one that differs in either', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'atomic-'));
    const file = join(dir, 'f.conf');
    await writeFileAtomicIfChanged(file, 'a = 1\n', 0o600);
    expect(readFileSync(file, 'utf8')).toBe('a = 1\n');
    const first = statSync(file).ino;
    await writeFileAtomicIfChanged(file, 'a = 1\n', 0o600);
    expect(statSync(file).ino).toBe(first);
    await writeFileAtomicIfChanged(file, 'a = 1\n', 0o640);
    expect(statSync(file).mode & 0o777).toBe(0o640);
    const second = statSync(file).ino; // (the first inode is free again, and may be reused)
    await writeFileAtomicIfChanged(file, 'a = 2\n', 0o640);
    expect(readFileSync(file, 'utf8')).toBe('a = 2\n');
    expect(statSync(file).ino).not.toBe(second);
    rmSync(dir, { recursive: true, force: true });
  });
});
