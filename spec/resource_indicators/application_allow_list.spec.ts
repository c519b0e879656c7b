/**
 * resource_indicators: an application's own RFC 8707 allow-list (`resourceIndicators`, schema
 * version 10) decides in place of the server's `oauthResourceIndicators`; null: the server's.
 */
import { afterAll, describe, expect, it } from '@jest/globals';
import { buildApp, closeAll } from '../support/build_app';
import { expectError } from '../support/expect_oauth_error';
import { authorizeQuery, BOOKS, INVALID_TARGET, MCP, OTHER, REDIRECT, resourceApp, tokenRequest } from './support';
import { locationParams } from '../authorization_code_grant/flow';

afterAll(closeAll);

const cc = { grant_type: 'client_credentials', scope: 'books.read' };

describe('resource_indicators › per-application allow-list', () => {
  it('lets an application with its own list ask for its entries only, whatever the server list says', async () => {
    const t = await resourceApp();
    const client = await t.createClient({ resourceIndicators: [BOOKS, OTHER] });
    expect((await tokenRequest(t, client, cc, [BOOKS])).status).toBe(200);
    expect((await tokenRequest(t, client, cc, [OTHER])).status).toBe(200);
    // MCP is in the server's oauthResourceIndicators, not in this client's list.
    expectError(await tokenRequest(t, client, cc, [MCP]), 400, INVALID_TARGET);
    // The server list still decides for a client without one.
    const plain = await t.createClient();
    expect((await tokenRequest(t, plain, cc, [MCP])).status).toBe(200);
    expectError(await tokenRequest(t, plain, cc, [OTHER]), 400, INVALID_TARGET);
  });

  it('refuses a resource outside the list at /authorize with invalid_target to the redirect URI', async () => {
    const t = await resourceApp();
    const client = await t.createClient({ resourceIndicators: [BOOKS] });
    const { query } = authorizeQuery(client, [MCP]);
    const res = await t.agent.get(`${t.path('/authorize')}?${query}`).set('X-Test-User', 'alice');
    expect(res.status).toBe(302);
    expect(res.headers.location!.startsWith(`${REDIRECT}?`)).toBe(true);
    expect(locationParams(res.headers.location)).toMatchObject({ ...INVALID_TARGET, state: 'xyz' });
  });

  it('allows no resource with an empty list, and applications.update() sets and clears the list', async () => {
    const t = await resourceApp();
    const client = await t.createClient({ resourceIndicators: [] });
    expectError(await tokenRequest(t, client, cc, [MCP]), 400, INVALID_TARGET);
    expect((await tokenRequest(t, client, cc)).status).toBe(200);
    const updated = await t.auth.applications.update(client.clientId, { resourceIndicators: [MCP] });
    expect(updated.resourceIndicators).toEqual([MCP]);
    expect((await tokenRequest(t, client, cc, [MCP])).status).toBe(200);
    expectError(await tokenRequest(t, client, cc, [BOOKS]), 400, INVALID_TARGET);
    expect((await t.auth.applications.update(client.clientId, { resourceIndicators: null })).resourceIndicators).toBeNull();
    expect((await tokenRequest(t, client, cc, [BOOKS])).status).toBe(200);
  });

  it('checks the list: absolute URIs without fragment, and the feature enabled', async () => {
    const t = await resourceApp();
    for (const bad of [['/relative'], ['https://api.example.com/#frag'], 'https://api.example.com', [1]]) {
      await expect(t.createClient({ resourceIndicators: bad as never })).rejects.toThrow('resourceIndicators must be an array of absolute URIs without fragment');
    }
    const client = await t.createClient();
    await expect(t.auth.applications.update(client.clientId, { resourceIndicators: ['no-scheme'] })).rejects.toThrow('resourceIndicators must be an array of absolute URIs');
    const plain = await buildApp({ enable: ['client_credentials_grant'] });
    await expect(plain.createClient({ resourceIndicators: [BOOKS] })).rejects.toThrow('resourceIndicators needs the resource_indicators feature');
  });
});
