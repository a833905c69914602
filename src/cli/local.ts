/**
 * What the operator commands share: the node's configuration (the same environment the
 * entrypoint read: `docker exec` inherits it), a SQL connection to the local server over its
 * socket, and argument parsing with one-line usage errors.
 */
import type pg from 'pg';
import { loadConfig, type Config } from '../config/env.js';
import { UserError } from '../errors.js';
import { dropPrivileges, lookupUser, runningAsRoot } from '../handover/privileges.js';
import { withLocalClient } from '../postgres/client.js';
import { withStableNodeName } from '../state/node-name.js';

export const EXIT_USAGE = 64;

export interface Command {
  summary: string;
  usage: string;
  run(args: string[]): Promise<number>;
}

export interface ParsedArgs {
  flags: Set<string>;
  values: Map<string, string>;
  positional: string[];
}

/**
 * Parses `--flag`, `--name VALUE`/`--name=VALUE` and positionals; unknown options are errors, and
 * so are positionals for a command that takes none (no `spec.positional`): a mistyped command must
 * not quietly do something else.
 */
export function parseArgs(args: string[], spec: { flags?: string[]; values?: string[]; /** How many the command takes (it checks them). */ positional?: number }, usage: string): ParsedArgs {
  const out: ParsedArgs = { flags: new Set(), values: new Map(), positional: [] };
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    if (!a.startsWith('--')) {
      out.positional.push(a);
      continue;
    }
    const [name, inline] = a.slice(2).split(/=(.*)/s, 2) as [string, string | undefined];
    if (spec.flags?.includes(name) && inline === undefined) out.flags.add(name);
    else if (spec.values?.includes(name)) {
      const v = inline ?? args[++i];
      if (v === undefined) throw new UserError(`--${name} needs a value; usage: ${usage}`, EXIT_USAGE);
      out.values.set(name, v);
    } else throw new UserError(`unknown option ${a}; usage: ${usage}`, EXIT_USAGE);
  }
  // Commands that take positionals check their number themselves, with their own message.
  const extra = spec.positional === undefined ? out.positional : [];
  if (extra.length > 0) throw new UserError(`unexpected argument "${extra[0]}"; usage: ${usage}`, EXIT_USAGE);
  return out;
}

export function nodeConfig(): Config {
  return withStableNodeName(loadConfig());
}

/** Commands that write into PGDATA or run pg_ctl do it as postgres, as the server does. */
export function becomePostgres(): void {
  if (runningAsRoot()) dropPrivileges(lookupUser());
}

export async function withNode<T>(cfg: Config, fn: (c: pg.Client) => Promise<T>): Promise<T> {
  try {
    return await withLocalClient(
      { socketDir: cfg.socketDir, port: cfg.port, user: cfg.postgresUser, password: cfg.postgresPassword },
      fn,
    );
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ECONNREFUSED') {
      throw new UserError(`no server answers on ${cfg.socketDir}/.s.PGSQL.${cfg.port}: is the node running, and is PGPORT=${cfg.port} its port?`);
    }
    throw err;
  }
}

export async function serverMajor(c: pg.Client): Promise<number> {
  const n = Number((await c.query<{ v: string }>("SELECT current_setting('server_version_num') AS v")).rows[0]!.v);
  return Math.floor(n / 10000);
}

export function print(line: string): void {
  process.stdout.write(line + '\n');
}
