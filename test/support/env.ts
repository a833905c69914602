/** Where the tests find PostgreSQL and Node 24 (written by scripts/setup-test-env.mjs). */
import { existsSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';

export const ROOT = resolve(import.meta.dirname, '..', '..');
export const BUNDLE = join(ROOT, 'dist', 'pgrepl.cjs');

interface TestEnv {
  pgBin: string;
  node24: string;
  /** Older majors' server binaries (initdb, pg_ctl, postgres only), by major: "11" -> bin dir. */
  olderMajors?: Record<string, string>;
}

function load(): TestEnv {
  const file = join(ROOT, '.tmp', 'test-env.json');
  if (!existsSync(file)) throw new Error('run `npm run setup:test` first (or `npm test`, which does it)');
  return JSON.parse(readFileSync(file, 'utf8')) as TestEnv;
}

export const testEnv = load();

/** PATH with the PostgreSQL binaries first. */
export const PG_PATH = `${testEnv.pgBin}:${process.env.PATH ?? '/usr/bin:/bin'}`;

/** The older majors set up for the version tests, with PATH: their server binaries first, then pgBin's client tools. */
export const OLDER_MAJORS: { major: number; bin: string; path: string }[] = Object.entries(testEnv.olderMajors ?? {})
  .map(([major, bin]) => ({ major: Number(major), bin, path: `${bin}:${PG_PATH}` }))
  .sort((a, b) => a.major - b.major);
