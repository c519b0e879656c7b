/** Rotated-out refresh tokens, by hash, so a reused one leads back to its grant (RFC 9700 §4.14.2). */
import type { Schema } from './schema';
import type { Sql } from './sql';
import { toDate, toId } from './rows';

export interface RetiredRefreshToken {
  oauthGrantId: number;
  retiredAt: Date;
}

export class RetiredRefreshTokenStore {
  constructor(
    private readonly sql: Sql,
    private readonly schema: Schema,
  ) {}

  async insert(oauthGrantId: number, tokenHash: string, retiredAt: Date): Promise<void> {
    const { table, columns: c } = this.schema.retiredRefreshTokens;
    await this.sql.insert(
      'retiredRefreshTokens.insert',
      (q, p) => q(table).insert({ [c.oauthGrantId]: p(0), [c.tokenHash]: p(1), [c.retiredAt]: p(2) }),
      [oauthGrantId, tokenHash, retiredAt],
      c.id,
    );
  }

  async findByTokenHash(tokenHash: string): Promise<RetiredRefreshToken | undefined> {
    const { table, columns: c } = this.schema.retiredRefreshTokens;
    const row = await this.sql.first('retiredRefreshTokens.findByTokenHash', (q, p) => q(table).where(c.tokenHash, p(0)), [tokenHash]);
    return row ? { oauthGrantId: toId(row[c.oauthGrantId]), retiredAt: toDate(row[c.retiredAt]) ?? new Date(0) } : undefined;
  }
}
