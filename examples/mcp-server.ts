/**
 * An MCP server (Model Context Protocol, Streamable HTTP transport of `@modelcontextprotocol/sdk`)
 * whose tools only an authorized client can call, with this package as its authorization server
 * in the same process, on an embedded SQLite file:
 *  - `auth.protectedResource()` serves the RFC 9728 document the MCP client discovers from the
 *    401, and checks that each token was issued for this MCP server (RFC 8707 audience);
 *  - MCP clients register themselves (RFC 7591 dynamic client registration) or identify with a
 *    client ID metadata document (an https URL as `client_id`), then run the authorization code
 *    flow with PKCE and refresh their tokens;
 *  - a Passport login with one demo user (the host's own login, as in examples/server.ts) and
 *    this package's consent page.
 *
 *   npm run build && npm run start:mcp      # MCP endpoint http://127.0.0.1:3001/mcp (PORT, HOST)
 *
 * Then point an MCP client at the endpoint, e.g. `npx @modelcontextprotocol/inspector`
 * (Streamable HTTP, http://127.0.0.1:3001/mcp): it discovers the server, registers, sends you to
 * log in and consent, and calls the tools. `createMcpApp()` is exported for the interop specs.
 */
import express, { type Express, type NextFunction, type Request, type Response } from 'express';
import session from 'express-session';
import passport from 'passport';
import { Strategy as LocalStrategy } from 'passport-local';
import knex, { type Knex } from 'knex';
import { existsSync, mkdirSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join, resolve } from 'node:path';
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import { z } from 'zod';
import { oauth, type OAuthRouter, type ProtectedResource } from '../lib';
import { constantTimeEqual, randomToken } from '../lib/crypto';
import { safeReturnTo } from './server';
import { closeOnSignal, runWhenMain } from './run';

/** Everything an MCP client needs of the authorization server (MCP authorization, 2025-11-25). */
export const MCP_FEATURES = [
  'authorization_code_grant',
  'pkce',
  'refresh',
  'resource_indicators',
  'dynamic_client_registration',
  'client_id_metadata_documents',
] as const;

export interface McpDemoOptions {
  /** A knex instance; default: a fresh in-memory SQLite database (destroyed by `close()`). */
  db?: Knex;
  /** Port to listen on; 0 (default) picks a free one. */
  port?: number;
  /** Interface to listen on; default 127.0.0.1. The issuer is `http://<host>:<port>`. */
  host?: string;
  username?: string;
  password?: string;
  /** express-session secret; default: random per process. */
  sessionSecret?: string;
  /** More `oauth()` options, merged last (the interop specs set a clock and trusted certificates). */
  oauthOptions?: Record<string, unknown>;
}

export interface McpDemo {
  app: Express;
  auth: OAuthRouter;
  mcp: ProtectedResource;
  server: Server;
  /** `http://127.0.0.1:<port>`: the issuer. */
  origin: string;
  /** `<origin>/mcp`: the MCP endpoint, and the resource its tokens are bound to. */
  resource: string;
  user: { id: string; username: string; password: string };
  close(): Promise<void>;
}

