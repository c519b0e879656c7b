/**
 * The server's signing keys (`oauthJwtKeys`) and their public JWK Set (RFC 7517 §5) at
 * `GET /jwks`, advertised as `jwks_uri` (RFC 8414 §2). The first key signs; every key listed,
 * and every retired key in `oauthJwtPublicKeysToPublish`, is published, so tokens signed before
 * a rotation keep verifying during the overlap. Keys live in `lib/keys.ts` (style.md §9).
 */
import { createHash } from 'node:crypto';
import type { OAuthContext } from '../lib/context';
import { defineFeature, value, type ValuesOf } from '../lib/feature';
import { serverKeys, ServerKeys, type ServerKeyInput } from '../lib/keys';
import { OAuthConfigurationError } from '../lib/options';
import oauthBase from './oauth_base';

const values = {
  // (b) lifetimes and limits
  oauthJwtKeysCacheExpiresIn: value(
    600,
    'max-age, in seconds, of the GET /jwks response. A retired key must stay in oauthJwtPublicKeysToPublish for at least the longest token lifetime plus this.',
  ),
  // (c) policy
  oauthJwtKeys: value<ServerKeyInput[]>(
    [],
    "The server's private signing keys, `{ key: JWK | PEM string, alg, kid? }` (alg: ES256 recommended; ES384, ES512, RS256–512, PS256–512, EdDSA); the first signs, all are published. kid: the JWK's, else its RFC 7638 thumbprint. A constant.",
  ),
  oauthJwtPublicKeysToPublish: value<ServerKeyInput[]>(
    [],
    'Retired keys still published for verification during a rotation overlap, `{ key: public (or private) JWK | PEM, alg, kid? }`; only their public part is used. A constant.',
  ),
};

declare module '../lib/context' {
  interface OAuthValues extends ValuesOf<typeof values> {}
}

export default defineFeature({
  id: 'jwks',
  doc: "The server's signing keys, rotation with overlap, and their public JWK Set.",
  depends: [oauthBase],
  values,
  // RFC 7517 defines no parameter: the query string is not read (nor refused), so cache-busters work.
  routes: [{ name: 'jwks', method: 'get', query: false, cors: 'document', handler: jwksRoute }],
  metadata: { jwks_uri: (ctx) => ctx.routeUrl('jwks') },
  validate,
});

/** The response of one key set, serialized once: the body and its strong ETag. */
interface JwksDocument {
  body: string;
  etag: string;
}

const documents = new WeakMap<ServerKeys, JwksDocument>();

/**
 * GET /jwks: the public keys, cacheable by anyone (they are public, and the same whatever the
 * request's Host), with a strong ETag so that a revalidation costs a 304 (RFC 9110 §13.1.2).
 */
async function jwksRoute(ctx: OAuthContext): Promise<void> {
  const keys = serverKeys(ctx);
  let doc = documents.get(keys);
  if (!doc) {
    const body = JSON.stringify(keys.jwks());
    doc = { body, etag: `"${createHash('sha256').update(body).digest('base64url')}"` };
    documents.set(keys, doc);
  }
  const res = ctx.res;
  res.setHeader('Cache-Control', `public, max-age=${ctx.values.oauthJwtKeysCacheExpiresIn}`);
  res.setHeader('ETag', doc.etag);
  // Express's req.fresh compares If-None-Match with the ETag just set (weak comparison, §13.1.2).
  if (ctx.req.fresh) {
    res.status(304).end();
    return;
  }
  // RFC 7517 §8.5: the JWK Set media type.
  res.status(200).type('application/jwk-set+json; charset=utf-8').send(doc.body);
}

/** Start-up: the keys import and match their algorithms (a bad key fails here, not at the first signature). */
function validate(vals: Record<string, unknown>): void {
  for (const name of ['oauthJwtKeys', 'oauthJwtPublicKeysToPublish']) {
    // A function-valued option never reaches the constant values: keys are imported once per instance.
    if (!(name in vals)) throw new OAuthConfigurationError(`oauth(): option '${name}' must be a constant: the keys are imported once, at start-up.`);
  }
  const maxAge = vals.oauthJwtKeysCacheExpiresIn;
  if (typeof maxAge === 'number' && !(Number.isSafeInteger(maxAge) && maxAge >= 0)) {
    throw new OAuthConfigurationError("oauth(): option 'oauthJwtKeysCacheExpiresIn' must be a whole number of seconds, 0 or more.");
  }
  new ServerKeys(vals.oauthJwtKeys, vals.oauthJwtPublicKeysToPublish);
}
