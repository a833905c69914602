/**
 * CLI conventions, through the bundle: help that was asked for (`pgrepl help [COMMAND]`,
 * `pgrepl COMMAND --help`) goes to stdout with exit 0; a usage error goes to stderr with exit 64
 * (sysexits' EX_USAGE) and nothing on stdout. No server is needed: PGPORT is one where nothing
 * listens (6460, from this helper's range), and help must not even read the configuration.
 */
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { COMMAND_HELP, type CommandName } from '../../src/cli/help.js';
import { removeScratch, runCommand, scratchDir, type RunResult } from '../support/node.js';

const PORT = 6460;
const NAMES = Object.keys(COMMAND_HELP) as CommandName[];

let dir: string;
beforeAll(() => {
  dir = scratchDir();
});
afterAll(() => removeScratch(dir));

const run = (args: string[], env: Record<string, string> = {}): Promise<RunResult> => runCommand({ pgdata: join(dir, 'data'), port: PORT, env }, args);
const commandHelp = (name: CommandName) => `usage: ${COMMAND_HELP[name].usage}\n${COMMAND_HELP[name].summary}\n`;

describe('help goes to stdout, exit 0', () => {
  it('pgrepl help: the usage and every command, on stdout', async () => {
    const r = await run(['help']);
    expect(r.code).toBe(0);
    expect(r.stderr).toBe('');
    expect(r.stdout).toMatch(/^usage: pgrepl postgres \[ARGS\]/);
    for (const name of NAMES) expect(r.stdout).toContain(`  ${COMMAND_HELP[name].usage}`);
  });

  it.each(NAMES)('%s: pgrepl help NAME, NAME --help and NAME -h print its usage and summary', async (name) => {
    for (const args of [['help', name], [name, '--help'], [name, '-h']]) {
      const r = await run(args);
      expect({ args, code: r.code, stdout: r.stdout, stderr: r.stderr }).toEqual({ args, code: 0, stdout: commandHelp(name), stderr: '' });
    }
  });

  it('COMMAND --help needs no valid configuration (it reads none)', async () => {
    const r = await run(['status', '--help'], { PGPORT: 'abc' });
    expect(r.code).toBe(0);
    expect(r.stdout).toBe(commandHelp('status'));
  });
});

describe('usage errors go to stderr, exit 64, nothing on stdout', () => {
  it('pgrepl alone: the usage on stderr', async () => {
    const r = await run([]);
    expect(r.code).toBe(64);
    expect(r.stdout).toBe('');
    expect(r.stderr).toMatch(/^usage: pgrepl postgres \[ARGS\]/);
  });

  it('pgrepl help of a command that does not exist, or of two', async () => {
    const unknown = await run(['help', 'promotee']);
    expect([unknown.code, unknown.stdout]).toEqual([64, '']);
    expect(unknown.stderr.split('\n')[0]).toBe('pgrepl help: no command "promotee"');
    const two = await run(['help', 'status', 'health']);
    expect([two.code, two.stdout]).toEqual([64, '']);
    expect(two.stderr.split('\n')[0]).toBe('pgrepl help: takes at most one COMMAND');
  });

  it.each(NAMES)('%s --bogus: one fatal line naming the option and the usage', async (name) => {
    const r = await run([name, '--bogus']);
    expect(r.code).toBe(64);
    expect(r.stdout).toBe('');
    const fatal = r.stderr.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as { level: number; msg: string }).filter((l) => l.level === 60);
    expect(fatal.map((l) => l.msg)).toEqual([`unknown option --bogus; usage: ${COMMAND_HELP[name].usage}`]);
  });
});
