/** The store: the only knex user besides the migrations (style.md §7.8). */
import type { Knex } from 'knex';
import type { Schema } from './schema';
import { ApplicationStore } from './applications';
import { GrantStore } from './grants';
import { RetiredRefreshTokenStore } from './retired_refresh_tokens';
import { JtiStore } from './jtis';
import { PurgeStore } from './purge';
import { checkSqlitePool, DEFAULT_SQLITE_LOCK_TIMEOUT, Sql } from './sql';
import { checkDriver } from './driver';
import { OAuthConfigurationError } from '../options';

export type { Application, NewApplication } from './applications';
export type { AccessGrant, AccountApplicationGrants, ConsentRecord, Grant, GrantWithClient, NewGrant, TokenFields } from './grants';
export type { Schema } from './schema';
export type { RetiredRefreshToken } from './retired_refresh_tokens';
export type { JtiKey, PurgeableGrant } from './purge';

/** Settings of the store itself, fixed at start-up. */
export interface StoreSettings {
  /** `oauthSqliteLockTimeout`: how long a better-sqlite3 write waits for a lock another process holds (ms). */
  sqliteLockTimeout?: unknown;
}

/** Every table's queries, bound to one connection or transaction. */
export class Store {
  readonly applications: ApplicationStore;
  readonly grants: GrantStore;
  readonly retiredRefreshTokens: RetiredRefreshTokenStore;
  readonly jtis: JtiStore;
  /** The purge's batch queries (inside a transaction only). */
  readonly purge: PurgeStore;

  private readonly sql: Sql;
  private handle?: Knex;
  private ended = false;

  constructor(
    readonly db: Knex | Knex.Transaction,
    readonly schema: Schema,
    sql?: Sql,
    settings: StoreSettings = {},
  ) {
    if (!sql) {
      checkDriver(db);
      checkSqlitePool(db);
    }
    this.sql = sql ?? new Sql(db, schema, undefined, lockTimeout(settings.sqliteLockTimeout));
    this.applications = new ApplicationStore(this.sql, schema);
    this.grants = new GrantStore(this.sql, schema);
    this.retiredRefreshTokens = new RetiredRefreshTokenStore(this.sql, schema);
    this.jtis = new JtiStore(this.sql, schema);
    this.purge = new PurgeStore(this.sql, schema);
  }

  /** Whether this store is bound to a transaction. */
  get inTransaction(): boolean {
    return this.sql.inTransaction;
  }

  /**
   * A knex handle on this store's connection for host code (`ctx.db`): the transaction inside
   * one, the host's knex outside. Made on first use only.
   */
  get knex(): Knex {
    if (!this.sql.inTransaction) return this.db as Knex;
    return (this.handle ??= this.sql.knexHandle(() => this.ended));
  }

  /** Runs `fn` with a store bound to one transaction; nested calls reuse it. */
  async transaction<T>(fn: (store: Store) => Promise<T>): Promise<T> {
    if (this.sql.inTransaction) return fn(this);
    return this.sql.transaction(async (sql) => {
      const inner = new Store(sql.db, this.schema, sql);
      try {
        return await fn(inner);
      } finally {
        inner.ended = true;
      }
    });
  }
}

/** Store calls carry no request, so the wait is read once, at start-up. */
function lockTimeout(ms: unknown): number {
  if (ms === undefined) return DEFAULT_SQLITE_LOCK_TIMEOUT;
  if (typeof ms !== 'number' || !Number.isFinite(ms) || ms < 0) {
    throw new OAuthConfigurationError("oauth(): option 'oauthSqliteLockTimeout' must be a constant number of milliseconds (0 or more): the store reads it once, at start-up.");
  }
  return ms;
}
