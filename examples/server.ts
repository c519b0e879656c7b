/**
 * The demo: one Express 5 process hosting
 *  - the authorization server (this package) on an embedded SQLite file,
 *  - a Passport login with one demo user, and a protected `GET /api/me`,
 *  - a demo OAuth client (`/client`) that runs the authorization code flow with PKCE S256
 *    against that server with plain `fetch`, then refreshes, introspects and revokes.
 *
 *   npm install && npm start          # http://127.0.0.1:3000 (PORT, HOST, PUBLIC_URL to change it)
 *
 * `createDemoApp()` is exported so the browser spec can start the same app on port 0.
 */
import express, { type Express, type NextFunction, type Request, type Response } from 'express';
import session from 'express-session';
import passport from 'passport';
import { Strategy as LocalStrategy } from 'passport-local';
import knex, { type Knex } from 'knex';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join, resolve } from 'node:path';
import { oauth, type OAuthRouter } from '../lib';
import { constantTimeEqual, randomToken, sha256 } from '../lib/crypto';
import { generateKeyPairSync } from 'node:crypto';
import { createRemoteJWKSet, jwtVerify, type JWK } from 'jose';
import { closeOnSignal, runWhenMain } from './run';

/** The grants page of `grant_management` (its default `oauthGrantsRoute`, the router mounted at the root). */
const GRANTS_PATH = '/oauth-grants';

/** The features the demo shows. */
export const DEMO_FEATURES = [
  'authorization_code_grant',
  'pkce',
  'refresh',
  'client_credentials_grant',
  'token_revocation',
  'token_introspection',
  'grant_management',
  'oidc',
] as const;

/** The scopes of the demo client: `openid` makes it an OpenID Connect login (ID token, userinfo); `/api/me` requires `profile`. */
const DEMO_SCOPES = ['openid', 'profile', 'email'];

/** What the consent and grants pages say each demo scope gives (`oauthScopeDescriptions`). */
const DEMO_SCOPE_DESCRIPTIONS = { openid: 'Sign you in with your demo account', profile: 'See your name and username', email: 'See your email address' };

export interface DemoUser {
  id: string;
  username: string;
  password: string;
  name: string;
  email: string;
}

export interface DemoClient {
  clientId: string;
  clientSecret: string;
  redirectUri: string;
}

export interface DemoOptions {
  /** A knex instance; default: a fresh in-memory SQLite database (destroyed by `close()`). */
  db?: Knex;
  /** Port to listen on; 0 (default) picks a free one. */
  port?: number;
  /** Interface to listen on; default: 127.0.0.1, this machine only. */
  host?: string;
  /**
   * The origin browsers reach the demo at, and so its issuer (`https://demo.example`, behind a
   * proxy); default: `http://<host>:<port>`, with `localhost` for a wildcard host (0.0.0.0, ::).
   */
  publicUrl?: string;
  /** Where the seeded client's credentials are kept between runs (a secret is only known at creation). */
  clientFile?: string;
  /** Reuse the client in `clientFile` (only when the database is the one it was created in). */
  reuseClient?: boolean;
  username?: string;
  password?: string;
  /** express-session secret; default: random per process. */
  sessionSecret?: string;
}

export interface Demo {
  app: Express;
  auth: OAuthRouter;
  server: Server;
  /** `http://127.0.0.1:<port>` by default (see `listeningOrigin`): the issuer, and the origin the demo client redirects to. */
  origin: string;
  user: DemoUser;
  client: DemoClient;
  close(): Promise<void>;
}

/** What the demo client keeps in the browser's session. */
interface ClientState {
  /** The authorization request in flight: RFC 6749 §10.12 state and the RFC 7636 verifier. */
  pending?: { state: string; verifier: string; nonce: string };
  /** The live tokens; dropped once revoked or replaced by a new authorization response. */
  tokens?: { accessToken: string; refreshToken?: string; tokenType: string; expiresIn?: number; scope?: string; obtainedAt: string };
  /** What the last Revoke revoked, after which the client discarded its tokens (RFC 7009 §2.2). */
  revoked?: 'refresh token' | 'access token';
  /** The last `/api/me` answer; `revokedToken` when it was asked with the access token just revoked. */
  me?: { status: number; body: unknown; revokedToken?: boolean };
  introspection?: { status: number; body: unknown };
  /** OpenID Connect: the claims of the last ID token (verified), and the userinfo answer. */
  idToken?: Record<string, unknown>;
  userinfo?: { status: number; body: unknown };
  message?: string;
  error?: string;
}

