/**
 * What every bench shares: a fair split of the machine (the serving child on one CPU, the load
 * generator on another, with `taskset` where the machine has it), the SQLite set-up a server
 * should run (WAL, one connection), listening on loopback, and Basic credentials.
 */
import type { Express } from 'express';
import knex, { type Knex } from 'knex';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';

/** The CPU of the serving child and the CPU of the load generator. */
export const SERVER_CPU = process.env.BENCH_SERVER_CPU ?? '1';
export const LOAD_CPU = process.env.BENCH_LOAD_CPU ?? '0';

/** Whether the two processes can be pinned apart: `taskset` is there and the machine has two CPUs or more. */
// The machine's CPUs, not this process's: the load generator runs pinned to one, and
// availableParallelism() would then say 1.
export const canPin = (): boolean => cpus().length >= 2 && spawnSync('taskset', ['-V']).status === 0;

/** One line for a bench's header: how the machine was split. */
export function pinningNote(): string {
  return canPin()
    ? `server pinned to CPU ${SERVER_CPU}, load generator to CPU ${LOAD_CPU} (taskset)`
    : 'NOT pinned (taskset missing or a single CPU): server and load generator share the CPUs, so ratios are lower and noisier';
}

/**
 * Runs a bench script as two processes: `serve()` in a child pinned to SERVER_CPU (started by
 * `startServer`), and `run()` here pinned to LOAD_CPU. The script calls this once at its end.
 */
export function benchMain(serve: () => Promise<void>, run: () => Promise<void>): void {
  const fail = (e: unknown) => {
    console.error(e instanceof Error ? (e.stack ?? e.message) : e);
    process.exit(1);
  };
  if (process.argv.includes('--serve')) {
    serve().catch(fail);
  } else if (process.env.BENCH_PINNED !== '1' && canPin()) {
    const r = spawnSync('taskset', ['-c', LOAD_CPU, process.execPath, process.argv[1]!, ...process.argv.slice(2)], { stdio: 'inherit', env: { ...process.env, BENCH_PINNED: '1' } });
    process.exit(r.status ?? 1);
  } else {
    run().catch(fail);
  }
}

/** Starts this script's `--serve` child on SERVER_CPU and resolves with the first message it sends. */
export async function startServer<T>(): Promise<{ setup: T; child: ChildProcess }> {
  const script = process.argv[1]!;
  const child = canPin()
    ? spawn('taskset', ['-c', SERVER_CPU, process.execPath, script, '--serve'], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] })
    : spawn(process.execPath, [script, '--serve'], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  const setup = await new Promise<T>((resolve, reject) => {
    child.once('message', (m) => resolve(m as T));
    child.once('exit', (code) => reject(new Error(`the bench server exited (${code})`)));
  });
  return { setup, child };
}

/** A knex instance on a SQLite file the way a server should run it: WAL, one connection, then `pragmas`. */
export function sqliteDb(filename: string, pragmas: readonly string[] = []): Knex {
  return knex({
    client: 'better-sqlite3',
    connection: { filename },
    useNullAsDefault: true,
    pool: {
      min: 1,
      max: 1,
      afterCreate(conn: { pragma(p: string): unknown }, done: (err: Error | null, conn: unknown) => void) {
        // A commit appends to the log instead of rewriting a rollback journal.
        if (filename !== ':memory:') conn.pragma('journal_mode = WAL');
        for (const pragma of pragmas) conn.pragma(pragma);
        done(null, conn);
      },
    },
  });
}

/** A bench database: a SQLite file (or memory) by default, a fresh PostgreSQL schema when BENCH_DATABASE_URL is set. */
export interface BenchDatabase {
  db: Knex;
  /** What the output says it ran on. */
  label: string;
  /** Closes the pool and removes the database. */
  close(): Promise<void>;
}

/**
 * `name` tells apart several databases of one run. On PostgreSQL (BENCH_DATABASE_URL) each is its
 * own schema, dropped by `close()`, with a pool of BENCH_PG_POOL (default 4) connections.
 */
export async function benchDatabase(name: string, sqlite: { file?: string; pragmas?: readonly string[] } = {}): Promise<BenchDatabase> {
  const url = process.env.BENCH_DATABASE_URL;
  if (url) {
    const schema = `bench_${name}_${randomBytes(3).toString('hex')}`;
    const pool = Number(process.env.BENCH_PG_POOL ?? 4);
    const admin = knex({ client: 'pg', connection: url, pool: { min: 0, max: 1 } });
    await admin.raw('create schema ??', [schema]);
    const db = knex({ client: 'pg', connection: url, searchPath: [schema], pool: { min: 0, max: pool } });
    return {
      db,
      label: `PostgreSQL (pool ${pool})`,
      async close() {
        await db.destroy();
        await admin.raw('drop schema ?? cascade', [schema]);
        await admin.destroy();
      },
    };
  }
  const dir = sqlite.file === ':memory:' ? undefined : mkdtempSync(join(tmpdir(), `eof-bench-${name}-`));
  const db = sqliteDb(dir ? join(dir, sqlite.file ?? `${name}.sqlite3`) : ':memory:', sqlite.pragmas);
  const pragmas = sqlite.pragmas?.length ? `, ${sqlite.pragmas.join(', ')}` : '';
  return {
    db,
    label: dir ? `SQLite file (WAL${pragmas})` : `SQLite in memory${pragmas}`,
    async close() {
      await db.destroy();
      if (dir) rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Listens on a free loopback port. */
export async function listen(app: Express): Promise<{ server: Server; origin: string }> {
  const server = await new Promise<Server>((resolve) => {
    const s = app.listen(0, '127.0.0.1', () => resolve(s));
  });
  return { server, origin: `http://127.0.0.1:${(server.address() as AddressInfo).port}` };
}

/** RFC 6749 §2.3.1: both parts form-encoded, then Basic. */
export function basic(id: string, secret: string): string {
  const enc = (s: string) => encodeURIComponent(s).replace(/%20/g, '+');
  return `Basic ${Buffer.from(`${enc(id)}:${enc(secret)}`).toString('base64')}`;
}
