import { describe, expect, it } from 'vitest';
import { INCLUDE_LINE, SETTINGS_FILE } from '../../src/layout.js';
import {
  archiveCommand, confValue, conninfo, HBA_BEGIN, restoreCommand, renderPassfile, replicationMethodIn, HBA_END, renderRecoveryConf, renderSettings, withHostAuthLine, withInclude, withoutReplicationRules, withReplicationRules,
} from '../../src/postgres/settings.js';

describe('pgrepl.conf', () => {
  it('holds the replication settings for 13+', () => {
    const s = renderSettings({ major: 15, socketDir: '/var/run/postgresql', slotMaxWal: '10GB' });
    for (const line of [
      "listen_addresses = '*'", 'wal_level = replica', 'max_wal_senders = 10', 'max_replication_slots = 10',
      'hot_standby = on', 'wal_log_hints = on', "wal_keep_size = '512MB'", "max_slot_wal_keep_size = '10GB'",
      "unix_socket_directories = '/var/run/postgresql'",
    ]) expect(s.split('\n')).toContain(line);
  });
  it('uses wal_keep_segments before 13 and has no slot cap there', () => {
    const s = renderSettings({ major: 12, socketDir: '/s', slotMaxWal: '10GB' });
    expect(s).toContain('wal_keep_segments = 32');
    expect(s).not.toContain('wal_keep_size');
    expect(s).not.toContain('max_slot_wal_keep_size');
  });
  it("sets a standby's wait between attempts to reach its upstream only when asked, and only on a standby", () => {
    const standby = { host: 'pg1', port: 5432, passfile: '/d/.pgpass', applicationName: 'n2', slot: undefined };
    expect(renderSettings({ major: 15, socketDir: '/s', slotMaxWal: undefined, standby, walRetrySeconds: 60 }).split('\n')).toContain("wal_retrieve_retry_interval = '60s'");
    expect(renderSettings({ major: 15, socketDir: '/s', slotMaxWal: undefined, standby })).not.toContain('wal_retrieve_retry_interval');
    expect(renderSettings({ major: 15, socketDir: '/s', slotMaxWal: undefined, walRetrySeconds: 60 })).not.toContain('wal_retrieve_retry_interval');
  });
  it('quotes values', () => {
    expect(confValue("it's")).toBe("'it''s'");
  });
});

describe('postgresql.conf include', () => {
  it('is added once', () => {
    const once = withInclude('shared_buffers = 128MB\n', INCLUDE_LINE, SETTINGS_FILE);
    expect(once).toBe(`shared_buffers = 128MB\n\n${INCLUDE_LINE}\n`);
    expect(withInclude(once, INCLUDE_LINE, SETTINGS_FILE)).toBe(once);
  });
  it('respects an include the operator wrote', () => {
    const t = "include = 'pgrepl.conf'\n";
    expect(withInclude(t, INCLUDE_LINE, SETTINGS_FILE)).toBe(t);
  });
});

describe('pg_hba.conf', () => {
  const initdbDefault = 'local all all trust\nhost replication all 127.0.0.1/32 trust\n';
  it('puts the replication rules first, so localhost trust cannot bypass the password', () => {
    const out = withReplicationRules(initdbDefault, ['all'], 'scram-sha-256');
    expect(out.startsWith(`${HBA_BEGIN}\nhost\treplication\tpgrepl\tall\tscram-sha-256\n`)).toBe(true);
    // pg_rewind reads its source through an ordinary connection to the postgres database
    expect(out).toContain('host\tpostgres\tpgrepl\tall\tscram-sha-256\n' + HBA_END + '\n');
    expect(out.endsWith(initdbDefault)).toBe(true);
  });
  it('replaces its block on the next start instead of adding another', () => {
    const first = withReplicationRules(initdbDefault, ['all'], 'scram-sha-256');
    const second = withReplicationRules(first, ['10.0.0.0/8', '192.168.0.0/16'], 'md5');
    expect(second.split(HBA_BEGIN)).toHaveLength(2);
    expect(second).toContain('host\treplication\tpgrepl\t10.0.0.0/8\tmd5\nhost\treplication\tpgrepl\t192.168.0.0/16\tmd5');
    expect(second).not.toContain('scram-sha-256');
    expect(second.endsWith(initdbDefault)).toBe(true);
  });
  it('without a token, removes its block: the file is as it was before, and stays so', () => {
    const on = withReplicationRules(initdbDefault, ['all'], 'scram-sha-256');
    expect(withoutReplicationRules(on)).toBe(initdbDefault);
    expect(withoutReplicationRules(initdbDefault)).toBe(initdbDefault);
    // A line the user added above it stays.
    expect(withoutReplicationRules(`# mine\n${on}`)).toBe(`# mine\n${initdbDefault}`);
  });
  it('appends the official host line', () => {
    expect(withHostAuthLine('local all all trust', 'scram-sha-256')).toBe('local all all trust\n\nhost all all all scram-sha-256\n');
  });
});

describe('replication method of an existing block', () => {
  it('is read back from the block (a clone keeps its upstream\'s), or undefined without one', () => {
    expect(replicationMethodIn(withReplicationRules('', ['all'], 'md5'))).toBe('md5');
    expect(replicationMethodIn(withReplicationRules('', ['all'], 'scram-sha-256'))).toBe('scram-sha-256');
    expect(replicationMethodIn('local all all trust\n')).toBeUndefined();
  });
});

