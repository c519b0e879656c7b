import { sha256 } from '../../lib/crypto';
import { OAuthError } from '../../lib/errors';
import { buildApp, closeAll, type TestApp } from '../support/build_app';
import { consent, grantCount, ISSUER, locationParams, query, testLogin, unescapeHtml } from './flow';

afterAll(closeAll);

const REDIRECT = 'https://client.example/cb';

async function setup(options: Record<string, unknown> = {}): Promise<{ t: TestApp; clientId: string }> {
  const t = await buildApp({ enable: ['authorization_code_grant'], issuer: ISSUER, ...options }, { setup: testLogin });
  const { clientId } = await t.createClient({ redirectUri: [REDIRECT], scopes: ['books.read', 'books.write', 'profile'] });
  return { t, clientId };
}

function params(clientId: string, scope: string): Record<string, string> {
  return { client_id: clientId, redirect_uri: REDIRECT, response_type: 'code', scope, state: 'st' };
}

function authorize(t: TestApp, clientId: string, scope: string, user = 'alice') {
  return t.agent.get(`${t.path('/authorize')}?${query(params(clientId, scope))}`).set('X-Test-User', user);
}

/** The response is the code itself (remembered consent), not the page. */
function expectCode(res: { status: number; headers: Record<string, string> }): string {
  expect(res.status).toBe(302);
  const p = locationParams(res.headers.location);
  expect(p.state).toBe('st');
  expect(p.code).toMatch(/^[A-Za-z0-9_-]{43}$/);
  return p.code!;
}

