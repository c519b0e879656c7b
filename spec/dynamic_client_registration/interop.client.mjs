// A third-party client (oauth4webapi) that registers itself (RFC 7591) from the discovered
// registration_endpoint, reads its registration back (RFC 7592), then runs the authorization
// code flow with PKCE as the registered client, through login and consent, to the protected API.
import * as oauth from 'oauth4webapi';
import { discover, insecure, userAgent } from '../interop/client_support.mjs';

const input = JSON.parse(process.argv[2]);
const as = await discover(input.issuer);
const out = { registrationEndpoint: as.registration_endpoint };

const registration = await oauth.processDynamicClientRegistrationResponse(
  await oauth.dynamicClientRegistrationRequest(as, input.metadata, { ...insecure, initialAccessToken: input.initialAccessToken }),
);
out.registered = { ...registration, client_id: typeof registration.client_id, client_secret: typeof registration.client_secret, registration_access_token: typeof registration.registration_access_token };

// RFC 7592 §2.1: read the registration back with the registration access token.
const read = await fetch(registration.registration_client_uri, { headers: { authorization: `Bearer ${registration.registration_access_token}` } });
out.read = { status: read.status, client_id_matches: (await read.json()).client_id === registration.client_id };

const client = { client_id: registration.client_id };
const clientAuth = registration.token_endpoint_auth_method === 'none' ? oauth.None() : oauth.ClientSecretBasic(registration.client_secret);
const redirectUri = input.metadata.redirect_uris[0];
const codeVerifier = oauth.generateRandomCodeVerifier();
const state = oauth.generateRandomState();
const authorizationUrl = new URL(as.authorization_endpoint);
authorizationUrl.searchParams.set('client_id', client.client_id);
authorizationUrl.searchParams.set('redirect_uri', redirectUri);
authorizationUrl.searchParams.set('response_type', 'code');
authorizationUrl.searchParams.set('scope', input.scope);
authorizationUrl.searchParams.set('state', state);
authorizationUrl.searchParams.set('code_challenge', await oauth.calculatePKCECodeChallenge(codeVerifier));
authorizationUrl.searchParams.set('code_challenge_method', 'S256');

// The user agent, stopping at the client's redirect URI.
const ua = userAgent();
let hop = await ua.follow(await ua.browse(authorizationUrl), authorizationUrl, redirectUri);
out.consentShowsName = (await hop.page.clone().text()).includes(input.expectName);
hop = await ua.submit(hop, 'approve', redirectUri);

const params = oauth.validateAuthResponse(as, client, hop.callback, state);
const tokens = await oauth.processAuthorizationCodeResponse(as, client, await oauth.authorizationCodeGrantRequest(as, client, clientAuth, params, redirectUri, codeVerifier, insecure));
out.token = { token_type: tokens.token_type, scope: tokens.scope, has_refresh_token: typeof tokens.refresh_token === 'string' };
const me = await oauth.protectedResourceRequest(tokens.access_token, 'GET', new URL(input.resource), undefined, undefined, insecure);
out.resource = { status: me.status, clientId: (await me.json()).clientId === client.client_id };
process.stdout.write(JSON.stringify(out));
