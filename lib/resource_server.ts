/**
 * `resourceServer(options)`: RFC 6750 protection for an Express service that is not the
 * authorization server and has no database. It discovers the issuer's RFC 8414 metadata,
 * verifies RFC 9068 JWT access tokens against its `jwks_uri` (§4), and, given client
 * credentials, asks its RFC 7662 introspection endpoint about any other token. It sets the same
 * `req.oauth` and answers with the same errors and challenges as `requireOauthAuthorization`.
 *
 * Every fetch goes through the SSRF-safe fetcher (bounded time and size, no redirects); the
 * metadata and the keys are cached by their HTTP cache headers (`lib/jwks.ts`), the keys
 * refetched on an unknown `kid` (or asymmetric `alg`) at a limited rate; introspection answers
 * are cached by a hash of the token for at most their remaining lifetime. An issuer that is down
 * or slow costs a request at most `timeoutMs`, then `503 temporarily_unavailable` with
 * `Retry-After`; metadata fetched before goes on serving while it is refreshed, and while
 * refreshing it fails.
 */
import type { NextFunction, Request, RequestHandler, Response } from 'express';
import { decodeProtectedHeader, errors, type JSONWebKeySet, type JWTPayload } from 'jose';
import { sha256 } from './crypto';
import { lruSet, lruTouch } from './lru';
import { OAuthError, type OAuthErrorReason } from './errors';
import { bearerCredentials, MALFORMED_BEARER } from './http/bearer_credentials';
import { renderBearerError } from './http/error_handler';
import { checkFetchUrl, fetchTimeoutProblem, isLoopbackHost, MAX_FETCH_TIMEOUT_MS, safeFetch, SafeFetchError } from './http/safe_fetch';
import { cacheLifetime, JwksCache, verifyWithKeySet, type JwksSettings, type KeySet } from './jwks';
import { defaultLogger, errorMeta, RepeatLimiter, repeatKey, type OAuthLogger } from './log';
import { didYouMean, OAuthConfigurationError } from './options';
import type { OAuthAuthorization } from './resource';
import { isScopeToken } from './scopes';
import { isCanonicalCompactJws, isCompactJws } from './jws';
import { authorizationFor, ExpiryDate, VerifiedTokenCache, type RememberedAuthorization } from './verified_tokens';

export interface ResourceServerOptions {
  /**
   * The authorization server's issuer identifier (RFC 8414 §2), exactly as its metadata states
   * it: an https URL without query or fragment, or `http://` on a loopback host (development).
   */
  issuer: string;
  /**
   * What this service is called in the `aud` of the tokens it accepts: one value, or several
   * (any one matches). A JWT's `aud` claim and an introspection answer's `aud` (RFC 7662 §2.2)
   * must include one; an introspection answer without `aud` is refused.
   */
  audience: string | readonly string[];
  /**
   * Client credentials for RFC 7662 introspection (sent with `client_secret_basic`). Without
   * them only JWT access tokens are accepted; with them, any other token is introspected.
   */
  introspection?: { clientId: string; clientSecret: string };
  /**
   * Milliseconds the authorization server has to answer one fetch (metadata, keys or
   * introspection), body included, and the longest a request waits on it in all. Default 3000; at most 2^31 - 1.
   */
  timeoutMs?: number;
  /** Largest metadata, JWK Set or introspection response accepted, in bytes. Default 65536. */
  maxResponseBytes?: number;
  /** Most keys the JWK Set may hold. Default 32. */
  maxKeys?: number;
  /** Clock skew, in seconds, allowed when checking `exp`, `nbf` and `iat`. Default 10. */
  leewaySeconds?: number;
  /** Longest bearer token read, in characters; a longer one is invalid_token unread. Default 8192. */
  maxTokenLength?: number;
  /** Seconds the metadata and keys are cached when their response has no cache headers. Default 300. */
  defaultCacheSeconds?: number;
  /** Shortest time, in seconds, the metadata and keys are cached, whatever their headers say. Default 30. */
  minCacheSeconds?: number;
  /** Longest time, in seconds, the metadata and keys are cached, whatever their headers say. Default 86400. */
  maxCacheSeconds?: number;
  /** Least seconds between two fetches of the keys caused by a token with an unknown `kid` or asymmetric `alg`. Default 60. */
  keysRefetchIntervalSeconds?: number;
  /**
   * Longest time, in seconds, an introspection answer is reused (never past the token's `exp`):
   * a token revoked at the authorization server may work this long. 0: ask every time. Default 60.
   */
  introspectionCacheSeconds?: number;
  /** Most introspection answers kept (least recently used dropped). Default 10000. */
  introspectionCacheSize?: number;
  /**
   * Most verified JWT access tokens remembered (by the SHA-256 of their signature, until `exp`;
   * least recently used dropped), so a token presented again skips the signature check while the
   * key set it was verified with is current; `exp`, `nbf` and `iat` are checked on every request.
   * 0: verify every time. Default 10000.
   */
  verifiedTokenCacheSize?: number;
  /**
   * Seconds a failed fetch is remembered: requests meanwhile get 503 at once instead of
   * waiting on a server that is down. Not an introspection answer that may concern the one token
   * asked about (HTTP 400, 413, 414, 422, or one over `maxResponseBytes`). Default 5.
   */
  failureBackoffSeconds?: number;
  /**
   * Whether the metadata, `jwks_uri` and `introspection_endpoint` may be on private addresses
   * (RFC 1918, unique-local, link-local…). Default true: the issuer is configured by you and its
   * metadata is trusted with your tokens' keys anyway, and an authorization server on an internal
   * network is a normal deployment. Set false when the issuer comes from someone else (a tenant's
   * configuration, say) to keep every fetch on public addresses. Loopback addresses count as
   * private: allowed by default (an issuer on the same machine), and with false only for a
   * loopback `http://` issuer (development).
   */
  allowPrivateAddresses?: boolean;
  /** The realm of `WWW-Authenticate` challenges. Default `'oauth'`. */
  realm?: string;
  /** Where errors are logged (server errors rate-limited, refusals at info). Default: the console, errors and warnings only. */
  logger?: OAuthLogger;
  /** Called with every error answered, and the request (no token or secret in the error). */
  onError?: (err: OAuthError, req: Request) => void | Promise<void>;
  /** The current time (tests). Default: the system clock. */
  now?: () => Date;
}

