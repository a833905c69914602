import { execFileSync, spawnSync } from 'node:child_process';
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { SCRIPTS } from './harness.js';

const scripts = readdirSync(SCRIPTS).filter((f) => f.endsWith('.sh'));

describe('marathon/ scripts', () => {
  it('are the five commands and their library', () => {
    expect(scripts.sort()).toEqual(['ha.sh', 'lib.sh', 'primary.sh', 'promote.sh', 'standby.sh', 'status.sh']);
  });

  it('are shellcheck-clean', () => {
    const r = spawnSync('shellcheck', ['-x', ...scripts], { cwd: SCRIPTS, encoding: 'utf8' });
    expect(r.error, 'shellcheck is not installed (apt-get install shellcheck)').toBeUndefined();
    expect(r.stdout + r.stderr).toBe('');
    expect(r.status).toBe(0);
  });

  it.each(scripts.filter((s) => s !== 'lib.sh'))('%s: executable, bash, set -euo pipefail, parses', (s) => {
    const path = join(SCRIPTS, s);
    expect(statSync(path).mode & 0o111).not.toBe(0);
    const text = readFileSync(path, 'utf8');
    expect(text.startsWith('#!/usr/bin/env bash\n')).toBe(true);
    expect(text).toContain('\nset -euo pipefail\n');
    execFileSync('bash', ['-n', path]);
  });

  it('use curl and jq, not httpie or the DC/OS CLI', () => {
    for (const s of scripts) {
      const code = readFileSync(join(SCRIPTS, s), 'utf8').split('\n').filter((l) => !l.trimStart().startsWith('#')).join('\n');
      expect(code, s).not.toMatch(/\b(http|https|httpie|dcos) /);
    }
  });
});
