/**
 * RFC 7009 token revocation: a client revokes one of its own access or refresh tokens. The
 * grant row carries both, so revoking either ends the grant (§2.1 allows revoking the refresh
 * token with its access token, and requires the converse). Unknown, invalid and already revoked
 * tokens get the same empty 200 (§2.2); another client's token is refused with
 * `unauthorized_client` and stays valid (§2.1, design.md §4.9).
 */
import type { OAuthContext } from '../lib/context';
import { defineFeature, value, type ValuesOf } from '../lib/feature';
import { OAuthError } from '../lib/errors';
import { requireParam } from '../lib/http/params';
import { setNoCache } from '../lib/http/no_cache';
import { supportedAuthMethods } from '../lib/client_auth';
import { findTokenGrant } from '../lib/tokens';
import oauthBase from './oauth_base';

const values = {
  // (d) messages
  oauthRevokeUnauthorizedClientMessage: value('You are not authorized to revoke this token', "error_description of unauthorized_client when a client asks to revoke a token issued to another client (RFC 7009 §2.1)."),
};

declare module '../lib/context' {
  interface OAuthValues extends ValuesOf<typeof values> {}
}

export default defineFeature({
  id: 'token_revocation',
  doc: 'RFC 7009 token revocation.',
  depends: [oauthBase],
  values,
  hooks: ['beforeRevoke', 'afterRevoke'],
  routes: [{ name: 'revoke', method: 'post', cors: 'endpoint', handler: revokeRoute }],
  metadata: {
    revocation_endpoint: (ctx) => ctx.routeUrl('revoke'),
    // §2.1: the client authenticates as at the token endpoint; public clients send their client_id.
    revocation_endpoint_auth_methods_supported: supportedAuthMethods,
  },
});

/**
 * POST /revoke: authenticate the client (§2.1) → read `token` → find its grant → another
 * client's: 400 unauthorized_client; the client's own and still live:
 * transaction(beforeRevoke, revoke, afterRevoke) → empty 200 (§2.2).
 */
async function revokeRoute(ctx: OAuthContext): Promise<void> {
  setNoCache(ctx.res);
  const client = await ctx.methods.authenticateClient();
  const token = requireParam(ctx.params, 'token');
  const grant = (await findTokenGrant(ctx, token, ctx.params.token_type_hint))?.grant;
  // §2.1: "verifies whether the token was issued to the client making the revocation request. If
  // this validation fails, the request is refused and the client is informed of the error". §2.2.1
  // points to RFC 6749 §5.2, whose `unauthorized_client` ("the authenticated client is not
  // authorized") fits best; `invalid_grant` speaks of grants presented for a token, not of a
  // token to revoke. Doorkeeper and fosite (Hydra) answer `unauthorized_client` here too;
  // rodauth-oauth answers `invalid_request`, as for any token it cannot find for the client.
  // The check comes before the token's own state, so a refused caller learns nothing of whether
  // the other client's token is still live, and that token is left as it is.
  if (grant && grant.oauthApplicationId !== client.id) {
    throw new OAuthError('unauthorized_client', ctx.values.oauthRevokeUnauthorizedClientMessage, { reason: 'token_client_mismatch' });
  }
  if (grant && !grant.revokedAt) {
    ctx.grant = grant;
    await ctx.transaction(async () => {
      await ctx.hook('beforeRevoke');
      // One conditional UPDATE (`revoked_at IS NULL`): concurrent revocations are harmless.
      await ctx.store.grants.revoke(grant.id, ctx.now());
      await ctx.hook('afterRevoke');
    });
  }
  ctx.res.status(200).end();
}
