/**
 * Guards the bcrypt checks of the secret methods (`client_secret_basic`, `client_secret_post`),
 * so bcrypt is neither an oracle nor a lever (issue 10 item 5):
 * - an unknown client id pays the same bcrypt check as a wrong secret, against a dummy hash;
 * - every check waits for one of `oauthBcryptConcurrency` slots of the instance, behind at most
 *   `oauthBcryptQueueLimit` others, else `503 temporarily_unavailable` (bcrypt runs on libuv's
 *   4-thread pool, which fs and dns share);
 * - `oauthClientAuthFailureLimit` failures of a client id within `oauthClientAuthFailureWindow`
 *   refuse its uncached checks for `oauthClientAuthLockout` seconds without running bcrypt.
 * The verified-secret cache is consulted before all this, so a client whose secret it holds is
 * served during a flood against its own id. A cache hit leaves the failure count alone: clearing
 * it there would give a flood another round of bcrypt checks per correct request. A secret that
 * bcrypt verifies clears it.
 */
import type { OAuthContext } from '../context';
import { OAuthError } from '../errors';
import { bcryptHash, bcryptMatches, randomToken } from '../crypto';
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

/** How many client ids the failure throttle remembers per instance (least recently failed first out). */
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
 * client id is locked out, and 503 `temporarily_unavailable` when the queue is full.
 */
export async function guardedSecretCheck(ctx: OAuthContext, clientId: string, secret: string, storedHash: string | null): Promise<boolean> {
  const values = ctx.values as unknown as GuardValues;
  const guard = guardOf(ctx);
  refuseIfLockedOut(ctx, guard, clientId);
  const release = guard.limiter.acquire(values.oauthBcryptConcurrency, values.oauthBcryptQueueLimit);
  if (!release) {
    throw new OAuthError('temporarily_unavailable', values.oauthClientAuthBusyMessage, { reason: 'client_auth_overloaded', retryAfter: BUSY_RETRY_AFTER_SECONDS });
  }
  let ok: boolean;
  const done = await release;
  try {
    // Failures of the checks queued beside this one may have locked the id meanwhile.
    refuseIfLockedOut(ctx, guard, clientId);
    const hash = storedHash ?? (await dummyHash(values.oauthClientSecretHashCost));
    ok = (await bcryptMatches(secret, hash)) && storedHash !== null;
  } finally {
    done();
  }
  if (ok) guard.failures.clear(clientId);
  else guard.failures.record(clientId, ctx.now().getTime(), values);
  return ok;
}

function refuseIfLockedOut(ctx: OAuthContext, guard: SecretGuard, clientId: string): void {
  const waitMs = guard.failures.lockedFor(clientId, ctx.now().getTime());
  // RFC 9110 §10.2.3: whole seconds, at least 1 (0 would invite an immediate retry).
  if (waitMs > 0) throw invalidClient(ctx, 'client_locked_out', undefined, Math.max(1, Math.ceil(waitMs / 1000)));
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
}

/**
 * Failed secret checks by presented client id, in a bounded LRU. Evicting a lockout takes
 * FAILURE_TRACKING_SIZE fresh failed checks, each paying bcrypt through the limiter: far longer
 * than a lockout lasts.
 */
export class FailureThrottle {
  private readonly entries = new Map<string, FailureEntry>();

  constructor(private readonly max: number) {}

  /** Milliseconds until the client id may be checked again; 0 when it may now. */
  lockedFor(clientId: string, now: number): number {
    const entry = this.entries.get(clientId);
    return entry && entry.lockedUntil > now ? entry.lockedUntil - now : 0;
  }

  record(clientId: string, now: number, limits: Pick<GuardValues, 'oauthClientAuthFailureLimit' | 'oauthClientAuthFailureWindow' | 'oauthClientAuthLockout'>): void {
    if (limits.oauthClientAuthFailureLimit <= 0) return;
    let entry = this.entries.get(clientId);
    if (entry) this.entries.delete(clientId); // back to the newest end of the LRU order
    if (!entry || now - entry.windowStart >= limits.oauthClientAuthFailureWindow * 1000 || now < entry.windowStart) {
      entry = { windowStart: now, count: 0, lockedUntil: entry?.lockedUntil ?? 0 };
    }
    entry.count++;
    if (entry.count >= limits.oauthClientAuthFailureLimit) {
      entry.lockedUntil = now + limits.oauthClientAuthLockout * 1000;
      entry.windowStart = now;
      entry.count = 0;
    }
    this.entries.set(clientId, entry);
    while (this.entries.size > this.max) {
      const oldest = this.entries.keys().next().value;
      if (oldest === undefined) break;
      this.entries.delete(oldest);
    }
  }

  /** A verified secret: the client id starts afresh. */
  clear(clientId: string): void {
    this.entries.delete(clientId);
  }

  get size(): number {
    return this.entries.size;
  }
}
