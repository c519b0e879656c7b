import { join } from 'node:path';
import { buildApp, closeAll, MOUNT } from '../support/build_app';
import { interopHost, listen, runClient } from '../support/interop';

afterAll(closeAll);

const CLIENT = join(__dirname, 'interop.client.mjs');
const FEATURES = ['dynamic_client_registration', 'pkce', 'refresh'];

describe('dynamic_client_registration › interop (oauth4webapi dynamicClientRegistrationRequest)', () => {
  it.each([
    ['a public client (none), open registration', 'none', undefined],
    ['a confidential client (client_secret_basic), behind an initial access token', 'client_secret_basic', 'initial-access-token-0123456789'],
  ])('registers %s, reads it back (RFC 7592) and completes a code flow with it', async (_what, method, initialAccessToken) => {
    const t = await buildApp({ enable: FEATURES, oauthApplicationScopes: ['books.read', 'books.write'], oauthRegistrationInitialAccessToken: initialAccessToken ?? null }, { setup: interopHost });
    const server = await listen(t.app);
    try {
      const metadata = { redirect_uris: ['http://127.0.0.1:53682/cb'], client_name: 'Interop <Reader>', token_endpoint_auth_method: method, grant_types: ['authorization_code', 'refresh_token'], scope: 'books.read' };
      const out = await runClient<Record<string, unknown>>(CLIENT, { issuer: `${server.origin}${MOUNT}`, metadata, initialAccessToken, scope: 'books.read', resource: `${server.origin}/api/me`, expectName: 'Interop &lt;Reader&gt;' });
      expect(out).toEqual({
        registrationEndpoint: `${server.origin}${MOUNT}/register`,
        registered: {
          client_id: 'string',
          client_secret: method === 'none' ? 'undefined' : 'string',
          ...(method === 'none' ? {} : { client_secret_expires_at: 0 }),
          client_id_issued_at: expect.any(Number),
          redirect_uris: metadata.redirect_uris,
          client_name: 'Interop <Reader>',
          token_endpoint_auth_method: method,
          grant_types: ['authorization_code', 'refresh_token'],
          response_types: ['code'],
          scope: 'books.read',
          registration_access_token: 'string',
          registration_client_uri: expect.stringMatching(new RegExp(`^${server.origin}${MOUNT}/register/[A-Za-z0-9_-]+$`)),
        },
        read: { status: 200, client_id_matches: true },
        consentShowsName: true,
        token: { token_type: 'bearer', scope: 'books.read', has_refresh_token: true },
        resource: { status: 200, clientId: true },
      });
    } finally {
      await server.close();
    }
  });
});
