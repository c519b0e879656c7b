import { createServer as createHttpServer, type Server as HttpServer } from 'node:http';
import { createServer as createTcpServer, Socket, type AddressInfo, type Server as TcpServer } from 'node:net';
import { isAddressAllowed, safeFetch, SafeFetchError, type SafeFetchOptions } from '../../lib/http/safe_fetch';

/** A TCP listener that counts connections and closes them: whatever the fetcher tries, this sees it. */
async function listener(host: string): Promise<{ server: TcpServer; port: number; connections: () => number }> {
  let count = 0;
  const server = createTcpServer((socket) => {
    count++;
    socket.destroy();
  });
  await new Promise<void>((resolve) => server.listen(0, host, resolve));
  closers.push(() => new Promise<void>((resolve) => server.close(() => resolve())));
  return { server, port: (server.address() as AddressInfo).port, connections: () => count };
}

async function httpServer(handler: Parameters<typeof createHttpServer>[1]): Promise<{ server: HttpServer; origin: string }> {
  const server = createHttpServer(handler);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  closers.push(() => {
    server.closeAllConnections();
    return new Promise<void>((resolve) => server.close(() => resolve()));
  });
  return { server, origin: `http://127.0.0.1:${(server.address() as AddressInfo).port}` };
}

const closers: (() => Promise<void>)[] = [];
afterEach(async () => {
  jest.restoreAllMocks();
  while (closers.length) await closers.pop()!();
});

const BOUNDS: SafeFetchOptions = { timeoutMs: 2000, maxBytes: 1024 };

async function failure(p: Promise<unknown>): Promise<SafeFetchError> {
  const e = await p.then(
    () => {
      throw new Error('the fetch succeeded');
    },
    (err: unknown) => err,
  );
  expect(e).toBeInstanceOf(SafeFetchError);
  return e as SafeFetchError;
}

