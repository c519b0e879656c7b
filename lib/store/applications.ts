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
}

export type NewApplication = Omit<Application, 'id' | 'createdAt' | 'accessTokenFormat'> & { createdAt: Date; accessTokenFormat?: string | null };

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
    const row: Record<string, unknown> = {
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
    };
    const id = await this.sql.insert('applications.insert', (q, p) => q(table).insert(Object.fromEntries(Object.keys(row).map((n, i) => [n, p(i)]))), Object.values(row), c.id);
    return { ...app, accessTokenFormat: app.accessTokenFormat ?? null, id };
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
}
