/**
 * The server's own signing keys (style.md §9: one key module serves them): what `jwks`
 * configures, `GET /jwks` publishes, and JWT access tokens, ID tokens and anything else the
 * server signs are signed and verified with.
 *
 * Keys are imported once per `oauth()` instance with node:crypto (synchronously, so start-up
 * checks can reject a bad key before the first request), and the key objects are kept: signing
 * and verification never import a key per request. Signing and verifying are jose's.
 */
import { createHash, createPrivateKey, createPublicKey, type KeyObject } from 'node:crypto';
import { SignJWT, type JSONWebKeySet, type JWK, type JWTPayload, type KeyLike } from 'jose';
import type { OAuthContext, RuntimeView } from './context';
import { OAuthConfigurationError } from './options';

/** One entry of `oauthJwtKeys` / `oauthJwtPublicKeysToPublish`. */
export interface ServerKeyInput {
  /** The key: a JWK object, or a PEM string (PKCS#8 / SEC1 / PKCS#1 private key, or an SPKI public key for a retired one). */
  key: JWK | string;
  /** The JWS algorithm the key signs with: ES256 (recommended), ES384, ES512, RS256…512, PS256…512 or EdDSA. */
  alg: string;
  /** The key id; default: the JWK's own `kid`, else its RFC 7638 thumbprint. */
  kid?: string;
}

/** A key of this server, imported once. */
export interface ServerKey {
  kid: string;
  alg: string;
  /** The public JWK as published: public members only, with `kid`, `alg` and `use: 'sig'`. */
  publicJwk: JWK;
  publicKey: KeyLike | KeyObject;
  /** Only on keys of `oauthJwtKeys`; a retired key has none. */
  privateKey?: KeyLike | KeyObject;
}

/** The JWS algorithms a server key may have, and the key type (and curve) each needs. */
const ALGORITHMS: Readonly<Record<string, { types: readonly string[]; curves?: readonly string[] }>> = {
  ES256: { types: ['ec'], curves: ['prime256v1'] },
  ES384: { types: ['ec'], curves: ['secp384r1'] },
  ES512: { types: ['ec'], curves: ['secp521r1'] },
  RS256: { types: ['rsa'] },
  RS384: { types: ['rsa'] },
  RS512: { types: ['rsa'] },
  PS256: { types: ['rsa'] },
  PS384: { types: ['rsa'] },
  PS512: { types: ['rsa'] },
  EdDSA: { types: ['ed25519', 'ed448'] },
};

export const SERVER_KEY_ALGORITHMS: readonly string[] = Object.keys(ALGORITHMS);

/** RFC 7518 §3.3 / §3.5: RSA keys of at least 2048 bits (jose refuses smaller ones when signing). */
const MIN_RSA_BITS = 2048;

/** The server's keys: the first of `oauthJwtKeys` signs; every key of both lists is published. */
export class ServerKeys {
  readonly signing: ServerKey;
  readonly published: readonly ServerKey[];
  private readonly byKid: ReadonlyMap<string, ServerKey>;
  private readonly set: JSONWebKeySet;

  /**
   * Imports and checks the keys; throws OAuthConfigurationError naming the option and the
   * entry at fault. `signingKeys` must hold at least one private key.
   */
  constructor(signingKeys: unknown, retiredKeys: unknown = []) {
    if (!Array.isArray(signingKeys)) throw new OAuthConfigurationError("oauth(): option 'oauthJwtKeys' must be an array of { key, alg, kid? }.");
    if (!Array.isArray(retiredKeys)) throw new OAuthConfigurationError("oauth(): option 'oauthJwtPublicKeysToPublish' must be an array of { key, alg, kid? }.");
    if (signingKeys.length === 0) {
      throw new OAuthConfigurationError("oauth(): option 'oauthJwtKeys' needs at least one private key (e.g. [{ key: privateJwk, alg: 'ES256' }]): the first one signs.");
    }
    const keys = [
      ...signingKeys.map((entry, i) => importKey(entry, `oauthJwtKeys[${i}]`, true)),
      ...retiredKeys.map((entry, i) => importKey(entry, `oauthJwtPublicKeysToPublish[${i}]`, false)),
    ];
    const byKid = new Map<string, ServerKey>();
    keys.forEach((k, i) => {
      if (byKid.has(k.kid)) {
        const where = i < signingKeys.length ? `oauthJwtKeys[${i}]` : `oauthJwtPublicKeysToPublish[${i - signingKeys.length}]`;
        throw new OAuthConfigurationError(`oauth(): ${where}: kid '${k.kid}' is already the kid of another key; every key needs its own kid.`);
      }
      byKid.set(k.kid, k);
    });
    this.signing = keys[0]!;
    this.published = Object.freeze(keys);
    this.byKid = byKid;
    this.set = deepFreeze({ keys: keys.map((k) => k.publicJwk) });
  }

