/** The user's postgres arguments: a config_file among them is pointed at pgrepl's wrapper, in every form postgres takes. */
import { describe, expect, it } from 'vitest';
import { renderConfigWrapper, userConfigFile, withConfigFile } from '../../src/postgres/server-args.js';

const W = '/data/pgrepl-config-file.conf';

describe('userConfigFile and withConfigFile', () => {
  it.each([
    [['-c', 'config_file=/etc/postgresql/postgresql.conf'], '/etc/postgresql/postgresql.conf', ['-c', `config_file=${W}`]],
    [['-cconfig_file=/etc/pg.conf', '-c', 'work_mem=8MB'], '/etc/pg.conf', ['-c', `config_file=${W}`, '-c', 'work_mem=8MB']],
    [['--config-file=/etc/pg.conf'], '/etc/pg.conf', ['-c', `config_file=${W}`]],
    [['--config_file=/etc/pg.conf', '-p', '5433'], '/etc/pg.conf', ['-c', `config_file=${W}`, '-p', '5433']],
    [['-c', 'CONFIG_FILE=rel.conf'], '/work/rel.conf', ['-c', `config_file=${W}`]],
    // The last one wins, as in postgres; every one is replaced.
    [['-c', 'config_file=/a.conf', '-c', 'config_file=/b.conf'], '/b.conf', ['-c', `config_file=${W}`, '-c', `config_file=${W}`]],
  ])('%j: the file %s, rewritten %j', (args, file, rewritten) => {
    expect(userConfigFile(args, '/work')).toBe(file);
    expect(withConfigFile(args, W)).toEqual(rewritten);
  });

  it.each([
    [[]],
    [['-c', 'shared_preload_libraries=pg_stat_statements']],
    [['-c', 'hba_file=/etc/pg_hba.conf', '--work-mem=8MB']],
    // The value of another -c is not an option of its own.
    [['-c', '-cconfig_file=/x']],
  ])('%j names no config file', (args) => {
    expect(userConfigFile(args)).toBeUndefined();
    expect(withConfigFile(args, W)).toEqual(args);
  });
});

describe('renderConfigWrapper', () => {
  it("includes the user's file, then pgrepl's settings, quoted for the configuration file", () => {
    const text = renderConfigWrapper("/etc/it's.conf", 'pgrepl.conf');
    expect(text.split('\n').filter((l) => !l.startsWith('#'))).toEqual([`include '/etc/it''s.conf'`, `include_if_exists 'pgrepl.conf'`, '']);
  });
});
