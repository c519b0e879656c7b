import { afterAll, describe, expect, it } from '@jest/globals';
import { basic, closeAll } from '../support/build_app';
import { bearer, clientCredentials, decode, expectInvalidToken, ISSUER, jwtApp } from './support';

afterAll(closeAll);

describe('jwt_access_tokens › /introspect and /revoke with JWT access tokens', () => {
  it('introspects a JWT access token as active with its claims (RFC 7662 §2.2), and as inactive once revoked (RFC 7009)', async () => {
    const t = await jwtApp({ oauthJwtAccessTokenCheckRevocation: true });
    const client = await t.createClient({ name: 'JWT client' });
    const token = await clientCredentials(t, client);
    const { claims } = decode(token);
    const introspect = () => t.agent.post(t.path('/introspect')).type('form').set('Authorization', basic(client.clientId, client.clientSecret)).send({ token });
    const active = await introspect();
    expect(active.status).toBe(200);
    expect(active.body).toEqual({ active: true, scope: 'books.read', client_id: client.clientId, username: 'JWT client', token_type: 'Bearer', exp: claims.exp, iat: claims.iat, sub: client.clientId, aud: ISSUER, iss: ISSUER });

    const revoked = await t.agent.post(t.path('/revoke')).type('form').set('Authorization', basic(client.clientId, client.clientSecret)).send({ token, token_type_hint: 'access_token' });
    expect(revoked.status).toBe(200);
    expect(revoked.text).toBe('');
    expect((await introspect()).body).toEqual({ active: false });
    expectInvalidToken(await bearer(t, token));
  });

  it("refuses to revoke another client's JWT and leaves it active (RFC 7009 §2.1)", async () => {
    const t = await jwtApp();
    const owner = await t.createClient();
    const other = await t.createClient();
    const token = await clientCredentials(t, owner);
    const res = await t.agent.post(t.path('/revoke')).type('form').set('Authorization', basic(other.clientId, other.clientSecret)).send({ token });
    expect(res.status).toBe(400);
    expect(res.body).toEqual({ error: 'unauthorized_client', error_description: 'You are not authorized to revoke this token' });
    const seen = await t.agent.post(t.path('/introspect')).type('form').set('Authorization', basic(owner.clientId, owner.clientSecret)).send({ token });
    expect(seen.body.active).toBe(true);
  });
});
