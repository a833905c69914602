/**
 * One rule for node names everywhere: the image's (sanitiseNodeName, for a host name without
 * PGREPL_NODE_NAME), docker/lib.sh's (a container name) and marathon/lib.sh's (an app id without
 * its leading "/") give the same name for the same input, so a node's slot name does not depend on
 * which of them named it. The shell functions run in bash, sourced from the scripts' lib.sh.
 */
import { execFileSync } from 'node:child_process';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { sanitiseNodeName } from '../../src/config/validators.js';

const ROOT = resolve(import.meta.dirname, '..', '..');

/** Inputs the scripts accept: ASCII (docker/ and marathon/ refuse other names before naming a node). */
const NAMES = [
  'pg1', 'PG1', 'Pg_Node.1', 'pg-1', 'pg_1', 'pgrepl-ct-a1b2c3-n1', '0b0fb5dec403', 'db.example.com',
  'db/pgrepl-2', 'a b', 'x'.repeat(63), 'x'.repeat(64), `${'A'.repeat(62)}-B-C`, '-', '_', '...', '', 'Z9',
];

/** node_name of each input through the given lib.sh, one per line. */
function shellNames(lib: string, prefix: string): string[] {
  const script = `. "${join(ROOT, lib)}"; for n in "$@"; do node_name "${prefix}$n"; done`;
  return execFileSync('bash', ['-c', script, 'node-name-rule', ...NAMES], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], env: { PATH: process.env.PATH ?? '/usr/bin:/bin', LANG: 'C.UTF-8' } })
    .split('\n')
    .slice(0, -1);
}

describe('the node name rule', () => {
  const expected = NAMES.map(sanitiseNodeName);

  it('is what the image makes of a host name: lower case, [a-z0-9_], at most 63, never empty', () => {
    expect(expected.slice(0, 6)).toEqual(['pg1', 'pg1', 'pg_node_1', 'pg_1', 'pg_1', 'pgrepl_ct_a1b2c3_n1']);
    for (const name of expected) expect(name).toMatch(/^[a-z0-9_]{1,63}$/);
  });

  it('docker/lib.sh gives a container the same name', () => {
    expect(shellNames('docker/lib.sh', '')).toEqual(expected);
  });

  it('marathon/lib.sh gives an app id (without its leading "/") the same name', () => {
    expect(shellNames('marathon/lib.sh', '/')).toEqual(expected);
  });
});
