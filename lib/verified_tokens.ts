/**
 * Signed access tokens this process has already verified, remembered until they expire, so a
 * client that presents the same JWT on every request pays one signature check, not one per
 * request (an ES256 verification is most of a protected request's CPU time).
 *
 * What is remembered, and why a hit is as good as a fresh check:
 * - The key is SHA-256 of the token's signature (its last dot-separated part; the whole token if
 *   it has no dot), and the entry keeps the rest, the signing input, which is compared as well:
 *   only a token identical to a verified one, byte for byte, can hit (a forged one never was
 *   verified, so never is here). The cache holds no usable token: the signing input without its
 *   signature is the token's header and claims, which the entry's value holds anyway. Hashing
 *   only the signature is a seventh of the work of hashing a whole access token.
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
 *
 * A hit gives each request its own `req.oauth` (`authorizationFor`), whose `expiresAt` carries
 * the JSON written when the token was verified (`ExpiryDate`).
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
  /** The token up to its last dot, included (empty for a token without one): the token is this and the signature. */
  signingInput: string;
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
    const dot = token.lastIndexOf('.');
    const key = sha256(token.slice(dot + 1));
    const entry = this.entries.get(key);
    if (entry === undefined || entry.signingInput !== token.slice(0, dot + 1)) return undefined;
    const { exp, iat, nbf } = entry.times;
    // RFC 7519 §4.1.4: expired once `exp` is past (jose's rule: exp <= now - leeway), and then for good.
    if (exp <= now - leeway) {
      this.entries.delete(key);
      return undefined;
    }
    // §4.1.5 and §4.1.6: not yet valid. The token may become valid later, so it stays.
    if ((nbf !== undefined && nbf > now + leeway) || iat > now + leeway) return undefined;
    if (entry.context !== context) return undefined;
    if (this.writes - entry.moved > Math.floor(this.max / 4)) {
      entry.moved = ++this.writes;
      lruTouch(this.entries, key, entry);
    }
    return entry.value;
  }

  /** Remembers a token that passed every check in `context`. */
  set(token: string, context: string, times: TokenTimes, value: T): void {
    if (this.max <= 0) return;
    const dot = token.lastIndexOf('.');
    lruSet(this.entries, sha256(token.slice(dot + 1)), { signingInput: detached(token.slice(0, dot + 1)), context, moved: ++this.writes, times, value }, this.max);
  }

  get size(): number {
    return this.entries.size;
  }
}

/** A copy of `part` that does not keep alive the string it was cut from (V8's slices do: here, the whole token). */
function detached(part: string): string {
  return Buffer.from(part, 'utf8').toString('utf8');
}

/**
 * The `expiresAt` of a remembered token's `req.oauth`: a `Date` like any other, whose JSON was
 * written once, when the token was verified, rather than on every request that serialises
 * `req.oauth` (`Date`'s own `toJSON` is the slowest part of `res.json(req.oauth)`). A route that
 * changes the date gets the JSON of its new time.
 */
export class ExpiryDate extends Date {
  readonly #time: number;
  readonly #json: string;

  /** `json`: the JSON of this time, when a copy already knows it. */
  constructor(time: number, json?: string) {
    super(time);
    this.#time = this.getTime();
    this.#json = json ?? super.toJSON();
  }

  /** Another date of the same time, for another request. */
  copy(): ExpiryDate {
    return new ExpiryDate(this.#time, this.#json);
  }

  override toJSON(): string {
    return this.getTime() === this.#time ? this.#json : super.toJSON();
  }
}

/** What a remembered token gives `req.oauth`, less the token (`applicationId` and `grantId` are null outside the authorization server). */
export interface RememberedAuthorization<Id extends number | null> {
  accountId: string | null;
  clientId: string;
  applicationId: Id;
  scopes: string[];
  grantId: Id;
  expiresAt: ExpiryDate;
}

/** `req.oauth` from a remembered value: a copy per request, so a route that changes it changes nothing another request sees. */
export function authorizationFor<Id extends number | null>(remembered: RememberedAuthorization<Id>, token: string): RememberedAuthorization<Id> & { token: string } {
  // Written out rather than spread: one object of one shape, on the path of every remembered token.
  return {
    accountId: remembered.accountId,
    clientId: remembered.clientId,
    applicationId: remembered.applicationId,
    scopes: remembered.scopes.slice(),
    grantId: remembered.grantId,
    expiresAt: remembered.expiresAt.copy(),
    token,
  };
}
