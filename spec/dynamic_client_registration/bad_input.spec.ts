import request from 'supertest';
import { parseClientMetadata, type ClientMetadataPolicy } from '../../lib/client_metadata';
import { OAuthError } from '../../lib';
import { buildApp, closeAll, type TestApp } from '../support/build_app';
import { expectError } from '../support/expect_oauth_error';

afterAll(closeAll);

const FEATURES = ['dynamic_client_registration', 'authorization_code_grant', 'refresh', 'client_credentials_grant'];
const CB = ['https://client.example/cb'];
const META = 'invalid_client_metadata';
const REDIRECT = 'invalid_redirect_uri';

/** [what, body, error, error_description] — RFC 7591 §3.2.2: 400 with the code and nothing written. */
const CASES: [string, unknown, string, string][] = [
  ['a JSON array', [], META, 'The registration request must be a JSON object (application/json)'],
  ['a JSON string', 'x', META, 'The registration request must be a JSON object (application/json)'],
  ['redirect_uris as a string', { redirect_uris: 'https://client.example/cb' }, REDIRECT, 'redirect_uris must be an array of strings'],
  ['a redirect URI that is not a string', { redirect_uris: [42] }, REDIRECT, 'redirect_uris must be an array of strings'],
  ['no redirect URI with authorization_code', {}, REDIRECT, 'redirect_uris is required with the authorization_code grant'],
  ['an empty redirect URI', { redirect_uris: [''] }, REDIRECT, 'redirect_uris[0] must be 1 to 2000 characters'],
  ['a relative redirect URI', { redirect_uris: ['/cb'] }, REDIRECT, 'redirect_uris[0] is not a well-formed absolute URI (RFC 3986)'],
  ['a redirect URI with a space', { redirect_uris: ['https://client.example/a b'] }, REDIRECT, 'redirect_uris[0] is not a well-formed absolute URI (RFC 3986)'],
  ['a redirect URI with a fragment', { redirect_uris: [...CB, 'https://client.example/cb#x'] }, REDIRECT, 'redirect_uris[1] must not have a fragment'],
  ['a wildcard host', { redirect_uris: ['https://*.client.example/cb'] }, REDIRECT, 'redirect_uris[0] must not contain a wildcard: redirect URIs are matched exactly'],
  ['a wildcard path', { redirect_uris: ['https://client.example/*'] }, REDIRECT, 'redirect_uris[0] must not contain a wildcard: redirect URIs are matched exactly'],
  ['http outside loopback', { redirect_uris: ['http://client.example/cb'] }, REDIRECT, 'redirect_uris[0] uses http outside loopback: use https, or http on 127.0.0.1, [::1] or localhost (RFC 8252 section 7.3)'],
  ['a scheme without a dot', { redirect_uris: ['myapp:/cb'] }, REDIRECT, 'redirect_uris[0] must use https, http on loopback, or a private-use scheme in reverse-domain form such as com.example.app: (RFC 8252 section 7.1)'],
  ['javascript:', { redirect_uris: ['javascript:alert(1)'] }, REDIRECT, 'redirect_uris[0] must use https, http on loopback, or a private-use scheme in reverse-domain form such as com.example.app: (RFC 8252 section 7.1)'],
  ['too many redirect URIs', { redirect_uris: Array.from({ length: 21 }, (_, i) => `https://client.example/${i}`) }, REDIRECT, 'redirect_uris must have at most 20 entries'],
  ['an unknown auth method', { redirect_uris: CB, token_endpoint_auth_method: 'tls_client_auth' }, META, "token_endpoint_auth_method 'tls_client_auth' is not supported (supported: client_secret_basic, client_secret_post, none)"],
  ['an auth method of the wrong type', { redirect_uris: CB, token_endpoint_auth_method: ['none'] }, META, 'token_endpoint_auth_method must be a string'],
  ['private_key_jwt without jwt_bearer', { redirect_uris: CB, token_endpoint_auth_method: 'private_key_jwt', jwks_uri: 'https://client.example/jwks' }, META, "token_endpoint_auth_method 'private_key_jwt' is not supported (supported: client_secret_basic, client_secret_post, none)"],
  ['the implicit grant', { redirect_uris: CB, grant_types: ['implicit'] }, META, "grant_types: 'implicit' is not supported (the implicit grant is deprecated, RFC 9700 section 2.1.2)"],
  ['an unknown grant', { redirect_uris: CB, grant_types: ['authorization_code', 'password'] }, META, "grant_types: 'password' is not supported (supported: authorization_code, refresh_token, client_credentials)"],
  ['refresh_token alone', { grant_types: ['refresh_token'] }, META, 'grant_types: refresh_token needs a grant that issues the first refresh token'],
  ['grant_types as a string', { redirect_uris: CB, grant_types: 'authorization_code' }, META, 'grant_types must be an array of strings'],
  ['the token response type', { redirect_uris: CB, response_types: ['code', 'token'] }, META, "response_types: 'token' is not supported (the implicit grant is deprecated, RFC 9700 section 2.1.2)"],
  ['code without authorization_code', { redirect_uris: CB, grant_types: ['client_credentials'], response_types: ['code'] }, META, "response_types has 'code', so grant_types must include authorization_code (RFC 7591 section 2.1)"],
  ['authorization_code without code', { redirect_uris: CB, response_types: [] }, META, "grant_types has authorization_code, so response_types must include 'code' (RFC 7591 section 2.1)"],
  ['client_name of the wrong type', { redirect_uris: CB, client_name: { en: 'x' } }, META, 'client_name must be a string'],
  ['an oversized client_name', { redirect_uris: CB, client_name: 'x'.repeat(201) }, META, 'client_name must be 1 to 200 characters'],
  ['a client_name with a control character', { redirect_uris: CB, client_name: 'a\nb' }, META, 'client_name must not contain control characters'],
  ['an http logo_uri', { redirect_uris: CB, logo_uri: 'http://client.example/logo.png' }, META, 'logo_uri must be an https URI'],
  ['a javascript: client_uri', { redirect_uris: CB, client_uri: 'javascript:alert(1)' }, META, 'client_uri must be an https URI'],
  ['a malformed tos_uri', { redirect_uris: CB, tos_uri: 'https://client.example/<tos>' }, META, 'tos_uri is not a well-formed absolute URI (RFC 3986)'],
  ['a policy_uri with a fragment', { redirect_uris: CB, policy_uri: 'https://client.example/p#x' }, META, 'policy_uri must not have a fragment'],
  ['contacts as a string', { redirect_uris: CB, contacts: 'ops@client.example' }, META, 'contacts must be an array of strings'],
  ['too many contacts', { redirect_uris: CB, contacts: Array.from({ length: 11 }, (_, i) => `c${i}@client.example`) }, META, 'contacts must have at most 10 entries'],
  ['a contact with a space', { redirect_uris: CB, contacts: ['a b@client.example'] }, META, 'contacts entries must be 1 to 320 characters without spaces'],
  ['scope as an array', { redirect_uris: CB, scope: ['books.read'] }, META, 'scope must be a string of space-separated scope values'],
  ['a malformed scope', { redirect_uris: CB, scope: 'books.read "x"' }, META, 'scope is not a space-separated list of scope values (RFC 6749 section 3.3)'],
  ['an unknown scope', { redirect_uris: CB, scope: 'books.read admin' }, META, "scope: 'admin' is not supported"],
  ['an http jwks_uri', { redirect_uris: CB, jwks_uri: 'http://client.example/jwks' }, META, 'jwks_uri must be an https URI'],
  ['both jwks and jwks_uri', { redirect_uris: CB, jwks_uri: 'https://client.example/jwks', jwks: { keys: [{ kty: 'EC', crv: 'P-256', x: 'a', y: 'b' }] } }, META, 'jwks and jwks_uri must not both be given (RFC 7591 section 2)'],
  ['jwks that is not a JWK Set', { redirect_uris: CB, jwks: [{ kty: 'EC' }] }, META, 'jwks must be a JWK Set: an object with a non-empty keys array (RFC 7517 section 5)'],
  ['a JWK without kty', { redirect_uris: CB, jwks: { keys: [{ crv: 'P-256' }] } }, META, 'jwks.keys[0] is not a JWK (no kty, RFC 7517 section 4.1)'],
  ['a private JWK', { redirect_uris: CB, jwks: { keys: [{ kty: 'EC', crv: 'P-256', x: 'a', y: 'b', d: 'secret' }] } }, META, 'jwks.keys[0] holds private or symmetric key material: register public keys only'],
  ['a software_id of the wrong type', { redirect_uris: CB, software_id: 7 }, META, 'software_id must be a string'],
];

