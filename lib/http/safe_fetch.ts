/**
 * The one fetcher for URLs a client or another party controls (`jwks_uri`, and later client
 * metadata documents and resource-server discovery and introspection): a GET (or a POST with a
 * body) that cannot be turned against the server's own network (SSRF) or hold a request for long.
 * - https only; http only to a loopback host when the caller allows it (development);
 * - every address a name resolves to is checked, and only checked addresses are handed to the
 *   socket, through the request's own `lookup`, so no second resolution can rebind the name
 *   (DNS rebinding); an IP-literal host, which skips lookup, is checked before any connection;
 * - private, loopback, link-local, unique-local, CGNAT, multicast, reserved and documentation
 *   ranges (RFC 6890 and the IANA special-purpose registries), also when embedded in IPv6
 *   (IPv4-mapped, NAT64, 6to4), are refused unless the caller allows them;
 * - one timer bounds the whole exchange (lookup, connect, TLS, headers and body), the body is
 *   bounded by Content-Length and by the bytes actually streamed, and a redirect is an error,
 *   never followed.
 */
import { lookup as dnsLookup, type LookupAddress } from 'node:dns';
import { request as httpRequest, type IncomingMessage, type RequestOptions } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { BlockList, isIP } from 'node:net';
import { rootCertificates } from 'node:tls';

/** Why a fetch failed; the caller maps the code to its own. */
export type SafeFetchErrorCode =
  /** Not an absolute https URL (or http to a loopback host, when allowed). */
  | 'url_not_allowed'
  /** The host is, or resolves to, an address outside the public internet. */
  | 'address_not_allowed'
  /** The exchange did not finish within `timeoutMs`. */
  | 'timeout'
  /** A status the caller does not expect (a redirect among them: none is followed). */
  | 'http_status'
  /** The body is larger than `maxBytes`. */
  | 'too_large'
  /** No answer: resolution, connection, TLS or protocol failure. */
  | 'unreachable';

export class SafeFetchError extends Error {
  constructor(
    readonly code: SafeFetchErrorCode,
    message: string,
    /** The response status, for `http_status`. */
    readonly status?: number,
  ) {
    super(message);
    this.name = 'SafeFetchError';
  }
}

/** The longest delay a Node timer takes (2^31 - 1 ms, about 24.8 days); a longer one fires after 1 ms. */
export const MAX_FETCH_TIMEOUT_MS = 2 ** 31 - 1;

/** What is wrong with a fetch time limit given as an option, if anything: milliseconds, more than 0, at most `MAX_FETCH_TIMEOUT_MS`. */
export function fetchTimeoutProblem(value: unknown): string | undefined {
  if (typeof value !== 'number' || !Number.isFinite(value) || value <= 0) return 'must be a number of milliseconds, more than 0';
  if (value > MAX_FETCH_TIMEOUT_MS) return `must be at most ${MAX_FETCH_TIMEOUT_MS} (the longest delay a Node timer takes)`;
  return undefined;
}

/** Resolves a host name to all its addresses (`dns.lookup` with `all: true` by default). */
export type Resolver = (hostname: string) => Promise<LookupAddress[]>;

export interface SafeFetchOptions {
  /** Milliseconds for the whole exchange. */
  timeoutMs: number;
  /** Largest body accepted, in bytes. */
  maxBytes: number;
  /** Statuses answered with their body; any other (redirects included) is an `http_status` error. Default `[200]`. */
  expectedStatuses?: readonly number[];
  /** Request headers. */
  headers?: Record<string, string>;
  /**
   * A request body: the request is then a POST carrying it with its Content-Length (an RFC 7662
   * introspection request); without one it is a GET. Set its Content-Type in `headers`.
   */
  body?: string;
  /** Accept `http://` to a loopback host that resolves to loopback addresses only (development). */
  allowLoopbackHttp?: boolean;
  /** Accept loopback addresses (127.0.0.0/8, ::1) (development). */
  allowLoopbackAddresses?: boolean;
  /** Accept every address, private ranges included (development). */
  allowPrivateAddresses?: boolean;
  /** How the URL is named in error messages, e.g. `'the jwks_uri'`. Default `'the URL'`. */
  label?: string;
  /** Replaces DNS resolution (tests). */
  resolve?: Resolver;
  /**
   * PEM certificates trusted besides Node's bundled roots (`tls.rootCertificates`): a private CA,
   * or a development self-signed certificate. Certificates are always verified.
   */
  trustedCertificates?: string | null;
}

