/** postgres's environment, whether it replaces this process (execve) or runs as the HA agent's child. */
import type { Config } from '../config/env.js';

/** Variables postgres and its children have no business seeing. */
const SECRET_ENV = ['POSTGRES_PASSWORD', 'PGREPL_TOKEN', 'PGPASSWORD', 'PGREPL_ETCD_PASSWORD'];

export function postgresEnv(cfg: Config, env: NodeJS.ProcessEnv = process.env): NodeJS.ProcessEnv {
  const out: NodeJS.ProcessEnv = { ...env, PGDATA: cfg.pgdata, PGPORT: String(cfg.port) };
  for (const k of SECRET_ENV) delete out[k];
  return out;
}
