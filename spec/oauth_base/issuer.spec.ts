import { afterAll, afterEach, describe, expect, it } from '@jest/globals';
import express from 'express';
import request from 'supertest';
import { OAuthConfigurationError, oauth } from '../../lib';
import { buildApp, closeAll, MOUNT, RecordingLogger } from '../support/build_app';
import { createTestDb } from '../support/db';

afterAll(closeAll);

const WELL_KNOWN = '/.well-known/oauth-authorization-server';

describe('oauth_base › issuer (design.md §4.12: never from an untrusted header)', () => {
  const env = process.env.NODE_ENV;
  afterEach(() => {
    process.env.NODE_ENV = env;
  });

  it('refuses to start without an issuer under NODE_ENV=production', async () => {
    const { db, destroy } = await createTestDb();
    try {
      process.env.NODE_ENV = 'production';
      expect(() => oauth({ db, logger: new RecordingLogger() })).toThrow(OAuthConfigurationError);
      expect(() => oauth({ db, logger: new RecordingLogger() })).toThrow(/option 'issuer' is required with NODE_ENV=production/);
      expect(oauth({ db, issuer: 'https://auth.example.com' }).features).toEqual(['oauth_base']);
    } finally {
      await destroy();
    }
  });

  it('warns once at start-up when the issuer is derived, and not when it is set', async () => {
    const { db, destroy } = await createTestDb();
    try {
      const derived = new RecordingLogger();
      oauth({ db, logger: derived });
      expect(derived.lines).toEqual([expect.stringMatching(/^warn oauth\(\): no 'issuer' option: the issuer is derived from each request's Host header/)]);
      const configured = new RecordingLogger();
      oauth({ db, logger: configured, issuer: 'https://auth.example.com' });
      expect(configured.lines).toEqual([]);
    } finally {
      await destroy();
    }
  });

  it.each([
    ['http://auth.example', /must use https/],
    ['https://auth.example/', /must not end with a slash/],
    ['https://auth.example?tenant=1', /no query or fragment/],
    ['https://auth.example#x', /no query or fragment/],
    ['https://user:pw@auth.example', /no user name or password/],
    ['ftp://auth.example', /must use https/],
    ['auth.example', /must be an absolute URL/],
    ['/oauth', /must be an absolute URL/],
  ])('rejects the issuer %s at start-up (RFC 8414 §2)', async (issuer, message) => {
    const { db, destroy } = await createTestDb();
    try {
      expect(() => oauth({ db, issuer })).toThrow(OAuthConfigurationError);
      expect(() => oauth({ db, issuer })).toThrow(message);
    } finally {
      await destroy();
    }
  });

  it.each(['https://auth.example.com', 'https://auth.example.com/tenant', 'http://localhost:3000', 'http://127.0.0.1:8080/oauth', 'http://[::1]:3000'])(
    'accepts the issuer %s',
    async (issuer) => {
      const { db, destroy } = await createTestDb();
      try {
        expect(oauth({ db, issuer }).features).toEqual(['oauth_base']);
      } finally {
        await destroy();
      }
    },
  );

  it('sends a configured issuer whatever the Host header says, with the cacheable metadata headers', async () => {
    const t = await buildApp({ enable: ['client_credentials_grant'], issuer: 'https://auth.example.com' });
    const res = await t.agent.get(t.path(WELL_KNOWN)).set('Host', 'evil.example');
    expect(res.status).toBe(200);
    expect(res.headers['cache-control']).toBe('public, max-age=3600');
    expect(res.headers.vary).toBeUndefined();
    expect(res.body).toMatchObject({ issuer: 'https://auth.example.com', token_endpoint: 'https://auth.example.com/token' });
  });

  it('marks every response built from a derived issuer no-store and Vary: Host, so a shared cache cannot serve a poisoned document', async () => {
    const t = await buildApp({ enable: ['client_credentials_grant'] });
    const res = await t.agent.get(t.path(WELL_KNOWN)).set('Host', 'evil.example');
    expect(res.status).toBe(200);
    expect(res.headers['cache-control']).toBe('no-store');
    expect(res.headers.vary).toBe('Host');
    expect(res.body.issuer).toBe(`http://evil.example${MOUNT}`);
    const token = await t.agent.post(t.path('/token')).set('Host', 'evil.example').type('form').send({ grant_type: 'client_credentials' });
    expect(token.status).toBe(401);
    expect(token.headers).toMatchObject({ 'cache-control': 'no-store', vary: 'Host' });
  });

  it.each(['evil example', 'evil.example:99999999', 'evil.example:65536', '[1.2.3.4]', '[:::::]', 'a/b', 'ev"il.example', '@evil.example', 'x'.repeat(300)])(
    'refuses a Host header that is not a host name (%s) with 400 when the issuer is derived',
    async (host) => {
      const t = await buildApp({ enable: ['client_credentials_grant'] });
      const res = await t.agent.get(t.path(WELL_KNOWN)).set('Host', host);
      expect(res.status).toBe(400);
      expect(res.headers).toMatchObject({ 'cache-control': 'no-store', pragma: 'no-cache', vary: 'Host' });
      expect(res.body).toEqual({ error: 'invalid_request', error_description: 'Invalid Host header' });
    },
  );

  it('serves any Host when the issuer is configured (it is not read)', async () => {
    const t = await buildApp({ enable: ['client_credentials_grant'], issuer: 'https://auth.example.com' });
    const res = await t.agent.get(t.path(WELL_KNOWN)).set('Host', 'evil example');
    expect(res.status).toBe(200);
    expect(res.body.issuer).toBe('https://auth.example.com');
  });

  it("reads X-Forwarded-Host and X-Forwarded-Proto only through Express's trust proxy", async () => {
    const plain = await buildApp({ enable: ['client_credentials_grant'] });
    const ignored = await plain.agent.get(plain.path(WELL_KNOWN)).set('Host', 'auth.example').set('X-Forwarded-Host', 'evil.example').set('X-Forwarded-Proto', 'https');
    expect(ignored.body.issuer).toBe(`http://auth.example${MOUNT}`);

    const proxied = await buildApp({ enable: ['client_credentials_grant'] }, { setup: (app) => app.set('trust proxy', 'loopback') });
    const res = await proxied.agent.get(proxied.path(WELL_KNOWN)).set('Host', 'internal:8080').set('X-Forwarded-Host', 'auth.example, proxy.internal').set('X-Forwarded-Proto', 'https');
    expect(res.status).toBe(200);
    expect(res.body.issuer).toBe(`https://auth.example${MOUNT}`);
    expect(res.headers.vary).toBe('Host, X-Forwarded-Host, X-Forwarded-Proto');
    expect(res.headers['cache-control']).toBe('no-store');
  });

  it('accepts a bracketed IPv6 host and a port when the issuer is derived', async () => {
    const t = await buildApp({ enable: ['client_credentials_grant'] });
    const res = await t.agent.get(t.path(WELL_KNOWN)).set('Host', '[::1]:8443');
    expect(res.status).toBe(200);
    expect(res.body.issuer).toBe(`http://[::1]:8443${MOUNT}`);
  });

  it('refuses a trusted proxy\'s X-Forwarded-Proto other than http or https with 400', async () => {
    const proxied = await buildApp({ enable: ['client_credentials_grant'] }, { setup: (app) => app.set('trust proxy', 'loopback') });
    const res = await proxied.agent.get(proxied.path(WELL_KNOWN)).set('Host', 'auth.example').set('X-Forwarded-Proto', 'javascript');
    expect(res.status).toBe(400);
    expect(res.body).toEqual({ error: 'invalid_request', error_description: 'Invalid Host header' });
  });

  it('refuses to enable jwt_bearer without an issuer: assertion audiences are never taken from Host', async () => {
    const { db, destroy } = await createTestDb();
    try {
      expect(() => oauth({ db, enable: ['jwt_bearer'], logger: new RecordingLogger() })).toThrow(/jwt_bearer needs the 'issuer' option/);
    } finally {
      await destroy();
    }
  });

  it('leaves host routes alone: a bad Host is refused only on OAuth routes', async () => {
    const t = await buildApp({ enable: ['client_credentials_grant'] });
    const app = express();
    app.use(t.auth);
    app.get('/hello', (_req, res) => res.send('hi'));
    const res = await request(app).get('/hello').set('Host', 'evil example');
    expect(res.status).toBe(200);
    expect(res.text).toBe('hi');
  });
});