export interface SafeResponse {
  status: number;
  headers: Headers;
  /** The body as UTF-8 text. */
  body: string;
}

/** IPv4 ranges that are not globally reachable (RFC 6890, IANA IPv4 special-purpose registry). */
const PRIVATE_V4: readonly (readonly [string, number])[] = [
  ['0.0.0.0', 8], // "this network", unspecified
  ['10.0.0.0', 8], // RFC 1918
  ['100.64.0.0', 10], // RFC 6598 shared address space (CGNAT)
  ['127.0.0.0', 8], // loopback
  ['169.254.0.0', 16], // link-local, cloud metadata endpoints
  ['172.16.0.0', 12], // RFC 1918
  ['192.0.0.0', 24], // IETF protocol assignments
  ['192.0.2.0', 24], // TEST-NET-1
  ['192.88.99.0', 24], // 6to4 relay anycast (deprecated)
  ['192.168.0.0', 16], // RFC 1918
  ['198.18.0.0', 15], // benchmarking
  ['198.51.100.0', 24], // TEST-NET-2
  ['203.0.113.0', 24], // TEST-NET-3
  ['224.0.0.0', 4], // multicast
  ['240.0.0.0', 4], // reserved, broadcast
];

/** IPv6 ranges that are not globally reachable (RFC 6890, IANA IPv6 special-purpose registry). */
const PRIVATE_V6: readonly (readonly [string, number])[] = [
  ['::', 96], // unspecified, loopback and the deprecated IPv4-compatible addresses
  ['64:ff9b:1::', 48], // local-use NAT64
  ['100::', 64], // discard-only
  ['2001::', 23], // IETF protocol assignments (Teredo, ORCHID, benchmarking…)
  ['2001:db8::', 32], // documentation
  ['3fff::', 20], // documentation
  ['fc00::', 7], // unique local
  ['fe80::', 10], // link-local
  ['fec0::', 10], // site-local (deprecated)
  ['ff00::', 8], // multicast
];

const LOOPBACK_V4: readonly [string, number] = ['127.0.0.0', 8];

/** The rules of one IPv4 range, also where IPv6 carries an IPv4 address: mapped, NAT64 (RFC 6052) and 6to4 (RFC 3056). */
function addV4(list: BlockList, [net, prefix]: readonly [string, number]): void {
  list.addSubnet(net, prefix, 'ipv4');
  list.addSubnet(`::ffff:${net}`, 96 + prefix, 'ipv6');
  list.addSubnet(`64:ff9b::${net}`, 96 + prefix, 'ipv6');
  const [a, b, c, d] = net.split('.').map(Number) as [number, number, number, number];
  const hex = (hi: number, lo: number) => ((hi << 8) | lo).toString(16);
  list.addSubnet(`2002:${hex(a, b)}:${hex(c, d)}::`, 16 + prefix, 'ipv6');
}

const PRIVATE = new BlockList();
for (const range of PRIVATE_V4) addV4(PRIVATE, range);
for (const [net, prefix] of PRIVATE_V6) PRIVATE.addSubnet(net, prefix, 'ipv6');

const LOOPBACK = new BlockList();
addV4(LOOPBACK, LOOPBACK_V4);
LOOPBACK.addAddress('::1', 'ipv6');

