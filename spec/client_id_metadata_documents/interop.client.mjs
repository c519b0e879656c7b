// oauth4webapi as a client known only by its client ID metadata document: discovery (the
// server must advertise client_id_metadata_document_supported), /authorize with PKCE S256 and
// the URL as client_id, consent, the callback, and the code exchange as a public client (None).
import * as oauth from 'oauth4webapi';

const input = JSON.parse(process.argv[2]);
const insecure = { [oauth.allowInsecureRequests]: true };
const issuer = new URL(input.issuer);
const as = await oauth.processDiscoveryResponse(issuer, await oauth.discoveryRequest(issuer, { algorithm: 'oauth2', ...insecure }));
const client = { client_id: input.clientId };

const codeVerifier = oauth.generateRandomCodeVerifier();
const state = oauth.generateRandomState();
const url = new URL(as.authorization_endpoint);
for (const [k, v] of Object.entries({ client_id: client.client_id, redirect_uri: input.redirectUri, response_type: 'code', scope: 'books.read', state, code_challenge: await oauth.calculatePKCECodeChallenge(codeVerifier), code_challenge_method: 'S256' })) url.searchParams.set(k, v);

// The user agent, logged in through the X-Test-User header the spec's host reads.
const headers = { 'x-test-user': 'alice' };
const jar = new Map();
async function browse(target, init = {}) {
  const cookie = [...jar].map(([k, v]) => `${k}=${v}`).join('; ');
  const res = await fetch(target, { ...init, redirect: 'manual', headers: { ...headers, ...(init.headers ?? {}), ...(cookie ? { cookie } : {}) } });
  for (const c of res.headers.getSetCookie()) {
    const [pair] = c.split(';');
    jar.set(pair.slice(0, pair.indexOf('=')), pair.slice(pair.indexOf('=') + 1));
  }
  return res;
}
const page = await browse(url);
const html = await page.text();
const decode = (s) => s.replace(/&#34;/g, '"').replace(/&#39;/g, "'").replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&amp;/g, '&');
const host = /class="[^"]*client-id-host[^"]*">[^<]*<strong>([^<]*)<\/strong>/.exec(html)?.[1];
const form = new URLSearchParams();
for (const m of html.matchAll(/<input type="hidden" name="([^"]*)" value="([^"]*)">/g)) form.set(decode(m[1]), decode(m[2]));
form.set('decision', 'approve');
const action = new URL(decode(/<form method="post" action="([^"]+)"/.exec(html)[1]), url);
const approved = await browse(action, { method: 'POST', body: form, headers: { 'content-type': 'application/x-www-form-urlencoded' } });
const callback = new URL(approved.headers.get('location'));

const params = oauth.validateAuthResponse(as, client, callback, state);
const tokens = await oauth.processAuthorizationCodeResponse(as, client, await oauth.authorizationCodeGrantRequest(as, client, oauth.None(), params, input.redirectUri, codeVerifier, insecure));
const me = await oauth.protectedResourceRequest(tokens.access_token, 'GET', new URL(input.resource), undefined, undefined, insecure);
process.stdout.write(JSON.stringify({
  supported: as.client_id_metadata_document_supported,
  consentStatus: page.status,
  host,
  token: { token_type: tokens.token_type, scope: tokens.scope, has_access_token: typeof tokens.access_token === 'string' },
  resource: { status: me.status, body: await me.json() },
}));