/**
 * What `req.oauth` holds after `resourceServer().require()`: the fields of
 * {@link OAuthAuthorization}, where those only the authorization server's database knows are null.
 */
export interface RemoteOAuthAuthorization extends Omit<OAuthAuthorization, 'applicationId' | 'grantId'> {
  /** Not known outside the authorization server: always null. */
  applicationId: null;
  /** Not known outside the authorization server: always null. */
  grantId: null;
}

export interface ResourceServer {
  /** Middleware that requires a valid access token carrying every listed scope, and sets `req.oauth`. */
  require(...scopes: string[]): RequestHandler;
  /**
   * Fetches the issuer's metadata and keys now. Resolves when they can be used; rejects with
   * the reason otherwise (an issuer mismatch, say). Optional: a start-up check.
   */
  ready(): Promise<void>;
}

const DEFAULTS = {
  timeoutMs: 3000,
  maxResponseBytes: 65536,
  maxKeys: 32,
  leewaySeconds: 10,
  maxTokenLength: 8192,
  defaultCacheSeconds: 300,
  minCacheSeconds: 30,
  maxCacheSeconds: 86400,
  keysRefetchIntervalSeconds: 60,
  introspectionCacheSeconds: 60,
  introspectionCacheSize: 10000,
  verifiedTokenCacheSize: 10000,
  failureBackoffSeconds: 5,
};
type NumericOption = keyof typeof DEFAULTS;
const OPTION_NAMES = ['issuer', 'audience', 'introspection', ...Object.keys(DEFAULTS), 'allowPrivateAddresses', 'realm', 'logger', 'onError', 'now'];

const INVALID_TOKEN = 'Invalid access token';
const MISSING_TOKEN = 'An access token is required';
const MALFORMED_HEADER = 'Malformed Authorization header';
const INSUFFICIENT_SCOPE = 'Insufficient scope';
const UNAVAILABLE = 'The authorization server is unavailable, try again later';

/** RFC 9068 §2.1: the `typ` of a JWT access token (jose also accepts `application/at+jwt`). */
const AT_JWT = 'at+jwt';

/**
 * A resource server for another Express service: checks access tokens issued by `issuer`
 * without a database. Options are checked now; the issuer is first contacted by the first
 * request (or by `ready()`).
 *
 * @example
 * ```ts
 * import { resourceServer } from 'express-oauth-features';
 * const rs = resourceServer({
 *   issuer: 'https://auth.example.com',
 *   audience: 'https://api.example.com',
 *   introspection: { clientId: process.env.RS_CLIENT_ID!, clientSecret: process.env.RS_CLIENT_SECRET! }, // opaque tokens
 * });
 * app.get('/api/books', rs.require('books.read'), (req, res) => res.json({ owner: req.oauth!.accountId }));
 * ```
 */
export function resourceServer(options: ResourceServerOptions): ResourceServer {
  const issuer = new RemoteIssuer(checkOptions(options));
  return {
    require(...scopes: string[]): RequestHandler {
      for (const s of scopes) {
        if (typeof s !== 'string' || !isScopeToken(s)) throw new TypeError(`resourceServer().require(): '${String(s)}' is not a valid scope`);
      }
      return issuer.middleware([...new Set(scopes)]);
    },
    ready: () => issuer.ready(),
  };
}

/** The options with their defaults, checked. */
interface Settings extends Record<NumericOption, number> {
  issuer: string;
  issuerUrl: URL;
  audience: string[];
  introspection: { clientId: string; clientSecret: string } | undefined;
  /** The issuer is `http://` on a loopback host: its endpoints may be too (development). */
  loopbackHttp: boolean;
  allowPrivateAddresses: boolean;
  realm: string;
  logger: OAuthLogger;
  onError: ResourceServerOptions['onError'];
  now: () => Date;
}

