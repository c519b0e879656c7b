/**
 * `oauth(options)`: validates the options, resolves the enabled features and returns an
 * Express Router carrying their routes, plus `migrate`, `createApplication` and
 * `requireOauthAuthorization`.
 */
import express, { type IRouterMatcher, type NextFunction, type Request, type RequestHandler, type Response, type Router } from 'express';
import type { Knex } from 'knex';
import { ContextImpl, type OAuthContext } from './context';
import type { Closure, CommonHookOptions, OptionsFor, RouteDef } from './feature';
import { FEATURES, type FeatureId, type Features } from './features';
import { OAuthError, toOAuthError } from './errors';
import { renderJsonError } from './http/error_handler';
import { corsHeaders, isPreflight, preflightHeaders, type CorsPolicy } from './http/cors';
import { parseBody, parseQuery } from './http/params';
import { requestOrigin, varyOnDerivedIssuer } from './http/origin';
import type { OAuthLogger } from './log';
import { knexMigrations, migrate as runMigrations, migrationSql, type OAuthMigration } from './migrations';
import { routeHookName } from './options';
import { report } from './report';
import { requireOauthAuthorization, type RequireOauthAuthorizationOptions } from './resource';
import { protectedResource, type ProtectedResource, type ProtectedResourceOptions } from './protected_resource';
import { Runtime, type RuntimeOptions } from './runtime';
import { createApplication, type CreateApplicationInput, type CreatedApplication } from './applications';
import { applicationsApi, type ApplicationsApi } from './client_management';
import { Purger, type PurgeCounts, type PurgeOptions, type StartPurgingOptions } from './purge';

/** Options of `oauth()`: the framework's own, plus those of every enabled feature and its dependencies. */
export type OAuthOptions<E extends readonly FeatureId[]> = {
  /** A knex instance: SQLite (better-sqlite3 or sqlite3) or PostgreSQL. */
  db: Knex;
  /** Feature ids to enable; their dependencies are enabled too. `oauth_base` is always on. */
  enable?: E;
  /**
   * The issuer identifier (RFC 8414 §2): an absolute https URL (http only for a loopback host),
   * without query, fragment or trailing slash. Required with NODE_ENV=production. Elsewhere it
   * defaults to the request's origin and mount path (with one warning at start-up), read from
   * `Host` and, only through Express's `trust proxy`, `X-Forwarded-Host` / `-Proto`.
   */
  issuer?: string;
  /** Where errors are logged (secrets removed). Default: server errors to console.error. */
  logger?: OAuthLogger;
} & CommonHookOptions &
  OptionsFor<Closure<Features[E[number] | 'oauth_base']>>;

