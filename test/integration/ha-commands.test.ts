/**
 * The HA operator commands that need only etcd (src/cli/ha.ts), through the bundle against a real
 * 1-member etcd (Debian's etcd-server) on 127.0.0.1:2421-2422; 2429 is where no etcd listens.
 * Keys are written with our client in the layout of src/ha/keys.ts; `pgrepl list`, `pause`,
 * `resume` and `history` are checked on their exact output; without PGREPL_ETCD_ENDPOINTS they
 * refuse, and so do promote and follow in HA mode; etcd refusing connections or frozen is one
 * line, exit 1 (the frozen one within PGREPL_RETRY_TIMEOUT, no hang); with
 * etcd's authentication the password reaches no output.
 */
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EtcdClient } from '../../src/etcd/index.js';
import { encodeHistory, encodeInitialize, encodeLeader, encodeMember, encodeSync, haKeys } from '../../src/ha/keys.js';
import type { HistoryEntry, MemberKey } from '../../src/ha/types.js';
import { EtcdCluster } from '../support/etcd-cluster.js';
import { removeScratch, runCommand, scratchDir, type RunResult } from '../support/node.js';

const ETCD_BASE = 2421;
const NOBODY = 'http://127.0.0.1:2429';
const CLUSTER = 'cmds';
const K = haKeys(`/pgrepl/${CLUSTER}/`);
const TIMEOUT_MS = 2000;

let etcd: EtcdCluster;
let client: EtcdClient;
let dir: string;

/** A command as an operator runs it: the nodes' etcd variables, no postgres anywhere (PGPORT where nothing listens). */
const run = (args: string[], env: Record<string, string | undefined> = {}): Promise<RunResult> =>
  runCommand({ pgdata: join(dir, 'pgdata'), port: 5999, env: { PGREPL_ETCD_ENDPOINTS: etcd.endpoints.join(','), PGREPL_CLUSTER: CLUSTER, ...env } }, args);

/** The one fatal line's message, checking it is the only output. */
function refusal(r: RunResult): string {
  expect(r.stdout).toBe('');
  const lines = r.stderr.trim().split('\n');
  expect(lines).toHaveLength(1);
  return JSON.parse(lines[0]!).msg as string;
}

const member = (name: string, port: number, over: Partial<MemberKey> = {}): MemberKey => ({
  name, instance: `instance-${name}`, address: `127.0.0.1:${port}`, api: `127.0.0.1:${port + 1000}`,
  role: 'standby', state: 'streaming', timeline: 2, nofailover: false, ...over,
});

const HISTORY: HistoryEntry[] = [
  { timeline: 2, lsn: '0/3000148', leader: 'n1', at: '2024-05-01T12:00:00.000Z', why: 'no leader; n1 was the healthiest' },
  { timeline: 3, lsn: '0/5000060', leader: 'n2', at: '2024-05-02T08:30:00.000Z', why: 'switchover from n1' },
];

beforeAll(async () => {
  dir = scratchDir();
  etcd = await EtcdCluster.start({ basePort: ETCD_BASE, members: 1 });
  client = new EtcdClient({ endpoints: etcd.endpoints, timeoutMs: TIMEOUT_MS });
});

afterAll(async () => {
  client?.close();
  await etcd?.stopAll();
  if (dir) removeScratch(dir);
});

