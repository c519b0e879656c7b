import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { basic, buildApp, closeAll, type TestApp } from '../support/build_app';
import { SQL_LOOKING, UNICODE, countGrants, expectInvalidClient, expectNoStore, expectTokenError, tokenBody, type Client } from './helpers';

afterAll(closeAll);

describe('oauth_base › token_endpoint', () => {
  let t: TestApp;
  let client: Client;
  beforeAll(async () => {
    t = await buildApp({ enable: ['client_credentials_grant'] });
    client = await t.createClient();
  });

  const post = () => t.agent.post(t.path('/token')).set('Authorization', basic(client.clientId, client.clientSecret));

  it('issues a token for a form-encoded body (RFC 6749 §4.4.2, §5.1)', async () => {
    const res = await post().type('form').send('grant_type=client_credentials&scope=books.read');
    expect(res.status).toBe(200);
    expectNoStore(res);
    expect(res.body).toEqual(tokenBody('books.read'));
  });

  it('issues a token for a JSON body (design.md §4.3)', async () => {
    const res = await post().set('Content-Type', 'application/json').send(JSON.stringify({ grant_type: 'client_credentials', scope: 'books.write' }));
    expect(res.status).toBe(200);
    expectNoStore(res);
    expect(res.body).toEqual(tokenBody('books.write'));
  });

  it('treats an empty parameter as omitted (RFC 6749 §3.1)', async () => {
    const res = await post().type('form').send('grant_type=client_credentials&scope=');
    expect(res.status).toBe(200);
    expect(res.body).toEqual(tokenBody('books.read books.write'));
  });

  it('rejects a repeated form parameter with invalid_request (RFC 6749 §3.2)', async () => {
    const before = await countGrants(t);
    const res = await post().type('form').send('grant_type=client_credentials&scope=books.read&scope=books.write');
    expectTokenError(res, 'invalid_request', "Parameter 'scope' must not be repeated");
    expect(await countGrants(t)).toBe(before);
  });

  it('rejects a repeated grant_type with invalid_request (RFC 6749 §3.2)', async () => {
    const res = await post().type('form').send('grant_type=client_credentials&grant_type=client_credentials');
    expectTokenError(res, 'invalid_request', "Parameter 'grant_type' must not be repeated");
  });

  it('rejects a JSON array where a string belongs with invalid_request', async () => {
    const res = await post().set('Content-Type', 'application/json').send(JSON.stringify({ grant_type: 'client_credentials', scope: ['books.read', 'books.write'] }));
    expectTokenError(res, 'invalid_request', "Parameter 'scope' must not be repeated");
  });

  it.each([
    ['an object', { a: 1 }],
    ['a number', 42],
    ['a boolean', true],
  ])('rejects %s in a JSON body with invalid_request', async (_name, scope) => {
    const res = await post().set('Content-Type', 'application/json').send(JSON.stringify({ grant_type: 'client_credentials', scope }));
    expectTokenError(res, 'invalid_request', "Parameter 'scope' must be a string");
  });

  it.each([
    ['a JSON array', '["client_credentials"]'],
    ['a JSON string', '"client_credentials"'],
    ['JSON null', 'null'],
  ])('rejects %s as the whole body with invalid_request', async (_name, body) => {
    const res = await post().set('Content-Type', 'application/json').send(body);
    expect(res.status).toBe(400);
    expectNoStore(res);
    expect(res.body).toEqual({ error: 'invalid_request', error_description: expect.stringMatching(/^The (JSON body must be an object|request body could not be parsed)$/) });
  });

  it('rejects malformed JSON with invalid_request, never a 500', async () => {
    const res = await post().set('Content-Type', 'application/json').send('{"grant_type": "client_credentials",');
    expectTokenError(res, 'invalid_request', 'The request body could not be parsed');
  });

  it('does not log the start of a malformed JSON body, which may be a credential', async () => {
    const res = await t.agent.post(t.path('/token')).set('Content-Type', 'application/json').send('SECRETXYZ1');
    expectTokenError(res, 'invalid_request', 'The request body could not be parsed');
    expect(t.logger.lines.some((l) => l.includes('malformed_body'))).toBe(true);
    t.logger.assertNoSecrets(['SECRETXYZ1']);
  });

  it('rejects an oversized body with invalid_request (not 413)', async () => {
    const res = await post().type('form').send(`grant_type=client_credentials&scope=${'a'.repeat(70 * 1024)}`);
    expectTokenError(res, 'invalid_request', 'The request body is too large');
  });

  it('rejects an overlong parameter with invalid_request', async () => {
    const res = await post().type('form').send(`grant_type=client_credentials&scope=${'a'.repeat(17 * 1024)}`);
    expectTokenError(res, 'invalid_request', "Parameter 'scope' is too long");
  });

  it('rejects a body of another content type with invalid_request', async () => {
    const res = await post().set('Content-Type', 'text/plain').send('grant_type=client_credentials');
    expectTokenError(res, 'invalid_request', 'The request body must be application/x-www-form-urlencoded or application/json');
  });

  it('rejects a body without a content type with invalid_request', async () => {
    const res = await post().set('Content-Type', '').send(Buffer.from('grant_type=client_credentials'));
    expectTokenError(res, 'invalid_request', 'The request body must be application/x-www-form-urlencoded or application/json');
  });

  it('rejects a missing grant_type with invalid_request (RFC 6749 §4.4.2)', async () => {
    const res = await post().type('form').send('scope=books.read');
    expectTokenError(res, 'invalid_request', "Missing parameter 'grant_type'");
  });

  it('rejects an empty body with invalid_request', async () => {
    const res = await post();
    expectTokenError(res, 'invalid_request', "Missing parameter 'grant_type'");
  });

  it.each([
    ['an unknown grant type', 'password'],
    ['a grant type of a feature not enabled', 'refresh_token'],
    ['an SQL-looking grant type', SQL_LOOKING],
    ['a unicode grant type', UNICODE],
  ])('answers unsupported_grant_type for %s (RFC 6749 §5.2)', async (_name, grantType) => {
    const res = await post().type('form').send({ grant_type: grantType });
    expectTokenError(res, 'unsupported_grant_type', 'Invalid grant type');
  });

  it('checks the grant type before authenticating the client (an unknown grant type with bad credentials)', async () => {
    const res = await t.agent.post(t.path('/token')).type('form').set('Authorization', basic(client.clientId, 'wrong')).send({ grant_type: 'password' });
    expectTokenError(res, 'unsupported_grant_type', 'Invalid grant type');
  });

  it('answers unsupported_grant_type when the application is not registered for the grant type (RFC 6749 §5.2 unauthorized_client, design.md §4.1)', async () => {
    const t2 = await buildApp({ enable: ['client_credentials_grant', 'refresh'] });
    const limited = await t2.createClient({ grantTypes: ['refresh_token'] });
    const res = await t2.agent.post(t2.path('/token')).type('form').set('Authorization', basic(limited.clientId, limited.clientSecret)).send({ grant_type: 'client_credentials' });
    expectTokenError(res, 'unsupported_grant_type', 'Invalid grant type');
    expect(await countGrants(t2)).toBe(0);
  });

  it('authenticates the client before the grant runs: a wrong secret gets invalid_client and writes nothing', async () => {
    const before = await countGrants(t);
    const res = await t.agent.post(t.path('/token')).type('form').set('Authorization', basic(client.clientId, 'wrong')).send({ grant_type: 'client_credentials' });
    expectInvalidClient(res);
    expect(await countGrants(t)).toBe(before);
  });

  it('ignores unknown parameters (RFC 6749 §3.2)', async () => {
    const res = await post().type('form').send({ grant_type: 'client_credentials', foo: SQL_LOOKING, [UNICODE]: UNICODE });
    expect(res.status).toBe(200);
    expect(res.body).toEqual(tokenBody('books.read books.write'));
  });

  it('answers GET on the token endpoint with 405 and Allow: POST (RFC 9110 §15.5.6)', async () => {
    const res = await t.agent.get(t.path('/token'));
    expect(res.status).toBe(405);
    expect(res.headers.allow).toBe('POST');
    expectNoStore(res);
    expect(res.body).toEqual({ error: 'invalid_request', error_description: 'Method not allowed' });
  });

  it('stores only the SHA-256 hash of the access token', async () => {
    const res = await post().type('form').send({ grant_type: 'client_credentials' });
    expect(res.status).toBe(200);
    const token = res.body.access_token as string;
    const { createHash } = await import('node:crypto');
    const hash = createHash('sha256').update(token).digest('base64url');
    const rows = await t.db('oauth_grants').where('token', hash);
    expect(rows).toHaveLength(1);
    expect(JSON.stringify(await t.db('oauth_grants'))).not.toContain(token);
  });

  it('never logs the client secret or an issued token', async () => {
    const ok = await post().type('form').send({ grant_type: 'client_credentials' });
    await t.agent.post(t.path('/token')).type('form').set('Authorization', basic(client.clientId, `${client.clientSecret}x`)).send({ grant_type: 'client_credentials' });
    await t.agent.post(t.path('/token')).type('form').send({ grant_type: 'client_credentials', client_id: client.clientId, client_secret: `${client.clientSecret}y`, scope: 'nope' });
    t.logger.assertNoSecrets([client.clientSecret, `${client.clientSecret}x`, `${client.clientSecret}y`, ok.body.access_token]);
  });
});

