import { resourceServer } from '../../lib';
import { AUDIENCE, Clock, claims, expectUnavailable, FakeAuthorizationServer, INTROSPECTION, keyPair, memoryLogger, mint, protectedApi, type KeyPair } from './support';
import { until } from '../support/until';

let as: FakeAuthorizationServer;
let key: KeyPair;
let clock: Clock;
beforeAll(async () => {
  key = await keyPair('ES256', 'one');
});
afterEach(() => as.close());

async function start(path = '') {
  as = await new FakeAuthorizationServer().start(path);
  as.keys = [key];
  clock = new Clock();
}

function api(options: Record<string, unknown> = {}) {
  return protectedApi({ issuer: as.issuer, audience: AUDIENCE, now: clock.now, logger: memoryLogger(), ...options });
}

describe('resourceServer › metadata discovery (RFC 8414)', () => {
  it('reads the metadata of an issuer with a path at the path-inserted well-known URI (§3.1)', async () => {
    await start('/tenant/a');
    const seen: string[] = [];
    const serve = as.metadata.handler;
    as.metadata.handler = (req, res) => {
      seen.push(req.path);
      serve(req, res);
    };
    expect((await api().get(await mint(key, claims(as, clock)))).status).toBe(200);
    expect(seen).toEqual(['/.well-known/oauth-authorization-server/tenant/a']);
  });

  it('falls back to the well-known suffix appended to the issuer (a server mounted under a prefix)', async () => {
    await start('/oauth');
    const seen: string[] = [];
    const serve = as.metadata.handler;
    as.metadata.handler = (req, res) => {
      seen.push(req.path);
      if (req.path.startsWith('/.well-known')) res.status(404).end();
      else serve(req, res);
    };
    expect((await api().get(await mint(key, claims(as, clock)))).status).toBe(200);
    expect(seen).toEqual(['/.well-known/oauth-authorization-server/oauth', '/oauth/.well-known/oauth-authorization-server']);
  });

  it('refuses metadata naming another issuer: 503 for requests, a clear error from ready()', async () => {
    await start();
    as.metadataOverrides = { issuer: `${as.origin}/` };
    const logger = memoryLogger();
    const { rs, get } = api({ logger });
    expectUnavailable(await get(await mint(key, claims(as, clock))));
    expect(logger.lines[0]).toContain('not the configured');
    await expect(rs.ready()).rejects.toThrow(`names the issuer "${as.origin}/", not the configured '${as.origin}' (RFC 8414 §3.3: they must be identical)`);
  });

  it('refuses a jwks_uri that may not be fetched (http to a host that is not loopback)', async () => {
    await start();
    as.metadataOverrides = { jwks_uri: 'http://keys.example/jwks' };
    const { rs, get } = api();
    expectUnavailable(await get(await mint(key, claims(as, clock))));
    await expect(rs.ready()).rejects.toThrow('has a jwks_uri that may not be fetched: its jwks_uri must use https');
  });

  it('refuses metadata without jwks_uri when no introspection is configured, and without introspection_endpoint when it is', async () => {
    await start();
    as.metadataOverrides = { jwks_uri: undefined };
    await expect(api().rs.ready()).rejects.toThrow('has no jwks_uri');
    as.metadataOverrides = { introspection_endpoint: undefined };
    await expect(api({ introspection: INTROSPECTION }).rs.ready()).rejects.toThrow('has no introspection_endpoint');
    as.metadataOverrides = { introspection_endpoint_auth_methods_supported: ['private_key_jwt'] };
    await expect(api({ introspection: INTROSPECTION }).rs.ready()).rejects.toThrow('does not list client_secret_basic');
  });

  it('refuses a metadata document that is not a JSON object', async () => {
    await start();
    as.metadata.handler = (_req, res) => res.json(['issuer']);
    await expect(api().rs.ready()).rejects.toThrow('is not a JSON object');
  });

  it('remembers a failed discovery for failureBackoffSeconds, then tries again', async () => {
    await start();
    as.metadata.handler = (_req, res) => res.status(500).end();
    const { get } = api({ failureBackoffSeconds: 5 });
    const token = await mint(key, claims(as, clock));
    expectUnavailable(await get(token));
    const during = await get(token);
    expectUnavailable(during);
    expect(during.headers['retry-after']).toBe('5');
    expect(as.metadata.hits).toBe(1);
    as.metadata.handler = (_req, res) => res.json(as.metadataDocument());
    clock.advance(6);
    expect((await get(token)).status).toBe(200);
  });

  it('keeps using the last good metadata while a refresh fails, and logs it', async () => {
    await start();
    as.metadata.handler = (_req, res) => res.set('cache-control', 'max-age=60').json(as.metadataDocument());
    const logger = memoryLogger();
    const { get } = api({ logger, minCacheSeconds: 0 });
    expect((await get(await mint(key, claims(as, clock)))).status).toBe(200);
    as.metadata.handler = (_req, res) => res.status(502).end();
    clock.advance(61);
    expect((await get(await mint(key, claims(as, clock)))).status).toBe(200);
    // The refresh runs behind the request (stale-while-revalidate); its failure is logged.
    await until(() => logger.lines.join('\n').includes('the previous copy is used'), 'the failed refresh logged');
    expect(as.metadata.hits).toBe(2);
    // For the backoff window the previous copy serves without another fetch.
    expect((await get(await mint(key, claims(as, clock)))).status).toBe(200);
    expect(as.metadata.hits).toBe(2);
  });

  it('answers with the last good metadata at once while a refresh hangs (stale-while-revalidate), then uses the refreshed copy', async () => {
    await start();
    as.metadata.handler = (_req, res) => res.set('cache-control', 'max-age=60').json(as.metadataDocument());
    const logger = memoryLogger();
    const { get } = api({ logger, minCacheSeconds: 0, timeoutMs: 1000, failureBackoffSeconds: 5 });
    expect((await get(await mint(key, claims(as, clock)))).status).toBe(200);
    as.hang(as.metadata);
    clock.advance(61);
    // Stale now: each request is answered with the previous copy, never the 503 of its deadline.
    for (let i = 0; i < 3; i++) {
      const res = await get(await mint(key, claims(as, clock)));
      expect(res.status).toBe(200);
      expect(res.body.clientId).toBe('client-1');
    }
    // The one hung refresh times out; the previous copy then serves for the backoff window.
    await until(() => logger.lines.join('\n').includes('the previous copy is used'), 'the failed refresh logged');
    expect(as.metadata.hits).toBe(2);
    // The issuer answers again: the next stale request refreshes behind, and the one after uses the new copy.
    as.metadata.handler = (_req, res) => res.set('cache-control', 'max-age=60').json(as.metadataDocument());
    clock.advance(6);
    expect((await get(await mint(key, claims(as, clock)))).status).toBe(200);
    await until(() => as.metadata.hits === 3, 'the refresh behind the stale copy');
    await new Promise((r) => setTimeout(r, 100));
    // Stored with its max-age (60 s): past the 5 s backoff the copy is fresh, so no fetch.
    clock.advance(10);
    expect((await get(await mint(key, claims(as, clock)))).status).toBe(200);
    expect(as.metadata.hits).toBe(3);
    // Only the hung refresh was logged: the one that succeeded replaced the copy silently.
    expect(logger.lines.filter((l) => l.includes('the previous copy is used'))).toHaveLength(1);
  }, 20_000);
});

