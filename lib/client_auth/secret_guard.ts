/**
 * Guards the bcrypt checks of the secret methods (`client_secret_basic`, `client_secret_post`),
 * so bcrypt is neither an oracle nor a lever (issue 10 item 5):
 * - an unknown client id pays the same bcrypt check as a wrong secret, against a dummy hash of
 *   the current `oauthClientSecretHashCost`. After raising the cost, a wrong secret of a client
 *   hashed at the old cost is answered faster than an unknown id, so the timing tells old
 *   clients from unknown ids until their secrets are rotated (re-hashed at the new cost);
 * - every check waits for one of `oauthBcryptConcurrency` slots of the instance, behind at most
 *   `oauthBcryptQueueLimit` others, else `503 temporarily_unavailable` (bcrypt runs on libuv's
 *   4-thread pool, which fs and dns share);
 * - `oauthClientAuthFailureLimit` failures of a client id from one source address within
 *   `oauthClientAuthFailureWindow` refuse that pair's uncached checks for
 *   `oauthClientAuthLockout` seconds without running bcrypt.
 *
 * Failures are counted per (client id, source), never per client id alone: a client id is
 * public, so a lockout per id would let anyone keep a client locked out, and its correct
 * secret would pass only from this process's verified-secret cache (empty after a restart, on
 * the other processes behind a load balancer, and after a rotation). The source is `req.ip`,
 * which follows Express's `trust proxy`: behind a proxy the host must set it to the proxy's
 * hops or addresses (not `true`, which trusts a client's own X-Forwarded-For), or every
 * request shares the proxy's address. IPv6 sources are grouped by /64, the block one host is
 * usually given, so that rotating addresses within it does not buy fresh attempts.
 *
 * There is deliberately no budget per client id besides: any limit that refuses a client id
 * without bcrypt is again a lever for whoever holds enough addresses (a single IPv6 /48 holds
 * 65,536 /64s), and it would protect nothing. Generated secrets have 256 random bits, so online
 * guessing is hopeless at any rate, and the CPU is bounded by the concurrency and queue limits,
 * which answer 503 for a moment rather than lock anyone out. A flood from many addresses thus
 * costs each of them `oauthClientAuthFailureLimit` checks per window, and at worst a brief 503.
 *
 * The throttle keeps a fixed-size key per entry (SHA-256 of id and source: a presented client id
 * may be 16 KB), drops entries once their window and lockout have passed, and holds at most
 * FAILURE_TRACKING_SIZE of them.
 *
 * The verified-secret cache is consulted before all this, so a client whose secret it holds is
 * served even from a locked-out source. A cache hit leaves the failure count alone: clearing
 * it there would give a flood another round of bcrypt checks per correct request. A secret that
 * bcrypt verifies clears the count of its own source.
 */
import { isIPv4, isIPv6 } from 'node:net';
import type { OAuthContext } from '../context';
import { OAuthError } from '../errors';
import { bcryptHash, bcryptMatches, randomToken, sha256 } from '../crypto';
import type { Application } from '../store';
import { invalidClient, loadClient } from './common';

/** The values of oauth_base this module reads (declared in features/oauth_base.ts). */
interface GuardValues {
  oauthClientSecretHashCost: number;
  oauthBcryptConcurrency: number;
  oauthBcryptQueueLimit: number;
  oauthClientAuthFailureLimit: number;
  oauthClientAuthFailureWindow: number;
  oauthClientAuthLockout: number;
  oauthClientAuthBusyMessage: string;
}

/** How many (client id, source) pairs the failure throttle remembers per instance (least recently failed first out). */
export const FAILURE_TRACKING_SIZE = 10_000;

/** Retry-After of a 503 when every bcrypt slot and the queue are taken: a check takes tens of ms. */
const BUSY_RETRY_AFTER_SECONDS = 1;

/**
 * The client of a secret method, once `secretMatches` accepts the secret. A client id that is
 * unknown, or not registered for `method`, is refused after the same bcrypt work as a wrong
 * secret, so the time of the answer does not tell which client ids exist.
 */
export async function authenticateWithSecret(ctx: OAuthContext, clientId: string, secret: string, method: string): Promise<Application> {
  let app: Application;
  try {
    app = await loadClient(ctx, clientId, method);
  } catch (e) {
    if (e instanceof OAuthError && e.code === 'invalid_client') await guardedSecretCheck(ctx, clientId, secret, null);
    throw e;
  }
  const methods = ctx.methods as unknown as { secretMatches(app: Application, secret: string): Promise<boolean> };
  if (!(await methods.secretMatches(app, secret))) throw invalidClient(ctx, 'bad_client_secret');
  return app;
}

/**
 * Whether `secret` matches the stored bcrypt hash of the client presented as `clientId`, or,
 * with `storedHash` null (unknown client, method not registered, no secret), the same work
 * against a dummy hash, always false. Throws 401 `invalid_client` with Retry-After while the
 * client id is locked out for the request's source, and 503 `temporarily_unavailable` when the
 * queue is full.
 */
