/** Queries on the grants table. Every lookup is one indexed equality query on a hash column. */
import type { Knex } from 'knex';
import type { Schema } from './schema';
import type { Sql } from './sql';
import { fromList, toDate, toId, toList, toStr } from './rows';

/** One authorization: the code, then the access and refresh tokens it was exchanged for. */
export interface Grant {
  id: number;
  accountId: string | null;
  oauthApplicationId: number;
  type: string;
  codeHash: string | null;
  codeRedeemedAt: Date | null;
  tokenHash: string | null;
  refreshTokenHash: string | null;
  /** Absolute expiry: of the code before the exchange, of the access token after. */
  expiresIn: Date;
  refreshTokenExpiresIn: Date | null;
  redirectUri: string | null;
  revokedAt: Date | null;
  scopes: string[];
  /** The current access token's scopes when a refresh narrowed them (RFC 6749 §6); null: `scopes`. */
  tokenScopes?: string[] | null;
  /** RFC 8707 resources the grant is for (`resource_indicators`); null or absent: none named. */
  resources?: string[] | null;
  /** The current access token's resources when a token request narrowed them (RFC 8707 §2.2); null: `resources`. */
  tokenResources?: string[] | null;
  accessType: string;
  codeChallenge: string | null;
  codeChallengeMethod: string | null;
  createdAt: Date | null;
  /** When the grant last issued tokens (code exchange, refresh, direct grant); null before its first. */
  lastUsedAt?: Date | null;
  /** `oidc`: the authentication request's `nonce` (OpenID Connect Core §3.1.2.1). */
  nonce?: string | null;
  /** `oidc`: when the end user authenticated, as the host said at approval. */
  authTime?: Date | null;
  /** `oidc`: the `acr` the host reported at approval. */
  acr?: string | null;
  /** `oidc`: the `amr` values the host reported at approval. */
  amr?: string[] | null;
  /** `oidc`: the `claims` request parameter (§5.5), as JSON. */
  claims?: string | null;
  /** `oidc`: the `claims_locales` request parameter's language tags. */
  claimsLocales?: string[] | null;
  /**
   * Host columns (added by the host's own migration, written through `resourceOwnerParams`):
   * every column of the row that is not one of ours, read back as the driver returns it.
   */
  extra?: Record<string, unknown>;
}

export type NewGrant = Omit<Grant, 'id' | 'codeRedeemedAt' | 'revokedAt' | 'extra'> & { extra?: Record<string, unknown> };

/** One consent an account gave a client, as its live grants record it (remembered consent). */
export interface ConsentRecord {
  scopes: string[];
  /** RFC 8707 resources the grant is for; null: none named. */
  resources: string[] | null;
  /** The OIDC `claims` request (JSON) the grant was approved with; null: none. */
  claims: string | null;
}

/** A grant found by its access token, with the client id of its application (one joined query). */
export interface GrantWithClient extends Grant {
  clientId: string;
  /** The grant's scopes; `scopes` here are the access token's own (`tokenScopes` when set). */
  grantScopes: string[];
}

/** What `requireOauthAuthorization` needs of the grant behind an access token. */
export interface AccessGrant {
  id: number;
  accountId: string | null;
  oauthApplicationId: number;
  clientId: string;
  /** The access token's scopes (`tokenScopes` when a refresh narrowed them). */
  scopes: string[];
  /** The access token's RFC 8707 resources (`tokenResources` when narrowed); `[]`: none named. */
  resources: string[];
  expiresIn: Date;
  revokedAt: Date | null;
}

/** Our own column names, so that the rest of a row can be told apart as the host's. */
const ownColumns = new WeakMap<Schema, ReadonlySet<string>>();

/** The host's columns of a grant row: all but ours and the `__`-prefixed aliases of joins. */
function extraColumns(schema: Schema, row: Record<string, unknown>): Record<string, unknown> {
  let own = ownColumns.get(schema);
  if (!own) ownColumns.set(schema, (own = new Set(Object.values(schema.grants.columns))));
  const extra: Record<string, unknown> = {};
  for (const [name, v] of Object.entries(row)) if (!own.has(name) && !name.startsWith('__')) extra[name] = v;
  return extra;
}

