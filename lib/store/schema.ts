/**
 * Table and column names, resolved once from the auth value methods (design.md §3). Every
 * query and the migrations read names from here, so renaming a column renames it everywhere.
 */
import { value, type ValueDef } from '../feature';

/** Field → default column name of `oauth_applications` (rodauth-oauth 1.x names). */
export const APPLICATION_COLUMNS = {
  id: 'id',
  accountId: 'account_id',
  name: 'name',
  description: 'description',
  homepageUrl: 'homepage_url',
  redirectUri: 'redirect_uri',
  clientId: 'client_id',
  clientSecretHash: 'client_secret',
  clientSecretEncrypted: 'client_secret_encrypted',
  scopes: 'scopes',
  tokenEndpointAuthMethod: 'token_endpoint_auth_method',
  grantTypes: 'grant_types',
  responseTypes: 'response_types',
  responseModes: 'response_modes',
  jwks: 'jwks',
  jwksUri: 'jwks_uri',
  logoUri: 'logo_uri',
  tosUri: 'tos_uri',
  policyUri: 'policy_uri',
  contacts: 'contacts',
  softwareId: 'software_id',
  softwareVersion: 'software_version',
  createdAt: 'created_at',
  /** `jwt_access_tokens`: 'jwt' | 'opaque', NULL for the server's `oauthAccessTokenFormat` (schema version 2). */
  accessTokenFormat: 'access_token_format',
  /** The bcrypt hash of the secret `applications.rotateSecret()` replaced, accepted until the next column's time (schema version 4). */
  previousClientSecretHash: 'client_secret_previous',
  /** When the previous secret stops being accepted (on the `now()` clock); NULL with no previous secret. */
  previousClientSecretExpiresAt: 'client_secret_previous_expires_at',
  /**
   * `dynamic_client_registration` (schema version 6): base64url SHA-256 of the client's RFC 7592
   * registration access token (one per client, replaced when rotated); NULL for clients not
   * registered through `POST /register`.
   */
  registrationAccessTokenHash: 'registration_access_token',
  /**
   * `client_id_metadata_documents` (schema version 7): SHA-256 of the registration read from the
   * client's metadata document; NULL for every other client, so a non-NULL value marks a client
   * whose registration its `client_id` URL serves.
   */
  metadataDocumentHash: 'metadata_document_hash',
  /** `oidc`: registered RP-initiated logout redirect URIs, space-separated (schema version 9). */
  postLogoutRedirectUris: 'post_logout_redirect_uris',
  /** `oidc`: 'public' | 'pairwise' (OpenID Connect Core §8); NULL: the server's `oidcSubjectType` (schema version 9). */
  subjectType: 'subject_type',
  /**
   * `resource_indicators`: the RFC 8707 resources the client may ask for, space-separated, in
   * place of the server's `oauthResourceIndicators`; NULL: the server's list (schema version 10).
   */
  resourceIndicators: 'resource_indicators',
} as const;

/** Field → default column name of `oauth_grants`. One row carries a grant from code to tokens. */
export const GRANT_COLUMNS = {
  id: 'id',
  accountId: 'account_id',
  oauthApplicationId: 'oauth_application_id',
  type: 'type',
  codeHash: 'code',
  codeRedeemedAt: 'code_redeemed_at',
  tokenHash: 'token',
  refreshTokenHash: 'refresh_token',
  expiresIn: 'expires_in',
  refreshTokenExpiresIn: 'refresh_token_expires_in',
  redirectUri: 'redirect_uri',
  revokedAt: 'revoked_at',
  scopes: 'scopes',
  tokenScopes: 'token_scopes',
  accessType: 'access_type',
  codeChallenge: 'code_challenge',
  codeChallengeMethod: 'code_challenge_method',
  createdAt: 'created_at',
  /** `resource_indicators` (schema version 5): the RFC 8707 resources the grant is for, space-separated; NULL: none named. */
  resources: 'resource',
  /** The current access token's resources when a token request narrowed them (RFC 8707 §2.2); NULL: `resource`. */
  tokenResources: 'token_resource',
  /** `oidc` (schema version 9): the authentication request's `nonce`, echoed in the ID token. */
  nonce: 'nonce',
  /** `oidc`: when the end user authenticated (ID token `auth_time`). */
  authTime: 'auth_time',
  /** `oidc`: the authentication context class reference the host reported (`acr`). */
  acr: 'acr',
  /** `oidc`: the authentication methods the host reported (`amr`), space-separated. */
  amr: 'amr',
  /** `oidc`: the `claims` request parameter (OpenID Connect Core §5.5), as JSON. */
  claims: 'claims',
  /** `oidc`: the `claims_locales` request parameter, space-separated. */
  claimsLocales: 'claims_locales',
  /**
   * When the grant last issued tokens (code exchange, refresh, direct grants), written by the
   * statement that writes them; never on a protected request (schema version 8).
   */
  lastUsedAt: 'last_used_at',
} as const;

/** Retired refresh tokens, kept so that a reused one can be recognised (RFC 9700 §4.14.2). */
export const RETIRED_REFRESH_TOKEN_COLUMNS = {
  id: 'id',
  oauthGrantId: 'oauth_grant_id',
  tokenHash: 'token',
  retiredAt: 'retired_at',
} as const;

/** Used JWT `jti`s (RFC 7523 §3 item 7), kept until the assertion expires. */
export const JTI_COLUMNS = {
  jti: 'jti',
  issuer: 'issuer',
  expiresAt: 'expires_at',
} as const;

/**
 * The schema versions `migrate()` has applied, one row per table and version (see
 * lib/migrations/index.ts): kept so that a later release alters or backfills only what is due.
 */
export const SCHEMA_VERSION_COLUMNS = {
  tableName: 'table_name',
  version: 'version',
  description: 'description',
  appliedAt: 'applied_at',
} as const;