describe('dynamic_client_registration › bad input (RFC 7591 §3.2.2)', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await buildApp({ enable: FEATURES, oauthApplicationScopes: ['books.read', 'books.write'], oauthRegistrationGrantTypes: null });
  });
  const count = async () => Number(((await t.db('oauth_applications').count({ n: '*' })) as [{ n: number | string }])[0].n);

  it.each(CASES)('refuses %s', async (_what, body, error, description) => {
    const before = await count();
    const res = await request(t.app).post(t.path('/register')).set('Content-Type', 'application/json').send(JSON.stringify(body));
    expectError(res, 400, { error, error_description: description });
    expect(await count()).toBe(before);
  });

  it.each([
    ['a form body', 'application/x-www-form-urlencoded', 'redirect_uris=https%3A%2F%2Fclient.example%2Fcb'],
    ['no body', undefined, undefined],
    ['malformed JSON', 'application/json', '{"redirect_uris": ['],
    ['an oversized body (over 32 KiB)', 'application/json', JSON.stringify({ redirect_uris: CB, padding: 'x'.repeat(40_000) })],
  ])('refuses %s with invalid_client_metadata', async (_what, type, body) => {
    const before = await count();
    let req = request(t.app).post(t.path('/register'));
    if (type) req = req.set('Content-Type', type);
    const res = await (body === undefined ? req : req.send(body));
    expectError(res, 400, { error: META, error_description: 'The registration request must be a JSON object (application/json)' });
    expect(await count()).toBe(before);
  });

  it('answers a malformed client id path with invalid_request, never a 500', async () => {
    const res = await request(t.app).get(t.path('/register/%E0%A4%A')).set('Authorization', 'Bearer x');
    expectError(res, 400, { error: 'invalid_request', error_description: 'The request path is malformed' });
  });
});

