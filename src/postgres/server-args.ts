/**
 * The user's arguments for postgres (`pgrepl postgres ARGS`), as every server pgrepl starts gets
 * them: the temporary server, single-user mode and the server it hands over to, as in the official
 * image, whose temporary server gets "$@" too.
 *
 * One of them needs care: `-c config_file=FILE` makes postgres read FILE instead of
 * PGDATA/postgresql.conf, which is where pgrepl's settings are included (a standby's
 * primary_conninfo among them). So the argument is pointed at a small file in the data directory
 * that includes FILE and then pgrepl.conf, in the order postgresql.conf would have had them:
 * postgresql.auto.conf and other -c arguments still override both.
 */
import { resolve } from 'node:path';

/** The file pointed at instead of the user's config_file, written into the data directory on every start. */
export const CONFIG_WRAPPER = 'pgrepl-config-file.conf';

/** A GUC name as postgres compares them: case-insensitive, with `-` meaning `_`. */
const gucName = (name: string): string => name.toLowerCase().replace(/-/g, '_');

interface ConfigFileArg {
  /** Where the argument starts, and how many array items it takes (`-c` `name=value` is two). */
  index: number;
  length: 1 | 2;
  file: string;
}

/** Every config_file argument, in the forms postgres accepts: `-c name=v`, `-cname=v`, `--name=v`. */
function configFileArgs(args: readonly string[]): ConfigFileArg[] {
  const found: ConfigFileArg[] = [];
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    let setting: string | undefined;
    let length: 1 | 2 = 1;
    if (a === '-c' && i + 1 < args.length) {
      setting = args[i + 1];
      length = 2;
    } else if (a.startsWith('-c') && a.length > 2) setting = a.slice(2);
    else if (a.startsWith('--') && a.includes('=')) setting = a.slice(2);
    const eq = setting?.indexOf('=') ?? -1;
    if (setting !== undefined && eq > 0 && gucName(setting.slice(0, eq)) === 'config_file') {
      found.push({ index: i, length, file: setting.slice(eq + 1) });
    }
    if (length === 2) i++;
  }
  return found;
}

/** The configuration file the user's arguments name (the last one wins, as in postgres), absolute. */
export function userConfigFile(args: readonly string[], cwd = process.cwd()): string | undefined {
  const last = configFileArgs(args).at(-1);
  return last && resolve(cwd, last.file);
}

/** The arguments with every config_file argument pointing at `wrapper` instead. */
export function withConfigFile(args: readonly string[], wrapper: string): string[] {
  const out = [...args];
  for (const arg of configFileArgs(args).reverse()) out.splice(arg.index, arg.length, '-c', `config_file=${wrapper}`);
  return out;
}

/** A configuration file's string literal: single-quoted, ' doubled, \ escaped. */
const confString = (s: string): string => `'${s.replace(/\\/g, '\\\\').replace(/'/g, "''")}'`;

/** The wrapper's text: the user's file, then pgrepl's settings (relative: next to the wrapper). */
export function renderConfigWrapper(userFile: string, settingsFile: string): string {
  return [
    `# Written by pgrepl on every start: postgres was given config_file=${JSON.stringify(userFile)},`,
    "# which does not include pgrepl's settings; this file reads it, then them.",
    `include ${confString(userFile)}`,
    `include_if_exists ${confString(settingsFile)}`,
    '',
  ].join('\n');
}
