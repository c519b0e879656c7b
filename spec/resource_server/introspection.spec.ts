import type { Response } from 'express';
import { AUDIENCE, Clock, claims, expectInvalidToken, expectUnavailable, FakeAuthorizationServer, INTROSPECTION, keyPair, memoryLogger, mint, protectedApi } from './support';

let as: FakeAuthorizationServer;
let clock: Clock;
beforeEach(async () => {
  as = await new FakeAuthorizationServer().start();
  as.keys = [await keyPair('ES256', 'one')];
  clock = new Clock();
});
afterEach(() => as.close());

let defaultHandler: FakeAuthorizationServer['introspection']['handler'];
beforeEach(() => {
  defaultHandler = as.introspection.handler;
});

function api(options: Record<string, unknown> = {}) {
  return protectedApi({ issuer: as.issuer, audience: AUDIENCE, introspection: INTROSPECTION, now: clock.now, logger: memoryLogger(), ...options });
}

/** An active access token as this package's /introspect describes one (RFC 7662 §2.2). */
function active(extra: Record<string, unknown> = {}): Record<string, unknown> {
  return { active: true, scope: 'books.read', client_id: 'client-1', token_type: 'Bearer', exp: clock.seconds + 600, iat: clock.seconds, sub: 'user-1', aud: AUDIENCE, iss: as.issuer, ...extra };
}

