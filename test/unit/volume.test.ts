import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { findStrayClusters } from '../../src/observe/volume.js';

let volume: string;
const cluster = (dir: string, major: string) => {
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'PG_VERSION'), `${major}\n`);
};

beforeEach(() => {
  volume = mkdtempSync(join(tmpdir(), 'pgrepl-volume-'));
});
afterEach(() => rmSync(volume, { recursive: true, force: true }));

describe('clusters beside PGDATA in the 18+ volume layout', () => {
  it('none in a fresh volume (with the official image data -> . link)', async () => {
    symlinkSync('.', join(volume, 'data'));
    expect(await findStrayClusters(join(volume, '18', 'docker'))).toEqual([]);
  });

  it('a volume of the layout up to 17 (the cluster at its top) is found once, not again through data/', async () => {
    symlinkSync('.', join(volume, 'data'));
    cluster(volume, '17');
    expect(await findStrayClusters(join(volume, '18', 'docker'))).toEqual([{ path: volume, major: '17' }]);
  });

  it('a cluster in data/ (the parent of an old volume mounted here), and another major\'s directory', async () => {
    cluster(join(volume, 'data'), '16');
    cluster(join(volume, '17', 'docker'), '17');
    mkdirSync(join(volume, '18', 'docker'), { recursive: true });
    expect(await findStrayClusters(join(volume, '18', 'docker'))).toEqual([
      { path: join(volume, 'data'), major: '16' },
      { path: join(volume, '17', 'docker'), major: '17' },
    ]);
  });

  it('never PGDATA itself', async () => {
    cluster(join(volume, '18', 'docker'), '18');
    expect(await findStrayClusters(join(volume, '18', 'docker'))).toEqual([]);
  });

  it('nothing is looked for when PGDATA has another shape (up to 17: the volume is PGDATA)', async () => {
    cluster(join(volume, 'old'), '15');
    expect(await findStrayClusters(join(volume, 'data'))).toEqual([]);
    expect(await findStrayClusters(join(volume, 'old', 'pgdata'))).toEqual([]);
  });
});
