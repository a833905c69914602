/**
 * A primary killed during its first boot (issue 6's fault matrix, first row): the entrypoint and
 * initdb (or the single-user bootstrap after it) killed together, as a crash does. The next start
 * discards only the interrupted build and boots a complete cluster.
 */
import { chmodSync, existsSync, mkdirSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { waitFor } from '../support/cluster.js';
import { PG_PATH, testEnv } from '../support/env.js';
import { query, removeScratch, scratchDir, TestNode } from '../support/node.js';

const PORT = 5708;
let dir: string;
let initdb: string;
const pgdata = () => join(dir, 'data');
const staging = () => join(pgdata(), '.pgrepl-staging-init');

beforeAll(() => {
  dir = scratchDir();
  initdb = join(dir, 'initdb.d');
  mkdirSync(initdb);
  chmodSync(initdb, 0o755);
});
afterAll(() => removeScratch(dir));

function start(env: Record<string, string> = {}) {
  // Its own process group: killing the group is what a crash does to the entrypoint and initdb.
  return new TestNode({ pgdata: pgdata(), port: PORT, detached: true, env: { PGREPL_INITDB_DIR: initdb, ...env } });
}

describe('a primary killed during its first boot', () => {
  it('during initdb: the next start discards the half-made copy and boots', async () => {
    const n = start();
    await waitFor('initdb to have started', async () => existsSync(join(staging(), 'base')), 30_000);
    n.killGroup('SIGKILL');
    await n.exited;
    const again = start();
    await again.ready();
    expect(again.logs().find((l) => l.row)?.row).toBe('missing/empty × PRIMARY');
    expect(again.stderr).toMatch(/discarded an interrupted build/);
    expect(readdirSync(pgdata()).filter((e) => e.startsWith('.pgrepl-'))).toEqual([]);
    expect((await query(PORT, "SELECT count(*)::int AS n FROM pg_database WHERE datname LIKE 'gestalt-%'"))[0]).toEqual({ n: 6 });
    expect((await again.stop()).code).toBe(0);
  });

  it('during the bootstrap in single-user mode: the same', async () => {
    rmSync(pgdata(), { recursive: true, force: true });
    // A postgres that, asked for single-user mode, says so with a marker and holds the start there.
    const markers = join(dir, 'markers');
    mkdirSync(markers, { mode: 0o777 });
    chmodSync(markers, 0o777);
    const marker = join(markers, 'single-user');
    const shim = join(dir, 'bin');
    mkdirSync(shim, { mode: 0o755 });
    writeFileSync(join(shim, 'postgres'), [
      '#!/bin/sh',
      `if [ "$1" = --single ]; then touch '${marker}'; exec sleep 600; fi`,
      `exec ${join(testEnv.pgBin, 'postgres')} "$@"`,
      '',
    ].join('\n'), { mode: 0o755 });
    const n = start({ PATH: `${shim}:${PG_PATH}` });
    await waitFor('the single-user bootstrap to have started', async () => existsSync(marker), 60_000);
    expect(readdirSync(pgdata())).toEqual(['.pgrepl-staging-init']);
    n.killGroup('SIGKILL');
    await n.exited;
    const again = start();
    await again.ready();
    expect(again.stderr).toMatch(/discarded an interrupted build/);
    expect(again.stderr).toMatch(/bootstrapping the new cluster in single-user mode/);
    expect(readdirSync(pgdata()).filter((e) => e.startsWith('.pgrepl-'))).toEqual([]);
    expect((await query(PORT, "SELECT count(*)::int AS n FROM pg_database WHERE datname LIKE 'gestalt-%'"))[0]).toEqual({ n: 6 });
    expect((await query(PORT, "SELECT count(*)::int AS n FROM pg_roles WHERE rolname = 'pgrepl' AND rolcanlogin"))[0]).toEqual({ n: 1 });
    expect((await again.stop()).code).toBe(0);
  });
});