function checkOptions(options: ResourceServerOptions): Settings {
  const fail = (message: string) => new OAuthConfigurationError(`resourceServer(): ${message}`);
  if (typeof options !== 'object' || options === null) throw fail('options must be an object with issuer and audience.');
  for (const name of Object.keys(options)) {
    if (!OPTION_NAMES.includes(name)) throw fail(`unknown option '${name}'.${didYouMean(name, OPTION_NAMES)}`);
  }

  const { issuer } = options;
  let issuerUrl: URL;
  try {
    issuerUrl = new URL(issuer);
  } catch {
    throw fail(`option 'issuer' must be an absolute https URL, got ${JSON.stringify(issuer)}.`);
  }
  const loopbackHttp = issuerUrl.protocol === 'http:' && isLoopbackHost(issuerUrl.hostname);
  if (issuerUrl.protocol !== 'https:' && !loopbackHttp) {
    throw fail(`option 'issuer' must use https (http only on a loopback host, for development), got '${issuer}'.`);
  }
  // RFC 8414 §2: an issuer has no query or fragment.
  if (issuerUrl.search || issuerUrl.hash || issuer.includes('?') || issuer.includes('#') || issuerUrl.username || issuerUrl.password) {
    throw fail(`option 'issuer' must have no query, fragment or credentials (RFC 8414 §2), got '${issuer}'.`);
  }

  const audience = typeof options.audience === 'string' ? [options.audience] : Array.isArray(options.audience) ? [...(options.audience as unknown[])] : undefined;
  if (!audience || audience.length === 0 || !audience.every((a): a is string => typeof a === 'string' && a.length > 0)) {
    throw fail("option 'audience' must be a non-empty string or a non-empty array of them (the `aud` your tokens carry).");
  }

  const { introspection } = options;
  if (introspection !== undefined) {
    const ok = typeof introspection === 'object' && introspection !== null && typeof introspection.clientId === 'string' && introspection.clientId !== '' && typeof introspection.clientSecret === 'string' && introspection.clientSecret !== '';
    if (!ok) throw fail("option 'introspection' must be { clientId, clientSecret }, both non-empty strings.");
  }

  const numbers = { ...DEFAULTS };
  for (const name of Object.keys(DEFAULTS) as NumericOption[]) {
    const v = (options as unknown as Record<string, unknown>)[name];
    if (v === undefined) continue;
    const positive = name === 'timeoutMs' || name === 'maxResponseBytes' || name === 'maxKeys' || name === 'maxTokenLength' || name === 'introspectionCacheSize';
    if (typeof v !== 'number' || !Number.isFinite(v) || v < 0 || (positive && v <= 0)) {
      throw fail(`option '${name}' must be a number, ${positive ? 'more than 0' : '0 or more'}; got ${JSON.stringify(v)}.`);
    }
    numbers[name] = v;
  }
  // The request's deadline is a timer too: a longer delay than Node's timers take would fire at once.
  if (numbers.timeoutMs > MAX_FETCH_TIMEOUT_MS) throw fail(`option 'timeoutMs' ${fetchTimeoutProblem(numbers.timeoutMs)}; got ${numbers.timeoutMs}.`);
  if (numbers.minCacheSeconds > numbers.maxCacheSeconds) throw fail("option 'minCacheSeconds' must not exceed 'maxCacheSeconds'.");

  if (options.allowPrivateAddresses !== undefined && typeof options.allowPrivateAddresses !== 'boolean') throw fail("option 'allowPrivateAddresses' must be a boolean.");
  if (options.realm !== undefined && typeof options.realm !== 'string') throw fail("option 'realm' must be a string.");
  const logger = options.logger;
  if (logger !== undefined && !(['error', 'warn', 'info'] as const).every((l) => typeof (logger as unknown as Record<string, unknown>)?.[l] === 'function')) {
    throw fail("option 'logger' must have error, warn and info methods.");
  }
  for (const name of ['onError', 'now'] as const) {
    if (options[name] !== undefined && typeof options[name] !== 'function') throw fail(`option '${name}' must be a function.`);
  }

  return {
    ...numbers,
    issuer,
    issuerUrl,
    audience,
    introspection: introspection && { clientId: introspection.clientId, clientSecret: introspection.clientSecret },
    loopbackHttp,
    allowPrivateAddresses: options.allowPrivateAddresses ?? true,
    realm: options.realm ?? 'oauth',
    logger: logger ?? defaultLogger,
    onError: options.onError,
    now: options.now ?? (() => new Date()),
  };
}

/** What the resource server uses of the issuer's RFC 8414 metadata. */
interface Metadata {
  jwksUri: string | undefined;
  introspectionEndpoint: string | undefined;
}

/** A remembered answer: the value, or the failure, until `until` (ms). */
type Cached<T> = { value: T; until: number } | { error: Error; until: number };

