import request from 'supertest';
import { basic, closeAll } from '../support/build_app';
import { reloadGrant } from '../support/grants';
import { apiMe, authorizationCode, jsonList, REDIRECT, refresh, setup } from './support';

afterAll(closeAll);

/** The page's `last_used_at` of the account's only application. */
async function lastUsed(t: Parameters<typeof jsonList>[0], user = 'alice'): Promise<string | null> {
  const res = await jsonList(t, user);
  expect(res.body.applications).toHaveLength(1);
  return res.body.applications[0].last_used_at as string | null;
}

describe('grant_management › last used', () => {
  it('is empty until the code is exchanged, then the exchange time; each refresh moves it; protected requests do not write it', async () => {
    const t = await setup();
    const books = await t.client('Books app');
    const approvedAt = t.clock.now();
    const code = await authorizationCode(t, books.clientId, 'alice', 'books.read');
    expect(await lastUsed(t)).toBeNull();
    expect((await jsonList(t, 'alice')).body.applications[0].granted_at).toBe(approvedAt.toISOString());

    t.clock.advance(30);
    const exchangedAt = t.clock.now();
    const token = await request(t.app).post(t.path('/token')).set('Authorization', basic(books.clientId, books.clientSecret)).type('form').send({ grant_type: 'authorization_code', code, redirect_uri: REDIRECT });
    expect(token.status).toBe(200);
    expect(await lastUsed(t)).toBe(exchangedAt.toISOString());

    // The API (the hot path) reads the grant and writes nothing.
    t.clock.advance(60);
    expect((await apiMe(t, token.body.access_token)).status).toBe(200);
    expect(await lastUsed(t)).toBe(exchangedAt.toISOString());

    t.clock.advance(600);
    const refreshedAt = t.clock.now();
    const refreshed = await refresh(t, books, token.body.refresh_token);
    expect(refreshed.status).toBe(200);
    expect(await lastUsed(t)).toBe(refreshedAt.toISOString());

    // Only a refresh that issues tokens counts: a failed one writes nothing.
    t.clock.advance(600);
    const grantId = (await apiMe(t, refreshed.body.access_token)).body.grantId as number;
    t.clock.advance(1);
    expect((await refresh(t, books, refreshed.body.refresh_token)).status).toBe(200);
    const lastGood = t.clock.now();
    t.clock.advance(5);
    expect((await refresh(t, books, 'not-a-refresh-token')).status).toBe(400);
    expect((await reloadGrant(t, grantId)).lastUsedAt?.toISOString()).toBe(lastGood.toISOString());
    // The first grant's first use stays its creation.
    expect((await jsonList(t, 'alice')).body.applications[0].granted_at).toBe(approvedAt.toISOString());
  });

  it('a client_credentials grant records its issuance (no account: never on a grants page)', async () => {
    const t = await setup({ enable: ['grant_management', 'client_credentials_grant'] });
    const service = await t.client('Service', { grantTypes: ['client_credentials'] });
    const at = t.clock.now();
    const res = await request(t.app).post(t.path('/token')).set('Authorization', basic(service.clientId, service.clientSecret)).type('form').send({ grant_type: 'client_credentials' });
    expect(res.status).toBe(200);
    const [row] = (await t.db('oauth_grants').select('id')) as { id: number }[];
    const grant = await reloadGrant(t, Number(row!.id));
    expect(grant.accountId).toBeNull();
    expect(grant.lastUsedAt?.toISOString()).toBe(at.toISOString());
  });
});
