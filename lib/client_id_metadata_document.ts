/**
 * Client ID metadata documents (draft-ietf-oauth-client-id-metadata-document-01): the client
 * identifier URL's syntax (§3), and the fetch and cache of the documents (§4, §4.4), through the
 * SSRF-safe fetcher (`lib/http/safe_fetch.ts`: https only, non-public addresses refused after
 * DNS resolution, one timer for the whole exchange, bounded body, redirects refused, §6.5–§6.6).
 *
 * The cache of one `oauth()` instance is a bounded LRU of validated documents, each kept for its
 * HTTP cache lifetime (Cache-Control max-age / no-store / no-cache, Age, Expires; `cacheLifetime`
 * of lib/jwks.ts) clamped between a minimum and a maximum; one fetch in flight per URL however
 * many requests wait for it; and a failure (fetch or validation) remembered for a backoff window
 * that doubles on each further failure, so a broken or hostile URL cannot make the server fetch
 * it again and again (§4.3); and at most `maxConcurrentFetches` distinct URLs fetched at once, so
 * many new URLs cannot hold many outbound connections (the feature also limits each source's
 * fetches, `oauthClientIdMetadataDocumentRateLimit`).
 */
import { createHash } from 'node:crypto';
import { cacheLifetime } from './jwks';
import { lruSet, lruTouch } from './lru';
import { safeFetch, SafeFetchError, type Resolver } from './http/safe_fetch';

/** Why a document could not be had (`unavailable`) or used (`invalid`). */
export class ClientIdMetadataDocumentError extends Error {
  constructor(
    readonly kind: 'unavailable' | 'invalid',
    message: string,
    override readonly cause?: unknown,
  ) {
    super(message);
    this.name = 'ClientIdMetadataDocumentError';
  }
}

/** Whether a client id is meant as a client identifier URL (§3): the syntactic test that keeps ordinary ids off this path. */
export function looksLikeClientIdUrl(clientId: string): boolean {
  return clientId.startsWith('https://');
}

/**
 * §3: an https URL with a path (not `/`), no fragment, no user name or password, no `.` or `..`
 * path segments, and already in the form it is compared in (§4.1: the document's `client_id` is
 * compared with it as a string, and nothing is normalised). `maxLength` is what the client_id
 * column holds.
 */
export function checkClientIdUrl(clientId: string, maxLength: number): URL {
  const invalid = (why: string) => new ClientIdMetadataDocumentError('invalid', `the client identifier URL ${why}`);
  if (clientId.length > maxLength) throw invalid(`is longer than ${maxLength} characters`);
  let url: URL;
  try {
    url = new URL(clientId);
  } catch {
    throw invalid('is not a URL');
  }
  if (url.protocol !== 'https:') throw invalid('must use https');
  if (url.username !== '' || url.password !== '') throw invalid('must not contain a user name or password');
  if (clientId.includes('#')) throw invalid('must not contain a fragment');
  // The WHATWG parser removes dot segments (also their %2e forms), so the path is read from the text.
  const afterScheme = clientId.slice(clientId.indexOf('//') + 2);
  const authorityEnd = afterScheme.search(/[/?]/);
  const path = authorityEnd === -1 || afterScheme[authorityEnd] !== '/' ? '' : afterScheme.slice(authorityEnd).split('?')[0]!;
  if (path === '' || path === '/') throw invalid('must have a path');
  if (path.split('/').some((segment) => /^(\.|%2e){1,2}$/i.test(segment))) throw invalid('must not contain . or .. path segments');
  if (url.href !== clientId) throw invalid('must be in normal form (RFC 3986 §6.2.2: lower-case scheme and host, no default port)');
  return url;
}

/** The limits of one fetch and the cache bounds, from the feature's values. */
export interface MetadataDocumentSettings {
  timeoutMs: number;
  maxBytes: number;
  allowPrivateAddresses: boolean;
  trustedCertificates: string | null;
  /** Cache lifetime, in seconds, of a response without cache headers. */
  defaultCacheSeconds: number;
  minCacheSeconds: number;
  maxCacheSeconds: number;
  failureBackoffSeconds: number;
  maxFailureBackoffSeconds: number;
  /** Fetches of distinct URLs in flight at once; one more is refused (unavailable, not remembered as the URL's failure). */
  maxConcurrentFetches: number;
  /** The current time in ms on the context's clock, read when a fetch ends. */
  clock: () => number;
  /** Replaces DNS resolution (tests). */
  resolve?: Resolver;
}

/** A validated document: what `parse` made of it, and a hash of that, to tell when it changed. */
export interface MetadataDocument<T> {
  value: T;
  hash: string;
  fetchedAt: number;
  freshUntil: number;
}

interface Failure {
  error: ClientIdMetadataDocumentError;
  until: number;
  backoffMs: number;
}

