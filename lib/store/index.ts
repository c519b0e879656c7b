/** The store: the only knex user besides the migrations (style.md §7.8). */
import type { Knex } from 'knex';
import type { Schema } from './schema';
import { ApplicationStore } from './applications';
import { GrantStore } from './grants';
import { RetiredRefreshTokenStore } from './retired_refresh_tokens';
import { JtiStore } from './jtis';
import { Sql } from './sql';

export type { Application, NewApplication } from './applications';
export type { AccessGrant, Grant, GrantWithClient, NewGrant, TokenFields } from './grants';
export type { Schema } from './schema';
export type { RetiredRefreshToken } from './retired_refresh_tokens';

/** Every table's queries, bound to one connection or transaction. */
export class Store {
  readonly applications: ApplicationStore;
  readonly grants: GrantStore;
  readonly retiredRefreshTokens: RetiredRefreshTokenStore;
  readonly jtis: JtiStore;

  private readonly sql: Sql;

  constructor(
    readonly db: Knex | Knex.Transaction,
    readonly schema: Schema,
    sql?: Sql,
  ) {
    this.sql = sql ?? new Sql(db, schema);
    this.applications = new ApplicationStore(this.sql, schema);
    this.grants = new GrantStore(this.sql, schema);
    this.retiredRefreshTokens = new RetiredRefreshTokenStore(this.sql, schema);
    this.jtis = new JtiStore(this.sql, schema);
  }

  /** Whether this store is bound to a transaction. */
  get inTransaction(): boolean {
    return this.sql.inTransaction;
  }

  /** Runs `fn` with a store bound to one transaction; nested calls reuse it. */
  async transaction<T>(fn: (store: Store) => Promise<T>): Promise<T> {
    if (this.sql.inTransaction) return fn(this);
    return this.sql.transaction((sql) => fn(new Store(sql.db, this.schema, sql)));
  }
}