export async function guardedSecretCheck(ctx: OAuthContext, clientId: string, secret: string, storedHash: string | null): Promise<boolean> {
  return (await guardedSecretMatch(ctx, clientId, secret, storedHash === null ? [] : [storedHash])) !== null;
}

/**
 * `guardedSecretCheck` against several stored hashes (the current one, then the previous one of a
 * rotation still in its grace period), in one bcrypt slot and counted as one failure: the hash
 * that matched, or null (with no hash, after the dummy check).
 */
export async function guardedSecretMatch(ctx: OAuthContext, clientId: string, secret: string, storedHashes: readonly string[]): Promise<string | null> {
  const values = ctx.values as unknown as GuardValues;
  const guard = guardOf(ctx);
  const key = failureKey(clientId, clientAuthSource(ctx.req.ip));
  refuseIfLockedOut(ctx, guard, key);
  const release = guard.limiter.acquire(values.oauthBcryptConcurrency, values.oauthBcryptQueueLimit);
  if (!release) {
    throw new OAuthError('temporarily_unavailable', values.oauthClientAuthBusyMessage, { reason: 'client_auth_overloaded', retryAfter: BUSY_RETRY_AFTER_SECONDS });
  }
  let matched: string | null = null;
  const done = await release;
  try {
    // Failures of the checks queued beside this one may have locked the id meanwhile.
    refuseIfLockedOut(ctx, guard, key);
    if (storedHashes.length === 0) await bcryptMatches(secret, await dummyHash(values.oauthClientSecretHashCost));
    for (const hash of storedHashes) {
      if (await bcryptMatches(secret, hash)) {
        matched = hash;
        break;
      }
    }
  } finally {
    done();
  }
  if (matched !== null) guard.failures.clear(key);
  else guard.failures.record(key, ctx.now().getTime(), values);
  return matched;
}

function refuseIfLockedOut(ctx: OAuthContext, guard: SecretGuard, key: string): void {
  const waitMs = guard.failures.lockedFor(key, ctx.now().getTime());
  // RFC 9110 §10.2.3: whole seconds, at least 1 (0 would invite an immediate retry).
  if (waitMs > 0) throw invalidClient(ctx, 'client_locked_out', undefined, Math.max(1, Math.ceil(waitMs / 1000)));
}

// ---------------------------------------------------------------------------------------------
// Whom the failures are counted against.

/**
 * The source a failure is counted against, from `req.ip` (Express's `trust proxy` decides
 * whether it is the peer or a forwarded address): an IPv4 address as is (also when IPv4-mapped
 * in IPv6), an IPv6 address as its /64 prefix, anything else as given ('' when unknown).
 */
export function clientAuthSource(ip: string | undefined): string {
  if (!ip) return '';
  const addr = ip.replace(/%.*$/, '').toLowerCase(); // a zone id names an interface, not a host
  if (isIPv4(addr) || !isIPv6(addr)) return addr;
  const groups = ipv6Groups(addr);
  if (groups.slice(0, 5).every((g) => g === 0) && groups[5] === 0xffff) {
    return [groups[6]! >> 8, groups[6]! & 0xff, groups[7]! >> 8, groups[7]! & 0xff].join('.');
  }
  return `${groups.slice(0, 4).map((g) => g.toString(16)).join(':')}::/64`;
}

/** The eight 16-bit groups of a valid IPv6 address (`::` expanded, a dotted IPv4 tail converted). */
function ipv6Groups(addr: string): number[] {
  const parse = (part: string): number[] =>
    part === ''
      ? []
      : part.split(':').flatMap((g) => {
          if (!g.includes('.')) return [parseInt(g, 16)];
          const [a, b, c, d] = g.split('.').map(Number) as [number, number, number, number];
          return [(a << 8) | b, (c << 8) | d];
        });
  const [head = '', tail] = addr.split('::');
  const h = parse(head);
  const t = tail === undefined ? [] : parse(tail);
  return [...h, ...new Array<number>(8 - h.length - t.length).fill(0), ...t];
}

/**
 * The throttle's key for a client id presented from a source: fixed-size (43 characters of
 * base64url SHA-256) however long the presented id, and unambiguous (JSON keeps the two apart).
 */
export function failureKey(clientId: string, source: string): string {
  return sha256(JSON.stringify([clientId, source]));
}

// ---------------------------------------------------------------------------------------------
// The dummy hash: one per process and cost, of a random secret nobody knows.

const dummyHashes = new Map<number, Promise<string>>();

function dummyHash(cost: number): Promise<string> {
  let hash = dummyHashes.get(cost);
  if (!hash) {
    hash = bcryptHash(randomToken(), cost);
    dummyHashes.set(cost, hash);
    hash.catch(() => dummyHashes.delete(cost));
  }
  return hash;
}