describe('dynamic_client_registration › parseClientMetadata', () => {
  const policy: ClientMetadataPolicy = { authMethods: ['client_secret_basic', 'none', 'private_key_jwt'], grantTypes: ['authorization_code', 'refresh_token'], responseTypes: ['code'] };
  const parse = (input: unknown, p: ClientMetadataPolicy = policy) => parseClientMetadata(input, p);

  it('applies the RFC 7591 §2 defaults and keeps names and URIs as given', () => {
    expect(parse({ redirect_uris: ['com.example.app:/oauth2redirect', 'http://[::1]:8080/cb', 'http://localhost/cb'], client_name: '<script>alert(1)</script>', client_uri: 'https://client.example/?a=1&b=2', contacts: ['ops@client.example'], unknown: true })).toEqual({
      redirectUris: ['com.example.app:/oauth2redirect', 'http://[::1]:8080/cb', 'http://localhost/cb'],
      tokenEndpointAuthMethod: 'client_secret_basic',
      grantTypes: ['authorization_code'],
      responseTypes: ['code'],
      clientName: '<script>alert(1)</script>',
      clientUri: 'https://client.example/?a=1&b=2',
      logoUri: null,
      tosUri: null,
      policyUri: null,
      contacts: ['ops@client.example'],
      scope: null,
      jwksUri: null,
      jwks: null,
      softwareId: null,
      softwareVersion: null,
    });
  });

  it('reads null members as absent', () => {
    expect(parse({ redirect_uris: ['https://c.example/cb'], client_name: null, jwks: null, scope: null }).clientName).toBeNull();
  });

  it('requires exactly one of jwks / jwks_uri for private_key_jwt', () => {
    expect(() => parse({ redirect_uris: ['https://c.example/cb'], token_endpoint_auth_method: 'private_key_jwt' })).toThrow(new OAuthError('invalid_client_metadata', 'private_key_jwt needs the client keys: jwks or jwks_uri'));
    expect(parse({ redirect_uris: ['https://c.example/cb'], token_endpoint_auth_method: 'private_key_jwt', jwks_uri: 'https://c.example/jwks' }).jwksUri).toBe('https://c.example/jwks');
  });

  it('uses defaultAuthMethod, and says when the RFC default is not supported', () => {
    expect(parse({ redirect_uris: ['https://c.example/cb'] }, { ...policy, defaultAuthMethod: 'none' }).tokenEndpointAuthMethod).toBe('none');
    expect(() => parse({ redirect_uris: ['https://c.example/cb'] }, { ...policy, authMethods: ['none'] })).toThrow('token_endpoint_auth_method is required: the default, client_secret_basic, is not supported (supported: none)');
  });

  it('honours the limits of the policy', () => {
    expect(() => parse({ redirect_uris: ['https://c.example/a', 'https://c.example/b'] }, { ...policy, limits: { redirectUris: 1 } })).toThrow('redirect_uris must have at most 1 entries');
  });

  it('never throws anything but an OAuthError, whatever the input', () => {
    const inputs: unknown[] = [null, undefined, 1, 'x', [], { redirect_uris: [null] }, { redirect_uris: ['https://c.example/cb'], jwks: 'x' }, { redirect_uris: ['https://c.example/cb'], jwks: { keys: [null] } }, { grant_types: [1] }, { redirect_uris: ['https://c.example/cb'], contacts: [1] }, { redirect_uris: ['https://c.example/cb'], logo_uri: 5 }, { ['__proto__']: { redirect_uris: ['https://c.example/cb'] } }];
    for (const input of inputs) {
      try {
        parse(input);
      } catch (e) {
        expect(e).toBeInstanceOf(OAuthError);
        expect(['invalid_client_metadata', 'invalid_redirect_uri']).toContain((e as OAuthError).code);
      }
    }
  });
});
