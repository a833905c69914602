/**
 * Writes what the entrypoint owns in the configuration, on every start: pgrepl.conf (replication
 * settings for this version and, on a standby, whom it follows), the include line in
 * postgresql.conf (added once), pgrepl's block at the top of pg_hba.conf (none without a token:
 * replication off), a standby's marker (standby.signal on 12+, recovery.conf before), and with
 * TLS the node's certificate files (steps/tls.ts). Each file is replaced atomically; those
 * holding the replication password or a private key are mode 0600.
 */
import { readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { Config, Role } from '../config/env.js';
import { INCLUDE_LINE, PASSFILE, RECOVERY_CONF, SETTINGS_FILE, STANDBY_SIGNAL } from '../layout.js';
import {
  renderPassfile, renderRecoveryConf, renderSettings, replicationMethodIn, withInclude, withoutReplicationRules, withReplicationRules,
  type StandbyConnection, type WalArchive,
} from '../postgres/settings.js';
import { clientTls, libpqTls, serverTlsFiles } from '../postgres/tls.js';
import type { PasswordEncryption } from '../postgres/verifier.js';
import { writeFileAtomic, writeFileAtomicIfChanged } from '../util/atomic-file.js';
import type { StepContext } from './context.js';
import { writeTlsFiles } from './tls.js';

async function rewrite(path: string, change: (text: string) => string): Promise<void> {
  const before = await readFile(path, 'utf8');
  const after = change(before);
  if (after !== before) await writeFileAtomic(path, after, (await stat(path)).mode & 0o777);
}

export interface SettingsInput {
  cfg: Config;
  /** Where to write the files: PGDATA (default), or a copy that will be moved into it. */
  dir?: string;
  major: number;
  /** Present for a standby: whom it follows. */
  upstream?: { host: string; port: number } | undefined;
  /**
   * How pg_hba checks the replication password, when known (recorded when the role's password
   * was applied); otherwise the method already in pgrepl's block (a clone's, its upstream's),
   * and scram-sha-256 if there is none.
   */
  replicationAuthMethod: PasswordEncryption | undefined;
  /** A standby's wait between attempts to reach its upstream (postgres's default if absent). */
  walRetrySeconds?: number | undefined;
}

/**
 * How the server runs pgrepl (archive_command, restore_command): this Node binary and this bundle,
 * by absolute path, as this process was started. In the image that is /usr/local/bin/node and the
 * `pgrepl` link on PATH; outside it, whatever Node ran `dist/pgrepl.cjs`.
 */
export function selfCommand(): string[] {
  const bundle = process.argv[1];
  if (!bundle) throw new Error('internal: cannot tell the path of the pgrepl bundle (process.argv[1])');
  return [process.execPath, bundle];
}

/** Writes the configuration for a node; used at start and by `pgrepl follow`. */
export async function writeNodeSettings(s: SettingsInput): Promise<void> {
  const { cfg, major } = s;
  const dir = s.dir ?? cfg.pgdata;
  const standby: StandbyConnection | undefined = s.upstream && {
    host: s.upstream.host,
    port: s.upstream.port,
    passfile: join(cfg.pgdata, PASSFILE), // where it will be once the copy is moved in
    applicationName: cfg.nodeName,
    slot: cfg.slots ? cfg.nodeName : undefined,
    tls: libpqTls(clientTls(cfg.tls), cfg.pgdata),
  };
  // In PGDATA itself, also while the settings go into a copy: the copy's server reads them there once moved in.
  await writeTlsFiles(cfg);
  const archive: WalArchive | undefined = cfg.archiveDir === undefined ? undefined : { dir: cfg.archiveDir, self: selfCommand() };
  await writeFileAtomicIfChanged(
    join(dir, SETTINGS_FILE),
    renderSettings({
      major, socketDir: cfg.socketDir, slotMaxWal: cfg.slotMaxWal, standby, archive,
      sync: { standbys: cfg.syncStandbys, method: cfg.syncMethod, commit: cfg.syncCommit },
      tls: cfg.tls && serverTlsFiles(cfg.tls),
      walRetrySeconds: s.walRetrySeconds,
    }),
    0o600,
  );
  await rewrite(join(dir, 'postgresql.conf'), (t) => withInclude(t, INCLUDE_LINE, SETTINGS_FILE));
  // Without a token, no rule names the pgrepl role: replication is off (a rule from an earlier start goes).
  await rewrite(join(dir, 'pg_hba.conf'), (t) => cfg.replicationOn
    ? withReplicationRules(t, cfg.replicationCidrs, s.replicationAuthMethod ?? replicationMethodIn(t) ?? 'scram-sha-256', cfg.tls !== undefined)
    : withoutReplicationRules(t));
  if (standby) {
    await writeFileAtomicIfChanged(join(dir, PASSFILE), renderPassfile(cfg.replicationPassword.reveal()), 0o600);
    if (major >= 12) await writeFileAtomicIfChanged(join(dir, STANDBY_SIGNAL), '', 0o600);
    else await writeFileAtomicIfChanged(join(dir, RECOVERY_CONF), renderRecoveryConf(standby, archive), 0o600);
  }
}

export async function writeSettings(ctx: StepContext, as: Role, staging?: string, walRetrySeconds?: number): Promise<void> {
  await writeNodeSettings({
    cfg: ctx.cfg,
    dir: staging === undefined ? undefined : join(ctx.cfg.pgdata, staging),
    major: ctx.obs.binariesMajor,
    upstream: as === 'STANDBY' ? ctx.upstream : undefined,
    replicationAuthMethod: (ctx.replicationAuth === 'off' ? undefined : ctx.replicationAuth?.method) ?? ctx.obs.replicationAuthMethod,
    walRetrySeconds,
  });
}
