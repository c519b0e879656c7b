/**
 * Compile-only type tests of `auth.migrate()` and `auth.knexMigrations()`: a dry run resolves
 * to the SQL, a plain run to nothing, and the migration source is the one knex takes.
 */
import knex, { type Knex } from 'knex';
import { oauth, type OAuthMigration } from '../../lib';

const db = knex({ client: 'better-sqlite3', connection: { filename: ':memory:' }, useNullAsDefault: true });
const auth = oauth({ db, oauthSchemaVersionsTable: 'auth_versions' });

export async function typeTests(): Promise<void> {
  const sql: string[] = await auth.migrate({ dryRun: true });
  const nothing: void = await auth.migrate();
  const stillNothing: void = await auth.migrate({ dryRun: false });
  const either: void | string[] = await auth.migrate({ dryRun: Math.random() > 0.5 });
  void [sql, nothing, stillNothing, either];

  // @ts-expect-error a plain migrate() resolves to nothing, not to the SQL
  const notSql: string[] = await auth.migrate();
  void notSql;

  // @ts-expect-error an unknown option
  await auth.migrate({ dry: true });

  const source: Knex.MigrationSource<OAuthMigration> = auth.knexMigrations();
  await db.migrate.latest({ migrationSource: source });
  const [first] = await source.getMigrations([]);
  const name: string = first!.name;
  void name;
}

// @ts-expect-error the versions table name is a string
oauth({ db, oauthSchemaVersionsTable: 42 });
