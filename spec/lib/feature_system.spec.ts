import { generateKeyPairSync } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import knex, { type Knex } from 'knex';
import { OAuthConfigurationError, OAuthError, oauth, type OAuthContext } from '../../lib';
import { defineFeature, method, value } from '../../lib/feature';
import { FEATURES } from '../../lib/features';
import { optionNames } from '../../lib/options';
import { Runtime } from '../../lib/runtime';
import oauthBase from '../../features/oauth_base';
import { basic, buildApp, closeAll } from '../support/build_app';
import { tokenBody } from '../oauth_base/helpers';

afterAll(closeAll);

describe('lib › feature system', () => {
  let db: Knex;
  beforeAll(() => {
    db = knex({ client: 'better-sqlite3', connection: { filename: ':memory:' }, useNullAsDefault: true, pool: { min: 0, max: 1 } });
  });
  afterAll(() => db.destroy());

  const build = (options: Record<string, unknown>) => () => oauth({ db, ...options } as never);

  describe('dependency closure (rodauth depends)', () => {
    it('always enables oauth_base', () => {
      expect(oauth({ db }).features).toEqual(['oauth_base']);
    });

    it('enables dependencies transitively, dependencies first', () => {
      expect(oauth({ db, enable: ['pkce'] }).features).toEqual(['oauth_base', 'authorization_code_grant', 'pkce']);
    });

    it('enables a feature once however often it is named or reached', () => {
      expect(oauth({ db, enable: ['client_credentials_grant', 'client_credentials_grant', 'oauth_base'] }).features).toEqual(['oauth_base', 'client_credentials_grant']);
    });

    it('every registered feature can be enabled at once', () => {
      const all = Object.keys(FEATURES) as (keyof typeof FEATURES)[];
      // jwks needs a signing key.
      const oauthJwtKeys = [{ key: generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ format: 'pem', type: 'pkcs8' }) as string, alg: 'ES256' }];
      expect([...oauth({ db, enable: all, issuer: 'https://auth.example', oauthJwtKeys }).features].sort()).toEqual([...all].sort());
    });
  });

  describe('name collisions', () => {
    const a = defineFeature({ id: 'a', doc: 'A.', values: { shared: value(1, 'A value.') } });
    const b = defineFeature({ id: 'b', doc: 'B.', methods: { shared: method((): number => 2, 'A method.') } });
    const c = defineFeature({ id: 'c', doc: 'C.', routes: [{ name: 'token', method: 'post', handler: async () => undefined }] });

    it('rejects two features declaring the same option name', () => {
      expect(() => optionNames([a, b])).toThrow(new OAuthConfigurationError("oauth(): feature 'b' declares 'shared', already declared by 'a'."));
    });

    it("rejects a route whose generated names collide with another feature's", () => {
      expect(() => new Runtime({ oauth_base: oauthBase, c: c as never }, { db, enable: ['c'] })).toThrow("oauth(): feature 'c' declares 'tokenRoute', already declared by 'oauth_base'.");
    });

    it('rejects a feature declaring an option of oauth() itself', () => {
      const d = defineFeature({ id: 'd', doc: 'D.', values: { issuer: value('x', 'Shadows the issuer option.') } });
      expect(() => optionNames([d])).toThrow(new OAuthConfigurationError("oauth(): feature 'd' declares 'issuer', an option of oauth() itself."));
    });

    it('no two registered features collide', () => {
      expect(() => optionNames(Object.values(FEATURES))).not.toThrow();
    });
  });

  describe('oauth() start-up errors', () => {
    it.each([
      ['an unknown feature, with a hint', { enable: ['refrsh'] }, "oauth(): unknown feature 'refrsh'. Did you mean 'refresh'?"],
      ['an unknown feature without a close match', { enable: ['saml'] }, "oauth(): unknown feature 'saml'."],
      ['a non-string feature', { enable: [42] }, "oauth(): unknown feature '42'."],
      ['enable that is not an array', { enable: 'refresh' }, "oauth(): option 'enable' must be an array of feature ids."],
      ['an unknown option, with a hint', { oauthAccessTokenExpireIn: 60 }, "oauth(): unknown option 'oauthAccessTokenExpireIn'. Did you mean 'oauthAccessTokenExpiresIn'?"],
      ['an unknown option without a close match', { colour: 'blue' }, "oauth(): unknown option 'colour'."],
      ['an option of a feature not enabled', { oauthRefreshTokenExpiresIn: 60 }, "oauth(): option 'oauthRefreshTokenExpiresIn' belongs to feature 'refresh', which is not enabled."],
      ['a route option of a feature not enabled', { enable: ['client_credentials_grant'], revokeRoute: 'r' }, "oauth(): option 'revokeRoute' belongs to feature 'token_revocation', which is not enabled."],
      ['a string where a number belongs', { oauthAccessTokenExpiresIn: '600' }, "oauth(): option 'oauthAccessTokenExpiresIn' must be a number (or a function of the request context), got string."],
      ['NaN where a number belongs', { oauthAccessTokenExpiresIn: Number.NaN }, "oauth(): option 'oauthAccessTokenExpiresIn' must be a number (or a function of the request context), got number."],
      ['a number where a string belongs', { oauthInvalidClientMessage: 1 }, "oauth(): option 'oauthInvalidClientMessage' must be a string (or a function of the request context), got number."],
      ['a string where an array belongs', { oauthDefaultTokenEndpointAuthMethods: 'client_secret_basic' }, "oauth(): option 'oauthDefaultTokenEndpointAuthMethods' must be an array (or a function of the request context), got string."],
      ['null where a string belongs', { oauthTokenType: null }, "oauth(): option 'oauthTokenType' must be a string (or a function of the request context), got null."],
      ['a number where a nullable array belongs', { oauthTokenEndpointAuthMethodsSupported: 3 }, "oauth(): option 'oauthTokenEndpointAuthMethodsSupported' must be an array or null (or a function of the request context), got number."],
      ['an unknown hook, with a hint', { beforeTokn: () => undefined }, "oauth(): unknown option 'beforeTokn'. Did you mean 'beforeToken'?"],
      ['a hook that is not a function', { beforeToken: 'yes' }, "oauth(): hook 'beforeToken' must be a function."],
      ['a method override that is not a function', { secretMatches: true }, "oauth(): option 'secretMatches' overrides an auth method and must be a function."],
      ['a route that is not a string', { tokenRoute: 5 }, "oauth(): option 'tokenRoute' must be a string path segment."],
      ['a table name that is a function', { oauthApplicationsTable: () => 'clients' }, "oauth(): option 'oauthApplicationsTable' must be a constant: table and column names are fixed at start-up (migrations and indexes use them)."],
      ['a column name that is a function', { oauthGrantsTokenHashColumn: () => 't' }, "oauth(): option 'oauthGrantsTokenHashColumn' must be a constant: table and column names are fixed at start-up (migrations and indexes use them)."],
      ['a cache size that is a function', { oauthSecretCacheSize: () => 10 }, "oauth(): option 'oauthSecretCacheSize' must be a constant: the verified-secret cache is sized at start-up."],
      ['an issuer with a trailing slash', { issuer: 'https://auth.example/' }, 'oauth(): option \'issuer\' must not end with a slash (endpoint paths are appended to it) (RFC 8414 §2); got "https://auth.example/".'],
      ['an issuer with a query', { issuer: 'https://auth.example?x=1' }, 'oauth(): option \'issuer\' must have no query or fragment (RFC 8414 §2); got "https://auth.example?x=1".'],
      ['onError that is not a function', { onError: 1 }, "oauth(): option 'onError' must be a function."],
    ])('throws for %s', (_name, options, message) => {
      const run = build(options);
      expect(run).toThrow(OAuthConfigurationError);
      expect(run).toThrow(message);
    });

    it('throws for a missing or wrong db', () => {
      expect(() => oauth({} as never)).toThrow("oauth(): option 'db' must be a knex instance.");
      expect(() => oauth({ db: {} } as never)).toThrow("oauth(): option 'db' must be a knex instance.");
      expect(() => oauth(null as never)).toThrow('oauth(): options must be an object.');
    });
  });

  describe('value overrides', () => {
    it('a constant replaces the default', async () => {
      const t = await buildApp({ enable: ['client_credentials_grant'], oauthAccessTokenExpiresIn: 90, oauthTokenType: 'DPoP-less' });
      const c = await t.createClient();
      const res = await t.agent.post(t.path('/token')).type('form').set('Authorization', basic(c.clientId, c.clientSecret)).send({ grant_type: 'client_credentials' });
      expect(res.body).toEqual({ ...tokenBody('books.read books.write', 90), token_type: 'DPoP-less' });
    });

    it('a function is called with the request context, per request', async () => {
      let calls = 0;
      const t = await buildApp({
        enable: ['client_credentials_grant'],
        oauthAccessTokenExpiresIn: (ctx: OAuthContext) => {
          calls++;
          return Number(ctx.req.headers['x-lifetime'] ?? 30);
        },
      });
      const c = await t.createClient();
      const send = (h?: string) => {
        const r = t.agent.post(t.path('/token')).type('form').set('Authorization', basic(c.clientId, c.clientSecret));
        return (h ? r.set('X-Lifetime', h) : r).send({ grant_type: 'client_credentials' });
      };
      expect((await send('45')).body.expires_in).toBe(45);
      expect((await send()).body.expires_in).toBe(30);
      expect(calls).toBeGreaterThanOrEqual(2);
    });
  });

  it('a value function returning the wrong type is a generic server_error, logged with the option name', async () => {
    const t = await buildApp({ enable: ['client_credentials_grant'], oauthAccessTokenExpiresIn: () => '600' });
    const c = await t.createClient();
    const res = await t.agent.post(t.path('/token')).type('form').set('Authorization', basic(c.clientId, c.clientSecret)).send({ grant_type: 'client_credentials' });
    expect(res.status).toBe(500);
    expect(res.body).toEqual({ error: 'server_error', error_description: 'An unexpected error occurred' });
    expect(t.logger.lines.some((l) => l.includes("option 'oauthAccessTokenExpiresIn' must be a number"))).toBe(true);
    expect(Number(((await t.db('oauth_grants').count({ n: '*' })) as { n: unknown }[])[0]!.n)).toBe(0);
  });

  describe('method overrides', () => {
    it('replace the default and reach it through ctx.super', async () => {
      const t = await buildApp({
        enable: ['client_credentials_grant'],
        generateToken: (ctx: OAuthContext) => `pfx.${ctx.super.generateToken()}`,
      });
      const c = await t.createClient();
      const res = await t.agent.post(t.path('/token')).type('form').set('Authorization', basic(c.clientId, c.clientSecret)).send({ grant_type: 'client_credentials' });
      expect(res.status).toBe(200);
      expect(res.body.access_token).toMatch(/^pfx\.[A-Za-z0-9_-]{43}$/);
      const api = await t.agent.get('/api/me').set('Authorization', `Bearer ${res.body.access_token}`);
      expect(api.status).toBe(200);
    });

    it('an overridden now() moves the clock of every check', async () => {
      let offset = 0;
      const t = await buildApp({ enable: ['client_credentials_grant'], now: () => new Date(Date.now() + offset) });
      const c = await t.createClient();
      const res = await t.agent.post(t.path('/token')).type('form').set('Authorization', basic(c.clientId, c.clientSecret)).send({ grant_type: 'client_credentials' });
      expect((await t.agent.get('/api/me').set('Authorization', `Bearer ${res.body.access_token}`)).status).toBe(200);
      offset = 3601 * 1000;
      expect((await t.agent.get('/api/me').set('Authorization', `Bearer ${res.body.access_token}`)).status).toBe(401);
    });
  });

  describe('routes', () => {
    it('tokenRoute renames the token endpoint; the old path is gone', async () => {
      const t = await buildApp({ enable: ['client_credentials_grant'], tokenRoute: '/oauth2/token' });
      const c = await t.createClient();
      const res = await t.agent.post(t.path('/oauth2/token')).type('form').set('Authorization', basic(c.clientId, c.clientSecret)).send({ grant_type: 'client_credentials' });
      expect(res.status).toBe(200);
      expect(res.body).toEqual(tokenBody('books.read books.write'));
      const old = await t.agent.post(t.path('/token')).type('form').set('Authorization', basic(c.clientId, c.clientSecret)).send({ grant_type: 'client_credentials' });
      expect(old.status).toBe(404);
    });

    it('before<Route>Route runs before the handler, and its OAuthError is the response', async () => {
      const seen: string[] = [];
      const t = await buildApp({
        enable: ['client_credentials_grant'],
        beforeOauthServerMetadataRoute: (ctx: OAuthContext) => {
          seen.push(ctx.req.path);
          if (ctx.req.headers['x-deny']) throw new OAuthError('access_denied', 'No metadata for you');
        },
      });
      const ok = await t.agent.get(t.path('/.well-known/oauth-authorization-server'));
      expect(ok.status).toBe(200);
      const denied = await t.agent.get(t.path('/.well-known/oauth-authorization-server')).set('X-Deny', '1');
      expect(denied.status).toBe(400);
      expect(denied.headers['cache-control']).toBe('no-store');
      expect(denied.body).toEqual({ error: 'access_denied', error_description: 'No metadata for you' });
      expect(seen).toEqual(['/.well-known/oauth-authorization-server', '/.well-known/oauth-authorization-server']);
    });

    it('the router leaves the host app alone: no body parsing or headers on other routes', async () => {
      const t = await buildApp({ enable: ['client_credentials_grant'] }, {
        setup: (app) => {
          app.post('/host', (req, res) => void res.json({ body: req.body ?? null }));
        },
      });
      const res = await t.agent.post('/host').type('form').send({ a: '1' });
      expect(res.status).toBe(200);
      expect(res.body).toEqual({ body: null });
      expect(res.headers['cache-control']).toBeUndefined();
    });
  });
});
