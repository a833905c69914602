/**
 * No password, token or derived hash in any log line or any process's command line. While nodes
 * boot (initdb, temporary server, init scripts; single-user mode without them), restart and rotate the token, every process's
 * argv is sampled from /proc; afterwards the samples and all output are searched.
 */
import { readdirSync, readFileSync, writeFileSync, mkdirSync, chmodSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { replicationPassword } from '../../src/config/token.js';
import { standbyOf } from '../support/cluster.js';
import { removeScratch, runCommand, scratchDir, TestNode } from '../support/node.js';

const PASSWORD = 'Pw-NEVER-LOGGED-8c1f';
const TOKEN = 'Token-NEVER-LOGGED-51aa';
const TOKEN2 = 'Token2-NEVER-LOGGED-77be';
const SECRETS = [PASSWORD, TOKEN, TOKEN2, replicationPassword(TOKEN), replicationPassword(TOKEN2)];

let dir: string;
beforeAll(() => {
  dir = scratchDir();
});
afterAll(() => removeScratch(dir));

/** Samples /proc/<pid>/cmdline of every process until stopped. */
function sampleCommandLines(): { stop: () => string[] } {
  const seen = new Set<string>();
  const timer = setInterval(() => {
    for (const pid of readdirSync('/proc').filter((p) => /^\d+$/.test(p))) {
      try {
        seen.add(readFileSync(`/proc/${pid}/cmdline`, 'utf8').replace(/\0/g, ' '));
      } catch {
        // gone already
      }
    }
  }, 5);
  return {
    stop: () => {
      clearInterval(timer);
      return [...seen];
    },
  };
}

describe('secrets', () => {
  it('never appear in logs or on any command line', async () => {
    const initdb = join(dir, 'initdb.d');
    mkdirSync(initdb);
    writeFileSync(join(initdb, '10.sql'), 'SELECT 1;\n');
    writeFileSync(join(initdb, '20.sh'), 'docker_process_sql -c "SELECT 2"\n');
    chmodSync(initdb, 0o755);
    const sampler = sampleCommandLines();
    const outputs: string[] = [];
    const env = { POSTGRES_PASSWORD: PASSWORD, PGREPL_TOKEN: TOKEN, PGREPL_INITDB_DIR: initdb, PGREPL_DEBUG: 'true' };
    const pgdata = join(dir, 'data');

    for (const tokenEnv of [{}, {}, { PGREPL_TOKEN: TOKEN2 }]) {
      const n = new TestNode({ pgdata, port: 5741, env: { ...env, ...tokenEnv } });
      await n.ready();
      const res = await n.stop();
      outputs.push(res.stdout, res.stderr);
    }
    // A standby: pg_basebackup, the slot, primary_conninfo, a reload by `pgrepl follow`.
    const primary = new TestNode({ pgdata, port: 5741, env: { ...env, PGREPL_TOKEN: TOKEN2 } });
    await primary.ready();
    const standbyOpts = { pgdata: join(dir, 'standby'), port: 5742, env: { ...env, PGREPL_TOKEN: TOKEN2, ...standbyOf(5741) } };
    const standby = new TestNode(standbyOpts);
    await standby.ready();
    const follow = await runCommand(standbyOpts, ['follow', 'localhost:5741']); // another spelling: a real change
    expect(follow.stdout).toMatch(/streaming/);
    outputs.push(follow.stdout, follow.stderr);
    for (const n of [standby, primary]) {
      const res = await n.stop();
      outputs.push(res.stdout, res.stderr);
    }
    // A first boot without init scripts: the bootstrap in single-user mode (its statements on stdin).
    const single = new TestNode({ pgdata: join(dir, 'single'), port: 5744, env: { ...env, PGREPL_INITDB_DIR: join(dir, 'no-scripts') } });
    await single.ready();
    const singleRes = await single.stop();
    outputs.push(singleRes.stdout, singleRes.stderr);
    const commandLines = sampler.stop();

    // The test must be able to fail: the sampler saw the work happen.
    expect(commandLines.some((c) => c.includes('initdb'))).toBe(true);
    expect(commandLines.some((c) => c.includes('pg_ctl'))).toBe(true);
    expect(commandLines.some((c) => c.includes('pg_basebackup'))).toBe(true);
    expect(commandLines.some((c) => c.includes('--single'))).toBe(true);
    expect(outputs.join('')).toMatch(/parameter "primary_conninfo" changed/); // the reload was logged
    expect(outputs.join('')).toMatch(/replication role password re-applied/);

    for (const secret of SECRETS) {
      expect(commandLines.filter((c) => c.includes(secret))).toEqual([]);
      for (const out of outputs) expect(out.includes(secret)).toBe(false);
    }
  });
});
