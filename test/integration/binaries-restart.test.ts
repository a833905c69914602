/**
 * A restart on the very same postgres binary takes its major from the state file instead of
 * running `postgres --version` again; a binary replaced at the same path is noticed and asked.
 * `postgres` on PATH is a script of the test's that counts its --version calls and runs the real
 * one (the postgres it starts, and initdb's, are the real binaries).
 */
import { execFileSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { STATE_FILE } from '../../src/layout.js';
import { PG_PATH, testEnv } from '../support/env.js';
import { exitWithin, query, removeScratch, scratchDir, TestNode } from '../support/node.js';

/** Port 5743 belongs to this file. */
const PORT = 5743;

let dir: string;
const pgdata = () => join(dir, 'pgdata');
const bin = () => join(dir, 'bin');
const calls = () => join(dir, 'version-calls');
const node = () => new TestNode({ pgdata: pgdata(), port: PORT, env: { PATH: `${bin()}:${PG_PATH}` } });
const versionCalls = () => (existsSync(calls()) ? readFileSync(calls(), 'utf8').split('\n').filter(Boolean).length : 0);

/** Puts a new `postgres` script in place (a new file, as an upgrade would): `version` answers --version, if given. */
function installPostgres(version?: string): void {
  const real = join(testEnv.pgBin, 'postgres');
  const answer = version ? `echo 'postgres (PostgreSQL) ${version}'; exit 0` : `exec ${real} --version`;
  const tmp = join(bin(), '.postgres.new');
  writeFileSync(tmp, `#!/bin/sh\nif [ "$1" = --version ]; then echo x >> ${calls()}; ${answer}; fi\nexec ${real} "$@"\n`);
  chmodSync(tmp, 0o755);
  renameSync(tmp, join(bin(), 'postgres'));
}

async function startAndStop(): Promise<void> {
  const n = node();
  try {
    await n.ready();
    expect(await query(PORT, 'SELECT 1 AS one')).toEqual([{ one: 1 }]);
  } finally {
    expect((await n.stop()).code).toBe(0);
  }
}

/** The real binaries' major (the cluster's), and one that is not. */
const MAJOR = Number(/\(PostgreSQL\) (\d+)/.exec(execFileSync(join(testEnv.pgBin, 'postgres'), ['--version'], { encoding: 'utf8' }))![1]);
const OTHER = MAJOR + 1;

beforeAll(() => {
  dir = scratchDir();
  mkdirSync(bin(), { mode: 0o755 });
  installPostgres();
});
afterAll(() => removeScratch(dir));

describe('postgres --version on restart', () => {
  it('a first boot asks the binary and records it in the state file', async () => {
    await startAndStop();
    expect(versionCalls()).toBe(1);
    const state = JSON.parse(readFileSync(join(pgdata(), STATE_FILE), 'utf8'));
    expect(state.binaries).toMatchObject({ major: MAJOR });
    expect(state.binaries.identity).toContain(join(bin(), 'postgres'));
  });

  it('a restart on the same binary does not ask it again', async () => {
    await startAndStop();
    expect(versionCalls()).toBe(1);
  });

  it('a binary replaced at the same path is asked: one of another major is refused', async () => {
    installPostgres(`${OTHER}.4`);
    const res = await exitWithin(node());
    expect(res.code).not.toBe(0);
    expect(res.stderr).toContain(`holds a PostgreSQL ${MAJOR} cluster but these binaries are PostgreSQL ${OTHER}`);
    expect(versionCalls()).toBe(2);
  });

  it('the right binary back (a new file again): asked once, then recorded again', async () => {
    installPostgres();
    await startAndStop();
    expect(versionCalls()).toBe(3);
    await startAndStop();
    expect(versionCalls()).toBe(3);
  });
});
