/**
 * RFC 7636 Proof Key for Code Exchange, as RFC 9700 §2.1.1 wants it: S256 required from every
 * client by default, `plain` only when allowed, the verifier compared in constant time. It
 * contributes to the code grant's `authorizationRequest` and `codeExchange` points and never
 * takes part in client authentication (a verifier is not a credential).
 */
import type { OAuthContext, TokenContext } from '../lib/context';
import { defineFeature, value, type ValuesOf } from '../lib/feature';
import { OAuthError, type OAuthErrorReason } from '../lib/errors';
import { constantTimeEqual, sha256 } from '../lib/crypto';
import type { Grant } from '../lib/store';
import authorizationCodeGrant, { type AuthorizationRequestExtension, type AuthorizationRequestFields, type CodeExchangeExtension } from './authorization_code_grant';

const values = {
  // (c) policy
  oauthRequirePkce: value(true, 'Whether every authorization request must carry a code_challenge (RFC 9700 §2.1.1). Public clients need one regardless.'),
  oauthPkceAllowPlainMethod: value(false, 'Whether the `plain` code_challenge_method is accepted (RFC 7636 §4.2); S256 always is.'),
  // (d) messages
  oauthCodeChallengeRequiredMessage: value('Code challenge required', 'error_description when a required code_challenge is missing.'),
  oauthInvalidCodeChallengeMessage: value('Invalid code challenge', 'error_description of a code_challenge that is not 43-128 unreserved characters (RFC 7636 §4.2).'),
  oauthUnsupportedTransformAlgorithmMessage: value('Transform algorithm not supported', 'error_description of a code_challenge_method the server does not accept.'),
  oauthInvalidCodeVerifierMessage: value('Invalid code verifier', 'error_description of invalid_grant for a missing or wrong code_verifier.'),
};

declare module '../lib/context' {
  interface OAuthValues extends ValuesOf<typeof values> {}
}

/** RFC 7636 §4.1–§4.2: 43 to 128 characters of [A-Z] / [a-z] / [0-9] / "-" / "." / "_" / "~". */
const PKCE_STRING = /^[A-Za-z0-9\-._~]{43,128}$/;

const authorizationRequest: AuthorizationRequestExtension = {
  parameters: ['code_challenge', 'code_challenge_method'],
  validate: validateChallenge,
};

const codeExchange: CodeExchangeExtension = { verify: verifyCodeVerifier };

export default defineFeature({
  id: 'pkce',
  doc: 'RFC 7636 PKCE for the authorization code grant.',
  depends: [authorizationCodeGrant],
  values,
  extend: { authorizationRequest, codeExchange },
  metadata: {
    code_challenge_methods_supported: (ctx) => supportedMethods(ctx),
  },
});

function supportedMethods(ctx: OAuthContext): string[] {
  return ctx.values.oauthPkceAllowPlainMethod ? ['S256', 'plain'] : ['S256'];
}

/** §4.3–§4.4: the challenge and its method, stored on the grant; errors go back to the client. */
function validateChallenge(ctx: OAuthContext): AuthorizationRequestFields {
  const v = ctx.values;
  const challenge = ctx.params.code_challenge;
  const method = ctx.params.code_challenge_method;
  const invalidRequest = (message: string, reason: OAuthErrorReason) => new OAuthError('invalid_request', message, { reason });
  if (challenge === undefined) {
    if (method !== undefined) throw invalidRequest(v.oauthCodeChallengeRequiredMessage, 'missing_parameter');
    if (v.oauthRequirePkce) throw invalidRequest(v.oauthCodeChallengeRequiredMessage, 'pkce_required');
    return {};
  }
  // §4.3: the method defaults to plain, which is accepted only where allowed.
  const effective = method ?? 'plain';
  if (!supportedMethods(ctx).includes(effective)) throw invalidRequest(v.oauthUnsupportedTransformAlgorithmMessage, 'pkce_method_not_allowed');
  if (!PKCE_STRING.test(challenge)) throw invalidRequest(v.oauthInvalidCodeChallengeMessage, 'malformed_parameter');
  return { codeChallenge: challenge, codeChallengeMethod: effective };
}

/** §4.6: the verifier must transform to the stored challenge; RFC 9700 §2.1.1: none without one. */
function verifyCodeVerifier(ctx: TokenContext, grant: Grant): void {
  const verifier = ctx.params.code_verifier;
  const invalid = (reason: OAuthErrorReason) => new OAuthError('invalid_grant', ctx.values.oauthInvalidCodeVerifierMessage, { reason });
  if (grant.codeChallenge === null) {
    // A verifier for a code issued without a challenge is a downgrade attempt (RFC 9700 §2.1.1).
    if (verifier !== undefined) throw invalid('pkce_mismatch');
    if (ctx.values.oauthRequirePkce) throw invalid('pkce_required');
    return;
  }
  if (verifier === undefined) throw invalid('pkce_required');
  if (!PKCE_STRING.test(verifier)) throw invalid('pkce_mismatch');
  let computed: string;
  if (grant.codeChallengeMethod === 'S256') computed = sha256(verifier);
  else if (grant.codeChallengeMethod === 'plain' && ctx.values.oauthPkceAllowPlainMethod) computed = verifier;
  else throw invalid('pkce_method_not_allowed');
  if (!constantTimeEqual(computed, grant.codeChallenge)) throw invalid('pkce_mismatch');
}
