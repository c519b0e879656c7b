/**
 * The MCP SDK's client against examples/mcp-server.ts with a client ID metadata document
 * (SEP-991, draft-ietf-oauth-client-id-metadata-document): its client_id is the https URL of its
 * metadata, served here by a loopback https server with the self-signed test certificate, which
 * the example trusts through the development allowance (oauthFetchAllowPrivateAddresses and
 * oauthFetchTrustedCertificates). No registration request is made.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:https';
import { join } from 'node:path';
import type { AddressInfo } from 'node:net';
import type { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { createMcpApp, type McpDemo } from '../../examples/mcp-server';
import { createTestDb, type TestDb } from '../support/db';
import { LoopbackServer } from '../support/loopback_server';
import { BrowserLikeProvider, connectWithOAuth, whoami, type Recorded } from './mcp_support';

const TLS = join(__dirname, '../support/tls');
const REDIRECT = 'http://127.0.0.1:9/callback';

describe('interop › MCP SDK client › client ID metadata document', () => {
  let testDb: TestDb;
  let demo: McpDemo;
  let client: Client;
  let documentServer: LoopbackServer;
  let clientId: string;
  const documentRequests: string[] = [];
  const log: Recorded[] = [];
  let offset = 0;
  let provider: BrowserLikeProvider;

  beforeAll(async () => {
    const cert = readFileSync(join(TLS, 'localhost.crt'), 'utf8');
    const https = createServer({ cert, key: readFileSync(join(TLS, 'localhost.key'), 'utf8') }, (req, res) => {
      documentRequests.push(req.url ?? '');
      if (req.url !== '/mcp-client.json') return void res.writeHead(404).end();
      res.writeHead(200, { 'content-type': 'application/json', 'cache-control': 'max-age=300' });
      res.end(
        JSON.stringify({
          client_id: clientId,
          client_name: 'MCP metadata document client',
          client_uri: clientId.replace('/mcp-client.json', '/'),
          redirect_uris: [REDIRECT],
          grant_types: ['authorization_code', 'refresh_token'],
          response_types: ['code'],
          token_endpoint_auth_method: 'none',
        }),
      );
    });
    documentServer = new LoopbackServer(https);
    await documentServer.listen();
    clientId = `https://127.0.0.1:${(https.address() as AddressInfo).port}/mcp-client.json`;
    provider = new BrowserLikeProvider({ redirectUrl: REDIRECT, user: { username: 'demo', password: 'demo' }, clientMetadataUrl: clientId, metadata: { client_name: 'MCP metadata document client' } });

    testDb = await createTestDb();
    demo = await createMcpApp({
      db: testDb.db,
      oauthOptions: {
        // Development allowance: a document on a loopback address, with a self-signed certificate.
        oauthFetchAllowPrivateAddresses: true,
        oauthFetchTrustedCertificates: cert,
        now: () => new Date(Date.now() + offset),
      },
    });
    ({ client } = await connectWithOAuth(demo.resource, provider, log));
  });

  afterAll(async () => {
    await client?.close();
    await demo?.close();
    await testDb?.destroy();
    await documentServer?.close();
  });

  it('the server metadata advertises client_id_metadata_document_supported, and the SDK uses its URL as client_id without registering', async () => {
    const metadata = await fetch(`${demo.origin}/.well-known/oauth-authorization-server`);
    expect(((await metadata.json()) as Record<string, unknown>).client_id_metadata_document_supported).toBe(true);
    expect(log.filter((r) => r.url.pathname === '/register')).toEqual([]);
    expect(provider.clientInformation()?.client_id).toBe(clientId);
    expect(provider.visits[0]!.authorizationUrl.searchParams.get('client_id')).toBe(clientId);
    expect(provider.visits[0]!.authorizationUrl.searchParams.get('resource')).toBe(demo.resource);
  });

  it('the server fetched the document, and the consent page names the document’s host', () => {
    expect(documentRequests[0]).toBe('/mcp-client.json');
    const host = new URL(clientId).host;
    expect(provider.visits[0]!.consentPage).toContain(host);
  });

  it('calls a tool with a token bound to the MCP server, issued to the URL client', async () => {
    const sum = await client.callTool({ name: 'add', arguments: { a: 20, b: 22 } });
    expect(sum.content).toEqual([{ type: 'text', text: '42' }]);
    expect(await whoami(client)).toEqual({ accountId: demo.user.id, clientId, scopes: ['mcp'], resource: demo.resource, expiresAt: expect.any(Number) });
    const [exchange] = log.filter((r) => r.url.pathname === '/token');
    expect(exchange!.form).toMatchObject({ grant_type: ['authorization_code'], client_id: [clientId], resource: [demo.resource] });
    expect(exchange!.headers.authorization).toBeUndefined(); // a public client: token_endpoint_auth_method none
  });

  it('refreshes on its own after the access token expired', async () => {
    const before = provider.tokens()!;
    offset = 2 * 3600_000;
    expect((await client.callTool({ name: 'add', arguments: { a: 1, b: 2 } })).content).toEqual([{ type: 'text', text: '3' }]);
    const refreshes = log.filter((r) => r.url.pathname === '/token' && r.form?.grant_type?.[0] === 'refresh_token');
    expect(refreshes.map((r) => r.status)).toEqual([200]);
    expect(refreshes[0]!.form).toMatchObject({ client_id: [clientId], refresh_token: [before.refresh_token], resource: [demo.resource] });
    expect(provider.tokens()!.access_token).not.toBe(before.access_token);
    expect((await whoami(client)).clientId).toBe(clientId);
  });
});
