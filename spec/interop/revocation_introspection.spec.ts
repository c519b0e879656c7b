import { join } from 'node:path';
import { buildApp, closeAll, MOUNT } from '../support/build_app';
import { listen, runClient } from '../support/interop';
import { insertGrant } from '../support/token_fixtures';

afterAll(closeAll);

type Outcome = { ok?: unknown; error?: string; status?: number; error_description?: string; challenge?: unknown };

describe('interop › revocation_introspection (oauth4webapi)', () => {
  it('oauth4webapi introspects and revokes with client_secret_basic: RFC 7662 responses, RFC 7009 200s and 401 invalid_client', async () => {
    const t = await buildApp({ enable: ['token_revocation', 'token_introspection', 'client_credentials_grant'] });
    const client = await t.createClient({ name: 'Interop client' });
    const { refreshToken } = await insertGrant(t, { applicationId: client.id, accountId: '42', scopes: ['books.read', 'books.write'] });
    const server = await listen(t.app);
    try {
      const issuer = `${server.origin}${MOUNT}`;
      const out = await runClient<Record<string, Outcome> & { endpoints: Record<string, string> }>(join(__dirname, 'revocation_introspection.client.mjs'), {
        issuer,
        metadataUrl: `${issuer}/.well-known/oauth-authorization-server`,
        clientId: client.clientId,
        clientSecret: client.clientSecret,
        refreshToken,
      });
      expect(out.endpoints).toEqual({ revocation_endpoint: `${issuer}/revoke`, introspection_endpoint: `${issuer}/introspect` });

      const access = out.accessActive!.ok as Record<string, unknown>;
      const iat = access.iat as number;
      expect(Math.abs(iat - Date.now() / 1000)).toBeLessThan(30);
      expect(access).toEqual({
        active: true,
        scope: 'books.read',
        client_id: client.clientId,
        username: 'Interop client',
        token_type: 'Bearer',
        exp: iat + 3600,
        iat,
        sub: client.clientId,
        aud: issuer,
        iss: issuer,
      });
      const refresh = out.refreshActive!.ok as Record<string, unknown>;
      expect(refresh).toEqual({
        active: true,
        scope: 'books.read books.write',
        client_id: client.clientId,
        exp: expect.any(Number),
        iat: expect.any(Number),
        sub: '42',
        aud: issuer,
        iss: issuer,
      });

      const invalidClient = { status: 401, challenge: [{ scheme: 'basic', parameters: { realm: 'oauth' } }], error: 'invalid_client', error_description: 'Invalid client' };
      expect(out.wrongSecret).toEqual(invalidClient);
      expect(out.revokeWrongSecret).toEqual(invalidClient);
      expect(out.revokeUnknown).toEqual({ ok: null });
      expect(out.revokeRefresh).toEqual({ ok: null });
      expect(out.refreshAfterRevoke).toEqual({ ok: { active: false } });
      // The client-credentials token is its own grant: revoking the refresh token left it alone.
      expect((out.accessStillActive!.ok as { active: boolean }).active).toBe(true);
      expect(out.revokeAccess).toEqual({ ok: null });
      expect(out.accessAfterRevoke).toEqual({ ok: { active: false } });
    } finally {
      await server.close();
    }
  });
});
