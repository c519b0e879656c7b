import { join } from 'node:path';
import { buildApp, MOUNT } from '../support/build_app';
import { listen, runClient } from '../support/interop';
import { testLogin } from '../authorization_code_grant/flow';
import { LOOPBACK_FETCH, useDocumentServer } from './support';

const docs = useDocumentServer();

describe('client_id_metadata_documents › interop (oauth4webapi)', () => {
  it('completes the code flow with PKCE as a public client whose client_id is its metadata document URL', async () => {
    const t = await buildApp({ enable: ['client_id_metadata_documents'], oauthApplicationScopes: ['books.read'], ...LOOPBACK_FETCH }, {
      setup: (app, auth) => {
        testLogin(app);
        if (MOUNT) app.use(auth.wellKnown({ mountPath: MOUNT }));
      },
    });
    const redirectUri = 'http://127.0.0.1:53682/cb';
    const clientId = docs.client('/interop/client.json', { client_name: 'Interop', redirect_uris: [redirectUri] });
    const server = await listen(t.app);
    try {
      const out = await runClient(join(__dirname, 'interop.client.mjs'), { issuer: `${server.origin}${MOUNT}`, clientId, redirectUri, resource: `${server.origin}/api/me` });
      expect(out).toEqual({
        supported: true,
        consentStatus: 200,
        host: docs.origin.replace('https://', ''),
        token: { token_type: 'bearer', scope: 'books.read', has_access_token: true },
        resource: { status: 200, body: expect.objectContaining({ accountId: 'alice', clientId, scopes: ['books.read'] }) },
      });
      expect(docs.count('/interop/client.json')).toBe(1);
    } finally {
      await server.close();
    }
  });
});
