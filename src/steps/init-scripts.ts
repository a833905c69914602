/**
 * The official image's /docker-entrypoint-initdb.d contract (directory: PGREPL_INITDB_DIR), run
 * once, against the temporary server of a new cluster, in name order:
 *   *.sh                        executable: run; otherwise sourced by bash (with what the official
 *                               entrypoint's shell has: docker_process_sql, the psql array)
 *   *.sql, *.sql.gz/.xz/.zst    fed to psql with ON_ERROR_STOP
 * Scripts see PGDATA pointing at the cluster being built (it is moved into place afterwards), so
 * `echo ... >> "$PGDATA/postgresql.conf"` keeps working.
 */
import { access, constants, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { log } from '../log.js';
import { loadExeca, run } from '../postgres/run.js';
import { shellWord } from '../postgres/settings.js';
import { stagingDir, type StepContext } from './context.js';
import { requireTempServer } from './temp-server.js';

/**
 * What a sourced script finds in the official entrypoint's shell: its options (set -Eeo pipefail:
 * a failing command ends the init), docker_process_sql, and the `psql` array scripts written for
 * it use ("${psql[@]}" ... <<EOSQL, as postgis's does). PGHOST names pgrepl's socket directory.
 */
const SOURCE_PRELUDE = `
set -Eeo pipefail
docker_process_sql() {
  local query_runner=( psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --no-password --no-psqlrc )
  if [ -n "$POSTGRES_DB" ]; then
    query_runner+=( --dbname "$POSTGRES_DB" )
  fi
  PGHOSTADDR= "\${query_runner[@]}" "$@"
}
psql=( docker_process_sql )
. "$1"
`;

const DECOMPRESSORS: [string, string, string[]][] = [
  ['.sql.gz', 'gzip', ['-dc']],
  ['.sql.xz', 'xz', ['-dc']],
  ['.sql.zst', 'zstd', ['-dc', '-q']],
];

/** A word as the shell would need it written: quoted only when it has to be. */
const shellText = (word: string): string => (/^[\w@%+=:,./-]+$/.test(word) ? word : shellWord(word));

/**
 * The official entrypoint's exported variables, which its scripts (run or sourced) see: the
 * POSTGRES_* ones, resolved from their _FILE variants and defaulted, and PGPASSWORD. The secrets
 * were taken out of this process's environment (handover/postgres-env.ts): they come back here only.
 */
function scriptEnv(ctx: StepContext): Record<string, string | undefined> {
  const { cfg } = ctx;
  const password = cfg.postgresPassword?.reveal();
  return {
    PGDATA: stagingDir(ctx),
    PGHOST: cfg.socketDir,
    PGPORT: String(cfg.port),
    PGPASSWORD: password,
    POSTGRES_PASSWORD: password,
    POSTGRES_USER: cfg.postgresUser,
    POSTGRES_DB: cfg.postgresDb,
    POSTGRES_INITDB_ARGS: cfg.initdbArgs.map(shellText).join(' '),
  };
}

export async function runInitScripts(ctx: StepContext): Promise<void> {
  requireTempServer(ctx);
  const dir = ctx.cfg.initdbDir;
  let names: string[];
  try {
    names = (await readdir(dir)).sort();
  } catch {
    log.debug({ dir }, 'no init scripts directory');
    return;
  }
  const env = scriptEnv(ctx);
  const psql = ['-v', 'ON_ERROR_STOP=1', `--username=${ctx.cfg.postgresUser}`, '--no-password', '--no-psqlrc', `--dbname=${ctx.cfg.postgresDb}`];
  for (const name of names) {
    const file = join(dir, name);
    if (name.endsWith('.sh')) {
      const executable = await access(file, constants.X_OK).then(() => true, () => false);
      log.info({ script: file }, executable ? 'running init script' : 'sourcing init script');
      if (executable) await run(file, [], { env });
      else await run('bash', ['-c', SOURCE_PRELUDE, 'pgrepl-init', file], { env });
    } else if (name.endsWith('.sql')) {
      log.info({ script: file }, 'running init script');
      await run('psql', [...psql, '-f', file], { env });
    } else {
      const dec = DECOMPRESSORS.find(([ext]) => name.endsWith(ext));
      if (!dec) {
        log.info({ file }, 'ignoring a file in the init scripts directory (not .sh, .sql, .sql.gz, .sql.xz or .sql.zst)');
        continue;
      }
      log.info({ script: file }, 'running init script');
      const { execa } = await loadExeca();
      await execa(dec[1], [...dec[2], file], { stderr: 2 }).pipe('psql', psql, { env, stdout: 2, stderr: 2 });
    }
  }
}
