/**
 * Versioned migrations (lib/migrations): what `migrate()` records in the versions table, a
 * second run, adopting a database from before versions, a feature enabled later, renamed
 * tables, dry runs, a later version (a new column with a backfill), the knex migration source
 * and two migrations at once. On the test database (SQLite, or PostgreSQL with DATABASE_URL);
 * the race between two processes is always on a SQLite file.
 */
import { afterEach, describe, expect, it } from '@jest/globals';
import knex, { type Knex } from 'knex';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { oauth, type OAuthRouter } from '../../lib';
import { migrate, migrationSql, knexMigrations, VERSIONS, TABLE_ORDER, type SchemaVersion, type TableId } from '../../lib/migrations';
import { APPLICATION_COLUMNS, GRANT_COLUMNS, JTI_COLUMNS, RETIRED_REFRESH_TOKEN_COLUMNS, resolveSchema } from '../../lib/store/schema';
import { createTestDb, type TestDb } from '../support/db';
import { failure } from '../support/failure';

const ISSUER = 'https://as.example.com';
const ALL = ['refresh', 'jwt_bearer'] as const;
const DEFAULTS = resolveSchema({});
/** The tables of ALL, in the order they are created. */
const ALL_IDS: readonly TableId[] = ['applications', 'grants', 'retiredRefreshTokens', 'jtis'];
const TABLES = ALL_IDS.map((id) => DEFAULTS[id].table);
/** The tables of no feature (and of client_credentials_grant). */
const BASE_IDS: readonly TableId[] = ['applications', 'grants'];
/** The last version of this release, whatever VERSIONS holds by now. */
const LATEST = Math.max(...VERSIONS.map((v) => v.version));

const byVersion = (versions: readonly SchemaVersion[]): SchemaVersion[] => [...versions].sort((a, b) => a.version - b.version);

/**
 * The rows `versions()` reads after a migrate() of `ids` with `versions`: one per table and
 * version that touches it (a fresh table records only those), by version and table name. A
 * table of `adopted` has its first version recorded as adopted; its later ones are applied as usual.
 */
function expectedVersions(ids: readonly TableId[], opts: { versions?: readonly SchemaVersion[]; names?: Partial<Record<TableId, string>>; adopted?: readonly TableId[] } = {}): string[] {
  const rows: { table: string; version: number; line: string }[] = [];
  const seen = new Set<TableId>();
  for (const v of byVersion(opts.versions ?? VERSIONS)) {
    for (const id of ids) {
      if (!v.tables[id]) continue;
      const table = opts.names?.[id] ?? DEFAULTS[id].table;
      const adopted = !seen.has(id) && (opts.adopted ?? []).includes(id);
      rows.push({ table, version: v.version, line: `${table} ${v.version} ${v.description}${adopted ? ' (adopted an existing table)' : ''}` });
      seen.add(id);
    }
  }
  return rows.sort((a, b) => a.version - b.version || (a.table < b.table ? -1 : a.table > b.table ? 1 : 0)).map((r) => r.line);
}

/** The names `knexMigrations()` gives: by version, then in TABLE_ORDER. */
function expectedMigrations(ids: readonly TableId[], versions: readonly SchemaVersion[] = VERSIONS): string[] {
  return byVersion(versions).flatMap((v) =>
    TABLE_ORDER.filter((id) => ids.includes(id) && v.tables[id]).map((id) => `${String(v.version).padStart(4, '0')}_${v.name}_${DEFAULTS[id].table}`),
  );
}

const dbs: TestDb[] = [];
afterEach(async () => {
  for (const d of dbs.splice(0)) await d.destroy();
});

async function database(opts: { shared?: boolean } = {}): Promise<Knex> {
  const d = await createTestDb(opts);
  dbs.push(d);
  return d.db;
}

function server(db: Knex, options: Record<string, unknown> = {}): OAuthRouter {
  return oauth({ db, issuer: ISSUER, ...options } as never) as OAuthRouter;
}

/** The versions table, as `table version description` lines by version and table name (sorted here: the same on every collation). */
async function versions(db: Knex, table = 'oauth_schema_versions'): Promise<string[]> {
  const rows: Record<string, unknown>[] = await db(table);
  return rows
    .map((r) => ({ table: String(r.table_name), version: Number(r.version), line: `${String(r.table_name)} ${Number(r.version)} ${String(r.description)}` }))
    .sort((a, b) => a.version - b.version || (a.table < b.table ? -1 : a.table > b.table ? 1 : 0))
    .map((r) => r.line);
}

