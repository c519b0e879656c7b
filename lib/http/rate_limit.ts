/**
 * A per-source request counter in fixed windows, per process: the registration endpoint's rate
 * limit (`oauthRegistrationRateLimit`). Sources are grouped as the client-authentication
 * throttle groups them (`clientAuthSource`: IPv4 as is, IPv6 by /64). Bounded: the map keeps at
 * most `maxEntries` sources, dropping expired windows first, then the oldest.
 */
import type { OAuthContext } from '../context';
import { clientAuthSource } from '../client_auth/secret_guard';
import { lruTouch } from '../lru';

export interface RateLimit {
  /** Requests a source may make per window (a positive integer). */
  max: number;
  /** The window, in seconds (positive). */
  windowSeconds: number;
}

/** Whether a value is a usable `{ max, windowSeconds }`. */
export function isRateLimit(v: unknown): v is RateLimit {
  if (typeof v !== 'object' || v === null) return false;
  const { max, windowSeconds } = v as Partial<RateLimit>;
  return Number.isInteger(max) && (max as number) > 0 && typeof windowSeconds === 'number' && Number.isFinite(windowSeconds) && windowSeconds > 0;
}

/**
 * One limit's counters, a FixedWindowRateLimiter per `oauth()` instance: `wait` counts a request
 * of the context's source and gives the seconds until it may make another, 0 within the limit.
 */
export class SourceRateLimit {
  private readonly limiters = new WeakMap<object, FixedWindowRateLimiter>();

  wait(ctx: OAuthContext, limit: RateLimit): number {
    let limiter = this.limiters.get(ctx.runtime);
    if (!limiter) this.limiters.set(ctx.runtime, (limiter = new FixedWindowRateLimiter()));
    return limiter.hit(clientAuthSource((ctx.req as { ip?: string } | undefined)?.ip), ctx.now().getTime(), limit);
  }
}

export class FixedWindowRateLimiter {
  private readonly entries = new Map<string, { start: number; count: number }>();

  constructor(private readonly maxEntries = 10_000) {}

  /** Counts one request of `key` at `now` (ms): 0 when it is within the limit, else the seconds until its window ends. */
  hit(key: string, now: number, limit: RateLimit): number {
    const windowMs = limit.windowSeconds * 1000;
    let entry = this.entries.get(key);
    if (!entry || now - entry.start >= windowMs || now < entry.start) entry = { start: now, count: 0 };
    entry.count++;
    lruTouch(this.entries, key, entry);
    this.sweep(now, windowMs);
    return entry.count > limit.max ? Math.max(1, Math.ceil((entry.start + windowMs - now) / 1000)) : 0;
  }

  get size(): number {
    return this.entries.size;
  }

  private sweep(now: number, windowMs: number): void {
    for (const [key, entry] of this.entries) {
      if (now - entry.start < windowMs) break;
      this.entries.delete(key);
    }
    while (this.entries.size > this.maxEntries) this.entries.delete(this.entries.keys().next().value as string);
  }
}
