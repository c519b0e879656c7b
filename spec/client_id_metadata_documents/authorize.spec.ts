import { buildApp, type TestApp } from '../support/build_app';
import { errorPage, locationParams, pageHeaders, PAGE_HEADERS, pkcePair, query, testLogin, ISSUER } from '../authorization_code_grant/flow';
import { LOOPBACK_FETCH, REDIRECT_URI, useDocumentServer } from './support';

const docs = useDocumentServer();

function setup(options: Record<string, unknown> = {}): Promise<TestApp> {
  return buildApp({ enable: ['client_id_metadata_documents'], issuer: ISSUER, oauthApplicationScopes: ['books.read', 'books.write'], ...LOOPBACK_FETCH, ...options }, { setup: testLogin });
}

function authorize(t: TestApp, clientId: string, params: Record<string, string | undefined> = {}) {
  const { challenge } = pkcePair();
  return t.agent
    .get(`${t.path('/authorize')}?${query({ client_id: clientId, redirect_uri: REDIRECT_URI, response_type: 'code', scope: 'books.read', state: 'xyz', code_challenge: challenge, code_challenge_method: 'S256', ...params })}`)
    .set('X-Test-User', 'alice');
}

describe('client_id_metadata_documents › /authorize', () => {
  it('resolves an https client_id from its document and shows the consent page with the document host', async () => {
    const t = await setup();
    const clientId = docs.client('/consent/client.json', { client_name: 'Docs <App>', client_uri: 'https://docs-app.example/' });
    const res = await authorize(t, clientId);
    expect(res.status).toBe(200);
    expect(pageHeaders(res.headers)).toEqual(PAGE_HEADERS);
    expect(res.text).toContain('The application Docs &lt;App&gt; would like to access your data');
    expect(res.text).toMatch(new RegExp(`<p class="[^"]*client-id-host[^"]*">[^<]*<strong>${docs.origin.replace('https://', '')}</strong></p>`));
    const info = await t.auth.applications.get(clientId);
    expect(info).toMatchObject({
      clientId,
      name: 'Docs <App>',
      homepageUrl: 'https://docs-app.example/',
      redirectUris: [REDIRECT_URI],
      scopes: ['books.read', 'books.write'],
      tokenEndpointAuthMethods: ['none'],
      grantTypes: ['authorization_code'],
      responseTypes: ['code'],
      metadataDocumentHash: expect.stringMatching(/^[0-9a-f]{64}$/),
    });
  });

  it('names a client without client_name by its host, and narrows the document scope to the allowed scopes', async () => {
    const t = await setup();
    const clientId = docs.client('/nameless/client.json', { client_name: undefined, scope: 'books.read admin' });
    const res = await authorize(t, clientId);
    expect(res.status).toBe(200);
    const host = docs.origin.replace('https://', '');
    expect(res.text).toContain(`The application ${host} would like to access your data`);
    expect(await t.auth.applications.get(clientId)).toMatchObject({ name: host, scopes: ['books.read'] });
  });

  it('does not show the host for an ordinary client, which takes no fetch', async () => {
    const t = await setup();
    const { clientId } = await t.createClient({ redirectUri: [REDIRECT_URI], tokenEndpointAuthMethod: 'none' });
    const res = await authorize(t, clientId);
    expect(res.status).toBe(200);
    expect(res.text).not.toContain('client-id-host');
    expect((await t.auth.applications.get(clientId)).metadataDocumentHash).toBeNull();
  });

  it('keeps a registration the host made under a URL client id (no fetch)', async () => {
    const t = await setup();
    const path = '/preregistered/client.json';
    const clientId = docs.url(path);
    const app = await t.auth.createApplication({ name: 'Registered', redirectUri: [REDIRECT_URI], scopes: ['books.read'], tokenEndpointAuthMethod: 'none', grantTypes: ['authorization_code'] });
    await t.db('oauth_applications').where({ id: app.application.id }).update({ client_id: clientId });
    const res = await authorize(t, clientId);
    expect(res.status).toBe(200);
    expect(res.text).toContain('The application Registered would like');
    expect(docs.count(path)).toBe(0);
  });

  it('requires PKCE with S256 from such a client even when the server allows requests without PKCE or with plain', async () => {
    const t = await setup({ oauthRequirePkce: false, oauthPkceAllowPlainMethod: true });
    const clientId = docs.client('/pkce/client.json');
    const missing = await authorize(t, clientId, { code_challenge: undefined, code_challenge_method: undefined });
    expect(missing.status).toBe(302);
    expect(locationParams(missing.headers.location)).toEqual({ error: 'invalid_request', error_description: 'Code challenge required', state: 'xyz', iss: ISSUER });
    const plain = await authorize(t, clientId, { code_challenge: 'a'.repeat(43), code_challenge_method: 'plain' });
    expect(plain.status).toBe(302);
    expect(locationParams(plain.headers.location)).toEqual({ error: 'invalid_request', error_description: 'Transform algorithm not supported', state: 'xyz', iss: ISSUER });
    // An ordinary public client of the same server may still go without (the server's looser policy).
    const { clientId: ordinary } = await t.createClient({ redirectUri: [REDIRECT_URI], tokenEndpointAuthMethod: 'none' });
    expect((await authorize(t, ordinary, { code_challenge: undefined, code_challenge_method: undefined })).status).toBe(200);
  });

  it('shows the error page, never redirecting, for a redirect_uri the document does not list', async () => {
    const t = await setup();
    const clientId = docs.client('/redirect/client.json');
    const res = await authorize(t, clientId, { redirect_uri: 'https://attacker.example/cb' });
    expect(res.status).toBe(400);
    expect(res.headers.location).toBeUndefined();
    expect(errorPage(res.text)).toEqual({ error: 'invalid_request', description: "Invalid or missing 'redirect_uri'" });
  });

  it('advertises client_id_metadata_document_supported and the none method in the metadata', async () => {
    const t = await setup();
    const res = await t.agent.get(t.path('/.well-known/oauth-authorization-server'));
    expect(res.status).toBe(200);
    expect(res.body.client_id_metadata_document_supported).toBe(true);
    expect(res.body.token_endpoint_auth_methods_supported).toContain('none');
    expect(res.body.code_challenge_methods_supported).toEqual(['S256']);
  });
});