/** An introspection answer: what the token authorizes, or null when it is not active. */
/** An active introspected token: what `req.oauth` gets, and the `aud` it was issued for. */
type Introspected = { authorization: RememberedAuthorization<null>; aud: string[] } | null;

/** The resource server's view of one issuer: its metadata, keys and introspection answers. */
class RemoteIssuer {
  private metadata: Cached<Metadata> | undefined;
  private metadataInflight: Promise<Metadata> | undefined;
  private readonly keys = new JwksCache(1);
  private readonly keySettings: JwksSettings;
  private readonly algorithms = new WeakMap<JSONWebKeySet, string[]>();
  private readonly introspected = new Map<string, Cached<Introspected>>();
  /** Tokens verified with a key set, which the context names: a refetched set is another context. */
  private readonly verified: VerifiedTokenCache<RememberedAuthorization<null>>;
  private readonly keySetIds = new WeakMap<KeySet, string>();
  private keySetCount = 0;
  private readonly introspectionInflight = new Map<string, Promise<Introspected>>();
  private introspectionDownUntil = 0;
  private readonly repeats = new RepeatLimiter();

  constructor(private readonly s: Settings) {
    this.verified = new VerifiedTokenCache(s.verifiedTokenCacheSize);
    this.keySettings = {
      timeoutMs: s.timeoutMs,
      maxBytes: s.maxResponseBytes,
      maxKeys: s.maxKeys,
      allowLoopbackHttp: s.loopbackHttp,
      allowPrivateAddresses: s.allowPrivateAddresses,
      // A fixed window: an authorization server that is back is used again soon.
      failureBackoffSeconds: s.failureBackoffSeconds,
      maxFailureBackoffSeconds: s.failureBackoffSeconds,
      defaultCacheSeconds: s.defaultCacheSeconds,
      minCacheSeconds: s.minCacheSeconds,
      maxCacheSeconds: s.maxCacheSeconds,
      refetchIntervalSeconds: s.keysRefetchIntervalSeconds,
      clock: () => this.now(),
    };
  }

  middleware(required: string[]): RequestHandler {
    const rs = this;
    return function resourceServerMiddleware(req: Request, res: Response, next: NextFunction): void {
      let token: string | undefined;
      rs.withDeadline(async () => {
        token = bearerToken(req.headers.authorization);
        const authorization = await rs.authorize(token);
        checkScopes(authorization, required);
        return authorization;
      }).then(
        (authorization) => {
          // req.oauth is OAuthAuthorization | RemoteOAuthAuthorization (lib/resource.ts).
          req.oauth = authorization;
          next();
        },
        (e: unknown) => rs.fail(req, res, e, token),
      );
    };
  }

  async ready(): Promise<void> {
    try {
      const meta = await this.getMetadata();
      if (meta.jwksUri) await this.getKeys(meta.jwksUri);
    } catch (e) {
      throw e instanceof OAuthError && e.cause instanceof Error ? e.cause : e;
    }
  }