export function grantFromRow(schema: Schema, row: Record<string, unknown>): Grant {
  const c = schema.grants.columns;
  return {
    id: toId(row[c.id]),
    accountId: toStr(row[c.accountId]),
    oauthApplicationId: toId(row[c.oauthApplicationId]),
    type: String(row[c.type] ?? ''),
    codeHash: toStr(row[c.codeHash]),
    codeRedeemedAt: toDate(row[c.codeRedeemedAt]),
    tokenHash: toStr(row[c.tokenHash]),
    refreshTokenHash: toStr(row[c.refreshTokenHash]),
    expiresIn: toDate(row[c.expiresIn]) ?? new Date(0),
    refreshTokenExpiresIn: toDate(row[c.refreshTokenExpiresIn]),
    redirectUri: toStr(row[c.redirectUri]),
    revokedAt: toDate(row[c.revokedAt]),
    scopes: toList(row[c.scopes]) ?? [],
    tokenScopes: toList(row[c.tokenScopes]),
    resources: toList(row[c.resources]),
    tokenResources: toList(row[c.tokenResources]),
    accessType: String(row[c.accessType] ?? 'offline'),
    codeChallenge: toStr(row[c.codeChallenge]),
    codeChallengeMethod: toStr(row[c.codeChallengeMethod]),
    createdAt: toDate(row[c.createdAt]),
    lastUsedAt: toDate(row[c.lastUsedAt]),
    nonce: toStr(row[c.nonce]),
    authTime: toDate(row[c.authTime]),
    acr: toStr(row[c.acr]),
    amr: toList(row[c.amr]),
    claims: toStr(row[c.claims]),
    claimsLocales: toList(row[c.claimsLocales]),
    extra: extraColumns(schema, row),
  };
}

/** The fields a token issuance writes on a grant row. */
export interface TokenFields {
  tokenHash: string;
  expiresIn: Date;
  refreshTokenHash?: string | null;
  refreshTokenExpiresIn?: Date | null;
  scopes?: string[];
  /** The new access token's scopes when narrower than the grant's (RFC 6749 §6); null clears them. */
  tokenScopes?: string[] | null;
  /** The new access token's resources when narrower than the grant's (RFC 8707 §2.2); null clears them. */
  tokenResources?: string[] | null;
  /** When the tokens are issued: the grant's `lastUsedAt` (grant_management's "last used"). */
  lastUsedAt?: Date;
}

/**
 * An application as the account's grants page shows it (grant_management): its live grants of
 * one account combined, from one grouped query.
 */
export interface AccountApplicationGrants {
  application: { id: number; clientId: string; name: string; description: string | null; homepageUrl: string | null; logoUri: string | null };
  /** The union of the grants' scopes, in the order first seen. */
  scopes: string[];
  /** The earliest grant's creation. */
  firstGrantedAt: Date | null;
  /** The latest token issuance of any of the grants; null when none has issued one. */
  lastUsedAt: Date | null;
}


export class GrantStore {
  constructor(
    private readonly sql: Sql,
    private readonly schema: Schema,
  ) {}

