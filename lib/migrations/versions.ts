/**
 * The schema, as an ordered list of versions. Version 1 is the schema of design.md §3; each
 * later version changes some tables (new columns, indexes, a backfill) and is applied once,
 * in order, by `migrate()` and by `knexMigrations()`. A released version is never edited,
 * renumbered or removed: databases record it (lib/migrations/index.ts explains how).
 *
 * To add a column: add its field to the table's column map in lib/store/schema.ts (that
 * declares its `<Table><Field>Column` option), then append a version here whose change lists
 * it under `columns` (and an index under `index` / `unique` if a query needs one). The column
 * must be nullable or have a default: existing rows get it too. spec/lib/migrations.spec.ts
 * fails while a column of schema.ts is created by no version, or by two.
 */
import type { Knex } from 'knex';
import type { Schema, TableNames } from '../store/schema';

/** The tables a feature set needs: `jtis` only with jwt_bearer, retired tokens only with refresh. */
export type TableId = 'applications' | 'grants' | 'retiredRefreshTokens' | 'jtis';

/** The order tables are changed in within a version (a table after those it references); reversed to undo. */
export const TABLE_ORDER: readonly TableId[] = ['applications', 'grants', 'retiredRefreshTokens', 'jtis'];

/** The fields of a table: the keys of its column map in lib/store/schema.ts. */
export type Field<T extends TableId> = keyof Schema[T]['columns'] & string;

/** Adds the column `name` to a table being created or altered. */
export type ColumnBuilder = (t: Knex.CreateTableBuilder, name: string) => void;

/** A statement a change runs: knex builds it, `migrate({ dryRun: true })` prints it. */
export type Statement = Knex.SchemaBuilder | Knex.QueryBuilder;

/**
 * What one version does to one table. In the table's first version it creates the table, with
 * these columns (the first is the primary key) and indexes; in a later one it adds them. Index
 * names are `<table>_<columns>_unique` / `_index`, cut at 63 characters.
 */
export interface TableChange<F extends string> {
  /** New columns by field, in creation order; their names come from the configured schema. */
  columns?: { [K in F]?: ColumnBuilder };
  unique?: F[][];
  index?: F[][];
  /** Anything else, run after the columns and indexes (a backfill, a changed type): statements only, so a dry run can print them. */
  up?: (db: Knex, names: TableNames<Record<F, string>>, schema: Schema) => Statement[];
  /** Undoes `up` (knex rollback), run before the columns and indexes are dropped. */
  down?: (db: Knex, names: TableNames<Record<F, string>>, schema: Schema) => Statement[];
}

export interface SchemaVersion {
  /** 1, 2, 3…: recorded in the versions table and in knex migration names. */
  version: number;
  /** snake_case, part of the knex migration names (`0002_client_secret_rotation_oauth_applications`). */
  name: string;
  /** One line, recorded with the version. */
  description: string;
  /** The change of each table this version touches, given the configured names. */
  tables: { [T in TableId]?: (schema: Schema) => TableChange<Field<T>> };
}

const str: ColumnBuilder = (t, n) => void t.string(n, 255);
const text: ColumnBuilder = (t, n) => void t.text(n);
const ts: ColumnBuilder = (t, n) => void t.timestamp(n, { useTz: true });