/** The address without brackets or an IPv6 zone (`fe80::1%eth0`), with its family; null if not an IP address. */
function parseAddress(address: string): { ip: string; family: 'ipv4' | 'ipv6' } | null {
  const ip = address.replace(/^\[|\]$/g, '').replace(/%.*$/, '');
  const v = isIP(ip);
  return v === 4 ? { ip, family: 'ipv4' } : v === 6 ? { ip, family: 'ipv6' } : null;
}

/** Whether an address is loopback (127.0.0.0/8, ::1, and their IPv6 embeddings). */
export function isLoopbackAddress(address: string): boolean {
  const a = parseAddress(address);
  return a !== null && LOOPBACK.check(a.ip, a.family);
}

/** Whether a connection to this address is allowed under the options. */
export function isAddressAllowed(address: string, options: Pick<SafeFetchOptions, 'allowLoopbackAddresses' | 'allowPrivateAddresses'> = {}): boolean {
  const a = parseAddress(address);
  if (a === null) return false;
  if (options.allowPrivateAddresses) return true;
  if (!PRIVATE.check(a.ip, a.family)) return true;
  return options.allowLoopbackAddresses === true && LOOPBACK.check(a.ip, a.family);
}

/** Whether a URL host names the loopback interface: `localhost` or a loopback IP literal. */
/** `localhost` or a loopback address, as a URL's `hostname` spells them (`[::1]` bracketed). */
export function isLoopbackHost(hostname: string): boolean {
  return hostname.toLowerCase() === 'localhost' || isLoopbackAddress(hostname);
}

/** The URL, if its scheme may be fetched: https, or http to a loopback host when allowed. Addresses are checked when fetching. */
export function checkFetchUrl(input: string | URL, options: Pick<SafeFetchOptions, 'allowLoopbackHttp' | 'label'> = {}): URL {
  const label = options.label ?? 'the URL';
  let url: URL;
  try {
    url = new URL(input);
  } catch {
    throw new SafeFetchError('url_not_allowed', `${label} is not an absolute URL`);
  }
  if (url.protocol === 'https:') return url;
  if (url.protocol === 'http:' && options.allowLoopbackHttp && isLoopbackHost(url.hostname)) return url;
  throw new SafeFetchError('url_not_allowed', `${label} must use https`);
}

/**
 * GET `input` within the bounds of `options`. Resolves with an expected status, its headers and
 * body; rejects with a {@link SafeFetchError} otherwise, before any connection when the URL or
 * its addresses are not allowed.
 */