describe('resourceServer › addresses', () => {
  it('refuses a private address, before connecting, with allowPrivateAddresses: false', async () => {
    const rs = resourceServer({ issuer: 'https://10.0.0.1', audience: AUDIENCE, allowPrivateAddresses: false, logger: memoryLogger() });
    await expect(rs.ready()).rejects.toThrow('resolves to 10.0.0.1, an address that is not allowed');
  });

  it('tries a private address by default (an internal authorization server)', async () => {
    // 192.0.2.1 (TEST-NET-1) is never routed: the fetch fails, but it is not refused.
    const rs = resourceServer({ issuer: 'https://192.0.2.1', audience: AUDIENCE, timeoutMs: 200, logger: memoryLogger() });
    const error = await rs.ready().then(() => undefined, (e: unknown) => e as Error);
    expect(error).toBeInstanceOf(Error);
    expect(error!.message).not.toContain('not allowed');
  }, 20_000);

  /** A TCP listener on 127.0.0.1 that counts connections and drops them (no TLS: enough to see one). */
  async function loopbackListener(): Promise<{ port: number; connections: () => number; close: () => Promise<void> }> {
    const { createServer } = await import('node:net');
    let connections = 0;
    const server = createServer((socket) => {
      connections++;
      socket.destroy();
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const { port } = server.address() as import('node:net').AddressInfo;
    return { port, connections: () => connections, close: () => new Promise<void>((r) => server.close(() => r())) };
  }

  it('counts loopback as private: an https issuer on 127.0.0.1 is refused before connecting with allowPrivateAddresses: false', async () => {
    const listener = await loopbackListener();
    try {
      const rs = resourceServer({ issuer: `https://127.0.0.1:${listener.port}`, audience: AUDIENCE, allowPrivateAddresses: false, timeoutMs: 1000, logger: memoryLogger() });
      await expect(rs.ready()).rejects.toThrow('resolves to 127.0.0.1, an address that is not allowed');
      expect(listener.connections()).toBe(0);
    } finally {
      await listener.close();
    }
  });

  it('counts loopback as private: by default an https issuer on 127.0.0.1 is tried (the same machine)', async () => {
    const listener = await loopbackListener();
    try {
      const rs = resourceServer({ issuer: `https://127.0.0.1:${listener.port}`, audience: AUDIENCE, timeoutMs: 1000, logger: memoryLogger() });
      const error = await rs.ready().then(() => undefined, (e: unknown) => e as Error);
      expect(error).toBeInstanceOf(Error);
      expect(error!.message).not.toContain('not allowed');
      expect(listener.connections()).toBe(1);
    } finally {
      await listener.close();
    }
  });
});