declare module 'express-session' {
  interface SessionData {
    csrf?: string;
    demoClient?: ClientState;
  }
}

/** Server metadata (RFC 8414) as far as the demo client reads it. */
interface Metadata {
  issuer: string;
  authorization_endpoint?: string;
  token_endpoint: string;
  revocation_endpoint?: string;
  introspection_endpoint?: string;
  grant_types_supported?: string[];
  authorization_response_iss_parameter_supported?: boolean;
  jwks_uri?: string;
  userinfo_endpoint?: string;
}

/** Builds the demo app and listens; resolves once the schema exists and the client is seeded. */
export async function createDemoApp(options: DemoOptions = {}): Promise<Demo> {
  const ownDb = options.db === undefined;
  const db = options.db ?? knex({ client: 'better-sqlite3', connection: { filename: ':memory:' }, useNullAsDefault: true, pool: { min: 1, max: 1 } });
  const user: DemoUser = {
    id: '1',
    username: options.username ?? 'demo',
    password: options.password ?? 'demo',
    name: 'Demo User',
    email: 'demo@example.com',
  };

  const app = express();
  const server = createServer(app);
  const host = options.host ?? '127.0.0.1';
  const publicOrigin = options.publicUrl === undefined ? undefined : originOf(options.publicUrl); // throws before listening
  await new Promise<void>((done, fail) => {
    server.once('error', fail);
    server.listen(options.port ?? 0, host, () => done());
  });
  const { port } = server.address() as AddressInfo;
  const origin = publicOrigin ?? listeningOrigin(host, port);

  const auth = oauth({
    db,
    enable: DEMO_FEATURES,
    issuer: origin,
    oauthApplicationScopes: DEMO_SCOPES,
    oauthScopeDescriptions: DEMO_SCOPE_DESCRIPTIONS,
    // RFC 7662 §2.2 `username`: only the host knows its accounts' login names.
    introspectionUsername: async (ctx, grant, application) => (grant.accountId === user.id ? user.username : ctx.super.introspectionUsername(grant, application)),
    // OpenID Connect: keys made for this process (the first, ES256, signs; ID tokens take the RS256
    // one, which OpenID Connect Discovery §3 requires an OP to offer), and the demo user's claims.
    oauthJwtKeys: [
      { key: generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ format: 'jwk' }) as JWK, alg: 'ES256' },
      { key: generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey.export({ format: 'jwk' }) as JWK, alg: 'RS256' },
    ],
    accountClaims: async (_ctx, accountId) => (accountId === user.id ? { name: user.name, preferred_username: user.username, email: user.email, email_verified: true } : {}),
  });
  await auth.migrate();
  const client = await seedClient(auth, origin, options);

  app.set('view engine', 'ejs');
  app.set('views', viewsDir());
  app.disable('x-powered-by');
  app.use(
    session({
      name: 'demo.sid',
      secret: options.sessionSecret ?? randomToken(),
      resave: false,
      saveUninitialized: false,
      cookie: { httpOnly: true, sameSite: 'lax' },
    }),
  );
  const authenticator = new passport.Passport();
  authenticator.use(
    new LocalStrategy(function verifyDemoUser(username, password, done) {
      // Both comparisons always run, in constant time, so the answer leaks neither part.
      const ok = [constantTimeEqual(username, user.username), constantTimeEqual(password, user.password)].every(Boolean);
      done(null, ok ? user : false);
    }),
  );
  authenticator.serializeUser((u, done) => done(null, (u as DemoUser).id));
  authenticator.deserializeUser((id: string, done) => done(null, id === user.id ? user : false));
  app.use(authenticator.initialize());
  app.use(authenticator.session());
  app.use(function exposeLocals(req: Request, res: Response, next: NextFunction) {
    res.locals.currentUser = req.user as DemoUser | undefined;
    res.locals.grantsPath = GRANTS_PATH;
    res.locals.csrf = csrfToken(req);
    next();
  });

  app.use(auth);

  app.get('/api/me', auth.requireOauthAuthorization('profile'), function apiMe(req: Request, res: Response) {
    // The bearer token itself is not echoed back.
    const { token: _token, ...authorization } = req.oauth!;
    const owner = authorization.accountId === user.id ? { id: user.id, username: user.username, name: user.name, email: user.email } : null;
    res.json({ ...authorization, user: owner });
  });

  const form = express.urlencoded({ extended: false, limit: '16kb' });
  mountHostPages(app, form, authenticator, origin, client);
  mountDemoClient(app, form, origin, client);
  app.use(function demoErrorPage(err: unknown, _req: Request, res: Response, _next: NextFunction) {
    // Logged here, never shown: the page says only that something failed.
    console.error(err);
    if (!res.headersSent) res.status(500).type('text/plain').send('Internal error');
  });

  return {
    app,
    auth,
    server,
    origin,
    user,
    client,
    async close() {
      await new Promise<void>((done) => server.close(() => done()));
      server.closeAllConnections();
      if (ownDb) await db.destroy();
    },
  };
}

