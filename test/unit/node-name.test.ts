import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/env.js';
import { NODE_NAME_FILE } from '../../src/layout.js';
import { rememberNodeName, withStableNodeName } from '../../src/state/node-name.js';

describe('the node name', () => {
  it('is remembered by the volume when it comes from the host name', async () => {
    const pgdata = mkdtempSync(join(tmpdir(), 'name-'));
    const first = withStableNodeName(loadConfig({ PGDATA: pgdata }, '0b0fb5dec403'));
    expect(first.nodeName).toBe('0b0fb5dec403');
    await rememberNodeName(pgdata, first.nodeName);
    expect(readFileSync(join(pgdata, NODE_NAME_FILE), 'utf8')).toBe('0b0fb5dec403\n');
    // A re-created container: another host name, the same volume, the same node.
    expect(withStableNodeName(loadConfig({ PGDATA: pgdata }, 'e94b7c5359b3')).nodeName).toBe('0b0fb5dec403');
  });

  it('PGREPL_NODE_NAME always wins (it renames the node)', () => {
    const pgdata = mkdtempSync(join(tmpdir(), 'name-'));
    mkdirSync(join(pgdata, 'pg_dynshmem'));
    writeFileSync(join(pgdata, NODE_NAME_FILE), 'old_name\n');
    expect(withStableNodeName(loadConfig({ PGDATA: pgdata, PGREPL_NODE_NAME: 'pg2' }, 'h')).nodeName).toBe('pg2');
  });

  it('ignores a damaged file', () => {
    const pgdata = mkdtempSync(join(tmpdir(), 'name-'));
    mkdirSync(join(pgdata, 'pg_dynshmem'));
    writeFileSync(join(pgdata, NODE_NAME_FILE), 'Not A Name!\n');
    expect(withStableNodeName(loadConfig({ PGDATA: pgdata }, 'host1')).nodeName).toBe('host1');
  });
});