describe('authorization_code_grant › remembered consent', () => {
  it('a second authorization for the same or fewer scopes skips the page and issues a code for the scopes asked this time', async () => {
    const { t, clientId } = await setup();
    await consent(t, params(clientId, 'books.read books.write'));
    expectCode(await authorize(t, clientId, 'books.read books.write'));
    const code = expectCode(await authorize(t, clientId, 'books.read'));
    expect(await grantCount(t)).toBe(3);
    const [row] = await t.db('oauth_grants').where({ code: sha256(code) });
    expect(row.scopes).toBe('books.read');
  });

  it('a scope not granted before shows the page again', async () => {
    const { t, clientId } = await setup();
    await consent(t, params(clientId, 'books.read'));
    const res = await authorize(t, clientId, 'books.read profile');
    expect(res.status).toBe(200);
    expect(res.text).toContain('id="approve"');
  });

  it('scopes granted by several live grants add up', async () => {
    const { t, clientId } = await setup();
    await consent(t, params(clientId, 'books.read'));
    await consent(t, params(clientId, 'profile'));
    expectCode(await authorize(t, clientId, 'profile books.read'));
  });

  it('is per account and per client', async () => {
    const { t, clientId } = await setup();
    const other = await t.createClient({ redirectUri: [REDIRECT] });
    await consent(t, params(clientId, 'books.read'));
    expect((await authorize(t, clientId, 'books.read', 'bob')).status).toBe(200);
    expect((await authorize(t, other.clientId, 'books.read')).status).toBe(200);
  });

  it('a revoked grant is not remembered', async () => {
    const { t, clientId } = await setup();
    await consent(t, params(clientId, 'books.read'));
    expect(await t.auth.applications.revokeGrants({ clientId, accountId: 'alice' })).toBe(1);
    expect((await authorize(t, clientId, 'books.read')).status).toBe(200);
  });

  it('a denial remembers nothing', async () => {
    const { t, clientId } = await setup();
    const denied = await consent(t, params(clientId, 'books.read'), { decision: 'deny' });
    expect(locationParams(denied.headers.location).error).toBe('access_denied');
    expect((await authorize(t, clientId, 'books.read')).status).toBe(200);
  });

  it('oauthRememberConsent: false always shows the page', async () => {
    const { t, clientId } = await setup({ oauthRememberConsent: false });
    await consent(t, params(clientId, 'books.read'));
    expect((await authorize(t, clientId, 'books.read')).status).toBe(200);
  });

  it('a public client is remembered only for an https redirect URI (RFC 6749 §10.2, RFC 8252 §8.6: another app could claim a loopback or private-use URI)', async () => {
    const t = await buildApp({ enable: ['authorization_code_grant', 'pkce'], issuer: ISSUER }, { setup: testLogin });
    const { clientId } = await t.createClient({ redirectUri: ['https://app.example/cb', 'http://127.0.0.1/cb', 'com.example.app:/cb'], tokenEndpointAuthMethod: 'none' });
    const pkce = { code_challenge: 'E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM', code_challenge_method: 'S256' };
    const ask = (redirectUri: string) => t.agent.get(`${t.path('/authorize')}?${query({ client_id: clientId, redirect_uri: redirectUri, response_type: 'code', scope: 'books.read', state: 'st', ...pkce })}`).set('X-Test-User', 'alice');
    await consent(t, { client_id: clientId, redirect_uri: 'https://app.example/cb', response_type: 'code', scope: 'books.read', ...pkce });
    expectCode(await ask('https://app.example/cb'));
    expect((await ask('http://127.0.0.1:4711/cb')).status).toBe(200);
    expect((await ask('com.example.app:/cb')).status).toBe(200);
  });

  it('a client with no registered auth method is public when oauthDefaultTokenEndpointAuthMethods includes none: its loopback redirect is not remembered', async () => {
    const t = await buildApp({ enable: ['authorization_code_grant', 'pkce'], issuer: ISSUER, oauthDefaultTokenEndpointAuthMethods: ['none'] }, { setup: testLogin });
    const { clientId } = await t.createClient({ redirectUri: ['https://app.example/cb', 'http://127.0.0.1/cb'] });
    await t.db('oauth_applications').where({ client_id: clientId }).update({ token_endpoint_auth_method: null });
    const pkce = { code_challenge: 'E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM', code_challenge_method: 'S256' };
    const ask = (redirectUri: string) => t.agent.get(`${t.path('/authorize')}?${query({ client_id: clientId, redirect_uri: redirectUri, response_type: 'code', scope: 'books.read', state: 'st', ...pkce })}`).set('X-Test-User', 'alice');
    await consent(t, { client_id: clientId, redirect_uri: 'http://127.0.0.1:4711/cb', response_type: 'code', scope: 'books.read', ...pkce });
    expectCode(await ask('https://app.example/cb'));
    const page = await ask('http://127.0.0.1:4711/cb');
    expect(page.status).toBe(200);
    expect(page.text).toContain('id="approve"');
  });

  it('a confidential client with a loopback redirect URI is remembered (it authenticates at the token endpoint)', async () => {
    const t = await buildApp({ enable: ['authorization_code_grant'], issuer: ISSUER }, { setup: testLogin });
    const { clientId } = await t.createClient({ redirectUri: ['http://127.0.0.1/cb'] });
    await consent(t, { client_id: clientId, redirect_uri: 'http://127.0.0.1:4711/cb', response_type: 'code', scope: 'books.read' });
    const res = await t.agent.get(`${t.path('/authorize')}?${query({ client_id: clientId, redirect_uri: 'http://127.0.0.1:4711/cb', response_type: 'code', scope: 'books.read', state: 'st' })}`).set('X-Test-User', 'alice');
    expectCode(res);
  });

  it('runs the beforeAuthorize and afterAuthorize hooks as an approval does', async () => {
    const calls: string[] = [];
    const { t, clientId } = await setup({
      beforeAuthorize: () => void calls.push('before'),
      afterAuthorize: (ctx: { grant?: { scopes: string[] } }) => void calls.push(`after ${ctx.grant?.scopes.join(' ')}`),
    });
    await consent(t, params(clientId, 'books.read books.write'));
    calls.length = 0;
    expectCode(await authorize(t, clientId, 'books.write'));
    expect(calls).toEqual(['before', 'after books.write']);
  });

  it('a beforeAuthorize that refuses writes no grant and tells the client', async () => {
    let refuse = false;
    const { t, clientId } = await setup({
      beforeAuthorize: () => {
        if (refuse) throw new OAuthError('access_denied', 'Not now');
      },
    });
    await consent(t, params(clientId, 'books.read'));
    refuse = true;
    const res = await authorize(t, clientId, 'books.read');
    expect(res.status).toBe(302);
    expect(locationParams(res.headers.location)).toMatchObject({ error: 'access_denied', error_description: 'Not now', state: 'st' });
    expect(await grantCount(t)).toBe(1);
  });

  describe('RFC 8707 resources', () => {
    const API_A = 'https://a.example.com/mcp';
    const API_B = 'https://b.example.com/mcp';

    async function resourceSetup(): Promise<{ t: TestApp; clientId: string }> {
      return setup({ enable: ['authorization_code_grant', 'resource_indicators'], oauthResourceIndicators: [API_A, API_B] });
    }

    /** The authorization query with `resource` once per value. */
    function resourceQuery(clientId: string, scope: string, resources: string[]): string {
      const q = new URLSearchParams(params(clientId, scope));
      for (const r of resources) q.append('resource', r);
      return q.toString();
    }

    const ask = (t: TestApp, clientId: string, scope: string, resources: string[]) =>
      t.agent.get(`${t.path('/authorize')}?${resourceQuery(clientId, scope, resources)}`).set('X-Test-User', 'alice');

    /** The consent page approved, its hidden fields posted back with repeated names kept. */
    async function approveResources(t: TestApp, clientId: string, scope: string, resources: string[]): Promise<void> {
      const page = await ask(t, clientId, scope, resources);
      expect(page.status).toBe(200);
      const fields = [...page.text.matchAll(/<input type="hidden" name="([^"]*)" value="([^"]*)">/g)].map((m): [string, string] => [m[1]!, unescapeHtml(m[2]!)]);
      const res = await t.agent.post(t.path('/authorize')).set('X-Test-User', 'alice').type('form').send(new URLSearchParams([...fields, ['decision', 'approve']]).toString());
      expectCode(res);
    }

    it('the consent page names the requested resources by host', async () => {
      const { t, clientId } = await resourceSetup();
      const page = await ask(t, clientId, 'books.read', [API_A, API_B]);
      expect(page.status).toBe(200);
      expect(page.text).toContain('<h2 id="resources-heading">For use with</h2>');
      expect([...page.text.matchAll(/<strong class="resource-host">([^<]*)<\/strong>/g)].map((m) => m[1])).toEqual(['a.example.com', 'b.example.com']);
    });

    it('approving a scope for resource A is not remembered for resource B, nor for no resource; A again, or a part of it, is', async () => {
      const { t, clientId } = await resourceSetup();
      await approveResources(t, clientId, 'books.read books.write', [API_A]);
      expectCode(await ask(t, clientId, 'books.read', [API_A]));
      const other = await ask(t, clientId, 'books.read', [API_B]);
      expect(other.status).toBe(200);
      expect(other.text).toContain('<strong class="resource-host">b.example.com</strong>');
      expect((await ask(t, clientId, 'books.read', [API_A, API_B])).status).toBe(200);
      expect((await ask(t, clientId, 'books.read', [])).status).toBe(200);
    });

    it('a request naming no resource is remembered only from grants that named none', async () => {
      const { t, clientId } = await resourceSetup();
      await approveResources(t, clientId, 'books.read', []);
      expectCode(await ask(t, clientId, 'books.read', []));
      expect((await ask(t, clientId, 'books.read', [API_A])).status).toBe(200);
    });

    it('scopes count per resource: a scope approved for B only is not remembered for A', async () => {
      const { t, clientId } = await resourceSetup();
      await approveResources(t, clientId, 'books.read', [API_A]);
      await approveResources(t, clientId, 'books.write', [API_B]);
      expect((await ask(t, clientId, 'books.write', [API_A])).status).toBe(200);
      expectCode(await ask(t, clientId, 'books.read', [API_A]));
      await approveResources(t, clientId, 'books.write', [API_A]);
      expectCode(await ask(t, clientId, 'books.read books.write', [API_A]));
    });
  });
});