// ---------------------------------------------------------------------------------------------
// The host application: home, login, logout.

function mountHostPages(app: Express, form: express.RequestHandler, authenticator: passport.Authenticator, origin: string, client: DemoClient): void {
  app.get('/', function home(_req: Request, res: Response) {
    res.render('home', { origin, clientId: client.clientId });
  });

  app.get('/login', function loginPage(req: Request, res: Response) {
    const returnTo = safeReturnTo(req.query.return_to);
    if (req.user) return res.redirect(returnTo ?? '/');
    res.render('login', { returnTo: returnTo ?? '', error: null, username: '' });
  });

  app.post('/login', form, requireCsrf, function login(req: Request, res: Response, next: NextFunction) {
    const returnTo = safeReturnTo(req.body?.return_to);
    authenticator.authenticate('local', function loggedIn(err: unknown, found: DemoUser | false) {
      if (err) return next(err);
      if (!found) {
        res.status(401);
        return res.render('login', { returnTo: returnTo ?? '', error: 'Invalid username or password.', username: typeof req.body?.username === 'string' ? req.body.username : '' });
      }
      // Passport regenerates the session id (no fixation); keep what the demo client stored in it.
      req.logIn(found, { session: true, keepSessionInfo: true }, (e) => (e ? next(e) : res.redirect(returnTo ?? '/')));
    })(req, res, next);
  });

  app.post('/logout', form, requireCsrf, function logout(req: Request, res: Response, next: NextFunction) {
    req.logOut((err) => (err ? next(err) : res.redirect('/')));
  });
}

/**
 * `return_to` is followed only when it is a path on this server: it starts with exactly one
 * '/', and has no backslash (browsers read `/\host` as `//host`) or control character. Anything
 * else (`//evil.example`, `https://…`, `javascript:`) is ignored: no open redirect.
 */
export function safeReturnTo(value: unknown): string | undefined {
  if (typeof value !== 'string' || value.length > 8192) return undefined;
  if (!value.startsWith('/') || value.startsWith('//')) return undefined;
  if (/[\\\u0000-\u001f\u007f]/.test(value)) return undefined;
  return value;
}

/** The session's CSRF token for the demo's own forms, created on first use. */
function csrfToken(req: Request): string {
  if (!req.session.csrf) req.session.csrf = randomToken();
  return req.session.csrf;
}

function requireCsrf(req: Request, res: Response, next: NextFunction): void {
  const sent: unknown = req.body?._csrf;
  const expected = req.session.csrf;
  if (typeof sent === 'string' && expected && constantTimeEqual(sent, expected)) return next();
  res.status(403).type('text/plain').send('Invalid or missing CSRF token. Reload the page and try again.');
}

