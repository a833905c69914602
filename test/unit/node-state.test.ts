import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { STATE_FILE } from '../../src/layout.js';
import { fingerprint, fingerprintMatches, readNodeState, updateNodeState } from '../../src/state/node-state.js';

const me = { node: 'pg1', systemIdentifier: '7000000000000000001' };

describe('node state', () => {
  it('round-trips, merges updates, and is private (0600)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'state-'));
    await updateNodeState(dir, me, { lastRole: 'PRIMARY' });
    await updateNodeState(dir, me, { replicationAuth: { fingerprint: 'f', method: 'md5' } });
    const { state } = await readNodeState(dir, me);
    expect(state?.lastRole).toBe('PRIMARY');
    expect(state?.replicationAuth).toEqual({ fingerprint: 'f', method: 'md5' });
    expect(statSync(join(dir, STATE_FILE)).mode & 0o777).toBe(0o600);
  });

  it('records the peer a fenced PRIMARY follows, and forgets it on request', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'state-'));
    await updateNodeState(dir, me, { lastRole: 'PRIMARY', fenced: { host: 'pg2', port: 5432 } });
    expect((await readNodeState(dir, me)).state?.fenced).toEqual({ host: 'pg2', port: 5432 });
    await updateNodeState(dir, me, { lastRole: 'PRIMARY' }); // kept when not mentioned
    expect((await readNodeState(dir, me)).state?.fenced).toEqual({ host: 'pg2', port: 5432 });
    await updateNodeState(dir, me, { fenced: null });
    expect((await readNodeState(dir, me)).state?.fenced).toBeUndefined();
    expect((await readNodeState(dir, me)).state?.lastRole).toBe('PRIMARY');
    rmSync(dir, { recursive: true, force: true });
  });

  it('an update that changes nothing leaves the file as it is; one that changes something replaces it', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'state-'));
    const file = join(dir, STATE_FILE);
    await updateNodeState(dir, me, { lastRole: 'PRIMARY', fenced: null });
    const before = { text: readFileSync(file, 'utf8'), ino: statSync(file).ino };
    await updateNodeState(dir, me, { lastRole: 'PRIMARY', fenced: null });
    expect({ text: readFileSync(file, 'utf8'), ino: statSync(file).ino }).toEqual(before);
    await updateNodeState(dir, me, { lastRole: 'STANDBY' });
    expect(statSync(file).ino).not.toBe(before.ino);
    expect((await readNodeState(dir, me)).state?.lastRole).toBe('STANDBY');
    rmSync(dir, { recursive: true, force: true });
  });

  it('means nothing on another node (a clone copied it there)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'state-'));
    await updateNodeState(dir, me, { lastRole: 'PRIMARY' });
    const read = await readNodeState(dir, { ...me, node: 'pg2' });
    expect(read.state).toBeUndefined();
    expect(read.ignored).toMatch(/written by node pg1/);
  });

  it('means nothing for another cluster (PGDATA re-initialised)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'state-'));
    await updateNodeState(dir, me, { lastRole: 'PRIMARY' });
    expect((await readNodeState(dir, { ...me, systemIdentifier: '42' })).state).toBeUndefined();
  });

  it('starts afresh when overwriting another node\'s file', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'state-'));
    await updateNodeState(dir, me, { lastRole: 'PRIMARY', replicationAuth: { fingerprint: 'f', method: 'md5' } });
    const other = { ...me, node: 'pg2' };
    await updateNodeState(dir, other, { lastRole: 'STANDBY' });
    const written = JSON.parse(readFileSync(join(dir, STATE_FILE), 'utf8'));
    expect(written.node).toBe('pg2');
    expect(written.replicationAuth).toBeUndefined();
  });

  it('ignores a damaged file', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'state-'));
    writeFileSync(join(dir, STATE_FILE), '{"version":1,');
    expect((await readNodeState(dir, me)).state).toBeUndefined();
  });

  it('fingerprints tell the same password from another, without storing it', () => {
    const pw = 'a-replication-password-1234';
    const f = fingerprint(pw);
    expect(f).not.toContain(pw);
    expect(fingerprintMatches(pw, f)).toBe(true);
    expect(fingerprintMatches(`${pw}x`, f)).toBe(false);
    expect(fingerprintMatches(pw, 'garbage')).toBe(false);
  });
});
