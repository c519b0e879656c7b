/**
 * Two edges of the SQLite store outside group commit proper: a transaction SQLite abandoned
 * mid-way, and a store built on a knex transaction the host hands in.
 */
import { afterEach, expect, it } from '@jest/globals';
import knex, { type Knex } from 'knex';
import { resolveSchema } from '../../lib/store/schema';
import { Sql } from '../../lib/store/sql';
import { failure } from '../support/failure';

const insertName = (s: Sql, name: string) => s.insert('edges.insert', (q, p) => q('items').insert({ name: p(0) }), [name], 'id');

let db: Knex;
afterEach(() => db.destroy());

async function memoryDb(): Promise<Knex> {
  db = knex({ client: 'better-sqlite3', connection: { filename: ':memory:' }, useNullAsDefault: true, pool: { min: 1, max: 1 } });
  await db.schema.createTable('items', (t) => {
    t.increments('id');
    t.string('name').unique();
  });
  return db;
}

it('fails every statement after SQLite abandoned the transaction, and keeps none of its writes', async () => {
  await memoryDb();
  // ON CONFLICT ROLLBACK makes SQLite roll the whole transaction back on a duplicate.
  await db.raw('create table strict_items (id integer primary key autoincrement, name varchar(255) unique on conflict rollback)');
  await db('strict_items').insert({ name: 'taken' });
  const sql = new Sql(db, resolveSchema({}));
  const afterAbandon: (string | undefined)[] = [];
  const trx = sql.transaction(async (t) => {
    await insertName(t, 'before');
    expect(await failure(t.insert('edges.strict', (q, p) => q('strict_items').insert({ name: p(0) }), ['taken'], 'id'))).toMatch(/UNIQUE constraint failed/);
    // The handler swallows the error and goes on: the next statements must not autocommit.
    afterAbandon.push(await failure(insertName(t, 'after-abandon')));
    afterAbandon.push(await failure((async () => t.table('items').insert({ name: 'via-knex' }))()));
    return 'ok';
  });
  expect(await failure(trx)).toBe('no such savepoint: eof_transaction');
  expect(afterAbandon).toEqual(['The SQLite transaction was rolled back by an earlier error', 'The SQLite transaction was rolled back by an earlier error']);
  expect(await db('items').pluck('name')).toEqual([]);
  // The writer recovers: the next write opens a new group and is committed.
  expect(await insertName(sql, 'next')).toBe(1);
  expect(await db('items').pluck('name')).toEqual(['next']);
});

it('runs a store built on a host knex transaction inside that transaction', async () => {
  await memoryDb();
  await db.transaction(async (trx) => {
    const s = new Sql(trx, resolveSchema({}));
    expect(s.inTransaction).toBe(true);
    expect(await insertName(s, 'a')).toBe(1);
    expect(await s.first('edges.byName', (q, p) => q('items').where('name', p(0)), ['a'])).toEqual({ id: 1, name: 'a' });
  });
  expect(await db('items').pluck('name')).toEqual(['a']);
  // Rolled back with the host's transaction.
  expect(
    await failure(
      db.transaction(async (trx) => {
        await insertName(new Sql(trx, resolveSchema({})), 'b');
        throw new Error('host rollback');
      }),
    ),
  ).toBe('host rollback');
  expect(await db('items').pluck('name')).toEqual(['a']);
});

it('refuses to build a query that would run past the SQLite writer outside a transaction, and builds one inside', async () => {
  await memoryDb();
  const sql = new Sql(db, resolveSchema({}));
  expect(() => sql.table('items')).toThrow("Sql.table('items') outside a transaction would bypass the SQLite writer: use first(), changes(), insert() or added()");
  expect(await sql.transaction(async (t) => t.table('items').insert({ name: 'inside' }))).toEqual([1]);
  expect(await db('items').pluck('name')).toEqual(['inside']);
});
