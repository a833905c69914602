/**
 * The names pgrepl uses inside PGDATA, in one place: observing and acting must agree on them.
 *
 * Clusters are built (initdb, and later pg_basebackup) in a staging directory *inside* PGDATA, not
 * beside it, because PGDATA is often the mount point of a volume: only inside it is the same
 * filesystem guaranteed, so the final move is a series of renames, never a copy. A staging
 * directory is renamed to SWAP_DIR before its entries move up; that rename is the commit point:
 *   - a STAGING_* directory found at start is an interrupted build: discard it, build again;
 *   - SWAP_DIR found at start is a finished build half moved in: finish the move.
 */
export const STAGING_INIT = '.pgrepl-staging-init';
export const STAGING_CLONE = '.pgrepl-staging-clone';
export const SWAP_DIR = '.pgrepl-swap';

/** The configuration file the entrypoint owns, included from postgresql.conf, rewritten every start. */
export const SETTINGS_FILE = 'pgrepl.conf';
export const INCLUDE_LINE = `include_if_exists = '${SETTINGS_FILE}'\t# added by pgrepl: settings it manages`;

/**
 * The replication password for a standby's walreceiver, as a libpq password file (mode 0600),
 * named by primary_conninfo's passfile. Not in primary_conninfo itself: PostgreSQL logs the new
 * value of primary_conninfo when it is reloaded.
 */
export const PASSFILE = 'pgrepl.pgpass';

/** The node's own state (see state/node-state.ts). */
export const STATE_FILE = 'pgrepl.state.json';

/** Markers of a standby in a data directory, by version. */
export const STANDBY_SIGNAL = 'standby.signal';
export const RECOVERY_CONF = 'recovery.conf';

/**
 * Data moved aside (a former primary that could not be rewound, a standby of another system with
 * PGREPL_RECLONE=auto) goes to PGDATA/pg_dynshmem/pgrepl-aside-<time>. Inside PGDATA because only
 * there is a rename guaranteed (PGDATA is often a mount point whose parent postgres cannot
 * write). In pg_dynshmem because that is the one directory whose contents all three tools that
 * could destroy or ship the copy leave alone: pg_basebackup and pg_rewind exclude its contents
 * (so the copy is never sent to other nodes, and a later rewind, which deletes whatever the source
 * lacks, does not delete it), and postgres itself only ever removes its own "mmap." files there.
 * (pgsql_tmp* names are skipped by base backups but deleted by pg_rewind: tested.) Nothing of
 * pgrepl ever deletes it. A WAL directory outside PGDATA (POSTGRES_INITDB_WALDIR) is moved into
 * the kept copy too, as its pg_wal, so that the copy is a whole cluster and the clone finds that
 * directory empty; that needs it on PGDATA's filesystem (same mount), else the move is refused.
 */
export const ASIDE_PARENT = 'pg_dynshmem';
export const ASIDE_PREFIX = 'pgrepl-aside-';
/**
 * With the WAL outside PGDATA (POSTGRES_INITDB_WALDIR), the WAL goes along: renamed into the kept
 * copy's directory of this name, which then replaces its pg_wal symlink (steps/aside.ts). Found
 * in a kept copy, it is a move aside that was interrupted: the rest of that copy's WAL is still
 * in the WAL directory, where its pg_wal symlink points.
 */
export const ASIDE_WAL_MOVING = '.pgrepl-wal';

/**
 * The node's name when PGREPL_NODE_NAME is not given (state/node-name.ts), kept beside the kept
 * copies for the same reason: base backups do not copy it to other nodes. pg_rewind removes it,
 * and every start writes it again.
 */
export const NODE_NAME_FILE = `${ASIDE_PARENT}/pgrepl-node-name`;

/**
 * This node's TLS files (PGREPL_TLS_*): its certificate and key as postgres reads them (owned by
 * it, mode 0600), the CA its standby connections verify against, or the certificate made at the
 * first start with PGREPL_TLS=self-signed. Beside the kept copies for the same reason: base
 * backups do not send a node's private key to other nodes, and a standby makes its own.
 */
export const TLS_DIR = `${ASIDE_PARENT}/pgrepl-tls`;
