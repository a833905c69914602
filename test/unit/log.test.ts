import { closeSync, mkdtempSync, openSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import * as logging from '../../src/log.js';
import { createLogger, useLogSettings } from '../../src/log.js';

function logTo(format: 'json' | 'pretty', debug: boolean, write: (l: ReturnType<typeof createLogger>) => void): string {
  const file = join(mkdtempSync(join(tmpdir(), 'log-')), 'out');
  const fd = openSync(file, 'w');
  write(createLogger({ format, debug, fd }));
  closeSync(fd);
  return readFileSync(file, 'utf8');
}

describe('logging', () => {
  it('writes one JSON line per record, synchronously, at info by default', () => {
    const out = logTo('json', false, (l) => {
      l.debug('hidden');
      l.info({ row: 'r1' }, 'hello');
    });
    const lines = out.trim().split('\n').map((x) => JSON.parse(x));
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatchObject({ level: 30, msg: 'hello', row: 'r1', name: 'pgrepl' });
  });

  it('PGREPL_DEBUG shows debug lines', () => {
    expect(logTo('json', true, (l) => l.debug('shown'))).toMatch(/"msg":"shown"/);
  });

  it('pretty: time, level, message, fields', () => {
    const out = logTo('pretty', false, (l) => l.warn({ upstream: 'pg1:5432' }, 'waiting'));
    expect(out).toMatch(/^\d{4}-\d\d-\d\dT[\d:.]+Z WARN waiting upstream=pg1:5432\n$/);
  });

  it('hides fields named like secrets, should one ever be logged', () => {
    const out = logTo('json', false, (l) => l.info({ password: 'p4ss', token: 't0k' }, 'x'));
    expect(out).not.toMatch(/p4ss|t0k/);
  });

  it('the configured settings: the same logger at another level, a new one in another format', () => {
    const first = logging.log;
    useLogSettings({ format: 'json', debug: true });
    expect(logging.log).toBe(first);
    expect(logging.log.isLevelEnabled('debug')).toBe(true);
    useLogSettings({ format: 'json', debug: false });
    expect(logging.log.isLevelEnabled('debug')).toBe(false);
    useLogSettings({ format: 'pretty', debug: true });
    expect(logging.log).not.toBe(first);
    expect(logging.log.isLevelEnabled('debug')).toBe(true);
    useLogSettings({ format: 'json', debug: false });
  });
});
