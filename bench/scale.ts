/**
 * At scale (issue 12 item 5), not a test: does the server slow down with a million grants, and
 * what does purging most of them cost the requests served meanwhile?
 *
 * The serving child (pinned to one CPU, the load generator here to another; bench/support.ts)
 * runs two instances with default options: one on a database seeded with BENCH_SMALL grants
 * (default 10,000), one with BENCH_LARGE (default 1,000,000), each on its own SQLite file (WAL,
 * synchronous FULL), or its own PostgreSQL schema when BENCH_DATABASE_URL is set. Of the seeded
 * grants, 90 % expired long ago (past the purge retention); the rest are live.
 *
 *   protected  GET /api/me with a live token           small vs large, alternating pairs
 *   token      POST /token client_credentials (Basic)   small vs large, alternating pairs
 *   purge      auth.purge() on the large database while GET /api/me loads it: the purge's rate
 *              (rows per second) and the worst and p99 latency of the requests served meanwhile
 *
 * Run: npm run build && node dist/bench/scale.js
 */
import autocannon from 'autocannon';
import express, { type Request, type Response } from 'express';
import type { Knex } from 'knex';
import { oauth, type OAuthRouter } from '../lib';
import { sha256 } from '../lib/crypto';
import { basic, benchDatabase, benchMain, listen, pinningNote, startServer } from './support';

const SMALL = Number(process.env.BENCH_SMALL ?? 10_000);
const LARGE = Number(process.env.BENCH_LARGE ?? 1_000_000);
const DURATION = Number(process.env.BENCH_DURATION ?? 5);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
const CONNECTIONS = Number(process.env.BENCH_CONNECTIONS ?? 10);
const PG_URL = process.env.BENCH_DATABASE_URL;
const TARGET = 0.95;
const DAY = 86_400_000;

interface Instance {
  origin: string;
  clientId: string;
  clientSecret: string;
  accessToken: string;
}

interface Setup {
  small: Instance;
  large: Instance;
  label: string;
}

interface PurgeResult {
  counts: Record<string, number>;
  ms: number;
}

// ---------------------------------------------------------------------------------------------
// The serving child.

async function serve(): Promise<void> {
  const smallDb = await benchDatabase('small', { pragmas: ['synchronous = FULL'] });
  const largeDb = await benchDatabase('large', { pragmas: ['synchronous = FULL'] });
  const small = await instance(smallDb.db, SMALL);
  const large = await instance(largeDb.db, LARGE);
  process.send!({ small: small.setup, large: large.setup, label: largeDb.label } satisfies Setup);
  process.on('message', (m) => {
    if (m !== 'purge') return;
    const started = process.hrtime.bigint();
    large.auth.purge().then(
      (counts) => process.send!({ counts, ms: Number(process.hrtime.bigint() - started) / 1e6 } satisfies PurgeResult),
      (e: unknown) => process.send!({ error: String(e) }),
    );
  });
  process.on('disconnect', () => {
    Promise.all([smallDb.close(), largeDb.close()]).finally(() => process.exit(0));
  });
}

async function instance(db: Knex, grants: number): Promise<{ setup: Instance; auth: OAuthRouter }> {
  const auth = oauth({ db, issuer: 'http://127.0.0.1', enable: ['client_credentials_grant', 'refresh'] });
  await auth.migrate();
  const { clientId, clientSecret, application } = await auth.createApplication({ name: 'Scale client', scopes: ['profile'], redirectUri: ['https://bench.example/cb'], grantTypes: ['client_credentials', 'refresh_token'] });
  await seed(db, application.id, grants);

  const app = express();
  app.use(auth);
  app.get('/api/me', auth.requireOauthAuthorization('profile'), (req: Request, res: Response) => {
    res.json(req.oauth);
  });
  const { origin } = await listen(app);
  const res = await fetch(`${origin}/token`, { method: 'POST', headers: { authorization: basic(clientId, clientSecret!), 'content-type': 'application/x-www-form-urlencoded' }, body: 'grant_type=client_credentials' });
  const { access_token: accessToken } = (await res.json()) as { access_token: string };
  return { setup: { origin, clientId, clientSecret: clientSecret!, accessToken }, auth };
}

/**
 * `count` grants of the shapes the server keeps: 90 % expired long before the purge retention
 * (half of them refresh grants), the rest live access tokens. Inserted in chunks through knex,
 * in one transaction, before the instance serves.
 */
