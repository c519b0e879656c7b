import type { Express } from 'express';
import request from 'supertest';
import { oauth } from '../../lib';
import { basic, MOUNT, RecordingLogger } from '../support/build_app';
import { createTestDb, type TestDb } from '../support/db';

// `express4` is Express 4 installed under an npm alias; it ships no types of its own.
// eslint-disable-next-line @typescript-eslint/no-require-imports
const express4 = require('express4') as () => Express;

let testDb: TestDb | undefined;
afterAll(async () => {
  await testDb?.destroy();
});

describe('token_revocation › express4', () => {
  it('introspects and revokes in an Express 4 app, with RFC errors for bad input (RFC 7009, RFC 7662)', async () => {
    testDb = await createTestDb();
    const auth = oauth({ db: testDb.db, enable: ['client_credentials_grant', 'token_revocation', 'token_introspection'], issuer: 'https://auth.example.com', logger: new RecordingLogger(), oauthClientSecretHashCost: 4 });
    await auth.migrate();
    const app = express4();
    if (MOUNT) app.use(MOUNT, auth);
    else app.use(auth);
    const { clientId, clientSecret } = await auth.createApplication({ name: 'Express 4 client', scopes: ['books.read'], grantTypes: ['client_credentials'] });
    const authz = basic(clientId, clientSecret!);

    const token = await request(app).post(`${MOUNT}/token`).set('Authorization', authz).type('form').send({ grant_type: 'client_credentials' });
    expect(token.status).toBe(200);
    const accessToken = token.body.access_token as string;

    const active = await request(app).post(`${MOUNT}/introspect`).set('Authorization', authz).type('form').send({ token: accessToken });
    expect(active.status).toBe(200);
    expect(active.headers['cache-control']).toBe('no-store');
    expect(active.body).toEqual({
      active: true,
      scope: 'books.read',
      client_id: clientId,
      username: 'Express 4 client',
      token_type: 'Bearer',
      exp: active.body.iat + 3600,
      iat: active.body.iat,
      sub: clientId,
      aud: 'https://auth.example.com',
      iss: 'https://auth.example.com',
    });

    const missing = await request(app).post(`${MOUNT}/revoke`).set('Authorization', authz).type('form').send({});
    expect(missing.status).toBe(400);
    expect(missing.body).toEqual({ error: 'invalid_request', error_description: "Missing parameter 'token'" });

    const unauthenticated = await request(app).post(`${MOUNT}/revoke`).type('form').send({ token: accessToken });
    expect(unauthenticated.status).toBe(401);
    expect(unauthenticated.headers['www-authenticate']).toBe('Basic realm="oauth"');
    expect(unauthenticated.body).toEqual({ error: 'invalid_client', error_description: 'Invalid client' });

    const revoked = await request(app).post(`${MOUNT}/revoke`).set('Authorization', authz).type('form').send({ token: accessToken });
    expect(revoked.status).toBe(200);
    expect(revoked.text).toBe('');
    expect(revoked.headers['cache-control']).toBe('no-store');

    const inactive = await request(app).post(`${MOUNT}/introspect`).set('Authorization', authz).type('form').send({ token: accessToken });
    expect(inactive.status).toBe(200);
    expect(inactive.body).toEqual({ active: false });
  });
});
