/**
 * `node dist/bench/jwt.js` (after `npm run build`): RFC 9068 JWT access tokens (issue 13 item 6)
 * beside bare Express, in one run (not a test). Pinned like bench/run.ts (bench/support.ts): the
 * authorization server's child on the server CPU, the load generator on another; ROUNDS pairs of
 * back-to-back rounds per scenario, alternately, and the median of the pairs' ratios.
 *
 *   protected        GET /api/me with a JWT access token (ES256,          vs  a bare GET returning the same JSON
 *                    oauthJwtAccessTokenCheckRevocation off: no query;
 *                    the same token each time, so the verified-token
 *                    cache answers after the first request)
 *   protected-route  the same route registered before the OAuth router    vs  the same bare GET
 *                    (in an app of its own), so its requests do not pass
 *                    the router (a host that mounts it under a prefix, or
 *                    after its API routes)
 *   protected-       the same with oauthJwtAccessTokenCacheSize 0:        vs  the same bare GET
 *     uncached       an ES256 signature check on every request
 *   token-jwt        POST /token client_credentials issuing a JWT         vs  a bare POST parsing the same form
 *   token-jwt/opaque POST /token client_credentials issuing a JWT         vs  the same issuing an opaque token
 *                    (the "bare" columns are the opaque side)
 *   resource-server  GET /api/me behind resourceServer() in a second      vs  a bare GET in that process
 *                    process (its own child, pinned to the same server       returning the same JSON
 *                    CPU as the authorization server), JWTs checked
 *                    against the server's /jwks
 *
 * Every GET, bare or ours, carries the same `Authorization: Bearer <the JWT>` header: the two sides
 * of a pair get identical requests and give identical responses, and differ only in the check.
 *
 * The authorization server: `enable: ['client_credentials_grant', 'jwt_access_tokens']`, one ES256
 * key, default options otherwise (client secrets bcrypt cost 10, verified-secret cache on), on a
 * SQLite file (WAL) or, with BENCH_DATABASE_URL, a fresh PostgreSQL schema. Only `protected` has a
 * target (≥ 0.90×, issue 13); the others are reported.
 *
 * Environment: BENCH_ONLY=protected,resource-server (a subset), BENCH_ROUNDS (default 3), BENCH_DURATION (seconds, default 3), BENCH_WARM_UP,
 * BENCH_CONNECTIONS, BENCH_DATABASE_URL, BENCH_PG_POOL, BENCH_SERVER_CPU, BENCH_LOAD_CPU.
 */
import type autocannon from 'autocannon';
import express, { type Request, type Response } from 'express';
import { exportJWK, generateKeyPair } from 'jose';
import { oauth, resourceServer, type OAuthRouter } from '../lib';
import { randomToken } from '../lib/crypto';
import { answerCpu, bareApiMe, closeOnDisconnect, bareTokenRoute, basic, benchDatabase, benchMain, benchSettings, comparePairs, listen, pinningNote, printOutcomes, startServer, type Outcome } from './support';

const SETTINGS = benchSettings({ rounds: 3, duration: 3 });
const TARGETS: Record<string, number | undefined> = { protected: 0.9 };
const SCENARIOS = ['protected', 'protected-route', 'protected-uncached', 'token-jwt', 'token-jwt/opaque', 'resource-server'];
/** BENCH_ONLY=protected,resource-server runs some scenarios only. */
const ONLY = new Set((process.env.BENCH_ONLY ?? SCENARIOS.join(',')).split(',').map((s) => s.trim()));
for (const name of ONLY) if (!SCENARIOS.includes(name)) throw new Error(`BENCH_ONLY: unknown scenario ${name} (${SCENARIOS.join(', ')})`);

interface Credentials {
  clientId: string;
  clientSecret: string;
}

/** What the authorization server's child tells the runner once it listens. */
interface AsSetup {
  label: string;
  issuer: string;
  bare: string;
  /** The app whose protected route comes before the OAuth router (`protected-route`). */
  routeFirst: string;
  /** A client whose tokens are JWTs (the server's default format). */
  jwtClient: Credentials;
  /** A client whose tokens are opaque (`accessTokenFormat: 'opaque'`). */
  opaqueClient: Credentials;
  /** A JWT access token with the scope profile. */
  jwt: string;
}

/** What the resource server's child tells the runner. */
interface RsSetup {
  rs: string;
  bare: string;
}

// ---------------------------------------------------------------------------------------------
// The serving children.

/** `--serve`: the authorization server (and its bare twin); `--serve --rs ISSUER TOKEN`: the resource server (and its bare twin). */
function serve(): Promise<void> {
  const i = process.argv.indexOf('--rs');
  return i === -1 ? serveAuthorizationServer() : serveResourceServer(process.argv[i + 1]!, process.argv[i + 2]!);
}

