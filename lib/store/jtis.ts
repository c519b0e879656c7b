/** Used JWT assertion ids (RFC 7523 §3 item 7): single use across processes, purged after expiry. */
import type { Schema } from './schema';
import type { Sql } from './sql';

export class JtiStore {
  constructor(
    private readonly sql: Sql,
    private readonly schema: Schema,
  ) {}

  /**
   * Records a `jti` for an issuer; false when it was already used. The unique index makes this
   * one conditional write, safe across processes (`ON CONFLICT DO NOTHING`).
   */
  async use(issuer: string, jti: string, expiresAt: Date): Promise<boolean> {
    const { table, columns: c } = this.schema.jtis;
    const added = await this.sql.added(
      'jtis.use',
      (q, p) => q(table).insert({ [c.issuer]: p(0), [c.jti]: p(1), [c.expiresAt]: p(2) }).onConflict([c.issuer, c.jti]).ignore(),
      [issuer, jti, expiresAt],
      c.jti,
    );
    return added === 1;
  }

  /** Deletes the ids of assertions that have expired (they can no longer be replayed). */
  async purgeExpired(now: Date): Promise<number> {
    const { table, columns: c } = this.schema.jtis;
    return this.sql.changes('jtis.purgeExpired', (q, p) => q(table).where(c.expiresAt, '<=', p(0)).delete(), [now]);
  }
}