  /** The request's check, or 503 once `timeoutMs` has passed (a fetch then goes on and its result is cached). */
  private withDeadline<T>(check: () => Promise<T>): Promise<T> {
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(unavailable('authorization_server_unavailable', new Error(`the authorization server did not answer within ${this.s.timeoutMs} ms`))), this.s.timeoutMs);
    });
    const work = Promise.resolve().then(check);
    work.catch(() => undefined); // a check that loses the race must not be an unhandled rejection
    return Promise.race([work, deadline]).finally(() => clearTimeout(timer));
  }

  /** A bearer token's authorization: RFC 9068 verification for a JWT when the issuer has keys, else introspection. */
  private async authorize(token: string | undefined): Promise<RemoteOAuthAuthorization> {
    if (token === undefined) throw new OAuthError('invalid_token', MISSING_TOKEN, { reason: 'missing_token' });
    if (token.length > this.s.maxTokenLength) throw invalid('malformed_token');
    const meta = await this.getMetadata();
    if (meta.jwksUri && isCompactJws(token)) return this.verifyJwt(token, meta.jwksUri);
    if (this.s.introspection && meta.introspectionEndpoint) {
      const found = await this.introspect(token, meta.introspectionEndpoint);
      if (!found) throw invalid('inactive_token');
      // RFC 7662 §2.2 `aud`, RFC 8707 §2: a token for another resource is not for this one.
      if (!found.aud.some((a) => this.s.audience.includes(a))) throw invalid('audience_mismatch');
      return authorizationFor(found.authorization, token);
    }
    throw invalid('unknown_token');
  }

  private now(): number {
    return this.s.now().getTime();
  }

  // Metadata (RFC 8414).

  private getMetadata(): Promise<Metadata> {
    const now = this.now();
    const cached = this.metadata;
    if (cached && now < cached.until) {
      if ('error' in cached) return Promise.reject(unavailable('authorization_server_unavailable', cached.error, Math.ceil((cached.until - now) / 1000)));
      return Promise.resolve(cached.value);
    }
    const refresh = this.refreshMetadata();
    // Stale-while-revalidate (RFC 5861 §3): with a good copy, the request goes on with it while
    // the refresh runs (which then resolves with that copy if it fails), so a metadata endpoint
    // that hangs costs no request its deadline.
    return cached && 'value' in cached ? Promise.resolve(cached.value) : refresh;
  }

  /** One fetch of the metadata at a time; its outcome (or, on failure, the last good copy) is cached. */
  private refreshMetadata(): Promise<Metadata> {
    if (!this.metadataInflight) {
      this.metadataInflight = this.fetchMetadata().then(
        ({ value, lifetime }) => {
          this.metadata = { value, until: this.now() + lifetime * 1000 };
          return value;
        },
        (e: Error) => {
          const until = this.now() + this.s.failureBackoffSeconds * 1000;
          const previous = this.metadata;
          if (previous && 'value' in previous) {
            // Stale-if-error (RFC 5861 §4): metadata rarely changes, and the last good copy is
            // still the issuer's word; it serves until the next attempt. Keys get no such grace:
            // a key removed from the set must stop verifying.
            this.metadata = { value: previous.value, until };
            this.s.logger.warn(`resourceServer: the issuer's metadata could not be refreshed, the previous copy is used (${e.message})`);
            return previous.value;
          }
          this.metadata = { error: e, until };
          throw unavailable('authorization_server_unavailable', e);
        },
      ).finally(() => {
        this.metadataInflight = undefined;
      });
      // A refresh behind a stale copy has no caller waiting: its failure must not be an unhandled rejection.
      this.metadataInflight.catch(() => undefined);
    }
    return this.metadataInflight;
  }

  /**
   * RFC 8414 §3.1: the well-known suffix inserted between host and path; for an issuer with a
   * path, the suffix appended to it is tried next (a server mounted under a prefix, as
   * `app.use('/oauth', auth)` without `wellKnown()` serves it), when the first answers an error status.
   */
  private async fetchMetadata(): Promise<{ value: Metadata; lifetime: number }> {
    const { issuerUrl } = this.s;
    const path = issuerUrl.pathname.replace(/\/$/, '');
    const urls = [`${issuerUrl.origin}/.well-known/oauth-authorization-server${path}`];
    if (path !== '') urls.push(`${issuerUrl.origin}${path}/.well-known/oauth-authorization-server`);
    let lastError: Error | undefined;
    for (const url of urls) {
      let res;
      try {
        res = await safeFetch(url, {
          ...this.fetchRules(),
          headers: { accept: 'application/json' },
          label: `the issuer's metadata (${url})`,
        });
      } catch (e) {
        lastError = e as Error;
        if (e instanceof SafeFetchError && e.code === 'http_status') continue;
        throw e;
      }
      return { value: this.parseMetadata(url, res.body), lifetime: cacheLifetime(res.headers, this.now(), this.s) };
    }
    throw lastError!;
  }

  private parseMetadata(url: string, body: string): Metadata {
    const bad = (why: string) => new Error(`resourceServer(): the metadata at ${url} ${why}`);
    let doc: unknown;
    try {
      doc = JSON.parse(body);
    } catch {
      throw bad('is not JSON');
    }
    if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) throw bad('is not a JSON object');
    const m = doc as Record<string, unknown>;
    // RFC 8414 §3.3: the issuer must be identical to the one the metadata was asked for.
    if (m.issuer !== this.s.issuer) throw bad(`names the issuer ${JSON.stringify(m.issuer)}, not the configured '${this.s.issuer}' (RFC 8414 §3.3: they must be identical)`);
    const endpoint = (name: string): string | undefined => {
      const v = m[name];
      if (v === undefined) return undefined;
      if (typeof v !== 'string') throw bad(`has a ${name} that is not a string`);
      try {
        return checkFetchUrl(v, { allowLoopbackHttp: this.s.loopbackHttp, label: `its ${name}` }).href;
      } catch (e) {
        throw bad(`has a ${name} that may not be fetched: ${(e as Error).message}`);
      }
    };
    const jwksUri = endpoint('jwks_uri');
    const introspectionEndpoint = this.s.introspection ? endpoint('introspection_endpoint') : undefined;
    if (this.s.introspection) {
      if (!introspectionEndpoint) throw bad('has no introspection_endpoint, but introspection credentials are configured');
      const methods = m.introspection_endpoint_auth_methods_supported;
      if (Array.isArray(methods) && !methods.includes('client_secret_basic')) throw bad('does not list client_secret_basic in introspection_endpoint_auth_methods_supported');
    } else if (!jwksUri) {
      throw bad('has no jwks_uri: JWT access tokens cannot be checked, and no introspection credentials are configured');
    }
    return { jwksUri, introspectionEndpoint };
  }

  private fetchRules() {
    return {
      timeoutMs: this.s.timeoutMs,
      maxBytes: this.s.maxResponseBytes,
      allowLoopbackHttp: this.s.loopbackHttp,
      allowLoopbackAddresses: this.s.loopbackHttp,
      allowPrivateAddresses: this.s.allowPrivateAddresses,
    };
  }

  // JWT access tokens (RFC 9068 §4).

  private async getKeys(uri: string, refetch = false): Promise<KeySet | undefined> {
    try {
      return refetch ? await this.keys.refetchForUnknownKey(uri, this.now(), this.keySettings) : await this.keys.get(uri, this.now(), this.keySettings);
    } catch (e) {
      throw unavailable('jwks_unavailable', e);
    }
  }

  /**
   * jose's `jwtVerify` with a key of the issuer's set, the algorithms pinned to its keys'
   * (never `none` or HMAC), `typ` at+jwt, `iss`, `aud` and `exp` / `nbf` with the leeway. A
   * `kid` the set lacks, or an asymmetric algorithm none of its keys has (the issuer may have
   * rotated to a key of another type), refetches it once, at most every `keysRefetchIntervalSeconds`.
   */
  private async verifyJwt(token: string, jwksUri: string): Promise<RemoteOAuthAuthorization> {
    let keys = (await this.getKeys(jwksUri))!;
    const remembered = this.verified.get(token, this.keySetId(keys), this.now() / 1000, this.s.leewaySeconds);
    if (remembered) return authorizationFor(remembered, token);
    if (!isCanonicalCompactJws(token)) throw invalid('malformed_token');
    let payload: JWTPayload;
    try {
      payload = await this.verifyWith(token, keys);
    } catch (e) {
      if (!(e instanceof errors.JWKSNoMatchingKey || signedWithUnlistedAlgorithm(e, token))) throw invalid(reasonOf(e), e);
      const fresh = await this.getKeys(jwksUri, true);
      if (!fresh) throw invalid('unknown_signing_key', e);
      keys = fresh;
      try {
        payload = await this.verifyWith(token, keys);
      } catch (again) {
        throw invalid(reasonOf(again), again);
      }
    }
    const now = this.now() / 1000;
    // jose checks `iat` only against a maximum age; a token issued in the future is not valid yet.
    if ((payload.iat as number) > now + this.s.leewaySeconds) throw invalid('token_claim_mismatch');
    const { sub, client_id: clientId, scope, exp, iat, nbf } = payload;
    if (typeof sub !== 'string' || typeof clientId !== 'string' || (scope !== undefined && typeof scope !== 'string')) throw invalid('malformed_token');
    const authorization = {
      // RFC 9068 §2.2: without a resource owner (client credentials), `sub` identifies the client.
      // The private `gty` claim our own issuer adds to such tokens is deliberately not read: this
      // checks any RFC 8414 issuer's tokens, and elsewhere `gty` means other things (Auth0 puts
      // `gty: password` on tokens that do have a user). On our issuer it changes nothing: a token
      // with `gty` has `sub` = `client_id` unless a jwtAccessTokenClaims override changes it.
      accountId: sub === clientId ? null : sub,
      clientId,
      applicationId: null,
      scopes: splitScope(scope),
      grantId: null,
      expiresAt: new ExpiryDate((exp as number) * 1000),
    };
    this.verified.set(token, this.keySetId(keys), { exp: exp as number, iat: iat as number, ...(typeof nbf === 'number' && { nbf }) }, authorization);
    return authorizationFor(authorization, token);
  }

  /** A name for each key set fetched: tokens verified with one are remembered for that one only. */
  private keySetId(keys: KeySet): string {
    let id = this.keySetIds.get(keys);
    if (id === undefined) this.keySetIds.set(keys, (id = String(++this.keySetCount)));
    return id;
  }

  private verifyWith(token: string, keys: KeySet): Promise<JWTPayload> {
    const algorithms = this.algorithmsOf(keys.jwks);
    if (algorithms.length === 0) return Promise.reject(new errors.JOSEAlgNotAllowed('the JWK Set has no signature key'));
    return verifyWithKeySet(token, keys, {
      algorithms,
      typ: AT_JWT,
      issuer: this.s.issuer,
      audience: this.s.audience,
      clockTolerance: this.s.leewaySeconds,
      currentDate: new Date(this.now()),
      // RFC 9068 §2.2: required claims (`aud` and `iss` are required by the options above).
      requiredClaims: ['exp', 'iat', 'jti', 'sub', 'client_id'],
    });
  }

  /** The asymmetric algorithms the set's signature keys can verify: a key's `alg`, else its type's family. */
  private algorithmsOf(jwks: JSONWebKeySet): string[] {
    let algs = this.algorithms.get(jwks);
    if (!algs) {
      const found = new Set<string>();
      for (const k of jwks.keys) {
        if (typeof k !== 'object' || k === null || (k.use !== undefined && k.use !== 'sig')) continue;
        for (const alg of typeof k.alg === 'string' ? [k.alg] : ALGORITHMS_BY_KEY[`${k.kty}:${k.crv ?? ''}`] ?? []) {
          if (ASYMMETRIC.has(alg)) found.add(alg);
        }
      }
      algs = [...found];
      this.algorithms.set(jwks, algs);
    }
    return algs;
  }

  // Introspection (RFC 7662).

  /** The token's cached answer, else the introspection endpoint's, cached by the token's hash. */
  private introspect(token: string, endpoint: string): Promise<Introspected> {
    const key = sha256(token);
    const now = this.now();
    const cached = this.introspected.get(key);
    if (cached && now < cached.until && 'value' in cached) {
      lruTouch(this.introspected, key, cached);
      return Promise.resolve(cached.value);
    }
    if (now < this.introspectionDownUntil) {
      return Promise.reject(unavailable('authorization_server_unavailable', new Error('the introspection endpoint failed recently'), Math.ceil((this.introspectionDownUntil - now) / 1000)));
    }
    let p = this.introspectionInflight.get(key);
    if (!p) {
      p = this.fetchIntrospection(token, endpoint).then(
        (value) => {
          this.remember(key, value);
          return value;
        },
        (e: unknown) => {
          // Down, slow, refusing our credentials or answering something unusable: the next
          // requests get 503 at once for the backoff window. Not after an answer that may be about
          // this token only (400, 413, 414, 422, or one over maxResponseBytes): one client's odd
          // token must not stop the others'.
          if (!tokenDependent(e)) {
            this.introspectionDownUntil = this.now() + this.s.failureBackoffSeconds * 1000;
          }
          throw unavailable('authorization_server_unavailable', e);
        },
      );
      p = p.finally(() => this.introspectionInflight.delete(key));
      this.introspectionInflight.set(key, p);
    }
    return p;
  }

  private remember(key: string, value: Introspected): void {
    const now = this.now();
    const max = now + this.s.introspectionCacheSeconds * 1000;
    const until = value ? Math.min(max, value.authorization.expiresAt.getTime()) : max;
    if (until <= now) return;
    lruSet(this.introspected, key, { value, until }, this.s.introspectionCacheSize);
  }

  /** RFC 7662 §2.1: a form POST with `client_secret_basic` (RFC 6749 §2.3.1: form-encoded, then Basic). */
  private async fetchIntrospection(token: string, endpoint: string): Promise<Introspected> {
    const { clientId, clientSecret } = this.s.introspection!;
    const basic = Buffer.from(`${formEncode(clientId)}:${formEncode(clientSecret)}`).toString('base64');
    const res = await safeFetch(endpoint, {
      ...this.fetchRules(),
      body: new URLSearchParams({ token, token_type_hint: 'access_token' }).toString(),
      headers: { authorization: `Basic ${basic}`, 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' },
      label: 'the introspection_endpoint',
    });
    let doc: unknown;
    try {
      doc = JSON.parse(res.body);
    } catch {
      throw new Error('the introspection_endpoint answered with something that is not JSON');
    }
    if (typeof doc !== 'object' || doc === null || typeof (doc as { active?: unknown }).active !== 'boolean') {
      throw new Error('the introspection_endpoint answered without a boolean `active` (RFC 7662 §2.2)');
    }
    return this.describe(doc as Record<string, unknown>);
  }

  /**
   * §2.2: an active Bearer access token of this issuer, unexpired, with its client; null
   * otherwise. `token_type` must say Bearer: an active refresh token is not an access token.
   * `aud` (a string or an array of them) is returned for the caller to compare with the
   * configured `audience`: an answer without it names no audience, so it is refused.
   */
  private describe(m: Record<string, unknown>): Introspected {
    if (m.active !== true) return null;
    const { token_type: type, exp, nbf, iss, sub, client_id: clientId, scope, aud } = m;
    const now = this.now() / 1000;
    if (typeof type !== 'string' || type.toLowerCase() !== 'bearer') return null;
    if (typeof exp !== 'number' || exp <= now - this.s.leewaySeconds) return null;
    if (typeof nbf === 'number' && nbf > now + this.s.leewaySeconds) return null;
    if (iss !== undefined && iss !== this.s.issuer) return null;
    if (typeof clientId !== 'string' || (sub !== undefined && typeof sub !== 'string') || (scope !== undefined && typeof scope !== 'string')) return null;
    const audiences = typeof aud === 'string' ? [aud] : Array.isArray(aud) ? aud.filter((a): a is string => typeof a === 'string') : [];
    return {
      authorization: {
        accountId: sub === undefined || sub === clientId ? null : sub,
        clientId,
        applicationId: null,
        scopes: splitScope(scope),
        grantId: null,
        expiresAt: new ExpiryDate(exp * 1000),
      },
      aud: audiences,
    };
  }

  // Errors.

  /** RFC 6750 §3 answer; anything but an OAuthError is a generic 500 (a bug), logged with the token removed. */
  private fail(req: Request, res: Response, e: unknown, token: string | undefined): void {
    const err = e instanceof OAuthError ? e : new OAuthError('server_error', 'An unexpected error occurred', { reason: 'internal_error', cause: e });
    this.report(req, err, token);
    try {
      renderBearerError(res, err, this.s.realm);
    } catch {
      if (!res.headersSent) res.status(500).end();
    }
  }

  private report(req: Request, err: OAuthError, token: string | undefined): void {
    try {
      const secrets = [token, req.headers.authorization, this.s.introspection?.clientSecret].filter((x): x is string => !!x);
      const meta = errorMeta(err, (req.originalUrl ?? req.url ?? '').split('?')[0] ?? '', secrets);
      const message = `resourceServer: ${err.code} (${err.reason ?? 'unknown'})`;
      if (err.status >= 500) {
        const verdict = this.repeats.admit(repeatKey(err, meta), Date.now());
        if (verdict.log) {
          if (verdict.suppressed > 0) meta.repeats = verdict.suppressed;
          this.s.logger.error(message, meta);
        }
      } else this.s.logger.info(message, meta);
    } catch {
      /* a failing logger must not turn a refusal into a crash */
    }
    const { onError } = this.s;
    if (onError) {
      Promise.resolve()
        .then(() => onError(err, req))
        .catch(() => undefined);
    }
  }
}

