/**
 * What every bench shares: a fair split of the machine (the serving child on one CPU, the load
 * generator on another, with `taskset` where the machine has it), the SQLite set-up a server
 * should run (WAL, one connection), listening on loopback, Basic credentials, and the measure of
 * this server beside bare Express: alternating pairs of rounds, their median ratio.
 */
import autocannon from 'autocannon';
import express, { type Express, type Request, type Response } from 'express';
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

/**
 * Starts this script's `--serve` child on SERVER_CPU and resolves with the first message it sends.
 * `args` follow `--serve` (a script with two kinds of server tells them apart by these).
 */
export async function startServer<T>(args: readonly string[] = []): Promise<{ setup: T; child: ChildProcess }> {
  const script = process.argv[1]!;
  const argv = [script, '--serve', ...args];
  const child = canPin()
    ? spawn('taskset', ['-c', SERVER_CPU, process.execPath, ...argv], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] })
    : spawn(process.execPath, argv, { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
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

/**
 * Bare Express (`bare`, or a new app) on loopback answering GET /api/me with the JSON that
 * `origin` answers for `token`: what a protected route costs without any check.
 */
export async function bareApiMe(origin: string, token: string, bare: Express = express()): Promise<{ server: Server; origin: string }> {
  const res = await fetch(`${origin}/api/me`, { headers: { authorization: `Bearer ${token}` } });
  if (res.status !== 200) throw new Error(`GET ${origin}/api/me: ${res.status} ${await res.text()}`);
  const me = await res.json();
  bare.get('/api/me', (_req: Request, res: Response) => {
    res.json(me);
  });
  return listen(bare);
}

/** A bare Express POST /token parsing the same form and answering a token response of the same shape. */
export function bareTokenRoute(app: Express, randomToken: () => string): void {
  app.post('/token', express.urlencoded({ extended: false }), (req: Request, res: Response) => {
    if (typeof req.body?.grant_type !== 'string') return res.status(400).json({ error: 'invalid_request' });
    res.set({ 'Cache-Control': 'no-store', Pragma: 'no-cache' });
    res.json({ access_token: randomToken(), token_type: 'Bearer', expires_in: 3600, scope: 'profile' });
  });
}

// ---------------------------------------------------------------------------------------------
// Measuring: rounds of autocannon, in pairs.

/** How long and how hard a bench measures: BENCH_ROUNDS, BENCH_DURATION, BENCH_WARM_UP, BENCH_CONNECTIONS over the script's defaults. */
export interface BenchSettings {
  connections: number;
  /** Seconds per round. */
  duration: number;
  /** Seconds of warm-up per side, before the pairs. */
  warmUp: number;
  /** Pairs per scenario. */
  rounds: number;
}

export function benchSettings(defaults: Partial<BenchSettings> = {}): BenchSettings {
  const env = (name: string, fallback: number) => Number(process.env[name] ?? fallback);
  return {
    connections: env('BENCH_CONNECTIONS', defaults.connections ?? 10),
    duration: env('BENCH_DURATION', defaults.duration ?? 5),
    warmUp: env('BENCH_WARM_UP', defaults.warmUp ?? 2),
    rounds: env('BENCH_ROUNDS', defaults.rounds ?? 5),
  };
}

/** In a serving child: when the runner disconnects, close `servers` and `database`, then exit. */
export function closeOnDisconnect(servers: readonly Server[], database?: BenchDatabase): void {
  process.on('disconnect', () => {
    for (const server of servers) server.close();
    (database?.close() ?? Promise.resolve()).finally(() => process.exit(0));
  });
}

/** In a serving child: answer the runner's `'cpu'` messages with this process's CPU time (microseconds). */
export function answerCpu(): void {
  process.on('message', (m) => {
    if (m === 'cpu') {
      const { user, system } = process.cpuUsage();
      process.send!({ cpu: user + system });
    }
  });
}

/** The serving child's CPU time so far, in microseconds (the child calls `answerCpu`). */
function childCpu(child: ChildProcess): Promise<number> {
  return new Promise((resolve) => {
    child.once('message', (m) => resolve((m as { cpu: number }).cpu));
    child.send('cpu');
  });
}

export interface Round {
  rps: number;
  p99: number;
  /** Server CPU time per request, in microseconds. */
  cpuPerRequest: number;
  non2xx: number;
  errors: number;
}

/** One autocannon round against a server of `child`. */
export async function measure(child: ChildProcess, opts: autocannon.Options): Promise<Round> {
  const cpuBefore = await childCpu(child);
  const started = process.hrtime.bigint();
  let lastResponse = started;
  const r = await new Promise<autocannon.Result>((resolve, reject) => {
    const instance = autocannon(opts, (err, result) => (err ? reject(err) : resolve(result)));
    instance.on('response', () => {
      lastResponse = process.hrtime.bigint();
    });
  });
  // Wall time up to the last response: autocannon only notices the end of a fixed-amount round
  // at its next one-second tick, which would round every short round up to whole seconds.
  const seconds = Number(lastResponse - started) / 1e9;
  const cpu = (await childCpu(child)) - cpuBefore;
  return { rps: r.requests.total / seconds, p99: r.latency.p99, cpuPerRequest: cpu / Math.max(1, r.requests.total), non2xx: r.non2xx, errors: r.errors + r.timeouts };
}

export interface Outcome {
  name: string;
  /** The pair whose ratio is the median. */
  bare: Round;
  ours: Round;
  /** Median over the pairs of ours req/s ÷ bare req/s. */
  ratio: number;
  /** The lowest and highest pair ratio. */
  spread: [number, number];
  /** Median over the pairs of bare CPU per request ÷ ours CPU per request: the ratio a CPU-bound server would reach. */
  cpuRatio: number;
}

export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
}

/**
 * `settings.rounds` pairs of back-to-back rounds (bare then ours, ours then bare, alternately)
 * after a warm-up of each side (`warmUp`, default `settings.warmUp` seconds; JIT, pools, caches): on a shared VM whose
 * speed drifts by tens of percent, a pair measured within seconds is what compares. Both sides
 * are served by `child`; a non-2xx answer or an error fails the scenario.
 */
export async function comparePairs(
  name: string,
  child: ChildProcess,
  settings: BenchSettings,
  bare: () => autocannon.Options,
  ours: () => autocannon.Options,
  warmUp: Partial<autocannon.Options> = { duration: settings.warmUp },
): Promise<Outcome> {
  // A round's own `amount`, if any, overrides the duration.
  const round = (opts: autocannon.Options, extra: Partial<autocannon.Options> = {}) => measure(child, { connections: settings.connections, duration: settings.duration, ...opts, ...extra });
  const warm = warmUp;
  await round(bare(), warm);
  await round(ours(), warm);
  const pairs: { b: Round; o: Round }[] = [];
  for (let i = 0; i < settings.rounds; i++) {
    let b: Round;
    let o: Round;
    if (i % 2 === 0) {
      b = await round(bare());
      o = await round(ours());
    } else {
      o = await round(ours());
      b = await round(bare());
    }
    for (const [side, r] of [['bare', b], ['ours', o]] as const) {
      if (r.non2xx || r.errors) throw new Error(`${name} (${side}): ${r.non2xx} non-2xx answers, ${r.errors} errors`);
    }
    pairs.push({ b, o });
  }
  const ratios = pairs.map((p) => p.o.rps / p.b.rps);
  const ratio = median(ratios);
  const mid = pairs[ratios.indexOf(ratios.reduce((a, r) => (Math.abs(r - ratio) < Math.abs(a - ratio) ? r : a)))];
  return {
    name,
    bare: mid.b,
    ours: mid.o,
    ratio,
    spread: [Math.min(...ratios), Math.max(...ratios)],
    cpuRatio: median(pairs.map((p) => p.b.cpuPerRequest / p.o.cpuPerRequest)),
  };
}

/**
 * Prints the outcomes as a table, each against its target (`ok` / `MISSED`) or `report` when it
 * has none, then one summary line each. Returns how many missed their target.
 */
export function printOutcomes(results: readonly Outcome[], targets: Readonly<Record<string, number | undefined>>, labels: { bare?: string; ours?: string } = {}): number {
  const pad = (s: string | number, n: number) => String(s).padStart(n);
  const width = Math.max(10, ...results.map((r) => r.name.length));
  const bare = labels.bare ?? 'bare';
  const ours = labels.ours ?? 'ours';
  console.log(
    `${'scenario'.padEnd(width)} ${pad(`${bare} req/s`, 11)} ${pad(`${ours} req/s`, 11)} ${pad(`${ours} p99`, 9)} ${pad(`${bare} CPU/req`, 13)} ${pad(`${ours} CPU/req`, 13)}   ratio  (pairs)        CPU ratio   target`,
  );
  let missed = 0;
  const us = (n: number) => `${Math.round(n)} µs`;
  for (const r of results) {
    const target = targets[r.name];
    const ok = target === undefined || r.ratio >= target;
    if (!ok) missed++;
    const verdict = target === undefined ? 'report' : `≥ ${target.toFixed(2)}x ${ok ? 'ok' : 'MISSED'}`;
    console.log(
      `${r.name.padEnd(width)} ${pad(Math.round(r.bare.rps), 11)} ${pad(Math.round(r.ours.rps), 11)} ${pad(`${r.ours.p99} ms`, 9)} ${pad(us(r.bare.cpuPerRequest), 13)} ${pad(us(r.ours.cpuPerRequest), 13)}   ${r.ratio.toFixed(2)}x  (${r.spread[0].toFixed(2)}–${r.spread[1].toFixed(2)}x)  ${pad(`${r.cpuRatio.toFixed(2)}x`, 9)}   ${verdict}`,
    );
  }
  console.log('');
  for (const r of results) console.log(`${r.name}: ${r.ratio.toFixed(2)}x ${bare}, pairs ${r.spread[0].toFixed(2)}–${r.spread[1].toFixed(2)}x (server CPU per request: ${r.cpuRatio.toFixed(2)}x)`);
  return missed;
}
