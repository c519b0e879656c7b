/**
 * CORS (Fetch Standard §3.2, "CORS protocol") for what a browser-based client reads or calls:
 * the public documents (server metadata, JWKS, protected-resource metadata) and the endpoints it
 * posts to (token, revocation, registration). The authorization endpoint never gets CORS: it is a
 * top-level navigation (RFC 6749 §3.1), and a script able to read its answers could read codes
 * and consent pages.
 *
 * Never credentials mode: `Access-Control-Allow-Credentials` is not sent, so a browser sends no
 * cookies and reads nothing cross-origin with them; a client authenticates with its own
 * `Authorization` header or body, which CORS lets it send.
 */
import type { OAuthContext } from '../context';

/**
 * Which origins a route serves: `document` for public documents (`oauthCorsDocumentOrigins`,
 * default any), `endpoint` for endpoints a client posts to (`oauthCorsOrigins`, default none).
 */
export type CorsPolicy = 'document' | 'endpoint';

/**
 * Request headers a browser client may send beyond the CORS-safelisted ones: `Authorization`
 * (client_secret_basic, RFC 6749 §2.3.1; registration access tokens, RFC 7592), `Content-Type`
 * (JSON registration requests, RFC 7591 §3.1), and `MCP-Protocol-Version`, which the MCP SDK
 * sends with its metadata requests (a preflight refused for it costs the client a retry).
 */
const ALLOWED_HEADERS = 'Authorization, Content-Type, MCP-Protocol-Version';
/** Response headers a client script may read: the challenge of a 401 and the wait of a 503. */
const EXPOSED_HEADERS = 'WWW-Authenticate, Retry-After';

/** The origins allowed for a policy, as configured: `'*'`, a list, or none. */
function allowedOrigins(ctx: OAuthContext, policy: CorsPolicy): readonly string[] {
  return policy === 'document' ? ctx.values.oauthCorsDocumentOrigins : ctx.values.oauthCorsOrigins;
}

/**
 * The `Access-Control-Allow-Origin` answer to a request, or null when its origin is not allowed
 * (the browser then keeps the response from the script). Sets `Vary: Origin` whenever the answer
 * depends on the origin, so a shared cache never hands one origin's answer to another.
 */
function allowOrigin(ctx: OAuthContext, policy: CorsPolicy): string | null {
  const origins = allowedOrigins(ctx, policy);
  if (origins.includes('*')) return '*';
  const origin = ctx.req.get('Origin');
  if (origins.length > 0 || origin !== undefined) ctx.res.vary('Origin');
  if (origin === undefined) return null;
  // A serialized origin (RFC 6454 §6.2) compares as a string; scheme and host are lower case.
  return origins.includes(origin.toLowerCase()) ? origin.toLowerCase() : null;
}

/**
 * An actual (non-preflight) request: `Access-Control-Allow-Origin` when the origin is allowed,
 * and the headers a script may read. Called before the route runs, so error answers carry them.
 */
export function corsHeaders(ctx: OAuthContext, policy: CorsPolicy): void {
  const allow = allowOrigin(ctx, policy);
  if (allow === null) return;
  ctx.res.setHeader('Access-Control-Allow-Origin', allow);
  if (policy === 'endpoint') ctx.res.setHeader('Access-Control-Expose-Headers', EXPOSED_HEADERS);
}

/** Whether an OPTIONS request is a CORS preflight (Fetch §3.2.2): `Origin` and `Access-Control-Request-Method`. */
export function isPreflight(ctx: OAuthContext): boolean {
  return ctx.req.method === 'OPTIONS' && ctx.req.get('Origin') !== undefined && ctx.req.get('Access-Control-Request-Method') !== undefined;
}

/**
 * A preflight to a route with a CORS policy: for an allowed origin, the methods the path serves,
 * the headers a client may send and how long the answer may be cached. A refused origin gets the
 * plain OPTIONS answer, without any of them, which the browser takes as a refusal.
 */
export function preflightHeaders(ctx: OAuthContext, policy: CorsPolicy, methods: readonly string[]): void {
  const allow = allowOrigin(ctx, policy);
  if (allow === null) return;
  ctx.res.setHeader('Access-Control-Allow-Origin', allow);
  ctx.res.setHeader('Access-Control-Allow-Methods', methods.join(', '));
  ctx.res.setHeader('Access-Control-Allow-Headers', ALLOWED_HEADERS);
  ctx.res.setHeader('Access-Control-Max-Age', String(ctx.values.oauthCorsMaxAge));
}

/** Why an origins value is refused at start-up, or null: `'*'`, or serialized origins (`https://app.example`). */
export function corsOriginsProblem(origins: unknown): string | null {
  if (!Array.isArray(origins)) return 'must be an array of origins (or a function of the request context returning one)';
  for (const o of origins) {
    if (o === '*') continue;
    if (typeof o !== 'string') return `has a non-string entry ${JSON.stringify(o)}`;
    let url: URL | undefined;
    try {
      url = new URL(o);
    } catch {
      url = undefined;
    }
    // An origin is scheme, host and port only (RFC 6454 §6.2): `https://app.example`, no path or slash.
    if (!url || (url.protocol !== 'https:' && url.protocol !== 'http:') || url.origin !== o) {
      return `has ${JSON.stringify(o)}, which is not an origin like 'https://app.example' (scheme, host and port, lower case, no path or trailing slash) or '*'`;
    }
  }
  return null;
}
