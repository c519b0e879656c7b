// oauth4webapi as an OpenID Connect relying party: validateAuthResponse,
// processAuthorizationCodeResponse with its ID token checks (expectedNonce, requireIdToken,
// maxAge), processUserInfoResponse; and a mismatched nonce refused.
import * as oauth from 'oauth4webapi';
import { discover, insecure, userAgent } from '../interop/client_support.mjs';

const input = JSON.parse(process.argv[2]);
const as = await discover(input.issuer, 'oidc');
const client = { client_id: input.clientId };
const clientAuth = oauth.ClientSecretBasic(input.clientSecret);
const ua = userAgent();
const out = {};

async function authorize(nonce) {
  const codeVerifier = oauth.generateRandomCodeVerifier();
  const state = oauth.generateRandomState();
  const url = new URL(as.authorization_endpoint);
  for (const [k, v] of Object.entries({ client_id: client.client_id, redirect_uri: input.redirectUri, response_type: 'code', scope: 'openid email', state, nonce, code_challenge: await oauth.calculatePKCECodeChallenge(codeVerifier), code_challenge_method: 'S256' })) url.searchParams.set(k, v);
  let hop = await ua.follow(await ua.browse(url), url, input.redirectUri);
  if (hop.page) hop = await ua.submit(hop, 'approve', input.redirectUri);
  const params = oauth.validateAuthResponse(as, client, hop.callback, state);
  return { params, codeVerifier };
}

const nonce = oauth.generateRandomNonce();
const { params, codeVerifier } = await authorize(nonce);
const response = await oauth.authorizationCodeGrantRequest(as, client, clientAuth, params, input.redirectUri, codeVerifier, insecure);
const result = await oauth.processAuthorizationCodeResponse(as, client, response, { expectedNonce: nonce, requireIdToken: true, maxAge: 600 });
const claims = oauth.getValidatedIdTokenClaims(result);
out.claims = { iss: claims.iss, sub: claims.sub, aud: claims.aud, nonce: claims.nonce === nonce, auth_time: typeof claims.auth_time };
const userinfo = await oauth.processUserInfoResponse(as, client, claims.sub, await oauth.userInfoRequest(as, client, result.access_token, insecure));
out.userinfo = userinfo;

// A second authorization whose nonce the client does not expect: the ID token is refused.
const second = await authorize(oauth.generateRandomNonce());
const response2 = await oauth.authorizationCodeGrantRequest(as, client, clientAuth, second.params, input.redirectUri, second.codeVerifier, insecure);
try {
  await oauth.processAuthorizationCodeResponse(as, client, response2, { expectedNonce: nonce, requireIdToken: true });
  out.mismatchedNonce = 'accepted';
} catch (e) {
  out.mismatchedNonce = e.code ?? e.message;
}
// A userinfo answer about another subject is refused.
try {
  await oauth.processUserInfoResponse(as, client, 'someone-else', await oauth.userInfoRequest(as, client, result.access_token, insecure));
  out.otherSubject = 'accepted';
} catch (e) {
  out.otherSubject = e.code ?? e.message;
}
process.stdout.write(JSON.stringify(out));
