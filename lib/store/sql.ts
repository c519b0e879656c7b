/**
 * How the store reaches the database. Queries are built with knex; on better-sqlite3 the hot
 * ones are compiled by knex once per schema and run as prepared statements on the driver's
 * connection, because knex's per-query pipeline costs ~100 µs where the statement costs ~5 µs.
 *
 * On better-sqlite3, writes are group-committed (see `SqliteWriter`): every write of one turn of
 * the event loop joins one SQLite transaction, committed in the next check phase, and each
 * write's promise settles only once that commit has returned. A response is therefore never
 * sent before its rows are committed, and the cost of a commit (the WAL append, the fsync under
 * synchronous=FULL, the checkpoints) is shared by the requests that arrived together.
 * Explicit transactions run as savepoints inside the group, one at a time; other databases use
 * knex transactions.
 */
import type { Knex } from 'knex';
import type { Schema } from './schema';

/** The parts of a better-sqlite3 connection used here. */
interface SqliteConnection {
  prepare(sql: string): SqliteStatement;
  readonly inTransaction: boolean;
}
interface SqliteStatement {
  readonly reader: boolean;
  get(...params: unknown[]): unknown;
  run(...params: unknown[]): { changes: number; lastInsertRowid: number | bigint };
  raw(on: boolean): SqliteStatement;
  columns(): { name: string }[];
}
interface PoolClient {
  /** knex's tarn pool: its idle connections are `free[i].resource`. */
  pool?: { free?: { resource: unknown }[] };
  acquireConnection(): Promise<unknown>;
  releaseConnection(conn: unknown): Promise<unknown> | unknown;
  config: { client?: unknown };
  driverName?: string;
}

/** A query under construction: `q(table)` starts one, `p(i)` stands for the i-th parameter. */
export type Build = (q: (table: string) => Knex.QueryBuilder, p: (i: number) => any) => Knex.QueryBuilder;

interface Compiled {
  sql: string;
  /** For each binding: the parameter index it takes, or the constant knex put there. */
  slots: ({ param: number } | { constant: unknown })[];
}

const SENTINEL = '\u0000eof-param:';
const compiledBySchema = new WeakMap<Schema, Map<string, Compiled>>();
const statements = new WeakMap<object, Map<string, SqliteStatement>>();
/** The column names of a select run in raw (array) mode. */
const columnNames = new WeakMap<SqliteStatement, string[]>();

function isBetterSqlite(db: Knex | Knex.Transaction): boolean {
  const client = db.client as PoolClient;
  return client.driverName === 'better-sqlite3' || client.config?.client === 'better-sqlite3';
}

/** better-sqlite3 binds numbers, strings, bigints, buffers and null only. */
function toSqlite(v: unknown): unknown {
  if (v instanceof Date) return v.getTime();
  if (typeof v === 'boolean') return v ? 1 : 0;
  if (v === undefined) return null;
  return v;
}

export class Sql {
  private readonly sqlite: boolean;

  constructor(
    readonly db: Knex | Knex.Transaction,
    readonly schema: Schema,
    private readonly pinned?: SqliteConnection,
  ) {
    // A knex transaction handed in from outside keeps its queries on knex's own connection.
    this.sqlite = isBetterSqlite(db) && db.isTransaction !== true;
  }

  get inTransaction(): boolean {
    return this.pinned !== undefined || this.db.isTransaction === true;
  }

  /** A query builder on this store's connection (the pinned one inside a SQLite transaction). */
  table(name: string): Knex.QueryBuilder {
    const b = this.db(name);
    if (!this.pinned) return b;
    assertOpen(this.pinned);
    return b.connection(this.pinned);
  }

  ref(name: string): Knex.Ref<string, { [K in string]: string }> {
    return this.db.ref(name);
  }

  /**
   * The first row of a select. The limit is written into the SQL rather than bound: SQLite
   * re-plans a statement whose LIMIT is a parameter (~40 µs instead of ~5 µs per lookup).
   */
  async first(key: string, build: Build, params: readonly unknown[]): Promise<Record<string, unknown> | undefined> {
    const one: Build = (q, p) => build(q, p).limit(1, { skipBinding: true });
    if (!this.sqlite) return ((await one((t) => this.table(t), (i) => params[i])) as Record<string, unknown>[])[0];
    return this.withStatement(key, one, params, false, (stmt, binds) => firstRow(stmt, binds));
  }

  /** An update or delete: the number of rows changed. */
  async changes(key: string, build: Build, params: readonly unknown[]): Promise<number> {
    if (!this.sqlite) return Number(await build((t) => this.table(t), (i) => params[i]));
    return this.withStatement(key, build, params, true, (stmt, binds) => stmt.run(...binds).changes);
  }