  async insert(grant: NewGrant): Promise<Grant> {
    const { table, columns: c } = this.schema.grants;
    const row: Record<string, unknown> = {
      ...(grant.extra ?? {}),
      [c.accountId]: grant.accountId,
      [c.oauthApplicationId]: grant.oauthApplicationId,
      [c.type]: grant.type,
      [c.codeHash]: grant.codeHash,
      [c.tokenHash]: grant.tokenHash,
      [c.refreshTokenHash]: grant.refreshTokenHash,
      [c.expiresIn]: grant.expiresIn,
      [c.refreshTokenExpiresIn]: grant.refreshTokenExpiresIn,
      [c.redirectUri]: grant.redirectUri,
      [c.scopes]: fromList(grant.scopes) ?? '',
      [c.tokenScopes]: fromList(grant.tokenScopes),
      [c.resources]: fromList(grant.resources),
      [c.accessType]: grant.accessType,
      [c.codeChallenge]: grant.codeChallenge,
      [c.codeChallengeMethod]: grant.codeChallengeMethod,
      [c.createdAt]: grant.createdAt,
      [c.lastUsedAt]: grant.lastUsedAt ?? null,
    };
    // OpenID Connect fields only when set, so a plain OAuth grant's INSERT is unchanged.
    if (grant.nonce != null) row[c.nonce] = grant.nonce;
    if (grant.authTime != null) row[c.authTime] = grant.authTime;
    if (grant.acr != null) row[c.acr] = grant.acr;
    if (grant.amr != null) row[c.amr] = fromList(grant.amr);
    if (grant.claims != null) row[c.claims] = grant.claims;
    if (grant.claimsLocales != null) row[c.claimsLocales] = fromList(grant.claimsLocales);
    // Compiled once per column set (host columns from resourceOwnerParams add to the set).
    const names = Object.keys(row);
    const id = await this.sql.insert(`grants.insert:${names.join(',')}`, (q, p) => q(table).insert(Object.fromEntries(names.map((n, i) => [n, p(i)]))), names.map((n) => row[n]), c.id);
    return { ...grant, id, codeRedeemedAt: null, revokedAt: null };
  }

  /**
   * The grant holding this access-token hash, joined with its application's client id: the
   * one query of `requireOauthAuthorization`. Revoked and expired rows are returned too, so
   * the caller can say why a token is refused.
   */
  async findByTokenHash(tokenHash: string): Promise<GrantWithClient | undefined> {
    const g = this.schema.grants;
    const a = this.schema.applications;
    // The hot path of every protected request: compiled once, one indexed equality query.
    const row = await this.sql.first(
      'grants.findByTokenHash',
      (q, p) =>
        q(g.table)
          .join(a.table, `${a.table}.${a.columns.id}`, `${g.table}.${g.columns.oauthApplicationId}`)
          .where(`${g.table}.${g.columns.tokenHash}`, p(0))
          .select(`${g.table}.*`, this.sql.ref(`${a.table}.${a.columns.clientId}`).as('__client_id')),
      [tokenHash],
    );
    if (!row) return undefined;
    const grant = grantFromRow(this.schema, row);
    // The access token carries the scopes it was issued with, which a refresh may have narrowed.
    return { ...grant, scopes: grant.tokenScopes ?? grant.scopes, grantScopes: grant.scopes, clientId: String(row.__client_id) };
  }

  /**
   * The one query of `requireOauthAuthorization`: only the columns a protected request needs,
   * joined with the application's client id. Revoked and expired rows are returned too, so the
   * caller can say why a token is refused.
   */
  async findAccessByTokenHash(tokenHash: string): Promise<AccessGrant | undefined> {
    const g = this.schema.grants;
    const a = this.schema.applications;
    const col = (name: string) => `${g.table}.${name}`;
    const row = await this.sql.first(
      'grants.findAccessByTokenHash',
      (q, p) =>
        q(g.table)
          .join(a.table, `${a.table}.${a.columns.id}`, col(g.columns.oauthApplicationId))
          .where(col(g.columns.tokenHash), p(0))
          .select(
            ...this.refs(g.table, {
              id: g.columns.id,
              account_id: g.columns.accountId,
              application_id: g.columns.oauthApplicationId,
              scopes: g.columns.scopes,
              token_scopes: g.columns.tokenScopes,
              resources: g.columns.resources,
              token_resources: g.columns.tokenResources,
              expires_in: g.columns.expiresIn,
              revoked_at: g.columns.revokedAt,
            }),
            ...this.refs(a.table, { client_id: a.columns.clientId }),
          ),
      [tokenHash],
    );
    if (!row) return undefined;
    return {
      id: toId(row.id),
      accountId: toStr(row.account_id),
      oauthApplicationId: toId(row.application_id),
      clientId: String(row.client_id),
      scopes: toList(row.token_scopes) ?? toList(row.scopes) ?? [],
      resources: toList(row.token_resources) ?? toList(row.resources) ?? [],
      expiresIn: toDate(row.expires_in) ?? new Date(0),
      revokedAt: toDate(row.revoked_at),
    };
  }

