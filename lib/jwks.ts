/**
 * JWK Sets of clients and trusted issuers (RFC 7517 §5, RFC 7591 `jwks_uri`), fetched through
 * the SSRF-safe fetcher (`lib/http/safe_fetch.ts`: https only, public addresses only, bounded
 * time and size, no redirects), with a key-count limit, HTTP caching (Cache-Control max-age /
 * no-store / no-cache, Age, Expires, ETag revalidation), a rate limit on the refetch an
 * unknown `kid` triggers, and failures remembered with a growing backoff. Verification uses
 * jose's `createLocalJWKSet` over the fetched set (`verifyWithKeySet`).
 */
import { createLocalJWKSet, errors as joseErrors, jwtVerify, type JSONWebKeySet, type JWTPayload, type JWTVerifyOptions, type KeyLike } from 'jose';
import { checkFetchUrl, safeFetch, SafeFetchError, type Resolver, type SafeFetchErrorCode } from './http/safe_fetch';

/** The limits of one fetch, from the feature's values. */
export interface JwksSettings {
  /** Milliseconds for the whole exchange (connect, headers and body). */
  timeoutMs: number;
  /** Largest body accepted, in bytes. */
  maxBytes: number;
  /** Most keys a set may hold. */
  maxKeys: number;
  /** Whether `http://` is accepted for loopback hosts, and loopback addresses for https (development). */
  allowLoopbackHttp: boolean;
  /** Whether private, loopback and other non-public addresses may be fetched (development). */
  allowPrivateAddresses?: boolean;
  /** Seconds a failed fetch is remembered before the URI is tried again; doubles on each further failure. */
  failureBackoffSeconds?: number;
  /** Longest time, in seconds, a failure is remembered. */
  maxFailureBackoffSeconds?: number;
  /** Replaces DNS resolution (tests). */
  resolve?: Resolver;
  /** PEM certificates trusted besides Node's bundled roots. */
  trustedCertificates?: string | null;
  /** Cache lifetime, in seconds, when the response carries no cache headers. */
  defaultCacheSeconds: number;
  /** The current time in ms, on the clock of the callers' `now` (the context's), read when a fetch ends. */
  clock?: () => number;
  /** Lower bound of any cache lifetime, in seconds: what the server's own protection needs over what the response asks. */
  minCacheSeconds: number;
  /** Upper bound of any cache lifetime, in seconds. */
  maxCacheSeconds: number;
  /** Least seconds between two fetches of one URI caused by an unknown `kid`. */
  refetchIntervalSeconds: number;
}

/** Why a key set could not be had; `kind` goes to the logs as the cause's code. */
export class JwksError extends Error {
  constructor(
    readonly code: 'jwks_uri_not_allowed' | 'jwks_address_not_allowed' | 'jwks_timeout' | 'jwks_http_status' | 'jwks_too_large' | 'jwks_invalid' | 'jwks_unreachable',
    message: string,
  ) {
    super(message);
    this.name = 'JwksError';
  }
}

/** A parsed key set and jose's verifier over it (which caches imported keys). */
export interface KeySet {
  jwks: JSONWebKeySet;
  getKey: ReturnType<typeof createLocalJWKSet>;
}

/**
 * `jwtVerify` against a key set. A JWT without `kid` that several keys of the set could verify
 * (two keys of one type during a rotation's overlap: RFC 7515 does not require `kid`) is tried
 * against each in turn, which jose's `createLocalJWKSet` leaves to its caller; there are at most
 * `maxKeys` of them.
 */
export async function verifyWithKeySet(token: string, set: KeySet, options: JWTVerifyOptions): Promise<JWTPayload> {
  try {
    return (await jwtVerify(token, set.getKey, options)).payload;
  } catch (e) {
    if (!(e instanceof joseErrors.JWKSMultipleMatchingKeys)) throw e;
    for await (const key of e as AsyncIterable<KeyLike>) {
      try {
        return (await jwtVerify(token, key, options)).payload;
      } catch (inner) {
        if (inner instanceof joseErrors.JWSSignatureVerificationFailed) continue;
        throw inner;
      }
    }
    throw new joseErrors.JWSSignatureVerificationFailed();
  }
}

/** A key set from JSON text or an object: `{ keys: [...] }`, at most `maxKeys` object members. */
export function parseKeySet(input: unknown, maxKeys: number): KeySet {
  let parsed = input;
  if (typeof input === 'string') {
    try {
      parsed = JSON.parse(input);
    } catch {
      throw new JwksError('jwks_invalid', 'the JWK Set is not JSON');
    }
  }
  const keys = typeof parsed === 'object' && parsed !== null ? (parsed as { keys?: unknown }).keys : undefined;
  if (!Array.isArray(keys)) throw new JwksError('jwks_invalid', 'the JWK Set has no keys array');
  if (keys.length > maxKeys) throw new JwksError('jwks_invalid', `the JWK Set has more than ${maxKeys} keys`);
  try {
    const jwks = parsed as JSONWebKeySet;
    return { jwks, getKey: createLocalJWKSet(jwks) };
  } catch (e) {
    throw new JwksError('jwks_invalid', `the JWK Set is malformed (${(e as Error).message})`);
  }
}