/** Builds the app and listens; resolves once the schema exists. */
export async function createMcpApp(options: McpDemoOptions = {}): Promise<McpDemo> {
  const ownDb = options.db === undefined;
  const db = options.db ?? knex({ client: 'better-sqlite3', connection: { filename: ':memory:' }, useNullAsDefault: true, pool: { min: 1, max: 1 } });
  const user = { id: '1', username: options.username ?? 'demo', password: options.password ?? 'demo' };

  const app = express();
  const server = createServer(app);
  const host = options.host ?? '127.0.0.1';
  await new Promise<void>((done, fail) => {
    server.once('error', fail);
    server.listen(options.port ?? 0, host, () => done());
  });
  const { port } = server.address() as AddressInfo;
  const origin = `http://${host.includes(':') ? `[${host}]` : host}:${port}`;
  const resource = `${origin}/mcp`;

  // The authorization server: these options are all the OAuth set-up an MCP server needs.
  const auth = oauth({
    db,
    enable: MCP_FEATURES,
    issuer: origin,
    oauthApplicationScopes: ['mcp'],
    ...options.oauthOptions,
  });
  await auth.migrate();
  const mcp = auth.protectedResource({ resource, scopes: ['mcp'], name: 'express-oauth-features MCP demo' });

  mountLogin(app, user, options.sessionSecret);
  app.use(auth);
  app.use(mcp);
  // The MCP endpoint: a bearer token for this resource with scope `mcp`, else 401 naming the metadata.
  app.post('/mcp', mcp.require('mcp'), express.json({ limit: '1mb' }), handleMcpRequest);
  // Stateless Streamable HTTP: no server-initiated stream, no session to delete.
  app.get('/mcp', mcp.require('mcp'), methodNotAllowed);
  app.delete('/mcp', mcp.require('mcp'), methodNotAllowed);

  return {
    app,
    auth,
    mcp,
    server,
    origin,
    resource,
    user,
    async close() {
      await new Promise<void>((done) => server.close(() => done()));
      server.closeAllConnections();
      if (ownDb) await db.destroy();
    },
  };
}

// ---------------------------------------------------------------------------------------------
// The MCP server: a fresh McpServer and transport per request (the SDK's stateless mode).

/** The tools. `extra.authInfo` is `req.auth`, which `mcp.require()` set from the checked token. */
function buildMcpServer(): McpServer {
  const server = new McpServer({ name: 'express-oauth-features-mcp-demo', version: '1.0.0' });
  server.registerTool(
    'add',
    { title: 'Add', description: 'Adds two numbers.', inputSchema: { a: z.number(), b: z.number() } },
    async ({ a, b }) => ({ content: [{ type: 'text', text: String(a + b) }] }),
  );
  server.registerTool('whoami', { title: 'Who am I', description: 'What the server knows of the caller: the account, the client and the token.' }, async (extra) => {
    const info = extra.authInfo;
    const seen = {
      accountId: info?.extra?.accountId ?? null,
      clientId: info?.clientId ?? null,
      scopes: info?.scopes ?? [],
      resource: info?.resource?.href ?? null,
      expiresAt: info?.expiresAt ?? null,
    };
    return { content: [{ type: 'text', text: JSON.stringify(seen) }], structuredContent: seen };
  });
  return server;
}

async function handleMcpRequest(req: Request, res: Response, next: NextFunction): Promise<void> {
  const server = buildMcpServer();
  const transport = new StreamableHTTPServerTransport({ sessionIdGenerator: undefined });
  res.on('close', () => {
    void transport.close();
    void server.close();
  });
  try {
    await server.connect(transport);
    await transport.handleRequest(req, res, req.body);
  } catch (e) {
    next(e);
  }
}

function methodNotAllowed(_req: Request, res: Response): void {
  res.status(405).set('Allow', 'POST').json({ jsonrpc: '2.0', error: { code: -32000, message: 'Method not allowed.' }, id: null });
}

// ---------------------------------------------------------------------------------------------
// The host's login (demo): one user, Passport local strategy, express-session. `/authorize`
// sends a visitor without a session to /login?return_to=…, and back after logging in.