describe('standby configuration', () => {
  const up = { host: 'pg1', port: 5433, passfile: "/data/it's/pgrepl.pgpass", applicationName: 'node_b', slot: 'node_b' };

  it('primary_conninfo has only keys every version knows, quoted for libpq, and no password', () => {
    const c = conninfo(up);
    expect(c).toBe("host='pg1' port='5433' user='pgrepl' passfile='/data/it\\'s/pgrepl.pgpass' application_name='node_b' connect_timeout='10'");
    expect(c).not.toContain('password');
    expect(c).not.toMatch(/channel_binding|sslsni|sslnegotiation|gssencmode/);
  });

  it('the password file escapes : and \\', () => {
    expect(renderPassfile('a:b\\c')).toBe('*:*:*:pgrepl:a\\:b\\\\c\n');
  });

  it('12+: in pgrepl.conf, following the latest timeline through the slot', () => {
    const s = renderSettings({ major: 15, socketDir: '/s', slotMaxWal: undefined, standby: up });
    expect(s).toContain(`primary_conninfo = ${confValue(conninfo(up))}`);
    expect(s).toContain("primary_slot_name = 'node_b'");
    expect(s).toContain("recovery_target_timeline = 'latest'");
  });

  it('11 and older: recovery.conf, and nothing of it in pgrepl.conf', () => {
    expect(renderSettings({ major: 11, socketDir: '/s', slotMaxWal: undefined, standby: up })).not.toContain('primary_conninfo');
    const r = renderRecoveryConf(up);
    expect(r).toContain("standby_mode = 'on'");
    expect(r).toContain("primary_slot_name = 'node_b'");
    expect(r).toContain("recovery_target_timeline = 'latest'");
  });

  it('without slots: no primary_slot_name', () => {
    expect(renderSettings({ major: 15, socketDir: '/s', slotMaxWal: undefined, standby: { ...up, slot: undefined } })).not.toContain('primary_slot_name');
  });
});

describe('WAL archive', () => {
  const archive = { dir: '/srv/archive', self: ['/usr/local/bin/node', '/usr/local/bin/pgrepl'] };
  const up = { host: 'pg1', port: 5433, passfile: '/d/pgrepl.pgpass', applicationName: 'b', slot: 'b' };

  it('commands run pgrepl by absolute path, the placeholders left to PostgreSQL', () => {
    expect(archiveCommand(archive)).toBe("'/usr/local/bin/node' '/usr/local/bin/pgrepl' 'archive-wal' '--dir' '/srv/archive' %p %f");
    expect(restoreCommand(archive)).toBe("'/usr/local/bin/node' '/usr/local/bin/pgrepl' 'restore-wal' '--dir' '/srv/archive' %f %p");
    expect(archiveCommand({ ...archive, dir: '/a%b' })).toContain("'/a%%b' %p %f");
  });

  it('a primary archives, and has the restore_command a rewind uses (pg_rewind --restore-target-wal)', () => {
    const s = renderSettings({ major: 15, socketDir: '/s', slotMaxWal: undefined, archive }).split('\n');
    expect(s).toContain('archive_mode = on');
    expect(s).toContain(`archive_command = ${confValue(archiveCommand(archive))}`);
    expect(s).toContain(`restore_command = ${confValue(restoreCommand(archive))}`);
    expect(s.filter((l) => l.startsWith('restore_command'))).toHaveLength(1);
    expect(renderSettings({ major: 11, socketDir: '/s', slotMaxWal: undefined, archive })).not.toContain('restore_command');
  });

  it('a standby restores from it, and archives once promoted', () => {
    const s = renderSettings({ major: 15, socketDir: '/s', slotMaxWal: undefined, archive, standby: up }).split('\n');
    expect(s).toContain(`restore_command = ${confValue(restoreCommand(archive))}`);
    expect(s).toContain('archive_mode = on');
    expect(renderRecoveryConf(up, archive)).toContain(`restore_command = ${confValue(restoreCommand(archive))}`);
    expect(renderSettings({ major: 11, socketDir: '/s', slotMaxWal: undefined, archive, standby: up })).not.toContain('restore_command');
  });

  it('without PGREPL_ARCHIVE_DIR: no archiving, no restore_command', () => {
    const s = renderSettings({ major: 15, socketDir: '/s', slotMaxWal: undefined, standby: up });
    expect(s).not.toMatch(/archive_mode|archive_command|restore_command/);
    expect(renderRecoveryConf(up)).not.toContain('restore_command');
  });
});

describe('synchronous replication', () => {
  const base = { major: 15, socketDir: '/s', slotMaxWal: undefined };
  it('n standbys: ANY n (*) by default, FIRST n (*) on request; synchronous_commit as given', () => {
    const any = renderSettings({ ...base, sync: { standbys: 1, method: 'any', commit: 'on' } }).split('\n');
    expect(any).toContain("synchronous_standby_names = 'ANY 1 (*)'");
    expect(any).toContain('synchronous_commit = on');
    const first = renderSettings({ ...base, sync: { standbys: 2, method: 'first', commit: 'remote_apply' } }).split('\n');
    expect(first).toContain("synchronous_standby_names = 'FIRST 2 (*)'");
    expect(first).toContain('synchronous_commit = remote_apply');
  });
  it('0 standbys: asynchronous, synchronous_standby_names left alone', () => {
    const s = renderSettings({ ...base, sync: { standbys: 0, method: 'any', commit: 'on' } });
    expect(s).not.toContain('synchronous_standby_names');
    expect(s).toContain('synchronous_commit = on');
  });
  it('on a standby too, so that it keeps them once promoted', () => {
    const up = { host: 'pg1', port: 5433, passfile: '/d/p', applicationName: 'b', slot: 'b' };
    expect(renderSettings({ ...base, standby: up, sync: { standbys: 1, method: 'any', commit: 'on' } })).toContain("synchronous_standby_names = 'ANY 1 (*)'");
  });
});