export const VERSIONS: readonly SchemaVersion[] = [
  {
    version: 1,
    name: 'initial_schema',
    description: 'Initial schema: applications, grants, retired refresh tokens and JWT jtis (design.md §3)',
    tables: {
      applications: () => ({
        columns: {
          id: (t, n) => void t.increments(n).primary(),
          accountId: str, name: (t, n) => void t.string(n, 255).notNullable(), description: text, homepageUrl: str,
          redirectUri: (t, n) => void t.text(n).notNullable(), clientId: (t, n) => void t.string(n, 255).notNullable(),
          clientSecretHash: str, clientSecretEncrypted: text, scopes: (t, n) => void t.text(n).notNullable(),
          tokenEndpointAuthMethod: str, grantTypes: str, responseTypes: str, responseModes: str, jwks: text, jwksUri: text,
          logoUri: text, tosUri: text, policyUri: text, contacts: text, softwareId: str, softwareVersion: str, createdAt: ts,
        },
        unique: [['clientId']],
      }),
      grants: ({ applications: a }) => ({
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
      }),
      retiredRefreshTokens: ({ grants: g }) => ({
        columns: {
          id: (t, n) => void t.increments(n).primary(),
          oauthGrantId: (t, n) => void t.integer(n).notNullable().references(g.columns.id).inTable(g.table).onDelete('CASCADE'),
          tokenHash: (t, n) => void t.string(n, 255).notNullable(),
          retiredAt: (t, n) => void t.timestamp(n, { useTz: true }).notNullable(),
        },
        unique: [['tokenHash']],
        index: [['oauthGrantId']],
      }),
      jtis: () => ({
        columns: {
          jti: (t, n) => void t.string(n, 255).notNullable(),
          issuer: (t, n) => void t.string(n, 255).notNullable(),
          expiresAt: (t, n) => void t.timestamp(n, { useTz: true }).notNullable(),
        },
        unique: [['issuer', 'jti']],
        index: [['expiresAt']],
      }),
    },
  },
  {
    version: 2,
    name: 'access_token_format',
    description: "Applications: the format of the client's access tokens ('jwt' | 'opaque'; NULL: the server's oauthAccessTokenFormat)",
    tables: { applications: () => ({ columns: { accessTokenFormat: (t, n) => void t.string(n, 16) } }) },
  },
  {
    version: 3,
    name: 'purge_indexes',
    description: 'Grants: indexes for auth.purge() (revoked_at; refresh_token_expires_in, expires_in), so each batch is an index range scan',
    // lib/store/purge.ts: revoked before the cut-off; expired before it with no refresh token
    // (NULL) or an expired one. Without them a batch scans the live grants in front of it.
    tables: { grants: () => ({ index: [['revokedAt'], ['refreshTokenExpiresIn', 'expiresIn']] }) },
  },
  {
    version: 4,
    name: 'client_secret_rotation',
    description: 'Applications: the previous client secret hash and when it stops being accepted (applications.rotateSecret() with a grace period)',
    tables: { applications: () => ({ columns: { previousClientSecretHash: str, previousClientSecretExpiresAt: ts } }) },
  },
  {
    version: 5,
    name: 'resource_indicators',
    description: 'Grants: the RFC 8707 resources of the grant, and of its current access token when a token request narrowed them (resource_indicators)',
    tables: { grants: () => ({ columns: { resources: text, tokenResources: text } }) },
  },
  {
    version: 6,
    name: 'registration_access_token',
    description: 'Applications: the hash of the RFC 7592 registration access token of a client registered through POST /register (dynamic_client_registration)',
    tables: { applications: () => ({ columns: { registrationAccessTokenHash: str } }) },
  },
  {
    version: 7,
    name: 'client_id_metadata_documents',
    description: 'Applications: the hash of the registration read from a client ID metadata document (NULL for other clients)',
    tables: { applications: () => ({ columns: { metadataDocumentHash: (t, n) => void t.string(n, 64) } }) },
  },
  {
    version: 8,
    name: 'grant_last_used',
    description: "Grants: when the grant last issued tokens (grant_management's \"last used\"), and an index on (account_id, oauth_application_id) for an account's grants",
    // The account's grants page lists and revokes by account (and client): without the index each
    // is a scan of every grant.
    tables: { grants: () => ({ columns: { lastUsedAt: ts }, index: [['accountId', 'oauthApplicationId']] }) },
  },
  {
    version: 9,
    name: 'openid_connect',
    description: 'OpenID Connect: grants keep nonce, auth_time, acr, amr, the claims request and claims_locales; applications get post_logout_redirect_uris and subject_type',
    tables: {
      applications: () => ({ columns: { postLogoutRedirectUris: text, subjectType: (t, n) => void t.string(n, 16) } }),
      grants: () => ({ columns: { nonce: str, authTime: ts, acr: str, amr: str, claims: text, claimsLocales: str } }),
    },
  },
  {
    version: 10,
    name: 'application_resource_indicators',
    description: "resource_indicators: applications get resource_indicators, the RFC 8707 resources the client may ask for (NULL: the server's list)",
    tables: { applications: () => ({ columns: { resourceIndicators: text } }) },
  },
  // ── The next version goes here: `version: 11`, and so on. The versions are 1…n without gaps
  // (spec/lib/migrations.spec.ts), a released version is never edited, and a new column is
  // nullable or has a default.
];
