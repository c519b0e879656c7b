import dns from 'node:dns';
import request from 'supertest';
import { buildApp, type TestApp } from '../support/build_app';
import { expectError, INVALID_CLIENT } from '../support/expect_oauth_error';
import { errorPage, pkcePair, query, testLogin, ISSUER } from '../authorization_code_grant/flow';
import { LOOPBACK_FETCH, REDIRECT_URI, useDocumentServer } from './support';

const docs = useDocumentServer();
afterEach(() => jest.restoreAllMocks());

const TIMEOUT_MS = 400;

function setup(options: Record<string, unknown> = {}): Promise<TestApp> {
  return buildApp(
    { enable: ['client_id_metadata_documents'], issuer: ISSUER, oauthApplicationScopes: ['books.read'], oauthClientIdMetadataDocumentFetchTimeout: TIMEOUT_MS, oauthClientIdMetadataDocumentMaxSize: 2048, ...LOOPBACK_FETCH, ...options },
    { setup: testLogin },
  );
}

/** GET /authorize as a logged-in user: the error page, never a redirect (the redirect URI is not verified). */
async function expectErrorPage(t: TestApp, clientId: string, reason: string) {
  const started = Date.now();
  const res = await t.agent
    .get(`${t.path('/authorize')}?${query({ client_id: clientId, redirect_uri: REDIRECT_URI, response_type: 'code', state: 'xyz', code_challenge: pkcePair().challenge, code_challenge_method: 'S256' })}`)
    .set('X-Test-User', 'alice');
  expect(res.status).toBe(400);
  expect(res.headers.location).toBeUndefined();
  expect(res.headers['cache-control']).toBe('no-store');
  expect(errorPage(res.text)).toEqual({ error: 'invalid_request', description: "Invalid or missing 'client_id'" });
  expect(t.logger.lines.some((l) => l.includes(`(${reason})`))).toBe(true);
  expect(Date.now() - started).toBeLessThan(TIMEOUT_MS + 1500);
}

/** POST /token with the URL client id (public client): 401 invalid_client. */
async function expectInvalidClient(t: TestApp, clientId: string) {
  const res = await request(t.app).post(t.path('/token')).type('form').send({ grant_type: 'authorization_code', client_id: clientId, code: 'x', redirect_uri: REDIRECT_URI, code_verifier: pkcePair().verifier });
  expectError(res, 401, INVALID_CLIENT);
}

const doc = (path: string, extra: Record<string, unknown> = {}) => ({ client_id: docs.url(path), redirect_uris: [REDIRECT_URI], ...extra });

