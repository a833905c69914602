import { describe, expect, it } from 'vitest';
import type { Config } from '../../src/config/env.js';
import { databaseStatements, INITDB_DATABASES } from '../../src/steps/databases.js';
import { replicationRoleStatements } from '../../src/steps/replication-role.js';

const cfg = (over: Partial<Config>): Config => ({ postgresUser: 'postgres', postgresDb: 'postgres', gestaltDatabases: [], ...over }) as Config;

describe('a new cluster\'s database statements', () => {
  it('from 15 on: copied file by file; before 15 CREATE DATABASE has no STRATEGY', () => {
    const c = cfg({ postgresUser: 'app user', postgresDb: 'app db', gestaltDatabases: ['gestalt-meta'] });
    expect(databaseStatements(c, 15, INITDB_DATABASES)).toEqual([
      'CREATE DATABASE "app db" STRATEGY FILE_COPY',
      'CREATE DATABASE "gestalt-meta" OWNER "app user" STRATEGY FILE_COPY',
      'GRANT ALL PRIVILEGES ON DATABASE "gestalt-meta" TO "app user"',
    ]);
    expect(databaseStatements(c, 14, INITDB_DATABASES)).toEqual([
      'CREATE DATABASE "app db"',
      'CREATE DATABASE "gestalt-meta" OWNER "app user"',
      'GRANT ALL PRIVILEGES ON DATABASE "gestalt-meta" TO "app user"',
    ]);
  });

  it('creates a database once, even when POSTGRES_DB is also a gestalt database; an existing one is only granted', () => {
    const c = cfg({ postgresDb: 'gestalt-meta', gestaltDatabases: ['gestalt-meta', 'gestalt-kong'] });
    expect(databaseStatements(c, 16, new Set([...INITDB_DATABASES, 'gestalt-kong']))).toEqual([
      'CREATE DATABASE "gestalt-meta" STRATEGY FILE_COPY',
      'GRANT ALL PRIVILEGES ON DATABASE "gestalt-meta" TO "postgres"',
      'GRANT ALL PRIVILEGES ON DATABASE "gestalt-kong" TO "postgres"',
    ]);
  });

  it('POSTGRES_DB=postgres: initdb made it; nothing to create', () => {
    expect(databaseStatements(cfg({}), 15, INITDB_DATABASES)).toEqual([]);
  });
});

describe("the replication role's statements", () => {
  it('create or alter the role with the verifier, never a password; pg_checkpoint from 15 on', () => {
    const created = replicationRoleStatements('SCRAM-SHA-256$4096:c2FsdA==$a:b', 15, false);
    expect(created[0]).toBe(`CREATE ROLE "pgrepl" WITH REPLICATION LOGIN PASSWORD 'SCRAM-SHA-256$4096:c2FsdA==$a:b'`);
    expect(created.at(-1)).toBe('GRANT pg_checkpoint TO "pgrepl"');
    const altered = replicationRoleStatements('md5abc', 14, true);
    expect(altered[0]).toBe(`ALTER ROLE "pgrepl" WITH REPLICATION LOGIN PASSWORD 'md5abc'`);
    expect(altered.some((s) => s.includes('pg_checkpoint'))).toBe(false);
    expect(altered.filter((s) => s.startsWith('GRANT EXECUTE ON FUNCTION pg_catalog.'))).toHaveLength(4);
    // Single-user mode reads one statement per line.
    expect([...created, ...altered].some((s) => /[\r\n]/.test(s))).toBe(false);
  });
});
