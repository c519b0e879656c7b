/**
 * How the store reaches the database. Queries are built with knex; on better-sqlite3 the hot
 * ones are compiled by knex once per schema and run as prepared statements on the driver's
 * connection, because knex's per-query pipeline costs ~100 µs where the statement costs ~5 µs.
 * Transactions on better-sqlite3 pin one pooled connection (BEGIN IMMEDIATE … COMMIT) and every
 * query inside runs on it; other databases use knex transactions.
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
    this.sqlite = isBetterSqlite(db);
  }

  get inTransaction(): boolean {
    return this.pinned !== undefined || this.db.isTransaction === true;
  }

  /** A query builder on this store's connection (the pinned one inside a SQLite transaction). */
  table(name: string): Knex.QueryBuilder {
    const b = this.db(name);
    return this.pinned ? b.connection(this.pinned) : b;
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
    return this.withStatement(key, one, params, (stmt, binds) => stmt.get(...binds) as Record<string, unknown> | undefined);
  }

  /** An update or delete: the number of rows changed. */
  async changes(key: string, build: Build, params: readonly unknown[]): Promise<number> {
    if (!this.sqlite) return Number(await build((t) => this.table(t), (i) => params[i]));
    return this.withStatement(key, build, params, (stmt, binds) => stmt.run(...binds).changes);
  }

  /** An insert of one row: its id (`idColumn`). */
  async insert(key: string, build: Build, params: readonly unknown[], idColumn: string): Promise<number> {
    if (!this.sqlite) {
      const [row] = (await build((t) => this.table(t), (i) => params[i]).returning(idColumn)) as unknown[];
      return Number(typeof row === 'object' && row !== null ? (row as Record<string, unknown>)[idColumn] : row);
    }
    return this.withStatement(key, build, params, (stmt, binds) => Number(stmt.run(...binds).lastInsertRowid));
  }

  /** Runs `fn` in one transaction; nested calls join the current one. */
  async transaction<T>(fn: (sql: Sql) => Promise<T>): Promise<T> {
    if (this.inTransaction) return fn(this);
    if (!this.sqlite) return (this.db as Knex).transaction((trx) => fn(new Sql(trx, this.schema)));
    const client = this.db.client as PoolClient;
    const conn = (await client.acquireConnection()) as SqliteConnection;
    try {
      // IMMEDIATE takes the write lock now, so two processes never deadlock upgrading a read lock.
      prepared(conn, 'BEGIN IMMEDIATE').run();
      try {
        const result = await fn(new Sql(this.db, this.schema, conn));
        prepared(conn, 'COMMIT').run();
        return result;
      } catch (e) {
        if (conn.inTransaction) prepared(conn, 'ROLLBACK').run();
        throw e;
      }
    } finally {
      await client.releaseConnection(conn);
    }
  }

  private async withStatement<R>(key: string, build: Build, params: readonly unknown[], exec: (stmt: SqliteStatement, binds: unknown[]) => R): Promise<R> {
    const compiled = this.compile(key, build);
    const binds = compiled.slots.map((s) => toSqlite('param' in s ? params[s.param] : s.constant));
    if (this.pinned) return exec(prepared(this.pinned, compiled.sql), binds);
    const client = this.db.client as PoolClient;
    // better-sqlite3 runs a statement synchronously, so an idle pooled connection can serve it
    // without a checkout (which costs ~60 µs of pool bookkeeping): nothing else can use it meanwhile.
    const idle = client.pool?.free?.[0]?.resource as SqliteConnection | undefined;
    if (idle) return exec(prepared(idle, compiled.sql), binds);
    const conn = (await client.acquireConnection()) as SqliteConnection;
    try {
      return exec(prepared(conn, compiled.sql), binds);
    } finally {
      await client.releaseConnection(conn);
    }
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

function prepared(conn: SqliteConnection, sql: string): SqliteStatement {
  let byConn = statements.get(conn);
  if (!byConn) statements.set(conn, (byConn = new Map()));
  let stmt = byConn.get(sql);
  if (!stmt) byConn.set(sql, (stmt = conn.prepare(sql)));
  return stmt;
}
