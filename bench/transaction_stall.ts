/**
 * Transaction stalls (issue 10 item 1), not a test: does slow work on the token endpoint hold
 * the database while a protected route is under load?
 *
 * The server runs in a child process pinned to one CPU (`taskset -c 1`), the load generators
 * here pinned to another (`taskset -c 0`). The child serves one instance with `jwt_bearer` and
 * `client_credentials_grant`, default options, client secrets at bcrypt cost 10, on a SQLite
 * file in WAL mode, or on PostgreSQL when BENCH_DATABASE_URL is set (a fresh schema, pool of 4).
 *
 * For each flood, `GET /api/me` with a valid bearer token runs on BENCH_PROBE_CONNECTIONS
 * connections (default 2) for BENCH_DURATION seconds (default 6), beside the flood on 8:
 *   none           the baseline
 *   control        `grant_type=unknown` without credentials: the cheapest refusal the token
 *                  endpoint has, so what any 8-connection flood costs a server on one CPU
 *   assertion      a junk jwt-bearer assertion naming a known client, sent with
 *                  `Basic <that client id>:wrong` (bcrypt on every request until the lockout)
 *   hanging jwks   a jwt-bearer assertion of a client whose jwks_uri accepts and never answers
 * Printed: the protected route's req/s, p50, p99 and max latency (ms), and the flood's answers.
 *
 * Run: npm run build && node dist/bench/transaction_stall.js (it re-runs itself under taskset).
 */
import autocannon from 'autocannon';
import express, { type Request, type Response } from 'express';
import { randomBytes } from 'node:crypto';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { generateKeyPair, SignJWT } from 'jose';
import { oauth } from '../lib';
import { basic, benchDatabase, benchMain, listen, pinningNote, startServer } from './support';

const DURATION = Number(process.env.BENCH_DURATION ?? 6);
const PROBE_CONNECTIONS = Number(process.env.BENCH_PROBE_CONNECTIONS ?? 2);
const FLOOD_CONNECTIONS = 8;
const ISSUER = 'https://as.example';
const GRANT_TYPE = 'urn:ietf:params:oauth:grant-type:jwt-bearer';
const FLOODS = ['none', 'control', 'assertion', 'hanging jwks'] as const;
type Flood = (typeof FLOODS)[number];

interface Setup {
  /** The database it ran on. */
  label: string;
  origin: string;
  accessToken: string;
  /** A known client id (client_secret_basic, registered for the jwt-bearer grant). */
  knownClientId: string;
  /** Assertions, each with its own jti: of the known client (junk signature), and of the hanging-jwks client. */
  junkAssertions: string[];
  hangingAssertions: string[];
}

// ---------------------------------------------------------------------------------------------
// The serving child.

async function serve(): Promise<void> {
  const database = await benchDatabase('stall');
  const { db } = database;
  const cleanup = () => database.close();

  // A jwks_uri that accepts the connection and never answers (until the fetch times out).
  const hanging = createServer(() => undefined);
  await new Promise<void>((resolve) => hanging.listen(0, '127.0.0.1', resolve));
  const hangingUri = `http://127.0.0.1:${(hanging.address() as AddressInfo).port}/jwks`;

  const auth = oauth({ db, issuer: ISSUER, enable: ['jwt_bearer', 'client_credentials_grant'], oauthJwksAllowLoopbackHttp: true } as never);
  await auth.migrate();
  const known = await auth.createApplication({ name: 'Known', scopes: ['profile'], redirectUri: ['https://bench.example/cb'], grantTypes: [GRANT_TYPE], tokenEndpointAuthMethod: 'client_secret_basic' });
  const hangingClient = await auth.createApplication({ name: 'Hanging jwks', scopes: ['profile'], redirectUri: ['https://bench.example/cb'], grantTypes: [GRANT_TYPE], tokenEndpointAuthMethod: 'private_key_jwt', jwksUri: hangingUri });
  const reader = await auth.createApplication({ name: 'Reader', scopes: ['profile'], redirectUri: ['https://bench.example/cb'], grantTypes: ['client_credentials'] });

  const app = express();
  app.use(auth);
  app.get('/api/me', auth.requireOauthAuthorization('profile'), (req: Request, res: Response) => {
    res.json(req.oauth);
  });
  const { server, origin } = await listen(app);
  const res = await fetch(`${origin}/token`, { method: 'POST', headers: { authorization: basic(reader.clientId, reader.clientSecret!), 'content-type': 'application/x-www-form-urlencoded' }, body: 'grant_type=client_credentials' });
  const { access_token: accessToken } = (await res.json()) as { access_token: string };

  // Any key: the known client's assertions fail on its secret, the hanging client's on its keys.
  const { privateKey } = await generateKeyPair('ES256');
  const now = Math.floor(Date.now() / 1000);
  const assertion = (iss: string) =>
    new SignJWT({ sub: 'alice', jti: randomBytes(12).toString('base64url') })
      .setProtectedHeader({ alg: 'ES256', kid: 'k' })
      .setIssuer(iss)
      .setAudience(`${ISSUER}/token`)
      .setIssuedAt(now)
      .setExpirationTime(now + 280)
      .sign(privateKey);
  const many = (iss: string) => Promise.all(Array.from({ length: 2000 }, () => assertion(iss)));
  process.send!({
    label: database.label,
    origin,
    accessToken,
    knownClientId: known.clientId,
    junkAssertions: await many(known.clientId),
    hangingAssertions: await many(hangingClient.clientId),
  } satisfies Setup);
  process.on('disconnect', () => {
    server.close();
    hanging.closeAllConnections?.();
    hanging.close();
    cleanup().finally(() => process.exit(0));
  });
}

