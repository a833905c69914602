/**
 * No token, no replication (issue 13, point 7), on real servers through the bundle. A PRIMARY
 * started without PGREPL_TOKEN is a plain PostgreSQL server: the role pgrepl cannot log in, pg_hba
 * has no replication rule for it, one warning says so, and a standby is refused with one line. The
 * same PGDATA started with a token (the original image's abc123, set on purpose) replicates; started
 * without one again, it turns replication off again.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { replicationPassword } from '../../src/config/token.js';
import { HBA_BEGIN } from '../../src/postgres/settings.js';
import { isInRecovery, standbyOf, waitFor, waitForRows } from '../support/cluster.js';
import { identifySystem, query, removeScratch, scratchDir, TestNode, exitWithin } from '../support/node.js';

const P = 6481, S = 6482, T = 6483;
/** The token the original image used when none was given: still works when set on purpose. */
const ORIGINAL_TOKEN = 'abc123';
const NO_TOKEN = { PGREPL_TOKEN: undefined };

let dir: string;
const pgdata = (port: number) => join(dir, `n${port}`);
const running = new Set<TestNode>();

function node(port: number, env: Record<string, string | undefined>): TestNode {
  const n = new TestNode({ pgdata: pgdata(port), port, env });
  running.add(n);
  void n.exited.then(() => running.delete(n));
  return n;
}


const warnings = (n: TestNode) => n.logs().filter((l) => l.level === 40).map((l) => l.msg);
const pgreplRules = async (port: number) =>
  (await query<{ n: number }>(port, "SELECT count(*)::int AS n FROM pg_hba_file_rules WHERE 'pgrepl' = ANY(user_name)"))[0]!.n;
const canLogIn = async (port: number) =>
  (await query<{ rolcanlogin: boolean }>(port, "SELECT rolcanlogin FROM pg_roles WHERE rolname = 'pgrepl'")).map((r) => r.rolcanlogin);

beforeAll(() => {
  dir = scratchDir();
});
afterAll(async () => {
  for (const n of [...running]) await n.stop().catch(() => undefined);
  removeScratch(dir);
});

describe('a primary without PGREPL_TOKEN', () => {
  it('starts as a plain PostgreSQL server: the role pgrepl cannot log in, no replication rule, one warning', async () => {
    const p = node(P, NO_TOKEN);
    await p.ready();
    expect(await query(P, 'SELECT 1 AS one')).toEqual([{ one: 1 }]);
    const tokenWarnings = warnings(p).filter((w) => w.includes('PGREPL_TOKEN'));
    expect(tokenWarnings).toHaveLength(1);
    expect(tokenWarnings[0]).toMatch(/^PGREPL_TOKEN is not set: replication is off/);
    // No role that can log in (none at all on a new cluster), and no pg_hba rule that names it.
    expect(await canLogIn(P)).not.toContain(true);
    expect(await pgreplRules(P)).toBe(0);
    expect(readFileSync(join(pgdata(P), 'pg_hba.conf'), 'utf8')).not.toContain(HBA_BEGIN);
    // Nobody replicates with a well-known token: the original image's default is refused.
    await expect(identifySystem(P, replicationPassword(ORIGINAL_TOKEN))).rejects.toThrow(/pgrepl/);
  });

  it('refuses a standby with one line that names PGREPL_TOKEN; the standby creates nothing', async () => {
    const res = await exitWithin(node(T, { PGREPL_TOKEN: ORIGINAL_TOKEN, ...standbyOf(P) }));
    expect(res.code).toBe(1);
    const fatal = res.stderr.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as { level: number; msg: string }).filter((l) => l.level === 60);
    expect(fatal).toHaveLength(1);
    expect(fatal[0]!.msg).toMatch(
      new RegExp(`^the upstream 127\\.0\\.0\\.1:${P} has no role pgrepl \\(28000: .*\\): it runs without replication, as a primary first started without PGREPL_TOKEN does; set PGREPL_TOKEN .*; nothing was changed$`),
    );
    expect(existsSync(pgdata(T))).toBe(false);
  });
});

describe('the same PGDATA started with a token', () => {
  it('PGREPL_TOKEN=abc123 set on purpose turns replication on: the role logs in, the rules are there, a standby clones and streams', async () => {
    const [p] = [...running];
    await p!.stop();
    const q = node(P, { PGREPL_TOKEN: ORIGINAL_TOKEN });
    await q.ready();
    expect(warnings(q).filter((w) => w.includes('PGREPL_TOKEN'))).toEqual([]);
    expect(q.logs().find((l) => typeof l.row === 'string')?.row).toBe('primary cluster × PRIMARY');
    expect(await canLogIn(P)).toEqual([true]);
    expect(await pgreplRules(P)).toBeGreaterThan(0);
    expect((await identifySystem(P, replicationPassword(ORIGINAL_TOKEN))).timeline).toBe(1);

    await query(P, 'CREATE TABLE t (v int)');
    await query(P, 'INSERT INTO t VALUES (1)');
    const s = node(S, { PGREPL_TOKEN: ORIGINAL_TOKEN, ...standbyOf(P) });
    await s.ready();
    expect(await isInRecovery(S)).toBe(true);
    await query(P, 'INSERT INTO t VALUES (2)');
    await waitForRows(S, 't', 2);
  });

  it('started without it again, replication is off again: the role cannot log in, the rules are gone, the standby keeps its data', async () => {
    for (const n of [...running]) await n.stop();
    const p = node(P, NO_TOKEN);
    await p.ready();
    expect(warnings(p).filter((w) => w.includes('PGREPL_TOKEN'))).toHaveLength(1);
    expect(await canLogIn(P)).toEqual([false]);
    expect(await pgreplRules(P)).toBe(0);
    await expect(identifySystem(P, replicationPassword(ORIGINAL_TOKEN))).rejects.toThrow(/not permitted to log in/);

    // The standby starts on the data it has, serving reads, and says why it does not stream.
    const s = node(S, { PGREPL_TOKEN: ORIGINAL_TOKEN, ...standbyOf(P) });
    await s.ready();
    expect(await isInRecovery(S)).toBe(true);
    await waitForRows(S, 't', 2);
    const start = s.logs().find((l) => typeof l.row === 'string');
    expect(start?.msg).toMatch(/does not let the role pgrepl log in .*replication off.*PGREPL_TOKEN/);

    // A later start with the token turns it on again, and the standby streams once more.
    await p.stop();
    const q = node(P, { PGREPL_TOKEN: ORIGINAL_TOKEN });
    await q.ready();
    await query(P, 'INSERT INTO t VALUES (3)');
    await waitFor('the standby streaming again', async () => (await query<{ n: number }>(S, 'SELECT count(*)::int AS n FROM t'))[0]!.n === 3, 90_000);
  });
});
