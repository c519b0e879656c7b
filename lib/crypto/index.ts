/** Random tokens, SHA-256 hashing, constant-time comparison and the bcrypt wrapper. */
import { createHash, createHmac, hash, randomBytes, timingSafeEqual } from 'node:crypto';
import bcrypt from 'bcrypt';

/** 256 bits from the CSPRNG, base64url without padding (43 characters). */
export function randomToken(bytes = 32): string {
  return randomBytes(bytes).toString('base64url');
}

/** base64url(SHA-256(value)) without padding: how codes and tokens are stored. */
export function sha256(value: string): string {
  // The one-shot form (Node 20.12) allocates no Hash object, which is most of the cost of hashing a token.
  return hash('sha256', value, 'base64url');
}

/** Compares two strings in time that depends only on their lengths' digests, not their contents. */
export function constantTimeEqual(a: string, b: string): boolean {
  // Hashing first gives equal-length inputs, so timingSafeEqual never throws or leaks the length.
  const ha = createHash('sha256').update(a, 'utf8').digest();
  const hb = createHash('sha256').update(b, 'utf8').digest();
  return timingSafeEqual(ha, hb);
}

export function bcryptHash(secret: string, cost: number): Promise<string> {
  return bcrypt.hash(secret, cost);
}

export async function bcryptMatches(secret: string, hash: string): Promise<boolean> {
  try {
    return await bcrypt.compare(secret, hash);
  } catch {
    return false; // a malformed stored hash never matches
  }
}

/**
 * Remembers secrets that bcrypt has verified, so a client pays bcrypt once per process rather
 * than once per request. Keys are HMAC-SHA-256 under a per-process random key of
 * (application id, stored hash, presented secret): the cache holds no secret, a changed secret
 * (new stored hash) never hits an old entry, and failures are never cached. Bounded LRU.
 */
export class VerifiedSecretCache {
  private readonly key = randomBytes(32);
  private readonly entries = new Map<string, true>();

  constructor(private readonly max: number) {}

  private keyFor(applicationId: number, storedHash: string, secret: string): string {
    return createHmac('sha256', this.key).update(`${applicationId}\0${storedHash}\0${secret}`, 'utf8').digest('base64url');
  }

  has(applicationId: number, storedHash: string, secret: string): boolean {
    if (this.max <= 0) return false;
    const k = this.keyFor(applicationId, storedHash, secret);
    if (!this.entries.has(k)) return false;
    this.entries.delete(k); // refresh its place in the LRU order
    this.entries.set(k, true);
    return true;
  }

  add(applicationId: number, storedHash: string, secret: string): void {
    if (this.max <= 0) return;
    this.entries.set(this.keyFor(applicationId, storedHash, secret), true);
    while (this.entries.size > this.max) {
      const oldest = this.entries.keys().next().value;
      if (oldest === undefined) break;
      this.entries.delete(oldest);
    }
  }

  /** Forgets every entry (entries of a changed secret are never hit again anyway: the key covers the stored hash). */
  clear(): void {
    this.entries.clear();
  }

  get size(): number {
    return this.entries.size;
  }
}
