import { afterAll, describe, expect, it } from '@jest/globals';
import { createLocalJWKSet, exportJWK, generateKeyPair, jwtVerify, type JWK } from 'jose';
import { basic, closeAll } from '../support/build_app';
import { expectError } from '../support/expect_oauth_error';
import { locationParams } from '../authorization_code_grant/flow';
import { approve, authorizeQuery, bearer, BOOKS, codeFlow, expectInvalidToken, grantResources, INVALID_TARGET, ISSUER, MALFORMED_TARGET, MCP, OTHER, REDIRECT, resourceApp, tokenRequest } from './support';

afterAll(closeAll);

async function signingKey(): Promise<{ option: unknown[]; publicJwk: JWK }> {
  const { privateKey, publicKey } = await generateKeyPair('ES256', { extractable: true });
  return { option: [{ key: await exportJWK(privateKey), alg: 'ES256', kid: 'k1' }], publicJwk: { ...(await exportJWK(publicKey)), alg: 'ES256', kid: 'k1' } };
}

describe('resource_indicators › code exchange (RFC 8707 §2.2)', () => {
  it('binds an opaque token to all of the grant’s resources when the token request names none', async () => {
    const t = await resourceApp();
    const client = await t.createClient();
    const tok = await codeFlow(t, client, [MCP, BOOKS]);
    expect(tok.status).toBe(200);
    const token = tok.body.access_token as string;
    expect((await bearer(t, token, '/api/mcp')).status).toBe(200);
    expect((await bearer(t, token, '/api/books-rs')).status).toBe(200);
    // A route without a resource expects the server's own audience, which the token does not name.
    expectInvalidToken(await bearer(t, token, '/api/me'));
  });

  it('narrows the access token to the requested subset and keeps the grant’s resources', async () => {
    const t = await resourceApp();
    const client = await t.createClient();
    const tok = await codeFlow(t, client, [MCP, BOOKS], [MCP]);
    expect(tok.status).toBe(200);
    expect(await grantResources(t)).toEqual([{ resource: `${MCP} ${BOOKS}`, token_resource: MCP }]);
    expect((await bearer(t, tok.body.access_token, '/api/mcp')).status).toBe(200);
    expectInvalidToken(await bearer(t, tok.body.access_token, '/api/books-rs'));
  });

  it('refuses a resource the grant does not cover with invalid_target, and the code stays redeemable', async () => {
    const t = await resourceApp();
    const client = await t.createClient();
    const { query, verifier } = authorizeQuery(client, [MCP]);
    const code = locationParams((await approve(t, query)).headers.location).code!;
    const body = { grant_type: 'authorization_code', code, redirect_uri: REDIRECT, code_verifier: verifier };
    expectError(await tokenRequest(t, client, body, [BOOKS]), 400, INVALID_TARGET);
    expectError(await tokenRequest(t, client, body, ['mcp']), 400, MALFORMED_TARGET);
    expectError(await tokenRequest(t, client, body, [`${MCP}#x`]), 400, MALFORMED_TARGET);
    expect((await tokenRequest(t, client, body, [MCP])).status).toBe(200);
  });

  it('refuses a resource at /token for a grant that named none', async () => {
    const t = await resourceApp();
    const client = await t.createClient();
    expectError(await codeFlow(t, client, [], [MCP]), 400, INVALID_TARGET);
  });

  it('gives a token of a grant without resources the server’s own audience only', async () => {
    const t = await resourceApp();
    const client = await t.createClient();
    const tok = await codeFlow(t, client, []);
    expect((await bearer(t, tok.body.access_token, '/api/me')).status).toBe(200);
    expectInvalidToken(await bearer(t, tok.body.access_token, '/api/mcp'));
  });
});

