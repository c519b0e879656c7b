/** Queries on the applications table. Returns `Application` objects, never raw rows. */
import type { Schema } from './schema';
import type { Sql } from './sql';
import { fromList, toDate, toId, toList, toStr } from './rows';

/** A registered client application. */
export interface Application {
  id: number;
  accountId: string | null;
  name: string;
  description: string | null;
  homepageUrl: string | null;
  redirectUris: string[];
  clientId: string;
  /** The bcrypt hash of the client secret; null for public clients. */
  clientSecretHash: string | null;
  /** AES-GCM encrypted secret, kept only for `client_secret_jwt` applications. */
  clientSecretEncrypted: string | null;
  scopes: string[];
  /** Registered client-authentication methods; null means `oauthDefaultTokenEndpointAuthMethods`. */
  tokenEndpointAuthMethods: string[] | null;
  /** Registered grant types; null means every enabled grant type. */
  grantTypes: string[] | null;
  responseTypes: string[] | null;
  responseModes: string[] | null;
  jwks: string | null;
  jwksUri: string | null;
  logoUri: string | null;
  tosUri: string | null;
  policyUri: string | null;
  contacts: string | null;
  softwareId: string | null;
  softwareVersion: string | null;
  createdAt: Date | null;
  /** The format of the client's access tokens (`jwt_access_tokens`); null: the server's `oauthAccessTokenFormat`. */
  accessTokenFormat: string | null;
  /** The bcrypt hash of the secret a rotation replaced, accepted until `previousClientSecretExpiresAt`; null without one. */
  previousClientSecretHash: string | null;
  /** When the previous secret stops being accepted (compared with `ctx.now()`). */
  previousClientSecretExpiresAt: Date | null;
  /** `oidc`: registered post-logout redirect URIs (RP-Initiated Logout 1.0 §3). */
  postLogoutRedirectUris: string[];
  /** `oidc`: 'public' | 'pairwise' (OpenID Connect Core §8); null: the server's `oidcSubjectType`. */
  subjectType: string | null;
  /**
   * `client_id_metadata_documents`: SHA-256 of the registration read from the document its
   * `client_id` URL serves; null for every other client (so non-null marks such a client).
   */
  metadataDocumentHash: string | null;
  /** `resource_indicators`: the RFC 8707 resources the client may ask for; null: the server's `oauthResourceIndicators`. */
  resourceIndicators: string[] | null;
}

export type NewApplication = Omit<Application, 'id' | 'createdAt' | 'accessTokenFormat' | 'previousClientSecretHash' | 'previousClientSecretExpiresAt' | 'postLogoutRedirectUris' | 'subjectType' | 'metadataDocumentHash' | 'resourceIndicators'> & {
  createdAt: Date;
  accessTokenFormat?: string | null;
  postLogoutRedirectUris?: string[];
  subjectType?: string | null;
  metadataDocumentHash?: string | null;
  resourceIndicators?: string[] | null;
};

/** The registration fields `applications.update()` may change (the secret and the ids excepted). */
export type ApplicationChanges = Partial<
  Pick<
    Application,
    | 'name' | 'description' | 'homepageUrl' | 'redirectUris' | 'scopes' | 'tokenEndpointAuthMethods' | 'grantTypes' | 'responseTypes' | 'responseModes'
    | 'jwks' | 'jwksUri' | 'logoUri' | 'tosUri' | 'policyUri' | 'contacts' | 'softwareId' | 'softwareVersion' | 'accessTokenFormat'
    | 'postLogoutRedirectUris' | 'subjectType' | 'metadataDocumentHash' | 'resourceIndicators'
  >
>;

/** What a secret rotation writes. */
export interface SecretRotation {
  clientSecretHash: string;
  clientSecretEncrypted: string | null;
  previousClientSecretHash: string | null;
  previousClientSecretExpiresAt: Date | null;
}

