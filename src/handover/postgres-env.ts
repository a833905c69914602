/** postgres's environment, whether it replaces this process (execve) or runs as the HA agent's child. */
import type { Config } from '../config/env.js';

/** Variables postgres and its children have no business seeing. */
const SECRET_ENV = ['POSTGRES_PASSWORD', 'PGREPL_TOKEN', 'PGPASSWORD', 'PGREPL_ETCD_PASSWORD'];

/**
 * Takes the secrets out of this process's environment once the configuration holds them, so that
 * no program started from here on inherits them: pg_ctl and the temporary server, initdb, psql,
 * pg_basebackup, pg_rewind. Init scripts get theirs back explicitly, as the official image gives
 * them (steps/init-scripts.ts); this process's own /proc/PID/environ still shows its start-up
 * environment, as the official entrypoint's shell does.
 */
export function withholdSecretsFromChildren(env: NodeJS.ProcessEnv = process.env): void {
  for (const k of SECRET_ENV) delete env[k];
}

/** A copy of `env` without the secrets: for a program started before they are withheld. */
export function withoutSecrets(env: NodeJS.ProcessEnv = process.env): NodeJS.ProcessEnv {
  const out: NodeJS.ProcessEnv = { ...env };
  withholdSecretsFromChildren(out);
  return out;
}

export function postgresEnv(cfg: Config, env: NodeJS.ProcessEnv = process.env): NodeJS.ProcessEnv {
  return { ...withoutSecrets(env), PGDATA: cfg.pgdata, PGPORT: String(cfg.port) };
}