  /** The public JWK Set (RFC 7517 §5): public members only, each with `kid`, `alg` and `use: 'sig'`. */
  jwks(): JSONWebKeySet {
    return this.set;
  }

  /**
   * The published key a JWS header names, for verification: by `kid`, and only when its
   * algorithm is the header's. Without a `kid` (RFC 7515 §4.1.4 makes it optional), the one
   * published key of that algorithm, if there is exactly one.
   */
  find(kid: string | undefined, alg: string): ServerKey | undefined {
    if (kid === undefined) {
      const candidates = this.published.filter((k) => k.alg === alg);
      return candidates.length === 1 ? candidates[0] : undefined;
    }
    const key = this.byKid.get(kid);
    return key && key.alg === alg ? key : undefined;
  }

  /** A compact JWS of the claims, signed by jose with the signing key; the header carries `alg`, `kid` and `typ`. */
  sign(payload: JWTPayload, header: { typ: string }): Promise<string> {
    const { alg, kid, privateKey } = this.signing;
    return new SignJWT(payload).setProtectedHeader({ alg, kid, typ: header.typ }).sign(privateKey as KeyLike);
  }
}

/** The keys of one `oauth()` instance, imported on first use and kept. */
const instances = new WeakMap<RuntimeView, ServerKeys>();

/**
 * The server keys of the instance serving `ctx` (the `jwks` feature must be enabled). The
 * options are constants (checked at start-up), so one import per instance serves every request.
 */
export function serverKeys(ctx: OAuthContext): ServerKeys {
  let keys = instances.get(ctx.runtime);
  if (!keys) {
    if (!ctx.runtime.enabled.has('jwks')) throw new Error("serverKeys(): the 'jwks' feature is not enabled");
    const v = ctx.values as unknown as { oauthJwtKeys: unknown; oauthJwtPublicKeysToPublish: unknown };
    keys = new ServerKeys(v.oauthJwtKeys, v.oauthJwtPublicKeysToPublish);
    instances.set(ctx.runtime, keys);
  }
  return keys;
}

/** Imports one configured key and checks it against its algorithm. */
function importKey(entry: unknown, where: string, signing: boolean): ServerKey {
  const fail = (problem: string) => new OAuthConfigurationError(`oauth(): ${where}: ${problem}`);
  if (typeof entry !== 'object' || entry === null || Array.isArray(entry)) throw fail("must be an object { key, alg, kid? } (key: a JWK or a PEM string).");
  const { key, alg, kid } = entry as Record<string, unknown>;
  if (alg === undefined || alg === null || alg === '') throw fail(`the key has no algorithm; give alg, one of ${SERVER_KEY_ALGORITHMS.join(', ')} (ES256 recommended).`);
  if (typeof alg !== 'string') throw fail('alg must be a string.');
  if (/^HS/i.test(alg)) throw fail(`${alg} is a symmetric (HMAC) algorithm; the server signs with asymmetric keys only, so that its public keys can be published.`);
  const spec = ALGORITHMS[alg];
  if (!spec) throw fail(`unsupported algorithm '${alg}'; use one of ${SERVER_KEY_ALGORITHMS.join(', ')} (ES256 recommended).`);
  if (kid !== undefined && (typeof kid !== 'string' || kid === '')) throw fail('kid must be a non-empty string.');

  const jwk = typeof key === 'object' && key !== null && !Array.isArray(key) ? (key as JWK) : undefined;
  if (jwk === undefined && typeof key !== 'string') throw fail('key must be a JWK object or a PEM string.');
  if (jwk) {
    if (jwk.kty === 'oct') throw fail('the key is symmetric (kty oct); the server signs with asymmetric keys only, so that its public keys can be published.');
    if (jwk.alg !== undefined && jwk.alg !== alg) throw fail(`the JWK says alg '${jwk.alg}', the entry says '${alg}'.`);
    if (jwk.use !== undefined && jwk.use !== 'sig') throw fail(`the JWK's use is '${jwk.use}'; a signing key has use 'sig' or none.`);
  }

  let privateKey: KeyObject | undefined;
  let publicKey: KeyObject;
  if (signing) {
    if (jwk ? jwk.d === undefined : !/PRIVATE KEY-----/.test(key as string)) {
      throw fail('this is a public key; oauthJwtKeys needs the private key (a retired key that only verifies goes in oauthJwtPublicKeysToPublish).');
    }
    privateKey = importOrFail(fail, () => (jwk ? createPrivateKey({ key: jwk as never, format: 'jwk' }) : createPrivateKey(key as string)));
    publicKey = createPublicKey(privateKey);
  } else {
    // A private key moved here from oauthJwtKeys as it is: only its public half is kept.
    publicKey = importOrFail(fail, () => (jwk ? createPublicKey({ key: jwk as never, format: 'jwk' }) : createPublicKey(key as string)));
  }
  checkKeyType(publicKey, alg, spec, fail);

  const members = publicKey.export({ format: 'jwk' }) as JWK;
  const id = (kid as string | undefined) ?? (typeof jwk?.kid === 'string' && jwk.kid !== '' ? jwk.kid : thumbprint(members));
  const publicJwk = Object.freeze({ ...members, kid: id, alg, use: 'sig' });
  return Object.freeze({ kid: id, alg, publicJwk, publicKey, ...(privateKey && { privateKey }) });
}