// ---------------------------------------------------------------------------------------------
// The runner.

function run(opts: autocannon.Options): Promise<autocannon.Result> {
  return new Promise((resolve, reject) => {
    autocannon(opts, (err, result) => (err ? reject(err) : resolve(result)));
  });
}

function floodOptions(setup: Setup, flood: Exclude<Flood, 'none'>): autocannon.Options {
  if (flood === 'control') {
    return { url: `${setup.origin}/token`, connections: FLOOD_CONNECTIONS, duration: DURATION, method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: 'grant_type=unknown', timeout: 30 };
  }
  const list = flood === 'assertion' ? setup.junkAssertions : setup.hangingAssertions;
  let i = 0;
  const headers: Record<string, string> = { 'content-type': 'application/x-www-form-urlencoded' };
  if (flood === 'assertion') headers.authorization = basic(setup.knownClientId, 'wrong');
  return {
    url: `${setup.origin}/token`,
    connections: FLOOD_CONNECTIONS,
    duration: DURATION,
    method: 'POST',
    headers,
    requests: [
      {
        setupRequest: (req) => ({ ...req, body: `grant_type=${encodeURIComponent(GRANT_TYPE)}&assertion=${list[i++ % list.length]}` }),
      },
    ],
    timeout: 30,
  };
}

async function runner(): Promise<void> {
  const { setup, child: server } = await startServer<Setup>();
  console.log(`transaction stall bench: ${setup.label}; GET /api/me on ${PROBE_CONNECTIONS} connections for ${DURATION} s beside each flood (${FLOOD_CONNECTIONS} connections); ${pinningNote()}`);
  console.log('flood          | /api/me req/s |  p50 ms |  p99 ms |  max ms | flood answers');
  for (const flood of FLOODS) {
    const probe = run({ url: `${setup.origin}/api/me`, connections: PROBE_CONNECTIONS, duration: DURATION, headers: { authorization: `Bearer ${setup.accessToken}` }, timeout: 30 });
    const load = flood === 'none' ? Promise.resolve(undefined) : run(floodOptions(setup, flood));
    const [p, f] = await Promise.all([probe, load]);
    const answers = f ? Object.entries(f.statusCodeStats ?? {}).map(([code, s]) => `${code}×${(s as { count: number }).count}`).join(' ') + (f.timeouts ? ` timeouts×${f.timeouts}` : '') : '';
    console.log(
      `${flood.padEnd(14)} | ${String(Math.round(p.requests.average)).padStart(13)} | ${p.latency.p50.toFixed(1).padStart(7)} | ${p.latency.p99.toFixed(1).padStart(7)} | ${p.latency.max.toFixed(1).padStart(7)} | ${answers}`,
    );
    // Let a hanging fetch time out before the next round.
    await new Promise((r) => setTimeout(r, 3500));
  }
  server.disconnect();
}

benchMain(serve, runner);
