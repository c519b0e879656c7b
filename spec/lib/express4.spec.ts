import { afterAll, describe, expect, it } from '@jest/globals';
import type { Express } from 'express';
import request from 'supertest';
import { oauth } from '../../lib';
import { basic, MOUNT, RecordingLogger } from '../support/build_app';
import { createTestDb, type TestDb } from '../support/db';
import { tokenBody } from '../oauth_base/helpers';

// `express4` is Express 4 installed under an npm alias; it ships no types of its own.
// eslint-disable-next-line @typescript-eslint/no-require-imports
const express4 = require('express4') as (() => Express) & { version?: string };

let testDb: TestDb | undefined;
afterAll(async () => {
  await testDb?.destroy();
});

describe('lib › express4', () => {
  it('mounts in an Express 4 app: a token from /token opens a protected route, and errors are RFC JSON', async () => {
    expect(require('express4/package.json').version).toMatch(/^4\./);
    testDb = await createTestDb();
    const auth = oauth({ db: testDb.db, enable: ['client_credentials_grant'], logger: new RecordingLogger(), oauthClientSecretHashCost: 4 });
    await auth.migrate();
    const app = express4();
    if (MOUNT) app.use(MOUNT, auth);
    else app.use(auth);
    app.get('/api/books', auth.requireOauthAuthorization('books.read'), (req, res) => void res.json({ scopes: req.oauth?.scopes }));
    const { clientId, clientSecret } = await auth.createApplication({ name: 'Express 4 client', scopes: ['books.read'], grantTypes: ['client_credentials'] });

    const token = await request(app).post(`${MOUNT}/token`).type('form').set('Authorization', basic(clientId, clientSecret!)).send({ grant_type: 'client_credentials' });
    expect(token.status).toBe(200);
    expect(token.headers['cache-control']).toBe('no-store');
    expect(token.body).toEqual(tokenBody('books.read'));

    const api = await request(app).get('/api/books').set('Authorization', `Bearer ${token.body.access_token}`);
    expect(api.status).toBe(200);
    expect(api.body).toEqual({ scopes: ['books.read'] });

    const bad = await request(app).post(`${MOUNT}/token`).type('form').set('Authorization', basic(clientId, 'wrong')).send({ grant_type: 'client_credentials' });
    expect(bad.status).toBe(401);
    expect(bad.headers['www-authenticate']).toBe('Basic realm="oauth"');
    expect(bad.body).toEqual({ error: 'invalid_client', error_description: 'Invalid client' });

    const json = await request(app).post(`${MOUNT}/token`).set('Content-Type', 'application/json').send('{"grant_type":');
    expect(json.status).toBe(400);
    expect(json.body).toEqual({ error: 'invalid_request', error_description: 'The request body could not be parsed' });

    const meta = await request(app).get(`${MOUNT}/.well-known/oauth-authorization-server`).set('Host', 'auth.example');
    expect(meta.status).toBe(200);
    expect(meta.body.token_endpoint).toBe(`http://auth.example${MOUNT}/token`);

    const missing = await request(app).get('/api/books');
    expect(missing.status).toBe(401);
    expect(missing.headers['www-authenticate']).toBe('Bearer realm="oauth"');
  });
});
