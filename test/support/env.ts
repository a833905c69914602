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
  /** Majors newer than Debian's (16), server binaries only, by major: Debian's pg_basebackup cannot clone them. */
  newerMajors?: Record<string, string>;
}

function load(): TestEnv {
  const file = join(ROOT, '.tmp', 'test-env.json');
  if (!existsSync(file)) throw new Error('run `npm run setup:test` first (or `npm test`, which does it)');
  return JSON.parse(readFileSync(file, 'utf8')) as TestEnv;
}

export const testEnv = load();

/** PATH with the PostgreSQL binaries first. */
export const PG_PATH = `${testEnv.pgBin}:${process.env.PATH ?? '/usr/bin:/bin'}`;

export interface OtherMajor {
  major: number;
  bin: string;
  /** PATH: this major's server binaries first, then pgBin's client tools. */
  path: string;
}
const withPaths = (bins: Record<string, string> | undefined): OtherMajor[] =>
  Object.entries(bins ?? {})
    .map(([major, bin]) => ({ major: Number(major), bin, path: `${bin}:${PG_PATH}` }))
    .sort((a, b) => a.major - b.major);

/** The older majors set up for the version tests (11-14): pgBin's client tools clone them. */
export const OLDER_MAJORS: OtherMajor[] = withPaths(testEnv.olderMajors);
/** The newer majors set up (16): pgBin's client tools cannot clone them (test/integration/pg16.test.ts). */
export const NEWER_MAJORS: OtherMajor[] = withPaths(testEnv.newerMajors);
