import { describe, expect, it } from '@jest/globals';
import { OAuthError, statusFor } from '../../lib';
import { asciiDescription, toOAuthError } from '../../lib/errors';

describe('lib › errors', () => {
  it('takes the status from one table (RFC 6749 §5.2, RFC 6750 §3.1)', () => {
    expect([statusFor('invalid_client'), statusFor('invalid_token'), statusFor('insufficient_scope'), statusFor('invalid_grant')]).toEqual([401, 401, 403, 400]);
  });

  it('turns an unknown exception into a generic server_error that keeps the cause for the logs only', () => {
    const cause = new Error('SELECT secret FROM somewhere');
    const err = toOAuthError(cause);
    expect(err).toBeInstanceOf(OAuthError);
    expect(err.toJSON()).toEqual({ error: 'server_error', error_description: 'An unexpected error occurred' });
    expect(err.status).toBe(500);
    expect(err.cause).toBe(cause);
  });

  it('answers temporarily_unavailable (503) when the database cannot be reached', () => {
    const refused = Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:5432'), { code: 'ECONNREFUSED' });
    const destroyed = new Error('Unable to acquire a connection');
    const timeout = Object.assign(new Error('Knex: Timeout acquiring a connection'), { name: 'KnexTimeoutError' });
    for (const e of [refused, destroyed, timeout]) {
      const err = toOAuthError(e);
      expect(err.status).toBe(503);
      expect(err.toJSON()).toEqual({ error: 'temporarily_unavailable', error_description: 'The service is temporarily unavailable' });
    }
  });
});

describe('lib › errors › storage failures are temporarily_unavailable (issue 10 item 4)', () => {
  const coded = (code: string, message = `failed: ${code}`) => Object.assign(new Error(message), { code });
  const expect503 = (e: unknown) => {
    const err = toOAuthError(e);
    expect({ status: err.status, reason: err.reason, body: err.toJSON() }).toEqual({
      status: 503,
      reason: 'database_unavailable',
      body: { error: 'temporarily_unavailable', error_description: 'The service is temporarily unavailable' },
    });
    expect(err.cause).toBe(e);
  };

  it.each([
    'SQLITE_BUSY', 'SQLITE_BUSY_SNAPSHOT', 'SQLITE_BUSY_RECOVERY', 'SQLITE_BUSY_TIMEOUT', 'SQLITE_LOCKED', 'SQLITE_LOCKED_SHAREDCACHE',
    'SQLITE_FULL', 'SQLITE_ABORT_ROLLBACK', 'SQLITE_IOERR', 'SQLITE_IOERR_WRITE', 'SQLITE_IOERR_FSYNC', 'SQLITE_IOERR_NOMEM', 'SQLITE_CANTOPEN', 'SQLITE_CANTOPEN_ISDIR',
    'SQLITE_NOMEM', 'SQLITE_PROTOCOL', 'SQLITE_READONLY_RECOVERY', 'SQLITE_READONLY_CANTLOCK', 'SQLITE_READONLY_ROLLBACK', 'SQLITE_READONLY_CANTINIT',
  ])('SQLite %s → 503', (code) => expect503(coded(code)));

  it.each([
    '08000', '08001', '08003', '08004', '08006', '08P01', '53000', '53100', '53200', '53300', '53400',
    '57P01', '57P02', '57P03', '57P04', '57P05', '57014', '40001', '40P01', '55P03', '58030', '25P03',
  ])('PostgreSQL SQLSTATE %s → 503', (code) => expect503(coded(code)));

  it.each(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH', 'ECONNABORTED', 'EMFILE'])(
    'network error %s → 503',
    (code) => expect503(coded(code)),
  );

  it.each([
    ['a constraint violation', 'SQLITE_CONSTRAINT_UNIQUE'],
    ['a corrupt file', 'SQLITE_CORRUPT'],
    ['a syntax or schema error', 'SQLITE_ERROR'],
    ['a database opened read-only', 'SQLITE_READONLY'],
    ['a database file replaced under the connection', 'SQLITE_READONLY_DBMOVED'],
    ['a PostgreSQL unique violation', '23505'],
    ['an undefined PostgreSQL table', '42P01'],
    ['a PostgreSQL syntax error', '42601'],
    ['a PostgreSQL data exception', '22001'],
  ])('%s (%s) stays a 500 server_error: retrying cannot help', (_what, code) => {
    const err = toOAuthError(coded(code));
    expect([err.status, err.code, err.reason]).toEqual([500, 'server_error', 'internal_error']);
  });

  it('reads the driver code through what knex, pg-pool and dual-stack connect wrap it in', () => {
    // knex prefixes the SQL to the driver's message and keeps the driver's error (and code).
    expect503(Object.assign(new Error(`insert into "oauth_grants" ("token") values ('abc') - sorry, too many clients already`), { code: '53300', severity: 'FATAL' }));
    expect503(new Error('a wrapper', { cause: coded('SQLITE_FULL', 'database or disk is full') }));
    expect503(Object.assign(new Error('Migration failed'), { originalError: coded('57P01') }));
    expect503(new AggregateError([coded('ECONNREFUSED'), coded('ECONNREFUSED')], 'connect failed'));
    // pg gives these no code; knex may prefix the SQL.
    expect503(new Error('Connection terminated unexpectedly'));
    expect503(new Error(`select * from "oauth_grants" where "token" = 'x' - Connection terminated unexpectedly`));
    expect503(new Error('Client has encountered a connection error and is not queryable'));
  });

  it('takes a connection loss from pg\'s own message only, not from the words inside another one', () => {
    expect(toOAuthError(new Error('boom: Connection terminated by the host')).status).toBe(500);
  });
});

describe('lib › errors › error_description on the wire (RFC 6749 §5.2)', () => {
  it.each([
    ['Invalid client', 'Invalid client'],
    ['Café crème', 'Cafe creme'],
    ['Ｆｕｌｌｗｉｄｔｈ ﬁne', 'Fullwidth fine'],
    ['say "no"', "say 'no'"],
    ['a\\b', 'a/b'],
    ['tab\there\nnewline', 'tab?here?newline'],
    ['emoji 🔐 and 名前 — done', 'emoji ? and ?? ? done'],
  ])('%j becomes %j', (input, wire) => {
    expect(asciiDescription(input)).toBe(wire);
    expect(new OAuthError('invalid_request', input).toJSON()).toEqual({ error: 'invalid_request', error_description: wire });
  });

  it('keeps the description as given for the logger and onError', () => {
    expect(new OAuthError('invalid_request', 'Café').description).toBe('Café');
  });
});
