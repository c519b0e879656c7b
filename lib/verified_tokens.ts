/**
 * Signed access tokens this process has already verified, remembered until they expire, so a
 * client that presents the same JWT on every request pays one signature check, not one per
 * request (an ES256 verification is most of a protected request's CPU time).
 *
 * What is remembered, and why a hit is as good as a fresh check:
 * - The key is SHA-256 of the token: the cache holds no token, and only a token identical to a
 *   verified one, byte for byte, can hit (a forged one never was verified, so never is here).
 * - Only successes are stored; failures always take the full path.
 * - The checks that do not depend on the time (signature, `typ`, `iss`, `aud`, the claims'
 *   shape) hold for as long as what they were checked against holds: each entry records that
 *   *context* (issuer and audience expected), and a hit needs the same one. The key set is
 *   fixed for an `oauth()` instance, and each instance has its own cache.
 * - The checks that do depend on the time (`exp`, `nbf`, `iat` not in the future, with the
 *   leeway) are made again on every hit.
 *
 * Bounded: the least recently used entry goes first; an expired one is dropped when met. A hit
 * moves its entry to the newest end only when a quarter of the bound has been written since it
 * was last moved, so the common hit (a client's token, presented again and again) does no write,
 * and an entry in use is never among the oldest three quarters.
 */
import { sha256 } from './crypto';
import { lruSet, lruTouch } from './lru';

/** The time claims of a verified token, in seconds since the epoch. */
export interface TokenTimes {
  exp: number;
  iat: number;
  nbf?: number;
}

interface Entry<T> {
  context: string;
  /** The cache's write count when this entry was last moved to the newest end. */
  moved: number;
  times: TokenTimes;
  value: T;
}

export class VerifiedTokenCache<T> {
  private readonly entries = new Map<string, Entry<T>>();
  /** Insertions and moves so far: how far back an entry's `moved` lies. */
  private writes = 0;

  /** `max` entries at most; 0 turns the cache off. */
  constructor(private readonly max: number) {}

  /** The remembered value of `token`, verified in the same `context` and valid at `now` (seconds) within `leeway`. */
  get(token: string, context: string, now: number, leeway: number): T | undefined {
    if (this.max <= 0) return undefined;
    const key = sha256(token);
    const entry = this.entries.get(key);
    if (entry === undefined) return undefined;
    const { exp, iat, nbf } = entry.times;
    // RFC 7519 §4.1.4: expired once `exp` is past (jose's rule: exp <= now - leeway), and then for good.
    if (exp <= now - leeway) {
      this.entries.delete(key);
      return undefined;
    }
    // §4.1.5 and §4.1.6: not yet valid. The token may become valid later, so it stays.
    if ((nbf !== undefined && nbf > now + leeway) || iat > now + leeway) return undefined;
    if (entry.context !== context) return undefined;
    if (this.writes - entry.moved > this.max >> 2) {
      entry.moved = ++this.writes;
      lruTouch(this.entries, key, entry);
    }
    return entry.value;
  }

  /** Remembers a token that passed every check in `context`. */
  set(token: string, context: string, times: TokenTimes, value: T): void {
    if (this.max <= 0) return;
    lruSet(this.entries, sha256(token), { context, moved: ++this.writes, times, value }, this.max);
  }

  get size(): number {
    return this.entries.size;
  }
}
