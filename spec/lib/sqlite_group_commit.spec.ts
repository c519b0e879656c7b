/**
 * Group commit on better-sqlite3 (lib/store/sql.ts, `SqliteWriter`). Always SQLite, whatever
 * DATABASE_URL says: every test has its own WAL database file, a log of the statements the pooled
 * connection ran, and a second, independent connection that shows what is really committed.
 */
import { afterEach, beforeEach, describe, expect, it, jest } from '@jest/globals';
import knex, { type Knex } from 'knex';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { resolveSchema } from '../../lib/store/schema';
import { Sql, type Build } from '../../lib/store/sql';
import { failure } from '../support/failure';

/** The parts of a better-sqlite3 connection this spec touches (the package ships no types). */
interface RawStatement {
  run(...params: unknown[]): unknown;
  all(...params: unknown[]): unknown[];
}
interface RawDatabase {
  prepare(sql: string): RawStatement;
  pragma(source: string): unknown;
  close(): void;
}
const Database = require('better-sqlite3') as new (filename: string, options?: { readonly?: boolean }) => RawDatabase;

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));


const INSERT: [string, Build] = ['gc.insert', (q, p) => q('items').insert({ name: p(0) })];
const STRICT_INSERT: [string, Build] = ['gc.strictInsert', (q, p) => q('strict_items').insert({ name: p(0) })];
const BY_NAME: [string, Build] = ['gc.byName', (q, p) => q('items').where('name', p(0))];
const RENAME: [string, Build] = ['gc.rename', (q, p) => q('items').where('name', p(0)).update({ name: p(1) })];

const CONTROL = ['BEGIN IMMEDIATE', 'COMMIT', 'ROLLBACK', 'SAVEPOINT eof_transaction', 'ROLLBACK TO eof_transaction', 'RELEASE eof_transaction'];