describe('pgrepl list, pause, resume, history against etcd', () => {
  it('list on an empty cluster: no leader, no members; history: none recorded', async () => {
    const l = await run(['list']);
    expect(l).toMatchObject({ code: 0, stderr: '' });
    expect(l.stdout).toBe('Cluster cmds (not initialised): no leader\nNo members: no agent has published itself yet\n');
    const h = await run(['history']);
    expect(h).toMatchObject({ code: 0, stderr: '', stdout: 'Cluster cmds: no promotions recorded\n' });
    expect(JSON.parse((await run(['history', '--json'])).stdout)).toEqual([]);
  });

  it('list shows the keys as written: the leader first, lag against its write position, tags', async () => {
    const lease = (await client.leaseGrant(30)).id;
    await client.put(K.initialize, encodeInitialize('7312345678901234567'));
    await client.put(K.leader, encodeLeader('n2'), { lease });
    await client.put(K.member('n1'), encodeMember(member('n1', 5001, { receivedLsn: '0/5000000', replayedLsn: '0/5000000' })), { lease });
    await client.put(K.member('n2'), encodeMember(member('n2', 5002, { role: 'primary', state: 'running', writeLsn: '0/5000060' })), { lease });
    await client.put(K.member('n3'), encodeMember(member('n3', 5003, { nofailover: true })), { lease });
    await client.put(K.sync, encodeSync({ leader: 'n2', standbys: ['n1'] }));
    await client.put(K.history, encodeHistory(HISTORY));

    const l = await run(['list']);
    expect(l).toMatchObject({ code: 0, stderr: '' });
    expect(l.stdout).toBe([
      'Cluster cmds (system 7312345678901234567): leader n2, timeline 2',
      'Member  Address         Role     State      TL      Lag  Tags',
      'n2      127.0.0.1:5002  primary  running     2           leader',
      '├─ n1   127.0.0.1:5001  standby  streaming   2     96 B  sync',
      '└─ n3   127.0.0.1:5003  standby  streaming   2  unknown  nofailover',
      '',
    ].join('\n'));

    const j = await run(['list', '--json']);
    expect(j).toMatchObject({ code: 0, stderr: '' });
    const listed = JSON.parse(j.stdout);
    expect(listed).toMatchObject({ cluster: 'cmds', system: '7312345678901234567', leader: 'n2', timeline: 2, pause: false, sync: ['n1'], switchover: null });
    expect(listed.members.map((m: { name: string; lagBytes: number | null; tags: string[] }) => [m.name, m.lagBytes, m.tags])).toEqual([
      ['n2', null, ['leader']], ['n1', 96, ['sync']], ['n3', null, ['nofailover']],
    ]);
  });

  it('history: the entries as a table, oldest first, and as JSON', async () => {
    const h = await run(['history']);
    expect(h).toMatchObject({ code: 0, stderr: '' });
    expect(h.stdout).toBe([
      'Timeline  LSN        Leader  At                        Why',
      '       2  0/3000148  n1      2024-05-01T12:00:00.000Z  no leader; n1 was the healthiest',
      '       3  0/5000060  n2      2024-05-02T08:30:00.000Z  switchover from n1',
      '',
    ].join('\n'));
    const j = await run(['history', '--json']);
    expect(j).toMatchObject({ code: 0, stderr: '' });
    expect(JSON.parse(j.stdout)).toEqual(HISTORY);
  });

  it('pause puts the key (twice: kept as it was), list shows it; resume deletes it (twice: nothing to do)', async () => {
    const p = await run(['pause']);
    expect(p).toMatchObject({ code: 0, stderr: '', stdout: 'paused cluster cmds: no automatic failover, promotion or switchover until `pgrepl resume`\n' });
    const first = await client.get(K.pause);
    expect(first).toBeDefined();
    expect(Date.parse(JSON.parse(first!.value).at)).not.toBeNaN();

    const again = await run(['pause']);
    expect(again).toMatchObject({ code: 0, stderr: '', stdout: 'cluster cmds was already paused: nothing changed\n' });
    expect((await client.get(K.pause))!.modRevision).toBe(first!.modRevision);

    const l = await run(['list']);
    expect(l.stdout.split('\n').slice(0, 2)).toEqual([
      'Cluster cmds (system 7312345678901234567): leader n2, timeline 2',
      'Paused: no automatic failover, promotion or switchover until `pgrepl resume`',
    ]);
    expect(JSON.parse((await run(['list', '--json'])).stdout).pause).toBe(true);

    const r = await run(['resume']);
    expect(r).toMatchObject({ code: 0, stderr: '', stdout: 'resumed cluster cmds: automatic failover, promotion and switchover are on again\n' });
    expect(await client.get(K.pause)).toBeUndefined();
    const r2 = await run(['resume']);
    expect(r2).toMatchObject({ code: 0, stderr: '', stdout: 'cluster cmds was not paused: nothing changed\n' });
    expect(JSON.parse((await run(['list', '--json'])).stdout).pause).toBe(false);
  });

  it('a key that cannot be read is one warning on stderr; the rest is still listed', async () => {
    await client.put(K.member('n4'), '{not json');
    try {
      const l = await run(['list', '--json']);
      expect(l.code).toBe(0);
      expect(l.stderr).toBe('warning: some keys could not be read and are left out: /pgrepl/cmds/members/n4: not JSON: "{not json"\n');
      expect(JSON.parse(l.stdout).members.map((m: { name: string }) => m.name)).toEqual(['n2', 'n1', 'n3']);
    } finally {
      await client.delete(K.member('n4'));
    }
  });

  it('a malformed command is a usage error (64), nothing written', async () => {
    expect(refusal(await run(['pause', 'now']))).toBe('unexpected argument "now"; usage: pgrepl pause');
    expect(refusal(await run(['list', '--jsn']))).toBe('unknown option --jsn; usage: pgrepl list [--json]');
    expect((await run(['pause', 'now'])).code).toBe(64);
    expect(await client.get(K.pause)).toBeUndefined();
  });
});

