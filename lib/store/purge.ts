/**
 * The purge's queries (issue 12): grants and unused codes whose tokens all expired (or were
 * revoked) before a cut-off, the retired refresh tokens of those grants, expired jtis, and the
 * application rows of client ID metadata documents that no grant references.
 * `lib/purge.ts` runs them in batches, each batch inside one `Store.transaction`, so these
 * methods build their queries with `Sql.table()`, which on better-sqlite3 runs on the writer's
 * pinned connection (and refuses to run outside a transaction).
 */
import type { Knex } from 'knex';
import type { Schema } from './schema';
import type { Sql } from './sql';
import { toId, toStr } from './rows';

/** A grant row the purge may delete. */
export interface PurgeableGrant {
  id: number;
  /** The row still holds only its authorization code: never redeemed, no token issued. */
  unusedCode: boolean;
}

/** The key of a used jti (the table has no id column). */
export interface JtiKey {
  issuer: string;
  jti: string;
}

/**
 * The selections of purgeable grants: each is a range scan on one index (revoked_at, or
 * (refresh_token_expires_in, expires_in)), so a batch reads what it deletes, not the live rows
 * in front of it. Together they cover: revoked before the cut-off; or the access token (or code)
 * expired before it and there is no refresh token; or both the access and the refresh token
 * expired before it. A refresh token without an expiry never expires, so its grant stays
 * until revoked.
 */
export function purgeableGrantQueries(table: (name: string) => Knex.QueryBuilder, schema: Schema, cutoff: Date, limit: number): Knex.QueryBuilder[] {
  const { table: name, columns: c } = schema.grants;
  const select = () => table(name).select({ id: c.id, token: c.tokenHash }).limit(limit);
  return [
    select().where(c.revokedAt, '<', cutoff),
    select().whereNull(c.refreshTokenExpiresIn).where(c.expiresIn, '<', cutoff).whereNull(c.refreshTokenHash),
    select().where(c.refreshTokenExpiresIn, '<', cutoff).where(c.expiresIn, '<', cutoff),
  ];
}

/** The selection of expired jtis, on the expires_at index. */
export function expiredJtiQuery(table: (name: string) => Knex.QueryBuilder, schema: Schema, cutoff: Date, limit: number): Knex.QueryBuilder {
  const { table: name, columns: c } = schema.jtis;
  return table(name).select({ issuer: c.issuer, jti: c.jti }).where(c.expiresAt, '<', cutoff).limit(limit);
}

export class PurgeStore {
  constructor(
    private readonly sql: Sql,
    private readonly schema: Schema,
  ) {}

  /**
   * Up to `limit` grants purgeable at `cutoff`. Inside a transaction only. On PostgreSQL the rows
   * are locked until the transaction ends, and rows a request has locked are skipped, so the purge
   * never waits for a request (nor two purges for each other).
   */
  async purgeableGrants(cutoff: Date, limit: number): Promise<PurgeableGrant[]> {
    const found = new Map<number, PurgeableGrant>();
    const id = this.schema.grants.columns.id;
    for (const q of purgeableGrantQueries((t) => this.sql.table(t), this.schema, cutoff, limit)) {
      // A revoked grant may be expired too: the selections stay disjoint, so a short batch means none is left.
      if (found.size > 0) q.whereNotIn(id, [...found.keys()]);
      const rows = (await this.locked(q.limit(limit - found.size))) as Record<string, unknown>[];
      for (const row of rows) found.set(toId(row.id), { id: toId(row.id), unusedCode: toStr(row.token) === null });
      if (found.size >= limit) break;
    }
    return [...found.values()];
  }

  /** Deletes the retired refresh tokens of these grants: how many. Inside a transaction only. */
  async deleteRetiredRefreshTokens(grantIds: readonly number[]): Promise<number> {
    if (grantIds.length === 0) return 0;
    const { table, columns: c } = this.schema.retiredRefreshTokens;
    return Number(await this.sql.table(table).whereIn(c.oauthGrantId, grantIds).delete());
  }

  /** Deletes these grants: how many. Inside a transaction only. */
  async deleteGrants(ids: readonly number[]): Promise<number> {
    if (ids.length === 0) return 0;
    const { table, columns: c } = this.schema.grants;
    return Number(await this.sql.table(table).whereIn(c.id, ids).delete());
  }

  /** Up to `limit` jtis that expired before `cutoff`. Inside a transaction only. */
  async expiredJtis(cutoff: Date, limit: number): Promise<JtiKey[]> {
    const rows = (await this.locked(expiredJtiQuery((t) => this.sql.table(t), this.schema, cutoff, limit))) as Record<string, unknown>[];
    return rows.map((row) => ({ issuer: String(row.issuer), jti: String(row.jti) }));
  }

  /** Deletes these jtis: how many. Inside a transaction only. */
  async deleteJtis(keys: readonly JtiKey[]): Promise<number> {
    if (keys.length === 0) return 0;
    const { table, columns: c } = this.schema.jtis;
    const pairs = keys.map((k) => [k.issuer, k.jti]);
    return Number(await this.sql.table(table).whereIn([c.issuer, c.jti], pairs).delete());
  }

  /**
   * `client_id_metadata_documents`: up to `limit` ids of application rows made from a metadata
   * document (its hash set) before `cutoff` that no grant references any more; the next use of
   * the client id makes the row again from its document. Inside a transaction only; on
   * PostgreSQL a row a request is adding a grant to (its key-share lock) is skipped.
   */
  async unusedMetadataDocumentApplications(cutoff: Date, limit: number): Promise<number[]> {
    const { table, columns: c } = this.schema.applications;
    const q = this.sql
      .table(table)
      .select({ id: c.id })
      .whereNotNull(c.metadataDocumentHash)
      .where(c.createdAt, '<', cutoff)
      .whereNotExists(this.grantOfApplication())
      .orderBy(c.id)
      .limit(limit);
    const rows = (await this.locked(q)) as Record<string, unknown>[];
    return rows.map((row) => toId(row.id));
  }

  /** Deletes these metadata-document application rows, each only while no grant references it: how many. Inside a transaction only. */
  async deleteUnusedApplications(ids: readonly number[]): Promise<number> {
    if (ids.length === 0) return 0;
    const { table, columns: c } = this.schema.applications;
    return Number(
      await this.sql
        .table(table)
        .whereIn(c.id, ids)
        .whereNotNull(c.metadataDocumentHash)
        .whereNotExists(this.grantOfApplication())
        .delete(),
    );
  }

  /** The correlated subquery "a grant of this application row", for `whereNotExists`. */
  private grantOfApplication(): (sub: Knex.QueryBuilder) => void {
    const a = this.schema.applications;
    const g = this.schema.grants;
    return (sub) => void sub.select(g.columns.id).from(g.table).whereRaw('?? = ??', [`${g.table}.${g.columns.oauthApplicationId}`, `${a.table}.${a.columns.id}`]);
  }

  /** `FOR UPDATE SKIP LOCKED` on PostgreSQL; SQLite's writer already runs one transaction at a time. */
  private locked(q: Knex.QueryBuilder): Knex.QueryBuilder {
    const dialect = (this.sql.db.client as { dialect?: string }).dialect;
    return dialect === 'postgresql' ? q.forUpdate().skipLocked() : q;
  }
}
