/**
 * askMembers (src/ha/ask.ts) against real agents' APIs (startApi) on 127.0.0.1:6101-6103, a member
 * that accepts and never answers (stall server, 6104), one where nothing listens (6105: refused)
 * and one that answers what is not a position (a plain HTTP server, 6106); 6107 counts connections
 * open at once: every name gets an answer, all are asked at once, a stalled one ends at the bound,
 * nothing throws.
 */
import { createServer, type Server } from 'node:http';
import { createServer as createNetServer, type Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startApi, type ApiSnapshot, type HaApi, type Position } from '../../src/ha/api.js';
import { askMembers, httpGet } from '../../src/ha/ask.js';
import type { MemberKey } from '../../src/ha/types.js';
import { stallServer, type StallServer } from '../support/stall-server.js';

const HOST = '127.0.0.1';
const [N1, N2, N3, STALL, REFUSED, ODD, COUNTING] = [6101, 6102, 6103, 6104, 6105, 6106, 6107];
const BOUND_MS = 500;

const member = (name: string, apiPort: number): MemberKey => ({
  name, instance: `i-${name}`, address: `127.0.0.1:${apiPort - 100}`, api: `${HOST}:${apiPort}`,
  role: 'standby', state: 'streaming', timeline: 2, nofailover: false,
});
const snapshot = (name: string): ApiSnapshot => ({
  name, holdsLeaderKey: false, postgres: { running: true, inRecovery: true, streamingFromLeader: true }, loopAt: 0,
});

/** What the odd server answers next: status and body. */
let odd: [number, string] = [200, '{}'];
let apis: HaApi[] = [];
let stall: StallServer;
let oddServer: Server;

const MEMBERS = [member('n1', N1), member('n2', N2), member('n3', N3), member('frozen', STALL), member('gone', REFUSED), member('odd', ODD)];

beforeAll(async () => {
  const positions: Record<string, () => Promise<Position>> = {
    n1: async () => ({ received: '0/5000060', timeline: 2 }),
    n2: async () => ({ received: '0/5000100', timeline: 3 }),
    // n3's postgres does not answer: its agent says so (503).
    n3: async () => {
      throw Object.assign(new Error('connect ECONNREFUSED /var/run/postgresql/.s.PGSQL.6003'), { code: 'ECONNREFUSED' });
    },
  };
  apis = await Promise.all([['n1', N1], ['n2', N2], ['n3', N3]].map(([name, port]) =>
    startApi({ host: HOST, port: port as number, ttl: 10, snapshot: snapshot(name as string), position: positions[name as string] })));
  stall = await stallServer(STALL, { stall: 'accept' });
  oddServer = createServer((_, res) => {
    res.statusCode = odd[0];
    res.end(odd[1]);
  });
  await new Promise<void>((resolve) => oddServer.listen(ODD, HOST, resolve));
});

afterAll(async () => {
  await Promise.all(apis.map((a) => a.close()));
  await stall?.close();
  await new Promise((resolve) => oddServer?.close(resolve));
});

describe('askMembers', () => {
  it('answers every name: positions from the live agents, one-line errors for the rest, the stalled one within the bound', async () => {
    const answers = await askMembers(MEMBERS, ['n1', 'n2', 'n3', 'frozen', 'gone', 'nobody'], BOUND_MS);
    expect(answers).toEqual({
      n1: { received: '0/5000060', timeline: 2 },
      n2: { received: '0/5000100', timeline: 3 },
      n3: { error: '127.0.0.1:6103: HTTP 503: could not read the position from postgres (ECONNREFUSED)' },
      frozen: { error: `127.0.0.1:6104: no answer within ${BOUND_MS} ms` },
      gone: { error: '127.0.0.1:6105: ECONNREFUSED' },
      nobody: { error: 'not a member (no member key)' },
    });
    expect(stall.accepted()).toBeGreaterThan(0);
  });

  it('asks all at once: six stalled members are waited on together, not one after another', async () => {
    // A member that accepts and never answers, counting the connections open at once.
    let open = 0;
    let mostOpen = 0;
    const held = new Set<Socket>();
    const counting = createNetServer((s) => {
      held.add(s);
      mostOpen = Math.max(mostOpen, ++open);
      s.on('error', () => undefined);
      s.on('close', () => open--);
      s.resume(); // read (and drop) what comes, so that the client's close is seen
    });
    await new Promise<void>((resolve) => counting.listen(COUNTING, HOST, resolve));
    try {
      const frozen = ['f1', 'f2', 'f3', 'f4', 'f5', 'f6'].map((n) => member(n, COUNTING));
      const answers = await askMembers(frozen, frozen.map((m) => m.name), BOUND_MS);
      for (const m of frozen) expect(answers[m.name]).toEqual({ error: `127.0.0.1:${COUNTING}: no answer within ${BOUND_MS} ms` });
      expect(mostOpen).toBe(frozen.length);
    } finally {
      for (const s of held) s.destroy();
      await new Promise((resolve) => counting.close(resolve));
    }
  });

  it('an answer that is not a position is an error naming what came, never a position', async () => {
    const cases: [[number, string], string][] = [
      [[200, 'hello'], 'HTTP 200, not JSON: "hello"'],
      [[200, '{"name":"odd","received":"0/ZZZ","timeline":2}'], 'not a position: {"name":"odd","received":"0/ZZZ","timeline":2}'],
      [[200, '{"name":"odd","received":"0/5000060","timeline":0}'], 'not a position: {"name":"odd","received":"0/5000060","timeline":0}'],
      [[200, '{"name":"odd","received":"0/5000060"}'], 'not a position: {"name":"odd","received":"0/5000060"}'],
      [[200, '[1,2]'], 'not a position: [1,2]'],
      // Another node's agent at this member's API address must not stand in for it.
      [[200, '{"name":"n2","received":"0/5000060","timeline":2}'], 'answered as "n2", not odd'],
      [[503, '{"name":"odd","error":"postgres gave no position within 2000 ms"}'], 'HTTP 503: postgres gave no position within 2000 ms'],
      [[404, '{"error":"no such endpoint"}'], 'HTTP 404: no such endpoint'],
      [[200, 'x'.repeat(70 * 1024)], 'an answer over 65536 bytes'],
    ];
    for (const [reply, error] of cases) {
      odd = reply;
      expect(await askMembers(MEMBERS, ['odd'], BOUND_MS)).toEqual({ odd: { error: `127.0.0.1:6106: ${error}` } });
    }
    odd = [200, '{"name":null,"received":"0/5000060","timeline":2}'];
    expect(await askMembers(MEMBERS, ['odd'], BOUND_MS)).toEqual({ odd: { received: '0/5000060', timeline: 2 } });
  });

  it('a member key whose api is not host:port, and no names: answers, no throw', async () => {
    expect(await askMembers([{ ...member('bad', N1), api: 'not a host:port' }], ['bad'], BOUND_MS)).toEqual({ bad: { error: 'not a host:port: not host:port' } });
    expect(await askMembers(MEMBERS, [], BOUND_MS)).toEqual({});
  });

  it('httpGet gives the status and body of any endpoint', async () => {
    expect(await httpGet(`${HOST}:${N1}`, '/health', BOUND_MS)).toMatchObject({ status: 200 });
    expect(await httpGet(`${HOST}:${N1}`, '/primary', BOUND_MS)).toMatchObject({ status: 503 });
  });
});
