import { afterAll, describe, expect, it } from '@jest/globals';
import { join } from 'node:path';
import { buildApp, closeAll, type TestApp } from '../support/build_app';
import { createGrant } from '../support/grants';
import { listen, runClient } from '../support/interop';

afterAll(closeAll);

const SCRIPT = join(__dirname, 'refresh.client.mjs');

async function serverMetadata(t: TestApp, origin: string): Promise<Record<string, unknown>> {
  const res = await fetch(`${origin}${t.path('/.well-known/oauth-authorization-server')}`);
  return (await res.json()) as Record<string, unknown>;
}

describe('interop › refresh (oauth4webapi)', () => {
  it.each([
    ['a confidential client (client_secret_basic)', {}],
    ['a public client (none)', { tokenEndpointAuthMethod: 'none' }],
  ])('refreshes, narrows the scope, rotates, and sees reuse revoke the grant: %s', async (_name, clientInput) => {
    const t = await buildApp({ enable: ['refresh'] });
    const client = await t.createClient(clientInput);
    const { refreshToken } = await createGrant(t, { applicationId: client.id });
    const server = await listen(t.app);
    try {
      const as = await serverMetadata(t, server.origin);
      expect(as).toEqual(expect.objectContaining({ issuer: `${server.origin}${t.path('')}`, token_endpoint: `${server.origin}${t.path('/token')}`, grant_types_supported: ['refresh_token'] }));
      const result = await runClient(SCRIPT, {
        as,
        clientId: client.clientId,
        clientSecret: client.clientSecret || undefined,
        refreshToken,
        resource: `${server.origin}/api/books`,
        scope: 'books.read',
      });
      expect(result).toEqual({
        first: { token_type: 'bearer', expires_in: 3600, scope: 'books.read', rotated: true },
        resource: { status: 200, body: { books: [], scopes: ['books.read'] } },
        second: { token_type: 'bearer', scope: 'books.read books.write', rotated: true },
        reuse: { error: 'invalid_grant', error_description: 'Refresh token already used; the grant has been revoked', status: 400 },
        afterReuse: { error: 'invalid_grant', error_description: 'Invalid refresh token', status: 400 },
      });
    } finally {
      await server.close();
    }
  });
});
