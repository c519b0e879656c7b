/**
 * Versioned migrations of the schema (design.md §3) under the configured names.
 *
 * The schema is the ordered list of versions in ./versions.ts. A version holds one change per
 * table it touches: version 1 creates the four tables, a later one adds columns or indexes to
 * some of them, or backfills. What has been applied is recorded per table: the versions table
 * (`oauthSchemaVersionsTable`, default `oauth_schema_versions`) holds one row per configured
 * table name and version, with the version's description and when it was applied.
 *
 * Per table, not one number for the whole database, because the tables follow the enabled
 * features: the retired refresh tokens table exists only with `refresh`, the jti table only with
 * `jwt_bearer`. Enabling `refresh` a year later must create its table, at version 1, then apply
 * every later change of that table, while the tables already there are up to date. So
 * `migrate()` goes through the versions in order and, within one, through the tables in
 * `TABLE_ORDER` (a table after those it references), and runs each enabled table's change that
 * has no row yet. A table's first change creates it; later ones alter it. A renamed table (a
 * new `oauthGrantsTable`) has no rows under its new name, so it is created, as before versions.
 *
 * Adopting a database from before versions (tables made by the unversioned `migrate()` of 0.1,
 * perhaps missing columns added since): a table that exists but has no row gets its first
 * version as a baseline. Its missing columns are added, with the indexes on them, as the
 * unversioned `migrate()` did, and the version is recorded ("adopted" in its description);
 * the later versions then run as usual. Nothing is dropped.
 *
 * `migrate()` first reads, without a lock, whether anything is due; usually nothing is, and it
 * returns without writing. Otherwise it runs everything due in one transaction (PostgreSQL and
 * SQLite both roll DDL back), so a failure leaves the schema and the versions table as they
 * were. The transaction first inserts a lock row (version 0) into the versions table, and
 * deletes it before committing, so its row is never seen. A second process migrating at the
 * same time blocks on that insert: on PostgreSQL the primary key makes it wait for the first
 * transaction's outcome; on SQLite the insert takes the write lock, like BEGIN IMMEDIATE, and
 * waits for it as the driver's busy_timeout allows. It then reads what is due again, under the
 * lock, and finds it done. The versions table itself is created before, outside the
 * transaction; a process that loses that race uses the winner's.
 *
 * Migrations run on the host's knex, not through the store's SQLite writer: call `migrate()`
 * before serving. `migrationSql()` (`migrate({ dryRun: true })`) returns the statements of
 * the same plan, built by knex, without running them (the lock excepted). `knexMigrations()`
 * gives the same versions as a knex migration source, one migration per version and table,
 * for teams that run `knex.migrate.latest()`; knex then records them in its own table.
 */
import type { Knex } from 'knex';
import type { Schema, TableNames } from '../store/schema';
import { TABLE_ORDER, VERSIONS, type SchemaVersion, type Statement, type TableChange, type TableId } from './versions';

export { VERSIONS, TABLE_ORDER, type SchemaVersion, type TableChange, type TableId } from './versions';

/** One change due: a version's change of one table. */
interface Due {
  version: SchemaVersion;
  id: TableId;
  names: TableNames<Record<string, string>>;
  change: TableChange<string>;
  /** This is the table's first version: it creates the table (or adopts an existing one). */
  creates: boolean;
}

/** What `migrate()` runs: the versions table if missing, then each change due with its version row. */
interface Plan {
  versionsTable?: Statement;
  steps: { due: Due; statements: Statement[] }[];
}

/** Creates or updates the tables of `tables` to the last version, recording what it applies. */
export async function migrate(db: Knex, schema: Schema, tables: ReadonlySet<TableId>, versions: readonly SchemaVersion[] = VERSIONS): Promise<void> {
  const v = schema.schemaVersions;
  if (!(await db.schema.hasTable(v.table))) {
    try {
      await createVersionsTable(db, schema);
    } catch (e) {
      // Another process created it meanwhile: use theirs.
      if (!(await db.schema.hasTable(v.table))) throw e;
    }
  }
  if ((await plan(db, schema, tables, versions)).steps.length === 0) return;
  await db.transaction(async (trx) => {
    const lock = { [v.columns.tableName]: v.table, [v.columns.version]: 0 };
    await trx(v.table).insert({ ...lock, [v.columns.description]: 'lock: a migration is running', [v.columns.appliedAt]: new Date() });
    for (const step of (await plan(trx, schema, tables, versions)).steps) {
      for (const statement of step.statements) await statement;
    }
    await trx(v.table).where(lock).delete();
  });
}