describe('safeFetch', () => {
  it.each([
    ['127.0.0.1', (p: number) => `https://127.0.0.1:${p}/jwks`],
    ['127.0.0.1', (p: number) => `https://localhost:${p}/jwks`],
    ['127.0.0.1', (p: number) => `https://[::ffff:127.0.0.1]:${p}/jwks`],
    ['127.0.0.1', (p: number) => `https://2130706433:${p}/jwks`],
    ['::1', (p: number) => `https://[::1]:${p}/jwks`],
  ])('refuses a loopback address (listening on %s) before connecting: %#', async (host, at) => {
    const l = await listener(host);
    const e = await failure(safeFetch(at(l.port), BOUNDS));
    expect(e.code).toBe('address_not_allowed');
    expect(l.connections()).toBe(0);
  });

  it.each([
    'https://10.0.0.1/jwks',
    'https://172.16.5.4/jwks',
    'https://192.168.1.1/jwks',
    'https://169.254.169.254/latest/meta-data',
    'https://100.64.0.1/jwks',
    'https://0.0.0.0/jwks',
    'https://224.0.0.1/jwks',
    'https://255.255.255.255/jwks',
    'https://[::]/jwks',
    'https://[fd00::1]/jwks',
    'https://[fe80::1]/jwks',
    'https://[ff02::1]/jwks',
    'https://[::ffff:169.254.169.254]/jwks',
    'https://[::ffff:10.0.0.1]/jwks',
    'https://[64:ff9b::a00:1]/jwks',
    'https://[2002:a9fe:a9fe::1]/jwks',
  ])('refuses %s without opening a socket', async (url) => {
    const connect = jest.spyOn(Socket.prototype, 'connect');
    const e = await failure(safeFetch(url, { ...BOUNDS, allowLoopbackAddresses: true }));
    expect(e.code).toBe('address_not_allowed');
    expect(connect).not.toHaveBeenCalled();
  });

  it('refuses a name when any of its addresses is not allowed, and connects to none of them', async () => {
    const l = await listener('127.0.0.1');
    const resolve = jest.fn(async () => [
      { address: '127.0.0.1', family: 4 },
      { address: '10.0.0.1', family: 4 },
    ]);
    const e = await failure(safeFetch(`https://keys.example:${l.port}/jwks`, { ...BOUNDS, allowLoopbackAddresses: true, resolve }));
    expect(e).toMatchObject({ code: 'address_not_allowed', message: 'the URL resolves to 10.0.0.1, an address that is not allowed' });
    expect(resolve).toHaveBeenCalledWith('keys.example');
    expect(l.connections()).toBe(0);
  });

  it('connects only to the address it checked (a name resolved once, no rebinding)', async () => {
    const { origin } = await httpServer((_req, res) => res.end('{"keys":[]}'));
    const port = new URL(origin).port;
    const answers = [[{ address: '127.0.0.1', family: 4 }], [{ address: '10.0.0.1', family: 4 }]];
    const resolve = jest.fn(async () => answers.shift()!);
    const res = await safeFetch(`http://localhost:${port}/jwks`, { ...BOUNDS, allowLoopbackHttp: true, resolve });
    expect(res).toMatchObject({ status: 200, body: '{"keys":[]}' });
    expect(resolve).toHaveBeenCalledTimes(1);
  });

  it('sends http only to loopback addresses, even when private addresses are allowed', async () => {
    const resolve = async () => [{ address: '192.168.1.10', family: 4 }];
    const e = await failure(safeFetch('http://localhost:9/jwks', { ...BOUNDS, allowLoopbackHttp: true, allowPrivateAddresses: true, resolve }));
    expect(e.code).toBe('address_not_allowed');
    expect((await failure(safeFetch('http://keys.example/jwks', { ...BOUNDS, allowLoopbackHttp: true }))).code).toBe('url_not_allowed');
    expect((await failure(safeFetch('ftp://keys.example/jwks', BOUNDS))).code).toBe('url_not_allowed');
    expect((await failure(safeFetch('not a url', BOUNDS))).message).toBe('the URL is not an absolute URL');
  });

  it('connects to private addresses when allowed (development)', async () => {
    const l = await listener('127.0.0.1');
    const e = await failure(safeFetch(`https://127.0.0.1:${l.port}/jwks`, { ...BOUNDS, allowPrivateAddresses: true }));
    // The listener speaks no TLS: the connection was made, the handshake failed.
    expect(e.code).toBe('unreachable');
    expect(l.connections()).toBe(1);
    const viaName = await failure(safeFetch(`https://localhost:${l.port}/jwks`, { ...BOUNDS, allowLoopbackAddresses: true }));
    expect(viaName.code).toBe('unreachable');
    expect(l.connections()).toBe(2);
  });

  it('answers an expected status with its headers and body', async () => {
    const { origin } = await httpServer((req, res) => {
      res.writeHead(200, { 'content-type': 'application/json', 'cache-control': 'max-age=60', 'x-seen': String(req.headers['x-test']) });
      res.end('{"keys":[]}');
    });
    const res = await safeFetch(`${origin}/jwks`, { ...BOUNDS, allowLoopbackHttp: true, headers: { 'x-test': 'yes' } });
    expect(res.status).toBe(200);
    expect(res.body).toBe('{"keys":[]}');
    expect(res.headers.get('cache-control')).toBe('max-age=60');
    expect(res.headers.get('x-seen')).toBe('yes');
  });

  it('does not follow a redirect: it is an http_status error', async () => {
    let followed = 0;
    const { origin } = await httpServer((req, res) => {
      if (req.url === '/elsewhere') {
        followed++;
        return res.end('{"keys":[]}');
      }
      res.writeHead(302, { location: '/elsewhere' });
      res.end();
    });
    const e = await failure(safeFetch(`${origin}/jwks`, { ...BOUNDS, allowLoopbackHttp: true, label: 'the jwks_uri' }));
    expect(e).toMatchObject({ code: 'http_status', status: 302, message: 'the jwks_uri answered HTTP 302 (redirects are not followed)' });
    expect(followed).toBe(0);
  });

  it('refuses a body larger than maxBytes, declared or streamed', async () => {
    const big = 'x'.repeat(5000);
    let declare = true;
    const { origin } = await httpServer((_req, res) => {
      if (declare) res.writeHead(200, { 'content-length': String(big.length) });
      for (let i = 0; i < 5; i++) res.write(big.slice(i * 1000, (i + 1) * 1000));
      res.end();
    });
    expect((await failure(safeFetch(`${origin}/jwks`, { ...BOUNDS, allowLoopbackHttp: true }))).code).toBe('too_large');
    declare = false;
    expect((await failure(safeFetch(`${origin}/jwks`, { ...BOUNDS, allowLoopbackHttp: true }))).code).toBe('too_large');
  });

  it('bounds the whole exchange in time: no headers, or a body that stalls', async () => {
    let stall = false;
    const { origin } = await httpServer((_req, res) => {
      if (!stall) return;
      res.writeHead(200);
      res.write('{"keys":');
    });
    const options = { ...BOUNDS, timeoutMs: 200, allowLoopbackHttp: true };
    expect(await failure(safeFetch(`${origin}/jwks`, options))).toMatchObject({ code: 'timeout', message: 'the URL did not answer within 200 ms' });
    stall = true;
    expect((await failure(safeFetch(`${origin}/jwks`, options))).code).toBe('timeout');
  });

  it('takes a time limit longer than a Node timer (2^31 - 1 ms) as that longest limit, not as 1 ms', async () => {
    const { origin } = await httpServer((_req, res) => {
      setTimeout(() => res.writeHead(200, { 'content-type': 'application/json' }).end('{"keys":[]}'), 50);
    });
    const res = await safeFetch(`${origin}/jwks`, { ...BOUNDS, timeoutMs: 3_000_000_000, allowLoopbackHttp: true });
    expect(res.status).toBe(200);
    expect(res.body).toBe('{"keys":[]}');
  });

  it('reports a name that does not resolve, and a refused connection, as unreachable', async () => {
    const resolve = async (): Promise<never> => {
      throw Object.assign(new Error('getaddrinfo ENOTFOUND keys.invalid'), { code: 'ENOTFOUND' });
    };
    expect((await failure(safeFetch('https://keys.invalid/jwks', { ...BOUNDS, resolve }))).code).toBe('unreachable');
    const l = await listener('127.0.0.1');
    await new Promise<void>((r) => l.server.close(() => r()));
    expect((await failure(safeFetch(`http://127.0.0.1:${l.port}/jwks`, { ...BOUNDS, allowLoopbackHttp: true }))).code).toBe('unreachable');
  });
});

describe('isAddressAllowed', () => {
  it.each(['93.184.215.14', '8.8.8.8', '2606:4700:4700::1111', '::ffff:8.8.8.8'])('allows the public address %s', (a) => {
    expect(isAddressAllowed(a)).toBe(true);
  });

  it.each(['127.0.0.1', '::1', '::ffff:7f00:1', '10.1.2.3', '172.31.255.255', '192.168.0.1', '169.254.169.254', '100.127.0.1', '198.18.0.1', '192.0.2.1', '::', 'fc00::1', 'fe80::1%eth0', 'not-an-ip'])(
    'refuses %s',
    (a) => {
      expect(isAddressAllowed(a)).toBe(false);
    },
  );

  it('allows loopback only with allowLoopbackAddresses, everything with allowPrivateAddresses', () => {
    expect(isAddressAllowed('127.0.0.1', { allowLoopbackAddresses: true })).toBe(true);
    expect(isAddressAllowed('::1', { allowLoopbackAddresses: true })).toBe(true);
    expect(isAddressAllowed('10.0.0.1', { allowLoopbackAddresses: true })).toBe(false);
    expect(isAddressAllowed('10.0.0.1', { allowPrivateAddresses: true })).toBe(true);
  });
});
