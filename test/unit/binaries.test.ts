import { chmodSync, mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { binariesMajor, knownBinaries } from '../../src/observe/binaries.js';

const dir = mkdtempSync(join(tmpdir(), 'binaries-'));
const calls = join(dir, 'calls');
const savedPath = process.env.PATH;
process.env.PATH = `${dir}:${savedPath}`;
afterAll(() => {
  process.env.PATH = savedPath;
  rmSync(dir, { recursive: true, force: true });
});

/** A `postgres` on PATH that answers --version with `version` and counts the calls; a new file each time. */
function install(version: string): void {
  writeFileSync(join(dir, '.new'), `#!/bin/sh\necho x >> ${calls}\necho 'postgres (PostgreSQL) ${version} (test)'\n`);
  chmodSync(join(dir, '.new'), 0o755);
  renameSync(join(dir, '.new'), join(dir, 'postgres'));
}
const asked = () => readFileSync(calls, 'utf8').split('\n').filter(Boolean).length;

describe('the binaries\' major', () => {
  it('is asked of postgres, and known with the binary\'s identity for the state file', async () => {
    install('15.3');
    expect(await binariesMajor()).toBe(15);
    expect(asked()).toBe(1);
    expect(knownBinaries()).toMatchObject({ major: 15, identity: expect.stringContaining(join(dir, 'postgres')) });
  });

  it('comes from the record when it names this very binary, without asking', async () => {
    const recorded = knownBinaries()!;
    expect(await binariesMajor(recorded)).toBe(15);
    expect(await binariesMajor({ ...recorded, major: 14 })).toBe(14); // the record is believed
    expect(asked()).toBe(1);
  });

  it('is asked again when the binary at that path is another file, or the record names another', async () => {
    const recorded = knownBinaries()!;
    install('16.1');
    expect(await binariesMajor(recorded)).toBe(16);
    expect(asked()).toBe(2);
    expect(await binariesMajor({ identity: `${recorded.identity}x`, major: 15 })).toBe(16);
    expect(asked()).toBe(3);
  });
});