describe('lib › store › sql › SQLite group commit', () => {
  let dir: string;
  let db: Knex;
  let sql: Sql;
  let reader: RawDatabase;
  /** Every statement the pooled connection ran successfully, in order. */
  let log: string[];
  /** Makes the next run of this statement throw, as a failing disk would. */
  let failNext: string | undefined;
  /** Called after each successful statement of the pooled connection. */
  let afterRun: ((text: string) => void) | undefined;

  const insert = (name: string, s: Sql = sql) => s.insert(INSERT[0], INSERT[1], [name], 'id');
  const byName = (name: string, s: Sql = sql) => s.first(BY_NAME[0], BY_NAME[1], [name]);
  /** The names committed to `items`, as an independent connection sees them. */
  const committed = (): string[] => (reader.prepare('select name from items order by id').all() as { name: string }[]).map((r) => r.name);
  const control = (): string[] => log.filter((s) => CONTROL.includes(s));
  const count = (text: string): number => log.filter((s) => s === text).length;
  const inserts = (): number => log.filter((s) => /^insert into `items`/.test(s)).length;

  beforeEach(async () => {
    dir = mkdtempSync(join(tmpdir(), 'eof-gc-'));
    const filename = join(dir, 'test.sqlite3');
    log = [];
    failNext = undefined;
    afterRun = undefined;
    db = knex({
      client: 'better-sqlite3',
      connection: { filename },
      useNullAsDefault: true,
      pool: {
        min: 1,
        max: 1,
        afterCreate(conn: RawDatabase, done: (err: Error | null, conn: RawDatabase) => void) {
          conn.pragma('journal_mode = WAL');
          const prepare = conn.prepare.bind(conn);
          conn.prepare = (text: string) => {
            const stmt = prepare(text);
            const run = stmt.run.bind(stmt);
            // The real statement object keeps `reader`, `get`, `all`...; only `run` is watched.
            stmt.run = (...params: unknown[]) => {
              if (failNext === text) {
                failNext = undefined;
                throw new Error('disk I/O error');
              }
              const result = run(...params);
              // The writer's busy_timeout switches (it never lets SQLite wait) are not under test here.
              if (!text.startsWith('PRAGMA busy_timeout')) log.push(text);
              afterRun?.(text);
              return result;
            };
            return stmt;
          };
          done(null, conn);
        },
      },
    });
    await db.schema.createTable('items', (t) => {
      t.increments('id');
      t.string('name').unique();
    });
    // A UNIQUE violation here makes SQLite roll the whole transaction back (it abandons it).
    await db.raw('create table strict_items (id integer primary key autoincrement, name varchar(255) unique on conflict rollback)');
    sql = new Sql(db, resolveSchema({}));
    reader = new Database(filename, { readonly: true });
    log.length = 0;
  });

  afterEach(async () => {
    reader.close();
    await db.destroy();
    rmSync(dir, { recursive: true, force: true });
  });

  it('runs the writes of one tick in one BEGIN IMMEDIATE … COMMIT', async () => {
    const names = Array.from({ length: 10 }, (_, i) => `n${i}`);
    const ids = await Promise.all(names.map((n) => insert(n)));
    expect(new Set(ids).size).toBe(10);
    for (const id of ids) expect(Number.isInteger(id) && id > 0).toBe(true);
    expect(count('BEGIN IMMEDIATE')).toBe(1);
    expect(count('COMMIT')).toBe(1);
    expect(inserts()).toBe(10);
    expect(log[0]).toBe('BEGIN IMMEDIATE');
    expect(log[log.length - 1]).toBe('COMMIT');
    expect(committed()).toEqual(names);
    // Each promise got its own row's id.
    for (const [i, id] of ids.entries()) expect(await byName(names[i])).toEqual({ id, name: names[i] });
  });

  it('settles a write only after its COMMIT; until then the row is not visible to other connections', async () => {
    const seenAfterInsertRan: string[][] = [];
    afterRun = (text) => {
      if (/^insert into `items`/.test(text)) seenAfterInsertRan.push(committed());
    };
    const p = insert('a');
    // Issued, not yet committed.
    expect(committed()).toEqual([]);
    const atResolution = await p.then((id) => ({ id, log: [...log], rows: committed() }));
    // The statement had run inside the open group while the row was still invisible outside it.
    expect(seenAfterInsertRan).toEqual([[]]);
    expect(atResolution.log).toEqual(['BEGIN IMMEDIATE', expect.stringMatching(/^insert into `items`/), 'COMMIT']);
    expect(atResolution.rows).toEqual(['a']);
    expect(atResolution.id).toBe(1);
  });

  it('commits the writes of different ticks in different groups', async () => {
    await insert('a');
    await insert('b');
    expect(control()).toEqual(['BEGIN IMMEDIATE', 'COMMIT', 'BEGIN IMMEDIATE', 'COMMIT']);
    expect(log.filter((s) => !CONTROL.includes(s))).toHaveLength(2);
    expect(committed()).toEqual(['a', 'b']);
  });

  it('groups updates (changes) with inserts and reports the rows changed', async () => {
    await insert('a');
    log.length = 0;
    const [renamed, missing, id] = await Promise.all([
      sql.changes(RENAME[0], RENAME[1], ['a', 'z']),
      sql.changes(RENAME[0], RENAME[1], ['nope', 'y']),
      insert('b'),
    ]);
    expect([renamed, missing, id]).toEqual([1, 0, 2]);
    expect(control()).toEqual(['BEGIN IMMEDIATE', 'COMMIT']);
    expect(committed()).toEqual(['z', 'b']);
  });

  it('rejects only the member whose statement fails; the rest of the group commits', async () => {
    await insert('dup');
    log.length = 0;
    const [a, dup, b] = [insert('a'), insert('dup'), insert('b')];
    const results = await Promise.all([a, failure(dup), b]);
    expect(results[1]).toMatch(/UNIQUE constraint failed: items\.name/);
    expect(typeof results[0]).toBe('number');
    expect(typeof results[2]).toBe('number');
    expect(control()).toEqual(['BEGIN IMMEDIATE', 'COMMIT']);
    expect(committed()).toEqual(['dup', 'a', 'b']);
  });

  it('runs an explicit transaction as a savepoint of the group: its failure undoes its own writes only', async () => {
    let innerId: number | undefined;
    const a = insert('a');
    const trx = sql.transaction(async (t) => {
      innerId = await insert('in-trx', t);
      // The transaction sees its own write.
      expect(await byName('in-trx', t)).toEqual({ id: innerId, name: 'in-trx' });
      throw new Error('boom');
    });
    const b = insert('b');
    const [ra, rtrx, rb] = await Promise.all([a, failure(trx), b]);
    expect(rtrx).toBe('boom');
    expect(typeof innerId).toBe('number');
    expect(typeof ra).toBe('number');
    expect(typeof rb).toBe('number');
    expect(control()).toEqual(['BEGIN IMMEDIATE', 'SAVEPOINT eof_transaction', 'ROLLBACK TO eof_transaction', 'RELEASE eof_transaction', 'COMMIT']);
    expect(inserts()).toBe(3);
    expect(committed()).toEqual(['a', 'b']);
    expect(await byName('in-trx')).toBeUndefined();
  });

  it('holds other reads and writes while a transaction awaits a macrotask, so nobody sees its intermediate state', async () => {
    const events: string[] = [];
    let entered!: () => void;
    const inside = new Promise<void>((resolve) => (entered = resolve));
    const trx = sql.transaction(async (t) => {
      const first = await insert('t1', t);
      entered();
      await sleep(20);
      const second = await insert('t2', t);
      events.push('fn done');
      return [first, second];
    });
    await inside;
    const read = byName('t1').then((row) => {
      events.push('read resolved');
      return { row, log: [...log] };
    });
    const plain = insert('p').then((id) => {
      events.push('insert resolved');
      return id;
    });
    await sleep(5);
    // A macrotask later, both are still waiting for the transaction.
    expect(events).toEqual([]);
    expect(inserts()).toBe(1);
    const [[first, second], r, plainId] = await Promise.all([trx, read, plain]);
    expect(events.indexOf('fn done')).toBe(0);
    expect(events).toContain('read resolved');
    expect(events).toContain('insert resolved');
    // The read ran once the savepoint was released, and saw the transaction's row.
    expect(r.row).toEqual({ id: first, name: 't1' });
    expect(r.log).toContain('RELEASE eof_transaction');
    expect(second).toBeGreaterThan(first);
    expect(plainId).toBeGreaterThan(second);
    // The transaction's group was due during the wait: it committed on release, the plain insert got a new group.
    expect(control()).toEqual(['BEGIN IMMEDIATE', 'SAVEPOINT eof_transaction', 'RELEASE eof_transaction', 'COMMIT', 'BEGIN IMMEDIATE', 'COMMIT']);
    expect(committed()).toEqual(['t1', 't2', 'p']);
  });

  it('resolves a successful transaction only after the group COMMIT', async () => {
    const p = sql.transaction(async (t) => [await insert('x', t), await insert('y', t)]);
    const seenInside: string[][] = [];
    afterRun = (text) => {
      if (text === 'RELEASE eof_transaction') seenInside.push(committed());
    };
    const at = await p.then((ids) => ({ ids, log: [...log], rows: committed() }));
    expect(at.ids).toEqual([1, 2]);
    expect(at.log).toEqual([
      'BEGIN IMMEDIATE',
      'SAVEPOINT eof_transaction',
      expect.stringMatching(/^insert into `items`/),
      expect.stringMatching(/^insert into `items`/),
      'RELEASE eof_transaction',
      'COMMIT',
    ]);
    // Released but not yet committed: still invisible outside.
    expect(seenInside).toEqual([[]]);
    expect(at.rows).toEqual(['x', 'y']);
  });

  it('rejects every member and keeps nothing when the COMMIT fails; the next write opens a new group', async () => {
    failNext = 'COMMIT';
    const results = await Promise.all(['a', 'b', 'c'].map((n) => failure(insert(n))));
    expect(results).toEqual(['disk I/O error', 'disk I/O error', 'disk I/O error']);
    expect(control()).toEqual(['BEGIN IMMEDIATE', 'ROLLBACK']);
    expect(inserts()).toBe(3);
    expect(committed()).toEqual([]);

    const id = await insert('after');
    expect(typeof id).toBe('number');
    expect(control()).toEqual(['BEGIN IMMEDIATE', 'ROLLBACK', 'BEGIN IMMEDIATE', 'COMMIT']);
    expect(committed()).toEqual(['after']);
    expect(await byName('a')).toBeUndefined();
  });

  it('rolls the whole group back and rejects every member when a failed transaction cannot roll back to its savepoint: no half-written row', async () => {
    failNext = 'ROLLBACK TO eof_transaction';
    const a = insert('a');
    const trx = sql.transaction(async (t) => {
      await insert('in-trx', t);
      throw new Error('boom');
    });
    // Waits for the transaction, then opens a group of its own.
    const b = insert('b');
    const [ra, rtrx, rb] = await Promise.all([failure(a), failure(trx), b]);
    expect([ra, rtrx]).toEqual(['disk I/O error', 'disk I/O error']);
    expect(typeof rb).toBe('number');
    expect(control()).toEqual(['BEGIN IMMEDIATE', 'SAVEPOINT eof_transaction', 'ROLLBACK', 'BEGIN IMMEDIATE', 'COMMIT']);
    expect(committed()).toEqual(['b']);
    expect(await byName('in-trx')).toBeUndefined();
  });

  it('rejects a transaction that joined a group whose COMMIT fails', async () => {
    failNext = 'COMMIT';
    const [a, trx] = await Promise.all([failure(insert('a')), failure(sql.transaction(async (t) => insert('t', t)))]);
    expect([a, trx]).toEqual(['disk I/O error', 'disk I/O error']);
    expect(committed()).toEqual([]);
  });

  it('rejects every member when SQLite abandons the group transaction after a failed statement', async () => {
    await sql.insert(STRICT_INSERT[0], STRICT_INSERT[1], ['taken'], 'id');
    log.length = 0;
    const strict = (name: string) => sql.insert(STRICT_INSERT[0], STRICT_INSERT[1], [name], 'id');
    const [a, b, conflict] = await Promise.all([failure(insert('a')), failure(strict('b')), failure(strict('taken'))]);
    expect(conflict).toMatch(/UNIQUE constraint failed: strict_items\.name/);
    // The members that ran before were rolled back with the transaction: they fail too.
    expect([a, b]).toEqual([conflict, conflict]);
    expect(count('COMMIT')).toBe(0);
    expect(committed()).toEqual([]);
    expect(reader.prepare('select name from strict_items').all()).toEqual([{ name: 'taken' }]);
    // The writer recovers.
    await insert('after');
    expect(committed()).toEqual(['after']);
  });

  it('rejects the whole group when a statement of an explicit transaction makes SQLite abandon it', async () => {
    await sql.insert(STRICT_INSERT[0], STRICT_INSERT[1], ['taken'], 'id');
    log.length = 0;
    const a = insert('a');
    const trx = sql.transaction(async (t) => {
      await insert('t', t);
      return t.insert(STRICT_INSERT[0], STRICT_INSERT[1], ['taken'], 'id');
    });
    const b = insert('b');
    const [ra, rtrx, rb] = await Promise.all([failure(a), failure(trx), failure(b)]);
    expect(rtrx).toMatch(/UNIQUE constraint failed: strict_items\.name/);
    expect(ra).toBe(rtrx);
    // `b` was waiting for the transaction: it runs in a new group and commits.
    expect(rb).toBeUndefined();
    expect(control()).toEqual(['BEGIN IMMEDIATE', 'SAVEPOINT eof_transaction', 'BEGIN IMMEDIATE', 'COMMIT']);
    expect(committed()).toEqual(['b']);
  });

  it("lets the host's own knex queries on the same instance wait for the group instead of landing inside it", async () => {
    let groupOpen!: () => void;
    const opened = new Promise<void>((resolve) => (groupOpen = resolve));
    afterRun = (text) => {
      if (/^insert into `items`/.test(text)) groupOpen();
    };
    // Issued in the same tick.
    const w1 = insert('w1');
    const host1 = db.transaction(async (trx) => trx('items').insert({ name: 'host1' }));
    // Issued while the group is known to be open (its first statement has run, no COMMIT yet).
    await opened;
    expect(count('COMMIT')).toBe(0);
    const w2 = insert('w2');
    const host2 = db.transaction(async (trx) => trx('items').insert({ name: 'host2' }));
    const host3 = db('items').insert({ name: 'host3' });
    const results = await Promise.all([failure(w1), failure(host1), failure(w2), failure(host2), failure(host3)]);
    expect(results).toEqual([undefined, undefined, undefined, undefined, undefined]);
    expect(committed().sort()).toEqual(['host1', 'host2', 'host3', 'w1', 'w2']);
    // No host statement ran between the group's BEGIN IMMEDIATE and its COMMIT.
    const begin = log.indexOf('BEGIN IMMEDIATE');
    const commit = log.indexOf('COMMIT');
    expect(begin).toBeGreaterThanOrEqual(0);
    expect(commit).toBeGreaterThan(begin);
    expect(log.slice(begin + 1, commit)).toEqual([expect.stringMatching(/^insert into `items`/), expect.stringMatching(/^insert into `items`/)]);
    expect(log.filter((s) => s === 'BEGIN;')).toHaveLength(2);
  });

  it('reads committed data outside a group from the idle connection, without a checkout', async () => {
    await db('items').insert([{ name: 'a' }, { name: 'b' }]);
    log.length = 0;
    const acquire = jest.spyOn(db.client as { acquireConnection(): Promise<unknown> }, 'acquireConnection');
    expect(await byName('b')).toEqual({ id: 2, name: 'b' });
    expect(await byName('missing')).toBeUndefined();
    expect(acquire).not.toHaveBeenCalled();
    acquire.mockRestore();
    expect(control()).toEqual([]);
  });

  it('reads on the open group connection without waiting for its COMMIT', async () => {
    const w = insert('a');
    const r = byName('a').then((row) => ({ row, log: [...log] }));
    const [id, read] = await Promise.all([w, r]);
    expect(read.row).toEqual({ id, name: 'a' });
    expect(read.log).toContain('BEGIN IMMEDIATE');
    expect(read.log).not.toContain('COMMIT');
    expect(control()).toEqual(['BEGIN IMMEDIATE', 'COMMIT']);
  });
});
