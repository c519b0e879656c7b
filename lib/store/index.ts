/** The store: the only knex user besides the migrations (style.md §7.8). */
import type { Knex } from 'knex';
import type { Schema } from './schema';
import { ApplicationStore } from './applications';
import { GrantStore } from './grants';
import { RetiredRefreshTokenStore } from './retired_refresh_tokens';
import { JtiStore } from './jtis';

export type { Application, NewApplication } from './applications';
export type { Grant, GrantWithClient, NewGrant, TokenFields } from './grants';
export type { Schema } from './schema';
export type { RetiredRefreshToken } from './retired_refresh_tokens';

/** Every table's queries, bound to one connection or transaction. */
export class Store {
  readonly applications: ApplicationStore;
  readonly grants: GrantStore;
  readonly retiredRefreshTokens: RetiredRefreshTokenStore;
  readonly jtis: JtiStore;

  constructor(
    readonly db: Knex | Knex.Transaction,
    readonly schema: Schema,
  ) {
    this.applications = new ApplicationStore(db, schema);
    this.grants = new GrantStore(db, schema);
    this.retiredRefreshTokens = new RetiredRefreshTokenStore(db, schema);
    this.jtis = new JtiStore(db, schema);
  }

  /** Runs `fn` with a store bound to one transaction; nested calls reuse it. */
  async transaction<T>(fn: (store: Store) => Promise<T>): Promise<T> {
    if (this.db.isTransaction) return fn(this);
    return (this.db as Knex).transaction((trx) => fn(new Store(trx, this.schema)));
  }
}