const LABEL = 'the jwks_uri';

/** The URI as a URL, if it may be fetched: https, or http on a loopback host when allowed (addresses are checked when fetching). */
export function checkJwksUri(uri: string, allowLoopbackHttp: boolean): URL {
  try {
    return checkFetchUrl(uri, { allowLoopbackHttp, label: LABEL });
  } catch (e) {
    throw jwksErrorFrom(e);
  }
}

const FETCH_CODES: Record<SafeFetchErrorCode, JwksError['code']> = {
  url_not_allowed: 'jwks_uri_not_allowed',
  address_not_allowed: 'jwks_address_not_allowed',
  timeout: 'jwks_timeout',
  http_status: 'jwks_http_status',
  too_large: 'jwks_too_large',
  unreachable: 'jwks_unreachable',
};

function jwksErrorFrom(e: unknown): JwksError {
  if (e instanceof JwksError) return e;
  if (e instanceof SafeFetchError) return new JwksError(FETCH_CODES[e.code], e.message);
  return new JwksError('jwks_unreachable', `${LABEL} could not be fetched (${(e as Error).message})`);
}

/** A failed fetch of a URI, answered again without fetching until `until`. */
interface Failure {
  error: JwksError;
  until: number;
  /** The window of this failure (ms); the next one gets twice as long, up to the cap. */
  backoffMs: number;
}

/** Defaults of the failure backoff, in seconds, for settings that leave it out. */
const FAILURE_BACKOFF = 10;
const MAX_FAILURE_BACKOFF = 300;

interface Entry extends KeySet {
  /** When this set was last fetched or revalidated (ms, the context's clock). */
  fetchedAt: number;
  /** Until when it may be used without asking the server again (ms). */
  freshUntil: number;
  etag: string | undefined;
}

/**
 * The key sets of one `oauth()` instance, by URI: a bounded LRU, with one fetch in flight
 * per URI however many requests wait for it, and the last failure of each URI remembered for
 * a backoff window, so that requests naming a broken or hostile `jwks_uri` cannot make the
 * server fetch it again and again.
 */
export class JwksCache {
  private readonly entries = new Map<string, Entry>();
  private readonly failures = new Map<string, Failure>();
  private readonly inflight = new Map<string, Promise<Entry>>();
  private readonly inlineSets = new Map<string, KeySet>();

  constructor(private readonly maxEntries = 1000) {}

  /** A set stored with the application (its `jwks` column), parsed once per distinct value. */
  inline(json: string, maxKeys: number): KeySet {
    let set = this.inlineSets.get(json);
    if (!set) {
      set = parseKeySet(json, maxKeys);
      this.inlineSets.set(json, set);
      while (this.inlineSets.size > this.maxEntries) {
        const oldest = this.inlineSets.keys().next().value;
        if (oldest === undefined) break;
        this.inlineSets.delete(oldest);
      }
    }
    return set;
  }

  /** The key set at `uri`: the cached one while fresh, else fetched (or revalidated); a recent failure is thrown again. */
  async get(uri: string, now: number, s: JwksSettings): Promise<Entry> {
    const entry = this.entries.get(uri);
    if (entry && now < entry.freshUntil) {
      this.touch(uri, entry);
      return entry;
    }
    return this.fetch(uri, now, s);
  }

  /**
   * A refetch after a `kid` the cached set lacks (the client rotated its keys), unless the set
   * was fetched less than `refetchIntervalSeconds` ago: undefined then, so a stream of bogus
   * `kid`s cannot make the server hammer the client's endpoint.
   */
  async refetchForUnknownKey(uri: string, now: number, s: JwksSettings): Promise<Entry | undefined> {
    const entry = this.entries.get(uri);
    if (entry && now - entry.fetchedAt < s.refetchIntervalSeconds * 1000) return undefined;
    return this.fetch(uri, now, s);
  }

  private fetch(uri: string, now: number, s: JwksSettings): Promise<Entry> {
    const failure = this.failures.get(uri);
    if (failure && now < failure.until && now >= failure.until - failure.backoffMs) {
      const left = Math.ceil((failure.until - now) / 1000);
      return Promise.reject(new JwksError(failure.error.code, `${failure.error.message} (a failure remembered for ${left} s more)`));
    }
    let p = this.inflight.get(uri);
    if (!p) {
      p = this.load(uri, now, s).then(
        (entry) => {
          this.failures.delete(uri);
          return entry;
        },
        (e: unknown) => {
          const error = jwksErrorFrom(e);
          // The window opens when the fetch has failed (a timeout takes its whole budget), on the caller's clock.
          this.remember(uri, error, s.clock?.() ?? now, s);
          throw error;
        },
      );
      p = p.finally(() => this.inflight.delete(uri));
      this.inflight.set(uri, p);
    }
    return p;
  }

