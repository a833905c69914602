/**
 * What every operator command needs, and no more: argument parsing with one-line usage errors
 * (exit 64, as sysexits' EX_USAGE). archive-wal runs once per WAL segment and imports only this.
 */
import { UserError } from '../errors.js';

export const EXIT_USAGE = 64;

/** A command's code; its usage and summary are in help.ts. */
export interface Command {
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
