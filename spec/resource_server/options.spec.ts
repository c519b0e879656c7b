import { OAuthConfigurationError, resourceServer, type ResourceServerOptions } from '../../lib';

const valid: ResourceServerOptions = { issuer: 'https://auth.example', audience: 'https://api.example' };

function expectConfigError(options: unknown, message: string): void {
  const build = () => resourceServer(options as ResourceServerOptions);
  expect(build).toThrow(OAuthConfigurationError);
  expect(build).toThrow(message);
}

describe('resourceServer › options, checked at construction', () => {
  it('accepts an https issuer, a loopback http issuer, and an audience list', () => {
    expect(() => resourceServer(valid)).not.toThrow();
    expect(() => resourceServer({ issuer: 'http://127.0.0.1:3000', audience: ['a', 'b'] })).not.toThrow();
    expect(() => resourceServer({ issuer: 'http://localhost:3000/oauth', audience: 'a', introspection: { clientId: 'c', clientSecret: 's' } })).not.toThrow();
  });

  it.each([
    [{ ...valid, issuer: 'auth.example' }, "option 'issuer' must be an absolute https URL"],
    [{ ...valid, issuer: 'http://auth.example' }, "option 'issuer' must use https"],
    [{ ...valid, issuer: 'ftp://127.0.0.1' }, "option 'issuer' must use https"],
    [{ ...valid, issuer: 'https://auth.example?x=1' }, "option 'issuer' must have no query, fragment or credentials"],
    [{ ...valid, issuer: 'https://auth.example#f' }, "option 'issuer' must have no query, fragment or credentials"],
    [{ ...valid, audience: '' }, "option 'audience' must be a non-empty string"],
    [{ ...valid, audience: [] }, "option 'audience' must be a non-empty string"],
    [{ ...valid, audience: ['a', 1] }, "option 'audience' must be a non-empty string"],
    [{ issuer: valid.issuer }, "option 'audience' must be a non-empty string"],
    [{ ...valid, introspection: { clientId: 'c' } }, "option 'introspection' must be { clientId, clientSecret }"],
    [{ ...valid, timeoutMs: 0 }, "option 'timeoutMs' must be a number, more than 0"],
    [{ ...valid, timeoutMs: 3_000_000_000 }, "option 'timeoutMs' must be at most 2147483647 (the longest delay a Node timer takes); got 3000000000."],
    [{ ...valid, leewaySeconds: -1 }, "option 'leewaySeconds' must be a number, 0 or more"],
    [{ ...valid, introspectionCacheSeconds: '60' }, "option 'introspectionCacheSeconds' must be a number"],
    [{ ...valid, minCacheSeconds: 100, maxCacheSeconds: 10 }, "option 'minCacheSeconds' must not exceed 'maxCacheSeconds'"],
    [{ ...valid, allowPrivateAddresses: 'yes' }, "option 'allowPrivateAddresses' must be a boolean"],
    [{ ...valid, logger: {} }, "option 'logger' must have error, warn and info methods"],
    [{ ...valid, timeoutMS: 10 }, "unknown option 'timeoutMS'. Did you mean 'timeoutMs'?"],
    [null, 'options must be an object'],
  ])('refuses %j', (options, message) => {
    expectConfigError(options, `resourceServer(): ${message}`);
  });

  it('refuses an invalid scope in require()', () => {
    const rs = resourceServer(valid);
    expect(() => rs.require('books read')).toThrow("resourceServer().require(): 'books read' is not a valid scope");
  });
});
