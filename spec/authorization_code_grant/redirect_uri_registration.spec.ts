import { buildApp, closeAll } from '../support/build_app';
import { ISSUER } from './flow';

afterAll(closeAll);

const app = () => buildApp({ enable: ['authorization_code_grant'], issuer: ISSUER });

describe('authorization_code_grant › redirect URI registration (RFC 6749 §3.1.2, RFC 3986)', () => {
  it.each([
    ['a space', 'https://a.example/x y', 'contains whitespace, a control or non-ASCII character, or another character RFC 3986 §2 does not allow'],
    ['a tab', 'https://a.example/x\ty', 'contains whitespace, a control or non-ASCII character, or another character RFC 3986 §2 does not allow'],
    ['a leading space', ' https://a.example/cb', 'contains whitespace, a control or non-ASCII character, or another character RFC 3986 §2 does not allow'],
    ['a newline', 'https://a.example/cb\n', 'contains whitespace, a control or non-ASCII character, or another character RFC 3986 §2 does not allow'],
    ['a non-ASCII character', 'https://a.example/bücher', 'contains whitespace, a control or non-ASCII character, or another character RFC 3986 §2 does not allow'],
    ['a backslash', 'https://a.example\\cb', 'contains whitespace, a control or non-ASCII character, or another character RFC 3986 §2 does not allow'],
    ['an incomplete percent-encoding', 'https://a.example/%zz', 'has an incomplete percent-encoding (RFC 3986 §2.1)'],
    ['a fragment', 'https://a.example/cb#frag', 'must not have a fragment (RFC 6749 §3.1.2)'],
    ['a relative reference', '/cb', 'is not an absolute URI (RFC 3986 §4.3)'],
    ['an empty string', '', 'is not an absolute URI (RFC 3986 §4.3)'],
    ['a scheme-relative reference', '//a.example/cb', 'is not an absolute URI (RFC 3986 §4.3)'],
    ['an invalid host', 'https://a..b:99999/cb', 'is not a valid URI (RFC 3986 §3)'],
    ['a missing authority', 'https:a.example/cb', 'is not in RFC 3986 normal form (it would be read as "https://a.example/cb")'],
    ['dot segments', 'https://a.example/a/../cb', 'is not in RFC 3986 normal form (it would be read as "https://a.example/cb")'],
  ])('refuses a redirect URI with %s (TypeError) and stores nothing', async (_label, uri, problem) => {
    const t = await app();
    await expect(t.auth.createApplication({ name: 'x', redirectUri: [uri] })).rejects.toThrow(new TypeError(`createApplication(): redirect URI '${uri}' ${problem}`));
    const [row] = await t.db('oauth_applications').count({ n: '*' });
    expect(Number((row as { n: unknown }).n)).toBe(0);
  });

  it('refuses a redirect URI that is not a string', async () => {
    const t = await app();
    await expect(t.auth.createApplication({ name: 'x', redirectUri: [42 as unknown as string] })).rejects.toThrow(new TypeError('createApplication(): redirect URI 42 must be a string'));
  });

  it.each([
    'https://a.example/cb',
    'https://A.Example/cb?x=1&y=%2F',
    'https://a.example',
    'https://a.example:443/cb',
    'https://a.example:8443/cb',
    'http://127.0.0.1/cb',
    'http://[::1]:8080/cb',
    'https://[::ffff:127.0.0.1]:8443/cb',
    'HTTPS://a.example/cb',
    'com.example.app:/oauth2redirect',
    'myapp://callback/path',
  ])('stores %s as given and reads it back unchanged', async (uri) => {
    const t = await app();
    const { application } = await t.auth.createApplication({ name: 'x', redirectUri: [uri] });
    expect(application.redirectUris).toEqual([uri]);
    const [row] = await t.db('oauth_applications').select('redirect_uri');
    expect(row).toEqual({ redirect_uri: uri });
  });

  it('still takes a space-separated string of several URIs', async () => {
    const t = await app();
    const { application } = await t.auth.createApplication({ name: 'x', redirectUri: 'https://a.example/1 https://a.example/2' });
    expect(application.redirectUris).toEqual(['https://a.example/1', 'https://a.example/2']);
  });
});