type Cap<S extends string> = Capitalize<S>;
type ColumnValues<P extends string, C extends Record<string, string>> = {
  [K in keyof C & string as `${P}${K extends 'codeHash' ? 'Code' : Cap<K>}Column`]: ValueDef<string>;
};

/** Builds `<prefix><Field>Column` values for a table's columns, each with its doc line. */
function columnValues<const P extends string, const C extends Record<string, string>>(prefix: P, table: string, columns: C): ColumnValues<P, C> {
  const out: Record<string, ValueDef<string>> = {};
  for (const [field, column] of Object.entries(columns)) {
    out[`${prefix}${columnKey(field)}Column`] = value(column, `Column of ${table} for ${describe(field)}.`);
  }
  return out as ColumnValues<P, C>;
}

function columnKey(field: string): string {
  return field === 'codeHash' ? 'Code' : field.charAt(0).toUpperCase() + field.slice(1);
}

function describe(field: string): string {
  const words = (f: string) => f.replace(/([A-Z])/g, ' $1').toLowerCase();
  if (field.endsWith('Hash')) {
    const what = words(field.replace(/Hash$/, ''));
    return `the ${what.includes('secret') ? 'bcrypt' : 'SHA-256'} hash of the ${what}`;
  }
  if (field.endsWith('Encrypted')) return `the AES-GCM encrypted ${words(field.replace(/Encrypted$/, ''))}`;
  return `the ${words(field)}`;
}

/** The table and column values, declared by `oauth_base` and `refresh` / `jwt_bearer`. */
export const applicationValues = {
  oauthApplicationsTable: value('oauth_applications', 'Table of client applications.'),
  ...columnValues('oauthApplications', 'oauth_applications', APPLICATION_COLUMNS),
};
export const grantValues = {
  oauthGrantsTable: value('oauth_grants', 'Table of grants: one row per authorization, from code to tokens.'),
  ...columnValues('oauthGrants', 'oauth_grants', GRANT_COLUMNS),
};
export const retiredRefreshTokenValues = {
  oauthRetiredRefreshTokensTable: value('oauth_retired_refresh_tokens', 'Table of rotated-out refresh token hashes, for reuse detection.'),
  ...columnValues('oauthRetiredRefreshTokens', 'oauth_retired_refresh_tokens', RETIRED_REFRESH_TOKEN_COLUMNS),
};
export const jtiValues = {
  oauthJwtJtisTable: value('oauth_jwt_jtis', 'Table of used JWT assertion ids (jti), for replay protection.'),
  ...columnValues('oauthJwtJtis', 'oauth_jwt_jtis', JTI_COLUMNS),
};

export const schemaVersionValues = {
  oauthSchemaVersionsTable: value('oauth_schema_versions', 'Table of the schema versions `migrate()` has applied: one row per table and version, with its description and time.'),
  ...columnValues('oauthSchemaVersions', 'oauth_schema_versions', SCHEMA_VERSION_COLUMNS),
};

export interface TableNames<C extends Record<string, string>> {
  table: string;
  columns: { [K in keyof C]: string };
}

export interface Schema {
  applications: TableNames<typeof APPLICATION_COLUMNS>;
  grants: TableNames<typeof GRANT_COLUMNS>;
  retiredRefreshTokens: TableNames<typeof RETIRED_REFRESH_TOKEN_COLUMNS>;
  jtis: TableNames<typeof JTI_COLUMNS>;
  schemaVersions: TableNames<typeof SCHEMA_VERSION_COLUMNS>;
}

function resolveTable<C extends Record<string, string>>(values: Record<string, unknown>, tableKey: string, prefix: string, columns: C): TableNames<C> {
  const resolved = {} as { [K in keyof C]: string };
  for (const field of Object.keys(columns) as (keyof C & string)[]) {
    const v = values[`${prefix}${columnKey(field)}Column`];
    resolved[field] = typeof v === 'string' ? v : columns[field];
  }
  const table = values[tableKey];
  return { table: typeof table === 'string' ? table : String(tableKey), columns: resolved };
}

/** Resolves every name from the values (missing values, of features not enabled, take the defaults). */
export function resolveSchema(values: Record<string, unknown>): Schema {
  const withDefaults = (key: string, dflt: string): Record<string, unknown> => ({ ...values, [key]: values[key] ?? dflt });
  return {
    applications: resolveTable(withDefaults('oauthApplicationsTable', 'oauth_applications'), 'oauthApplicationsTable', 'oauthApplications', APPLICATION_COLUMNS),
    grants: resolveTable(withDefaults('oauthGrantsTable', 'oauth_grants'), 'oauthGrantsTable', 'oauthGrants', GRANT_COLUMNS),
    retiredRefreshTokens: resolveTable(withDefaults('oauthRetiredRefreshTokensTable', 'oauth_retired_refresh_tokens'), 'oauthRetiredRefreshTokensTable', 'oauthRetiredRefreshTokens', RETIRED_REFRESH_TOKEN_COLUMNS),
    jtis: resolveTable(withDefaults('oauthJwtJtisTable', 'oauth_jwt_jtis'), 'oauthJwtJtisTable', 'oauthJwtJtis', JTI_COLUMNS),
    schemaVersions: resolveTable(withDefaults('oauthSchemaVersionsTable', 'oauth_schema_versions'), 'oauthSchemaVersionsTable', 'oauthSchemaVersions', SCHEMA_VERSION_COLUMNS),
  };
}

/** The value names that make up the schema: these must be constants (they are read at start-up). */
export function isSchemaValue(name: string): boolean {
  return /^oauth(Applications|Grants|RetiredRefreshTokens|JwtJtis|SchemaVersions)(Table|.*Column)$/.test(name);
}
