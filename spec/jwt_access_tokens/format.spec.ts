import { afterAll, describe, expect, it } from '@jest/globals';
import { buildApp, closeAll } from '../support/build_app';
import { bearer, clientCredentials, decode, jwtApp } from './support';

afterAll(closeAll);

const OPAQUE = /^[A-Za-z0-9_-]{43}$/;

describe('jwt_access_tokens › per-application format', () => {
  it("issues JWTs by default, and opaque tokens to an application registered with accessTokenFormat: 'opaque'", async () => {
    const t = await jwtApp();
    const jwtClient = await t.createClient();
    const opaqueClient = await t.createClient({ accessTokenFormat: 'opaque' });
    expect(decode(await clientCredentials(t, jwtClient)).header.typ).toBe('at+jwt');
    const opaque = await clientCredentials(t, opaqueClient);
    expect(opaque).toMatch(OPAQUE);
    expect((await bearer(t, opaque)).status).toBe(200);
  });

  it("issues opaque tokens by default with oauthAccessTokenFormat: 'opaque', and JWTs to an application registered with 'jwt'", async () => {
    const t = await jwtApp({ oauthAccessTokenFormat: 'opaque' });
    const plain = await t.createClient();
    const jwtClient = await t.createClient({ accessTokenFormat: 'jwt' });
    expect(await clientCredentials(t, plain)).toMatch(OPAQUE);
    const token = await clientCredentials(t, jwtClient);
    expect(decode(token).claims.client_id).toBe(jwtClient.clientId);
    expect((await bearer(t, token)).status).toBe(200);
  });

  it('stores the format in the access_token_format column, NULL when not given', async () => {
    const t = await jwtApp();
    const a = await t.auth.createApplication({ name: 'A', grantTypes: ['client_credentials'], accessTokenFormat: 'opaque' });
    const b = await t.auth.createApplication({ name: 'B', grantTypes: ['client_credentials'] });
    expect(a.application.accessTokenFormat).toBe('opaque');
    expect(b.application.accessTokenFormat).toBeNull();
    const rows = await t.db('oauth_applications').select('client_id', 'access_token_format').whereIn('client_id', [a.clientId, b.clientId]);
    expect(Object.fromEntries(rows.map((r: { client_id: string; access_token_format: string | null }) => [r.client_id, r.access_token_format]))).toEqual({ [a.clientId]: 'opaque', [b.clientId]: null });
  });

  it("refuses accessTokenFormat 'jwt' without jwt_access_tokens, and an unknown format", async () => {
    const t = await buildApp({ enable: ['client_credentials_grant'] });
    await expect(t.auth.createApplication({ name: 'A', grantTypes: ['client_credentials'], accessTokenFormat: 'jwt' })).rejects.toThrow("createApplication(): accessTokenFormat must be 'opaque' ('jwt' needs the jwt_access_tokens feature) (got \"jwt\")");
    const j = await jwtApp();
    await expect(j.auth.createApplication({ name: 'A', grantTypes: ['client_credentials'], accessTokenFormat: 'paseto' as never })).rejects.toThrow("createApplication(): accessTokenFormat must be 'opaque' or 'jwt' (got \"paseto\")");
  });

  it('rejects an unknown oauthAccessTokenFormat at start-up', async () => {
    await expect(jwtApp({ oauthAccessTokenFormat: 'paseto' })).rejects.toThrow("oauth(): option 'oauthAccessTokenFormat' must be 'jwt' or 'opaque' (got 'paseto').");
  });
});