export function safeFetch(input: string | URL, options: SafeFetchOptions): Promise<SafeResponse> {
  const label = options.label ?? 'the URL';
  let url: URL;
  try {
    url = checkFetchUrl(input, options);
  } catch (e) {
    return Promise.reject(e);
  }
  const http = url.protocol === 'http:';
  const addressOptions = { allowPrivateAddresses: options.allowPrivateAddresses, allowLoopbackAddresses: options.allowLoopbackAddresses || http };
  // http is only for the loopback interface: the addresses must be loopback, whatever else is allowed.
  const allowed = (address: string) => (http ? isLoopbackAddress(address) : isAddressAllowed(address, addressOptions));
  const refused = (address: string) => new SafeFetchError('address_not_allowed', `${label} resolves to ${address}, an address that is not allowed`);

  const literal = parseAddress(url.hostname);
  if (literal && !allowed(literal.ip)) return Promise.reject(refused(literal.ip));

  return new Promise<SafeResponse>((resolve, reject) => {
    let settled = false;
    // A longer delay than a Node timer takes would fire after 1 ms: such a limit means "no sooner than that".
    const timer = setTimeout(() => fail(new SafeFetchError('timeout', `${label} did not answer within ${options.timeoutMs} ms`)), Math.min(options.timeoutMs, MAX_FETCH_TIMEOUT_MS));
    const fail = (e: SafeFetchError) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      req.destroy();
      reject(e);
    };
    const resolver = options.resolve ?? defaultResolver;
    const requestOptions: RequestOptions = {
      method: options.body === undefined ? 'GET' : 'POST',
      headers: {
        'accept-encoding': 'identity',
        ...options.headers,
        ...(options.body !== undefined && { 'content-length': String(Buffer.byteLength(options.body)) }),
      },
      // A fresh connection every time: no pooled socket outlives the exchange or its checks.
      agent: false,
      ...(options.trustedCertificates && { ca: [...rootCertificates, options.trustedCertificates] }),
      lookup: (hostname, lookupOptions, callback) => {
        resolver(hostname).then(
          (addresses) => {
            const family = (lookupOptions as { family?: number }).family;
            const candidates = addresses.filter((a) => !family || a.family === family);
            const bad = candidates.find((a) => !allowed(a.address));
            if (bad) return fail(refused(bad.address));
            if (candidates.length === 0) return fail(new SafeFetchError('unreachable', `${label} host ${hostname} has no address`));
            if ((lookupOptions as { all?: boolean }).all) (callback as (err: null, addresses: LookupAddress[]) => void)(null, candidates);
            else callback(null, candidates[0]!.address, candidates[0]!.family);
          },
          (e: Error) => fail(new SafeFetchError('unreachable', `${label} could not be resolved (${e.message})`)),
        );
      },
    };
    const req = (http ? httpRequest : httpsRequest)(url, requestOptions);
    req.on('error', (e) => fail(new SafeFetchError('unreachable', `${label} could not be fetched (${e.message})`)));
    req.on('response', (res) => {
      const status = res.statusCode ?? 0;
      if (!(options.expectedStatuses ?? [200]).includes(status)) {
        return fail(new SafeFetchError('http_status', `${label} answered HTTP ${status}${status >= 300 && status < 400 ? ' (redirects are not followed)' : ''}`, status));
      }
      const declared = Number(res.headers['content-length'] ?? '0');
      if (declared > options.maxBytes) return fail(tooLarge(label, options.maxBytes));
      readBody(res, options.maxBytes).then(
        (body) => {
          if (settled) return;
          settled = true;
          clearTimeout(timer);
          resolve({ status, headers: toHeaders(res), body });
        },
        (e: Error) => fail(e instanceof SafeFetchError ? e : new SafeFetchError('unreachable', `${label} could not be fetched (${e.message})`)),
      );
    });
    req.end(options.body);

    function readBody(res: IncomingMessage, max: number): Promise<string> {
      return new Promise((done, error) => {
        const chunks: Buffer[] = [];
        let size = 0;
        res.on('data', (chunk: Buffer) => {
          size += chunk.byteLength;
          if (size > max) return error(tooLarge(label, max));
          chunks.push(chunk);
        });
        res.on('end', () => done(Buffer.concat(chunks).toString('utf8')));
        res.on('error', error);
        res.on('aborted', () => error(new Error('the response was cut short')));
      });
    }
  });
}

function tooLarge(label: string, max: number): SafeFetchError {
  return new SafeFetchError('too_large', `${label} answered with more than ${max} bytes`);
}

function defaultResolver(hostname: string): Promise<LookupAddress[]> {
  return new Promise((resolve, reject) => {
    dnsLookup(hostname, { all: true, verbatim: true }, (err, addresses) => (err ? reject(err) : resolve(addresses)));
  });
}

/** The response headers as a Fetch `Headers` (repeated fields joined, as `fetch` does). */
function toHeaders(res: IncomingMessage): Headers {
  const headers = new Headers();
  for (let i = 0; i + 1 < res.rawHeaders.length; i += 2) {
    try {
      headers.append(res.rawHeaders[i]!, res.rawHeaders[i + 1]!);
    } catch {
      // A field Fetch would refuse is dropped; none of the callers' fields can be one.
    }
  }
  return headers;
}
