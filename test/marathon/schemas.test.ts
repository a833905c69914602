/**
 * The vendored schemas are the upstream files, byte for byte: AppDefinition.json has the git blob
 * id its README.txt records, and every vendored file equals its copy in ../shared/schemas when
 * that directory is there (a fresh clone may not have it).
 */
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ROOT } from './harness.js';
import { SCHEMA_DIR, validateApp } from './schemas.js';

const SHARED = resolve(ROOT, '..', 'shared', 'schemas');

function gitBlobId(bytes: Buffer): string {
  return createHash('sha1').update(`blob ${bytes.length}\0`).update(bytes).digest('hex');
}

describe('vendored schemas', () => {
  it('AppDefinition.json is the blob its README.txt names', () => {
    const readme = readFileSync(join(SCHEMA_DIR, 'marathon', 'README.txt'), 'utf8');
    const blob = /AppDefinition\.json\s+([0-9a-f]{40})/.exec(readme)![1];
    expect(gitBlobId(readFileSync(join(SCHEMA_DIR, 'marathon', 'AppDefinition.json')))).toBe(blob);
  });

  it.skipIf(!existsSync(SHARED))('each vendored file equals ../shared/schemas’s', () => {
    for (const sub of ['marathon', 'universe']) {
      for (const f of readdirSync(join(SCHEMA_DIR, sub))) {
        expect(readFileSync(join(SCHEMA_DIR, sub, f)).equals(readFileSync(join(SHARED, sub, f))), `${sub}/${f}`).toBe(true);
      }
    }
  });

  it('AppDefinition.json validates (draft-04, formats on)', () => {
    expect(validateApp({ id: '/a', cmd: 'sleep 1' })).toEqual([]);
    expect(validateApp({ id: '/a', version: 'yesterday' }).map((e) => e.keyword)).toContain('format');
    expect(validateApp({ id: '/A_b' }).map((e) => e.keyword)).toContain('pattern');
    expect(validateApp({ cmd: 'x' }).map((e) => e.keyword)).toContain('required');
  });
});