  async findByRefreshTokenHash(refreshTokenHash: string): Promise<Grant | undefined> {
    const { table, columns: c } = this.schema.grants;
    const row = await this.sql.first('grants.findByRefreshTokenHash', (q, p) => q(table).where(c.refreshTokenHash, p(0)), [refreshTokenHash]);
    return row ? grantFromRow(this.schema, row) : undefined;
  }

  async findByCodeHash(oauthApplicationId: number, codeHash: string): Promise<Grant | undefined> {
    const { table, columns: c } = this.schema.grants;
    const row = await this.sql.first('grants.findByCodeHash', (q, p) => q(table).where(c.oauthApplicationId, p(0)).andWhere(c.codeHash, p(1)), [oauthApplicationId, codeHash]);
    return row ? grantFromRow(this.schema, row) : undefined;
  }

  async findById(id: number): Promise<Grant | undefined> {
    const { table, columns: c } = this.schema.grants;
    const row = await this.sql.first('grants.findById', (q, p) => q(table).where(c.id, p(0)), [id]);
    return row ? grantFromRow(this.schema, row) : undefined;
  }

  /**
   * Redeems a code: one conditional update that succeeds for exactly one caller, however many
   * race (style.md §7.8). Writes the tokens in the same statement.
   */
  async redeemCode(grantId: number, now: Date, tokens: TokenFields): Promise<boolean> {
    const { table, columns: c } = this.schema.grants;
    const set = this.tokenColumns(tokens);
    const names = Object.keys(set);
    const changed = await this.sql.changes(
      `grants.redeemCode:${names.join(',')}`,
      (q, p) =>
        q(table)
          .where(c.id, p(0))
          .whereNull(c.codeRedeemedAt)
          .whereNull(c.revokedAt)
          .where(c.expiresIn, '>', p(1))
          // The exchange is the grant's first use: grant_management's "last used" (no extra statement).
          .update({ [c.codeRedeemedAt]: p(1), [c.lastUsedAt]: p(1), ...Object.fromEntries(names.map((n, i) => [n, p(i + 2)])) }),
      [grantId, now, ...names.map((n) => set[n])],
    );
    return changed === 1;
  }

  /**
   * Replaces the tokens of a grant only if it still holds `expectedRefreshTokenHash` and is
   * not revoked: the single-use step of refresh-token rotation.
   */
  async rotateTokens(grantId: number, expectedRefreshTokenHash: string, tokens: TokenFields): Promise<boolean> {
    const { table, columns: c } = this.schema.grants;
    const set = this.tokenColumns(tokens);
    const names = Object.keys(set);
    const changed = await this.sql.changes(
      `grants.rotateTokens:${names.join(',')}`,
      (q, p) =>
        q(table)
          .where(c.id, p(0))
          .where(c.refreshTokenHash, p(1))
          .whereNull(c.revokedAt)
          .update(Object.fromEntries(names.map((n, i) => [n, p(i + 2)]))),
      [grantId, expectedRefreshTokenHash, ...names.map((n) => set[n])],
    );
    return changed === 1;
  }

  /**
   * Gives a grant inserted without an access token its first one (a JWT access token names its
   * grant, so it is minted after the INSERT): one conditional UPDATE, applied once.
   */
  async setAccessToken(grantId: number, tokens: TokenFields): Promise<boolean> {
    const { table, columns: c } = this.schema.grants;
    const set = this.tokenColumns(tokens);
    const names = Object.keys(set);
    const changed = await this.sql.changes(
      `grants.setAccessToken:${names.join(',')}`,
      (q, p) =>
        q(table)
          .where(c.id, p(0))
          .whereNull(c.tokenHash)
          .update(Object.fromEntries(names.map((n, i) => [n, p(i + 1)]))),
      [grantId, ...names.map((n) => set[n])],
    );
    return changed === 1;
  }