async function seed(db: Knex, applicationId: number, count: number): Promise<void> {
  const sqlite = !PG_URL;
  const time = (ms: number) => (sqlite ? ms : new Date(ms));
  const now = Date.now();
  const expired = Math.floor(count * 0.9);
  // knex writes a multi-row SQLite insert as a compound SELECT, which SQLite caps at 500 terms.
  const CHUNK = sqlite ? 400 : 5000;
  await db.transaction(async (trx) => {
    for (let start = 0; start < count; start += CHUNK) {
      const rows = [];
      for (let i = start; i < Math.min(count, start + CHUNK); i++) {
        const old = i < expired;
        const refresh = old && i % 2 === 0;
        rows.push({
          account_id: `account-${i}`,
          oauth_application_id: applicationId,
          type: refresh ? 'authorization_code' : 'client_credentials',
          token: sha256(`seed-access-${i}`),
          refresh_token: refresh ? sha256(`seed-refresh-${i}`) : null,
          expires_in: time(old ? now - 30 * DAY : now + DAY),
          refresh_token_expires_in: refresh ? time(now - 20 * DAY) : null,
          scopes: 'profile',
          access_type: refresh ? 'offline' : 'online',
          created_at: time(old ? now - 31 * DAY : now),
        });
      }
      await trx('oauth_grants').insert(rows);
    }
  });
}

// ---------------------------------------------------------------------------------------------
// The runner.

function run(opts: autocannon.Options): Promise<autocannon.Result> {
  return new Promise((resolve, reject) => {
    autocannon({ connections: CONNECTIONS, duration: DURATION, ...opts }, (err, result) => (err ? reject(err) : resolve(result)));
  });
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
}

async function pairs(name: string, options: (i: Instance) => autocannon.Options, setup: Setup): Promise<void> {
  await run({ ...options(setup.small), duration: 2 });
  await run({ ...options(setup.large), duration: 2 });
  const ratios: number[] = [];
  let last = { small: 0, large: 0 };
  for (let i = 0; i < ROUNDS; i++) {
    const order: ('small' | 'large')[] = i % 2 === 0 ? ['small', 'large'] : ['large', 'small'];
    const rps: Record<string, number> = {};
    for (const side of order) {
      const r = await run(options(setup[side]));
      if (r.non2xx || r.errors) throw new Error(`${name} (${side}): ${r.non2xx} non-2xx, ${r.errors} errors`);
      rps[side] = r.requests.average;
    }
    ratios.push(rps.large! / rps.small!);
    last = { small: rps.small!, large: rps.large! };
  }
  const ratio = median(ratios);
  console.log(
    `${name.padEnd(10)} ${String(Math.round(last.small)).padStart(10)} ${String(Math.round(last.large)).padStart(10)}   ${ratio.toFixed(2)}x (${Math.min(...ratios).toFixed(2)}–${Math.max(...ratios).toFixed(2)}x)   ≥ ${TARGET}x ${ratio >= TARGET ? 'ok' : 'MISSED'}`,
  );
}

async function runner(): Promise<void> {
  const started = Date.now();
  const { setup, child } = await startServer<Setup>();
  console.log(`scale bench: ${setup.label}; ${SMALL} vs ${LARGE} grants (seeded in ${Math.round((Date.now() - started) / 1000)} s); ${CONNECTIONS} connections, ${ROUNDS} pairs of ${DURATION} s; ${pinningNote()}`);
  console.log(`${'scenario'.padEnd(10)} ${'small req/s'.padStart(10)} ${'large req/s'.padStart(10)}   large ÷ small (pairs)   target`);
  await pairs('protected', (i) => ({ url: `${i.origin}/api/me`, headers: { authorization: `Bearer ${i.accessToken}` } }), setup);
  const form = (i: Instance) => ({ authorization: basic(i.clientId, i.clientSecret), 'content-type': 'application/x-www-form-urlencoded' });
  await pairs('token', (i) => ({ url: `${i.origin}/token`, method: 'POST', headers: form(i), body: 'grant_type=client_credentials' }), setup);

  // The purge, with the protected route under load for as long as it runs.
  const purged = new Promise<PurgeResult>((resolve, reject) => {
    child.once('message', (m) => ('error' in (m as object) ? reject(new Error((m as { error: string }).error)) : resolve(m as PurgeResult)));
  });
  let finished: (r: autocannon.Result) => void = () => undefined;
  const loadDone = new Promise<autocannon.Result>((resolve) => (finished = resolve));
  const load = autocannon({ url: `${setup.large.origin}/api/me`, headers: { authorization: `Bearer ${setup.large.accessToken}` }, connections: 2, duration: 3600 }, (_err, r) => finished(r));
  let worst = 0;
  load.on('response', (_client: unknown, _status: number, _bytes: number, ms: number) => {
    if (ms > worst) worst = ms;
  });
  await new Promise((r) => setTimeout(r, 1000));
  worst = 0;
  child.send('purge');
  const result = await purged;
  load.stop();
  const loadResult = await loadDone;
  const rows = Object.values(result.counts).reduce((a, b) => a + b, 0);
  console.log(
    `purge      ${rows} rows (${JSON.stringify(result.counts)}) in ${(result.ms / 1000).toFixed(1)} s: ${Math.round(rows / (result.ms / 1000))} rows/s; GET /api/me meanwhile: worst ${worst} ms, p99 ${loadResult.latency.p99} ms, ${Math.round(loadResult.requests.average)} req/s`,
  );
  child.disconnect();
}

benchMain(serve, runner);
