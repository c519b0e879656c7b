// oauth4webapi as a client known only by its client ID metadata document: discovery (the
// server must advertise client_id_metadata_document_supported), /authorize with PKCE S256 and
// the URL as client_id, consent, the callback, and the code exchange as a public client (None).
import * as oauth from 'oauth4webapi';
import { callResource, discover, insecure, userAgent } from '../interop/client_support.mjs';

const input = JSON.parse(process.argv[2]);
const as = await discover(input.issuer);
const client = { client_id: input.clientId };

const codeVerifier = oauth.generateRandomCodeVerifier();
const state = oauth.generateRandomState();
const url = new URL(as.authorization_endpoint);
for (const [k, v] of Object.entries({ client_id: client.client_id, redirect_uri: input.redirectUri, response_type: 'code', scope: 'books.read', state, code_challenge: await oauth.calculatePKCECodeChallenge(codeVerifier), code_challenge_method: 'S256' })) url.searchParams.set(k, v);

// The user agent, logged in through the X-Test-User header the spec's host reads.
const ua = userAgent({ 'x-test-user': 'alice' });
const hop = await ua.follow(await ua.browse(url), url, input.redirectUri);
const host = /class="[^"]*client-id-host[^"]*">[^<]*<strong>([^<]*)<\/strong>/.exec(await hop.page.clone().text())?.[1];
const { callback } = await ua.submit(hop, 'approve', input.redirectUri);

const params = oauth.validateAuthResponse(as, client, callback, state);
const tokens = await oauth.processAuthorizationCodeResponse(as, client, await oauth.authorizationCodeGrantRequest(as, client, oauth.None(), params, input.redirectUri, codeVerifier, insecure));
process.stdout.write(JSON.stringify({
  supported: as.client_id_metadata_document_supported,
  consentStatus: hop.page.status,
  host,
  token: { token_type: tokens.token_type, scope: tokens.scope, has_access_token: typeof tokens.access_token === 'string' },
  resource: await callResource(input.resource, tokens.access_token),
}));
