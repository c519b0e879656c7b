/**
 * A fresh database per test app: SQLite in memory by default, or a new PostgreSQL schema
 * when DATABASE_URL is set (the CI's second run). `shared: true` gives a database that
 * several connections share (a SQLite file, or PostgreSQL with a pool), for race specs.
 */
import knex, { type Knex } from 'knex';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';

export const DATABASE_URL = process.env.DATABASE_URL;
export const isPostgres = Boolean(DATABASE_URL);

export interface TestDb {
  db: Knex;
  destroy(): Promise<void>;
}

/** `poolMax` sets the PostgreSQL pool size (SQLite always has one connection). */
export async function createTestDb(opts: { shared?: boolean; poolMax?: number } = {}): Promise<TestDb> {
  if (DATABASE_URL) {
    const schema = `t_${randomBytes(6).toString('hex')}`;
    const admin = knex({ client: 'pg', connection: DATABASE_URL, pool: { min: 0, max: 1 } });
    await admin.raw('create schema ??', [schema]);
    await admin.destroy();
    const db = knex({ client: 'pg', connection: DATABASE_URL, searchPath: [schema], pool: { min: 0, max: opts.poolMax ?? (opts.shared ? 10 : 4) } });
    return {
      db,
      async destroy() {
        await db.raw('drop schema ?? cascade', [schema]);
        await db.destroy();
      },
    };
  }
  if (opts.shared) {
    const dir = mkdtempSync(join(tmpdir(), 'eof-'));
    const db = knex({
      client: 'better-sqlite3',
      connection: { filename: join(dir, 'test.sqlite3') },
      useNullAsDefault: true,
      pool: { min: 1, max: 1 },
    });
    return {
      db,
      async destroy() {
        await db.destroy();
        rmSync(dir, { recursive: true, force: true });
      },
    };
  }
  const db = knex({ client: 'better-sqlite3', connection: { filename: ':memory:' }, useNullAsDefault: true, pool: { min: 1, max: 1 } });
  return { db, destroy: () => db.destroy() };
}