/** `table version` → when it was applied. */
async function appliedAt(db: Knex): Promise<Record<string, unknown>> {
  const rows: Record<string, unknown>[] = await db('oauth_schema_versions');
  return Object.fromEntries(rows.map((r) => [`${String(r.table_name)} ${Number(r.version)}`, r.applied_at]));
}

/** Column name → knex's columnInfo (type, length, nullable, default), for every table of `tables`. */
async function columns(db: Knex, tables: readonly string[]): Promise<Record<string, unknown>> {
  const out: Record<string, unknown> = {};
  for (const t of tables) out[t] = await db(t).columnInfo();
  return out;
}

describe('migrations › versions', () => {
  it('records, on a fresh database, every version of every enabled table that touches it in oauth_schema_versions', async () => {
    const db = await database();
    const before = Date.now();
    await server(db, { enable: ALL }).migrate();
    const expected = expectedVersions(ALL_IDS);
    expect(await versions(db)).toEqual(expected);
    // Version 1 of each table and the last version are among them.
    for (const t of TABLES) expect(expected).toContainEqual(expect.stringMatching(new RegExp(`^${t} 1 `)));
    expect(expected).toContainEqual(expect.stringMatching(new RegExp(` ${LATEST} `)));
    for (const at of Object.values(await appliedAt(db))) {
      const ms = at instanceof Date ? at.getTime() : Number(at);
      expect(ms).toBeGreaterThanOrEqual(before - 1000);
      expect(ms).toBeLessThanOrEqual(Date.now() + 1000);
    }
    for (const t of TABLES) expect(await db.schema.hasTable(t)).toBe(true);
  });

  it('a second migrate() runs nothing: its dry run is empty and the recorded versions stay as they were', async () => {
    const db = await database();
    const auth = server(db, { enable: ALL });
    await auth.migrate();
    const recorded = await appliedAt(db);
    expect(await auth.migrate({ dryRun: true })).toEqual([]);
    await auth.migrate();
    expect(await appliedAt(db)).toEqual(recorded);
    expect(await versions(db)).toEqual(expectedVersions(ALL_IDS));
  });

  it('adopts a database from before versions: adds the missing column with its index, keeps the rows, records version 1 as adopted, then applies the later versions', async () => {
    const db = await database();
    const auth = server(db, { enable: ['client_credentials_grant'] });
    // What the unversioned migrate() of 0.1 left (the schema of version 1, no versions table),
    // from before the token scopes column.
    await migrate(db, DEFAULTS, new Set(BASE_IDS), VERSIONS.slice(0, 1));
    await db('oauth_applications').insert({ name: 'Old', redirect_uri: 'https://app.example/cb', client_id: 'old', scopes: 'read' });
    await db.schema.dropTable('oauth_schema_versions');
    await db.schema.alterTable('oauth_grants', (t) => void t.dropUnique(['refresh_token'], 'oauth_grants_refresh_token_unique'));
    await db.schema.alterTable('oauth_grants', (t) => void t.dropColumns('token_scopes', 'refresh_token'));

    const sql = await auth.migrate({ dryRun: true });
    expect(sql.filter((s) => /^create table/i.test(s))).toHaveLength(1); // the versions table only
    expect(sql.some((s) => /^alter table .oauth_grants. add column .*token_scopes/i.test(s))).toBe(true);
    expect(sql.some((s) => /^create unique index .oauth_grants_refresh_token_unique./i.test(s) || /add constraint .oauth_grants_refresh_token_unique. unique/i.test(s))).toBe(true);
    const adopted = expectedVersions(BASE_IDS, { adopted: BASE_IDS });
    expect(sql.filter((s) => /^insert into .oauth_schema_versions./i.test(s))).toHaveLength(adopted.length);
    expect(await db.schema.hasTable('oauth_schema_versions')).toBe(false);

    await auth.migrate();
    expect(await db.schema.hasColumn('oauth_grants', 'token_scopes')).toBe(true);
    expect(await db.schema.hasColumn('oauth_grants', 'refresh_token')).toBe(true);
    expect(await db('oauth_applications').where('client_id', 'old').first()).toMatchObject({ name: 'Old' });
    expect(await versions(db)).toEqual(adopted);
    expect(adopted.filter((r) => r.endsWith('(adopted an existing table)'))).toEqual([expect.stringMatching(/^oauth_applications 1 /), expect.stringMatching(/^oauth_grants 1 /)]);
    // Column for column what a fresh database gets.
    const fresh = await database();
    await server(fresh, { enable: ['client_credentials_grant'] }).migrate();
    expect(await columns(db, ['oauth_applications', 'oauth_grants'])).toEqual(await columns(fresh, ['oauth_applications', 'oauth_grants']));
    // The unique index came back with its column.
    const [app] = await db('oauth_applications').select('id');
    const grant = { oauth_application_id: app.id, type: 'client_credentials', refresh_token: 'same', scopes: 'read', expires_in: new Date() };
    await db('oauth_grants').insert(grant);
    expect(await failure(db('oauth_grants').insert(grant))).toMatch(/unique/i);
    expect(await auth.migrate({ dryRun: true })).toEqual([]);
  });

  it("creates a feature's table when the feature is enabled later, at version 1 and every later version of it, leaving the others' versions alone", async () => {
    const db = await database();
    await server(db).migrate();
    const recorded = await appliedAt(db);
    expect(await db.schema.hasTable('oauth_retired_refresh_tokens')).toBe(false);

    const later = server(db, { enable: ['refresh'] });
    const sql = await later.migrate({ dryRun: true });
    expect(sql.filter((s) => /^create table/i.test(s))).toEqual([expect.stringMatching(/^create table .oauth_retired_refresh_tokens./i)]);
    await later.migrate();
    expect(await db.schema.hasTable('oauth_retired_refresh_tokens')).toBe(true);
    expect(await versions(db)).toEqual(expectedVersions([...BASE_IDS, 'retiredRefreshTokens']));
    const after = await appliedAt(db);
    expect(Object.fromEntries(Object.entries(after).filter(([k]) => !k.startsWith('oauth_retired_refresh_tokens ')))).toEqual(recorded);
    const created = expectedVersions(['retiredRefreshTokens']).map((r) => r.split(' ').slice(0, 2).join(' '));
    expect(created[0]).toBe('oauth_retired_refresh_tokens 1');
    expect(Object.keys(after).filter((k) => k.startsWith('oauth_retired_refresh_tokens ')).sort()).toEqual([...created].sort());
  });

  it('honours renamed tables and columns, the versions table and its columns included', async () => {
    const db = await database();
    const auth = server(db, {
      enable: ['refresh'],
      oauthSchemaVersionsTable: 'auth_schema',
      oauthSchemaVersionsTableNameColumn: 'relation',
      oauthSchemaVersionsVersionColumn: 'step',
      oauthApplicationsTable: 'clients',
      oauthRetiredRefreshTokensTable: 'old_refresh',
      oauthGrantsTokenHashColumn: 'token_digest',
    });
    await auth.migrate();
    expect(await db.schema.hasTable('oauth_schema_versions')).toBe(false);
    expect(await db.schema.hasTable('oauth_applications')).toBe(false);
    expect(await db.schema.hasColumn('oauth_grants', 'token_digest')).toBe(true);
    expect(await db.schema.hasColumn('oauth_grants', 'token')).toBe(false);
    const rows: Record<string, unknown>[] = await db('auth_schema').orderBy('relation');
    const names = { applications: 'clients', grants: 'oauth_grants', retiredRefreshTokens: 'old_refresh' };
    const expected = expectedVersions([...BASE_IDS, 'retiredRefreshTokens'], { names }).map((r) => r.split(' ').slice(0, 2).join(' '));
    expect(rows.map((r) => `${String(r.relation)} ${Number(r.step)}`).sort()).toEqual([...expected].sort());
    expect(expected.slice(0, 3)).toEqual(['clients 1', 'oauth_grants 1', 'old_refresh 1']);
    expect(await auth.migrate({ dryRun: true })).toEqual([]);
  });

  it('a dry run returns the SQL of every table and version row, and changes nothing', async () => {
    const db = await database();
    const sql = await server(db, { enable: ALL }).migrate({ dryRun: true });
    const creates = sql.filter((s) => /^create table/i.test(s));
    expect(creates.map((s) => /^create table [`"]?(\w+)/i.exec(s)![1])).toEqual(['oauth_schema_versions', ...TABLES]);
    const inserts = sql.filter((s) => /^insert into .oauth_schema_versions./i.test(s));
    expect(inserts).toHaveLength(expectedVersions(ALL_IDS).length);
    // One row per table and version that touches it.
    for (const t of TABLES) expect(inserts.filter((s) => s.includes(`'${t}'`))).toHaveLength(expectedVersions(ALL_IDS).filter((r) => r.startsWith(`${t} `)).length);
    expect(sql.every((s) => typeof s === 'string' && !s.includes('?'))).toBe(true);
    for (const t of ['oauth_schema_versions', ...TABLES]) expect(await db.schema.hasTable(t)).toBe(false);
  });

  it('the schema lists every column of lib/store/schema.ts in exactly one version, each table created by its first', () => {
    const maps: Record<TableId, Record<string, string>> = {
      applications: APPLICATION_COLUMNS,
      grants: GRANT_COLUMNS,
      retiredRefreshTokens: RETIRED_REFRESH_TOKEN_COLUMNS,
      jtis: JTI_COLUMNS,
    };
    const schema = resolveSchema({});
    for (const id of TABLE_ORDER) {
      const fields = VERSIONS.flatMap((v) => Object.keys(v.tables[id]?.(schema).columns ?? {}));
      expect([...fields].sort()).toEqual(Object.keys(maps[id]).sort());
      expect(VERSIONS.find((v) => v.tables[id])!.version).toBe(1);
    }
    expect(VERSIONS.map((v) => v.version)).toEqual(VERSIONS.map((_, i) => i + 1));
    for (const v of VERSIONS) expect(v.name).toMatch(/^[a-z0-9_]+$/);
  });
});

/**
 * A next release, for the specs: version LATEST + 1 adds a column to applications with an
 * index, and backfills it. The column is software_version, taken out of version 1 here so that
 * the store's schema still has it; `current` is this release without it.
 */
const NEXT = LATEST + 1;
const NEXT_DESCRIPTION = 'Applications: software_version, backfilled';
const current: SchemaVersion[] = byVersion(VERSIONS).map((v) =>
  v.version !== 1
    ? v
    : {
        ...v,
        tables: {
          ...v.tables,
          applications: (s) => {
            const v1 = v.tables.applications!(s);
            const { softwareVersion: _, ...columns } = v1.columns!;
            return { ...v1, columns };
          },
        },
      },
);
const next: SchemaVersion = {
  version: NEXT,
  name: 'software_version',
  description: NEXT_DESCRIPTION,
  tables: {
    applications: () => ({
      columns: { softwareVersion: (t, n) => void t.string(n, 255) },
      index: [['softwareVersion']],
      up: (db, names) => [db(names.table).update({ [names.columns.softwareVersion]: 'unknown' })],
    }),
  },
};
const withNext: SchemaVersion[] = [...current, next];

describe('migrations › a later version', () => {
  const tables = new Set<TableId>(BASE_IDS);
  const schema = resolveSchema({});

  it('applies the next version once to a database at this release: the column, its index and the backfill, recorded under its number', async () => {
    const db = await database();
    await migrate(db, schema, tables, current);
    expect(await versions(db)).toEqual(expectedVersions(BASE_IDS, { versions: current }));
    await db('oauth_applications').insert({ name: 'A', redirect_uri: 'https://a.example/cb', client_id: 'a', scopes: 'read' });
    expect(await db.schema.hasColumn('oauth_applications', 'software_version')).toBe(false);

    const sql = await migrationSql(db, schema, tables, withNext);
    expect(sql).toEqual([
      expect.stringMatching(/^alter table .oauth_applications. add column .software_version./i),
      expect.stringMatching(/^create index .oauth_applications_software_version_index./i),
      expect.stringMatching(/^update .oauth_applications. set .software_version. = 'unknown'/i),
      expect.stringMatching(/^insert into .oauth_schema_versions./i),
    ]);
    expect(sql[3]).toContain(`'oauth_applications', ${NEXT})`);
    await migrate(db, schema, tables, withNext);
    expect(await db('oauth_applications').pluck('software_version')).toEqual(['unknown']);
    const expected = expectedVersions(BASE_IDS, { versions: withNext });
    expect(expected[expected.length - 1]).toBe(`oauth_applications ${NEXT} ${NEXT_DESCRIPTION}`);
    expect(await versions(db)).toEqual(expected);
    expect(await migrationSql(db, schema, tables, withNext)).toEqual([]);
  });

  it('a fresh database gets every version up to the next one in one run', async () => {
    const db = await database();
    await migrate(db, schema, tables, withNext);
    expect(await db.schema.hasColumn('oauth_applications', 'software_version')).toBe(true);
    expect(await versions(db)).toEqual(expectedVersions(BASE_IDS, { versions: withNext }));
    expect(await versions(db)).toContain(`oauth_applications ${NEXT} ${NEXT_DESCRIPTION}`);
  });

  it('a version that fails rolls back whole: no column, no version row, no lock left behind', async () => {
    const db = await database();
    await migrate(db, schema, tables, current);
    const broken: SchemaVersion[] = [
      ...current,
      { ...next, tables: { applications: () => ({ columns: { softwareVersion: (t, n) => void t.string(n, 255) }, up: (d, names) => [d(names.table).update({ no_such_column: 1 })] }) } },
    ];
    expect(await failure(migrate(db, schema, tables, broken))).toMatch(/no_such_column/);
    expect(await db.schema.hasColumn('oauth_applications', 'software_version')).toBe(false);
    expect(await versions(db)).toEqual(expectedVersions(BASE_IDS, { versions: current }));
    await migrate(db, schema, tables, withNext);
    expect(await db.schema.hasColumn('oauth_applications', 'software_version')).toBe(true);
  });
});

describe('migrations › knexMigrations()', () => {
  it('knex.migrate.latest builds the schema migrate() builds, column for column, and rollback drops it', async () => {
    const ours = await database();
    await server(ours, { enable: ALL }).migrate();
    const theirs = await database();
    const auth = server(theirs, { enable: ALL });
    const migrationSource = auth.knexMigrations();
    const [, names] = await theirs.migrate.list({ migrationSource });
    const expected = expectedMigrations(ALL_IDS);
    expect(expected.slice(0, TABLES.length)).toEqual(TABLES.map((t) => `0001_initial_schema_${t}`));
    expect(names.map((m: { name: string }) => m.name)).toEqual(expected);

    await theirs.migrate.latest({ migrationSource });
    expect(await columns(theirs, TABLES)).toEqual(await columns(ours, TABLES));
    expect(await theirs.schema.hasTable('oauth_schema_versions')).toBe(false);
    // The app works on it.
    const { clientId } = await auth.createApplication({ name: 'K', redirectUri: 'https://k.example/cb', scopes: ['read'], grantTypes: ['refresh_token'] });
    expect(await theirs('oauth_applications').where('client_id', clientId).first()).toMatchObject({ name: 'K' });

    await theirs.migrate.rollback({ migrationSource });
    for (const t of TABLES) expect(await theirs.schema.hasTable(t)).toBe(false);
  });

  it("runs a feature's migration when the feature is enabled later, and a later version's up and down", async () => {
    const db = await database();
    await db.migrate.latest({ migrationSource: server(db).knexMigrations() });
    expect(await db.schema.hasTable('oauth_retired_refresh_tokens')).toBe(false);
    await db.migrate.latest({ migrationSource: server(db, { enable: ['refresh'] }).knexMigrations() });
    expect(await db.schema.hasTable('oauth_retired_refresh_tokens')).toBe(true);

    const [done] = await db.migrate.list({ migrationSource: server(db, { enable: ['refresh'] }).knexMigrations() });
    expect(done.map((m: { name: string }) => m.name).sort()).toEqual(expectedMigrations([...BASE_IDS, 'retiredRefreshTokens']).sort());

    // The next release's version, on a database knex brought to this release.
    await db.schema.alterTable('oauth_applications', (t) => void t.dropColumn('software_version'));
    await db('oauth_applications').insert({ name: 'A', redirect_uri: 'https://a.example/cb', client_id: 'a', scopes: 'read' });
    const source = knexMigrations(resolveSchema({}), new Set<TableId>([...BASE_IDS, 'retiredRefreshTokens']), withNext);
    const [, pending] = await db.migrate.list({ migrationSource: source });
    expect(pending.map((m: { name: string }) => m.name)).toEqual([`${String(NEXT).padStart(4, '0')}_software_version_oauth_applications`]);
    await db.migrate.latest({ migrationSource: source });
    expect(await db('oauth_applications').pluck('software_version')).toEqual(['unknown']);
    await db.migrate.rollback({ migrationSource: source });
    expect(await db.schema.hasColumn('oauth_applications', 'software_version')).toBe(false);
    expect(await db('oauth_applications').pluck('name')).toEqual(['A']);
    expect(await db.schema.hasTable('oauth_retired_refresh_tokens')).toBe(true);
  });

  it("adopts tables an earlier release's migrate() made: the first migrations add only what is missing, the later ones run", async () => {
    const db = await database();
    const auth = server(db);
    // Made at version 1, as by the unversioned migrate() of 0.1. (Tables at this release's last
    // version are not adoptable yet: a later version's index is created again even when the
    // table has it, and fails; a later version's column is skipped when the table has it.)
    await migrate(db, DEFAULTS, new Set(BASE_IDS), VERSIONS.slice(0, 1));
    await db.schema.alterTable('oauth_applications', (t) => void t.dropColumn('software_version'));
    await db.migrate.latest({ migrationSource: auth.knexMigrations() });
    expect(await db.schema.hasColumn('oauth_applications', 'software_version')).toBe(true);
    const fresh = await database();
    await server(fresh).migrate();
    expect(await columns(db, ['oauth_applications', 'oauth_grants'])).toEqual(await columns(fresh, ['oauth_applications', 'oauth_grants']));
  });
});

describe('migrations › concurrency', () => {
  it('two migrate() calls at once on one database apply each version once, and both resolve', async () => {
    const db = await database({ shared: true });
    const a = server(db, { enable: ALL });
    const b = server(db, { enable: ALL });
    await Promise.all([a.migrate(), b.migrate()]);
    expect(await versions(db)).toEqual(expectedVersions(ALL_IDS));
  });

  it('two processes migrating one SQLite file at once: one applies, the other waits for its lock and finds nothing due', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'eof-migrate-'));
    const filename = join(dir, 'race.sqlite3');
    // The versions table exists (its creation races too, but fails over to the winner's table, as
    // the test above shows): each process reads what is due, then both meet in the transaction.
    const setup = knex({ client: 'better-sqlite3', connection: { filename }, useNullAsDefault: true });
    await migrate(setup, resolveSchema({}), new Set());
    await setup.destroy();
    // Holds the write lock until both processes are about to migrate, so their migrations meet.
    const Database = require('better-sqlite3') as new (f: string) => { prepare(sql: string): { run(): unknown }; close(): void };
    const holder = new Database(filename);
    holder.prepare('BEGIN IMMEDIATE').run();
    try {
      const children = [0, 1].map(() => {
        const child = spawn(process.execPath, [join(__dirname, '../support/migrate_child.js'), filename, ALL.join(',')]);
        let out = '';
        let err = '';
        child.stdout.setEncoding('utf8').on('data', (c: string) => (out += c));
        child.stderr.setEncoding('utf8').on('data', (c: string) => (err += c));
        const ready = new Promise<void>((resolve) => child.stdout.on('data', () => out.includes('migrating') && resolve()));
        const exited = new Promise<{ code: number | null; out: string; err: string }>((resolve) => child.on('exit', (code) => resolve({ code, out, err })));
        return { ready, exited };
      });
      await Promise.all(children.map((c) => c.ready));
      // Each is now in migrate(), waiting for the lock (no assertion on the time: it only lets them get there).
      await new Promise((resolve) => setTimeout(resolve, 300));
      holder.prepare('COMMIT').run();
      const results = await Promise.all(children.map((c) => c.exited));
      expect(results.map((r) => [r.code, r.err])).toEqual([[0, ''], [0, '']]);
      const db = knex({ client: 'better-sqlite3', connection: { filename }, useNullAsDefault: true });
      try {
        expect(await versions(db)).toEqual(expectedVersions(ALL_IDS));
      } finally {
        await db.destroy();
      }
    } finally {
      holder.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
