/** What the oauth_base specs share: token requests and the assertions every token answer needs. */
import { expect } from '@jest/globals';
import type { Response } from 'supertest';
import { basic, type TestApp } from '../support/build_app';

export interface Client {
  clientId: string;
  clientSecret: string;
}

/** POST /token as a form, the client authenticating with Basic. */
export function tokenRequest(t: TestApp, client: Client, body: Record<string, string> = { grant_type: 'client_credentials' }): Promise<Response> {
  return t.agent.post(t.path('/token')).type('form').set('Authorization', basic(client.clientId, client.clientSecret)).send(body);
}

/** RFC 6749 §5.1 / §5.2: token responses, successes and errors, are never cached. */
export function expectNoStore(res: Response): void {
  expect(res.headers['cache-control']).toBe('no-store');
  expect(res.headers['pragma']).toBe('no-cache');
  expect(res.headers['content-type']).toMatch(/^application\/json/);
}

/** A 401 invalid_client answer with the Basic challenge (RFC 6749 §5.2). */
export function expectInvalidClient(res: Response, description = 'Invalid client'): void {
  expect(res.status).toBe(401);
  expectNoStore(res);
  expect(res.headers['www-authenticate']).toBe('Basic realm="oauth"');
  expect(res.body).toEqual({ error: 'invalid_client', error_description: description });
}

/** A 400 error of the token endpoint with its exact body. */
export function expectTokenError(res: Response, error: string, description: string): void {
  expect(res.status).toBe(400);
  expectNoStore(res);
  expect(res.headers['www-authenticate']).toBeUndefined();
  expect(res.body).toEqual({ error, error_description: description });
}

/** The body of a successful client_credentials answer. */
export function tokenBody(scope: string, expiresIn = 3600): Record<string, unknown> {
  return { access_token: expect.stringMatching(/^[A-Za-z0-9_-]{43}$/), token_type: 'Bearer', expires_in: expiresIn, scope };
}

export async function countGrants(t: TestApp, table = 'oauth_grants'): Promise<number> {
  const [row] = await t.db(table).count({ n: '*' });
  return Number((row as { n: unknown }).n);
}

export const SQL_LOOKING = "x' OR '1'='1'; DROP TABLE oauth_grants; --";
export const UNICODE = 'clïent-\u{1F510}-名前';