describe('resourceServer › opaque tokens by introspection (RFC 7662)', () => {
  it('accepts an active token with client_secret_basic credentials and sets req.oauth', async () => {
    as.tokens.set('opaque-1', active());
    const { get } = api();
    const res = await get('opaque-1');
    expect(res.status).toBe(200);
    expect(res.body).toEqual({
      accountId: 'user-1',
      clientId: 'client-1',
      applicationId: null,
      scopes: ['books.read'],
      grantId: null,
      expiresAt: new Date((clock.seconds + 600) * 1000).toISOString(),
      token: 'opaque-1',
    });
    // RFC 6749 §2.3.1: form-encoded, then Basic.
    expect(as.introspectionAuth).toEqual([`Basic ${Buffer.from('rs-client:rs+secret%3A1').toString('base64')}`]);
  });

  it('gives each request its own req.oauth: a route that changes a cached answer changes nothing for the next request', async () => {
    as.tokens.set('opaque-1', active());
    const { app, get, rs } = api({ introspectionCacheSeconds: 30 });
    app.get('/mutate', rs.require('books.read'), (req, res) => {
      req.oauth!.scopes.push('admin');
      req.oauth!.expiresAt.setTime(0);
      res.json(req.oauth);
    });
    const before = await get('opaque-1');
    const mutated = await get('opaque-1', '/mutate');
    expect(mutated.body).toMatchObject({ scopes: ['books.read', 'admin'], expiresAt: new Date(0).toISOString() });
    const after = await get('opaque-1');
    expect(after.status).toBe(200);
    expect(after.body).toEqual(before.body);
    expect(as.introspectionAuth).toHaveLength(1); // all three from the one cached answer
  });

  it('gives a client-credentials token (sub = client_id) a null accountId', async () => {
    as.tokens.set('cc', active({ sub: 'client-1' }));
    expect((await api().get('cc')).body).toMatchObject({ accountId: null, clientId: 'client-1' });
  });

  it('accepts an aud array that includes one of its audiences', async () => {
    as.tokens.set('multi', active({ aud: ['https://x.example', AUDIENCE] }));
    expect((await api({ audience: ['https://y.example', AUDIENCE] }).get('multi')).status).toBe(200);
  });

  it('answers 403 insufficient_scope for an active token without the scope', async () => {
    as.tokens.set('opaque-1', active());
    const res = await api().get('opaque-1', '/admin');
    expect(res.status).toBe(403);
    expect(res.body.error).toBe('insufficient_scope');
  });

  const refused: [string, () => Record<string, unknown>][] = [
    ['inactive', () => ({ active: false })],
    ['a refresh token (active, no token_type)', () => active({ token_type: undefined })],
    ['a DPoP token', () => active({ token_type: 'DPoP' })],
    ['expired', () => active({ exp: clock.seconds - 60 })],
    ['without exp', () => active({ exp: undefined })],
    ['not yet valid (nbf)', () => active({ nbf: clock.seconds + 60 })],
    ['of another issuer', () => active({ iss: 'https://evil.example' })],
    ['without client_id', () => active({ client_id: undefined })],
    // RFC 7662 §2.2 `aud`, RFC 8707: a token for another resource, or naming none, is not for this one.
    ['for another audience', () => active({ aud: 'https://other.example' })],
    ['for other audiences (array)', () => active({ aud: ['https://other.example', 'https://x.example'] })],
    ['without aud', () => active({ aud: undefined })],
    ['with a non-string aud', () => active({ aud: 42 })],
  ];
  it.each(refused)('refuses %s with 401 invalid_token', async (_name, answer) => {
    as.tokens.set('t', JSON.parse(JSON.stringify(answer())) as Record<string, unknown>);
    expectInvalidToken(await api().get('t'));
  });

  it('caches an answer for at most introspectionCacheSeconds', async () => {
    as.tokens.set('opaque-1', active());
    const { get } = api({ introspectionCacheSeconds: 30 });
    for (let i = 0; i < 3; i++) expect((await get('opaque-1')).status).toBe(200);
    expect(as.introspection.hits).toBe(1);
    clock.advance(31);
    as.tokens.set('opaque-1', { active: false }); // revoked meanwhile
    expectInvalidToken(await get('opaque-1'));
    expect(as.introspection.hits).toBe(2);
  });

  it('never caches an answer past the token’s exp', async () => {
    as.tokens.set('short', active({ exp: clock.seconds + 20 }));
    const { get } = api({ introspectionCacheSeconds: 300 });
    expect((await get('short')).status).toBe(200);
    clock.advance(21);
    as.tokens.set('short', { active: false });
    expectInvalidToken(await get('short'));
    expect(as.introspection.hits).toBe(2);
  });

  it('caches an inactive answer too, and asks every time with introspectionCacheSeconds: 0', async () => {
    const { get } = api();
    expectInvalidToken(await get('unknown'));
    expectInvalidToken(await get('unknown'));
    expect(as.introspection.hits).toBe(1);
    const uncached = api({ introspectionCacheSeconds: 0 });
    as.tokens.set('opaque-1', active());
    await uncached.get('opaque-1');
    await uncached.get('opaque-1');
    expect(as.introspection.hits).toBe(3);
  });

  it('keeps at most introspectionCacheSize answers, dropping the least recently used', async () => {
    for (const t of ['a', 'b', 'c']) as.tokens.set(t, active());
    const { get } = api({ introspectionCacheSize: 2 });
    await get('a');
    await get('b');
    await get('a'); // a is now the most recent
    await get('c'); // drops b
    expect(as.introspection.hits).toBe(3);
    await get('a');
    expect(as.introspection.hits).toBe(3);
    await get('b');
    expect(as.introspection.hits).toBe(4);
  });

  it('still verifies JWTs locally, without introspection', async () => {
    const { get } = api();
    expect((await get(await mint(as.keys[0]!, claims(as, clock)))).status).toBe(200);
    expect(as.introspection.hits).toBe(0);
  });

  it('answers 503 when the authorization server refuses the credentials, and logs why without the secret', async () => {
    as.tokens.set('opaque-1', active());
    const logger = memoryLogger();
    const { get } = api({ logger, introspection: { clientId: 'rs-client', clientSecret: 'wrong-secret' } });
    expectUnavailable(await get('opaque-1'));
    const log = logger.lines.join('\n');
    expect(log).toContain('authorization_server_unavailable');
    expect(log).toContain('HTTP 401');
    expect(log).not.toContain('wrong-secret');
    expect(log).not.toContain('opaque-1');
  });

  it('answers 503 within timeoutMs when the introspection endpoint hangs, then fails fast during the backoff', async () => {
    as.hang(as.introspection);
    const { get } = api({ timeoutMs: 300, failureBackoffSeconds: 5 });
    expectUnavailable(await get('opaque-1'));
    // Once the hung fetch has timed out (its timer is due before this one), other tokens get 503 at once for the backoff window.
    await new Promise((r) => setTimeout(r, 400));
    expectUnavailable(await get('opaque-2'));
    expect(as.introspection.hits).toBe(1);
  }, 20_000);

  it('answers 503 for an answer that is not RFC 7662 JSON', async () => {
    as.introspection.handler = (_req, res) => res.json({ status: 'ok' });
    expectUnavailable(await api().get('opaque-1'));
  });

  const endpointFailures: [string, (res: Response) => void][] = [
    ['refused credentials (401)', (res) => void res.status(401).json({ error: 'invalid_client' })],
    ['a server error (500)', (res) => void res.status(500).end()],
    ['an answer that is not JSON', (res) => void res.type('json').send('{nope')],
    ['JSON without a boolean active', (res) => void res.json({ status: 'ok' })],
  ];
  it.each(endpointFailures)('remembers %s for failureBackoffSeconds: other tokens get 503 at once, then the endpoint is asked again', async (_name, answer) => {
    as.introspection.handler = (_req, res) => answer(res);
    as.tokens.set('opaque-1', active());
    const { get } = api({ failureBackoffSeconds: 5 });
    for (let i = 0; i < 4; i++) expectUnavailable(await get(`opaque-${i}`));
    expect(as.introspection.hits).toBe(1);
    // After the window, with the endpoint healthy again: asked again, and the token works.
    clock.advance(6);
    as.introspection.handler = defaultHandler;
    const res = await get('opaque-1');
    expect(res.status).toBe(200);
    expect(res.body.clientId).toBe('client-1');
    expect(as.introspection.hits).toBe(2);
  });

  const tokenFailures: [string, (res: Response) => void][] = [
    ['400', (res) => void res.status(400).json({ error: 'invalid_request' })],
    ['413', (res) => void res.status(413).end()],
    ['414', (res) => void res.status(414).end()],
    ['422', (res) => void res.status(422).end()],
    ['an answer over maxResponseBytes', (res) => void res.json({ active: true, pad: 'x'.repeat(70_000) })],
  ];
  it.each(tokenFailures)('does not stop other tokens after an answer that may be about one token only (%s): each is asked for', async (_name, answer) => {
    as.tokens.set('opaque-1', active());
    as.introspection.handler = (req, res) => (req.body.token === 'odd' ? answer(res) : defaultHandler(req, res));
    const { get } = api({ failureBackoffSeconds: 5 });
    expectUnavailable(await get('odd'));
    const res = await get('opaque-1');
    expect(res.status).toBe(200);
    expect(res.body.clientId).toBe('client-1');
    expect(as.introspection.hits).toBe(2);
  });
});