/** The router `oauth()` returns: mount it with `app.use(auth)` or `app.use('/oauth', auth)`. */
export interface OAuthRouter extends Router {
  /**
   * Brings the tables of the enabled features, under the configured names, to the last schema
   * version, recording each version applied in `oauthSchemaVersionsTable`: creates missing
   * tables (a feature enabled later included), adopts tables from before versions, applies later
   * versions once. Idempotent; safe when several processes migrate at once. Call it before serving.
   */
  migrate(options?: MigrateOptions & { dryRun?: false }): Promise<void>;
  /** With `dryRun: true`: the SQL statements `migrate()` would run now, without running them (`[]` when up to date). */
  migrate(options: MigrateOptions & { dryRun: true }): Promise<string[]>;
  migrate(options?: MigrateOptions): Promise<void | string[]>;
  /**
   * The same schema versions as a knex migration source, for teams that run their own
   * migrations: `await db.migrate.latest({ migrationSource: auth.knexMigrations() })`. One
   * migration per version and enabled table (`0001_initial_schema_oauth_grants`), with `down`;
   * knex records them in its own table, not in `oauthSchemaVersionsTable`.
   */
  knexMigrations(): Knex.MigrationSource<OAuthMigration>;
  /**
   * A middleware that requires a valid bearer token carrying all of `scopes` (RFC 6750), for the
   * server's own audience: a token whose request named RFC 8707 resources is accepted only when
   * one of them is `oauthJwtAudience` (else the issuer).
   */
  requireOauthAuthorization(...scopes: string[]): RequestHandler;
  /**
   * The same for a route serving an RFC 8707 resource: only tokens bound to `resource` (their
   * request named it; a JWT's `aud` includes it) are accepted, others get 401 invalid_token.
   * @example
   * ```ts
   * app.get('/api/books', auth.requireOauthAuthorization({ resource: 'https://api.example.com', scopes: ['books.read'] }), handler);
   * ```
   */
  requireOauthAuthorization(options: RequireOauthAuthorizationOptions, ...scopes: string[]): RequestHandler;
  /**
   * RFC 9728 protected-resource metadata and audience-bound protection for one resource (an MCP
   * server, an API) served by the host: a router to mount at the host's root, serving
   * `/.well-known/oauth-protected-resource` (and its path-inserted form for a resource with a
   * path), and `.require(...scopes)`, whose challenges point clients at that document.
   * Needs `resource_indicators`; the resource is then allowed at /authorize and /token.
   * @example
   * ```ts
   * const mcp = auth.protectedResource({ resource: 'https://api.example.com/mcp', scopes: ['mcp'] });
   * app.use(mcp);
   * app.post('/mcp', mcp.require('mcp'), handler); // req.auth for the MCP SDK, req.oauth as usual
   * ```
   */
  protectedResource(options: ProtectedResourceOptions): ProtectedResource;
  /** Registers a client application; the secret is returned once and stored bcrypt-hashed. */
  createApplication(input: CreateApplicationInput): Promise<CreatedApplication>;
  /**
   * Client management: `list`, `get`, `update`, `rotateSecret`, `revokeGrants`, `delete`. Each
   * runs an auth method of `oauth_base` (`listApplications`, …), which a host can override.
   * @example
   * ```ts
   * const { applications, next } = await auth.applications.list({ limit: 50 });
   * const { clientSecret } = await auth.applications.rotateSecret(clientId, { graceSeconds: 86400 });
   * await auth.applications.delete(clientId);
   * ```
   */
  readonly applications: ApplicationsApi;
  /**
   * RFC 8414 §3.1 for a router mounted under a prefix: clients of the issuer
   * `https://host/oauth` look for its metadata at `/.well-known/oauth-authorization-server/oauth`,
   * between the host and the path, outside the router. This returns a small router that the host
   * mounts at its root, serving there the same document as the router's own metadata route
   * (same headers, hooks and errors; other methods get 405 with `Allow`).
   *
   * The path comes from the `issuer` option's path when `issuer` is set. Without `issuer`
   * (development), pass `mountPath`, the path the router is mounted at: a router cannot learn it
   * before its first request, and discovery is usually a client's first request.
   *
   * @throws TypeError when neither `issuer` nor `mountPath` gives the path, when `mountPath` is
   *   not a path (`/segment…`, no trailing slash, query or fragment), or when it disagrees with
   *   the issuer's path.
   * @example
   * ```ts
   * const auth = oauth({ db, issuer: 'https://auth.example.com/oauth' });
   * app.use('/oauth', auth);
   * app.use(auth.wellKnown()); // GET /.well-known/oauth-authorization-server/oauth
   * // without an issuer: app.use(auth.wellKnown({ mountPath: '/oauth' }));
   * ```
   */
  wellKnown(options?: WellKnownOptions): Router;
  /**
   * Deletes the rows nothing can use any more, in batches of one short transaction each:
   * grants whose access and refresh tokens all expired, or that were revoked, more than
   * `oauthPurgeRetention` seconds ago (default 7 days) with their retired refresh tokens;
   * authorization codes never redeemed whose lifetime ended as long ago; and jtis whose
   * assertion has expired. Resolves with the counts per kind of row.
   *
   * A batch that fails rolls back whole (rows of earlier batches stay deleted) and the purge
   * rejects with its error. An aborted `signal` (or `close()`) stops it after the batch under
   * way: it then resolves with the counts so far.
   *
   * Express's Router has a `purge(path, …handlers)` for the HTTP PURGE method; this router's
   * `purge` is this method instead (called with a path, it rejects with a TypeError saying so).
   *
   * @throws PurgeAlreadyRunningError (rejects) while another purge of this instance runs.
   * @throws TypeError / RangeError (rejects) for an invalid option, or an `olderThan` after now.
   * @example
   * ```ts
   * const { grants, codes, retiredRefreshTokens, jtis } = await auth.purge();
   * await auth.purge({ olderThan: new Date(Date.now() - 86400_000), batchSize: 500 });
   * ```
   */
  purge: PurgeMethod & IRouterMatcher<this>;
  /**
   * Runs `purge()` every `every` seconds, counted from the end of the previous run (runs never
   * overlap; a tick during another purge is skipped). The timer does not keep the process alive.
   * Failures go to the logger and `onError` (reason `purge_failed`), never thrown; each run logs
   * its counts at info level. Stopped by `close()`.
   *
   * @throws TypeError when `every` is not a number of seconds above 0 (at most 24 days).
   * @throws Error when purging is already scheduled: call `close()` first.
   * @example
   * ```ts
   * auth.startPurging({ every: 3600 });
   * process.on('SIGTERM', () => auth.close().then(() => db.destroy()));
   * ```
   */
  startPurging(options: StartPurgingOptions): void;
  /**
   * Stops what the instance runs in the background: the `startPurging()` timer, and a running
   * purge after its current batch. Resolves once it has stopped; call it before destroying the
   * knex instance.
   */
  close(): Promise<void>;
  /** The enabled feature ids, dependencies included. */
  readonly features: readonly string[];
}

