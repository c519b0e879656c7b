/**
 * Creates or updates the schema (design.md §3) under the configured names. Idempotent: a
 * missing table is created, a missing column is added with its index, nothing is dropped.
 */
import type { Knex } from 'knex';
import type { Schema, TableNames } from '../store/schema';

type ColumnBuilder = (t: Knex.CreateTableBuilder, name: string) => void;

interface TableSpec<C extends Record<string, string>> {
  names: TableNames<C>;
  /** Column builders by field, in creation order; the first is the primary key. */
  columns: { [K in keyof C]: ColumnBuilder };
  /** Indexes by the fields they cover, created with the table or with their last column. */
  unique?: (keyof C)[][];
  index?: (keyof C)[][];
}

const str: ColumnBuilder = (t, n) => void t.string(n, 255);
const text: ColumnBuilder = (t, n) => void t.text(n);
const ts: ColumnBuilder = (t, n) => void t.timestamp(n, { useTz: true });

/** The tables a feature set needs: `jtis` only with jwt_bearer, retired tokens only with refresh. */
export type TableId = 'applications' | 'grants' | 'retiredRefreshTokens' | 'jtis';

export async function migrate(db: Knex, schema: Schema, tables: ReadonlySet<TableId>): Promise<void> {
  const a = schema.applications;
  const g = schema.grants;
  const specs: [TableId, TableSpec<any>][] = [
    ['applications', {
      names: a,
      columns: {
        id: (t, n) => void t.increments(n).primary(),
        accountId: str, name: (t, n) => void t.string(n, 255).notNullable(), description: text, homepageUrl: str,
        redirectUri: (t, n) => void t.text(n).notNullable(), clientId: (t, n) => void t.string(n, 255).notNullable(),
        clientSecretHash: str, clientSecretEncrypted: text, scopes: (t, n) => void t.text(n).notNullable(),
        tokenEndpointAuthMethod: str, grantTypes: str, responseTypes: str, responseModes: str, jwks: text, jwksUri: text,
        logoUri: text, tosUri: text, policyUri: text, contacts: text, softwareId: str, softwareVersion: str, createdAt: ts,
      },
      unique: [['clientId']],
    } satisfies TableSpec<typeof a.columns>],
    ['grants', {
      names: g,
      columns: {
        id: (t, n) => void t.increments(n).primary(),
        accountId: str,
        oauthApplicationId: (t, n) => void t.integer(n).notNullable().references(a.columns.id).inTable(a.table).onDelete('CASCADE'),
        type: str, codeHash: str, codeRedeemedAt: ts, tokenHash: str, refreshTokenHash: str,
        expiresIn: (t, n) => void t.timestamp(n, { useTz: true }).notNullable(), refreshTokenExpiresIn: ts, redirectUri: text,
        revokedAt: ts, scopes: (t, n) => void t.text(n).notNullable(), tokenScopes: text, accessType: (t, n) => void t.string(n, 32).notNullable().defaultTo('offline'),
        codeChallenge: str, codeChallengeMethod: str, createdAt: ts,
      },
      unique: [['oauthApplicationId', 'codeHash'], ['tokenHash'], ['refreshTokenHash']],
      index: [['expiresIn']],
    } satisfies TableSpec<typeof g.columns>],
    ['retiredRefreshTokens', {
      names: schema.retiredRefreshTokens,
      columns: {
        id: (t, n) => void t.increments(n).primary(),
        oauthGrantId: (t, n) => void t.integer(n).notNullable().references(g.columns.id).inTable(g.table).onDelete('CASCADE'),
        tokenHash: (t, n) => void t.string(n, 255).notNullable(),
        retiredAt: (t, n) => void t.timestamp(n, { useTz: true }).notNullable(),
      },
      unique: [['tokenHash']],
      index: [['oauthGrantId']],
    } satisfies TableSpec<typeof schema.retiredRefreshTokens.columns>],
    ['jtis', {
      names: schema.jtis,
      columns: {
        jti: (t, n) => void t.string(n, 255).notNullable(),
        issuer: (t, n) => void t.string(n, 255).notNullable(),
        expiresAt: (t, n) => void t.timestamp(n, { useTz: true }).notNullable(),
      },
      unique: [['issuer', 'jti']],
      index: [['expiresAt']],
    } satisfies TableSpec<typeof schema.jtis.columns>],
  ];
  for (const [id, spec] of specs) {
    if (tables.has(id)) await migrateTable(db, spec);
  }
}

async function migrateTable<C extends Record<string, string>>(db: Knex, spec: TableSpec<C>): Promise<void> {
  const { table, columns } = spec.names;
  const fields = Object.keys(spec.columns) as (keyof C & string)[];
  const indexName = (kind: string, fs: (keyof C)[]) => `${table}_${fs.map((f) => columns[f]).join('_')}_${kind}`.slice(0, 63);
  if (!(await db.schema.hasTable(table))) {
    await db.schema.createTable(table, (t) => {
      for (const f of fields) spec.columns[f](t, columns[f]);
      for (const fs of spec.unique ?? []) t.unique(fs.map((f) => columns[f]), { indexName: indexName('unique', fs) });
      for (const fs of spec.index ?? []) t.index(fs.map((f) => columns[f]), indexName('index', fs));
    });
    return;
  }
  const missing: (keyof C & string)[] = [];
  for (const f of fields) if (!(await db.schema.hasColumn(table, columns[f]))) missing.push(f);
  if (missing.length === 0) return;
  await db.schema.alterTable(table, (t) => {
    for (const f of missing) spec.columns[f](t as unknown as Knex.CreateTableBuilder, columns[f]);
  });
  // An index is new when one of its columns is: create it with that column.
  const touches = (fs: (keyof C)[]) => fs.some((f) => missing.includes(f as keyof C & string));
  await db.schema.alterTable(table, (t) => {
    for (const fs of spec.unique ?? []) if (touches(fs)) t.unique(fs.map((f) => columns[f]), { indexName: indexName('unique', fs) });
    for (const fs of spec.index ?? []) if (touches(fs)) t.index(fs.map((f) => columns[f]), indexName('index', fs));
  });
}