function mountLogin(app: Express, user: McpDemo['user'], sessionSecret: string | undefined): void {
  app.set('view engine', 'ejs');
  app.set('views', viewsDir());
  app.disable('x-powered-by');
  app.use(session({ name: 'mcp.sid', secret: sessionSecret ?? randomToken(), resave: false, saveUninitialized: false, cookie: { httpOnly: true, sameSite: 'lax' } }));
  const authenticator = new passport.Passport();
  authenticator.use(
    new LocalStrategy(function verifyDemoUser(username, password, done) {
      const ok = [constantTimeEqual(username, user.username), constantTimeEqual(password, user.password)].every(Boolean);
      done(null, ok ? user : false);
    }),
  );
  authenticator.serializeUser((u, done) => done(null, (u as McpDemo['user']).id));
  authenticator.deserializeUser((id: string, done) => done(null, id === user.id ? user : false));
  app.use(authenticator.initialize());
  app.use(authenticator.session());
  // The login page's locals; its CSRF token is made there, so only a visitor of the page gets a session.
  const page = (req: Request, locals: Record<string, unknown>) => ({ currentUser: req.user, csrf: (req.session.csrf ??= randomToken()), ...locals });

  const form = express.urlencoded({ extended: false, limit: '16kb' });
  app.get('/', (_req: Request, res: Response) => {
    res.type('text/plain').send('MCP endpoint: POST /mcp (Streamable HTTP), for an authorized MCP client.\n');
  });
  app.get('/login', function loginPage(req: Request, res: Response) {
    const returnTo = safeReturnTo(req.query.return_to);
    if (req.user) return res.redirect(returnTo ?? '/');
    res.render('login', page(req, { returnTo: returnTo ?? '', error: null, username: '' }));
  });
  app.post('/login', form, requireCsrf, function login(req: Request, res: Response, next: NextFunction) {
    const returnTo = safeReturnTo(req.body?.return_to);
    authenticator.authenticate('local', function loggedIn(err: unknown, found: McpDemo['user'] | false) {
      if (err) return next(err);
      if (!found) return res.status(401).render('login', page(req, { returnTo: returnTo ?? '', error: 'Invalid username or password.', username: String(req.body?.username ?? '') }));
      req.logIn(found, (e) => (e ? next(e) : res.redirect(returnTo ?? '/')));
    })(req, res, next);
  });
  app.post('/logout', form, requireCsrf, function logout(req: Request, res: Response, next: NextFunction) {
    req.logOut((err) => (err ? next(err) : res.redirect('/')));
  });
}

function requireCsrf(req: Request, res: Response, next: NextFunction): void {
  const sent: unknown = req.body?._csrf;
  if (typeof sent === 'string' && req.session.csrf && constantTimeEqual(sent, req.session.csrf)) return next();
  res.status(403).type('text/plain').send('Invalid or missing CSRF token. Reload the page and try again.');
}

/** The demo's EJS views: next to this file under ts-node/jest, or in the sources when run from dist/. */
function viewsDir(): string {
  const candidates = [join(__dirname, 'views'), resolve(__dirname, '../../examples/views')];
  return candidates.find((d) => existsSync(d)) ?? candidates[0]!;
}

async function main(): Promise<void> {
  const port = process.env.PORT ? Number(process.env.PORT) : 3001;
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new Error(`PORT must be a port number, got '${process.env.PORT}'`);
  const dir = resolve(process.cwd(), '.tmp');
  mkdirSync(dir, { recursive: true });
  const dbFile = join(dir, 'mcp.sqlite3');
  const db = knex({ client: 'better-sqlite3', connection: { filename: dbFile }, useNullAsDefault: true });
  const demo = await createMcpApp({ db, port, host: process.env.HOST || '127.0.0.1', password: process.env.DEMO_PASSWORD, sessionSecret: process.env.SESSION_SECRET });
  console.log(`express-oauth-features MCP demo  (SQLite: ${dbFile})

  MCP endpoint        ${demo.resource}      (Streamable HTTP; scope "mcp")
  Resource metadata   ${demo.mcp.metadataUrl}
  Server metadata     ${demo.origin}/.well-known/oauth-authorization-server
  Log in              user "${demo.user.username}", password "${demo.user.password}"

  Try it: npx @modelcontextprotocol/inspector, transport "Streamable HTTP", URL ${demo.resource}
`);
  closeOnSignal(() => demo.close().then(() => db.destroy()));
}

runWhenMain(module, main);
