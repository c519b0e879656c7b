// A third-party client (oauth4webapi) that registers itself (RFC 7591) from the discovered
// registration_endpoint, reads its registration back (RFC 7592), then runs the authorization
// code flow with PKCE as the registered client, through login and consent, to the protected API.
import * as oauth from 'oauth4webapi';

const input = JSON.parse(process.argv[2]);
const insecure = { [oauth.allowInsecureRequests]: true };
const issuer = new URL(input.issuer);
const as = await oauth.processDiscoveryResponse(issuer, await oauth.discoveryRequest(issuer, { algorithm: 'oauth2', ...insecure }));
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

// The user agent: a cookie jar and manual redirects, stopping at the client's redirect URI.
const jar = new Map();
async function browse(url, init = {}) {
  const cookie = [...jar].map(([k, v]) => `${k}=${v}`).join('; ');
  const res = await fetch(url, { ...init, redirect: 'manual', headers: { ...(init.headers ?? {}), ...(cookie ? { cookie } : {}) } });
  for (const c of res.headers.getSetCookie()) {
    const [pair] = c.split(';');
    const i = pair.indexOf('=');
    jar.set(pair.slice(0, i), pair.slice(i + 1));
  }
  return res;
}
async function follow(res, from) {
  while (res.status === 302) {
    const next = new URL(res.headers.get('location'), from);
    if (next.href.startsWith(redirectUri)) return { callback: next };
    res = await browse(next);
    from = next;
  }
  return { page: res, url: from };
}
let hop = await follow(await browse(authorizationUrl), authorizationUrl);
const html = await hop.page.text();
out.consentShowsName = html.includes(input.expectName);
const action = new URL(/<form method="post" action="([^"]+)">/.exec(html)[1].replace(/&amp;/g, '&'), hop.url);
const decode = (s) => s.replace(/&#34;/g, '"').replace(/&#39;/g, "'").replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&amp;/g, '&');
const form = new URLSearchParams();
for (const m of html.matchAll(/<input type="hidden" name="([^"]*)" value="([^"]*)">/g)) form.set(decode(m[1]), decode(m[2]));
form.set('decision', 'approve');
hop = await follow(await browse(action, { method: 'POST', body: form, headers: { 'content-type': 'application/x-www-form-urlencoded' } }), action);

const params = oauth.validateAuthResponse(as, client, hop.callback, state);
const tokens = await oauth.processAuthorizationCodeResponse(as, client, await oauth.authorizationCodeGrantRequest(as, client, clientAuth, params, redirectUri, codeVerifier, insecure));
out.token = { token_type: tokens.token_type, scope: tokens.scope, has_refresh_token: typeof tokens.refresh_token === 'string' };
const me = await oauth.protectedResourceRequest(tokens.access_token, 'GET', new URL(input.resource), undefined, undefined, insecure);
out.resource = { status: me.status, clientId: (await me.json()).clientId === client.client_id };
process.stdout.write(JSON.stringify(out));