function importOrFail(fail: (problem: string) => Error, load: () => KeyObject): KeyObject {
  try {
    return load();
  } catch (e) {
    throw fail(`the key cannot be imported (${(e as Error).message}).`);
  }
}

/** The key's type (and curve, and size) must be what the algorithm signs with. */
function checkKeyType(key: KeyObject, alg: string, spec: { types: readonly string[]; curves?: readonly string[] }, fail: (problem: string) => Error): void {
  const type = key.asymmetricKeyType ?? 'unknown';
  const curve = key.asymmetricKeyDetails?.namedCurve;
  if (!spec.types.includes(type) || (spec.curves && !spec.curves.includes(curve ?? ''))) {
    // An id-RSASSA-PSS key has no JWK form (RFC 7518 §6.3 knows RSA keys only), so it cannot be published.
    const hint = type === 'rsa-pss' && spec.types.includes('rsa') ? ' A key restricted to RSA-PSS cannot be published as a JWK; give the same key as a plain RSA key, which PS256, PS384 and PS512 sign with.' : '';
    throw fail(`${alg} needs ${describeSpec(spec)}, but the key is ${describeKey(type, curve)}.${hint}`);
  }
  const bits = key.asymmetricKeyDetails?.modulusLength;
  if (bits !== undefined && bits < MIN_RSA_BITS) throw fail(`the RSA key has ${bits} bits; ${alg} needs at least ${MIN_RSA_BITS}.`);
}

/** JOSE's names (RFC 7518 §6.2.1.1, RFC 8037) for node:crypto's key types and curves. */
const JOSE_NAMES: Readonly<Record<string, string>> = {
  prime256v1: 'P-256',
  secp384r1: 'P-384',
  secp521r1: 'P-521',
  ec: 'EC',
  rsa: 'RSA',
  'rsa-pss': 'RSA-PSS',
  ed25519: 'Ed25519',
  ed448: 'Ed448',
  x25519: 'X25519',
  x448: 'X448',
  dsa: 'DSA',
  dh: 'DH',
};

const joseName = (name: string): string => JOSE_NAMES[name] ?? name;

function describeSpec(spec: { types: readonly string[]; curves?: readonly string[] }): string {
  if (spec.curves) return `an EC key on ${spec.curves.map(joseName).join(' or ')}`;
  if (spec.types.includes('ed25519')) return 'an Ed25519 or Ed448 key';
  return 'an RSA key';
}

function describeKey(type: string, curve: string | undefined): string {
  return curve ? `${joseName(type)} on ${joseName(curve)}` : `${joseName(type)}`;
}

/** The required members of each key type, in RFC 7638 §3.2's lexicographic order. */
const THUMBPRINT_MEMBERS: Readonly<Record<string, readonly string[]>> = {
  EC: ['crv', 'kty', 'x', 'y'],
  RSA: ['e', 'kty', 'n'],
  OKP: ['crv', 'kty', 'x'],
};

/** RFC 7638 §3: base64url(SHA-256(the required members as JSON, sorted, no whitespace)). */
function thumbprint(jwk: JWK): string {
  const members = THUMBPRINT_MEMBERS[jwk.kty ?? ''];
  if (!members) throw new OAuthConfigurationError(`oauth(): no RFC 7638 thumbprint for a key of type '${String(jwk.kty)}'; give it a kid.`);
  const canonical = JSON.stringify(Object.fromEntries(members.map((m) => [m, (jwk as unknown as Record<string, unknown>)[m]])));
  return createHash('sha256').update(canonical).digest('base64url');
}

function deepFreeze<T extends JSONWebKeySet>(set: T): T {
  Object.freeze(set.keys);
  return Object.freeze(set);
}