  /** Marks a grant revoked (its code, access and refresh tokens at once). Idempotent. */
  async revoke(grantId: number, now: Date): Promise<boolean> {
    const { table, columns: c } = this.schema.grants;
    const changed = await this.sql.changes('grants.revoke', (q, p) => q(table).where(c.id, p(0)).whereNull(c.revokedAt).update({ [c.revokedAt]: p(1) }), [grantId, now]);
    return changed === 1;
  }

  /**
   * Revokes every grant not yet revoked of an application, of an account, or of both (at least
   * one filter): one UPDATE. Returns how many it revoked.
   */
  async revokeMatching(filter: { applicationId?: number; accountId?: string }, now: Date): Promise<number> {
    const { table, columns: c } = this.schema.grants;
    const { applicationId, accountId } = filter;
    if (applicationId === undefined && accountId === undefined) throw new TypeError('GrantStore.revokeMatching(): at least one filter is required');
    const key = `grants.revokeMatching:${applicationId === undefined ? '' : 'app'}:${accountId === undefined ? '' : 'account'}`;
    return this.sql.changes(
      key,
      (q, p) => {
        const b = q(table).whereNull(c.revokedAt);
        if (applicationId !== undefined) b.where(c.oauthApplicationId, p(1));
        if (accountId !== undefined) b.where(c.accountId, p(2));
        return b.update({ [c.revokedAt]: p(0) });
      },
      [now, applicationId, accountId],
    );
  }

  /**
   * What an account consented to for an application through the authorization code flow and
   * has not revoked since (remembered consent, lib/consent.ts): each distinct (scopes, RFC 8707
   * resources, OIDC claims request) of those grants. One query grouped by the three on the
   * (account_id, oauth_application_id) index of schema version 8; empty when there is no such
   * grant. Inside a transaction only (several rows).
   */
  async consentRecords(accountId: string, applicationId: number): Promise<ConsentRecord[]> {
    const { table, columns: c } = this.schema.grants;
    const rows = (await this.sql
      .table(table)
      .where(c.accountId, accountId)
      .where(c.oauthApplicationId, applicationId)
      .where(c.type, 'authorization_code')
      .whereNull(c.revokedAt)
      .groupBy(c.scopes, c.resources, c.claims)
      .select(this.sql.ref(c.scopes).as('scopes'), this.sql.ref(c.resources).as('resources'), this.sql.ref(c.claims).as('claims'))
      .limit(1000)) as Record<string, unknown>[];
    return rows.map((row) => ({ scopes: toList(row.scopes) ?? [], resources: toList(row.resources), claims: toStr(row.claims) }));
  }

