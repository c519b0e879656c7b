import { afterAll, describe, expect, it } from '@jest/globals';
import { join } from 'node:path';
import { exportJWK, generateKeyPair } from 'jose';
import express, { type Express } from 'express';
import { buildApp, closeAll, MOUNT, type TestApp } from '../support/build_app';
import { listen, runClient } from '../support/interop';

afterAll(closeAll);

const SCRIPT = join(__dirname, 'private_key_jwt.client.mjs');
const GRANT_TYPE = 'urn:ietf:params:oauth:grant-type:jwt-bearer';

async function serverMetadata(t: TestApp, origin: string): Promise<Record<string, unknown>> {
  const res = await fetch(`${origin}${t.path('/.well-known/oauth-authorization-server')}`);
  return (await res.json()) as Record<string, unknown>;
}

async function esKey(kid: string) {
  const { privateKey, publicKey } = await generateKeyPair('ES256', { extractable: true });
  return { privateJwk: { ...(await exportJWK(privateKey)), kid, alg: 'ES256' }, publicJwk: { ...(await exportJWK(publicKey)), kid, alg: 'ES256', use: 'sig' } };
}

describe('interop › private_key_jwt (oauth4webapi)', () => {
  it('authenticates with private_key_jwt and client_secret_jwt, and performs the JWT bearer grant (RFC 7523 §2.1, §2.2)', async () => {
    // jwt_bearer checks assertion audiences against the configured issuer only, so the server
    // listens first and the app behind it is built with its origin as the issuer.
    let inner: Express | undefined;
    const front = express();
    front.use((req, res, next) => inner!(req, res, next));
    const server = await listen(front);
    const t = await buildApp({ enable: ['jwt_bearer', 'client_credentials_grant'], issuer: `${server.origin}${MOUNT}`, oauthClientSecretEncryptionKey: 'c3'.repeat(32) });
    inner = t.app;
    const key = await esKey('client-key-1');
    const stranger = await esKey('client-key-1');
    const keyClient = await t.createClient({ tokenEndpointAuthMethod: 'private_key_jwt', grantTypes: ['client_credentials', GRANT_TYPE], jwks: { keys: [key.publicJwk] } });
    const secretClient = await t.createClient({ tokenEndpointAuthMethod: 'client_secret_jwt', grantTypes: ['client_credentials'] });
    try {
      const as = await serverMetadata(t, server.origin);
      expect(as).toEqual(
        expect.objectContaining({
          issuer: `${server.origin}${t.path('')}`,
          token_endpoint: `${server.origin}${t.path('/token')}`,
          token_endpoint_auth_methods_supported: expect.arrayContaining(['private_key_jwt', 'client_secret_jwt']),
          grant_types_supported: expect.arrayContaining([GRANT_TYPE, 'client_credentials']),
        }),
      );
      const result = await runClient(SCRIPT, {
        as,
        resource: `${server.origin}/api/books`,
        keyClient: { clientId: keyClient.clientId, privateJwk: key.privateJwk },
        strangerJwk: stranger.privateJwk,
        secretClient: { clientId: secretClient.clientId, clientSecret: secretClient.clientSecret },
        grantClient: { clientId: keyClient.clientId },
        subject: 'alice',
      });
      expect(result).toEqual({
        privateKeyJwt: { token: { token_type: 'bearer', expires_in: 3600, scope: 'books.read', refresh_token: null }, resource: { status: 200, body: { books: [], scopes: ['books.read'] } } },
        stranger: { challenge: ['basic'], status: 401 },
        clientSecretJwt: { token: { token_type: 'bearer', expires_in: 3600, scope: 'books.read', refresh_token: null }, resource: { status: 200, body: { books: [], scopes: ['books.read'] } } },
        grant: {
          token: { token_type: 'bearer', expires_in: 3600, scope: 'books.read books.write', refresh_token: null },
          resource: { status: 200, body: { books: [], scopes: ['books.read', 'books.write'] } },
        },
        replay: { error: 'invalid_grant', error_description: 'Invalid grant', status: 400 },
      });
      const granted = await t.db('oauth_grants').where('type', GRANT_TYPE).first();
      expect(granted.account_id).toBe('alice');
      t.logger.assertNoSecrets([secretClient.clientSecret]);
    } finally {
      await server.close();
    }
  });
});
