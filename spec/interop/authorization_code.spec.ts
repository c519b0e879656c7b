import { join } from 'node:path';
import { buildApp, closeAll, MOUNT } from '../support/build_app';
import { interopHost, listen, runClient } from '../support/interop';

afterAll(closeAll);

const CLIENT = join(__dirname, 'authorization_code.client.mjs');

interface ClientOutput {
  steps: string[];
  callbackIss: string;
  forgedIssAccepted: boolean;
  authorizationError?: { error: string; error_description: string };
  token?: { token_type: string; scope: string; expires_in: number; has_access_token: boolean };
  resource?: { status: number; body: Record<string, unknown> };
  replay?: string;
  resourceAfterReplay?: { status: number; challenge?: unknown };
}

describe('interop › authorization code with PKCE (oauth4webapi)', () => {
  it('discovers the server, logs in, consents, validates state and iss, redeems the code with S256 and calls the API', async () => {
    const t = await buildApp({ enable: ['pkce'] }, { setup: interopHost });
    const { clientId, clientSecret } = await t.createClient({ redirectUri: ['http://127.0.0.1/cb'], scopes: ['books.read', 'books.write'] });
    const server = await listen(t.app);
    try {
      const issuer = `${server.origin}${MOUNT}`;
      const out = await runClient<ClientOutput>(CLIENT, {
        issuer,
        clientId,
        clientSecret,
        redirectUri: 'http://127.0.0.1:53682/cb',
        scope: 'books.read',
        resource: `${server.origin}/api/me`,
      });
      expect(out).toEqual({
        steps: [`GET ${MOUNT}/authorize 302`, 'GET /login 302', `GET ${MOUNT}/authorize 200`, `POST ${MOUNT}/authorize 302`],
        callbackIss: issuer,
        forgedIssAccepted: false,
        token: { token_type: 'bearer', scope: 'books.read', expires_in: 3600, has_access_token: true },
        resource: {
          status: 200,
          body: { accountId: 'alice', clientId, applicationId: expect.any(Number), scopes: ['books.read'], grantId: expect.any(Number), expiresAt: expect.any(String), token: expect.any(String) },
        },
        replay: 'invalid_grant',
        resourceAfterReplay: { status: 401, challenge: [{ scheme: 'bearer', parameters: { realm: 'oauth', error: 'invalid_token', error_description: 'Invalid access token' } }] },
      });
      t.logger.assertNoSecrets([clientSecret]);
    } finally {
      await server.close();
    }
  });

  it('hands a denial to the client as an authorization error it can read', async () => {
    const t = await buildApp({ enable: ['pkce'] }, { setup: interopHost });
    const { clientId, clientSecret } = await t.createClient({ redirectUri: ['http://127.0.0.1/cb'], scopes: ['books.read'] });
    const server = await listen(t.app);
    try {
      const issuer = `${server.origin}${MOUNT}`;
      const out = await runClient<ClientOutput>(CLIENT, { issuer, clientId, clientSecret, redirectUri: 'http://127.0.0.1:53682/cb', scope: 'books.read', resource: `${server.origin}/api/me`, decision: 'deny' });
      expect(out).toEqual({
        steps: [`GET ${MOUNT}/authorize 302`, 'GET /login 302', `GET ${MOUNT}/authorize 200`, `POST ${MOUNT}/authorize 302`],
        callbackIss: issuer,
        forgedIssAccepted: false,
        authorizationError: { error: 'access_denied', error_description: 'The resource owner or authorization server denied the request' },
      });
    } finally {
      await server.close();
    }
  });
});