/** `auth.purge()`: see {@link OAuthRouter.purge}. */
export type PurgeMethod = (options?: PurgeOptions) => Promise<PurgeCounts>;

/** Options of `auth.migrate()`. */
export interface MigrateOptions {
  /** Resolve to the SQL statements instead of running them. */
  dryRun?: boolean;
}

/** Options of `auth.wellKnown()`. */
export interface WellKnownOptions {
  /** Where the OAuth router is mounted (`app.use('/oauth', auth)` → `'/oauth'`); required without `issuer`. */
  mountPath?: string;
}

/**
 * Builds the authorization server.
 *
 * @example
 * ```ts
 * const auth = oauth({ db, enable: ['client_credentials_grant'], oauthAccessTokenExpiresIn: 600 });
 * await auth.migrate();
 * app.use(auth);
 * app.get('/api/books', auth.requireOauthAuthorization('books.read'), (req, res) => res.json(req.oauth));
 * ```
 */
export function oauth<const E extends readonly FeatureId[] = readonly []>(options: OAuthOptions<E>): OAuthRouter {
  const rt = new Runtime(FEATURES, options as unknown as RuntimeOptions);
  const router = express.Router() as OAuthRouter;
  const routes = new Map<string, (req: Request, res: Response) => Promise<void>>();
  /** Path (as `pathKey` spells it) → the methods it serves, for `Allow` (RFC 9110 §10.2.1). */
  const allowed = new Map<string, string[]>();
  /** Path → its CORS policy (lib/http/cors.ts), for the paths of routes that declare one. */
  const corsPolicies = new Map<string, CorsPolicy>();
  /** Whether a route's path ends in a parameter segment (`register/:client_id`). */
  let paramRoutes = false;

  // Parameters a feature declares repeatable (resource_indicators: RFC 8707 `resource`); every other one stays single.
  const multiValued: ReadonlySet<string> = new Set(rt.extensions<string | readonly string[]>('multiValuedParameters').flat());
  for (const route of rt.routes) {
    const hookName = routeHookName(route.def.name);
    const readsBody = route.def.body ?? route.def.method === 'post';
    const readsQuery = route.def.query ?? !readsBody;
    const param = /\/:([^/]+)$/.exec(route.path)?.[1];
    if (param !== undefined) paramRoutes = true;
    const handler = async function oauthRoute(req: Request, res: Response): Promise<void> {
      const ctx = new ContextImpl(rt, req, res);
      await answer(rt, ctx, route.def.renderError, route.def.cors, async () => {
        if (param !== undefined) setPathParam(req, param);
        if (readsBody) {
          await new Promise<void>((resolve, reject) => parseBody(req, res, (err?: unknown) => (err ? reject(err) : resolve()), multiValued));
          ctx.params = req.oauthParams!;
        } else {
          ctx.params = readsQuery ? parseQuery(req, multiValued) : ctx.params;
        }
        await ctx.hook(hookName);
        await route.def.handler(ctx);
      });
    };
    const method = route.def.method.toUpperCase();
    routes.set(`${method} ${pathKey(route.path)}`, handler);
    const methods = allowed.get(pathKey(route.path)) ?? [];
    methods.push(...(method === 'GET' ? ['GET', 'HEAD'] : [method]));
    allowed.set(pathKey(route.path), methods);
    if (route.def.cors) corsPolicies.set(pathKey(route.path), route.def.cors);
  }
  // One layer and one Map lookup instead of a layer per route: a router mounted at the root is
  // passed by every request of the host, which should not pay a path match per OAuth route.
  router.use(function oauthDispatch(req: Request, res: Response, next: NextFunction) {
    let path = pathKey(req.path);
    // A path no route names may be one of a route with a parameter segment: `/register/abc` → `/register/:`.
    if (paramRoutes && !allowed.has(path)) path = `${path.slice(0, path.lastIndexOf('/'))}/:`;
    const handler = routes.get(`${req.method === 'HEAD' ? 'GET' : req.method} ${path}`);
    if (handler) return void handler(req, res).catch(next);
    const methods = allowed.get(path);
    if (!methods) return next();
    const ctx = new ContextImpl(rt, req, res);
    const cors = corsPolicies.get(path);
    answer(rt, ctx, undefined, cors, async () => answerOtherMethod(ctx, methods, cors)).catch(next);
  });

  Object.defineProperty(router, 'features', { value: Object.freeze(rt.features.map((f) => f.id)), enumerable: true });
  router.migrate = ((opts: MigrateOptions = {}) =>
    opts.dryRun ? migrationSql(rt.db, rt.schema, rt.tables) : runMigrations(rt.db, rt.schema, rt.tables)) as OAuthRouter['migrate'];
  router.knexMigrations = () => knexMigrations(rt.schema, rt.tables);
  router.requireOauthAuthorization = (first?: string | RequireOauthAuthorizationOptions, ...rest: string[]) => {
    if (first === null || typeof first !== 'object') return requireOauthAuthorization(rt, first === undefined ? rest : [first, ...rest]);
    return requireOauthAuthorization(rt, [...(first.scopes ?? []), ...rest], first.resource ?? undefined);
  };
  router.protectedResource = (opts: ProtectedResourceOptions) => protectedResource(rt, opts);
  router.createApplication = (input: CreateApplicationInput) => createApplication(rt, input);
  Object.defineProperty(router, 'applications', { value: applicationsApi(rt), enumerable: true });
  const metadata = routes.get(`GET ${pathKey(rt.routePaths.get('oauth_server_metadata')!)}`)!;
  router.wellKnown = (opts: WellKnownOptions = {}) => wellKnownRouter(rt, metadata, wellKnownMountPath(rt, opts));
  const purger = new Purger(rt);
  // Shadows Express's router.purge (the HTTP PURGE method), which an OAuth router never routes.
  router.purge = ((opts?: PurgeOptions) => purger.purge(opts)) as OAuthRouter['purge'];
  router.startPurging = (opts: StartPurgingOptions) => purger.startPurging(opts);
  router.close = async () => {
    await purger.close();
  };
  return router;
}

