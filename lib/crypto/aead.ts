/**
 * AES-256-GCM (node:crypto) for values that must be recoverable but unreadable at rest: the
 * client secret of a `client_secret_jwt` application (RFC 7523 §2.2 keys HMAC with it).
 * Format: `v1.<iv>.<ciphertext>.<tag>`, each base64url; a 96-bit random IV per value.
 */
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';

const VERSION = 'v1';
const IV_BYTES = 12;
const TAG_BYTES = 16;

/**
 * Reads a 256-bit key given as 64 hex digits or as base64/base64url; anything else throws a
 * TypeError saying what is expected (the message never contains the key).
 */
export function parseAeadKey(input: string): Buffer {
  const s = input.trim();
  let key: Buffer | undefined;
  if (/^[0-9a-fA-F]{64}$/.test(s)) key = Buffer.from(s, 'hex');
  else if (/^[A-Za-z0-9+/_-]{43}={0,1}$/.test(s)) key = Buffer.from(s.replace(/-/g, '+').replace(/_/g, '/'), 'base64');
  if (!key || key.length !== 32) throw new TypeError('an AES-256-GCM key must be 32 bytes, given as 64 hex digits or 43/44 base64 characters');
  return key;
}

/** Encrypts `plaintext`; `context` is bound as additional authenticated data. */
export function aeadEncrypt(key: Buffer, plaintext: string, context: string): string {
  const iv = randomBytes(IV_BYTES);
  const cipher = createCipheriv('aes-256-gcm', key, iv, { authTagLength: TAG_BYTES });
  cipher.setAAD(Buffer.from(context, 'utf8'));
  const ciphertext = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final()]);
  return [VERSION, iv.toString('base64url'), ciphertext.toString('base64url'), cipher.getAuthTag().toString('base64url')].join('.');
}

/** Decrypts a value of {@link aeadEncrypt}; null when it is malformed, tampered with or under another key. */
export function aeadDecrypt(key: Buffer, sealed: string, context: string): string | null {
  const parts = sealed.split('.');
  if (parts.length !== 4 || parts[0] !== VERSION) return null;
  const iv = Buffer.from(parts[1]!, 'base64url');
  const ciphertext = Buffer.from(parts[2]!, 'base64url');
  const tag = Buffer.from(parts[3]!, 'base64url');
  if (iv.length !== IV_BYTES || tag.length !== TAG_BYTES) return null;
  try {
    const decipher = createDecipheriv('aes-256-gcm', key, iv, { authTagLength: TAG_BYTES });
    decipher.setAAD(Buffer.from(context, 'utf8'));
    decipher.setAuthTag(tag);
    return Buffer.concat([decipher.update(ciphertext), decipher.final()]).toString('utf8');
  } catch {
    return null;
  }
}