/**
 * The documents of one instance, by URL. `parse` turns the fetched body into the value to keep
 * (and throws a ClientIdMetadataDocumentError of kind `invalid` for a document not to use); its
 * failures are remembered like fetch failures.
 */
export class MetadataDocumentCache<T> {
  private readonly entries = new Map<string, MetadataDocument<T>>();
  private readonly failures = new Map<string, Failure>();
  private readonly inflight = new Map<string, Promise<MetadataDocument<T>>>();

  constructor(private readonly maxEntries: number) {}

  /** The document at `url`: the cached one while fresh, else fetched; a failure within its window is thrown again without fetching. */
  async get(url: string, now: number, s: MetadataDocumentSettings, parse: (body: unknown) => T): Promise<MetadataDocument<T>> {
    const entry = this.entries.get(url);
    if (entry && now < entry.freshUntil) {
      lruTouch(this.entries, url, entry);
      return entry;
    }
    const failure = this.failures.get(url);
    if (failure && now < failure.until && now >= failure.until - failure.backoffMs) {
      const left = Math.ceil((failure.until - now) / 1000);
      throw new ClientIdMetadataDocumentError(failure.error.kind, `${failure.error.message} (a failure remembered for ${left} s more)`, failure.error.cause);
    }
    let p = this.inflight.get(url);
    if (!p) {
      if (this.inflight.size >= s.maxConcurrentFetches) {
        throw new ClientIdMetadataDocumentError('unavailable', `the client ID metadata document was not fetched: ${this.inflight.size} other documents are being fetched`);
      }
      p = this.load(url, now, s, parse).then(
        (loaded) => {
          this.failures.delete(url);
          lruSet(this.entries, url, loaded, this.maxEntries);
          return loaded;
        },
        (e: unknown) => {
          const error = e instanceof ClientIdMetadataDocumentError ? e : new ClientIdMetadataDocumentError('unavailable', `the client ID metadata document could not be fetched (${(e as Error).message})`, e);
          this.entries.delete(url);
          this.remember(url, error, s.clock(), s);
          throw error;
        },
      );
      p = p.finally(() => this.inflight.delete(url));
      this.inflight.set(url, p);
    }
    return p;
  }

  /** Whether `get` would fetch `url` now: no fresh document, no failure being remembered, no fetch in flight. */
  wouldFetch(url: string, now: number): boolean {
    const entry = this.entries.get(url);
    if (entry && now < entry.freshUntil) return false;
    const failure = this.failures.get(url);
    if (failure && now < failure.until && now >= failure.until - failure.backoffMs) return false;
    return !this.inflight.has(url);
  }

  private async load(url: string, now: number, s: MetadataDocumentSettings, parse: (body: unknown) => T): Promise<MetadataDocument<T>> {
    let res;
    try {
      res = await safeFetch(url, {
        timeoutMs: s.timeoutMs,
        maxBytes: s.maxBytes,
        // §4: a 200 answer; any other, redirects included, is a failure (no redirect is followed).
        expectedStatuses: [200],
        headers: { accept: 'application/json' },
        allowPrivateAddresses: s.allowPrivateAddresses,
        trustedCertificates: s.trustedCertificates,
        label: 'the client ID metadata document',
        resolve: s.resolve,
      });
    } catch (e) {
      throw new ClientIdMetadataDocumentError('unavailable', e instanceof SafeFetchError ? e.message : `the client ID metadata document could not be fetched (${(e as Error).message})`, e);
    }
    let body: unknown;
    try {
      body = JSON.parse(res.body);
    } catch {
      throw new ClientIdMetadataDocumentError('invalid', 'the client ID metadata document is not JSON');
    }
    const value = parse(body);
    const hash = createHash('sha256').update(JSON.stringify(value)).digest('hex');
    const lifetime = cacheLifetime(res.headers, now, { defaultCacheSeconds: s.defaultCacheSeconds, minCacheSeconds: s.minCacheSeconds, maxCacheSeconds: s.maxCacheSeconds });
    const fetchedAt = s.clock();
    return { value, hash, fetchedAt, freshUntil: fetchedAt + lifetime * 1000 };
  }

  /** A failure's window: the base backoff, or twice the previous window (capped) when it failed again soon after. */
  private remember(url: string, error: ClientIdMetadataDocumentError, now: number, s: MetadataDocumentSettings): void {
    const base = s.failureBackoffSeconds * 1000;
    const cap = Math.max(base, s.maxFailureBackoffSeconds * 1000);
    const previous = this.failures.get(url);
    const backoffMs = previous && now - previous.until < cap ? Math.min(previous.backoffMs * 2, cap) : base;
    this.failures.delete(url);
    if (backoffMs > 0) lruSet(this.failures, url, { error, until: now + backoffMs, backoffMs }, this.maxEntries);
  }

  /** How many documents are cached (specs). */
  get size(): number {
    return this.entries.size;
  }
}
