/**
 * The authorization server's metadata document, built from what the enabled features contribute
 * (`defineFeature({ metadata })`): one source for RFC 8414 §3 (`/.well-known/oauth-authorization-server`)
 * and OpenID Connect Discovery 1.0 §4 (`/.well-known/openid-configuration`), so the two never disagree.
 */
import type { OAuthContext } from './context';

/** Every contributed key with a value; lists contributed by several features are merged, without repeats. */
export function metadataDocument(ctx: OAuthContext): Record<string, unknown> {
  const doc: Record<string, unknown> = {};
  for (const [key, fn] of ctx.runtime.metadata) {
    const v = fn(ctx);
    if (v === undefined || v === null) continue;
    const prev = doc[key];
    doc[key] = Array.isArray(prev) && Array.isArray(v) ? [...new Set([...prev, ...v])] : v;
  }
  return doc;
}

/** Answers with the metadata document (RFC 8414 §3.2, Discovery §4.2): 200 JSON, cacheable when the issuer is configured. */
export function sendMetadata(ctx: OAuthContext): void {
  const doc = metadataDocument(ctx);
  // A derived issuer comes from Host: a shared cache must not serve one client's document to another.
  ctx.res.setHeader('Cache-Control', ctx.runtime.issuerConfigured ? (ctx.values as unknown as { oauthMetadataCacheControl: string }).oauthMetadataCacheControl : 'no-store');
  ctx.res.status(200).json(doc);
}