export function applicationFromRow(schema: Schema, row: Record<string, unknown>): Application {
  const c = schema.applications.columns;
  return {
    id: toId(row[c.id]),
    accountId: toStr(row[c.accountId]),
    name: String(row[c.name] ?? ''),
    description: toStr(row[c.description]),
    homepageUrl: toStr(row[c.homepageUrl]),
    redirectUris: toList(row[c.redirectUri]) ?? [],
    clientId: String(row[c.clientId]),
    clientSecretHash: toStr(row[c.clientSecretHash]),
    clientSecretEncrypted: toStr(row[c.clientSecretEncrypted]),
    scopes: toList(row[c.scopes]) ?? [],
    tokenEndpointAuthMethods: toList(row[c.tokenEndpointAuthMethod]),
    grantTypes: toList(row[c.grantTypes]),
    responseTypes: toList(row[c.responseTypes]),
    responseModes: toList(row[c.responseModes]),
    jwks: toStr(row[c.jwks]),
    jwksUri: toStr(row[c.jwksUri]),
    logoUri: toStr(row[c.logoUri]),
    tosUri: toStr(row[c.tosUri]),
    policyUri: toStr(row[c.policyUri]),
    contacts: toStr(row[c.contacts]),
    softwareId: toStr(row[c.softwareId]),
    softwareVersion: toStr(row[c.softwareVersion]),
    createdAt: toDate(row[c.createdAt]),
    accessTokenFormat: toStr(row[c.accessTokenFormat]),
    previousClientSecretHash: toStr(row[c.previousClientSecretHash]),
    previousClientSecretExpiresAt: toDate(row[c.previousClientSecretExpiresAt]),
    postLogoutRedirectUris: toList(row[c.postLogoutRedirectUris]) ?? [],
    subjectType: toStr(row[c.subjectType]),
    metadataDocumentHash: toStr(row[c.metadataDocumentHash]),
    resourceIndicators: toList(row[c.resourceIndicators]),
  };
}

export class ApplicationStore {
  constructor(
    private readonly sql: Sql,
    private readonly schema: Schema,
  ) {}

  /** One indexed equality query on the unique client_id column. */
  async findByClientId(clientId: string): Promise<Application | undefined> {
    const { table, columns } = this.schema.applications;
    const row = await this.sql.first('applications.findByClientId', (q, p) => q(table).where(columns.clientId, p(0)), [clientId]);
    return row ? applicationFromRow(this.schema, row) : undefined;
  }

  async findById(id: number): Promise<Application | undefined> {
    const { table, columns } = this.schema.applications;
    const row = await this.sql.first('applications.findById', (q, p) => q(table).where(columns.id, p(0)), [id]);
    return row ? applicationFromRow(this.schema, row) : undefined;
  }

  async insert(app: NewApplication): Promise<Application> {
    const { table, columns: c } = this.schema.applications;
    const row = this.newRow(app);
    const id = await this.sql.insert('applications.insert', (q, p) => q(table).insert(Object.fromEntries(Object.keys(row).map((n, i) => [n, p(i)]))), Object.values(row), c.id);
    return {
      ...app,
      accessTokenFormat: app.accessTokenFormat ?? null,
      previousClientSecretHash: null,
      previousClientSecretExpiresAt: null,
      postLogoutRedirectUris: app.postLogoutRedirectUris ?? [],
      subjectType: app.subjectType ?? null,
      metadataDocumentHash: app.metadataDocumentHash ?? null,
      resourceIndicators: app.resourceIndicators ?? null,
      id,
    };
  }

  /**
   * Inserts the row unless one with its client id exists (`ON CONFLICT DO NOTHING` on the unique
   * client_id index): whether it was added. Of two processes materialising the same client ID
   * metadata document at once, one adds the row and the other reads it.
   */
  async insertIfAbsent(app: NewApplication): Promise<boolean> {
    const { table, columns: c } = this.schema.applications;
    const row = this.newRow(app);
    const added = await this.sql.added(
      'applications.insertIfAbsent',
      (q, p) => q(table).insert(Object.fromEntries(Object.keys(row).map((n, i) => [n, p(i)]))).onConflict([c.clientId]).ignore(),
      Object.values(row),
      c.id,
    );
    return added === 1;
  }

