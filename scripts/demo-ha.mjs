#!/usr/bin/env node
// `npm run demo:ha`: HA mode (docs/ha.md) on this machine, with nodes started through the bundle
// exactly as containers would start them (differing only in PGDATA, PGPORT, the API's port and the
// name, on 127.0.0.1):
//
//   etcd: 3 members (Debian's etcd-server) on 127.0.0.1:2501-2506
//   pg1, pg2, pg3: three EMPTY nodes started at once (postgres 6081-6083, agent API 6181-6183),
//                  PGREPL_SYNC_STANDBYS=1, default timing (TTL 10 s)
//
// One node wins the bootstrap race and runs initdb, the others clone it; `pgrepl list`; a write;
// the leader's whole node (agent and postgres) is SIGKILLed and `pgrepl list` is printed as it
// changes until a new leader acknowledges a write; `pgrepl history`; the old leader is started
// again and rejoins as a standby by itself. Node logs go to files in a temporary directory;
// everything is stopped and removed at the end, or on Ctrl-C (--keep leaves it all running until
// Ctrl-C). Run as root: the nodes drop to the postgres user, as in a container.
import { createWriteStream, readFileSync, rmSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { startEtcd } from '../bench/etcd-failover.mjs';
import { cli, defineNode, killGroup, makeScratchDir, query, sleep, startNode, stopNode } from '../bench/nodes.mjs';
import { httpRequest, primaries } from '../bench/writer-failover.mjs';

const root = resolve(import.meta.dirname, '..');
const { pgBin } = JSON.parse(readFileSync(join(root, '.tmp', 'test-env.json'), 'utf8'));
const keep = process.argv.includes('--keep');
const ETCD_BASE = 2501;
const PG_BASE = 6081;
const API_BASE = 6181;

const say = (m) => process.stdout.write(`\n== ${m}\n`);
const indent = (text) => text.split('\n').map((l) => (l ? `  ${l}` : l)).join('\n');

if (process.getuid?.() !== 0) {
  process.stderr.write('demo-ha: run as root (the nodes drop to the postgres user, as in a container)\n');
  process.exit(2);
}

const dir = makeScratchDir('pgrepl-demo-ha-');
/** Set once the clean-up began (Ctrl-C or the end): no node is started after it. */
let cleaning;
/** The etcd cluster, once asked for: a Ctrl-C while it starts still stops it (after its start settles). */
let etcdStarting;
const nodes = [];

function defineHaNode(i, endpoints) {
  const name = `pg${i + 1}`;
  const port = PG_BASE + i;
  const api = `127.0.0.1:${API_BASE + i}`;
  const node = defineNode({
    name, port, pgdata: join(dir, name), pgBin, password: 'demo-password', token: 'demo-token-change-me',
    env: {
      PGREPL_ETCD_ENDPOINTS: endpoints.map((e) => `http://${e}`).join(','),
      PGREPL_CLUSTER: 'demo',
      PGREPL_CONNECT_ADDRESS: `127.0.0.1:${port}`,
      PGREPL_API_LISTEN: api,
      PGREPL_API_CONNECT_ADDRESS: api,
      PGREPL_SYNC_STANDBYS: '1',
      PGREPL_LOG_FORMAT: 'pretty',
    },
  });
  node.apiUrl = `http://${api}`;
  node.pgPort = port; // what primaries() and the bench's clients call it
  return node;
}

/** Starts the node's bundle; its log (stderr) also goes to DIR/NAME.log. */
function start(node) {
  if (cleaning) throw new Error('stopping');
  startNode(node);
  node.child.stderr.pipe(createWriteStream(join(dir, `${node.name}.log`), { flags: 'a' }));
}

const logTail = (node) => node.log.split('\n').slice(-15).join('\n');

/** Polls fn every 250 ms until it returns a value; the last reason in the timeout's message. */
async function until(what, fn, timeoutMs = 180_000) {
  const deadline = Date.now() + timeoutMs;
  let why = '';
  for (;;) {
    try {
      const v = await fn();
      if (v) return v;
    } catch (err) {
      why = err.message;
    }
    const dead = nodes.find((n) => n.child && n.child.exitCode !== null && !n.killed);
    if (dead) throw new Error(`${what}: ${dead.name} exited (${dead.child.exitCode}); its log ends:\n${logTail(dead)}`);
    if (Date.now() > deadline) throw new Error(`${what}: not within ${timeoutMs / 1000} s${why ? ` (${why})` : ''}`);
    await sleep(250);
  }
}

const status = (node, path) => httpRequest('GET', `${node.apiUrl}${path}`, undefined, 1000).then((r) => r.status, () => 0);

/**
 * The leader, once the cluster is whole: one node answers /primary, every other one /replica, and
 * etcd agrees (the leader's /cluster: every member streaming, a standby in `sync`). Until a
 * standby is in `sync` no node may take over automatically without risking an acknowledged
 * commit, so the demo does not kill the leader before.
 */
const whole = (running) => until('one primary, the others streaming from it, one of them in sync', async () => {
  const p = await primaries(running);
  if (p.length !== 1) return undefined;
  const leader = running.find((n) => n.name === p[0]);
  const others = running.filter((n) => n !== leader);
  const streaming = await Promise.all(others.map((n) => status(n, '/replica')));
  if (!streaming.every((s) => s === 200)) return undefined;
  const view = JSON.parse((await httpRequest('GET', `${leader.apiUrl}/cluster`, undefined, 1000)).body);
  const standbys = view.members.filter((m) => m.name !== leader.name);
  return standbys.length === others.length && standbys.every((m) => m.state === 'streaming') && view.sync.length > 0 ? leader : undefined;
});

/** The first log line of each node that took one of these rows (the agent logs `row=NAME` with each decision). */
function firstRows(rows) {
  const lines = [];
  for (const n of nodes) {
    const line = n.log.split('\n').find((l) => rows.some((r) => l.includes(`row=${r}`)));
    if (line) lines.push(`${n.name}: ${line.replace(/ row=.*$/, '').trim()}`);
  }
  return lines;
}

async function pgrepl(node, args) {
  const r = await cli(node, args, 30_000);
  console.log(`$ pgrepl ${args.join(' ')}   # on ${node.name}`);
  process.stdout.write(indent(r.stdout));
  if (r.code !== 0) console.log(indent(`(exit ${r.code}) ${r.stderr.trim()}`));
}

/** The decision lines of a node's log that contain `words` (the agent logs one sentence per decision). */
const decisions = (node, words) => node.log.split('\n').filter((l) => words.some((w) => l.includes(w)));

function cleanUp() {
  cleaning ??= (async () => {
    const etcd = await etcdStarting?.catch(() => undefined);
    for (const n of nodes) n.killed = true;
    await Promise.all(nodes.map((n) => stopNode(n).catch(() => undefined)));
    await etcd?.stop();
    const codes = nodes.map((n) => `${n.name}: ${n.child?.exitCode ?? n.child?.signalCode ?? 'not started'}`);
    say(`stopped (${codes.join(', ')}); removing ${dir}`);
    // Only the scratch directory this script made (PGDATA, etcd data, logs): nothing else.
    rmSync(dir, { recursive: true, force: true });
  })();
  return cleaning;
}
process.once('SIGINT', () => {
  say('Ctrl-C: stopping the nodes and etcd');
  cleanUp().then(() => process.exit(130));
});

let failed = false;
try {
  say(`etcd: 3 members on 127.0.0.1:${ETCD_BASE}-${ETCD_BASE + 5} (data under ${dir})`);
  etcdStarting = startEtcd({ dir: join(dir, 'etcd'), basePort: ETCD_BASE });
  const etcd = await etcdStarting;
  for (let i = 0; i < 3; i++) nodes.push(defineHaNode(i, etcd.endpoints));

  say('pg1, pg2, pg3: three empty nodes started at once; etcd decides who initialises the cluster');
  for (const n of nodes) start(n);
  let leader = await whole(nodes);
  for (const line of firstRows(['missing/empty × PRIMARY', 'clone'])) console.log(line);
  console.log(`${leader.name} won the bootstrap race and ran initdb; the other two cloned it, stream from it, and one is synchronous`);
  await pgrepl(leader, ['list']);

  say(`a write on the leader (${leader.name}, found through GET /primary on the agents' APIs)`);
  await query(leader, 'CREATE TABLE demo (id serial PRIMARY KEY, note text, at timestamptz DEFAULT now())');
  await query(leader, 'INSERT INTO demo (note) VALUES ($1)', [`written on ${leader.name}`]);
  console.log(`INSERT acknowledged by ${leader.name} (synchronous: a standby in \`sync\` has it too)`);

  say(`SIGKILL to every process of ${leader.name} (agent and postgres): a container kill, a power cut`);
  const old = leader;
  old.killed = true;
  const t0 = performance.now();
  await killGroup(old);
  const running = nodes.filter((n) => n !== old);
  const elapsed = () => `${((performance.now() - t0) / 1000).toFixed(1)} s`;
  let shown = '';
  let newLeader;
  while (!newLeader) {
    if (performance.now() - t0 > 120_000) throw new Error(`no new leader accepted a write within 120 s:\n${running.map((n) => `${n.name}:\n${logTail(n)}`).join('\n')}`);
    const r = await cli(running[0], ['list'], 10_000);
    if (r.stdout !== shown) {
      shown = r.stdout;
      console.log(`-- after ${elapsed()}: pgrepl list`);
      process.stdout.write(indent(r.stdout));
    }
    const [p] = await primaries(running);
    const candidate = running.find((n) => n.name === p);
    if (candidate) {
      try {
        await query(candidate, 'INSERT INTO demo (note) VALUES ($1)', [`written on ${candidate.name} after the failover`]);
        newLeader = candidate;
      } catch {
        // promoted a moment ago and not writable yet: next round
      }
    }
    if (!newLeader) await sleep(1000);
  }
  console.log(`${newLeader.name} acknowledged a write ${elapsed()} after the kill`);
  for (const line of decisions(newLeader, ['row=failover'])) console.log(indent(`${newLeader.name}: ${line.replace(/ row=.*$/, '').trim()}`));
  const rows = await query(newLeader, 'SELECT note FROM demo ORDER BY id');
  console.log(`rows on ${newLeader.name}: ${rows.map((r) => r.note).join('; ')}`);
  await pgrepl(newLeader, ['list']);
  await pgrepl(newLeader, ['history']);

  say(`${old.name} starts again on its data: it finds ${newLeader.name} leading on a newer timeline and rejoins it by itself`);
  old.killed = false;
  start(old);
  leader = await whole(nodes);
  for (const words of [['row=rejoin', 'row=follow'], ['rewinding with pg_rewind'], ['pg_rewind finished'], ['row=follow']]) {
    const [line] = decisions(old, words);
    if (line) console.log(indent(`${old.name}: ${line.replace(/ row=.*$/, '').trim()}`));
  }
  await until(`${old.name} to have the write made after the failover`, async () => (await query(old, 'SELECT count(*)::int AS n FROM demo'))[0].n === 2);
  console.log(`${old.name} streams from ${leader.name} and has both rows`);
  await pgrepl(leader, ['list']);

  say('how to look around');
  console.log(`PGPASSWORD=demo-password psql -h 127.0.0.1 -p ${leader.port} -U postgres    # ${leader.name}, the primary now`);
  console.log(`curl -s ${leader.apiUrl}/cluster    # the agents' API; also /primary, /replica, /health`);
  console.log(`node logs: ${dir}/pg*.log`);
  if (keep) {
    say('--keep: everything keeps running; Ctrl-C stops it and cleans up');
    await new Promise(() => undefined); // the SIGINT handler ends the process
  }
} catch (err) {
  failed = true;
  if (!cleaning) console.error(`demo failed: ${err.message}`); // else: Ctrl-C, and the clean-up says so
} finally {
  if (!keep || failed) {
    await cleanUp();
    process.exit(failed ? 1 : 0);
  }
}
