/**
 * A node's name (its slot on the upstream, its application_name, the owner of its state file)
 * must not change when its container is re-created on the same volume. Without PGREPL_NODE_NAME
 * it comes from the host name, and a container's host name is its ID unless --hostname is given:
 * every `docker rm` + `docker run` would be "another node", leaving its old slot behind on the
 * upstream to retain WAL forever. So the first name a volume was started under is remembered in
 * PGDATA (NODE_NAME_FILE, which base backups do not copy: a clone picks its own) and used again
 * as long as PGREPL_NODE_NAME is not set; setting it renames the node.
 */
import { readFileSync } from 'node:fs';
import { mkdir, readFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import type { Config } from '../config/env.js';
import { NODE_NAME_FILE } from '../layout.js';
import { writeFileAtomic } from '../util/atomic-file.js';

const VALID = /^[a-z0-9_]{1,63}$/;

/** The configuration with the node's stable name. */
export function withStableNodeName(cfg: Config): Config {
  if (cfg.nodeNameFromEnv) return cfg;
  try {
    const remembered = readFileSync(join(cfg.pgdata, NODE_NAME_FILE), 'utf8').trim();
    if (VALID.test(remembered)) return { ...cfg, nodeName: remembered };
  } catch {
    // not remembered yet
  }
  return cfg;
}

/** Remembers the name this volume runs under (at every start: pg_rewind removes the file). */
export async function rememberNodeName(pgdata: string, name: string): Promise<void> {
  const path = join(pgdata, NODE_NAME_FILE);
  if ((await readFile(path, 'utf8').catch(() => '')).trim() === name) return;
  await mkdir(dirname(path), { recursive: true, mode: 0o700 });
  await writeFileAtomic(path, name + '\n', 0o600);
}