describe('client_id_metadata_documents › bad documents', () => {
  const unavailable: [string, (path: string) => void][] = [
    ['a document that answers 404', () => undefined],
    ['a document slower than the timeout', (path) => docs.serve(path, { body: doc(path), delayMs: TIMEOUT_MS * 4 })],
    ['an oversized document', (path) => docs.serve(path, { body: doc(path, { client_name: 'x'.repeat(3000) }) })],
    ['a redirecting document', (path) => docs.serve(path, { status: 302, headers: { location: docs.url('/elsewhere.json') }, body: '' })],
    ['a document answering 500', (path) => docs.serve(path, { status: 500, body: doc(path) })],
  ];
  it.each(unavailable)('refuses %s: the error page at /authorize, invalid_client at /token, within the timeout', async (_name, serve) => {
    const t = await setup();
    const path = `/unavailable/${Math.random().toString(36).slice(2)}.json`;
    serve(path);
    await expectErrorPage(t, docs.url(path), 'client_metadata_document_unavailable');
    await expectInvalidClient(t, docs.url(path));
  });

  it('refuses an unreachable document (nothing listening)', async () => {
    const t = await setup();
    await expectErrorPage(t, 'https://localhost:1/client.json', 'client_metadata_document_unavailable');
  });

  const invalid: [string, (path: string) => unknown][] = [
    ['a document that is not JSON', () => '<html>client</html>'],
    ['a JSON array', (path) => [doc(path)]],
    ['a document naming another client_id', (path) => doc(path, { client_id: docs.url(`${path}/other`) })],
    ['a document without client_id', (path) => ({ ...doc(path), client_id: undefined })],
    ['a document with a client_secret', (path) => doc(path, { client_secret: 'shh' })],
    ['a document with client_secret_basic', (path) => doc(path, { token_endpoint_auth_method: 'client_secret_basic' })],
    ['a document with client_secret_jwt', (path) => doc(path, { token_endpoint_auth_method: 'client_secret_jwt' })],
    ['a document with private_key_jwt but no jwks_uri', (path) => doc(path, { token_endpoint_auth_method: 'private_key_jwt' })],
    ['a document without redirect_uris', (path) => ({ ...doc(path), redirect_uris: undefined })],
    ['a document with an http redirect URI outside loopback', (path) => doc(path, { redirect_uris: ['http://docs-app.example/cb'] })],
    ['a document with a redirect URI with a fragment', (path) => doc(path, { redirect_uris: ['https://docs-app.example/cb#x'] })],
    ['a document asking for the implicit grant', (path) => doc(path, { grant_types: ['implicit'] })],
  ];
  it.each(invalid)('refuses %s', async (_name, body) => {
    const t = await setup();
    const path = `/invalid/${Math.random().toString(36).slice(2)}.json`;
    docs.serve(path, { body: body(path) });
    await expectErrorPage(t, docs.url(path), 'invalid_client_metadata_document');
    await expectInvalidClient(t, docs.url(path));
    expect(Number(((await t.db('oauth_applications').count({ n: '*' })) as { n: unknown }[])[0]!.n)).toBe(0);
  });

  it.each([
    ['http://localhost/client.json', 'http'],
    ['https://docs-app.example', 'no path'],
    ['https://docs-app.example/', 'a root path'],
    ['https://docs-app.example/client.json#frag', 'a fragment'],
    ['https://user:pw@docs-app.example/client.json', 'credentials'],
    ['https://docs-app.example/a/../client.json', 'a .. segment'],
    ['https://docs-app.example/./client.json', 'a . segment'],
    ['https://docs-app.example/%2e%2e/client.json', 'an encoded .. segment'],
    ['https://DOCS-APP.example/client.json', 'an upper-case host (not in normal form)'],
    [`https://docs-app.example/${'a'.repeat(260)}`, 'more than 255 characters'],
  ])('refuses the client id %s (%s) without fetching anything', async (clientId) => {
    const t = await setup();
    const lookup = jest.spyOn(dns, 'lookup');
    if (clientId.startsWith('https://')) await expectErrorPage(t, clientId, 'invalid_client_metadata_document');
    else await expectErrorPage(t, clientId, 'unknown_client');
    expect(lookup.mock.calls.map((c) => c[0]).filter((host) => /docs-app\.example|localhost/i.test(String(host)))).toEqual([]);
  });

  it('never connects to a loopback address without the development allowance, nor for /token', async () => {
    const t = await setup({ oauthFetchAllowPrivateAddresses: false });
    const clientId = docs.client('/private/client.json');
    await expectErrorPage(t, clientId, 'client_metadata_document_unavailable');
    expect(t.logger.lines.some((l) => /resolves to (127\.0\.0\.1|::1), an address that is not allowed/.test(l))).toBe(true);
    await expectInvalidClient(t, clientId);
    expect(docs.count('/private/client.json')).toBe(0);
  });

  it('never connects to a link-local address (a name resolving to 169.254.169.254), checked after DNS resolution', async () => {
    const t = await setup({ oauthFetchAllowPrivateAddresses: false });
    const real = dns.lookup;
    const lookup = jest.spyOn(dns, 'lookup').mockImplementation(((hostname: string, options: unknown, callback: (err: null, addresses: dns.LookupAddress[]) => void) => {
      if (hostname === 'metadata.docs-app.example') return callback(null, [{ address: '169.254.169.254', family: 4 }]);
      return (real as unknown as (...a: unknown[]) => void)(hostname, options, callback);
    }) as never);
    await expectErrorPage(t, 'https://metadata.docs-app.example/client.json', 'client_metadata_document_unavailable');
    expect(lookup).toHaveBeenCalledWith('metadata.docs-app.example', expect.anything(), expect.any(Function));
    expect(t.logger.lines.some((l) => l.includes('resolves to 169.254.169.254, an address that is not allowed'))).toBe(true);
  });

  it('refuses an IP-literal link-local client id before any connection', async () => {
    const t = await setup({ oauthFetchAllowPrivateAddresses: false });
    await expectErrorPage(t, 'https://169.254.169.254/latest/meta-data', 'client_metadata_document_unavailable');
  });

  it('refuses a client id allowClientIdMetadataDocument rejects, without fetching', async () => {
    const t = await setup({ allowClientIdMetadataDocument: (_ctx: unknown, url: URL) => url.hostname === 'trusted.example' });
    const clientId = docs.client('/not-allowed/client.json');
    await expectErrorPage(t, clientId, 'invalid_client_metadata_document');
    expect(docs.count('/not-allowed/client.json')).toBe(0);
  });
});
