/** Rotated-out refresh tokens, by hash, so a reused one leads back to its grant (RFC 9700 §4.14.2). */
import type { Knex } from 'knex';
import type { Schema } from './schema';
import { toDate, toId } from './rows';

export interface RetiredRefreshToken {
  oauthGrantId: number;
  retiredAt: Date;
}

export class RetiredRefreshTokenStore {
  constructor(
    private readonly db: Knex | Knex.Transaction,
    private readonly schema: Schema,
  ) {}

  async insert(oauthGrantId: number, tokenHash: string, retiredAt: Date): Promise<void> {
    const { table, columns: c } = this.schema.retiredRefreshTokens;
    await this.db(table).insert({ [c.oauthGrantId]: oauthGrantId, [c.tokenHash]: tokenHash, [c.retiredAt]: retiredAt });
  }

  async findByTokenHash(tokenHash: string): Promise<RetiredRefreshToken | undefined> {
    const { table, columns: c } = this.schema.retiredRefreshTokens;
    const row = await this.db(table).where(c.tokenHash, tokenHash).first();
    return row ? { oauthGrantId: toId(row[c.oauthGrantId]), retiredAt: toDate(row[c.retiredAt]) ?? new Date(0) } : undefined;
  }
}
