#!/usr/bin/env node
// The README's main job, on this machine: the seed README's walkthrough, node for node, with
// nodes started through the bundle exactly as containers would start them (differing only in
// PGDATA and PGPORT on 127.0.0.1):
//
//   pg1 (primary) ──> pg2 ──> pg4 (cascade)
//                └──> pg3
//
// then writes, pg1 killed, pg2 promoted, pg4 following timeline 2 by itself, pg3 re-pointed with
// `pgrepl follow`, and `pgrepl status` at each step. Node logs go to files in a temporary
// directory; everything is stopped and removed at the end (--keep leaves it all running until
// Ctrl-C).
import { spawn, spawnSync } from 'node:child_process';
import { chmodSync, mkdtempSync, openSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import pg from 'pg';

const root = resolve(import.meta.dirname, '..');
const bundle = join(root, 'dist', 'pgrepl.cjs');
const { pgBin } = JSON.parse(readFileSync(join(root, '.tmp', 'test-env.json'), 'utf8'));
const keep = process.argv.includes('--keep');
const base = Number(process.env.DEMO_PORT ?? 5771);
const password = 'demo-password';
const token = 'demo-token-change-me';

const dir = mkdtempSync(join(tmpdir(), 'pgrepl-demo-'));
chmodSync(dir, 0o755); // the nodes drop to the postgres user, who must reach their PGDATA
const nodes = new Map();

const say = (m) => process.stdout.write(`\n== ${m}\n`);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function env(name, port, extra = {}) {
  return {
    PATH: `${pgBin}:${process.env.PATH}`, PGDATA: join(dir, name), PGPORT: String(port),
    POSTGRES_PASSWORD: password, PGREPL_TOKEN: token, PGREPL_NODE_NAME: name,
    PGREPL_LOG_FORMAT: 'pretty', PGREPL_INITDB_DIR: join(dir, 'no-init-scripts'), ...extra,
  };
}

const standbyOf = (port) => ({ PGREPL_ROLE: 'STANDBY', PGREPL_MASTER_IP: '127.0.0.1', PGREPL_MASTER_PORT: String(port) });

const client = (port) => new pg.Client({ host: '127.0.0.1', port, user: 'postgres', password, database: 'postgres' });

async function sql(port, text) {
  const c = client(port);
  await c.connect();
  try {
    return (await c.query(text)).rows;
  } finally {
    await c.end();
  }
}

async function start(name, port, extra = {}) {
  const log = join(dir, `${name}.log`);
  const fd = openSync(log, 'a');
  const child = spawn(process.execPath, [bundle, 'postgres'], { env: env(name, port, extra), stdio: ['ignore', fd, fd] });
  const exited = new Promise((r) => child.on('exit', (code, signal) => r({ code, signal })));
  nodes.set(name, { child, exited, port, extra, log });
  for (let i = 0; i < 1200; i++) {
    try {
      await sql(port, 'SELECT 1');
      const line = readFileSync(log, 'utf8').split('\n').find((l) => l.includes(' start: '));
      console.log(`${name} (port ${port}) is up: ${line?.replace(/^.*? start: /, '').replace(/ row=.*$/, '')}`);
      return;
    } catch {
      if (child.exitCode !== null) throw new Error(`${name} exited; see ${log}:\n${readFileSync(log, 'utf8').slice(-2000)}`);
      await sleep(100);
    }
  }
  throw new Error(`${name} did not come up; see ${log}`);
}

function pgrepl(name, args) {
  const n = nodes.get(name);
  const res = spawnSync(process.execPath, [bundle, ...args], { env: env(name, n.port, n.extra), encoding: 'utf8' });
  console.log(`$ pgrepl ${args.join(' ')}   # on ${name}`);
  process.stdout.write(res.stdout.split('\n').map((l) => (l ? `  ${l}` : l)).join('\n'));
  if (res.status !== 0) console.log(`  (exit ${res.status})`);
}

async function waitForCount(port, n) {
  for (let i = 0; i < 300; i++) {
    try {
      if ((await sql(port, 'SELECT count(*)::int AS n FROM demo'))[0].n === n) return;
    } catch {
      // the table may not have arrived yet
    }
    await sleep(100);
  }
  throw new Error(`port ${port} never saw ${n} rows`);
}

let failed = false;
try {
  say(`pg1: a primary (PGDATA under ${dir})`);
  await start('pg1', base);
  say('pg2 and pg3: standbys of pg1; pg4: a cascaded standby of pg2 (cloned, no initdb)');
  await start('pg2', base + 1, standbyOf(base));
  await start('pg3', base + 2, standbyOf(base));
  await start('pg4', base + 3, standbyOf(base + 1));
  pgrepl('pg1', ['status']);

  say('writes on pg1 reach every standby');
  await sql(base, 'CREATE TABLE demo (id serial PRIMARY KEY, note text)');
  await sql(base, "INSERT INTO demo (note) VALUES ('written on pg1')");
  for (const p of [base + 1, base + 2, base + 3]) await waitForCount(p, 1);
  console.log('pg2, pg3 and pg4 each have the row');
  pgrepl('pg4', ['status']);

  say('pg1 crashes (SIGKILL); pg2 is promoted');
  // postgres itself dies, as in a crash (on Node 20 pgrepl supervises it and then exits too).
  process.kill(Number(readFileSync(join(dir, 'pg1', 'postmaster.pid'), 'utf8').split('\n')[0]), 'SIGKILL');
  await nodes.get('pg1').exited;
  pgrepl('pg2', ['promote']);
  await sql(base + 1, "INSERT INTO demo (note) VALUES ('written on pg2, timeline 2')");

  say('pg4 followed pg2 onto timeline 2 by itself');
  await waitForCount(base + 3, 2);
  pgrepl('pg4', ['status']);

  say('pg3 lost its upstream: point it at pg2 without re-cloning');
  pgrepl('pg3', ['follow', `127.0.0.1:${base + 1}`]);
  await waitForCount(base + 2, 2);
  pgrepl('pg2', ['status']);
  pgrepl('pg3', ['health', '--standby']);

  say('how to connect');
  console.log(`PGPASSWORD=${password} psql -h 127.0.0.1 -p ${base + 1} -U postgres    # pg2, the primary now`);
  console.log(`node logs: ${dir}/*.log`);
  if (keep) {
    say('--keep: the nodes keep running; Ctrl-C stops them (SIGINT = fast shutdown) and cleans up');
    await new Promise((r) => process.once('SIGINT', r));
  }
} catch (err) {
  failed = true;
  console.error(`demo failed: ${err.message}`);
} finally {
  for (const [, n] of nodes) if (n.child.exitCode === null) n.child.kill('SIGINT');
  const codes = [];
  for (const [name, n] of nodes) codes.push(`${name}: ${(await n.exited).code ?? 'killed'}`);
  say(`stopped (${codes.join(', ')}); removing ${dir}`);
  rmSync(dir, { recursive: true, force: true });
  process.exit(failed ? 1 : 0);
}