describe('resource_indicators › refresh (RFC 8707 §2.2)', () => {
  it('narrows the audience of one refresh, and a later refresh without resource gets all of them again', async () => {
    const t = await resourceApp();
    const client = await t.createClient();
    const first = await codeFlow(t, client, [MCP, BOOKS]);
    const narrowed = await tokenRequest(t, client, { grant_type: 'refresh_token', refresh_token: first.body.refresh_token }, [BOOKS]);
    expect(narrowed.status).toBe(200);
    expect(await grantResources(t)).toEqual([{ resource: `${MCP} ${BOOKS}`, token_resource: BOOKS }]);
    expectInvalidToken(await bearer(t, narrowed.body.access_token, '/api/mcp'));
    expect((await bearer(t, narrowed.body.access_token, '/api/books-rs')).status).toBe(200);
    const widened = await tokenRequest(t, client, { grant_type: 'refresh_token', refresh_token: narrowed.body.refresh_token });
    expect(widened.status).toBe(200);
    expect(await grantResources(t)).toEqual([{ resource: `${MCP} ${BOOKS}`, token_resource: null }]);
    expect((await bearer(t, widened.body.access_token, '/api/mcp')).status).toBe(200);
  });

  it('refuses a resource outside the grant with invalid_target, leaving the refresh token usable', async () => {
    const t = await resourceApp();
    const client = await t.createClient();
    const first = await codeFlow(t, client, [MCP]);
    const body = { grant_type: 'refresh_token', refresh_token: first.body.refresh_token as string };
    expectError(await tokenRequest(t, client, body, [BOOKS]), 400, INVALID_TARGET);
    expect((await tokenRequest(t, client, body, [MCP])).status).toBe(200);
  });
});

describe('resource_indicators › client credentials', () => {
  it('binds the token to allowed resources and refuses unknown, relative and fragment ones', async () => {
    const t = await resourceApp();
    const client = await t.createClient();
    const ok = await tokenRequest(t, client, { grant_type: 'client_credentials', scope: 'books.read' }, [BOOKS]);
    expect(ok.status).toBe(200);
    expect((await bearer(t, ok.body.access_token, '/api/books-rs')).status).toBe(200);
    expectInvalidToken(await bearer(t, ok.body.access_token, '/api/me'));
    for (const [resource, body] of [[OTHER, INVALID_TARGET], ['books', MALFORMED_TARGET], [`${BOOKS}/#a`, MALFORMED_TARGET]] as const) {
      expectError(await tokenRequest(t, client, { grant_type: 'client_credentials', scope: 'books.read' }, [resource]), 400, body);
    }
    expect(await grantResources(t)).toEqual([{ resource: BOOKS, token_resource: null }]);
  });

  it('accepts resource as a JSON array and refuses a repeated JSON key', async () => {
    const t = await resourceApp();
    const client = await t.createClient();
    const post = (text: string) => t.agent.post(t.path('/token')).set('Authorization', basic(client.clientId, client.clientSecret)).type('json').send(text);
    const ok = await post(JSON.stringify({ grant_type: 'client_credentials', resource: [MCP, BOOKS] }));
    expect(ok.status).toBe(200);
    expect(await grantResources(t)).toEqual([{ resource: `${MCP} ${BOOKS}`, token_resource: null }]);
    expectError(await post(`{"grant_type":"client_credentials","resource":"${MCP}","resource":"${BOOKS}"}`), 400, { error: 'invalid_request', error_description: "Parameter 'resource' must not be repeated" });
    expectError(await post(JSON.stringify({ grant_type: 'client_credentials', resource: [MCP, 1] })), 400, { error: 'invalid_request', error_description: "Parameter 'resource' must be a string or an array of strings" });
  });

  it('refuses every repeated JSON key, after an array too (RFC 6749 §3.2)', async () => {
    const t = await resourceApp();
    const client = await t.createClient();
    const other = await t.createClient();
    const post = (text: string) => t.agent.post(t.path('/token')).type('json').send(text);
    const repeated = (name: string) => ({ error: 'invalid_request', error_description: `Parameter '${name}' must not be repeated` });
    // JSON.parse keeps the last client_id: without the check, `other` would be the client.
    const id = `"client_id":"${client.clientId}","client_secret":"${client.clientSecret}"`;
    expectError(await post(`{"grant_type":"client_credentials","resource":["${MCP}"],${id},"client_id":"${other.clientId}"}`), 400, repeated('client_id'));
    expectError(await post(`{"grant_type":"client_credentials","resource":"${MCP}","resource":["${BOOKS}"]}`), 400, repeated('resource'));
    expectError(await post(`{"grant_type":"client_credentials","resource":[ "${MCP}" , "${BOOKS}" ],"resource":[]}`), 400, repeated('resource'));
    expectError(await post(`{"grant_type":"client_credentials","resource":[],${id},"grant_type":"client_credentials"}`), 400, repeated('grant_type'));
    const ok = await post(`{ "grant_type" : "client_credentials", "resource" : [ "${MCP}" , "${BOOKS}" ] , "scope": null, ${id} }`);
    expect(ok.status).toBe(200);
    expect(ok.body).toMatchObject({ token_type: 'Bearer' });
  });
});

