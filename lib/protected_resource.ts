/**
 * `auth.protectedResource({ resource, scopes })`: one resource the host serves (an API, an MCP
 * server), described by RFC 9728 protected-resource metadata and protected by audience-bound
 * bearer tokens (RFC 8707, RFC 6750).
 *
 * The router it returns is mounted at the host's root (`app.use(mcp)`): RFC 9728 §3.1 places the
 * document at `/.well-known/oauth-protected-resource` followed by the resource's path, on the
 * resource's own origin, whatever the OAuth router's mount path. Only that one URL: §3.3 has a
 * client refuse a document whose `resource` is not the one it derived the URL from, so the root
 * form serves only a resource without a path (the MCP SDK tries the path-inserted URL first).
 *
 * `.require(...scopes)` answers the RFC 9728 §5.1 challenge (`resource_metadata`), accepts only
 * tokens whose audience includes the resource (lib/resource.ts states the rule) and sets
 * `req.oauth`, and `req.auth` in the shape the MCP SDK's handlers read (`AuthInfo`).
 */
import express, { type NextFunction, type Request, type RequestHandler, type Response, type Router } from 'express';
import { ContextImpl } from './context';
import { OAuthError, toOAuthError } from './errors';
import { corsHeaders, isPreflight, preflightHeaders } from './http/cors';
import { renderJsonError } from './http/error_handler';
import { requestOrigin, varyOnDerivedIssuer } from './http/origin';
import { report } from './report';
import { authorizeBearer, bearerCheck, isResourceUri, type OAuthAuthorization } from './resource';
import type { Runtime } from './runtime';
import { isScopeToken } from './scopes';

/** Options of `auth.protectedResource()`. */
export interface ProtectedResourceOptions {
  /** The resource identifier (RFC 8707 §2, RFC 9728 §1.2): an absolute https URI (http on loopback), no query or fragment, e.g. `https://api.example.com/mcp`. */
  resource: string;
  /** `scopes_supported`, and the `scope` of a challenge to a request without enough of a token when `.require()` names none. */
  scopes?: readonly string[];
  /**
   * The path the document is served at after `/.well-known/oauth-protected-resource`, when the
   * host does not see the resource's own path (a proxy strips a prefix). Default: the resource's
   * path. The `resource_metadata` URL of challenges always follows the resource's path (§3.1).
   */
  path?: string;
  /** `resource_documentation`: a page for developers about the resource. */
  documentation?: string;
  /** `resource_name`: a human-readable name of the resource. */
  name?: string;
  /**
   * Without the `issuer` option (development): the path the OAuth router is mounted at, which
   * with the request's origin makes the issuer named in `authorization_servers`. Default `''`.
   */
  mountPath?: string;
}

/** `req.auth` as the MCP SDK's server side reads it (its `AuthInfo`: `expiresAt` in seconds). */
export interface McpAuthInfo {
  token: string;
  clientId: string;
  scopes: string[];
  expiresAt?: number;
  resource?: URL;
  extra?: Record<string, unknown>;
}

declare module 'express-serve-static-core' {
  interface Request {
    /** Set by `protectedResource().require()`: the token as the MCP SDK's handlers expect it (`authInfo`). */
    auth?: McpAuthInfo;
  }
}

/** The router of `auth.protectedResource()`, with its middleware factory. */
export interface ProtectedResource extends Router {
  /** The resource identifier. */
  readonly resource: string;
  /** The absolute URL of the metadata document, as challenges name it (`resource_metadata`). */
  readonly metadataUrl: string;
  /**
   * A middleware that requires a bearer token for this resource carrying all of `scopes`: 401
   * with `WWW-Authenticate: Bearer resource_metadata="…", scope="…"` without one (and
   * `error="invalid_token"` for a bad one, or one for another audience), 403 insufficient_scope
   * naming the scopes required.
   */
  require(...scopes: string[]): RequestHandler;
}

/** RFC 9728 §3: the well-known URI suffix (registered by §8.3). */
export const WELL_KNOWN_RESOURCE = '/.well-known/oauth-protected-resource';

