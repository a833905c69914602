/**
 * Writes what the entrypoint owns in the configuration, on every start: pgrepl.conf (replication
 * settings for this version), the include line in postgresql.conf (added once), and pgrepl's
 * block at the top of pg_hba.conf. Each file is replaced atomically.
 */
import { readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { INCLUDE_LINE, SETTINGS_FILE } from '../layout.js';
import { renderSettings, withInclude, withReplicationRules } from '../postgres/settings.js';
import { writeFileAtomic } from '../util/atomic-file.js';
import type { StepContext } from './context.js';

async function rewrite(path: string, change: (text: string) => string): Promise<void> {
  const before = await readFile(path, 'utf8');
  const after = change(before);
  if (after !== before) await writeFileAtomic(path, after, (await stat(path)).mode & 0o777);
}

export async function writeSettings(ctx: StepContext): Promise<void> {
  const { cfg, obs } = ctx;
  const dir = cfg.pgdata;
  await writeFileAtomic(
    join(dir, SETTINGS_FILE),
    renderSettings({ major: obs.binariesMajor, socketDir: cfg.socketDir, slotMaxWal: cfg.slotMaxWal }),
    0o600,
  );
  await rewrite(join(dir, 'postgresql.conf'), (t) => withInclude(t, INCLUDE_LINE, SETTINGS_FILE));
  const method = ctx.replicationAuth?.method ?? obs.replicationAuthMethod ?? 'scram-sha-256';
  await rewrite(join(dir, 'pg_hba.conf'), (t) => withReplicationRules(t, cfg.replicationCidrs, method));
}
