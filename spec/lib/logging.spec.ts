/**
 * Issue 10 item 8: one log line per error, never the SQL or its bindings, and repeats of the
 * same server error rate-limited with a count, while onError still sees every error.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it, jest } from '@jest/globals';
import express from 'express';
import knex from 'knex';
import request from 'supertest';
import { oauth, OAuthError } from '../../lib';
import { defaultLogger, errorMeta, loggableClientId, RepeatLimiter, repeatKey } from '../../lib/log';
import { OAuthConfigurationError } from '../../lib/options';
import { GrantStore } from '../../lib/store/grants';
import { basic, buildApp, closeAll, type TestApp } from '../support/build_app';
import { tokenRequest } from '../oauth_base/helpers';
import { claims, clientAssertionForm, Clock, ISSUER, keyPair, signWith, type KeyPair } from '../jwt_bearer/support';

afterAll(closeAll);
afterEach(() => void jest.restoreAllMocks());

const HASH = 'dG9rZW4taGFzaC10aGF0LW11c3Qtbm90LWJlLWxvZ2dlZA';
const SQL = `insert into "oauth_grants" ("token", "oauth_application_id", "scopes") values ('${HASH}', 1, 'books.read') returning "id"`;

/** pg's unique violation as knex hands it on: the SQL with its bindings prefixed, the value in `detail`. */
function uniqueViolation(): Error {
  return Object.assign(new Error(`${SQL} - duplicate key value violates unique constraint "oauth_grants_token_unique"`), {
    code: '23505',
    severity: 'ERROR',
    detail: `Key (token)=(${HASH}) already exists.`,
    routine: '_bt_check_unique',
  });
}
const T0 = new Date('2030-01-01T00:00:00.000Z');