/** The statements `migrate()` would run now, as SQL, without running them (nothing due: none). */
export async function migrationSql(db: Knex, schema: Schema, tables: ReadonlySet<TableId>, versions: readonly SchemaVersion[] = VERSIONS): Promise<string[]> {
  const p = await plan(db, schema, tables, versions);
  const statements = [...(p.versionsTable ? [p.versionsTable] : []), ...p.steps.flatMap((s) => s.statements)];
  return statements.flatMap((s) => {
    const sql = s.toSQL();
    return (Array.isArray(sql) ? sql : [sql]).map((q) => db.raw(q.sql, q.bindings ?? []).toString());
  });
}

/** A migration of `knexMigrations()`: one version's change of one table. */
export interface OAuthMigration {
  /** `0001_initial_schema_oauth_applications`: version, version name, configured table name. */
  readonly name: string;
  readonly version: number;
  readonly table: string;
  readonly description: string;
}

/**
 * The versions as a knex migration source (`knex.migrate.latest({ migrationSource })`), one
 * migration per version and enabled table, in the order `migrate()` applies them. A table's
 * first migration adopts an existing table as `migrate()` does; `down` drops what `up` added.
 * A migration of a feature enabled later is new to knex, so `latest` runs it then.
 */
export function knexMigrations(schema: Schema, tables: ReadonlySet<TableId>, versions: readonly SchemaVersion[] = VERSIONS): Knex.MigrationSource<OAuthMigration> {
  const dues = new Map<string, Due>();
  for (const due of changes(schema, tables, versions)) {
    const name = `${String(due.version.version).padStart(4, '0')}_${due.version.name}_${due.names.table}`;
    dues.set(name, due);
  }
  const list: OAuthMigration[] = [...dues].map(([name, due]) => Object.freeze({ name, version: due.version.version, table: due.names.table, description: due.version.description }));
  return {
    getMigrations: async () => list,
    getMigrationName: (m) => m.name,
    getMigration: async (m) => {
      const due = dues.get(m.name);
      if (!due) throw new Error(`knexMigrations(): no migration named ${JSON.stringify(m.name)}`);
      return {
        up: async (knex: Knex) => {
          for (const statement of (await changeStatements(knex, schema, due)).statements) await statement;
        },
        down: async (knex: Knex) => {
          for (const statement of undoStatements(knex, schema, due)) await statement;
        },
      };
    },
  };
}

/** Every version's change of every enabled table, in the order they apply. */
function changes(schema: Schema, tables: ReadonlySet<TableId>, versions: readonly SchemaVersion[]): Due[] {
  const out: Due[] = [];
  const seen = new Set<TableId>();
  for (const version of [...versions].sort((a, b) => a.version - b.version)) {
    for (const id of TABLE_ORDER) {
      const make = version.tables[id] as ((s: Schema) => TableChange<string>) | undefined;
      if (!make || !tables.has(id)) continue;
      out.push({ version, id, names: schema[id] as TableNames<Record<string, string>>, change: make(schema), creates: !seen.has(id) });
      seen.add(id);
    }
  }
  return out;
}

/** Reads what has been applied and builds, on `db`, the statements of what is due. */
async function plan(db: Knex, schema: Schema, tables: ReadonlySet<TableId>, versions: readonly SchemaVersion[]): Promise<Plan> {
  const v = schema.schemaVersions;
  const applied = new Set<string>();
  let versionsTable: Statement | undefined;
  if (await db.schema.hasTable(v.table)) {
    const rows: Record<string, unknown>[] = await db(v.table).select(v.columns.tableName, v.columns.version);
    for (const r of rows) applied.add(`${String(r[v.columns.tableName])} ${Number(r[v.columns.version])}`);
  } else versionsTable = createVersionsTable(db, schema);
  const steps: Plan['steps'] = [];
  for (const due of changes(schema, tables, versions)) {
    if (applied.has(`${due.names.table} ${due.version.version}`)) continue;
    const { statements, adopted } = await changeStatements(db, schema, due);
    const description = adopted ? `${due.version.description} (adopted an existing table)` : due.version.description;
    statements.push(db(v.table).insert({ [v.columns.tableName]: due.names.table, [v.columns.version]: due.version.version, [v.columns.description]: description, [v.columns.appliedAt]: new Date() }));
    steps.push({ due, statements });
  }
  return { versionsTable, steps };
}

function createVersionsTable(db: Knex, schema: Schema): Knex.SchemaBuilder {
  const { table, columns: c } = schema.schemaVersions;
  return db.schema.createTable(table, (t) => {
    t.string(c.tableName, 255).notNullable();
    t.integer(c.version).notNullable();
    t.text(c.description).notNullable();
    t.timestamp(c.appliedAt, { useTz: true }).notNullable();
    t.primary([c.tableName, c.version]);
  });
}

