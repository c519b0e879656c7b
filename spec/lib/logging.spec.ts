/**
 * Issue 10 item 8: one log line per error, never the SQL or its bindings, and repeats of the
 * same server error rate-limited with a count, while onError still sees every error.
 */
import { afterAll, afterEach, describe, expect, it, jest } from '@jest/globals';
import express from 'express';
import knex from 'knex';
import request from 'supertest';
import { oauth, OAuthError } from '../../lib';
import { defaultLogger, errorMeta, RepeatLimiter, repeatKey } from '../../lib/log';
import { GrantStore } from '../../lib/store/grants';
import { basic, buildApp, closeAll } from '../support/build_app';
import { tokenRequest } from '../oauth_base/helpers';

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