  /** The columns of a new row. */
  private newRow(app: NewApplication): Record<string, unknown> {
    const c = this.schema.applications.columns;
    return {
      [c.accountId]: app.accountId,
      [c.name]: app.name,
      [c.description]: app.description,
      [c.homepageUrl]: app.homepageUrl,
      [c.redirectUri]: fromList(app.redirectUris) ?? '',
      [c.clientId]: app.clientId,
      [c.clientSecretHash]: app.clientSecretHash,
      [c.clientSecretEncrypted]: app.clientSecretEncrypted,
      [c.scopes]: fromList(app.scopes) ?? '',
      [c.tokenEndpointAuthMethod]: fromList(app.tokenEndpointAuthMethods),
      [c.grantTypes]: fromList(app.grantTypes),
      [c.responseTypes]: fromList(app.responseTypes),
      [c.responseModes]: fromList(app.responseModes),
      [c.jwks]: app.jwks,
      [c.jwksUri]: app.jwksUri,
      [c.logoUri]: app.logoUri,
      [c.tosUri]: app.tosUri,
      [c.policyUri]: app.policyUri,
      [c.contacts]: app.contacts,
      [c.softwareId]: app.softwareId,
      [c.softwareVersion]: app.softwareVersion,
      [c.createdAt]: app.createdAt,
      [c.accessTokenFormat]: app.accessTokenFormat ?? null,
      [c.postLogoutRedirectUris]: fromList(app.postLogoutRedirectUris),
      [c.subjectType]: app.subjectType ?? null,
      [c.metadataDocumentHash]: app.metadataDocumentHash ?? null,
      [c.resourceIndicators]: fromList(app.resourceIndicators),
    };
  }

  /** Replaces the secret hash (and the encrypted copy, when kept). */
  async updateSecret(id: number, clientSecretHash: string, clientSecretEncrypted: string | null): Promise<void> {
    const { table, columns: c } = this.schema.applications;
    await this.sql.changes(
      'applications.updateSecret',
      (q, p) => q(table).where(c.id, p(0)).update({ [c.clientSecretHash]: p(1), [c.clientSecretEncrypted]: p(2) }),
      [id, clientSecretHash, clientSecretEncrypted],
    );
  }

  /**
   * Up to `limit` applications with a row id above `afterId`, by id (keyset pagination: each page
   * is one range scan of the primary key). Inside a transaction only (several rows).
   */
  async list(afterId: number, limit: number): Promise<Application[]> {
    const { table, columns: c } = this.schema.applications;
    const rows = (await this.sql.table(table).where(c.id, '>', afterId).orderBy(c.id).limit(limit)) as Record<string, unknown>[];
    return rows.map((row) => applicationFromRow(this.schema, row));
  }

  /** Writes the given registration fields (one UPDATE); whether the row exists. */
  async update(id: number, changes: ApplicationChanges): Promise<boolean> {
    const { table, columns: c } = this.schema.applications;
    const set: Record<string, unknown> = {};
    const put = (column: string, v: unknown) => void (v !== undefined && (set[column] = v));
    put(c.name, changes.name);
    put(c.description, changes.description);
    put(c.homepageUrl, changes.homepageUrl);
    put(c.redirectUri, changes.redirectUris === undefined ? undefined : (fromList(changes.redirectUris) ?? ''));
    put(c.scopes, changes.scopes === undefined ? undefined : (fromList(changes.scopes) ?? ''));
    put(c.tokenEndpointAuthMethod, changes.tokenEndpointAuthMethods === undefined ? undefined : fromList(changes.tokenEndpointAuthMethods));
    put(c.grantTypes, changes.grantTypes === undefined ? undefined : fromList(changes.grantTypes));
    put(c.responseTypes, changes.responseTypes === undefined ? undefined : fromList(changes.responseTypes));
    put(c.responseModes, changes.responseModes === undefined ? undefined : fromList(changes.responseModes));
    put(c.jwks, changes.jwks);
    put(c.jwksUri, changes.jwksUri);
    put(c.logoUri, changes.logoUri);
    put(c.tosUri, changes.tosUri);
    put(c.policyUri, changes.policyUri);
    put(c.contacts, changes.contacts);
    put(c.softwareId, changes.softwareId);
    put(c.softwareVersion, changes.softwareVersion);
    put(c.accessTokenFormat, changes.accessTokenFormat);
    put(c.postLogoutRedirectUris, changes.postLogoutRedirectUris === undefined ? undefined : fromList(changes.postLogoutRedirectUris));
    put(c.subjectType, changes.subjectType);
    put(c.metadataDocumentHash, changes.metadataDocumentHash);
    put(c.resourceIndicators, changes.resourceIndicators === undefined ? undefined : fromList(changes.resourceIndicators));
    const names = Object.keys(set);
    if (names.length === 0) return (await this.findById(id)) !== undefined;
    const changed = await this.sql.changes(
      `applications.update:${names.join(',')}`,
      (q, p) => q(table).where(c.id, p(0)).update(Object.fromEntries(names.map((n, i) => [n, p(i + 1)]))),
      [id, ...names.map((n) => set[n])],
    );
    return changed === 1;
  }