export function protectedResource(rt: Runtime, options: ProtectedResourceOptions): ProtectedResource {
  const caller = 'protectedResource()';
  if (options === null || typeof options !== 'object') throw new TypeError(`${caller}: options must be an object ({ resource, scopes })`);
  const { resource, scopes = [], documentation, name, mountPath = '' } = options;
  const url = checkResource(caller, resource);
  if (!Array.isArray(scopes)) throw new TypeError(`${caller}: scopes must be an array of scope names`);
  for (const s of scopes) if (typeof s !== 'string' || !isScopeToken(s)) throw new TypeError(`${caller}: '${String(s)}' is not a valid scope`);
  if (documentation !== undefined && !/^https?:\/\/[^\s]+$/i.test(String(documentation))) throw new TypeError(`${caller}: documentation must be an http(s) URL`);
  if (name !== undefined && typeof name !== 'string') throw new TypeError(`${caller}: name must be a string`);
  if (typeof mountPath !== 'string' || !(mountPath === '' || PATH.test(mountPath))) {
    throw new TypeError(`${caller}: mountPath must be the path the OAuth router is mounted at, like '/oauth'`);
  }
  if (!rt.enabled.has('resource_indicators')) {
    throw new TypeError(`${caller}: enable the resource_indicators feature: tokens are bound to '${resource}' only when clients can ask for it (RFC 8707)`);
  }
  const resourcePath = url.pathname === '/' ? '' : url.pathname;
  const path = options.path === undefined ? resourcePath : checkPath(caller, options.path);
  const metadataUrl = `${url.origin}${WELL_KNOWN_RESOURCE}${resourcePath}`;
  declareResource(rt, resource);

  // §3.1, §3.3: the well-known URI of this resource only; the root form is another resource's.
  const served = pathKey(`${WELL_KNOWN_RESOURCE}${path}`);
  const router = express.Router() as ProtectedResource;
  router.use(function protectedResourceMetadata(req: Request, res: Response, next: NextFunction) {
    if (pathKey(req.path) !== served) return next();
    const ctx = new ContextImpl(rt, req, res);
    try {
      // A public document: browser-based MCP clients read it cross-origin (oauthCorsDocumentOrigins).
      if (!isPreflight(ctx)) corsHeaders(ctx, 'document');
      if (req.method !== 'GET' && req.method !== 'HEAD') {
        res.setHeader('Allow', 'GET, HEAD');
        if (isPreflight(ctx)) preflightHeaders(ctx, 'document', ['GET', 'HEAD']);
        if (req.method === 'OPTIONS') return void res.status(204).end();
        throw new OAuthError('invalid_request', ctx.values.oauthMethodNotAllowedMessage, { status: 405, reason: 'method_not_allowed' });
      }
      let issuer = rt.issuer;
      if (issuer === undefined) {
        // Development: the issuer of the request's origin, as the OAuth router derives it.
        varyOnDerivedIssuer(req, res);
        const origin = requestOrigin(req);
        if (origin === null) throw new OAuthError('invalid_request', ctx.values.oauthInvalidHostMessage, { reason: 'malformed_host' });
        issuer = `${origin}${mountPath}`;
      }
      // RFC 9728 §2: the members this resource can state; the resource's own keys are not ours to publish.
      const doc: Record<string, unknown> = {
        resource,
        authorization_servers: [issuer],
        ...(scopes.length > 0 && { scopes_supported: [...scopes] }),
        bearer_methods_supported: ['header'],
        ...(documentation !== undefined && { resource_documentation: documentation }),
        ...(name !== undefined && { resource_name: name }),
      };
      // A derived issuer comes from Host: no shared cache may keep one client's document for another.
      res.setHeader('Cache-Control', rt.issuer === undefined ? 'no-store' : ctx.values.oauthMetadataCacheControl);
      res.status(200).json(doc);
    } catch (e) {
      const err = toOAuthError(e);
      report(rt, ctx, err);
      renderJsonError(res, err, ctx.values.oauthRealm);
    }
  });

  Object.defineProperty(router, 'resource', { value: resource, enumerable: true });
  Object.defineProperty(router, 'metadataUrl', { value: metadataUrl, enumerable: true });
  router.require = (...required: string[]) => {
    const spec = bearerCheck(rt, `${caller}.require()`, required, resource);
    // RFC 6750 §3: the scope a client should ask for: the route's, else the resource's.
    const scope = (spec.required.length > 0 ? spec.required : scopes).join(' ') || undefined;
    const bearer = {
      challenge: { resource_metadata: metadataUrl, scope },
      onAuthorized: (r: Request, auth: OAuthAuthorization) => void (r.auth = authInfo(auth, url)),
    };
    return function protectedResourceRequire(req: Request, res: Response, next: NextFunction): void {
      authorizeBearer(rt, spec, req, res, next, bearer);
    };
  };
  return router;
}

