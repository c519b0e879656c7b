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
    const rows = await this.sql.table(table)
      .insert({ [c.issuer]: issuer, [c.jti]: jti, [c.expiresAt]: expiresAt })
      .onConflict([c.issuer, c.jti])
      .ignore()
      .returning(c.jti);
    return rows.length === 1;
  }

  /** Deletes the ids of assertions that have expired (they can no longer be replayed). */
  async purgeExpired(now: Date): Promise<number> {
    const { table, columns: c } = this.schema.jtis;
    return this.sql.table(table).where(c.expiresAt, '<=', now).delete();
  }
}
