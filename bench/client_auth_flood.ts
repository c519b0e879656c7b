/**
 * Client-authentication flood (issue 10 item 5), not a test: how much a flood of wrong client
 * secrets slows everyone else.
 *
 * The server runs in a child process pinned to one CPU (`taskset -c 1`), the load generator
 * here pinned to another (`taskset -c 0`), so bcrypt, the server's event loop and libuv's
 * thread pool share exactly one core. The child serves two instances, each on its own SQLite
 * file (WAL), default options and client secrets at bcrypt cost 10:
 *   guarded    the defaults (oauthBcryptConcurrency 2, queue 32, lockout after 5 failures)
 *   unguarded  the guard opened up as it was before it: concurrency 4 (libuv's pool), no
 *              queue limit, no lockout
 *
 * For each instance and each flood, three probes run side by side for BENCH_DURATION seconds:
 *   /api/me       GET with a valid bearer token (1 connection)
 *   cached token  POST /token client_credentials of another client, its secret cached (1 connection)
 *   first token   POST /token of a fresh client each time (uncached: bcrypt), one after another
 * Floods (BENCH_FLOOD_CONNECTIONS connections, default 8, autocannon):
 *   none          no flood (the baseline)
 *   one client    Basic <a known client id>:wrong
 *   rotating ids  Basic <a new unknown client id>:wrong, each request another id
 *
 * Run: npm run build && node dist/bench/client_auth_flood.js (it re-runs itself under taskset).
 */
import autocannon from 'autocannon';
import express, { type Request, type Response } from 'express';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { oauth } from '../lib';
import { basic, benchMain, listen, pinningNote, sqliteDb, startServer } from './support';

const DURATION = Number(process.env.BENCH_DURATION ?? 6);
const FLOOD_CONNECTIONS = Number(process.env.BENCH_FLOOD_CONNECTIONS ?? 8);
const FLOODS = ['none', 'one client', 'rotating ids'] as const;
/** Fresh clients per run for the uncached probe (each used once). */
const FRESH_PER_RUN = 40;

type Flood = (typeof FLOODS)[number];

interface Instance {
  origin: string;
  accessToken: string;
  cached: { clientId: string; clientSecret: string };
  victim: string;
  fresh: { clientId: string; clientSecret: string }[];
}

interface Setup {
  guarded: Instance;
  unguarded: Instance;
}

// ---------------------------------------------------------------------------------------------
// The serving child.

async function serve(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'eof-flood-'));
  const guarded = await instance(join(dir, 'guarded.sqlite3'), {});
  const unguarded = await instance(join(dir, 'unguarded.sqlite3'), { oauthBcryptConcurrency: 4, oauthBcryptQueueLimit: 1_000_000, oauthClientAuthFailureLimit: 0 });
  process.send!({ guarded: guarded.setup, unguarded: unguarded.setup } satisfies Setup);
  process.on('disconnect', () => {
    Promise.all([guarded.close(), unguarded.close()]).finally(() => {
      rmSync(dir, { recursive: true, force: true });
      process.exit(0);
    });
  });
}

async function instance(filename: string, options: Record<string, unknown>): Promise<{ setup: Instance; close(): Promise<void> }> {
  const db = sqliteDb(filename);
  const auth = oauth({ db, issuer: 'http://127.0.0.1', enable: ['client_credentials_grant'], ...options } as never);
  await auth.migrate();
  const create = async (name: string) => {
    const c = await auth.createApplication({ name, scopes: ['profile'], redirectUri: ['https://bench.example/cb'], grantTypes: ['client_credentials'] });
    return { clientId: c.clientId, clientSecret: c.clientSecret! };
  };
  const cached = await create('Cached client');
  const victim = await create('Flooded client');
  const fresh = await Promise.all(Array.from({ length: FRESH_PER_RUN * FLOODS.length + 1 }, (_, i) => create(`Fresh client ${i}`)));

  const app = express();
  app.use(auth);
  app.get('/api/me', auth.requireOauthAuthorization('profile'), (req: Request, res: Response) => {
    res.json(req.oauth);
  });
  const { server, origin } = await listen(app);
  // The bearer token, obtained as a client would (this also puts the cached client's secret in the cache).
  const res = await fetch(`${origin}/token`, { method: 'POST', headers: tokenHeaders(cached.clientId, cached.clientSecret), body: 'grant_type=client_credentials' });
  const { access_token: accessToken } = (await res.json()) as { access_token: string };
  return {
    setup: { origin, accessToken, cached, victim: victim.clientId, fresh },
    close: async () => {
      server.close();
      await db.destroy();
    },
  };
}

function tokenHeaders(id: string, secret: string): Record<string, string> {
  return { authorization: basic(id, secret), 'content-type': 'application/x-www-form-urlencoded' };
}