/** Introspection answers that can be about the token presented (a malformed or oversized request), not about the endpoint. */
const TOKEN_DEPENDENT_STATUSES: ReadonlySet<number> = new Set([400, 413, 414, 422]);

/** An introspection failure that may concern the token presented only: a refusal of the request, or an answer too large. */
function tokenDependent(e: unknown): boolean {
  return e instanceof SafeFetchError && ((e.code === 'http_status' && TOKEN_DEPENDENT_STATUSES.has(e.status!)) || e.code === 'too_large');
}

/** Asymmetric JWS algorithms (RFC 7518, RFC 8037): the only ones a JWT access token may use here. */
const ASYMMETRIC = new Set(['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512', 'EdDSA', 'Ed25519']);

/** A refusal for an asymmetric algorithm the cached set has no key for: a refetch may bring one. */
function signedWithUnlistedAlgorithm(e: unknown, token: string): boolean {
  if (!(e instanceof errors.JOSEAlgNotAllowed)) return false;
  try {
    const { alg } = decodeProtectedHeader(token);
    return typeof alg === 'string' && ASYMMETRIC.has(alg);
  } catch {
    return false;
  }
}

/** The algorithms a key without `alg` can verify, by `kty:crv`. */
const ALGORITHMS_BY_KEY: Record<string, string[]> = {
  'RSA:': ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512'],
  'EC:P-256': ['ES256'],
  'EC:P-384': ['ES384'],
  'EC:P-521': ['ES512'],
  'OKP:Ed25519': ['EdDSA', 'Ed25519'],
  'OKP:Ed448': ['EdDSA'],
};

