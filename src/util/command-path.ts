/**
 * The file a command name runs, found on PATH as execvp finds it. Its own module, with no
 * dependencies of weight: `pgrepl postgres` asks it before anything else is loaded.
 */
import { accessSync, constants } from 'node:fs';
import { delimiter, isAbsolute, join } from 'node:path';
import { UserError } from '../errors.js';

/** PATH lookup, as execvp would do (execve itself does none). */
export function resolveCommand(cmd: string, path = process.env.PATH ?? ''): string {
  if (cmd.includes('/')) return isAbsolute(cmd) ? cmd : join(process.cwd(), cmd);
  for (const dir of path.split(delimiter)) {
    if (!dir) continue;
    const candidate = join(dir, cmd);
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      // not here
    }
  }
  throw new UserError(`${cmd}: command not found on PATH`, 127);
}