  /**
   * Replaces the secret, keeping the replaced hash as the previous one until its expiry: one
   * conditional UPDATE on the hash read before (`expectedHash`), so of two concurrent rotations
   * one wins and the other changes nothing (false).
   */
  async rotateSecret(id: number, expectedHash: string | null, rotation: SecretRotation): Promise<boolean> {
    const { table, columns: c } = this.schema.applications;
    const set = {
      [c.clientSecretHash]: rotation.clientSecretHash,
      [c.clientSecretEncrypted]: rotation.clientSecretEncrypted,
      [c.previousClientSecretHash]: rotation.previousClientSecretHash,
      [c.previousClientSecretExpiresAt]: rotation.previousClientSecretExpiresAt,
    };
    const names = Object.keys(set);
    const changed = await this.sql.changes(
      `applications.rotateSecret:${expectedHash === null ? 'null' : 'hash'}`,
      (q, p) => {
        const b = q(table).where(c.id, p(0));
        if (expectedHash === null) b.whereNull(c.clientSecretHash);
        else b.where(c.clientSecretHash, p(1));
        return b.update(Object.fromEntries(names.map((n, i) => [n, p(i + 2)])));
      },
      [id, expectedHash, ...names.map((n) => set[n])],
    );
    return changed === 1;
  }

  /** Deletes the application row (its grants first: see `GrantStore.deleteOfApplication`); whether it existed. */
  async delete(id: number): Promise<boolean> {
    const { table, columns: c } = this.schema.applications;
    return (await this.sql.changes('applications.delete', (q, p) => q(table).where(c.id, p(0)).delete(), [id])) === 1;
  }

  /**
   * `dynamic_client_registration` (RFC 7592): the hash of the client's registration access
   * token, null when it has none. Kept out of `Application` so no listing ever carries it.
   */
  async registrationAccessTokenHash(id: number): Promise<string | null> {
    const { table, columns: c } = this.schema.applications;
    const row = await this.sql.first('applications.registrationAccessTokenHash', (q, p) => q(table).select(c.registrationAccessTokenHash).where(c.id, p(0)), [id]);
    return row ? toStr(row[c.registrationAccessTokenHash]) : null;
  }

  /** Sets (or, with null, clears) the registration access token hash: one UPDATE; whether the row exists. */
  async setRegistrationAccessTokenHash(id: number, hash: string | null): Promise<boolean> {
    const { table, columns: c } = this.schema.applications;
    const changed = await this.sql.changes(
      'applications.setRegistrationAccessTokenHash',
      (q, p) => q(table).where(c.id, p(0)).update({ [c.registrationAccessTokenHash]: p(1) }),
      [id, hash],
    );
    return changed === 1;
  }

  /**
   * Replaces the registration access token hash only while it is still `expected` (one conditional
   * UPDATE; `next` null clears it): of two requests with the same token, one changes the row and
   * the other nothing (false).
   */
  async replaceRegistrationAccessTokenHash(id: number, expected: string, next: string | null): Promise<boolean> {
    const { table, columns: c } = this.schema.applications;
    const changed = await this.sql.changes(
      'applications.replaceRegistrationAccessTokenHash',
      (q, p) => q(table).where(c.id, p(0)).where(c.registrationAccessTokenHash, p(1)).update({ [c.registrationAccessTokenHash]: p(2) }),
      [id, expected, next],
    );
    return changed === 1;
  }
}
