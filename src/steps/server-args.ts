/**
 * The user's postgres arguments for a server about to start on `dataDir`: with a config_file
 * among them, the wrapper that also loads pgrepl's settings is (re)written there first and named
 * instead (postgres/server-args.ts says why).
 */
import { join } from 'node:path';
import { SETTINGS_FILE } from '../layout.js';
import { CONFIG_WRAPPER, renderConfigWrapper, userConfigFile, withConfigFile } from '../postgres/server-args.js';
import { writeFileAtomic } from '../util/atomic-file.js';

export async function serverArgs(userArgs: readonly string[], dataDir: string): Promise<string[]> {
  const file = userConfigFile(userArgs);
  if (file === undefined) return [...userArgs];
  const wrapper = join(dataDir, CONFIG_WRAPPER);
  await writeFileAtomic(wrapper, renderConfigWrapper(file, SETTINGS_FILE), 0o600);
  return withConfigFile(userArgs, wrapper);
}
