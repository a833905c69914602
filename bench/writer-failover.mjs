// The clients of bench/failover.mjs, the same for every system under test. A node is
// { name, pgPort, apiUrl }; postgres is reached as postgres/password on 127.0.0.1, the primary is
// found only through the nodes' HTTP API (GET /primary answers 200 on the one that takes writes),
// as a load balancer would.
//
// - the writer: one connection, autocommit INSERTs of increasing ids; every acknowledged id is
//   recorded with its time and the node that acknowledged it; on any error it finds the primary
//   again through /primary and reconnects;
// - the probes: one per node, writing to that node directly (not through /primary) every 50 ms;
//   with the writer's acknowledgements they show when each node accepted writes, so that two
//   nodes accepting writes at overlapping times would be seen.
import http from 'node:http';
import { createRequire } from 'node:module';
import { sleep } from './nodes.mjs';

let pgModule;
const pg = () => (pgModule ??= createRequire(import.meta.url)('pg'));

/** One HTTP request over node:http with a deadline: { status, body }; rejects on a network error or the deadline. */
export function httpRequest(method, url, body, timeoutMs) {
  return new Promise((resolve, reject) => {
    const payload = body === undefined ? undefined : JSON.stringify(body);
    const req = http.request(url, {
      method, timeout: timeoutMs, headers: payload ? { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload) } : {},
    }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (d) => (text += d));
      res.on('end', () => resolve({ status: res.statusCode, body: text }));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error(`${method} ${url}: no answer within ${timeoutMs} ms`)));
    req.on('error', reject);
    req.end(payload);
  });
}

/** The names of the nodes whose GET /primary answers 200 now (asked in parallel, 1 s each). */
export async function primaries(nodes) {
  const answers = await Promise.all(nodes.map((n) => httpRequest('GET', `${n.apiUrl}/primary`, undefined, 1000).then((r) => r.status, () => 0)));
  return nodes.filter((_, i) => answers[i] === 200).map((n) => n.name);
}

/** A connected client to the node (2 s to connect, queries bounded by queryTimeoutMs), or it throws. */
export async function connect(node, password, queryTimeoutMs = 20_000) {
  const c = new (pg().Client)({
    host: '127.0.0.1', port: node.pgPort, user: 'postgres', password, database: 'postgres',
    connectionTimeoutMillis: 2000, query_timeout: queryTimeoutMs,
  });
  c.on('error', () => undefined); // a dead server surfaces in the next query
  try {
    await c.connect();
  } catch (err) {
    await c.end().catch(() => undefined);
    throw err;
  }
  return c;
}

/** One statement on a connection of its own; the rows. */
export async function sql(node, password, text, params = []) {
  const c = await connect(node, password, 60_000);
  try {
    return (await c.query(text, params)).rows;
  } finally {
    await c.end().catch(() => undefined);
  }
}

export const TABLES = [
  'CREATE TABLE IF NOT EXISTS bench_writes (id bigint PRIMARY KEY)',
  'CREATE TABLE IF NOT EXISTS bench_probe (node text NOT NULL, n bigint NOT NULL)',
];

/**
 * Starts the writer and the probes; `acks` collects { t, node, id?, probe? } (t: performance.now()).
 * stop() ends them (the statement in flight finishes or fails first).
 */
export function startClients({ nodes, password, writeIntervalMs }) {
  const acks = [];
  const state = { stopping: false, nextId: 1, writerErrors: 0, writerNode: null, lastError: '' };

  const writer = (async () => {
    while (!state.stopping) {
      const [name] = await primaries(nodes);
      const node = nodes.find((n) => n.name === name);
      if (!node) {
        await sleep(50);
        continue;
      }
      let c;
      try {
        c = await connect(node, password);
        state.writerNode = node.name;
        while (!state.stopping) {
          const id = state.nextId++;
          await c.query('INSERT INTO bench_writes (id) VALUES ($1)', [id]);
          acks.push({ t: performance.now(), node: node.name, id });
          if (writeIntervalMs > 0) await sleep(writeIntervalMs);
        }
      } catch (err) {
        state.writerErrors++;
        state.lastError = err.message;
        state.writerNode = null;
      } finally {
        await c?.end().catch(() => undefined);
      }
    }
  })();

  const probe = async (node) => {
    let n = 0;
    while (!state.stopping) {
      let c;
      try {
        c = await connect(node, password, 5000);
        // A standby refuses every probe; keep those refusals out of its server log.
        await c.query('SET log_min_messages = fatal; SET log_min_error_statement = panic');
        while (!state.stopping) {
          try {
            await c.query('INSERT INTO bench_probe (node, n) VALUES ($1, $2)', [node.name, ++n]);
            acks.push({ t: performance.now(), node: node.name, probe: true });
          } catch (err) {
            // read-only (a standby) or the table not there yet: the connection is still good
            if (err.code !== '25006' && err.code !== '42P01') throw err;
          }
          await sleep(50);
        }
      } catch {
        await sleep(100);
      } finally {
        await c?.end().catch(() => undefined);
      }
    }
  };
  const probes = nodes.map(probe);

  return {
    acks,
    state,
    /** The first acknowledgement at or after time `from` by a node other than `notNode`, or null. */
    firstAckElsewhere: (from, notNode) => {
      let found = null;
      for (let i = acks.length - 1; i >= 0 && acks[i].t >= from; i--) if (acks[i].node !== notNode && !acks[i].probe) found = acks[i];
      return found;
    },
    stop: async () => {
      state.stopping = true;
      await Promise.all([writer, ...probes]);
    },
  };
}

/**
 * Whether two nodes accepted writes at overlapping times within [from, to): each node's span is
 * its first to its last acknowledgement (writer and probes) in the window; spans must not intersect.
 * Returns the overlapping pairs as text ('' when none).
 */
export function overlaps(acks, from, to) {
  const spans = new Map();
  for (const a of acks) {
    if (a.t < from || a.t >= to) continue;
    const s = spans.get(a.node);
    if (!s) spans.set(a.node, { first: a.t, last: a.t });
    else s.last = a.t;
  }
  const list = [...spans.entries()];
  const found = [];
  for (let i = 0; i < list.length; i++) {
    for (let j = i + 1; j < list.length; j++) {
      const [an, a] = list[i];
      const [bn, b] = list[j];
      const ms = Math.min(a.last, b.last) - Math.max(a.first, b.first);
      if (ms >= 0) found.push(`${an} and ${bn} both accepted writes for ${Math.round(ms)} ms`);
    }
  }
  return found.join('; ');
}

/** How many times, over all of acks (in time order), the node acknowledging writes changed. */
export function handovers(acks) {
  let n = 0;
  for (let i = 1; i < acks.length; i++) if (acks[i].node !== acks[i - 1].node) n++;
  return n;
}
