import { afterAll, afterEach, beforeAll, describe, expect, it, jest } from '@jest/globals';
import bcrypt from 'bcrypt';
import { OAuthError } from '../../lib';
import type { Application } from '../../lib/store';
import { basic, buildApp, closeAll, type TestApp } from '../support/build_app';
import { createGrant, storeOf } from '../support/grants';
import { SQL_LOOKING, UNICODE, countGrants, expectInvalidClient, expectNoStore, expectTokenError, tokenBody, type Client } from './helpers';

afterAll(closeAll);

const b64 = (s: string) => Buffer.from(s, 'utf8').toString('base64');

/** Registers an application with a chosen client id and secret (createApplication generates both). */
async function insertClient(t: TestApp, clientId: string, secret: string, methods: string[] | null = null): Promise<Client> {
  await storeOf(t).applications.insert({
    accountId: null, name: 'Chosen credentials', description: null, homepageUrl: null, redirectUris: [], clientId,
    clientSecretHash: await bcrypt.hash(secret, 4), clientSecretEncrypted: null, scopes: ['books.read'],
    tokenEndpointAuthMethods: methods, grantTypes: null, responseTypes: null, responseModes: null, jwks: null, jwksUri: null,
    logoUri: null, tosUri: null, policyUri: null, contacts: null, softwareId: null, softwareVersion: null, createdAt: new Date(),
  });
  return { clientId, clientSecret: secret };
}