describe('lib › logging', () => {
  it('logs a database error with the driver’s own message only: no SQL, no bindings, no detail', () => {
    const meta = errorMeta(new OAuthError('server_error', 'An unexpected error occurred', { reason: 'internal_error', cause: uniqueViolation() }), '/token', []);
    expect(meta).toEqual({
      code: 'server_error',
      reason: 'internal_error',
      description: 'An unexpected error occurred',
      status: 500,
      path: '/token',
      cause: { name: 'Error', code: '23505', message: 'duplicate key value violates unique constraint "oauth_grants_token_unique"', at: expect.stringMatching(/logging\.spec\.ts:\d+:\d+/) },
    });
  });

  it('keeps only what follows the last " - " of a message knex prefixed with SQL (bindings may hold one), and nothing without one', () => {
    const sneaky = new Error(`select * from "oauth_grants" where "token" = 'a - ${HASH}' - Connection terminated unexpectedly`);
    const cause = errorMeta(new OAuthError('temporarily_unavailable', 'x', { cause: sneaky }), '/t', []).cause as Record<string, unknown>;
    expect(cause.message).toBe('Connection terminated unexpectedly');
    const noSeparator = new Error(`update "oauth_grants" set "revoked_at" = 1 where "token" = '${HASH}'`);
    expect((errorMeta(new OAuthError('server_error', 'x', { cause: noSeparator }), '/t', []).cause as Record<string, unknown>).message).toBeUndefined();
  });

  it('token endpoint: a failed insert is one line with code, reason, status, path, cause name and code, and no SQL or hash', async () => {
    const t = await buildApp({ enable: ['client_credentials_grant'] });
    const c = await t.createClient();
    jest.spyOn(GrantStore.prototype, 'insert').mockRejectedValue(uniqueViolation());
    const res = await tokenRequest(t, c);
    expect(res.status).toBe(500);
    const errors = t.logger.lines.filter((l) => l.startsWith('error'));
    expect(errors).toHaveLength(1);
    const [line] = errors as [string];
    expect(line).not.toContain(HASH);
    expect(line).not.toMatch(/insert into|oauth_application_id|Key \(token\)/);
    expect(line).not.toContain('\n');
    const meta = JSON.parse(line.slice(line.indexOf('{'))) as Record<string, unknown>;
    expect(meta).toEqual({
      code: 'server_error',
      reason: 'internal_error',
      client_id: c.clientId,
      description: 'An unexpected error occurred',
      status: 500,
      path: t.path('/token'),
      cause: { name: 'Error', code: '23505', message: 'duplicate key value violates unique constraint "oauth_grants_token_unique"', at: expect.any(String) },
    });
  });

  it('100 identical server errors: one line, then one per interval with the count of the repeats left out; onError gets all 100', async () => {
    let now = T0;
    const seen: string[] = [];
    const t = await buildApp({ enable: ['client_credentials_grant'], now: () => now, onError: (_ctx: unknown, err: OAuthError) => void seen.push(err.reason!) });
    const c = await t.createClient();
    const tooMany = () => Object.assign(new Error(`${SQL} - sorry, too many clients already`), { code: '53300', severity: 'FATAL' });
    jest.spyOn(GrantStore.prototype, 'insert').mockImplementation(() => Promise.reject(tooMany()));
    for (let i = 0; i < 100; i++) expect((await tokenRequest(t, c)).status).toBe(503);
    const errorLines = () => t.logger.lines.filter((l) => l.startsWith('error'));
    expect(errorLines()).toEqual([expect.stringMatching(/^error temporarily_unavailable \(database_unavailable\) \{/)]);

    now = new Date(T0.getTime() + 10_000);
    expect((await tokenRequest(t, c)).status).toBe(503);
    expect(errorLines()).toHaveLength(2);
    expect(errorLines()[1]).toMatch(/^error temporarily_unavailable \(database_unavailable\) \(99 more since 2030-01-01T00:00:00\.000Z\) \{.*"repeats":99/);
    expect(t.logger.lines.join('\n')).not.toContain(HASH);
    await new Promise((r) => setImmediate(r));
    expect(seen).toEqual(Array(101).fill('database_unavailable'));
  });

  it('rate-limits by code, reason and cause: another cause is logged at once', () => {
    const key = (code: string) => {
      const err = new OAuthError('temporarily_unavailable', 'x', { reason: 'database_unavailable', cause: Object.assign(new Error(`${SQL} - ${code}`), { code }) });
      return repeatKey(err, errorMeta(err, '/token', []));
    };
    expect(key('53300')).toBe(key('53300'));
    expect(key('53300')).not.toBe(key('57P01'));
    const limiter = new RepeatLimiter(10_000);
    expect(limiter.admit('a', 0)).toEqual({ log: true, suppressed: 0, since: 0 });
    expect(limiter.admit('a', 1)).toEqual({ log: false });
    expect(limiter.admit('b', 2)).toEqual({ log: true, suppressed: 0, since: 2 });
    expect(limiter.admit('a', 9_999)).toEqual({ log: false });
    expect(limiter.admit('a', 10_000)).toEqual({ log: true, suppressed: 2, since: 0 });
    expect(limiter.admit('a', 25_000)).toEqual({ log: true, suppressed: 0, since: 10_000 });
  });

  it('forgets the least recently logged keys beyond its bound', () => {
    const limiter = new RepeatLimiter(10_000, 2);
    limiter.admit('a', 0);
    limiter.admit('b', 0);
    limiter.admit('c', 0);
    expect(limiter.admit('a', 1)).toEqual({ log: true, suppressed: 0, since: 1 });
    expect(limiter.admit('c', 1)).toEqual({ log: false });
  });

  it('the default logger writes each error as one string on one line', async () => {
    const spy = jest.spyOn(console, 'error').mockImplementation(() => undefined);
    jest.spyOn(console, 'warn').mockImplementation(() => undefined);
    const db = knex({ client: 'better-sqlite3', connection: { filename: ':memory:' }, useNullAsDefault: true, pool: { min: 1, max: 1 } });
    try {
      const auth = oauth({ db, enable: ['client_credentials_grant'], oauthClientSecretHashCost: 4 } as never);
      await auth.migrate();
      const created = await auth.createApplication({ name: 'c', scopes: ['books.read'], grantTypes: ['client_credentials'] } as never);
      jest.spyOn(GrantStore.prototype, 'insert').mockRejectedValue(Object.assign(new Error(`${SQL} - database or disk is full`), { code: 'SQLITE_FULL' }));
      const res = await request(express().use(auth)).post('/token').type('form').set('Authorization', basic(created.clientId, created.clientSecret!)).send({ grant_type: 'client_credentials' });
      expect(res.status).toBe(503);
      expect(spy).toHaveBeenCalledTimes(1);
      const args = spy.mock.calls[0]!;
      expect(args).toEqual([expect.any(String)]);
      const line = args[0] as string;
      expect(line).not.toContain('\n');
      expect(line).not.toContain(HASH);
      expect(line).toMatch(/^\[express-oauth-features\] temporarily_unavailable \(database_unavailable\) \{"code":"temporarily_unavailable",.*"cause":\{"name":"Error","code":"SQLITE_FULL","message":"database or disk is full","at":"[^"]+"\}\}$/);
    } finally {
      await db.destroy();
    }
  });

  it('the default logger keeps a multi-line message and a cyclic meta on one line', () => {
    const spy = jest.spyOn(console, 'error').mockImplementation(() => undefined);
    const cyclic: Record<string, unknown> = {};
    cyclic.self = cyclic;
    defaultLogger.error('two\nlines', { a: 'x\ny' });
    defaultLogger.error('cyclic', cyclic);
    expect(spy.mock.calls).toEqual([['[express-oauth-features] two lines {"a":"x\\ny"}'], ['[express-oauth-features] cyclic']]);
  });
});

/** A fresh in-memory SQLite database for an app built with the default (console) logger. */
function memoryDb() {
  return knex({ client: 'better-sqlite3', connection: { filename: ':memory:' }, useNullAsDefault: true, pool: { min: 1, max: 1 } });
}

const INVALID_CLIENT = { error: 'invalid_client', error_description: 'Invalid client' };

/** The metadata of a recorded log line (`<level> <message> <json>`). */
function metaOf(line: string): Record<string, unknown> {
  return JSON.parse(line.slice(line.indexOf(' {') + 1)) as Record<string, unknown>;
}

describe('lib › logging › why a client was refused (issue 11 item 5)', () => {
  let rsa: KeyPair;
  beforeAll(async () => {
    rsa = await keyPair('RS256');
  });

  type Refusal = {
    /** The presented client id the log must name (null: none presented). */
    clientId: string | null;
    reason: string;
    /** Secrets the request carried, which no line may hold. */
    secrets: string[];
    /** A cause code the line carries (jose's), when there is one. */
    cause?: string;
    retryAfter?: string;
  };
  type Case = [string, (t: TestApp, clock: Clock) => Promise<{ res: request.Response } & Refusal>];

  const post = (t: TestApp, form: Record<string, string>, auth?: string) => {
    const r = request(t.app).post(t.path('/token')).type('form');
    if (auth) r.set('Authorization', auth);
    return r.send({ grant_type: 'client_credentials', ...form });
  };

  const cases: Case[] = [
    ['an unknown client id (Basic)', async (t) => {
      const res = await post(t, {}, basic('no-such-client', 'guessed-secret-1'));
      return { res, clientId: 'no-such-client', reason: 'unknown_client', secrets: ['guessed-secret-1'] };
    }],
    ['an unknown client id (client_secret_post)', async (t) => {
      const res = await post(t, { client_id: 'ghost-client', client_secret: 'guessed-secret-2' });
      return { res, clientId: 'ghost-client', reason: 'unknown_client', secrets: ['guessed-secret-2'] };
    }],
    ['a wrong secret', async (t) => {
      const c = await t.createClient();
      const res = await post(t, {}, basic(c.clientId, 'wrong-secret-3'));
      return { res, clientId: c.clientId, reason: 'bad_client_secret', secrets: ['wrong-secret-3', c.clientSecret] };
    }],
    ['a method the client is not registered for', async (t) => {
      const c = await t.createClient({ tokenEndpointAuthMethod: 'client_secret_post' });
      const res = await post(t, {}, basic(c.clientId, c.clientSecret));
      return { res, clientId: c.clientId, reason: 'auth_method_not_allowed', secrets: [c.clientSecret] };
    }],
    ['an expired client assertion (private_key_jwt)', async (t, clock) => {
      const c = await t.createClient({ tokenEndpointAuthMethod: 'private_key_jwt', jwks: { keys: [rsa.publicJwk] } });
      const assertion = await signWith(rsa, claims(clock, c.clientId, { aud: ISSUER, iat: clock.seconds - 600, exp: clock.seconds - 120 }));
      const res = await post(t, clientAssertionForm(assertion));
      return { res, clientId: c.clientId, reason: 'invalid_assertion', cause: 'ERR_JWT_EXPIRED', secrets: [assertion] };
    }],
    ['a client id locked out after failed secrets', async (t) => {
      const c = await t.createClient();
      expect((await post(t, {}, basic(c.clientId, 'wrong-secret-4'))).status).toBe(401);
      const res = await post(t, {}, basic(c.clientId, 'wrong-secret-5'));
      return { res, clientId: c.clientId, reason: 'client_locked_out', retryAfter: '60', secrets: ['wrong-secret-4', 'wrong-secret-5', c.clientSecret] };
    }],
    ['no credentials at all', async (t) => {
      const res = await post(t, {});
      return { res, clientId: null, reason: 'no_client_auth', secrets: [] };
    }],
  ];

  it.each(cases)('%s: one invalid_client body on the wire; the info line has the reason and the client id, never the secret', async (_name, run) => {
    const clock = new Clock();
    const t = await buildApp({ enable: ['client_credentials_grant', 'jwt_bearer'], issuer: ISSUER, now: clock.now, oauthClientAuthFailureLimit: 1 });
    const { res, clientId, reason, secrets, cause, retryAfter } = await run(t, clock);
    expect(res.status).toBe(401);
    expect(res.headers).toMatchObject({ 'cache-control': 'no-store', pragma: 'no-cache', 'www-authenticate': 'Basic realm="oauth"' });
    expect(res.headers['retry-after']).toBe(retryAfter);
    expect(res.body).toEqual(INVALID_CLIENT);
    const line = t.logger.lines[t.logger.lines.length - 1]!;
    expect(line.startsWith(`info invalid_client (${reason}) {`)).toBe(true);
    const meta = metaOf(line);
    expect(meta).toMatchObject({ code: 'invalid_client', reason, status: 401, path: t.path('/token') });
    if (clientId === null) expect(meta).not.toHaveProperty('client_id');
    else expect(meta.client_id).toBe(clientId);
    if (cause) expect(meta.cause).toMatchObject({ code: cause });
    t.logger.assertNoSecrets(secrets);
  });

  it('logs the client id without control or format characters, cut at 128 characters', async () => {
    const t = await buildApp({ enable: ['client_credentials_grant'] });
    const forged = `evil\u001b[31m\r\n[express-oauth-features] invalid_client (fake)\u202e${'x'.repeat(300)}`;
    const res = await request(t.app).post(t.path('/token')).type('form').set('Authorization', basic(forged, 'secret-6-never-logged')).send({ grant_type: 'client_credentials' });
    expect(res.status).toBe(401);
    expect(res.body).toEqual(INVALID_CLIENT);
    const id = metaOf(t.logger.lines[t.logger.lines.length - 1]!).client_id as string;
    expect(id).toBe(`evil[31m[express-oauth-features] invalid_client (fake)${'x'.repeat(127 - 'evil[31m[express-oauth-features] invalid_client (fake)'.length)}…`);
    expect(Array.from(id)).toHaveLength(128);
    t.logger.assertNoSecrets(['secret-6-never-logged']);
  });

  it('names the authenticated client on later errors, and redacts a secret sent as a client id', async () => {
    const t = await buildApp({ enable: ['client_credentials_grant'] });
    const c = await t.createClient();
    const res = await tokenRequest(t, c, { grant_type: 'client_credentials', scope: 'admin' });
    expect(res.status).toBe(400);
    expect(metaOf(t.logger.lines[t.logger.lines.length - 1]!)).toMatchObject({ code: 'invalid_scope', client_id: c.clientId });
    expect(loggableClientId('s3cret-value', ['s3cret-value'])).toBe('[REDACTED]');
    expect(loggableClientId('\u0000\u200b')).toBeUndefined();
  });

  describe('oauthLogLevel and the default (console) logger', () => {
    async function refuseOnce(options: Record<string, unknown>) {
      const info = jest.spyOn(console, 'info').mockImplementation(() => undefined);
      const warn = jest.spyOn(console, 'warn').mockImplementation(() => undefined);
      const error = jest.spyOn(console, 'error').mockImplementation(() => undefined);
      const db = memoryDb();
      try {
        const auth = oauth({ db, enable: ['client_credentials_grant'], oauthClientSecretHashCost: 4, ...options } as never);
        await auth.migrate();
        const created = await auth.createApplication({ name: 'c', scopes: ['books.read'], grantTypes: ['client_credentials'] } as never);
        const res = await request(express().use(auth)).post('/token').type('form').set('Authorization', basic(created.clientId, 'wrong-secret-7')).send({ grant_type: 'client_credentials' });
        expect(res.status).toBe(401);
        expect(res.body).toEqual(INVALID_CLIENT);
        return { clientId: created.clientId, info: info.mock.calls, warn: warn.mock.calls, error: error.mock.calls };
      } finally {
        await db.destroy();
      }
    }

    it("by default ('warn') prints the start-up warning and nothing for a refused client, so a flood stays quiet", async () => {
      const out = await refuseOnce({});
      expect(out.info).toEqual([]);
      expect(out.error).toEqual([]);
      expect(out.warn).toEqual([[expect.stringMatching(/^\[express-oauth-features\] oauth\(\): no 'issuer' option/)]]);
    });

    it("with oauthLogLevel 'info' prints each refusal on one console.info line with its reason and client id, never the secret", async () => {
      const out = await refuseOnce({ oauthLogLevel: 'info', issuer: 'https://as.example' });
      expect(out.warn).toEqual([]);
      expect(out.error).toEqual([]);
      expect(out.info).toHaveLength(1);
      const [line] = out.info[0] as [string];
      expect(out.info[0]).toHaveLength(1);
      expect(line).toBe(
        `[express-oauth-features] invalid_client (bad_client_secret) {"code":"invalid_client","reason":"bad_client_secret","client_id":"${out.clientId}","description":"Invalid client","status":401,"path":"/token"}`,
      );
      expect(line).not.toContain('wrong-secret-7');
    });

    it("with oauthLogLevel 'error' prints neither warnings nor refusals", async () => {
      const out = await refuseOnce({ oauthLogLevel: 'error' });
      expect(out).toMatchObject({ info: [], warn: [], error: [] });
    });

    it("leaves a host's logger its own levels: it gets the info line whatever oauthLogLevel says", async () => {
      const lines: string[] = [];
      const logger = { error: () => undefined, warn: () => undefined, info: (m: string, meta?: Record<string, unknown>) => void lines.push(`${m} ${JSON.stringify(meta)}`) };
      const out = await refuseOnce({ logger, oauthLogLevel: 'error', issuer: 'https://as.example' });
      expect(out).toMatchObject({ info: [], warn: [], error: [] });
      expect(lines).toEqual([expect.stringMatching(/^invalid_client \(bad_client_secret\) \{.*"client_id":"/)]);
    });

    it.each([['debug'], ['INFO'], [3]])('refuses oauthLogLevel %p at start-up', (level) => {
      const db = memoryDb();
      try {
        expect(() => oauth({ db, oauthLogLevel: level } as never)).toThrow(new OAuthConfigurationError(`oauth(): option 'oauthLogLevel' must be one of 'error', 'warn', 'info' (a constant); got ${JSON.stringify(level)}.`));
      } finally {
        void db.destroy();
      }
    });

    it('refuses a function as oauthLogLevel: the logger is built once, at start-up', () => {
      const db = memoryDb();
      try {
        expect(() => oauth({ db, oauthLogLevel: () => 'info' } as never)).toThrow("option 'oauthLogLevel' must be one of 'error', 'warn', 'info' (a constant); got a function.");
      } finally {
        void db.destroy();
      }
    });
  });
});
