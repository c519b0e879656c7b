/** Requests the refresh specs share: a refresh_token grant request and a protected-resource call. */
import type { Response } from 'supertest';
import { basic, type TestApp } from '../support/build_app';

export interface Client {
  clientId: string;
  clientSecret: string;
}

/** POST /token with grant_type=refresh_token, the client authenticating with Basic (or `none` when it has no secret). */
export function refresh(t: TestApp, client: Client, refreshToken: string, extra: Record<string, string> = {}): Promise<Response> {
  const req = t.agent.post(t.path('/token')).type('form');
  if (client.clientSecret) {
    return req.set('Authorization', basic(client.clientId, client.clientSecret)).send({ grant_type: 'refresh_token', refresh_token: refreshToken, ...extra });
  }
  return req.send({ grant_type: 'refresh_token', refresh_token: refreshToken, client_id: client.clientId, ...extra });
}

/** GET /api/me (any valid token) with a bearer token. */
export function me(t: TestApp, accessToken: string): Promise<Response> {
  return t.agent.get('/api/me').set('Authorization', `Bearer ${accessToken}`);
}

/** The body of an invalid_grant answer for a bad refresh token (default message). */
export const INVALID_REFRESH_TOKEN = { error: 'invalid_grant', error_description: 'Invalid refresh token' };
export const REFRESH_TOKEN_REUSED = { error: 'invalid_grant', error_description: 'Refresh token already used; the grant has been revoked' };
export const INVALID_TOKEN = { error: 'invalid_token', error_description: 'Invalid access token' };

/** RFC 6749 §5.1 / §5.2: token responses are never cached. */
export function expectNoStore(res: Response): void {
  expect(res.headers['cache-control']).toBe('no-store');
  expect(res.headers['pragma']).toBe('no-cache');
  expect(res.headers['content-type']).toMatch(/^application\/json/);
}

/** A clock the specs move by hand, passed as the `now` auth method. */
export function testClock(start = Date.now()): { now: () => Date; advance(seconds: number): void } {
  let t = start;
  return {
    now: () => new Date(t),
    advance(seconds: number) {
      t += seconds * 1000;
    },
  };
}