describe('resource_indicators › JWT access tokens and introspection', () => {
  it('puts the resources in aud (verified with jose) and checks it at requireOauthAuthorization({ resource })', async () => {
    const key = await signingKey();
    const t = await resourceApp({ enable: ['jwt_access_tokens'], oauthJwtKeys: key.option });
    const client = await t.createClient();
    const jwks = createLocalJWKSet({ keys: [key.publicJwk] });
    const both = await codeFlow(t, client, [MCP, BOOKS]);
    const { payload } = await jwtVerify(both.body.access_token, jwks, { issuer: ISSUER, audience: MCP, typ: 'at+jwt' });
    expect(payload.aud).toEqual([MCP, BOOKS]);
    expect((await bearer(t, both.body.access_token, '/api/mcp')).status).toBe(200);
    expectInvalidToken(await bearer(t, both.body.access_token, '/api/me'));
    const narrowed = await tokenRequest(t, client, { grant_type: 'refresh_token', refresh_token: both.body.refresh_token }, [BOOKS]);
    const n = await jwtVerify(narrowed.body.access_token, jwks, { issuer: ISSUER, audience: BOOKS });
    expect(n.payload.aud).toBe(BOOKS);
    expectInvalidToken(await bearer(t, narrowed.body.access_token, '/api/mcp'));
    expect((await bearer(t, narrowed.body.access_token, '/api/books-rs')).status).toBe(200);
    const none = await codeFlow(t, client, []);
    expect((await jwtVerify(none.body.access_token, jwks)).payload.aud).toBe(ISSUER);
    expect((await bearer(t, none.body.access_token, '/api/me')).status).toBe(200);
    expectInvalidToken(await bearer(t, none.body.access_token, '/api/mcp'));
  });

  it('reports aud in introspection: one resource as a string, several as an array, the server’s own audience (the issuer) without', async () => {
    const t = await resourceApp();
    const client = await t.createClient();
    const introspect = async (token: string) => (await t.agent.post(t.path('/introspect')).type('form').set('Authorization', basic(client.clientId, client.clientSecret)).send({ token })).body;
    const both = await codeFlow(t, client, [MCP, BOOKS]);
    expect(await introspect(both.body.access_token)).toMatchObject({ active: true, aud: [MCP, BOOKS] });
    expect(await introspect(both.body.refresh_token)).toMatchObject({ active: true, aud: [MCP, BOOKS] });
    const narrowed = await tokenRequest(t, client, { grant_type: 'refresh_token', refresh_token: both.body.refresh_token }, [MCP]);
    expect(await introspect(narrowed.body.access_token)).toMatchObject({ active: true, aud: MCP });
    const none = await codeFlow(t, client, []);
    expect(await introspect(none.body.access_token)).toMatchObject({ active: true, aud: ISSUER });
  });
});
