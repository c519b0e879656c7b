/**
 * JWK Sets of clients and trusted issuers (RFC 7517 §5, RFC 7591 `jwks_uri`), fetched with
 * bounds: https only (loopback http by option), a timeout covering connect, headers and body,
 * a size and key-count limit, no redirects followed, HTTP caching (Cache-Control max-age /
 * no-store / no-cache, Age, Expires, ETag revalidation) and a rate limit on the refetch an
 * unknown `kid` triggers. Verification uses jose's `createLocalJWKSet` over the fetched set.
 */
import { createLocalJWKSet, type JSONWebKeySet } from 'jose';

/** The limits of one fetch, from the feature's values. */
export interface JwksSettings {
  /** Milliseconds for the whole exchange (connect, headers and body). */
  timeoutMs: number;
  /** Largest body accepted, in bytes. */
  maxBytes: number;
  /** Most keys a set may hold. */
  maxKeys: number;
  /** Whether `http://` is accepted for loopback hosts (development). */
  allowLoopbackHttp: boolean;
  /** Cache lifetime, in seconds, when the response carries no cache headers. */
  defaultCacheSeconds: number;
  /** Upper bound of any cache lifetime, in seconds. */
  maxCacheSeconds: number;
  /** Least seconds between two fetches of one URI caused by an unknown `kid`. */
  refetchIntervalSeconds: number;
}

/** Why a key set could not be had; `kind` goes to the logs as the cause's code. */
export class JwksError extends Error {
  constructor(
    readonly code: 'jwks_uri_not_allowed' | 'jwks_timeout' | 'jwks_http_status' | 'jwks_too_large' | 'jwks_invalid' | 'jwks_unreachable',
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

/** The URI as a URL, if it may be fetched: https, or http on a loopback host when allowed. */
export function checkJwksUri(uri: string, allowLoopbackHttp: boolean): URL {
  let url: URL;
  try {
    url = new URL(uri);
  } catch {
    throw new JwksError('jwks_uri_not_allowed', 'the jwks_uri is not an absolute URL');
  }
  if (url.protocol === 'https:') return url;
  if (url.protocol === 'http:' && allowLoopbackHttp && isLoopback(url.hostname)) return url;
  throw new JwksError('jwks_uri_not_allowed', 'the jwks_uri must use https');
}

function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '[::1]' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(host);
}

interface Entry extends KeySet {
  /** When this set was last fetched or revalidated (ms, the context's clock). */
  fetchedAt: number;
  /** Until when it may be used without asking the server again (ms). */
  freshUntil: number;
  etag: string | undefined;
}

/**
 * The key sets of one `oauth()` instance, by URI: a bounded LRU, with one fetch in flight
 * per URI however many requests wait for it.
 */
export class JwksCache {
  private readonly entries = new Map<string, Entry>();
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

  /** The key set at `uri`: the cached one while fresh, else fetched (or revalidated). */
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
    let p = this.inflight.get(uri);
    if (!p) {
      p = this.load(uri, now, s).finally(() => this.inflight.delete(uri));
      this.inflight.set(uri, p);
    }
    return p;
  }

  private async load(uri: string, now: number, s: JwksSettings): Promise<Entry> {
    const url = checkJwksUri(uri, s.allowLoopbackHttp);
    const previous = this.entries.get(uri);
    const res = await fetchBounded(url, s, previous?.etag);
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

interface FetchedSet {
  status: 200 | 304;
  headers: Headers;
  body: string;
}

/** GET with every bound applied; a redirect is an error, never followed. */
async function fetchBounded(url: URL, s: JwksSettings, etag: string | undefined): Promise<FetchedSet> {
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(), s.timeoutMs);
  try {
    const headers: Record<string, string> = { accept: 'application/jwk-set+json, application/json' };
    if (etag) headers['if-none-match'] = etag;
    const res = await fetch(url, { method: 'GET', redirect: 'manual', signal: controller.signal, headers });
    if (res.status === 304 && etag) {
      await res.body?.cancel();
      return { status: 304, headers: res.headers, body: '' };
    }
    if (res.status !== 200) {
      await res.body?.cancel();
      throw new JwksError('jwks_http_status', `the jwks_uri answered HTTP ${res.status}`);
    }
    const declared = Number(res.headers.get('content-length') ?? '0');
    if (declared > s.maxBytes) {
      await res.body?.cancel();
      throw new JwksError('jwks_too_large', `the JWK Set is larger than ${s.maxBytes} bytes`);
    }
    return { status: 200, headers: res.headers, body: await readLimited(res, s.maxBytes) };
  } catch (e) {
    if (e instanceof JwksError) throw e;
    if (controller.signal.aborted) throw new JwksError('jwks_timeout', `the jwks_uri did not answer within ${s.timeoutMs} ms`);
    throw new JwksError('jwks_unreachable', `the jwks_uri could not be fetched (${(e as Error).message})`);
  } finally {
    clearTimeout(timer);
  }
}

/** Reads the body, stopping (and cancelling the stream) past `max` bytes. */
async function readLimited(res: Response, max: number): Promise<string> {
  if (!res.body) return '';
  const reader = res.body.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    size += value.byteLength;
    if (size > max) {
      await reader.cancel();
      throw new JwksError('jwks_too_large', `the JWK Set is larger than ${max} bytes`);
    }
    chunks.push(value);
  }
  return Buffer.concat(chunks).toString('utf8');
}

/**
 * How long a response may be used, in seconds (RFC 9111 §4.2.1): `no-store` / `no-cache` → 0,
 * else `max-age` minus `Age`, else `Expires` minus `Date`, else the default; capped.
 */
export function cacheLifetime(headers: Headers, now: number, s: JwksSettings): number {
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
  return Math.max(0, Math.min(lifetime, s.maxCacheSeconds));
}
