/**
 * Where the demo listens and which issuer it announces: 127.0.0.1 unless told otherwise, and
 * an explicit issuer that is the origin it prints and the browser specs use.
 */
import request from 'supertest';
import type { AddressInfo } from 'node:net';
import { createDemoApp, listenSettings, listeningOrigin, originOf, type Demo } from '../../examples/server';
import { createTestDb, type TestDb } from '../support/db';

describe('demo › server', () => {
  let testDb: TestDb;
  let demo: Demo | undefined;

  beforeEach(async () => {
    testDb = await createTestDb();
  });
  afterEach(async () => {
    await demo?.close();
    demo = undefined;
    await testDb.destroy();
  });

  it('listens on 127.0.0.1 by default, and its issuer, client redirect URI and metadata all name http://127.0.0.1:<port>', async () => {
    demo = await createDemoApp({ db: testDb.db });
    const { address, port } = demo.server.address() as AddressInfo;
    expect(address).toBe('127.0.0.1');
    expect(demo.origin).toBe(`http://127.0.0.1:${port}`);
    expect(demo.client.redirectUri).toBe(`http://127.0.0.1:${port}/client/callback`);
    // Asked through another Host name, the explicit issuer does not follow the request.
    const meta = await request(demo.app).get('/.well-known/oauth-authorization-server').set('Host', 'elsewhere.example');
    expect(meta.status).toBe(200);
    expect(meta.body.issuer).toBe(demo.origin);
    expect(meta.body.token_endpoint).toBe(`${demo.origin}/token`);
  });

  it('announces PUBLIC_URL as its issuer when given one', async () => {
    demo = await createDemoApp({ db: testDb.db, publicUrl: 'https://demo.example/' });
    expect(demo.origin).toBe('https://demo.example');
    const meta = await request(demo.app).get('/.well-known/oauth-authorization-server');
    expect(meta.body.issuer).toBe('https://demo.example');
    expect(demo.client.redirectUri).toBe('https://demo.example/client/callback');
  });

  it('refuses a PUBLIC_URL that is not an http(s) origin, before listening', async () => {
    for (const bad of ['demo.example', 'ftp://demo.example', 'https://demo.example/app', 'https://demo.example/?x=1', 'https://u:p@demo.example']) {
      expect(() => originOf(bad)).toThrow(`PUBLIC_URL must be an http(s) origin such as https://demo.example, got '${bad}'`);
    }
    await expect(createDemoApp({ db: testDb.db, publicUrl: 'https://demo.example/app' })).rejects.toThrow('PUBLIC_URL must be an http(s) origin');
  });

  it('names the address it listens on in its origin: localhost for a wildcard, brackets for IPv6', () => {
    expect(listeningOrigin('127.0.0.1', 3000)).toBe('http://127.0.0.1:3000');
    expect(listeningOrigin('0.0.0.0', 3000)).toBe('http://localhost:3000');
    expect(listeningOrigin('::', 3000)).toBe('http://localhost:3000');
    expect(listeningOrigin('::1', 3000)).toBe('http://[::1]:3000');
    expect(listeningOrigin('demo.internal', 8080)).toBe('http://demo.internal:8080');
  });

  it('reads PORT, HOST and PUBLIC_URL for npm start: 3000 on 127.0.0.1 unless they say otherwise', () => {
    expect(listenSettings({})).toEqual({ port: 3000, host: '127.0.0.1', publicUrl: undefined });
    expect(listenSettings({ PORT: '8080', HOST: '0.0.0.0', PUBLIC_URL: 'https://demo.example' })).toEqual({ port: 8080, host: '0.0.0.0', publicUrl: 'https://demo.example' });
    expect(listenSettings({ HOST: '', PUBLIC_URL: '' })).toEqual({ port: 3000, host: '127.0.0.1', publicUrl: undefined });
    expect(() => listenSettings({ PORT: 'http' })).toThrow("PORT must be a port number, got 'http'");
    expect(() => listenSettings({ PUBLIC_URL: 'https://demo.example/app' })).toThrow('PUBLIC_URL must be an http(s) origin');
  });
});
