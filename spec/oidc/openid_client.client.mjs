// openid-client 6.9.0 with its default OpenID Connect discovery, as a relying party would use it:
// the code flow with PKCE and nonce (ID token validated), userinfo, a refresh with a new ID
// token, and RP-initiated logout through buildEndSessionUrl, followed in the browser.
import * as client from 'openid-client';
import { userAgent } from '../interop/client_support.mjs';

const input = JSON.parse(process.argv[2]);
const config = await client.discovery(new URL(input.issuer), input.clientId, input.clientSecret, undefined, { execute: [client.allowInsecureRequests] });
const ua = userAgent();
const out = {};

const codeVerifier = client.randomPKCECodeVerifier();
const nonce = client.randomNonce();
const state = client.randomState();
const url = client.buildAuthorizationUrl(config, {
  redirect_uri: input.redirectUri,
  scope: 'openid profile email',
  code_challenge: await client.calculatePKCECodeChallenge(codeVerifier),
  code_challenge_method: 'S256',
  nonce,
  state,
  max_age: '300',
});
let hop = await ua.follow(await ua.browse(url), url, input.redirectUri);
hop = await ua.submit(hop, 'approve', input.redirectUri);

const tokens = await client.authorizationCodeGrant(config, hop.callback, { pkceCodeVerifier: codeVerifier, expectedNonce: nonce, expectedState: state, idTokenExpected: true, maxAge: 300 });
const claims = tokens.claims();
out.idToken = { sub: claims.sub, aud: claims.aud, nonce: claims.nonce === nonce, auth_time: typeof claims.auth_time, at_hash: typeof claims.at_hash };
out.userinfo = await client.fetchUserInfo(config, tokens.access_token, claims.sub);

const refreshed = await client.refreshTokenGrant(config, tokens.refresh_token);
const refreshedClaims = refreshed.claims();
out.refresh = { newIdToken: refreshed.id_token !== tokens.id_token, sameSub: refreshedClaims.sub === claims.sub, sameAuthTime: refreshedClaims.auth_time === claims.auth_time, nonce: refreshedClaims.nonce ?? null };

const endSession = client.buildEndSessionUrl(config, { id_token_hint: refreshed.id_token, post_logout_redirect_uri: input.postLogoutRedirectUri, state: 'bye' });
out.endSessionPath = endSession.pathname;
hop = await ua.follow(await ua.browse(endSession), endSession, input.postLogoutRedirectUri);
hop = await ua.submit(hop, 'logout', input.postLogoutRedirectUri);
out.loggedOutTo = hop.callback.href;
// Logged out: a new authorization request goes to the login page again.
const again = await ua.browse(url);
out.afterLogout = new URL(again.headers.get('location'), url).pathname;
out.steps = ua.steps;
process.stdout.write(JSON.stringify(out));
