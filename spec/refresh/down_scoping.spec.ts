import { afterAll, describe, expect, it } from '@jest/globals';
import { basic, buildApp, closeAll } from '../support/build_app';
import { createGrant, reloadGrant } from '../support/grants';
import { expectNoStore, me, refresh } from './helpers';

afterAll(closeAll);

const INVALID_SCOPE = { error: 'invalid_scope', error_description: 'Invalid scope' };

describe('refresh › down_scoping', () => {
  it('issues an access token with the narrowed scope when scope is a subset of the grant (RFC 6749 §6)', async () => {
    const t = await buildApp({ enable: ['refresh'] });
    const client = await t.createClient();
    const { grant, refreshToken } = await createGrant(t, { applicationId: client.id });
    const res = await refresh(t, client, refreshToken, { scope: 'books.write' });
    expect(res.status).toBe(200);
    expect(res.body).toEqual({ access_token: expect.any(String), token_type: 'Bearer', expires_in: 3600, refresh_token: expect.any(String), scope: 'books.write' });
    const who = await me(t, res.body.access_token);
    expect(who.status).toBe(200);
    expect(who.body).toEqual({
      accountId: 'account-1',
      clientId: client.clientId,
      applicationId: client.id,
      scopes: ['books.write'],
      grantId: grant.id,
      expiresAt: expect.any(String),
      token: res.body.access_token,
    });
    const books = await t.agent.get('/api/books').set('Authorization', `Bearer ${res.body.access_token}`);
    expect(books.status).toBe(403);
    expect(books.headers['www-authenticate']).toBe('Bearer realm="oauth", error="insufficient_scope", error_description="Insufficient scope", scope="books.read"');
    expect(books.body).toEqual({ error: 'insufficient_scope', error_description: 'Insufficient scope' });
  });

  it('keeps the grant’s original scopes, so a later refresh may ask for all of them again', async () => {
    const t = await buildApp({ enable: ['refresh'] });
    const client = await t.createClient();
    const { grant, refreshToken } = await createGrant(t, { applicationId: client.id });
    const narrow = await refresh(t, client, refreshToken, { scope: 'books.read' });
    const stored = await reloadGrant(t, grant.id);
    expect(stored.scopes).toEqual(['books.read', 'books.write']);
    expect(stored.tokenScopes).toEqual(['books.read']);

    const full = await refresh(t, client, narrow.body.refresh_token);
    expect(full.status).toBe(200);
    expect(full.body.scope).toBe('books.read books.write');
    expect((await me(t, full.body.access_token)).body.scopes).toEqual(['books.read', 'books.write']);
    expect((await reloadGrant(t, grant.id)).tokenScopes).toBeNull();

    const other = await refresh(t, client, full.body.refresh_token, { scope: 'books.write' });
    expect(other.status).toBe(200);
    expect(other.body.scope).toBe('books.write');
  });

  it('answers invalid_scope for a scope beyond the grant, and the refresh token stays usable (RFC 6749 §6)', async () => {
    const t = await buildApp({ enable: ['refresh'] });
    const client = await t.createClient({ scopes: ['books.read', 'books.write', 'admin'] });
    const { grant, refreshToken } = await createGrant(t, { applicationId: client.id, scopes: ['books.read'] });
    const res = await refresh(t, client, refreshToken, { scope: 'books.read admin' });
    expect(res.status).toBe(400);
    expectNoStore(res);
    expect(res.body).toEqual(INVALID_SCOPE);
    expect((await reloadGrant(t, grant.id)).revokedAt).toBeNull();
    const ok = await refresh(t, client, refreshToken);
    expect(ok.status).toBe(200);
    expect(ok.body.scope).toBe('books.read');
  });

  it.each([['a quote', '"books.read'], ['only spaces', '   '], ['a backslash', 'books\\read']])(
    'answers invalid_scope for a malformed scope (%s) (RFC 6749 §3.3)',
    async (_name, scope) => {
      const t = await buildApp({ enable: ['refresh'] });
      const client = await t.createClient();
      const { refreshToken } = await createGrant(t, { applicationId: client.id });
      const res = await refresh(t, client, refreshToken, { scope });
      expect(res.status).toBe(400);
      expect(res.body).toEqual(INVALID_SCOPE);
    },
  );

  it('treats a repeated scope token as one', async () => {
    const t = await buildApp({ enable: ['refresh'] });
    const client = await t.createClient();
    const { refreshToken } = await createGrant(t, { applicationId: client.id });
    const res = await refresh(t, client, refreshToken, { scope: 'books.read books.read' });
    expect(res.status).toBe(200);
    expect(res.body.scope).toBe('books.read');
    expect((await me(t, res.body.access_token)).body.scopes).toEqual(['books.read']);
  });

  it("narrows with policy 'none' too, and the refresh token keeps the whole grant", async () => {
    const t = await buildApp({ enable: ['refresh'], oauthRefreshTokenProtectionPolicy: 'none' });
    const client = await t.createClient();
    const { refreshToken } = await createGrant(t, { applicationId: client.id });
    const narrow = await refresh(t, client, refreshToken, { scope: 'books.read' });
    expect(narrow.body).toEqual({ access_token: expect.any(String), token_type: 'Bearer', expires_in: 3600, scope: 'books.read' });
    const full = await refresh(t, client, refreshToken);
    expect(full.body.scope).toBe('books.read books.write');
  });

  it('is what introspection reports: the narrowed scope for the access token, the whole grant for the refresh token', async () => {
    const t = await buildApp({ enable: ['refresh', 'token_introspection'] });
    const client = await t.createClient();
    const { refreshToken } = await createGrant(t, { applicationId: client.id });
    const narrow = await refresh(t, client, refreshToken, { scope: 'books.read' });
    const introspect = (token: string) =>
      t.agent.post(t.path('/introspect')).set('Authorization', basic(client.clientId, client.clientSecret)).type('form').send({ token });
    expect((await introspect(narrow.body.access_token)).body).toEqual(expect.objectContaining({ active: true, scope: 'books.read', token_type: 'Bearer' }));
    const described = (await introspect(narrow.body.refresh_token)).body;
    expect(described).toEqual(expect.objectContaining({ active: true, scope: 'books.read books.write' }));
    expect(described).not.toHaveProperty('token_type'); // RFC 7662 §2.2: an access token's type only
  });
});