const indexName = (names: TableNames<Record<string, string>>, kind: 'unique' | 'index', fields: string[]): string =>
  `${names.table}_${fields.map((f) => names.columns[f]).join('_')}_${kind}`.slice(0, 63);

/**
 * The statements of one change. A table's first change creates it or, when it exists without
 * a recorded version (`adopted`), adds its missing columns with the indexes on them; a later
 * change adds its columns and indexes. Then the change's own `up`.
 */
async function changeStatements(db: Knex, schema: Schema, due: Due): Promise<{ statements: Statement[]; adopted: boolean }> {
  const { names, change } = due;
  const { table, columns } = names;
  const fields = Object.keys(change.columns ?? {});
  const build = (t: Knex.CreateTableBuilder, fs: string[]) => {
    for (const f of fs) change.columns![f]!(t, columns[f]);
  };
  const indexes = (t: Knex.CreateTableBuilder | Knex.AlterTableBuilder, only: (fs: string[], kind: 'unique' | 'index') => boolean) => {
    for (const fs of change.unique ?? []) if (only(fs, 'unique')) t.unique(fs.map((f) => columns[f]), { indexName: indexName(names, 'unique', fs) });
    for (const fs of change.index ?? []) if (only(fs, 'index')) t.index(fs.map((f) => columns[f]), indexName(names, 'index', fs));
  };
  const out: Statement[] = [];
  const adopted = due.creates && (await db.schema.hasTable(table));
  if (due.creates && !adopted) {
    out.push(db.schema.createTable(table, (t) => {
      build(t, fields);
      indexes(t, () => true);
    }));
  } else {
    // Only the missing columns: adopting, or a later version whose column an adopted table (made
    // by an unversioned migrate() of a newer release) already has. When adopting, an index only
    // when one of its columns is new.
    // Likewise an index the table already has (a later version's, made by a newer release).
    const adding: string[] = [];
    for (const f of fields) if (!(await db.schema.hasColumn(table, columns[f]))) adding.push(f);
    const existing = await existingIndexes(db, table);
    const touches = (fs: string[], kind: 'unique' | 'index') => !existing.has(indexName(names, kind, fs)) && (!due.creates || fs.some((f) => adding.includes(f)));
    const wanted = [...(change.unique ?? []).map((fs) => touches(fs, 'unique')), ...(change.index ?? []).map((fs) => touches(fs, 'index'))];
    if (adding.length > 0) out.push(db.schema.alterTable(table, (t) => build(t as unknown as Knex.CreateTableBuilder, adding)));
    if (wanted.some(Boolean)) out.push(db.schema.alterTable(table, (t) => indexes(t, touches)));
  }
  out.push(...(change.up?.(db, names, schema) ?? []));
  return { statements: out, adopted };
}

/** The names of a table's indexes, from the catalog (SQLite and PostgreSQL; empty elsewhere: nothing is skipped). */
async function existingIndexes(db: Knex, table: string): Promise<Set<string>> {
  const client = String((db.client as { config?: { client?: unknown } }).config?.client ?? '');
  let names: unknown[] = [];
  if (/sqlite/.test(client)) names = await db('sqlite_master').where({ type: 'index', tbl_name: table }).pluck('name');
  else if (/^(pg|postgres)/.test(client)) names = await db('pg_indexes').where('tablename', table).andWhere('schemaname', db.raw('current_schema()')).pluck('indexname');
  return new Set(names.map(String));
}

/** The statements that undo one change (knex rollback): its `down`, then its indexes and columns, or the table. */
function undoStatements(db: Knex, schema: Schema, due: Due): Statement[] {
  const { names, change } = due;
  const out: Statement[] = [...(change.down?.(db, names, schema) ?? [])];
  if (due.creates) return [...out, db.schema.dropTableIfExists(names.table)];
  if ((change.unique ?? []).length + (change.index ?? []).length > 0) {
    out.push(db.schema.alterTable(names.table, (t) => {
      for (const fs of change.unique ?? []) t.dropUnique(fs.map((f) => names.columns[f]), indexName(names, 'unique', fs));
      for (const fs of change.index ?? []) t.dropIndex(fs.map((f) => names.columns[f]), indexName(names, 'index', fs));
    }));
  }
  const fields = Object.keys(change.columns ?? {});
  if (fields.length > 0) out.push(db.schema.alterTable(names.table, (t) => void t.dropColumns(...fields.map((f) => names.columns[f]))));
  return out;
}
