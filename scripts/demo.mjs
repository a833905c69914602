#!/usr/bin/env node
// The README's main job, on this machine: a pgrepl primary on a temporary directory, started
// through the bundle exactly as a container would start it. It shows what the entrypoint did and
// how to connect, then shuts the node down and removes the directory (pass --keep to leave it
// running until Ctrl-C).
import { spawn } from 'node:child_process';
import { chmodSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import pg from 'pg';

const root = resolve(import.meta.dirname, '..');
const { pgBin } = JSON.parse(readFileSync(join(root, '.tmp', 'test-env.json'), 'utf8'));
const keep = process.argv.includes('--keep');
const port = Number(process.env.DEMO_PORT ?? 5799);
const password = 'demo-password';
const token = 'demo-token';

const dir = mkdtempSync(join(tmpdir(), 'pgrepl-demo-'));
chmodSync(dir, 0o755); // the node drops to the postgres user, who must reach PGDATA
const pgdata = join(dir, 'primary');
const say = (m) => process.stdout.write(`\n== ${m}\n`);

say(`starting a primary: PGDATA=${pgdata} PGPORT=${port}`);
const node = spawn(process.execPath, [join(root, 'dist', 'pgrepl.cjs'), 'postgres'], {
  env: {
    PATH: `${pgBin}:${process.env.PATH}`, PGDATA: pgdata, PGPORT: String(port),
    POSTGRES_PASSWORD: password, PGREPL_TOKEN: token, PGREPL_NODE_NAME: 'demo_primary',
    PGREPL_LOG_FORMAT: 'pretty', PGREPL_INITDB_DIR: join(dir, 'initdb.d'),
  },
  stdio: ['ignore', 'inherit', 'inherit'],
});
const exited = new Promise((r) => node.on('exit', (code, signal) => r({ code, signal })));

const connect = (opts = {}) => new pg.Client({ host: '127.0.0.1', port, user: 'postgres', password, database: 'postgres', ...opts });

async function waitReady() {
  for (let i = 0; i < 600; i++) {
    const c = connect();
    try {
      await c.connect();
      await c.end();
      return;
    } catch {
      if (node.exitCode !== null) throw new Error('the node exited before it was ready');
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  throw new Error('the node did not become ready');
}

let failed = false;
try {
  await waitReady();
  const c = connect();
  await c.connect();
  const dbs = await c.query("SELECT datname FROM pg_database WHERE datname LIKE 'gestalt-%' ORDER BY 1");
  const role = await c.query("SELECT rolname, rolreplication FROM pg_roles WHERE rolname = 'pgrepl'");
  const wal = await c.query("SELECT current_setting('wal_level') AS wal_level, current_setting('max_wal_senders') AS senders");
  await c.end();
  say('the primary is up');
  console.log(`gestalt databases : ${dbs.rows.map((r) => r.datname).join(', ')}`);
  console.log(`replication role  : ${role.rows[0]?.rolname} (replication=${role.rows[0]?.rolreplication})`);
  console.log(`wal_level         : ${wal.rows[0].wal_level}, max_wal_senders=${wal.rows[0].senders}`);
  say('connect to it with');
  console.log(`PGPASSWORD=${password} psql -h 127.0.0.1 -p ${port} -U postgres`);
  console.log(`a standby would replicate as user pgrepl, password = md5 of the token: echo ${token} | md5sum`);
  if (keep) {
    say('--keep: leaving it running; press Ctrl-C to stop it (SIGINT = fast shutdown) and clean up');
    process.on('SIGINT', () => node.kill('SIGINT'));
    await exited;
  }
} catch (err) {
  failed = true;
  console.error(`demo failed: ${err.message}`);
} finally {
  if (node.exitCode === null) node.kill('SIGINT');
  const { code } = await exited;
  say(`node stopped (exit ${code}); removing ${dir}`);
  rmSync(dir, { recursive: true, force: true });
  process.exit(failed ? 1 : 0);
}