/** RFC 6750 §2.1: the token of `Authorization: Bearer <token>`; undefined without Bearer credentials. */
function bearerToken(header: string | undefined): string | undefined {
  const token = bearerCredentials(header);
  if (token === MALFORMED_BEARER) throw new OAuthError('invalid_request', MALFORMED_HEADER, { reason: 'malformed_parameter' });
  return token;
}

function splitScope(scope: unknown): string[] {
  return typeof scope === 'string' ? scope.split(' ').filter((s) => s !== '') : [];
}

/** RFC 6750 §3.1: every required scope must be granted, else 403 insufficient_scope naming them. */
function checkScopes(granted: RemoteOAuthAuthorization, required: string[]): void {
  if (required.some((s) => !granted.scopes.includes(s))) {
    throw new OAuthError('insufficient_scope', INSUFFICIENT_SCOPE, { reason: 'missing_scope', scope: required.join(' ') });
  }
}

function invalid(reason: OAuthErrorReason, cause?: unknown): OAuthError {
  return new OAuthError('invalid_token', INVALID_TOKEN, { reason, cause });
}

/** 503: the token may be fine, but the authorization server cannot say so now. */
function unavailable(reason: OAuthErrorReason, cause: unknown, retryAfter?: number): OAuthError {
  if (cause instanceof OAuthError) return cause;
  const error = cause instanceof Error ? cause : new Error(String(cause));
  return new OAuthError('temporarily_unavailable', UNAVAILABLE, { reason, cause: error, ...(retryAfter !== undefined && { retryAfter }) });
}

/** The jose failure as a reason for the logs; every one is invalid_token to the client (RFC 6750 §3.1). */
function reasonOf(e: unknown): OAuthErrorReason {
  if (e instanceof errors.JWKSNoMatchingKey || e instanceof errors.JWKSMultipleMatchingKeys) return 'unknown_signing_key';
  if (e instanceof errors.JWTExpired) return 'expired_token';
  if (e instanceof errors.JWTClaimValidationFailed) return e.reason === 'missing' ? 'malformed_token' : 'token_claim_mismatch';
  if (e instanceof errors.JWSSignatureVerificationFailed || e instanceof errors.JOSEAlgNotAllowed || e instanceof errors.JOSENotSupported) return 'token_signature_invalid';
  return 'malformed_token';
}

/** application/x-www-form-urlencoded encoding of one value (RFC 6749 §2.3.1, Appendix B). */
function formEncode(v: string): string {
  return encodeURIComponent(v).replace(/%20/g, '+');
}