describe('oauth_base › token_endpoint behind host body parsers', () => {
  it('reads a body the host app already parsed with express.urlencoded() and express.json()', async () => {
    const express = (await import('express')).default;
    const t = await buildApp({ enable: ['client_credentials_grant'] }, {
      setup: (app) => {
        app.use(express.urlencoded({ extended: false }));
        app.use(express.json());
      },
    });
    const c = await t.createClient();
    const post = () => t.agent.post(t.path('/token')).set('Authorization', basic(c.clientId, c.clientSecret));
    const form = await post().type('form').send('grant_type=client_credentials&scope=books.read');
    expect(form.status).toBe(200);
    expect(form.body).toEqual(tokenBody('books.read'));
    const json = await post().send({ grant_type: 'client_credentials', scope: 'books.write' });
    expect(json.status).toBe(200);
    expect(json.body).toEqual(tokenBody('books.write'));
    expectTokenError(await post().type('form').send('grant_type=client_credentials&scope=a&scope=b'), 'invalid_request', "Parameter 'scope' must not be repeated");
    expectTokenError(await post().send({ grant_type: 'client_credentials', scope: { a: 1 } }), 'invalid_request', "Parameter 'scope' must be a string");
  });
});

describe('oauth_base › token_endpoint JSON keys', () => {
  it('rejects a key repeated in a JSON body with invalid_request (RFC 6749 §3.2)', async () => {
    const t = await buildApp({ enable: ['client_credentials_grant'] });
    const c = await t.createClient();
    const post = (body: string) => t.agent.post(t.path('/token')).set('Authorization', basic(c.clientId, c.clientSecret)).set('Content-Type', 'application/json').send(body);
    expectTokenError(await post('{"grant_type":"client_credentials","scope":"books.read","scope":"admin"}'), 'invalid_request', "Parameter 'scope' must not be repeated");
    expectTokenError(await post('{"grant_type":"client_credentials","\\u0073cope":"books.read", "scope" : null}'), 'invalid_request', "Parameter 'scope' must not be repeated");
    const ok = await post(' { "grant_type" : "client_credentials" , "scope":"books.read", "note": "a \\"quoted\\" , \\\\ value}" } ');
    expect(ok.status).toBe(200);
    expect(ok.body).toEqual(tokenBody('books.read'));
  });
});
