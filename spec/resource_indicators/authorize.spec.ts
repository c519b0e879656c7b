import { afterAll, describe, expect, it } from '@jest/globals';
import { closeAll } from '../support/build_app';
import { locationParams } from '../authorization_code_grant/flow';
import { approve, authorizeQuery, BOOKS, codeFlow, grantResources, hiddenFields, ISSUER, MCP, OTHER, REDIRECT, resourceApp } from './support';

afterAll(closeAll);

describe('resource_indicators › /authorize (RFC 8707 §2.1)', () => {
  it('carries repeated resource parameters through the consent form and stores them on the grant', async () => {
    const t = await resourceApp();
    const client = await t.createClient();
    const { query } = authorizeQuery(client, [MCP, BOOKS]);
    const page = await t.agent.get(`${t.path('/authorize')}?${query}`).set('X-Test-User', 'alice');
    expect(page.status).toBe(200);
    expect(hiddenFields(page.text).filter(([n]) => n === 'resource')).toEqual([
      ['resource', MCP],
      ['resource', BOOKS],
    ]);
    const res = await approve(t, query);
    expect(res.status).toBe(302);
    expect(locationParams(res.headers.location)).toMatchObject({ state: 'xyz', iss: ISSUER });
    expect(await grantResources(t)).toEqual([{ resource: `${MCP} ${BOOKS}`, token_resource: null }]);
  });

  it('keeps every resource in the login return_to', async () => {
    const t = await resourceApp();
    const client = await t.createClient();
    const { query } = authorizeQuery(client, [MCP, BOOKS]);
    const res = await t.agent.get(`${t.path('/authorize')}?${query}`);
    expect(res.status).toBe(302);
    const returnTo = new URL(locationParams(res.headers.location).return_to!, 'https://placeholder');
    expect(returnTo.searchParams.getAll('resource')).toEqual([MCP, BOOKS]);
  });

  it.each([
    ['an unknown resource', OTHER, 'Unknown or unauthorized resource'],
    ['a relative reference', '/mcp', 'The resource must be an absolute URI without a fragment'],
    ['a resource with a fragment', `${MCP}#tools`, 'The resource must be an absolute URI without a fragment'],
  ])('sends invalid_target to the redirect URI for %s, with state and iss, storing nothing', async (_label, resource, description) => {
    const t = await resourceApp();
    const client = await t.createClient();
    const { query } = authorizeQuery(client, [MCP, resource]);
    const res = await t.agent.get(`${t.path('/authorize')}?${query}`).set('X-Test-User', 'alice');
    expect(res.status).toBe(302);
    expect(res.headers.location!.startsWith(`${REDIRECT}?`)).toBe(true);
    expect(locationParams(res.headers.location)).toEqual({ error: 'invalid_target', error_description: description, state: 'xyz', iss: ISSUER });
    expect(await grantResources(t)).toEqual([]);
  });

  it('checks the client and redirect URI first: a bad resource with an unknown redirect_uri gets the error page', async () => {
    const t = await resourceApp();
    const client = await t.createClient();
    const { query } = authorizeQuery(client, ['/relative'], { redirect_uri: 'https://evil.example/cb' });
    const res = await t.agent.get(`${t.path('/authorize')}?${query}`).set('X-Test-User', 'alice');
    expect(res.status).toBe(400);
    expect(res.headers.location).toBeUndefined();
  });

  it('still refuses any other repeated parameter with invalid_request (design.md §4.3)', async () => {
    const t = await resourceApp();
    const client = await t.createClient();
    const { query } = authorizeQuery(client, [MCP]);
    // Refused while reading the parameters, before the client is known: the error page.
    const res = await t.agent.get(`${t.path('/authorize')}?${query}&scope=books.write`).set('X-Test-User', 'alice');
    expect(res.status).toBe(400);
    expect(res.headers.location).toBeUndefined();
    expect(res.text).toContain('Parameter &#39;scope&#39; must not be repeated');
  });

  it('allows a resource through an oauthResourceIndicators function of the request, and resourceAllowed per client', async () => {
    const t = await resourceApp({ oauthResourceIndicators: () => [OTHER] });
    const client = await t.createClient();
    expect((await codeFlow(t, client, [OTHER])).status).toBe(200);
    const t2 = await resourceApp({ resourceAllowed: (_ctx: unknown, app: { name: string }, r: string) => app.name === 'MCP client' && r === MCP });
    const mcpClient = await t2.createClient({ name: 'MCP client' });
    const other = await t2.createClient({ name: 'Other client' });
    expect((await codeFlow(t2, mcpClient, [MCP])).status).toBe(200);
    const { query } = authorizeQuery(other, [MCP]);
    const refused = await t2.agent.get(`${t2.path('/authorize')}?${query}`).set('X-Test-User', 'alice');
    expect(locationParams(refused.headers.location)).toMatchObject({ error: 'invalid_target' });
  });

  it('refuses a malformed oauthResourceIndicators entry at start-up', async () => {
    await expect(resourceApp({ oauthResourceIndicators: ['https://a.example/#x'] })).rejects.toThrow(
      `oauth(): option 'oauthResourceIndicators' must list absolute URIs without a fragment (RFC 8707 §2); got "https://a.example/#x".`,
    );
  });
});