  /**
   * The applications an account has live grants with (not revoked), each with its grants
   * combined: one query grouped by application and scope set (an account has few of either,
   * however many grants), merged here. By application name. Inside a transaction only (several
   * rows). Uses the (account_id, oauth_application_id) index of schema version 8.
   */
  async listApplicationsOfAccount(accountId: string, limit = 1000): Promise<AccountApplicationGrants[]> {
    const g = this.schema.grants;
    const a = this.schema.applications;
    const gc = (n: string) => `${g.table}.${n}`;
    const ac = (n: string) => `${a.table}.${n}`;
    const appColumns = [a.columns.id, a.columns.clientId, a.columns.name, a.columns.description, a.columns.homepageUrl, a.columns.logoUri].map(ac);
    const rows = (await this.sql
      .table(g.table)
      .join(a.table, ac(a.columns.id), gc(g.columns.oauthApplicationId))
      .where(gc(g.columns.accountId), accountId)
      .whereNull(gc(g.columns.revokedAt))
      .groupBy(...appColumns, gc(g.columns.scopes))
      .select(
        ...this.refs(a.table, { app_id: a.columns.id, client_id: a.columns.clientId, name: a.columns.name, description: a.columns.description, homepage_url: a.columns.homepageUrl, logo_uri: a.columns.logoUri }),
        ...this.refs(g.table, { scopes: g.columns.scopes }),
      )
      .min({ first_granted_at: gc(g.columns.createdAt) })
      .max({ last_used_at: gc(g.columns.lastUsedAt) })
      .orderBy(ac(a.columns.id))
      .limit(limit)) as Record<string, unknown>[];
    const byApp = new Map<number, AccountApplicationGrants>();
    for (const row of rows) {
      const id = toId(row.app_id);
      let entry = byApp.get(id);
      if (!entry) {
        entry = {
          application: { id, clientId: String(row.client_id), name: String(row.name ?? ''), description: toStr(row.description), homepageUrl: toStr(row.homepage_url), logoUri: toStr(row.logo_uri) },
          scopes: [],
          firstGrantedAt: null,
          lastUsedAt: null,
        };
        byApp.set(id, entry);
      }
      for (const scope of toList(row.scopes) ?? []) if (!entry.scopes.includes(scope)) entry.scopes.push(scope);
      entry.firstGrantedAt = earlier(entry.firstGrantedAt, toDate(row.first_granted_at));
      entry.lastUsedAt = later(entry.lastUsedAt, toDate(row.last_used_at));
    }
    return [...byApp.values()].sort((x, y) => x.application.name.localeCompare(y.application.name) || x.application.id - y.application.id);
  }

  /** `table.column AS alias` for each alias → column (a joined query's select list). */
  private refs(table: string, columns: Record<string, string>): Knex.Ref<string, Record<string, string>>[] {
    return Object.entries(columns).map(([alias, column]) => this.sql.ref(`${table}.${column}`).as(alias));
  }

  /**
   * Deletes the grants of an application, and first their retired refresh tokens when that table
   * is in use (`retired`): run inside the transaction that deletes the application. Returns how
   * many grants it deleted.
   */
  async deleteOfApplication(applicationId: number, retired: boolean): Promise<number> {
    const { table, columns: c } = this.schema.grants;
    if (retired) {
      const r = this.schema.retiredRefreshTokens;
      await this.sql.changes(
        'grants.deleteOfApplication:retired',
        (q, p) => q(r.table).whereIn(r.columns.oauthGrantId, q(table).select(c.id).where(c.oauthApplicationId, p(0))).delete(),
        [applicationId],
      );
    }
    return this.sql.changes('grants.deleteOfApplication', (q, p) => q(table).where(c.oauthApplicationId, p(0)).delete(), [applicationId]);
  }

  private tokenColumns(t: TokenFields): Record<string, unknown> {
    const c = this.schema.grants.columns;
    const out: Record<string, unknown> = { [c.tokenHash]: t.tokenHash, [c.expiresIn]: t.expiresIn };
    if (t.refreshTokenHash !== undefined) out[c.refreshTokenHash] = t.refreshTokenHash;
    if (t.refreshTokenExpiresIn !== undefined) out[c.refreshTokenExpiresIn] = t.refreshTokenExpiresIn;
    if (t.scopes !== undefined) out[c.scopes] = fromList(t.scopes);
    if (t.tokenScopes !== undefined) out[c.tokenScopes] = fromList(t.tokenScopes);
    if (t.tokenResources !== undefined) out[c.tokenResources] = fromList(t.tokenResources);
    if (t.lastUsedAt !== undefined) out[c.lastUsedAt] = t.lastUsedAt;
    return out;
  }
}

function earlier(x: Date | null, y: Date | null): Date | null {
  return x === null ? y : y === null || x.getTime() <= y.getTime() ? x : y;
}

function later(x: Date | null, y: Date | null): Date | null {
  return x === null ? y : y === null || x.getTime() >= y.getTime() ? x : y;
}