  /** An insert of one row: its id (`idColumn`). */
  async insert(key: string, build: Build, params: readonly unknown[], idColumn: string): Promise<number> {
    if (!this.sqlite) {
      const [row] = (await build((t) => this.table(t), (i) => params[i]).returning(idColumn)) as unknown[];
      return Number(typeof row === 'object' && row !== null ? (row as Record<string, unknown>)[idColumn] : row);
    }
    return this.withStatement(key, build, params, true, (stmt, binds) => Number(stmt.run(...binds).lastInsertRowid));
  }

  /** Runs `fn` in one transaction; nested calls join the current one. */
  async transaction<T>(fn: (sql: Sql) => Promise<T>): Promise<T> {
    if (this.inTransaction) return fn(this);
    if (!this.sqlite) return (this.db as Knex).transaction((trx) => fn(new Sql(trx, this.schema)));
    return writerFor(this.db.client as PoolClient).transaction((conn) => fn(new Sql(this.db, this.schema, conn)));
  }

  private async withStatement<R>(key: string, build: Build, params: readonly unknown[], write: boolean, exec: (stmt: SqliteStatement, binds: unknown[]) => R): Promise<R> {
    const compiled = this.compile(key, build);
    const binds = compiled.slots.map((s) => toSqlite('param' in s ? params[s.param] : s.constant));
    if (this.pinned) {
      assertOpen(this.pinned);
      return exec(prepared(this.pinned, compiled.sql), binds);
    }
    const writer = writerFor(this.db.client as PoolClient);
    const run = (conn: SqliteConnection) => exec(prepared(conn, compiled.sql), binds);
    return write ? writer.write(run) : writer.read(run);
  }

  /** knex builds the SQL once per schema and key; parameters are marked and later substituted. */
  private compile(key: string, build: Build): Compiled {
    let bySchema = compiledBySchema.get(this.schema);
    if (!bySchema) compiledBySchema.set(this.schema, (bySchema = new Map()));
    let c = bySchema.get(key);
    if (!c) {
      const q = build((t) => this.db(t), (i) => `${SENTINEL}${i}`).toSQL();
      c = {
        sql: q.sql,
        slots: q.bindings.map((b) => (typeof b === 'string' && b.startsWith(SENTINEL) ? { param: Number(b.slice(SENTINEL.length)) } : { constant: b })),
      };
      bySchema.set(key, c);
    }
    return c;
  }
}

/**
 * A select's first row. better-sqlite3 builds a row object property by property, which on a wide
 * table costs more than the lookup itself (~16 µs against ~8 µs as an array), so the statement
 * returns arrays and the row is assembled here from its column names.
 */
function firstRow(stmt: SqliteStatement, binds: unknown[]): Record<string, unknown> | undefined {
  let names = columnNames.get(stmt);
  if (!names) {
    stmt.raw(true);
    columnNames.set(stmt, (names = stmt.columns().map((c) => c.name)));
  }
  const values = stmt.get(...binds) as unknown[] | undefined;
  if (!values) return undefined;
  const row: Record<string, unknown> = {};
  for (let i = 0; i < names.length; i++) row[names[i]] = values[i];
  return row;
}

/**
 * SQLite abandons a transaction on some errors (a full disk, ON CONFLICT ROLLBACK); a statement
 * that follows in the same transaction must fail rather than run, and commit, on its own.
 */
function assertOpen(conn: SqliteConnection): void {
  if (!conn.inTransaction) throw new Error('The SQLite transaction was rolled back by an earlier error');
}

function prepared(conn: SqliteConnection, sql: string): SqliteStatement {
  let byConn = statements.get(conn);
  if (!byConn) statements.set(conn, (byConn = new Map()));
  let stmt = byConn.get(sql);
  if (!stmt) byConn.set(sql, (stmt = conn.prepare(sql)));
  return stmt;
}

/** An open group: one SQLite transaction on a connection checked out of knex's pool. */
interface Group {
  readonly conn: SqliteConnection;
  /** Settles once the group's COMMIT has returned (or the group has been rolled back). */
  readonly committed: Promise<void>;
  resolve(): void;
  reject(e: unknown): void;
  /** The next check phase has come: no new member may join, the group commits once free. */
  due: boolean;
}

/**
 * Group commit for one better-sqlite3 knex client. A write outside an explicit transaction runs
 * at once inside the open group (opening one, BEGIN IMMEDIATE, if none is open) and resolves when
 * the group commits, in the next check phase (`setImmediate`). An explicit transaction takes the
 * group for itself across its awaits and runs as a SAVEPOINT, so its failure rolls back its own
 * writes only; meanwhile other statements wait, so nobody reads its intermediate state. Reads
 * outside a transaction run at once, on the group's connection while a group is open: they may
 * see writes that are about to be committed, never writes that could still be rolled back alone.
 *
 * The group's connection is checked out of knex's pool while it is open, so a host's own knex
 * queries on the same instance wait for the commit instead of landing inside the group. If the
 * COMMIT fails, or SQLite abandons the transaction, every member's promise rejects.
 */
