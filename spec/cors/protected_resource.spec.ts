import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import request from 'supertest';
import { buildApp, closeAll, type TestApp } from '../support/build_app';

afterAll(closeAll);

const APP = 'https://app.example';
const RESOURCE = 'https://api.example.com/mcp';
const DOCUMENT = '/.well-known/oauth-protected-resource/mcp';

async function resourceApp(options: Record<string, unknown> = {}): Promise<TestApp> {
  return buildApp(
    { issuer: 'https://auth.example.com', enable: ['resource_indicators', 'client_credentials_grant'], ...options },
    { setup: (app, auth) => void app.use(auth.protectedResource({ resource: RESOURCE, scopes: ['mcp'] })) },
  );
}

describe('cors › protected-resource metadata (RFC 9728), a public document', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await resourceApp();
  });

  it.each([DOCUMENT])('answers a preflight to %s from any origin by default, with the MCP-Protocol-Version header allowed', async (path) => {
    const res = await request(t.app).options(path).set('Origin', APP).set('Access-Control-Request-Method', 'GET').set('Access-Control-Request-Headers', 'mcp-protocol-version');
    expect(res.status).toBe(204);
    expect(res.headers.allow).toBe('GET, HEAD');
    expect(res.headers['access-control-allow-origin']).toBe('*');
    expect(res.headers['access-control-allow-methods']).toBe('GET, HEAD');
    expect(res.headers['access-control-allow-headers']).toBe('Authorization, Content-Type, MCP-Protocol-Version');
    expect(res.headers['access-control-max-age']).toBe('600');
    expect(res.headers['access-control-allow-credentials']).toBeUndefined();
  });

  it('lets any origin read the document, and its 405', async () => {
    const res = await request(t.app).get(DOCUMENT).set('Origin', APP);
    expect(res.status).toBe(200);
    expect(res.headers['access-control-allow-origin']).toBe('*');
    expect(res.headers.vary).toBeUndefined();
    expect(res.body).toMatchObject({ resource: RESOURCE, authorization_servers: ['https://auth.example.com'] });
    const post = await request(t.app).post(DOCUMENT).set('Origin', APP);
    expect(post.status).toBe(405);
    expect(post.headers['access-control-allow-origin']).toBe('*');
  });

  it('follows oauthCorsDocumentOrigins: a listed origin with Vary: Origin, another refused', async () => {
    const listed = await resourceApp({ oauthCorsDocumentOrigins: [APP] });
    const ok = await request(listed.app).get(DOCUMENT).set('Origin', APP);
    expect(ok.headers['access-control-allow-origin']).toBe(APP);
    expect(ok.headers.vary).toBe('Origin');
    const pre = await request(listed.app).options(DOCUMENT).set('Origin', 'https://evil.example').set('Access-Control-Request-Method', 'GET');
    expect(pre.status).toBe(204);
    expect(pre.headers['access-control-allow-origin']).toBeUndefined();
    expect(pre.headers['access-control-allow-methods']).toBeUndefined();
  });
});
