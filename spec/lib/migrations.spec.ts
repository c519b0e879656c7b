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
const V1 = VERSIONS[0]!.description;
/** The tables of ALL, in the order they are created; `versions()` lists them by name. */
const TABLES = ['oauth_applications', 'oauth_grants', 'oauth_retired_refresh_tokens', 'oauth_jwt_jtis'];
const BY_NAME = [...TABLES].sort();

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

/** The versions table, as `table version description` lines by version and table name. */
async function versions(db: Knex, table = 'oauth_schema_versions'): Promise<string[]> {
  const rows: Record<string, unknown>[] = await db(table).orderBy(['version', 'table_name']);
  return rows.map((r) => `${String(r.table_name)} ${Number(r.version)} ${String(r.description)}`);
}

async function appliedAt(db: Knex): Promise<unknown[]> {
  return (await db('oauth_schema_versions').orderBy('table_name')).map((r: Record<string, unknown>) => r.applied_at);
}

/** Column name → knex's columnInfo (type, length, nullable, default), for every table of `tables`. */
async function columns(db: Knex, tables: readonly string[]): Promise<Record<string, unknown>> {
  const out: Record<string, unknown> = {};
  for (const t of tables) out[t] = await db(t).columnInfo();
  return out;
}

describe('migrations › versions', () => {
  it('records version 1 of every enabled table in oauth_schema_versions on a fresh database', async () => {
    const db = await database();
    const before = Date.now();
    await server(db, { enable: ALL }).migrate();
    expect(await versions(db)).toEqual(BY_NAME.map((t) => `${t} 1 ${V1}`));
    for (const at of await appliedAt(db)) {
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
    expect(await versions(db)).toEqual(BY_NAME.map((t) => `${t} 1 ${V1}`));
  });

  it('adopts a database from before versions: adds the missing column with its index, keeps the rows, records version 1 as adopted', async () => {
    const db = await database();
    const auth = server(db, { enable: ['client_credentials_grant'] });
    await auth.migrate();
    const { clientId } = await auth.createApplication({ name: 'Old', redirectUri: 'https://app.example/cb', scopes: ['read'], grantTypes: ['client_credentials'] });
    // What the unversioned migrate() of 0.1 left, from before the token scopes column.
    await db.schema.dropTable('oauth_schema_versions');
    await db.schema.alterTable('oauth_grants', (t) => void t.dropUnique(['refresh_token'], 'oauth_grants_refresh_token_unique'));
    await db.schema.alterTable('oauth_grants', (t) => void t.dropColumns('token_scopes', 'refresh_token'));

    const sql = await auth.migrate({ dryRun: true });
    expect(sql.filter((s) => /^create table/i.test(s))).toHaveLength(1); // the versions table only
    expect(sql.some((s) => /^alter table .oauth_grants. add column .*token_scopes/i.test(s))).toBe(true);
    expect(sql.some((s) => /^create unique index .oauth_grants_refresh_token_unique./i.test(s) || /add constraint .oauth_grants_refresh_token_unique. unique/i.test(s))).toBe(true);
    expect(await db.schema.hasTable('oauth_schema_versions')).toBe(false);

    await auth.migrate();
    expect(await db.schema.hasColumn('oauth_grants', 'token_scopes')).toBe(true);
    expect(await db.schema.hasColumn('oauth_grants', 'refresh_token')).toBe(true);
    expect(await db('oauth_applications').where('client_id', clientId).first()).toMatchObject({ name: 'Old' });
    expect(await versions(db)).toEqual([`oauth_applications 1 ${V1} (adopted an existing table)`, `oauth_grants 1 ${V1} (adopted an existing table)`]);
    // The unique index came back with its column.
    const [app] = await db('oauth_applications').select('id');
    const grant = { oauth_application_id: app.id, type: 'client_credentials', refresh_token: 'same', scopes: 'read', expires_in: new Date() };
    await db('oauth_grants').insert(grant);
    expect(await failure(db('oauth_grants').insert(grant))).toMatch(/unique/i);
    expect(await auth.migrate({ dryRun: true })).toEqual([]);
  });

  it("creates a feature's table when the feature is enabled later, at version 1, leaving the others' versions alone", async () => {
    const db = await database();
    await server(db).migrate();
    const recorded = await appliedAt(db);
    expect(await db.schema.hasTable('oauth_retired_refresh_tokens')).toBe(false);

    const later = server(db, { enable: ['refresh'] });
    const sql = await later.migrate({ dryRun: true });
    expect(sql.filter((s) => /^create table/i.test(s))).toEqual([expect.stringMatching(/^create table .oauth_retired_refresh_tokens./i)]);
    await later.migrate();
    expect(await db.schema.hasTable('oauth_retired_refresh_tokens')).toBe(true);
    expect(await versions(db)).toEqual([`oauth_applications 1 ${V1}`, `oauth_grants 1 ${V1}`, `oauth_retired_refresh_tokens 1 ${V1}`]);
    expect((await appliedAt(db)).filter((_, i) => i !== 2)).toEqual(recorded);
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
    expect(rows.map((r) => `${String(r.relation)} ${Number(r.step)}`)).toEqual(['clients 1', 'oauth_grants 1', 'old_refresh 1']);
    expect(await auth.migrate({ dryRun: true })).toEqual([]);
  });

  it('a dry run returns the SQL of every table and version row, and changes nothing', async () => {
    const db = await database();
    const sql = await server(db, { enable: ALL }).migrate({ dryRun: true });
    const creates = sql.filter((s) => /^create table/i.test(s));
    expect(creates.map((s) => /^create table [`"]?(\w+)/i.exec(s)![1])).toEqual(['oauth_schema_versions', ...TABLES]);
    expect(sql.filter((s) => /^insert into .oauth_schema_versions./i.test(s))).toHaveLength(4);
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

/** A next release, for the specs: version 2 adds a column to applications with an index, and backfills it. */
const withVersion2: SchemaVersion[] = [
  {
    ...VERSIONS[0]!,
    tables: {
      ...VERSIONS[0]!.tables,
      applications: (s) => {
        const v1 = VERSIONS[0]!.tables.applications!(s);
        const { softwareVersion: _, ...columns } = v1.columns!;
        return { ...v1, columns };
      },
    },
  },
  {
    version: 2,
    name: 'software_version',
    description: 'Applications: software_version, backfilled',
    tables: {
      applications: () => ({
        columns: { softwareVersion: (t, n) => void t.string(n, 255) },
        index: [['softwareVersion']],
        up: (db, names) => [db(names.table).update({ [names.columns.softwareVersion]: 'unknown' })],
      }),
    },
  },
];

describe('migrations › a later version', () => {
  const tables = new Set<TableId>(['applications', 'grants']);
  const schema = resolveSchema({});

  it('applies version 2 once to a version 1 database: the column, its index and the backfill, recorded as version 2', async () => {
    const db = await database();
    await migrate(db, schema, tables, withVersion2.slice(0, 1));
    await db('oauth_applications').insert({ name: 'A', redirect_uri: 'https://a.example/cb', client_id: 'a', scopes: 'read' });
    expect(await db.schema.hasColumn('oauth_applications', 'software_version')).toBe(false);

    const sql = await migrationSql(db, schema, tables, withVersion2);
    expect(sql).toEqual([
      expect.stringMatching(/^alter table .oauth_applications. add column .software_version./i),
      expect.stringMatching(/^create index .oauth_applications_software_version_index./i),
      expect.stringMatching(/^update .oauth_applications. set .software_version. = 'unknown'/i),
      expect.stringMatching(/^insert into .oauth_schema_versions./i),
    ]);
    await migrate(db, schema, tables, withVersion2);
    expect(await db('oauth_applications').pluck('software_version')).toEqual(['unknown']);
    expect(await versions(db)).toEqual([`oauth_applications 1 ${V1}`, `oauth_grants 1 ${V1}`, 'oauth_applications 2 Applications: software_version, backfilled']);
    expect(await migrationSql(db, schema, tables, withVersion2)).toEqual([]);
  });

  it('a fresh database gets version 1 then version 2 in one run', async () => {
    const db = await database();
    await migrate(db, schema, tables, withVersion2);
    expect(await db.schema.hasColumn('oauth_applications', 'software_version')).toBe(true);
    expect(await versions(db)).toEqual([`oauth_applications 1 ${V1}`, `oauth_grants 1 ${V1}`, 'oauth_applications 2 Applications: software_version, backfilled']);
  });

  it('a version that fails rolls back whole: no column, no version row, no lock left behind', async () => {
    const db = await database();
    await migrate(db, schema, tables, withVersion2.slice(0, 1));
    const broken: SchemaVersion[] = [
      withVersion2[0]!,
      { ...withVersion2[1]!, tables: { applications: () => ({ columns: { softwareVersion: (t, n) => void t.string(n, 255) }, up: (d, names) => [d(names.table).update({ no_such_column: 1 })] }) } },
    ];
    expect(await failure(migrate(db, schema, tables, broken))).toMatch(/no_such_column/);
    expect(await db.schema.hasColumn('oauth_applications', 'software_version')).toBe(false);
    expect(await versions(db)).toEqual([`oauth_applications 1 ${V1}`, `oauth_grants 1 ${V1}`]);
    await migrate(db, schema, tables, withVersion2);
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
    expect(names.map((m: { name: string }) => m.name)).toEqual(TABLES.map((t) => `0001_initial_schema_${t}`));

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

    // The next release's version 2, on a database knex brought to version 1.
    await db.schema.alterTable('oauth_applications', (t) => void t.dropColumn('software_version'));
    await db('oauth_applications').insert({ name: 'A', redirect_uri: 'https://a.example/cb', client_id: 'a', scopes: 'read' });
    const source = knexMigrations(resolveSchema({}), new Set<TableId>(['applications', 'grants', 'retiredRefreshTokens']), withVersion2);
    const [, pending] = await db.migrate.list({ migrationSource: source });
    expect(pending.map((m: { name: string }) => m.name)).toEqual(['0002_software_version_oauth_applications']);
    await db.migrate.latest({ migrationSource: source });
    expect(await db('oauth_applications').pluck('software_version')).toEqual(['unknown']);
    await db.migrate.rollback({ migrationSource: source });
    expect(await db.schema.hasColumn('oauth_applications', 'software_version')).toBe(false);
    expect(await db('oauth_applications').pluck('name')).toEqual(['A']);
    expect(await db.schema.hasTable('oauth_retired_refresh_tokens')).toBe(true);
  });

  it('adopts tables migrate() made: the first migrations add only what is missing', async () => {
    const db = await database();
    const auth = server(db);
    await auth.migrate();
    await db.schema.alterTable('oauth_applications', (t) => void t.dropColumn('software_version'));
    await db.migrate.latest({ migrationSource: auth.knexMigrations() });
    expect(await db.schema.hasColumn('oauth_applications', 'software_version')).toBe(true);
  });
});

describe('migrations › concurrency', () => {
  it('two migrate() calls at once on one database apply each version once, and both resolve', async () => {
    const db = await database({ shared: true });
    const a = server(db, { enable: ALL });
    const b = server(db, { enable: ALL });
    await Promise.all([a.migrate(), b.migrate()]);
    expect(await versions(db)).toEqual(BY_NAME.map((t) => `${t} 1 ${V1}`));
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
        expect(await versions(db)).toEqual(BY_NAME.map((t) => `${t} 1 ${V1}`));
      } finally {
        await db.destroy();
      }
    } finally {
      holder.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