/** The MCP SDK's `AuthInfo` of a checked token (`expiresAt` in seconds, RFC 8707 `resource` as a URL). */
function authInfo(auth: OAuthAuthorization, resource: URL): McpAuthInfo {
  return {
    token: auth.token,
    clientId: auth.clientId,
    scopes: [...auth.scopes],
    expiresAt: Math.floor(auth.expiresAt.getTime() / 1000),
    resource: new URL(resource.href),
    extra: { accountId: auth.accountId, applicationId: auth.applicationId, grantId: auth.grantId },
  };
}

/** RFC 9728 §1.2: https (http only on a loopback host, for development), no query, no fragment. */
function checkResource(caller: string, resource: unknown): URL {
  if (!isResourceUri(resource)) throw new TypeError(`${caller}: resource must be an absolute URI without a fragment (RFC 8707 §2), got ${JSON.stringify(resource)}`);
  const url = new URL(resource);
  const loopback = ['localhost', '127.0.0.1', '[::1]'].includes(url.hostname);
  if (!(url.protocol === 'https:' || (url.protocol === 'http:' && loopback))) throw new TypeError(`${caller}: resource must use https (http only on a loopback host), got ${JSON.stringify(resource)}`);
  if (url.search !== '' || resource.includes('?')) throw new TypeError(`${caller}: resource must not have a query (RFC 9728 §1.2), got ${JSON.stringify(resource)}`);
  // The identifier is compared as a string: its canonical spelling is the one tokens will carry.
  if (url.href !== resource && `${url.href.replace(/\/$/, '')}` !== resource) {
    throw new TypeError(`${caller}: resource must be spelled in canonical form (${JSON.stringify(url.href.replace(/\/$/, ''))}), got ${JSON.stringify(resource)}`);
  }
  return url;
}

/** A path of one or more non-empty segments (RFC 3986 §3.3 pchar), no trailing slash, query or fragment. */
const PATH = /^(\/[A-Za-z0-9\-._~!$&'()*+,;=:@%]+)+$/;

function checkPath(caller: string, path: unknown): string {
  if (typeof path !== 'string' || !(path === '' || PATH.test(path))) {
    throw new TypeError(`${caller}: path must be '' or a path like '/mcp' (no trailing slash, query or fragment), got ${JSON.stringify(path)}`);
  }
  return path;
}

/** Express's default matching: case-insensitive, one trailing slash allowed. */
function pathKey(path: string): string {
  const p = path.length > 1 && path.endsWith('/') ? path.slice(0, -1) : path;
  return p.toLowerCase();
}

/** The resources `protectedResource()` was called with, per instance: clients may ask for them (resource_indicators). */
const declared = new WeakMap<object, Set<string>>();

function declareResource(rt: Runtime, resource: string): void {
  let set = declared.get(rt);
  if (!set) declared.set(rt, (set = new Set()));
  set.add(resource);
}

/** Whether `protectedResource({ resource })` was called on this instance (`ctx.runtime`). */
export function isDeclaredResource(runtime: object, resource: string): boolean {
  return declared.get(runtime)?.has(resource) ?? false;
}
