/**
 * RFC 7009 token revocation: a client revokes one of its own access or refresh tokens. The
 * grant row carries both, so revoking either ends the grant (§2.1 allows revoking the refresh
 * token with its access token, and requires the converse). Unknown, invalid, already revoked
 * and other clients' tokens get the same empty 200 (§2.2), so the endpoint reveals nothing.
 */
import type { OAuthContext } from '../lib/context';
import { defineFeature } from '../lib/feature';
import { requireParam } from '../lib/http/params';
import { setNoCache } from '../lib/http/no_cache';
import { supportedAuthMethods } from '../lib/client_auth';
import { findTokenGrant } from '../lib/tokens';
import oauthBase from './oauth_base';

export default defineFeature({
  id: 'token_revocation',
  doc: 'RFC 7009 token revocation.',
  depends: [oauthBase],
  hooks: ['beforeRevoke', 'afterRevoke'],
  routes: [{ name: 'revoke', method: 'post', handler: revokeRoute }],
  metadata: {
    revocation_endpoint: (ctx) => ctx.routeUrl('revoke'),
    // §2.1: the client authenticates as at the token endpoint; public clients send their client_id.
    revocation_endpoint_auth_methods_supported: supportedAuthMethods,
  },
});

/**
 * POST /revoke: authenticate the client (§2.1) → read `token` → find its grant → if it is the
 * client's and still live, transaction(beforeRevoke, revoke, afterRevoke) → empty 200 (§2.2).
 */
async function revokeRoute(ctx: OAuthContext): Promise<void> {
  setNoCache(ctx.res);
  const client = await ctx.methods.authenticateClient();
  const token = requireParam(ctx.params, 'token');
  const grant = (await findTokenGrant(ctx, token, ctx.params.token_type_hint))?.grant;
  // §2.1: the server verifies the token was issued to this client; another client's token stays
  // live, and is answered like an unknown one so its existence is not disclosed.
  if (grant && grant.oauthApplicationId === client.id && !grant.revokedAt) {
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
