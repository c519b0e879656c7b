// A real third-party client (oauth4webapi) doing the authorization code flow with PKCE the way
// a web app and its user's browser would: discovery, /authorize, the login page, consent,
// the callback (state and RFC 9207 iss checked), the code exchange, then the protected route.
import * as oauth from 'oauth4webapi';
import { callResource, discover, insecure, userAgent } from './client_support.mjs';

const input = JSON.parse(process.argv[2]);
const as = await discover(input.issuer);
const client = { client_id: input.clientId };
const clientAuth = oauth.ClientSecretBasic(input.clientSecret);

const codeVerifier = oauth.generateRandomCodeVerifier();
const state = oauth.generateRandomState();
const authorizationUrl = new URL(as.authorization_endpoint);
authorizationUrl.searchParams.set('client_id', client.client_id);
authorizationUrl.searchParams.set('redirect_uri', input.redirectUri);
authorizationUrl.searchParams.set('response_type', 'code');
authorizationUrl.searchParams.set('scope', input.scope);
authorizationUrl.searchParams.set('state', state);
authorizationUrl.searchParams.set('code_challenge', await oauth.calculatePKCECodeChallenge(codeVerifier));
authorizationUrl.searchParams.set('code_challenge_method', 'S256');

// The user agent, stopping at the client's redirect URI.
const ua = userAgent();
let hop = await ua.follow(await ua.browse(authorizationUrl), authorizationUrl, input.redirectUri);
hop = await ua.submit(hop, input.decision ?? 'approve', input.redirectUri);
const callback = hop.callback;

const out = { steps: ua.steps, callbackIss: callback.searchParams.get('iss') };

// A callback whose iss names another server must be refused by the client (RFC 9207 §2.4).
const forged = new URL(callback);
forged.searchParams.set('iss', 'https://attacker.example');
try {
  oauth.validateAuthResponse(as, client, forged, state);
  out.forgedIssAccepted = true;
} catch (e) {
  out.forgedIssAccepted = false;
}

let params;
try {
  params = oauth.validateAuthResponse(as, client, callback, state);
} catch (e) {
  out.authorizationError = { error: e.error, error_description: e.error_description };
  process.stdout.write(JSON.stringify(out));
  process.exit(0);
}

const tokenResponse = await oauth.processAuthorizationCodeResponse(
  as,
  client,
  await oauth.authorizationCodeGrantRequest(as, client, clientAuth, params, input.redirectUri, codeVerifier, insecure),
);
out.token = {
  token_type: tokenResponse.token_type,
  scope: tokenResponse.scope,
  expires_in: tokenResponse.expires_in,
  has_access_token: typeof tokenResponse.access_token === 'string',
};
out.resource = await callResource(input.resource, tokenResponse.access_token);

// The same code again: refused, and the token it gave is revoked (RFC 6749 §4.1.2).
const replay = await oauth.authorizationCodeGrantRequest(as, client, clientAuth, params, input.redirectUri, codeVerifier, insecure);
try {
  await oauth.processAuthorizationCodeResponse(as, client, replay);
  out.replay = 'accepted';
} catch (e) {
  out.replay = e.error ?? e.message;
}
try {
  const after = await oauth.protectedResourceRequest(tokenResponse.access_token, 'GET', new URL(input.resource), undefined, undefined, insecure);
  out.resourceAfterReplay = { status: after.status };
} catch (e) {
  // oauth4webapi turns an RFC 6750 challenge into an error carrying the parsed challenge.
  out.resourceAfterReplay = { status: e.status, challenge: e.cause };
}
process.stdout.write(JSON.stringify(out));
