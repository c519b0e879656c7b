import { describe, expect, it } from '@jest/globals';
import { OAuthError, statusFor } from '../../lib';
import { toOAuthError } from '../../lib/errors';

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
