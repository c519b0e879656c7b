import { afterAll, afterEach, beforeAll, describe, expect, it, jest } from '@jest/globals';
import bcrypt from 'bcrypt';
import request from 'supertest';
import { basic, buildApp, closeAll, type TestApp } from '../support/build_app';
import { claims, Clock, ENCRYPTION_KEY, GRANT_TYPE, INVALID_CLIENT, INVALID_GRANT, ISSUER, keyPair, signWith, type KeyPair } from './support';

afterAll(closeAll);
afterEach(() => {
  jest.restoreAllMocks();
});

let rsa: KeyPair;

beforeAll(async () => {
  rsa = await keyPair('RS256');
});

async function setup() {
  const clock = new Clock();
  const t = await buildApp({ enable: ['jwt_bearer'], issuer: ISSUER, now: clock.now, oauthClientSecretEncryptionKey: ENCRYPTION_KEY });
  const known = await t.createClient({ tokenEndpointAuthMethod: 'client_secret_basic', grantTypes: [GRANT_TYPE] });
  return { t, clock, known };
}

function grant(t: TestApp, assertion: string, auth: string) {
  return request(t.app).post(t.path('/token')).type('form').set('Authorization', auth).send({ grant_type: GRANT_TYPE, assertion });
}

/** Everything a client sees of an answer: status, the headers that vary, and the body. */
function visible(res: request.Response) {
  return {
    status: res.status,
    cacheControl: res.headers['cache-control'],
    wwwAuthenticate: res.headers['www-authenticate'],
    retryAfter: res.headers['retry-after'],
    body: res.body as unknown,
  };
}

describe('jwt_bearer › grant: the issuer is no client-id oracle', () => {
  it('answers Basic <id>:wrong beside a junk assertion naming iss=<id> alike for a known and an unknown id, each after one bcrypt compare', async () => {
    const { t, clock, known } = await setup();
    const compare = jest.spyOn(bcrypt, 'compare');
    const answers = [];
    for (const id of [known.clientId, 'no-such-client']) {
      const before = compare.mock.calls.length;
      const res = await grant(t, await signWith(rsa, claims(clock, id)), basic(id, 'wrong'));
      expect(compare.mock.calls.length - before).toBe(1);
      answers.push(res);
    }
    for (const res of answers) {
      expect(visible(res)).toEqual({ status: 401, cacheControl: 'no-store', wwwAuthenticate: 'Basic realm="oauth"', retryAfter: undefined, body: INVALID_CLIENT });
    }
  });

  it('refuses an authenticated client whose assertion names another issuer, registered or not, with one client_id_mismatch (RFC 7521 §4.1)', async () => {
    const { t, clock, known } = await setup();
    const presenter = await t.createClient({ tokenEndpointAuthMethod: 'client_secret_basic', grantTypes: [GRANT_TYPE] });
    for (const iss of [known.clientId, 'no-such-client']) {
      const res = await grant(t, await signWith(rsa, claims(clock, iss, { sub: 'alice' })), basic(presenter.clientId, presenter.clientSecret));
      expect(visible(res)).toEqual({ status: 400, cacheControl: 'no-store', wwwAuthenticate: undefined, retryAfter: undefined, body: INVALID_GRANT });
      expect(t.logger.lines[t.logger.lines.length - 1]).toContain('(client_id_mismatch)');
    }
  });
});