  /**
   * A failure's window: the base backoff, or twice the previous window (capped) when the URI
   * failed again within the cap of the previous window's end; a success forgets the failures.
   */
  private remember(uri: string, error: JwksError, now: number, s: JwksSettings): void {
    const base = (s.failureBackoffSeconds ?? FAILURE_BACKOFF) * 1000;
    const cap = Math.max(base, (s.maxFailureBackoffSeconds ?? MAX_FAILURE_BACKOFF) * 1000);
    const previous = this.failures.get(uri);
    const backoffMs = previous && now - previous.until < cap ? Math.min(previous.backoffMs * 2, cap) : base;
    this.failures.delete(uri);
    this.failures.set(uri, { error, until: now + backoffMs, backoffMs });
    while (this.failures.size > this.maxEntries) {
      const oldest = this.failures.keys().next().value;
      if (oldest === undefined) break;
      this.failures.delete(oldest);
    }
  }

  private async load(uri: string, now: number, s: JwksSettings): Promise<Entry> {
    const previous = this.entries.get(uri);
    const res = await fetchJwks(uri, s, previous?.etag);
    const lifetime = cacheLifetime(res.headers, now, s);
    let entry: Entry;
    if (res.status === 304 && previous) {
      entry = { ...previous, fetchedAt: now, freshUntil: now + lifetime * 1000 };
    } else {
      const set = parseKeySet(res.body, s.maxKeys);
      entry = { ...set, fetchedAt: now, freshUntil: now + lifetime * 1000, etag: res.headers.get('etag') ?? undefined };
    }
    this.touch(uri, entry);
    return entry;
  }

  private touch(uri: string, entry: Entry): void {
    this.entries.delete(uri);
    this.entries.set(uri, entry);
    while (this.entries.size > this.maxEntries) {
      const oldest = this.entries.keys().next().value;
      if (oldest === undefined) break;
      this.entries.delete(oldest);
    }
  }
}

const caches = new WeakMap<object, JwksCache>();

/** The cache of one configured instance (keyed by its runtime object). */
export function jwksCacheFor(owner: object): JwksCache {
  let c = caches.get(owner);
  if (!c) {
    c = new JwksCache();
    caches.set(owner, c);
  }
  return c;
}

/** GET through the SSRF-safe fetcher; 304 only when revalidating. */
function fetchJwks(uri: string, s: JwksSettings, etag: string | undefined): Promise<{ status: number; headers: Headers; body: string }> {
  const headers: Record<string, string> = { accept: 'application/jwk-set+json, application/json' };
  if (etag) headers['if-none-match'] = etag;
  return safeFetch(uri, {
    timeoutMs: s.timeoutMs,
    maxBytes: s.maxBytes,
    expectedStatuses: etag ? [200, 304] : [200],
    headers,
    // A developer who serves keys over loopback http serves them from a loopback address.
    allowLoopbackHttp: s.allowLoopbackHttp,
    allowLoopbackAddresses: s.allowLoopbackHttp,
    allowPrivateAddresses: s.allowPrivateAddresses,
    label: LABEL,
    resolve: s.resolve,
    trustedCertificates: s.trustedCertificates,
  });
}

/**
 * How long a response may be used, in seconds (RFC 9111 §4.2.1): `no-store` / `no-cache` → 0,
 * else `max-age` minus `Age`, else `Expires` minus `Date`, else the default; capped.
 */
export function cacheLifetime(headers: Headers, now: number, s: Pick<JwksSettings, 'defaultCacheSeconds' | 'minCacheSeconds' | 'maxCacheSeconds'>): number {
  const cc = (headers.get('cache-control') ?? '').toLowerCase();
  const directives = new Map<string, string | undefined>();
  for (const part of cc.split(',')) {
    const [k, v] = part.trim().split('=', 2);
    if (k) directives.set(k.trim(), v?.trim().replace(/^"|"$/g, ''));
  }
  let lifetime: number;
  if (directives.has('no-store') || directives.has('no-cache')) lifetime = 0;
  else if (directives.has('max-age')) {
    const maxAge = Number(directives.get('max-age'));
    const age = Number(headers.get('age') ?? '0');
    lifetime = Number.isFinite(maxAge) && maxAge >= 0 ? maxAge - (Number.isFinite(age) && age > 0 ? age : 0) : 0;
  } else if (headers.has('expires')) {
    const expires = Date.parse(headers.get('expires') ?? '');
    const date = Date.parse(headers.get('date') ?? '');
    lifetime = Number.isFinite(expires) ? (expires - (Number.isFinite(date) ? date : now)) / 1000 : 0;
  } else lifetime = s.defaultCacheSeconds;
  return Math.max(s.minCacheSeconds, 0, Math.min(lifetime, s.maxCacheSeconds));
}
