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
 *
 * better-sqlite3 waits for a lock synchronously (busy_timeout, 5 s unless set), which would stop
 * the whole process while another one writes. The writer therefore never lets SQLite wait: it
 * sets busy_timeout to 0 on its connection while it runs the store's statements, and retries a
 * busy lock with timers instead, for at most `oauthSqliteLockTimeout`. Every statement of the
 * store goes through it: `Sql.table()` refuses to build a query that would run past it.
 */
import type { Knex } from 'knex';
import type { Schema } from './schema';
import { OAuthConfigurationError } from '../options';

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
  pool?: { free?: { resource: unknown }[]; max?: number };
  acquireConnection(): Promise<unknown>;
  releaseConnection(conn: unknown): Promise<unknown> | unknown;
  config: { client?: unknown; pool?: { max?: number } };
  dialect?: string;
  driverName?: string;
}

/** How long, by default, a write waits for a write lock another process holds (ms). */
export const DEFAULT_SQLITE_LOCK_TIMEOUT = 5000;
/** The first wait before trying a busy lock again, and the longest (ms); each wait doubles. */
const FIRST_RETRY_DELAY = 2;
const MAX_RETRY_DELAY = 100;

/**
 * The write lock stayed with another connection for the whole wait. Its `code` is SQLITE_BUSY,
 * so the error layer answers `503 temporarily_unavailable` with Retry-After.
 */
export class SqliteBusyError extends Error {
  readonly code = 'SQLITE_BUSY';
  constructor(waited: number, cause: unknown) {
    super(`The SQLite database stayed locked by another connection for ${waited} ms`, { cause });
    this.name = 'SqliteBusyError';
  }
}

/** Another connection or process holds a lock (SQLITE_BUSY, SQLITE_LOCKED and their extended codes). */
function isBusy(e: unknown): boolean {
  const code = typeof e === 'object' && e !== null ? (e as { code?: unknown }).code : undefined;
  return typeof code === 'string' && (code.startsWith('SQLITE_BUSY') || code.startsWith('SQLITE_LOCKED'));
}

/** Spreads the retries of several waiting processes apart: between half and all of `ms`. */
const jitter = (ms: number): number => ms / 2 + (Math.random() * ms) / 2;
const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Refuses a SQLite knex instance whose pool has more than one connection. better-sqlite3 runs
 * every statement synchronously, so a second connection adds no concurrency, and SQLite lets
 * one connection write at a time: a write on a second connection of the same process contends
 * for the lock with the store's writer (or, on `:memory:`, goes to another database).
 */