// ---------------------------------------------------------------------------------------------
// One guard per oauth() instance.

interface SecretGuard {
  limiter: ConcurrencyLimiter;
  failures: FailureThrottle;
}

const guards = new WeakMap<object, SecretGuard>();

function guardOf(ctx: OAuthContext): SecretGuard {
  let guard = guards.get(ctx.runtime);
  if (!guard) {
    guard = { limiter: new ConcurrencyLimiter(), failures: new FailureThrottle(FAILURE_TRACKING_SIZE) };
    guards.set(ctx.runtime, guard);
  }
  return guard;
}

/**
 * At most `concurrency` holders at once, and at most `queueLimit` waiting. The limits are read
 * at each acquisition, so a value computed per request applies from the next one.
 */
export class ConcurrencyLimiter {
  private running = 0;
  private concurrency = 1;
  private readonly waiting: (() => void)[] = [];

  /** A promise of the release function, or null when the queue is full. */
  acquire(concurrency: number, queueLimit: number): Promise<() => void> | null {
    this.concurrency = Math.max(1, Math.floor(concurrency));
    if (this.running < this.concurrency && this.waiting.length === 0) {
      this.running++;
      return Promise.resolve(this.releaser());
    }
    if (this.waiting.length >= Math.max(0, queueLimit)) return null;
    return new Promise((resolve) => {
      this.waiting.push(() => {
        this.running++;
        resolve(this.releaser());
      });
    });
  }

  get active(): number {
    return this.running;
  }

  get queued(): number {
    return this.waiting.length;
  }

  private releaser(): () => void {
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.running--;
      while (this.running < this.concurrency && this.waiting.length > 0) this.waiting.shift()!();
    };
  }
}

interface FailureEntry {
  windowStart: number;
  count: number;
  lockedUntil: number;
  /** When the window and the lockout have both passed: the entry no longer matters. */
  expiresAt: number;
}

type FailureLimits = Pick<GuardValues, 'oauthClientAuthFailureLimit' | 'oauthClientAuthFailureWindow' | 'oauthClientAuthLockout'>;

/**
 * Failed secret checks by `failureKey` (client id and source), in a bounded LRU. An entry whose
 * window and lockout have passed is dropped when next looked up, and the oldest entries are
 * swept at each failure once they expire, so the map holds only failures that still count.
 * Evicting a live lockout takes FAILURE_TRACKING_SIZE fresh failed checks, each paying bcrypt
 * through the limiter: far longer than a lockout lasts.
 */
export class FailureThrottle {
  private readonly entries = new Map<string, FailureEntry>();

  constructor(private readonly max: number) {}

  /** Milliseconds until the key may be checked again; 0 when it may now. */
  lockedFor(key: string, now: number): number {
    const entry = this.entries.get(key);
    if (!entry) return 0;
    if (entry.expiresAt <= now) {
      this.entries.delete(key);
      return 0;
    }
    return entry.lockedUntil > now ? entry.lockedUntil - now : 0;
  }

  record(key: string, now: number, limits: FailureLimits): void {
    if (limits.oauthClientAuthFailureLimit <= 0) return;
    const windowMs = limits.oauthClientAuthFailureWindow * 1000;
    let entry = this.entries.get(key);
    if (entry) this.entries.delete(key); // back to the newest end of the LRU order
    if (!entry || now - entry.windowStart >= windowMs || now < entry.windowStart) {
      entry = { windowStart: now, count: 0, lockedUntil: entry && entry.lockedUntil > now ? entry.lockedUntil : 0, expiresAt: 0 };
    }
    entry.count++;
    if (entry.count >= limits.oauthClientAuthFailureLimit) {
      entry.lockedUntil = now + limits.oauthClientAuthLockout * 1000;
      entry.windowStart = now;
      entry.count = 0;
    }
    entry.expiresAt = Math.max(entry.lockedUntil, entry.windowStart + windowMs);
    this.entries.set(key, entry);
    this.sweep(now);
  }

  /** A verified secret: the key starts afresh. */
  clear(key: string): void {
    this.entries.delete(key);
  }

  get size(): number {
    return this.entries.size;
  }

  /** The stored keys, oldest failure first (for specs: each is a fixed-size hash). */
  keys(): string[] {
    return [...this.entries.keys()];
  }

  /**
   * Drops expired entries from the old end (entries are in the order of their last failure, and
   * with constant limits that is the order they expire in), then the oldest beyond `max`.
   */
  private sweep(now: number): void {
    for (const [key, entry] of this.entries) {
      if (entry.expiresAt > now) break;
      this.entries.delete(key);
    }
    while (this.entries.size > this.max) {
      const oldest = this.entries.keys().next().value;
      if (oldest === undefined) break;
      this.entries.delete(oldest);
    }
  }
}
