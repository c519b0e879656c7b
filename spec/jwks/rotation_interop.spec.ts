import { afterEach, describe, expect, it } from '@jest/globals';
import express from 'express';
import { createRemoteJWKSet, decodeProtectedHeader, jwtVerify } from 'jose';
import request from 'supertest';
import { oauth, type OAuthRouter } from '../../lib';
import { basic, MOUNT, RecordingLogger } from '../support/build_app';
import { createTestDb, type TestDb } from '../support/db';
import { listen } from '../support/interop';
import { ISSUER, newKey } from './support';

const INVALID_TOKEN = { error: 'invalid_token', error_description: 'Invalid access token' };

let testDb: TestDb | undefined;
afterEach(async () => {
  await testDb?.destroy();
  testDb = undefined;
});

/** One deployment of the server: its keys, on the database every deployment shares. */
function deploy(db: TestDb['db'], keys: Record<string, unknown>, options: Record<string, unknown>) {
  const auth = oauth({ db, issuer: ISSUER, logger: new RecordingLogger(), oauthClientSecretHashCost: 4, enable: ['jwt_access_tokens', 'client_credentials_grant'], ...options, ...keys } as never) as OAuthRouter;
  const app = express();
  if (MOUNT) app.use(MOUNT, auth);
  else app.use(auth);
  app.get('/api/me', auth.requireOauthAuthorization('books.read'), (req, res) => {
    res.json(req.oauth);
  });
  return { auth, app };
}

/**
 * A third party that knows only where the keys are: jose's jwtVerify with createRemoteJWKSet on
 * the deployment's /jwks, over HTTP (the metadata's jwks_uri names the configured issuer's host,
 * which the test cannot reach, so the listening origin stands for it).
 */
async function thirdPartyVerify(app: express.Express, token: string): Promise<unknown> {
  const server = await listen(app);
  try {
    const jwks = createRemoteJWKSet(new URL(`${server.origin}${MOUNT}/jwks`));
    const { payload } = await jwtVerify(token, jwks, { typ: 'at+jwt', issuer: ISSUER, audience: ISSUER, algorithms: ['ES256', 'EdDSA'] });
    return payload;
  } finally {
    await server.close();
  }
}

describe('jwks › key rotation with JWT access tokens (issue 13 item 5)', () => {
  it.each([false, true])(
    'tokens of the retired key verify during the overlap, here and for a third party, and get 401 invalid_token after it (oauthJwtAccessTokenCheckRevocation: %s)',
    async (checkRevocation) => {
      testDb = await createTestDb();
      const options = { oauthJwtAccessTokenCheckRevocation: checkRevocation };
      const [oldKey, newer] = await Promise.all([newKey('ES256'), newKey('EdDSA')]);
      const old = { key: oldKey.privateJwk, alg: 'ES256', kid: 'key-2025-01' };
      const current = { key: newer.privateJwk, alg: 'EdDSA', kid: 'key-2025-06' };

      // Before: the old key signs.
      const before = deploy(testDb.db, { oauthJwtKeys: [old] }, options);
      await before.auth.migrate();
      const client = await before.auth.createApplication({ name: 'Rotation', scopes: ['books.read'], grantTypes: ['client_credentials'] });
      const token = async (app: express.Express): Promise<string> => {
        const res = await request(app).post(`${MOUNT}/token`).type('form').set('Authorization', basic(client.clientId, client.clientSecret!)).send({ grant_type: 'client_credentials', scope: 'books.read' });
        expect(res.status).toBe(200);
        return res.body.access_token as string;
      };
      const oldToken = await token(before.app);
      expect(decodeProtectedHeader(oldToken)).toEqual({ alg: 'ES256', kid: 'key-2025-01', typ: 'at+jwt' });
      expect((await request(before.app).get('/api/me').set('Authorization', `Bearer ${oldToken}`)).status).toBe(200);

      // Overlap: the new key signs; the old one, moved as it was, is only published.
      const overlap = deploy(testDb.db, { oauthJwtKeys: [current], oauthJwtPublicKeysToPublish: [old] }, options);
      const res = await request(overlap.app).get('/api/me').set('Authorization', `Bearer ${oldToken}`);
      expect(res.status).toBe(200);
      expect(res.body).toMatchObject({ clientId: client.clientId, scopes: ['books.read'] });
      expect(await thirdPartyVerify(overlap.app, oldToken)).toMatchObject({ client_id: client.clientId, scope: 'books.read' });
      const newToken = await token(overlap.app);
      expect(decodeProtectedHeader(newToken)).toEqual({ alg: 'EdDSA', kid: 'key-2025-06', typ: 'at+jwt' });
      expect((await request(overlap.app).get('/api/me').set('Authorization', `Bearer ${newToken}`)).status).toBe(200);
      expect(await thirdPartyVerify(overlap.app, newToken)).toMatchObject({ client_id: client.clientId });

      // After: the old key is no longer published; its tokens are refused, the new ones still work.
      const after = deploy(testDb.db, { oauthJwtKeys: [current] }, options);
      const refused = await request(after.app).get('/api/me').set('Authorization', `Bearer ${oldToken}`);
      expect(refused.status).toBe(401);
      expect(refused.body).toEqual(INVALID_TOKEN);
      expect(refused.headers['www-authenticate']).toBe('Bearer realm="oauth", error="invalid_token", error_description="Invalid access token"');
      await expect(thirdPartyVerify(after.app, oldToken)).rejects.toMatchObject({ code: 'ERR_JWKS_NO_MATCHING_KEY' });
      expect((await request(after.app).get('/api/me').set('Authorization', `Bearer ${newToken}`)).status).toBe(200);
      expect(await thirdPartyVerify(after.app, newToken)).toMatchObject({ client_id: client.clientId });
    },
  );
});