class SqliteWriter {
  private group?: Group;
  private opening?: Promise<void>;
  /** An explicit transaction holds the open group. */
  private locked = false;
  /** Woken whenever the lock is released or a group ends. */
  private waiters: (() => void)[] = [];

  constructor(private readonly client: PoolClient) {}

  async read<R>(run: (conn: SqliteConnection) => R): Promise<R> {
    while (this.locked || this.opening) await (this.opening?.catch(() => undefined) ?? this.changed());
    if (this.group) return run(this.group.conn);
    // better-sqlite3 runs a statement synchronously, so an idle pooled connection can serve it
    // without a checkout (which costs ~60 µs of pool bookkeeping): nothing else can use it meanwhile.
    const idle = this.client.pool?.free?.[0]?.resource as SqliteConnection | undefined;
    if (idle) return run(idle);
    const conn = (await this.client.acquireConnection()) as SqliteConnection;
    try {
      return run(conn);
    } finally {
      await this.client.releaseConnection(conn);
    }
  }

  async write<R>(run: (conn: SqliteConnection) => R): Promise<R> {
    // The statement runs in the same synchronous step that found the group open and free.
    const [group, result] = await this.join((g) => {
      try {
        return run(g.conn);
      } catch (e) {
        // A failed statement undoes itself; the group goes on unless SQLite abandoned the transaction.
        this.checkAlive(g, e);
        throw e;
      }
    });
    await group.committed;
    return result;
  }

  async transaction<T>(fn: (conn: SqliteConnection) => Promise<T>): Promise<T> {
    // The lock is taken in the same synchronous step that found the group open and free.
    const [group] = await this.join((g) => {
      prepared(g.conn, 'SAVEPOINT eof_transaction').run();
      this.locked = true;
    });
    const { conn } = group;
    let result: T;
    try {
      result = await fn(conn);
      prepared(conn, 'RELEASE eof_transaction').run();
    } catch (e) {
      if (this.group === group && conn.inTransaction) {
        prepared(conn, 'ROLLBACK TO eof_transaction').run();
        prepared(conn, 'RELEASE eof_transaction').run();
      }
      this.checkAlive(group, e);
      throw e;
    } finally {
      this.locked = false;
      if (group.due) this.commit(group);
      this.wake();
    }
    await group.committed;
    return result;
  }

  /**
   * Runs `use` on the open group as soon as it accepts members (no transaction holds it and its
   * commit is not due), opening a group if none is open. `use` runs synchronously right after
   * that check, so nothing can slip in between.
   */
  private async join<R>(use: (group: Group) => R): Promise<[Group, R]> {
    for (;;) {
      if (this.locked || this.opening) await (this.opening ?? this.changed());
      else if (this.group?.due) await this.changed();
      else if (this.group) return [this.group, use(this.group)];
      else await (this.opening = this.open());
    }
  }

  private async open(): Promise<void> {
    try {
      const conn = (await this.client.acquireConnection()) as SqliteConnection;
      try {
        // IMMEDIATE takes the write lock now, so two processes never deadlock upgrading a read lock.
        prepared(conn, 'BEGIN IMMEDIATE').run();
      } catch (e) {
        await this.client.releaseConnection(conn);
        throw e;
      }
      let resolve!: () => void;
      let reject!: (e: unknown) => void;
      const committed = new Promise<void>((res, rej) => {
        resolve = res;
        reject = rej;
      });
      // Members await it; a group whose members all failed has no one listening.
      committed.catch(() => undefined);
      const group: Group = { conn, committed, resolve, reject, due: false };
      this.group = group;
      setImmediate(() => {
        group.due = true;
        if (!this.locked) this.commit(group);
      });
    } finally {
      this.opening = undefined;
      this.wake();
    }
  }

  private commit(group: Group): void {
    if (this.group !== group) return;
    const { conn } = group;
    try {
      assertOpen(conn);
      prepared(conn, 'COMMIT').run();
      this.end(group);
      group.resolve();
    } catch (e) {
      if (conn.inTransaction) prepared(conn, 'ROLLBACK').run();
      this.end(group);
      group.reject(e);
    }
  }

  /** After a failed statement: if SQLite abandoned the transaction, every member fails. */
  private checkAlive(group: Group, e: unknown): void {
    if (this.group !== group || group.conn.inTransaction) return;
    this.end(group);
    group.reject(e);
  }

  private end(group: Group): void {
    this.group = undefined;
    void Promise.resolve(this.client.releaseConnection(group.conn)).catch(() => undefined);
    this.wake();
  }

  private changed(): Promise<void> {
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  private wake(): void {
    const waiters = this.waiters;
    this.waiters = [];
    for (const w of waiters) w();
  }
}

const writers = new WeakMap<PoolClient, SqliteWriter>();

function writerFor(client: PoolClient): SqliteWriter {
  let w = writers.get(client);
  if (!w) writers.set(client, (w = new SqliteWriter(client)));
  return w;
}
