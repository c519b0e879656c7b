import type { Express } from 'express';
import request from 'supertest';
import { oauth } from '../../lib';
import { basic, browseAsHttps, MOUNT, RecordingLogger } from '../support/build_app';
import { createTestDb, type TestDb } from '../support/db';
import { errorPage, formFields, locationParams, pkcePair, query, testLogin } from './flow';

// `express4` is Express 4 installed under an npm alias; it ships no types of its own.
// eslint-disable-next-line @typescript-eslint/no-require-imports
const express4 = require('express4') as () => Express;

let testDb: TestDb | undefined;
afterAll(async () => {
  await testDb?.destroy();
});

describe('authorization_code_grant › express4', () => {
  it('runs the whole code + PKCE flow in an Express 4 app: error page, consent, redirect, exchange', async () => {
    testDb = await createTestDb();
    const auth = oauth({ db: testDb.db, enable: ['pkce'], logger: new RecordingLogger(), oauthClientSecretHashCost: 4, issuer: 'https://auth.example.com' });
    await auth.migrate();
    const app = express4();
    testLogin(app);
    if (MOUNT) app.use(MOUNT, auth);
    else app.use(auth);
    app.get('/api/me', auth.requireOauthAuthorization('books.read'), (req, res) => void res.json({ accountId: req.oauth?.accountId }));
    const { clientId, clientSecret } = await auth.createApplication({ name: 'Express 4 client', redirectUri: ['https://client.example/cb'], scopes: ['books.read'] });
    const agent = request.agent(app);
    browseAsHttps(agent);

    const unknown = await agent.get(`${MOUNT}/authorize?client_id=nope`).set('X-Test-User', 'alice');
    expect(unknown.status).toBe(400);
    expect(errorPage(unknown.text)).toEqual({ error: 'invalid_request', description: "Invalid or missing 'client_id'" });

    const { verifier, challenge } = pkcePair();
    const params = { client_id: clientId, redirect_uri: 'https://client.example/cb', response_type: 'code', scope: 'books.read', state: 's', code_challenge: challenge, code_challenge_method: 'S256' };
    const login = await agent.get(`${MOUNT}/authorize?${query(params)}`);
    expect(login.status).toBe(302);
    expect(login.headers.location).toBe(`/login?return_to=${encodeURIComponent(`${MOUNT}/authorize?${query(params)}`)}`);

    const page = await agent.get(`${MOUNT}/authorize?${query(params)}`).set('X-Test-User', 'alice');
    expect(page.status).toBe(200);
    expect(page.headers['x-frame-options']).toBe('DENY');
    const post = await agent.post(`${MOUNT}/authorize`).set('X-Test-User', 'alice').type('form').send({ ...formFields(page.text), decision: 'approve' });
    expect(post.status).toBe(302);
    const callback = locationParams(post.headers.location);
    expect(callback).toEqual({ code: expect.any(String), state: 's', iss: 'https://auth.example.com' });

    const token = await agent.post(`${MOUNT}/token`).set('Authorization', basic(clientId, clientSecret!)).type('form').send({ grant_type: 'authorization_code', code: callback.code, redirect_uri: 'https://client.example/cb', code_verifier: verifier });
    expect(token.status).toBe(200);
    const me = await agent.get('/api/me').set('Authorization', `Bearer ${token.body.access_token}`);
    expect(me.body).toEqual({ accountId: 'alice' });
  });
});