async function serveAuthorizationServer(): Promise<void> {
  const database = await benchDatabase('jwt');
  const ours = express();
  // Listening first: the issuer is the origin, so that resourceServer() discovers its metadata there.
  const { server: ourServer, origin: issuer } = await listen(ours);
  const { privateKey } = await generateKeyPair('ES256', { extractable: true });
  const options = {
    db: database.db,
    issuer,
    enable: ['client_credentials_grant', 'jwt_access_tokens'],
    oauthJwtKeys: [{ key: await exportJWK(privateKey), alg: 'ES256' }],
    oauthJwtAccessTokenCheckRevocation: false,
  };
  const auth = oauth(options as never) as OAuthRouter;
  // The same server without the verified-token cache: every request pays the signature check.
  const uncached = oauth({ ...options, oauthJwtAccessTokenCacheSize: 0 } as never) as OAuthRouter;
  await auth.migrate();
  const client = async (accessTokenFormat: 'jwt' | 'opaque'): Promise<Credentials> => {
    const created = await auth.createApplication({ name: `Bench ${accessTokenFormat} client`, scopes: ['profile'], redirectUri: ['https://bench.example/cb'], grantTypes: ['client_credentials'], accessTokenFormat });
    return { clientId: created.clientId, clientSecret: created.clientSecret! };
  };
  const jwtClient = await client('jwt');
  const opaqueClient = await client('opaque');
  // The same protected route registered before the OAuth router, in an app of its own (so that
  // the app of `protected` holds only what it measures): its requests never pass the router, as
  // in a host that mounts the router under a prefix, or after its API routes.
  const routeFirst = express();
  routeFirst.get('/api/me', auth.requireOauthAuthorization('profile'), (req: Request, res: Response) => {
    res.json(req.oauth);
  });
  routeFirst.use(auth);
  const { server: routeFirstServer, origin: routeFirstOrigin } = await listen(routeFirst);
  ours.use(auth);
  ours.get('/api/me', auth.requireOauthAuthorization('profile'), (req: Request, res: Response) => {
    res.json(req.oauth);
  });
  ours.get('/api/me-uncached', uncached.requireOauthAuthorization('profile'), (req: Request, res: Response) => {
    res.json(req.oauth);
  });

  const jwt = await clientCredentials(issuer, jwtClient);
  if (jwt.split('.').length !== 3) throw new Error('the jwt client got no JWT');
  const bare = express();
  bareTokenRoute(bare, randomToken);
  const { server: bareServer, origin: bareOrigin } = await bareApiMe(issuer, jwt, bare);

  const setup: AsSetup = { label: database.label, issuer, bare: bareOrigin, routeFirst: routeFirstOrigin, jwtClient, opaqueClient, jwt };
  process.send!(setup);
  answerCpu();
  closeOnDisconnect([bareServer, ourServer, routeFirstServer], database);
}

async function serveResourceServer(issuer: string, jwt: string): Promise<void> {
  const rs = resourceServer({ issuer, audience: issuer });
  await rs.ready();
  const app = express();
  app.get('/api/me', rs.require('profile'), (req: Request, res: Response) => {
    res.json(req.oauth);
  });
  const { server, origin } = await listen(app);
  const { server: bareServer, origin: bareOrigin } = await bareApiMe(origin, jwt);
  const setup: RsSetup = { rs: origin, bare: bareOrigin };
  process.send!(setup);
  answerCpu();
  closeOnDisconnect([server, bareServer]);
}

async function clientCredentials(origin: string, client: Credentials): Promise<string> {
  const res = await fetch(`${origin}/token`, {
    method: 'POST',
    headers: { authorization: basic(client.clientId, client.clientSecret), 'content-type': 'application/x-www-form-urlencoded' },
    body: 'grant_type=client_credentials',
  });
  if (res.status !== 200) throw new Error(`POST ${origin}/token: ${res.status} ${await res.text()}`);
  return ((await res.json()) as { access_token: string }).access_token;
}

// ---------------------------------------------------------------------------------------------
// The runner.

async function main(): Promise<void> {
  const { setup, child: as } = await startServer<AsSetup>();
  // The second process: its own child on the same server CPU (the authorization server is idle
  // while it is measured: the keys are fetched once, at ready()).
  const { setup: rsSetup, child: rs } = await startServer<RsSetup>(['--rs', setup.issuer, setup.jwt]);
  const { connections, duration, warmUp, rounds } = SETTINGS;
  console.log(`express-oauth-features JWT access tokens bench: ${connections} connections, ${rounds} pairs of ${duration} s rounds after a ${warmUp} s warm-up, median pair`);
  console.log(pinningNote());
  console.log(`${setup.label}, ES256, oauthJwtAccessTokenCheckRevocation off, client secret bcrypt cost 10 (verified-secret cache on); resourceServer() in a second process on the same server CPU\n`);

  const tokenPost = (origin: string, client: Credentials): autocannon.Options => ({
    url: `${origin}/token`,
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: basic(client.clientId, client.clientSecret) },
    body: 'grant_type=client_credentials',
  });
  const apiGet = (origin: string, token?: string, path = '/api/me'): autocannon.Options => ({ url: `${origin}${path}`, headers: token ? { authorization: `Bearer ${token}` } : {} });

  const results: Outcome[] = [];
  const measure = async (name: string, server: typeof as, bare: () => autocannon.Options, ours: () => autocannon.Options) => {
    if (ONLY.has(name)) results.push(await comparePairs(name, server, SETTINGS, bare, ours));
  };
  await measure('protected', as, () => apiGet(setup.bare, setup.jwt), () => apiGet(setup.issuer, setup.jwt));
  await measure('protected-route', as, () => apiGet(setup.bare, setup.jwt), () => apiGet(setup.routeFirst, setup.jwt));
  await measure('protected-uncached', as, () => apiGet(setup.bare, setup.jwt), () => apiGet(setup.issuer, setup.jwt, '/api/me-uncached'));
  await measure('token-jwt', as, () => tokenPost(setup.bare, setup.jwtClient), () => tokenPost(setup.issuer, setup.jwtClient));
  await measure('token-jwt/opaque', as, () => tokenPost(setup.issuer, setup.opaqueClient), () => tokenPost(setup.issuer, setup.jwtClient));
  await measure('resource-server', rs, () => apiGet(rsSetup.bare, setup.jwt), () => apiGet(rsSetup.rs, setup.jwt));
  rs.disconnect();
  as.disconnect();

  const missed = printOutcomes(results, TARGETS);
  console.log('(token-jwt/opaque: the "bare" columns are POST /token issuing opaque tokens)');
  // The protected route makes no query, so its target holds on PostgreSQL too.
  process.exitCode = missed ? 1 : 0;
}

benchMain(serve, main);