// ---------------------------------------------------------------------------------------------
// The runner.

interface Latency {
  p50: number;
  p99: number;
  count: number;
  /** Answers other than 200 (401 or 503 for the token probes). */
  failed: number;
}

function probe(opts: autocannon.Options): Promise<autocannon.Result> {
  return new Promise((resolve, reject) => {
    autocannon({ connections: 1, duration: DURATION, ...opts }, (err, result) => (err ? reject(err) : resolve(result)));
  });
}

function summary(r: autocannon.Result): Latency {
  return { p50: r.latency.p50, p99: r.latency.p99, count: r.requests.total, failed: r.non2xx + r.errors + r.timeouts };
}

/** One fresh client after another, each POST /token timed end to end. */
async function firstTokens(inst: Instance, clients: Instance['fresh'], until: number): Promise<Latency> {
  const times: number[] = [];
  let failed = 0;
  for (const c of clients) {
    if (Date.now() >= until) break;
    const t0 = process.hrtime.bigint();
    const res = await fetch(`${inst.origin}/token`, { method: 'POST', headers: tokenHeaders(c.clientId, c.clientSecret), body: 'grant_type=client_credentials' });
    await res.arrayBuffer();
    times.push(Number(process.hrtime.bigint() - t0) / 1e6);
    if (res.status !== 200) failed++;
  }
  times.sort((a, b) => a - b);
  const at = (q: number) => (times.length ? Math.round(times[Math.min(times.length - 1, Math.floor(q * times.length))]! * 10) / 10 : NaN);
  return { p50: at(0.5), p99: at(0.99), count: times.length, failed };
}

function flood(inst: Instance, kind: Flood): Promise<autocannon.Result> | null {
  if (kind === 'none') return null;
  let n = 0;
  return new Promise((resolve, reject) => {
    autocannon(
      {
        url: inst.origin,
        connections: FLOOD_CONNECTIONS,
        duration: DURATION + 1,
        requests: [
          {
            method: 'POST',
            path: '/token',
            body: 'grant_type=client_credentials',
            setupRequest: (req) => ({ ...req, headers: tokenHeaders(kind === 'one client' ? inst.victim : `unknown-${process.pid}-${n++}`, 'wrong') }),
          },
        ],
      },
      (err, result) => (err ? reject(err) : resolve(result)),
    );
  });
}

interface Row {
  name: string;
  kind: Flood;
  me: Latency;
  cached: Latency;
  first: Latency;
  flood?: { rps: number; statuses: string };
}

async function measure(name: string, inst: Instance, kind: Flood, fresh: Instance['fresh']): Promise<Row> {
  const flooding = flood(inst, kind);
  if (flooding) await new Promise((r) => setTimeout(r, 1000)); // the flood first reaches its pace
  const [me, cached, first] = await Promise.all([
    probe({ url: `${inst.origin}/api/me`, headers: { authorization: `Bearer ${inst.accessToken}` } }),
    probe({ url: `${inst.origin}/token`, method: 'POST', headers: tokenHeaders(inst.cached.clientId, inst.cached.clientSecret), body: 'grant_type=client_credentials' }),
    firstTokens(inst, fresh, Date.now() + DURATION * 1000),
  ]);
  const row: Row = { name, kind, me: summary(me), cached: summary(cached), first };
  if (flooding) {
    const f = await flooding;
    const statuses = Object.entries(f.statusCodeStats ?? {})
      .map(([code, s]) => `${code}×${(s as { count: number }).count}`)
      .join(' ');
    row.flood = { rps: Math.round(f.requests.total / (DURATION + 1)), statuses };
  }
  return row;
}

async function main(): Promise<void> {
  const { setup, child: server } = await startServer<Setup>();
  console.log(`client-auth flood: ${pinningNote()}; ${DURATION} s per run; flood ${FLOOD_CONNECTIONS} connections; bcrypt cost 10\n`);
  const rows: Row[] = [];
  for (const name of ['unguarded', 'guarded'] as const) {
    const inst = setup[name];
    let next = 0;
    for (const kind of FLOODS) {
      const fresh = inst.fresh.slice(next, next + FRESH_PER_RUN);
      next += FRESH_PER_RUN;
      rows.push(await measure(name, inst, kind, fresh));
      const r = rows[rows.length - 1]!;
      const l = (x: Latency) => `p50 ${x.p50} ms, p99 ${x.p99} ms (${x.count}${x.failed ? `, ${x.failed} failed` : ''})`;
      console.log(`${name.padEnd(9)} flood=${kind.padEnd(12)} /api/me ${l(r.me)} | cached token ${l(r.cached)} | first token ${l(r.first)}${r.flood ? ` | flood ${r.flood.rps} req/s [${r.flood.statuses}]` : ''}`);
    }
  }
  server.disconnect();
}

benchMain(serve, main);
