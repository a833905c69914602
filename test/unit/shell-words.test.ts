/** POSTGRES_INITDB_ARGS is split as the official entrypoint's `eval` splits it; what eval would run is refused. */
import { describe, expect, it } from 'vitest';
import { shellWords } from '../../src/util/shell-words.js';

describe('shellWords', () => {
  it.each([
    ['', []],
    ['  --data-checksums   -E UTF8 ', ['--data-checksums', '-E', 'UTF8']],
    ["--waldir='/var/lib/my wal'", ['--waldir=/var/lib/my wal']],
    ['--locale="de_DE.UTF-8" --auth-local="peer"', ['--locale=de_DE.UTF-8', '--auth-local=peer']],
    ["'' x", ['', 'x']],
    ['a\\ b c\\"d', ['a b', 'c"d']],
    ['"say \\"hi\\" \\\\ \\$HOME"', ['say "hi" \\ $HOME']],
    ["'it'\\''s'", ["it's"]],
    ["'$HOME;`x`'", ['$HOME;`x`']],
    ['--data-checksums # a comment\n-E UTF8', ['--data-checksums', '-E', 'UTF8']],
    ['a#b', ['a#b']],
    ['one \\\ntwo', ['one', 'two']],
    ['-c\twork_mem=8MB\n--no-instructions', ['-c', 'work_mem=8MB', '--no-instructions']],
  ])('%j -> %j', (text, words) => {
    expect(shellWords(text)).toEqual(words);
  });

  it.each([
    ["--waldir='/x", /' is not closed/],
    ['--locale="C', /" is not closed/],
    ['--waldir=$PGDATA/wal', /\$ outside quotes/],
    ['"--waldir=$PGDATA/wal"', /\$ inside "\.\.\."/],
    ['--locale=`locale`', /` outside quotes/],
    ['--data-checksums; rm -rf /', /; outside quotes/],
    ['-E UTF8 | true', /\| outside quotes/],
  ])('refuses %j', (text, message) => {
    expect(() => shellWords(text)).toThrow(message);
  });
});