export function checkSqlitePool(db: Knex | Knex.Transaction): void {
  const client = db.client as PoolClient;
  if (client.dialect !== 'sqlite3') return;
  const max = client.pool?.max ?? client.config.pool?.max ?? 1;
  if (max <= 1) return;
  throw new OAuthConfigurationError(
    `oauth(): a SQLite knex instance must have one pooled connection, not ${max}. SQLite lets one connection write at a time and ` +
      "better-sqlite3 runs each statement synchronously, so more connections add no concurrency; their writes would wait on the store's " +
      "own (and ':memory:' is a separate database on each connection). Set pool: { min: 1, max: 1 }, knex's default for SQLite.",
  );
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
    /** How long a better-sqlite3 write waits for a lock another process holds (ms). */
    private readonly lockTimeout = DEFAULT_SQLITE_LOCK_TIMEOUT,
  ) {
    // A knex transaction handed in from outside keeps its queries on knex's own connection.
    this.sqlite = isBetterSqlite(db) && db.isTransaction !== true;
  }

  get inTransaction(): boolean {
    return this.pinned !== undefined || this.db.isTransaction === true;
  }

  /**
   * A query builder on this store's connection (the pinned one inside a SQLite transaction).
   * On better-sqlite3 outside a transaction it throws: such a query would run on knex's pool,
   * past the writer, and wait inside SQLite (the host's busy_timeout) for a lock another process
   * holds, freezing the event loop. Store methods use `first`, `changes`, `insert` and `added`.
   */
  table(name: string): Knex.QueryBuilder {
    if (this.sqlite && !this.pinned) {
      throw new Error(`Sql.table('${name}') outside a transaction would bypass the SQLite writer: use first(), changes(), insert() or added()`);
    }
    const b = this.db(name);
    if (!this.pinned) return b;
    assertOpen(this.pinned);
    return b.connection(this.pinned);
  }

  /**
   * A knex handle for host code (hooks and methods get it as `ctx.db`) on this store's connection:
   * inside a transaction, the transaction itself (on better-sqlite3, a knex whose every query runs
   * on the group's pinned connection, so it never waits for the pool the transaction holds);
   * outside one, the host's knex. Once `ended()` says the transaction is over, every query made
   * through the handle throws rather than run outside it.
   */
  knexHandle(ended: () => boolean): Knex {
    if (!this.inTransaction) return this.db as Knex;
    const check = (): void => {
      if (ended()) throw new Error('ctx.db was used after its transaction ended: keep a query made through ctx.db inside the hook or method that received it, or use your own knex instance');
    };
    if (this.pinned) {
      const conn = this.pinned;
      const bound = (this.db as Knex).withUserParams({});
      const client = bound.client as { acquireConnection(): Promise<unknown>; releaseConnection(conn: unknown): Promise<void> };
      client.acquireConnection = async () => {
        check();
        assertOpen(conn);
        return conn;
      };
      // The connection stays the transaction's: the writer returns it to the pool after COMMIT.
      client.releaseConnection = async () => undefined;
      return bound;
    }
    // A knex transaction: its own client refuses queries once it has completed, with its own
    // message; the check gives the clearer one first.
    const trx = this.db as Knex.Transaction;
    return new Proxy(trx, {
      apply(target, thisArg, args) {
        check();
        return Reflect.apply(target as unknown as (...a: unknown[]) => unknown, thisArg, args);
      },
      get(target, prop, receiver) {
        if (prop === 'raw' || prop === 'schema' || prop === 'queryBuilder' || prop === 'select' || prop === 'insert' || prop === 'from' || prop === 'table') check();
        return Reflect.get(target, prop, receiver);
      },
    });
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

  /**
   * An insert that may add no row (`ON CONFLICT … DO NOTHING`): the number of rows it added.
   * Elsewhere than on better-sqlite3 the rows are counted through `returning(column)`.
   */
  async added(key: string, build: Build, params: readonly unknown[], column: string): Promise<number> {
    if (!this.sqlite) return ((await build((t) => this.table(t), (i) => params[i]).returning(column)) as unknown[]).length;
    return this.withStatement(key, build, params, true, (stmt, binds) => stmt.run(...binds).changes);
  }

  /** Runs `fn` in one transaction; nested calls join the current one. */
  async transaction<T>(fn: (sql: Sql) => Promise<T>): Promise<T> {
    if (this.inTransaction) return fn(this);
    if (!this.sqlite) return (this.db as Knex).transaction((trx) => fn(new Sql(trx, this.schema)));
    return writerFor(this.db.client as PoolClient).transaction((conn) => fn(new Sql(this.db, this.schema, conn)), this.lockTimeout);
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
    return write ? writer.write(run, this.lockTimeout) : writer.read(run, this.lockTimeout);
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
  // The code makes it a 503 like the error that abandoned the transaction (a full disk, a busy database).
  if (!conn.inTransaction) throw Object.assign(new Error('The SQLite transaction was rolled back by an earlier error'), { code: 'SQLITE_ABORT_ROLLBACK' });
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
  /** How long its COMMIT may wait for other processes' readers: the longest of its members' (ms). */
  lockTimeout: number;
  /** While a busy COMMIT is retried: when to give up, and the next wait. */
  commitDeadline?: number;
  commitDelay: number;
}

/** A write waiting for a group to open: it fails once its deadline has passed. */
interface LockWaiter {
  readonly since: number;
  readonly deadline: number;
  resolve(): void;
  reject(e: unknown): void;
}

/**
 * Each connection's own busy_timeout (the host's pragma, or better-sqlite3's 5000 ms), set back
 * whenever the store hands the connection back, with the two prepared pragmas that switch it.
 */
interface BusyTimeout {
  readonly host: number;
  readonly off?: SqliteStatement;
  readonly on?: SqliteStatement;
  /**
   * Whether a read outside a group must switch too. In WAL mode a reader never waits for another
   * process's writer (it reads the last committed snapshot), nor does any reader of an in-memory
   * database (no other process has it), so reads skip the two pragmas (~5 %
   * of a protected request); in rollback-journal mode a reader waits while another process commits.
   */
  readonly reads: boolean;
}
const busyTimeouts = new WeakMap<SqliteConnection, BusyTimeout>();

function busyTimeout(conn: SqliteConnection): BusyTimeout {
  let b = busyTimeouts.get(conn);
  if (!b) {
    const row = prepared(conn, 'PRAGMA busy_timeout').get() as Record<string, unknown>;
    const host = Number(Object.values(row)[0]);
    const mode = String(Object.values(prepared(conn, 'PRAGMA journal_mode').get() as Record<string, unknown>)[0]).toLowerCase();
    // Nothing to switch when the host's is already 0.
    b = host === 0 ? { host, reads: false } : { host, off: conn.prepare('PRAGMA busy_timeout = 0'), on: conn.prepare(`PRAGMA busy_timeout = ${host}`), reads: mode !== 'wal' && mode !== 'memory' };
    busyTimeouts.set(conn, b);
  }
  return b;
}

/** The store's SQLite never waits for a lock: a busy lock fails at once and is retried with timers. */
function takeBusyTimeout(conn: SqliteConnection): void {
  busyTimeout(conn).off?.run();
}

function restoreBusyTimeout(conn: SqliteConnection): void {
  busyTimeouts.get(conn)?.on?.run();
}

/**
 * Group commit for one better-sqlite3 knex client. A write outside an explicit transaction runs
 * at once inside the open group (opening one, BEGIN IMMEDIATE, if none is open) and resolves when
 * the group commits, in the next check phase (`setImmediate`). An explicit transaction takes the
 * group for itself across its awaits and runs as a SAVEPOINT, so its failure rolls back its own
 * writes only; meanwhile other statements wait, so nobody reads its intermediate state. Reads
 * outside a transaction run at once, on the group's connection while a group is open and its
 * COMMIT is not yet due: they may see its members' writes a moment before they are committed
 * (an outright COMMIT failure, an I/O error, would still undo them), never a transaction's
 * intermediate state. Once the COMMIT is due, reads wait for its outcome: a busy COMMIT being
 * retried may end in a rollback (in rollback-journal mode its PENDING lock keeps every other
 * connection from reading anyway). Outside a group a read runs on the idle connection with
 * busy_timeout 0 too: in rollback-journal mode, while another process commits, it is retried on
 * timers like a write, then fails with `SqliteBusyError`.
 *
 * Another process may hold the write lock. BEGIN IMMEDIATE then fails at once (busy_timeout is 0
 * while the writer holds the connection) and is tried again after a timer, 2 ms doubling to 100 ms;
 * between tries the connection is back in the pool, so reads (which WAL never blocks) go on. A
 * write that has waited its `lockTimeout` fails with `SqliteBusyError`. A COMMIT that finds the
 * lock busy (rollback-journal mode: another process is reading) is retried the same way, the
 * transaction kept; if it never succeeds the group rolls back and every member fails. So does a
 * group whose savepoint could not be rolled back: none of a failed transaction's writes is kept.
 *
 * The group's connection is checked out of knex's pool while it is open, so a host's own knex
 * queries on the same instance wait for the commit instead of landing inside the group. If the
 * COMMIT fails, or SQLite abandons the transaction, every member's promise rejects.
 */
class SqliteWriter {
  private group?: Group;
  /** Trying to open a group, from the first attempt until it opens or no write waits for it. */
  private opening?: Promise<void>;
  /** An attempt is under way: the connection is being checked out for BEGIN IMMEDIATE. */
  private acquiring = false;
  /** Writes waiting for the group being opened. */
  private lockWaiters: LockWaiter[] = [];
  /** An explicit transaction holds the open group. */
  private locked = false;
  /** Woken whenever the lock is released, an attempt to open a group ends, or a group ends. */
  private waiters: (() => void)[] = [];

  constructor(private readonly client: PoolClient) {}

  async read<R>(run: (conn: SqliteConnection) => R, lockTimeout: number): Promise<R> {
    let deadline: number | undefined;
    let delay = FIRST_RETRY_DELAY;
    for (;;) {
      // Not while a transaction holds the group (its intermediate state), nor while an attempt to
      // open one has the connection, nor once the group's COMMIT is due: a COMMIT being retried
      // may still roll back, so a read waits for its outcome rather than see its rows.
      while (this.locked || this.acquiring || this.group?.due) await this.changed();
      // The group holds the write lock and busy_timeout 0: its connection never waits.
      if (this.group) return run(this.group.conn);
      const result = await this.readIdle(run);
      if (result.ok) return result.value;
      // In rollback-journal mode a read waits while another process commits: on timers, as writes do.
      const now = Date.now();
      deadline ??= now + lockTimeout;
      if (now >= deadline) throw new SqliteBusyError(lockTimeout, result.busy);
      await sleep(Math.min(jitter(delay), deadline - now));
      delay = Math.min(delay * 2, MAX_RETRY_DELAY);
    }
  }

  /** One try at a read outside a group, with busy_timeout 0: its result, or the busy error. */
  private async readIdle<R>(run: (conn: SqliteConnection) => R): Promise<{ ok: true; value: R } | { ok: false; busy: unknown }> {
    const attempt = (conn: SqliteConnection): { ok: true; value: R } | { ok: false; busy: unknown } => {
      const switches = busyTimeout(conn).reads;
      if (switches) takeBusyTimeout(conn);
      try {
        return { ok: true, value: run(conn) };
      } catch (e) {
        if (isBusy(e)) return { ok: false, busy: e };
        throw e;
      } finally {
        if (switches) restoreBusyTimeout(conn);
      }
    };
    // better-sqlite3 runs a statement synchronously, so an idle pooled connection can serve it
    // without a checkout (which costs ~60 µs of pool bookkeeping): nothing else can use it meanwhile.
    const idle = this.client.pool?.free?.[0]?.resource as SqliteConnection | undefined;
    if (idle) return attempt(idle);
    const conn = (await this.client.acquireConnection()) as SqliteConnection;
    try {
      return attempt(conn);
    } finally {
      await this.client.releaseConnection(conn);
    }
  }

  async write<R>(run: (conn: SqliteConnection) => R, lockTimeout: number): Promise<R> {
    // The statement runs in the same synchronous step that found the group open and free.
    const [group, result] = await this.join((g) => {
      try {
        return run(g.conn);
      } catch (e) {
        // A failed statement undoes itself; the group goes on unless SQLite abandoned the transaction.
        this.checkAlive(g, e);
        throw e;
      }
    }, lockTimeout);
    await group.committed;
    return result;
  }

  async transaction<T>(fn: (conn: SqliteConnection) => Promise<T>, lockTimeout: number): Promise<T> {
    // The lock is taken in the same synchronous step that found the group open and free.
    const [group] = await this.join((g) => {
      prepared(g.conn, 'SAVEPOINT eof_transaction').run();
      this.locked = true;
    }, lockTimeout);
    const { conn } = group;
    let result: T;
    try {
      result = await fn(conn);
      prepared(conn, 'RELEASE eof_transaction').run();
    } catch (e) {
      if (this.group === group && conn.inTransaction) {
        try {
          prepared(conn, 'ROLLBACK TO eof_transaction').run();
          prepared(conn, 'RELEASE eof_transaction').run();
        } catch (rollbackError) {
          // Its writes could not be undone alone: the whole group rolls back, every member fails.
          this.abort(group, rollbackError);
          throw rollbackError;
        }
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
  private async join<R>(use: (group: Group) => R, lockTimeout: number): Promise<[Group, R]> {
    const deadline = Date.now() + lockTimeout;
    for (;;) {
      if (this.locked || this.group?.due) await this.changed();
      else if (this.group) {
        if (lockTimeout > this.group.lockTimeout) this.group.lockTimeout = lockTimeout;
        return [this.group, use(this.group)];
      } else await this.waitForGroup(deadline);
    }
  }

  /** Waits for a group to open, starting the attempts unless they are under way. */
  private waitForGroup(deadline: number): Promise<void> {
    return new Promise((resolve, reject) => {
      this.lockWaiters.push({ since: Date.now(), deadline, resolve, reject });
      this.opening ??= this.open();
    });
  }

  /** Tries to open a group until it opens, fails otherwise than busy, or no write waits any more. */
  private async open(): Promise<void> {
    let delay = FIRST_RETRY_DELAY;
    try {
      for (;;) {
        const busy = await this.attempt();
        if (busy === undefined) return;
        const now = Date.now();
        this.settleLockWaiters((w) => (w.deadline <= now ? new SqliteBusyError(now - w.since, busy) : undefined));
        // Reads held back during the attempt go on, on the idle connection.
        this.wake();
        if (this.lockWaiters.length === 0) return;
        // A loop, not Math.min(...): thousands of writes may wait during a long lock.
        let nextDeadline = Infinity;
        for (const w of this.lockWaiters) if (w.deadline < nextDeadline) nextDeadline = w.deadline;
        await sleep(Math.min(jitter(delay), nextDeadline - now));
        delay = Math.min(delay * 2, MAX_RETRY_DELAY);
      }
    } finally {
      this.opening = undefined;
      this.wake();
    }
  }

  /**
   * One try at opening a group: the busy error, or undefined once the waiting writes have been
   * let in (or failed). They are settled before the reads are woken, so a read that came after
   * a write sees it.
   */
  private async attempt(): Promise<unknown> {
    this.acquiring = true;
    try {
      const busy = await this.begin();
      if (busy === undefined) this.settleLockWaiters();
      return busy;
    } catch (e) {
      this.settleLockWaiters(() => e ?? new Error('Could not open a SQLite transaction'));
      return undefined;
    } finally {
      this.acquiring = false;
    }
  }

  /**
   * Resolves the waiting writes, or rejects those `failure` gives an error for (every one,
   * without `failure`).
   */
  private settleLockWaiters(failure?: (w: LockWaiter) => unknown): void {
    const waiting = this.lockWaiters;
    this.lockWaiters = [];
    for (const w of waiting) {
      const e = failure?.(w);
      if (e === undefined) {
        if (failure) this.lockWaiters.push(w);
        else w.resolve();
      } else w.reject(e);
    }
  }

  /** Opens a group: undefined once it is open, or the busy error if another connection holds the lock. */
  private async begin(): Promise<unknown> {
    const conn = (await this.client.acquireConnection()) as SqliteConnection;
    try {
      takeBusyTimeout(conn);
      // IMMEDIATE takes the write lock now, so two processes never deadlock upgrading a read lock.
      prepared(conn, 'BEGIN IMMEDIATE').run();
    } catch (e) {
      try {
        restoreBusyTimeout(conn);
      } finally {
        await this.client.releaseConnection(conn);
      }
      if (isBusy(e)) return e;
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
    const group: Group = { conn, committed, resolve, reject, due: false, lockTimeout: 0, commitDelay: FIRST_RETRY_DELAY };
    this.group = group;
    setImmediate(() => {
      group.due = true;
      if (!this.locked) this.commit(group);
    });
    return undefined;
  }

  private commit(group: Group): void {
    if (this.group !== group) return;
    const { conn } = group;
    try {
      assertOpen(conn);
      prepared(conn, 'COMMIT').run();
    } catch (e) {
      let err = e;
      // A busy COMMIT keeps its transaction (SQLite's rollback-journal mode waits for readers here).
      if (isBusy(e) && conn.inTransaction) {
        const now = Date.now();
        group.commitDeadline ??= now + group.lockTimeout;
        if (now < group.commitDeadline) {
          setTimeout(() => this.commit(group), Math.min(jitter(group.commitDelay), group.commitDeadline - now));
          group.commitDelay = Math.min(group.commitDelay * 2, MAX_RETRY_DELAY);
          return;
        }
        err = new SqliteBusyError(group.lockTimeout, e);
      }
      this.abort(group, err);
      return;
    }
    this.end(group);
    group.resolve();
  }

  /** Rolls the whole group back and rejects every member with `e`. */
  private abort(group: Group, e: unknown): void {
    try {
      if (group.conn.inTransaction) prepared(group.conn, 'ROLLBACK').run();
    } catch {
      // SQLite rolls back a transaction whose connection failed; the members get the first error.
    }
    this.end(group);
    group.reject(e);
  }

  /** After a failed statement: if SQLite abandoned the transaction, every member fails. */
  private checkAlive(group: Group, e: unknown): void {
    if (this.group !== group || group.conn.inTransaction) return;
    this.end(group);
    group.reject(e);
  }

  private end(group: Group): void {
    this.group = undefined;
    try {
      restoreBusyTimeout(group.conn);
    } catch {
      // A connection closed under us: the pool's next user finds out.
    }
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