describe('oauth_base › client_auth', () => {
  let t: TestApp;
  let client: Client;
  beforeAll(async () => {
    t = await buildApp({ enable: ['client_credentials_grant'] });
    client = await t.createClient();
  });

  const cc = { grant_type: 'client_credentials' };
  const withHeader = (header: string, body: Record<string, string> = cc) => t.agent.post(t.path('/token')).type('form').set('Authorization', header).send(body);

  describe('client_secret_basic (RFC 6749 §2.3.1)', () => {
    it('authenticates with the Basic header', async () => {
      const res = await withHeader(basic(client.clientId, client.clientSecret));
      expect(res.status).toBe(200);
      expectNoStore(res);
      expect(res.body).toEqual(tokenBody('books.read books.write'));
    });

    it("form-decodes both parts: a client id and secret with ':' '%' '+' spaces and unicode", async () => {
      const special = await insertClient(t, `id:with%+ ${UNICODE}`, `se:cr%et+ ${UNICODE}`);
      const header = basic(special.clientId, special.clientSecret);
      expect(Buffer.from(header.slice(6), 'base64').toString('utf8').split(':')).toHaveLength(2); // both colons encoded
      const res = await withHeader(header);
      expect(res.status).toBe(200);
      expect(res.body).toEqual(tokenBody('books.read'));
    });

    it('splits at the first colon: an unencoded colon belongs to the secret', async () => {
      const colon = await insertClient(t, 'colon-client', 'a:b:c');
      const res = await withHeader(`Basic ${b64('colon-client:a:b:c')}`);
      expect(res.status).toBe(200);
      expect(res.body).toEqual(tokenBody('books.read'));
      expect(colon.clientSecret).toBe('a:b:c');
    });

    it("decodes '+' as a space, so a secret with a literal '+' must be sent as %2B", async () => {
      await insertClient(t, 'plus-client', 'a+b');
      expectInvalidClient(await withHeader(`Basic ${b64('plus-client:a+b')}`));
      const res = await withHeader(`Basic ${b64('plus-client:a%2Bb')}`);
      expect(res.status).toBe(200);
    });

    it('accepts the scheme in any case (RFC 7235 §2.1)', async () => {
      const res = await withHeader(basic(client.clientId, client.clientSecret).replace('Basic', 'bAsIc'));
      expect(res.status).toBe(200);
    });

    it.each([
      ['the scheme alone', 'Basic'],
      ['the scheme and spaces', 'Basic    '],
      ['invalid base64', 'Basic !!!not-base64!!!'],
      ['no colon', `Basic ${b64('just-an-id')}`],
      ['an empty client id', `Basic ${b64(':secret')}`],
      ['an empty secret', `Basic ${b64('client:')}`],
      ['only a colon', `Basic ${b64(':')}`],
      ['broken percent-encoding', `Basic ${b64('%zz:%E0%A4%A')}`],
      ['two credentials', `Basic ${b64('a:b')} ${b64('c:d')}`],
      ['a form-encoded NUL byte in the client id', `Basic ${b64('%00:secret')}`],
      ['a raw NUL byte in the client id', `Basic ${b64('cli\0ent:secret')}`],
      ['a form-encoded NUL byte in the secret', `Basic ${b64('client:se%00cret')}`],
      ['a lone surrogate', `Basic ${b64('%ED%A0%80:secret')}`],
    ])('answers invalid_client with a Basic challenge for a broken header: %s', async (_name, header) => {
      const before = await countGrants(t);
      expectInvalidClient(await withHeader(header));
      expect(await countGrants(t)).toBe(before);
    });

    it('answers invalid_client with a Basic challenge for a wrong secret (RFC 6749 §5.2)', async () => {
      expectInvalidClient(await withHeader(basic(client.clientId, `${client.clientSecret}x`)));
    });

    it.each([
      ['an unknown client id', 'no-such-client'],
      ['an SQL-looking client id', SQL_LOOKING],
      ['a unicode client id', UNICODE],
    ])('answers invalid_client for %s', async (_name, id) => {
      expectInvalidClient(await withHeader(basic(id, 'whatever')));
    });

    it('answers invalid_client for an SQL-looking secret', async () => {
      expectInvalidClient(await withHeader(basic(client.clientId, SQL_LOOKING)));
    });

    it('accepts a client_id parameter naming the same client beside Basic (RFC 6749 §3.2.1)', async () => {
      const res = await withHeader(basic(client.clientId, client.clientSecret), { ...cc, client_id: client.clientId });
      expect(res.status).toBe(200);
    });

    it('answers invalid_client when a client_id parameter names another client than Basic', async () => {
      expectInvalidClient(await withHeader(basic(client.clientId, client.clientSecret), { ...cc, client_id: 'someone-else' }));
    });
  });

  describe.each([
    ['Digest', 'Digest username="x", realm="oauth"'],
    ['Bearer', 'Bearer abcdef'],
    ['a made-up scheme', 'Weird c2VjcmV0'],
  ])('another scheme (%s) in the Authorization header', (_name, header) => {
    it('is not client authentication: invalid_client', async () => {
      expectInvalidClient(await withHeader(header));
    });
  });

  describe('client_secret_post (RFC 6749 §2.3.1)', () => {
    it('authenticates with client_id and client_secret in the body', async () => {
      const res = await t.agent.post(t.path('/token')).type('form').send({ ...cc, client_id: client.clientId, client_secret: client.clientSecret });
      expect(res.status).toBe(200);
      expectNoStore(res);
      expect(res.body).toEqual(tokenBody('books.read books.write'));
    });

    it('authenticates with client_id and client_secret in a JSON body', async () => {
      const res = await t.agent.post(t.path('/token')).send({ ...cc, client_id: client.clientId, client_secret: client.clientSecret });
      expect(res.status).toBe(200);
    });

    it('answers invalid_client for a wrong secret', async () => {
      expectInvalidClient(await t.agent.post(t.path('/token')).type('form').send({ ...cc, client_id: client.clientId, client_secret: 'wrong' }));
    });

    it('answers invalid_client for client_secret without client_id', async () => {
      expectInvalidClient(await t.agent.post(t.path('/token')).type('form').send({ ...cc, client_secret: client.clientSecret }));
    });

    it('answers invalid_client for unicode and SQL-looking credentials', async () => {
      expectInvalidClient(await t.agent.post(t.path('/token')).type('form').send({ ...cc, client_id: SQL_LOOKING, client_secret: UNICODE }));
    });
  });

  describe('more than one method (RFC 6749 §2.3)', () => {
    it('answers invalid_request for Basic and client_secret in the body', async () => {
      const before = await countGrants(t);
      const res = await withHeader(basic(client.clientId, client.clientSecret), { ...cc, client_id: client.clientId, client_secret: client.clientSecret });
      expectTokenError(res, 'invalid_request', 'Use exactly one client authentication method');
      expect(await countGrants(t)).toBe(before);
    });

    it('takes its error_description from oauthMultipleClientAuthMethodsMessage', async () => {
      const custom = await buildApp({ enable: ['client_credentials_grant'], oauthMultipleClientAuthMethodsMessage: 'One method, please' });
      const c = await custom.createClient();
      const res = await custom.agent
        .post(custom.path('/token'))
        .set('Authorization', basic(c.clientId, c.clientSecret))
        .type('form')
        .send({ ...cc, client_id: c.clientId, client_secret: c.clientSecret });
      expectTokenError(res, 'invalid_request', 'One method, please');
    });
  });

  describe('no credentials', () => {
    it('answers invalid_client', async () => {
      expectInvalidClient(await t.agent.post(t.path('/token')).type('form').send(cc));
    });

    it("answers invalid_client for client_id alone when the application's column is NULL (basic + post only)", async () => {
      expectInvalidClient(await t.agent.post(t.path('/token')).type('form').send({ ...cc, client_id: client.clientId }));
    });
  });

  describe('registered methods (design.md §4.4)', () => {
    it('refuses Basic for an application registered for client_secret_post only', async () => {
      const postOnly = await t.createClient({ tokenEndpointAuthMethod: 'client_secret_post' });
      expectInvalidClient(await withHeader(basic(postOnly.clientId, postOnly.clientSecret)));
      const ok = await t.agent.post(t.path('/token')).type('form').send({ ...cc, client_id: postOnly.clientId, client_secret: postOnly.clientSecret });
      expect(ok.status).toBe(200);
    });

    it('refuses client_secret_post for an application registered for client_secret_basic only', async () => {
      const basicOnly = await t.createClient({ tokenEndpointAuthMethod: 'client_secret_basic' });
      expectInvalidClient(await t.agent.post(t.path('/token')).type('form').send({ ...cc, client_id: basicOnly.clientId, client_secret: basicOnly.clientSecret }));
      expect((await withHeader(basic(basicOnly.clientId, basicOnly.clientSecret))).status).toBe(200);
    });

    it('refuses a secret for a public client registered for none', async () => {
      const pub = await t.createClient({ tokenEndpointAuthMethod: 'none' });
      expect(pub.clientSecret).toBe('');
      expectInvalidClient(await withHeader(basic(pub.clientId, 'anything')));
      expectInvalidClient(await t.agent.post(t.path('/token')).type('form').send({ ...cc, client_id: pub.clientId, client_secret: 'anything' }));
    });

    it('does not let a public client use client_credentials, which is for confidential clients only (RFC 6749 §4.4)', async () => {
      const pub = await t.createClient({ tokenEndpointAuthMethod: 'none' });
      const before = await countGrants(t);
      const res = await t.agent.post(t.path('/token')).type('form').send({ ...cc, client_id: pub.clientId });
      expectTokenError(res, 'unsupported_grant_type', 'Invalid grant type');
      expect(await countGrants(t)).toBe(before);
    });
  });

  describe('none (RFC 7591 §2), for a grant public clients may use', () => {
    it('authenticates a public client by client_id only when it is registered for none', async () => {
      const r = await buildApp({ enable: ['refresh'] });
      const pub = await r.createClient({ tokenEndpointAuthMethod: 'none' });
      const { refreshToken } = await createGrant(r, { applicationId: pub.id });
      const res = await r.agent.post(r.path('/token')).type('form').send({ grant_type: 'refresh_token', refresh_token: refreshToken, client_id: pub.clientId });
      expect(res.status).toBe(200);
      expectNoStore(res);

      const confidential = await r.createClient();
      const other = await createGrant(r, { applicationId: confidential.id });
      expectInvalidClient(await r.agent.post(r.path('/token')).type('form').send({ grant_type: 'refresh_token', refresh_token: other.refreshToken, client_id: confidential.clientId }));
    });
  });

  describe('oauthTokenEndpointAuthMethodsSupported', () => {
    it('restricts every application to the server-wide list', async () => {
      const r = await buildApp({ enable: ['client_credentials_grant'], oauthTokenEndpointAuthMethodsSupported: ['client_secret_post'] });
      const c = await r.createClient();
      expectInvalidClient(await r.agent.post(r.path('/token')).type('form').set('Authorization', basic(c.clientId, c.clientSecret)).send(cc));
      const ok = await r.agent.post(r.path('/token')).type('form').send({ ...cc, client_id: c.clientId, client_secret: c.clientSecret });
      expect(ok.status).toBe(200);
    });
  });

  describe('oauthDefaultTokenEndpointAuthMethods', () => {
    it('gives applications with a NULL column the configured methods', async () => {
      const r = await buildApp({ enable: ['client_credentials_grant'], oauthDefaultTokenEndpointAuthMethods: ['client_secret_basic'] });
      const c = await r.createClient();
      expectInvalidClient(await r.agent.post(r.path('/token')).type('form').send({ ...cc, client_id: c.clientId, client_secret: c.clientSecret }));
      expect((await r.agent.post(r.path('/token')).type('form').set('Authorization', basic(c.clientId, c.clientSecret)).send(cc)).status).toBe(200);
    });
  });

  describe('oauthInvalidClientMessage', () => {
    it('overrides the error_description with a constant', async () => {
      const r = await buildApp({ enable: ['client_credentials_grant'], oauthInvalidClientMessage: 'Unknown client' });
      expectInvalidClient(await r.agent.post(r.path('/token')).type('form').set('Authorization', basic('nobody', 'x')).send(cc), 'Unknown client');
    });

    it('overrides the error_description with a function of the request', async () => {
      const r = await buildApp({
        enable: ['client_credentials_grant'],
        oauthInvalidClientMessage: (ctx: { req: { headers: Record<string, string | undefined> } }) => (ctx.req.headers['accept-language'] === 'fr' ? 'Client inconnu' : 'Unknown client'),
      });
      const fr = await r.agent.post(r.path('/token')).type('form').set('Accept-Language', 'fr').set('Authorization', basic('nobody', 'x')).send(cc);
      expectInvalidClient(fr, 'Client inconnu');
      const en = await r.agent.post(r.path('/token')).type('form').set('Authorization', basic('nobody', 'x')).send(cc);
      expectInvalidClient(en, 'Unknown client');
    });
  });

  describe('oauthRealm', () => {
    it('names the realm of the Basic challenge', async () => {
      const r = await buildApp({ enable: ['client_credentials_grant'], oauthRealm: 'books' });
      const res = await r.agent.post(r.path('/token')).type('form').set('Authorization', basic('nobody', 'x')).send(cc);
      expect(res.status).toBe(401);
      expect(res.headers['www-authenticate']).toBe('Basic realm="books"');
    });
  });

  describe('the verified-secret cache', () => {
    afterEach(() => {
      jest.restoreAllMocks();
    });

    it('runs bcrypt once per client and secret, not per request', async () => {
      const r = await buildApp({ enable: ['client_credentials_grant'] });
      const c = await r.createClient();
      const compare = jest.spyOn(bcrypt, 'compare');
      for (let i = 0; i < 3; i++) expect((await r.agent.post(r.path('/token')).type('form').set('Authorization', basic(c.clientId, c.clientSecret)).send(cc)).status).toBe(200);
      expect(compare).toHaveBeenCalledTimes(1);
      // A wrong secret is never cached: bcrypt runs each time.
      for (let i = 0; i < 2; i++) expectInvalidClient(await r.agent.post(r.path('/token')).type('form').set('Authorization', basic(c.clientId, 'wrong')).send(cc));
      expect(compare).toHaveBeenCalledTimes(3);
    });

    it('does not serve a changed secret hash from the cache', async () => {
      const r = await buildApp({ enable: ['client_credentials_grant'] });
      const c = await r.createClient();
      expect((await r.agent.post(r.path('/token')).type('form').set('Authorization', basic(c.clientId, c.clientSecret)).send(cc)).status).toBe(200);
      await storeOf(r).applications.updateSecret(c.id, await bcrypt.hash('new-secret', 4), null);
      expectInvalidClient(await r.agent.post(r.path('/token')).type('form').set('Authorization', basic(c.clientId, c.clientSecret)).send(cc));
      expect((await r.agent.post(r.path('/token')).type('form').set('Authorization', basic(c.clientId, 'new-secret')).send(cc)).status).toBe(200);
    });

    it('is disabled by oauthSecretCacheSize: 0', async () => {
      const r = await buildApp({ enable: ['client_credentials_grant'], oauthSecretCacheSize: 0 });
      const c = await r.createClient();
      const compare = jest.spyOn(bcrypt, 'compare');
      for (let i = 0; i < 2; i++) expect((await r.agent.post(r.path('/token')).type('form').set('Authorization', basic(c.clientId, c.clientSecret)).send(cc)).status).toBe(200);
      expect(compare).toHaveBeenCalledTimes(2);
    });
  });

  describe('secretMatches override', () => {
    it('replaces the check and can call the default through ctx.super', async () => {
      const seen: string[] = [];
      const r = await buildApp({
        enable: ['client_credentials_grant'],
        secretMatches: async (ctx: { super: { secretMatches(app: Application, s: string): Promise<boolean> } }, app: Application, secret: string) => {
          seen.push(app.clientId);
          if (secret === 'master-key') return true;
          return ctx.super.secretMatches(app, secret);
        },
      });
      const c = await r.createClient();
      expect((await r.agent.post(r.path('/token')).type('form').set('Authorization', basic(c.clientId, c.clientSecret)).send(cc)).status).toBe(200);
      expect((await r.agent.post(r.path('/token')).type('form').set('Authorization', basic(c.clientId, 'master-key')).send(cc)).status).toBe(200);
      expectInvalidClient(await r.agent.post(r.path('/token')).type('form').set('Authorization', basic(c.clientId, 'wrong')).send(cc));
      expect(seen).toEqual([c.clientId, c.clientId, c.clientId]);
    });

    it('an OAuthError thrown by the override is the response', async () => {
      const r = await buildApp({
        enable: ['client_credentials_grant'],
        secretMatches: async () => {
          throw new OAuthError('invalid_client', 'Client locked');
        },
      });
      const c = await r.createClient();
      expectInvalidClient(await r.agent.post(r.path('/token')).type('form').set('Authorization', basic(c.clientId, c.clientSecret)).send(cc), 'Client locked');
    });
  });

  it('never logs a presented secret', async () => {
    t.logger.assertNoSecrets([client.clientSecret, 'a:b:c', `se:cr%et+ ${UNICODE}`, 'new-secret', 'master-key']);
  });
});