/** RFC 8414 §3.1: the well-known URI suffix registered by §7.3, whatever the router's own route is called. */
const WELL_KNOWN_METADATA = '/.well-known/oauth-authorization-server';

/** The mount path `wellKnown()` serves: the issuer's path when configured, else `mountPath`. */
function wellKnownMountPath(rt: Runtime, opts: WellKnownOptions): string {
  if (opts === null || typeof opts !== 'object') throw new TypeError('wellKnown(): options must be an object ({ mountPath })');
  let given: string | undefined;
  if (opts.mountPath !== undefined) {
    const p = opts.mountPath;
    if (typeof p !== 'string' || !(p === '' || p === '/' || /^(\/[A-Za-z0-9\-._~!$&'()*+,;=:@%]+)+$/.test(p))) {
      throw new TypeError(`wellKnown(): mountPath must be the path the router is mounted at, like '/oauth' (no trailing slash, query or fragment); got ${JSON.stringify(p)}`);
    }
    given = p === '/' ? '' : p;
  }
  // The issuer option has passed issuerProblem(): absolute, no query, fragment or trailing slash.
  const fromIssuer = rt.issuer === undefined ? undefined : new URL(rt.issuer).pathname.replace(/\/$/, '');
  if (fromIssuer !== undefined && given !== undefined && given !== fromIssuer) {
    throw new TypeError(`wellKnown(): mountPath ${JSON.stringify(given)} disagrees with the path of the issuer ${JSON.stringify(rt.issuer)}; RFC 8414 §3.1 derives the well-known URI from the issuer, so omit mountPath`);
  }
  const path = given ?? fromIssuer;
  if (path === undefined) throw new TypeError("wellKnown(): without an 'issuer' option, pass the path the router is mounted at: auth.wellKnown({ mountPath: '/oauth' })");
  return path;
}

/**
 * Serves `/.well-known/oauth-authorization-server<mountPath>` with the router's own metadata
 * handler, run as if the request had come through the mount path (`req.baseUrl`), so a derived
 * issuer and every endpoint URL are those of the mounted router.
 */
function wellKnownRouter(rt: Runtime, metadata: (req: Request, res: Response) => Promise<void>, mountPath: string): Router {
  const target = pathKey(`${WELL_KNOWN_METADATA}${mountPath}`);
  const wellKnown = express.Router();
  wellKnown.use(function oauthWellKnown(req: Request, res: Response, next: NextFunction) {
    if (pathKey(req.path) !== target) return next();
    if (req.method === 'GET' || req.method === 'HEAD') {
      const baseUrl = req.baseUrl;
      req.baseUrl = mountPath;
      return void metadata(req, res)
        .finally(() => {
          req.baseUrl = baseUrl;
        })
        .catch(next);
    }
    const ctx = new ContextImpl(rt, req, res);
    answer(rt, ctx, undefined, 'document', async () => answerOtherMethod(ctx, ['GET', 'HEAD'], 'document')).catch(next);
  });
  return wellKnown;
}

/** Express's default matching: case-insensitive, one trailing slash allowed. */
function pathKey(path: string): string {
  const p = path.length > 1 && path.endsWith('/') ? path.slice(0, -1) : path;
  // A route's last segment `:name` is a parameter: every route with one is keyed by its `/:` form.
  return p.toLowerCase().replace(/\/:[^/]*$/, '/:');
}

/**
 * The last segment of the request path, percent-decoded and case kept, as `req.params[name]` of a
 * route whose path ends in `:name` (Express's own route parameters are not run: one dispatcher).
 */
function setPathParam(req: Request, name: string): void {
  const path = req.path.length > 1 && req.path.endsWith('/') ? req.path.slice(0, -1) : req.path;
  let value: string;
  try {
    value = decodeURIComponent(path.slice(path.lastIndexOf('/') + 1));
  } catch {
    throw new OAuthError('invalid_request', 'The request path is malformed', { reason: 'malformed_parameter' });
  }
  req.params ??= {};
  (req.params as Record<string, string>)[name] = value;
}

/**
 * Runs one request to an OAuth path: the CORS headers of an actual request to a path with a CORS
 * policy (before anything can fail, so errors carry them too); with a derived issuer
 * (development), `Vary: Host` and a 400 for a Host that is not a host name; then `fn`. Whatever it throws is reported (logger,
 * `onError`) and rendered by the route's channel, never handed to Express (whose page would show
 * the stack).
 */
async function answer(rt: Runtime, ctx: ContextImpl, renderError: RouteDef['renderError'], cors: CorsPolicy | undefined, fn: () => Promise<void>): Promise<void> {
  try {
    if (cors && !isPreflight(ctx)) corsHeaders(ctx, cors);
    if (rt.issuer === undefined) {
      varyOnDerivedIssuer(ctx.req, ctx.res);
      if (requestOrigin(ctx.req) === null) throw new OAuthError('invalid_request', ctx.values.oauthInvalidHostMessage, { reason: 'malformed_host' });
    }
    await fn();
  } catch (e) {
    const err = toOAuthError(e);
    report(rt, ctx, err);
    try {
      // A page renderer builds URLs from the issuer, which a bad Host leaves undefined: JSON then.
      if (renderError && err.reason !== 'malformed_host') await renderError(ctx, err);
      else renderJsonError(ctx.res, err, ctx.values.oauthRealm);
    } catch (renderFailure) {
      // A renderer or a value it reads threw.
      const fallback = new OAuthError('server_error', 'An unexpected error occurred', { reason: 'internal_error', cause: renderFailure });
      report(rt, ctx, fallback);
      renderJsonError(ctx.res, fallback, 'oauth');
    }
  }
}

/**
 * A method the OAuth path does not serve. OPTIONS gets 204 with `Allow` (RFC 9110 §9.3.7), as
 * Express's own routes answer it, and, when it is a CORS preflight to a path with a CORS policy,
 * the preflight headers of an allowed origin; anything else gets 405 with `Allow` (§15.5.6) and an RFC 6749
 * §5.2-shaped JSON body, not the host's 404: the path exists, the method is wrong.
 */
function answerOtherMethod(ctx: ContextImpl, methods: readonly string[], cors: CorsPolicy | undefined): void {
  ctx.res.setHeader('Allow', methods.join(', '));
  if (ctx.req.method === 'OPTIONS') {
    if (cors && isPreflight(ctx)) preflightHeaders(ctx, cors, methods);
    ctx.res.status(204).end();
    return;
  }
  throw new OAuthError('invalid_request', ctx.values.oauthMethodNotAllowedMessage, { status: 405, reason: 'method_not_allowed' });
}

export type { OAuthContext };
export { OAuthError };
