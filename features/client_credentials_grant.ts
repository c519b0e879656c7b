/** RFC 6749 §4.4: the client credentials grant. An access token for the client itself, never a refresh token. */
import type { TokenContext } from '../lib/context';
import { defineFeature, type TokenResponse } from '../lib/feature';
import { OAuthError } from '../lib/errors';
import { grantableScopes } from '../lib/scopes';
import { issueDirectGrant } from '../lib/tokens';
import oauthBase from './oauth_base';

export default defineFeature({
  id: 'client_credentials_grant',
  doc: 'RFC 6749 §4.4 client credentials grant.',
  depends: [oauthBase],
  grantTypes: { client_credentials: { parameters: ['scope'], singleStatement: true, handler: clientCredentialsGrant } },
});

/** §4.4.2: the requested scope must be within the application's; without one, `oauthDefaultScopes` (§3.3). */
async function clientCredentialsGrant(ctx: TokenContext): Promise<TokenResponse> {
  // §4.4: "MUST only be used by confidential clients"; a public client has nothing to prove.
  if (ctx.clientAuthMethod === 'none') {
    throw new OAuthError('unsupported_grant_type', ctx.values.oauthInvalidGrantTypeMessage, { reason: 'grant_type_not_allowed' });
  }
  const scopes = grantableScopes(ctx.params.scope, ctx.application.scopes, ctx.values.oauthInvalidScopeMessage, ctx.values.oauthDefaultScopes);
  const { body } = await issueDirectGrant(ctx, { type: 'client_credentials', accountId: null, applicationId: ctx.application.id, scopes });
  return body;
}
