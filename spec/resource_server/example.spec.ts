/**
 * examples/resource-server.ts against the real demo authorization server (examples/server.ts,
 * in-memory SQLite): opaque tokens from its token endpoint, checked by introspection.
 */
import request from 'supertest';
import { createDemoApp, type Demo } from '../../examples/server';
import { createResourceApi, type ResourceApi } from '../../examples/resource-server';

let demo: Demo;
let api: ResourceApi;
beforeAll(async () => {
  demo = await createDemoApp();
  api = await createResourceApi({
    issuer: demo.origin,
    // The demo names no resource: its tokens' `aud` is its issuer (the example's default AUDIENCE).
    audience: demo.origin,
    introspection: { clientId: demo.client.clientId, clientSecret: demo.client.clientSecret },
  });
});
afterAll(async () => {
  await api?.close();
  await demo?.close();
});

async function clientCredentialsToken(scope: string): Promise<string> {
  const res = await request(demo.app).post('/token').auth(demo.client.clientId, demo.client.clientSecret).type('form').send({ grant_type: 'client_credentials', scope });
  expect(res.status).toBe(200);
  return res.body.access_token as string;
}

describe('examples/resource-server.ts with the demo as its authorization server', () => {
  it('serves /api/profile to a demo token with scope profile, and refuses one without it', async () => {
    const ok = await request(api.app).get('/api/profile').set('Authorization', `Bearer ${await clientCredentialsToken('profile')}`);
    expect(ok.status).toBe(200);
    expect(ok.body.authorization).toMatchObject({ accountId: null, clientId: demo.client.clientId, applicationId: null, grantId: null, scopes: ['profile'] });
    expect(ok.body.authorization.token).toBeUndefined();

    const denied = await request(api.app).get('/api/profile').set('Authorization', `Bearer ${await clientCredentialsToken('email')}`);
    expect(denied.status).toBe(403);
    expect(denied.body.error).toBe('insufficient_scope');
  });

  it('refuses a token the demo revoked, and one it never issued', async () => {
    const token = await clientCredentialsToken('profile');
    const revoked = await request(demo.app).post('/revoke').auth(demo.client.clientId, demo.client.clientSecret).type('form').send({ token });
    expect(revoked.status).toBe(200);
    const res = await request(api.app).get('/api/profile').set('Authorization', `Bearer ${token}`);
    expect(res.status).toBe(401);
    expect(res.body.error).toBe('invalid_token');
    expect((await request(api.app).get('/api/profile').set('Authorization', 'Bearer not-a-demo-token')).status).toBe(401);
  });
});