// ---------------------------------------------------------------------------------------------
// The demo client: a confidential server-side client talking to the server with plain fetch.

function mountDemoClient(app: Express, form: express.RequestHandler, origin: string, client: DemoClient): void {
  let metadata: Metadata | undefined;
  async function discover(): Promise<Metadata> {
    if (!metadata) {
      const res = await call(`${origin}/.well-known/oauth-authorization-server`, {});
      if (res.status !== 200) throw new Error(`metadata: HTTP ${res.status}`);
      metadata = res.body as Metadata;
    }
    return metadata;
  }
  const state = (req: Request): ClientState => (req.session.demoClient ??= {});
  const basicAuth = `Basic ${Buffer.from(`${formEncode(client.clientId)}:${formEncode(client.clientSecret)}`).toString('base64')}`;
  const post = (url: string, params: Record<string, string>) =>
    call(url, { method: 'POST', headers: { authorization: basicAuth, 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams(params).toString() });
  const callApi = (accessToken: string) => call(`${origin}/api/me`, { headers: { authorization: `Bearer ${accessToken}` } });

  /**
   * OpenID Connect Core §3.1.3.7: the ID token's signature (the server's jwks_uri), iss, aud, exp,
   * and the nonce of this browser's request (a refresh's ID token has none, §12.2, and keeps `sub`).
   */
  async function verifyIdToken(s: ClientState, idToken: string, nonce: string | undefined): Promise<Record<string, unknown>> {
    const meta = await discover();
    if (!meta.jwks_uri) throw new Error('an ID token, but no jwks_uri to verify it with');
    const { payload } = await jwtVerify(idToken, (jwks ??= createRemoteJWKSet(new URL(meta.jwks_uri))), { issuer: meta.issuer, audience: client.clientId });
    if (nonce !== undefined && payload.nonce !== nonce) throw new Error('ID token nonce mismatch');
    if (nonce === undefined && s.idToken && payload.sub !== s.idToken.sub) throw new Error('the refreshed ID token names another user');
    return payload as Record<string, unknown>;
  }
  let jwks: ReturnType<typeof createRemoteJWKSet> | undefined;

  async function storeTokens(s: ClientState, body: unknown, nonce?: string): Promise<void> {
    const t = body as { access_token: string; refresh_token?: string; token_type: string; expires_in?: number; scope?: string; id_token?: string };
    const meta = await discover();
    s.idToken = t.id_token ? await verifyIdToken(s, t.id_token, nonce) : undefined;
    s.userinfo = t.id_token && meta.userinfo_endpoint ? await call(meta.userinfo_endpoint, { headers: { authorization: `Bearer ${t.access_token}` } }) : undefined;
    s.tokens = {
      accessToken: t.access_token,
      // With rotation a refresh answer carries the new refresh token; with policy 'none' it has none, so keep the old one.
      refreshToken: t.refresh_token ?? s.tokens?.refreshToken,
      tokenType: t.token_type,
      expiresIn: t.expires_in,
      scope: t.scope,
      obtainedAt: new Date().toISOString(),
    };
    s.revoked = undefined;
    s.introspection = undefined;
    s.me = await callApi(t.access_token);
  }

  /** Runs one client action; any failure is shown on the client page (after a redirect). */
  const action = (name: string, fn: (req: Request, s: ClientState) => Promise<string | void>) =>
    function demoClientAction(req: Request, res: Response): void {
      const s = state(req);
      s.error = undefined;
      s.message = undefined;
      fn(req, s).then(
        (redirect) => res.redirect(redirect ?? '/client'),
        (e: unknown) => {
          s.error = `${name}: ${e instanceof Error ? e.message : String(e)}`;
          res.redirect('/client');
        },
      );
    };

  app.get('/client', function clientPage(req: Request, res: Response) {
    // The flow's state lives in the session cookie of one host name: keep the browser on it.
    if (req.get('host') !== new URL(origin).host) return res.redirect(`${origin}/client`);
    const s = state(req);
    discover().then(
      (meta) => res.render('client', { s, meta, demoClient: { clientId: client.clientId, redirectUri: client.redirectUri }, json: pretty }),
      (e: unknown) => res.status(502).type('text/plain').send(`Cannot read the server metadata: ${e instanceof Error ? e.message : String(e)}`),
    );
  });

  // RFC 6749 §4.1.1 + RFC 7636 §4: a fresh state and verifier per attempt, kept in the session.
  app.post(
    '/client/login',
    form,
    requireCsrf,
    action('Log in', async (_req, s) => {
      const meta = await discover();
      if (!meta.authorization_endpoint) throw new Error('the server does not offer the authorization code grant');
      const pending = { state: randomToken(16), verifier: randomToken(32), nonce: randomToken(16) };
      s.pending = pending;
      const url = new URL(meta.authorization_endpoint);
      url.search = new URLSearchParams({
        response_type: 'code',
        client_id: client.clientId,
        redirect_uri: client.redirectUri,
        scope: DEMO_SCOPES.join(' '),
        state: pending.state,
        code_challenge: sha256(pending.verifier), // S256: base64url(SHA-256(verifier))
        code_challenge_method: 'S256',
        nonce: pending.nonce, // OpenID Connect Core §3.1.2.1: echoed in the ID token
      }).toString();
      return url.toString();
    }),
  );

  app.get(
    '/client/callback',
    action('Callback', async (req, s) => {
      const q = req.query as Record<string, unknown>;
      const pending = s.pending;
      s.pending = undefined; // one attempt per state
      if (!pending || typeof q.state !== 'string' || !constantTimeEqual(q.state, pending.state)) throw new Error('state mismatch: this response does not answer a request of this browser');
      // The answer to this browser's request replaces what the last flow left, an error included:
      // after a deny the page shows the error, not the old tokens beside it.
      s.tokens = undefined;
      s.revoked = undefined;
      s.me = undefined;
      s.introspection = undefined;
      s.idToken = undefined;
      s.userinfo = undefined;
      const meta = await discover();
      // RFC 9207 §2.4: the response must come from the server the request went to.
      if (q.iss !== undefined || meta.authorization_response_iss_parameter_supported) {
        if (q.iss !== meta.issuer) throw new Error(`unexpected issuer ${JSON.stringify(q.iss)}`);
      }
      if (typeof q.error === 'string') throw new Error(`${q.error}${typeof q.error_description === 'string' ? ` (${q.error_description})` : ''}`);
      if (typeof q.code !== 'string') throw new Error('no code in the response');
      const res = await post(meta.token_endpoint, { grant_type: 'authorization_code', code: q.code, redirect_uri: client.redirectUri, code_verifier: pending.verifier });
      if (res.status !== 200) throw new Error(`token endpoint answered ${res.status} ${pretty(res.body)}`);
      await storeTokens(s, res.body, pending.nonce);
      s.message = 'Logged in: code exchanged for tokens.';
    }),
  );

  app.post(
    '/client/refresh',
    form,
    requireCsrf,
    action('Refresh', async (_req, s) => {
      if (!s.tokens?.refreshToken) throw new Error('no refresh token');
      const meta = await discover();
      const res = await post(meta.token_endpoint, { grant_type: 'refresh_token', refresh_token: s.tokens.refreshToken });
      if (res.status !== 200) {
        s.me = undefined;
        throw new Error(`token endpoint answered ${res.status} ${pretty(res.body)}`);
      }
      await storeTokens(s, res.body);
      s.message = 'Refreshed: new tokens issued.';
    }),
  );

  app.post(
    '/client/revoke',
    form,
    requireCsrf,
    action('Revoke', async (_req, s) => {
      if (!s.tokens) throw new Error('no token to revoke');
      const meta = await discover();
      if (!meta.revocation_endpoint) throw new Error('the server has no revocation endpoint');
      // Revoking the refresh token revokes the whole grant, its access token included (RFC 7009 §2.1).
      const [token, hint] = s.tokens.refreshToken ? [s.tokens.refreshToken, 'refresh_token'] : [s.tokens.accessToken, 'access_token'];
      const res = await post(meta.revocation_endpoint, { token, token_type_hint: hint });
      if (res.status !== 200) throw new Error(`revocation endpoint answered ${res.status} ${pretty(res.body)}`);
      // RFC 7009 §2.2: the client discards the revoked tokens; one last call shows the server refusing the access token.
      const revokedAccessToken = s.tokens.accessToken;
      const what = hint === 'refresh_token' ? 'refresh token' : 'access token';
      s.tokens = undefined;
      s.revoked = what;
      s.introspection = undefined;
      s.idToken = undefined;
      s.userinfo = undefined;
      s.me = { ...(await callApi(revokedAccessToken)), revokedToken: true };
      s.message = `Revoked the ${what}. The client discarded its tokens.`;
    }),
  );

  app.post(
    '/client/introspect',
    form,
    requireCsrf,
    action('Introspect', async (_req, s) => {
      if (!s.tokens) throw new Error('no token to introspect');
      const meta = await discover();
      if (!meta.introspection_endpoint) throw new Error('the server has no introspection endpoint');
      s.introspection = await post(meta.introspection_endpoint, { token: s.tokens.accessToken, token_type_hint: 'access_token' });
      s.message = 'Introspected the access token.';
    }),
  );

  app.post(
    '/client/api',
    form,
    requireCsrf,
    action('Call /api/me', async (_req, s) => {
      if (!s.tokens) throw new Error('no access token');
      s.me = await callApi(s.tokens.accessToken);
    }),
  );

  app.post(
    '/client/forget',
    form,
    requireCsrf,
    action('Forget', async (req) => {
      req.session.demoClient = {};
    }),
  );
}

/** A request whose answer is returned as `{ status, body }` (JSON when it is JSON). */
async function call(url: string, init: RequestInit): Promise<{ status: number; body: unknown }> {
  const res = await fetch(url, { ...init, redirect: 'manual' });
  const text = await res.text();
  let body: unknown = text;
  if ((res.headers.get('content-type') ?? '').includes('json')) {
    try {
      body = JSON.parse(text);
    } catch {
      body = text;
    }
  }
  return { status: res.status, body };
}

/** RFC 6749 §2.3.1: client id and secret are form-encoded before Basic encoding. */
function formEncode(s: string): string {
  return encodeURIComponent(s).replace(/%20/g, '+');
}

function pretty(v: unknown): string {
  return typeof v === 'string' ? v : JSON.stringify(v, null, 2);
}

// ---------------------------------------------------------------------------------------------
// Seeding and start-up.

/**
 * The demo client: reused from `clientFile` when it was made for this database and origin,
 * otherwise created (its secret is only known now) and written there, readable by its owner only.
 */
async function seedClient(auth: OAuthRouter, origin: string, options: DemoOptions): Promise<DemoClient> {
  const redirectUri = `${origin}/client/callback`;
  if (options.clientFile && options.reuseClient && existsSync(options.clientFile)) {
    try {
      const saved = JSON.parse(readFileSync(options.clientFile, 'utf8')) as Partial<DemoClient>;
      if (typeof saved.clientId === 'string' && typeof saved.clientSecret === 'string' && saved.redirectUri === redirectUri) {
        // A client saved by an older demo may lack a scope the demo asks for now (openid).
        await auth.applications.update(saved.clientId, { scopes: DEMO_SCOPES });
        return { clientId: saved.clientId, clientSecret: saved.clientSecret, redirectUri };
      }
    } catch {
      // unreadable: create a new client below
    }
  }
  const created = await auth.createApplication({
    name: 'Demo client',
    description: 'The demo client page of express-oauth-features, running in the same process.',
    homepageUrl: `${origin}/client`,
    redirectUri: [redirectUri],
    scopes: DEMO_SCOPES,
    tokenEndpointAuthMethod: 'client_secret_basic',
    // The code flow the demo page runs, and the client credentials curl printed at start-up.
    grantTypes: ['authorization_code', 'refresh_token', 'client_credentials'],
  });
  const client = { clientId: created.clientId, clientSecret: created.clientSecret!, redirectUri };
  if (options.clientFile) writeFileSync(options.clientFile, `${JSON.stringify(client, null, 2)}\n`, { mode: 0o600 });
  return client;
}

/** The origin of `publicUrl`, which must be an http(s) origin and nothing more. */
export function originOf(publicUrl: string): string {
  let url: URL | undefined;
  try {
    url = new URL(publicUrl);
  } catch {
    url = undefined;
  }
  if (!url || !['http:', 'https:'].includes(url.protocol) || url.pathname !== '/' || url.search || url.hash || url.username || url.password) {
    throw new Error(`PUBLIC_URL must be an http(s) origin such as https://demo.example, got '${publicUrl}'`);
  }
  return url.origin;
}

/** The origin of the address the demo listens on: `localhost` for a wildcard host, brackets for IPv6. */
export function listeningOrigin(host: string, port: number): string {
  const name = ['', '0.0.0.0', '::'].includes(host) ? 'localhost' : host.includes(':') ? `[${host}]` : host;
  return `http://${name}:${port}`;
}

/** Where `npm start` listens, from the environment: PORT (3000), HOST (127.0.0.1), PUBLIC_URL (checked here). */
export function listenSettings(env: NodeJS.ProcessEnv): { port: number; host: string; publicUrl?: string } {
  const port = env.PORT === undefined || env.PORT === '' ? 3000 : Number(env.PORT);
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new Error(`PORT must be a port number, got '${env.PORT}'`);
  const publicUrl = env.PUBLIC_URL || undefined;
  if (publicUrl !== undefined) originOf(publicUrl);
  return { port, host: env.HOST || '127.0.0.1', publicUrl };
}

/** The EJS views: next to this file under ts-node/jest, or in the sources when run from dist/. */
function viewsDir(): string {
  const candidates = [join(__dirname, 'views'), resolve(__dirname, '../../examples/views')];
  return candidates.find((d) => existsSync(d)) ?? candidates[0]!;
}

async function main(): Promise<void> {
  const { port, host, publicUrl } = listenSettings(process.env);
  const dir = resolve(process.cwd(), '.tmp');
  mkdirSync(dir, { recursive: true });
  const dbFile = join(dir, 'demo.sqlite3');
  const existed = existsSync(dbFile);
  // WAL: a commit appends to a log instead of rewriting a rollback journal (see the README's SQLite section).
  const db = knex({
    client: 'better-sqlite3',
    connection: { filename: dbFile },
    useNullAsDefault: true,
    pool: {
      afterCreate(conn: { pragma(p: string): unknown }, done: (err: Error | null, conn: unknown) => void) {
        conn.pragma('journal_mode = WAL');
        conn.pragma('busy_timeout = 100'); // short: the store's writer retries on timers, never inside SQLite
        done(null, conn);
      },
    },
  });
  const demo = await createDemoApp({
    db,
    port,
    host,
    publicUrl,
    clientFile: join(dir, 'demo-client.json'),
    reuseClient: existed,
    password: process.env.DEMO_PASSWORD,
    sessionSecret: process.env.SESSION_SECRET,
  });
  const o = demo.origin;
  console.log(`express-oauth-features demo on ${o}  (SQLite: ${dbFile})

  Demo client page   ${o}/client      ← start here
  Log in             ${o}/login       user "${demo.user.username}", password "${demo.user.password}"
  Protected API      ${o}/api/me      (scope "profile")
  Authorized apps    ${o}${GRANTS_PATH}  (see and revoke what you allowed)
  Server metadata    ${o}/.well-known/oauth-authorization-server
  Token endpoint     ${o}/token

  Demo client        client_id     ${demo.client.clientId}
                     client_secret ${demo.client.clientSecret}
                     redirect_uri  ${demo.client.redirectUri}

  Client credentials grant:
    curl -s -u '${demo.client.clientId}:${demo.client.clientSecret}' -d grant_type=client_credentials ${o}/token
`);
  closeOnSignal(() => demo.close().then(() => db.destroy()));
}

runWhenMain(module, main);