describe('refusals', () => {
  it('without PGREPL_ETCD_ENDPOINTS each command refuses in one line, exit 1', async () => {
    for (const cmd of ['list', 'pause', 'resume', 'history']) {
      const r = await run([cmd], { PGREPL_ETCD_ENDPOINTS: undefined, PGREPL_CLUSTER: undefined });
      expect(r.code).toBe(1);
      expect(refusal(r)).toBe(`pgrepl ${cmd} needs HA mode: set PGREPL_ETCD_ENDPOINTS to the etcd the nodes use (e.g. PGREPL_ETCD_ENDPOINTS=http://etcd1:2379), with the same PGREPL_CLUSTER`);
    }
  });

  it('promote and follow refuse in HA mode, naming switchover and failover', async () => {
    for (const args of [['promote'], ['follow', '127.0.0.1:5001']]) {
      const r = await run(args);
      expect(r.code).toBe(1);
      expect(refusal(r)).toBe(`pgrepl ${args[0]} is not for HA mode (PGREPL_ETCD_ENDPOINTS is set): etcd and the agents decide which node leads and whom the standbys follow; use pgrepl switchover [--to NODE] for a planned change of leader, or pgrepl failover --to NODE when there is no leader`);
    }
  });

  it('etcd not answering: one line naming PGREPL_ETCD_ENDPOINTS and the error, exit 1, within the call bound', async () => {
    for (const cmd of ['list', 'pause', 'resume', 'history']) {
      const r = await run([cmd], { PGREPL_ETCD_ENDPOINTS: NOBODY });
      expect(r.code).toBe(1);
      expect(refusal(r)).toMatch(/^etcd at PGREPL_ETCD_ENDPOINTS=http:\/\/127\.0\.0\.1:2429 did not answer: .*ECONNREFUSED.*; check that etcd runs and this host reaches it$/);
    }
  });
});

describe('etcd frozen (SIGSTOP): the call is bounded by PGREPL_RETRY_TIMEOUT', () => {
  it('list gives up with one line, exit 1, instead of hanging', async () => {
    etcd.freeze(0);
    try {
      const r = await run(['list'], { PGREPL_RETRY_TIMEOUT: '1' });
      expect(r.code).toBe(1);
      expect(refusal(r)).toMatch(/^etcd at PGREPL_ETCD_ENDPOINTS=http:\/\/127\.0\.0\.1:2421 did not answer: .+; check that etcd runs and this host reaches it$/);
    } finally {
      etcd.thaw(0);
    }
  });
});

// Last: authentication stays on for the rest of this etcd's life.
describe('etcd authentication', () => {
  const PASSWORD = 'etcd-Secret-pw-0815';
  it('list works with PGREPL_ETCD_USER/PASSWORD, and a wrong password is refused; the password is in no output', async () => {
    await etcd.enableAuth('root-Secret-pw-4242', [{ name: 'pgrepl', password: PASSWORD, prefix: '/pgrepl/' }]);
    const ok = await run(['list'], { PGREPL_ETCD_USER: 'pgrepl', PGREPL_ETCD_PASSWORD: PASSWORD });
    expect(ok).toMatchObject({ code: 0, stderr: '' });
    expect(ok.stdout.split('\n')[0]).toBe('Cluster cmds (system 7312345678901234567): leader n2, timeline 2');
    const paused = await run(['pause'], { PGREPL_ETCD_USER: 'pgrepl', PGREPL_ETCD_PASSWORD: PASSWORD });
    expect(paused.code).toBe(0);

    const wrong = await run(['list'], { PGREPL_ETCD_USER: 'pgrepl', PGREPL_ETCD_PASSWORD: `${PASSWORD}-wrong` });
    expect(wrong.code).toBe(1);
    expect(refusal(wrong)).toMatch(/^etcd at PGREPL_ETCD_ENDPOINTS=\S+ did not answer: .*authentication failed/i);
    for (const r of [ok, paused, wrong]) expect(r.stdout + r.stderr).not.toContain(PASSWORD);
  });
});
