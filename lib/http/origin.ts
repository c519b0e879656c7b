/**
 * The issuer identifier (RFC 8414 §2) and what may be trusted of a request to derive it.
 * A configured issuer is the only one production uses; a derived one (development, tests, the
 * quick start) reads the `Host` header, and `X-Forwarded-Host` / `X-Forwarded-Proto` only
 * through Express's own `trust proxy` setting, never on their own.
 */
import type { Request, Response } from 'express';
import { isIPv6 } from 'node:net';
import { isLoopbackHost } from './safe_fetch';

/** Why an `issuer` option is refused, or null when it is a valid issuer identifier. */
export function issuerProblem(issuer: unknown): string | null {
  if (typeof issuer !== 'string') return 'must be a string';
  let url: URL;
  try {
    url = new URL(issuer);
  } catch {
    return 'must be an absolute URL';
  }
  // RFC 8414 §2: https, no query, no fragment. `new URL` drops an empty `?` or `#`, so look at the text.
  if (issuer.includes('?') || issuer.includes('#')) return 'must have no query or fragment';
  if (url.username !== '' || url.password !== '') return 'must carry no user name or password';
  if (issuer.endsWith('/')) return 'must not end with a slash (endpoint paths are appended to it)';
  if (url.protocol === 'https:') return null;
  if (url.protocol === 'http:' && isLoopbackHost(url.hostname)) return null;
  return 'must use https (http only for a loopback host: localhost, 127.0.0.0/8 or [::1])';
}

/** A host name (DNS labels, underscores tolerated) or IPv4 address, then an optional port. */
const NAME = /^([A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?(?:\.[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?)*\.?)(?::(\d{1,5}))?$/;
/** A bracketed IPv6 literal (RFC 3986 §3.2.2), then an optional port. */
const IPV6 = /^\[([0-9A-Fa-f:.]+)\](?::(\d{1,5}))?$/;

/** Whether a Host header value is a host name or address with an optional port (RFC 9110 §7.2). */
export function isValidHost(host: string): boolean {
  if (host.length > 255) return false;
  const m = NAME.exec(host) ?? IPV6.exec(host);
  if (!m) return false;
  if (m[2] !== undefined && Number(m[2]) > 65535) return false;
  return host.startsWith('[') ? isIPv6(m[1]!) : true;
}

type TrustFn = (address: string | undefined, hop: number) => boolean;

/**
 * The request's host as the client addressed it: `Host`, or the first `X-Forwarded-Host` when
 * Express's `trust proxy` trusts the peer (the same rule as Express 5's `req.host`, which
 * Express 4 lacks). Undefined when absent.
 */
export function requestHost(req: Request): string | undefined {
  const trust = req.app?.get('trust proxy fn') as TrustFn | undefined;
  const forwarded = req.get('X-Forwarded-Host');
  if (forwarded && trust?.(req.socket?.remoteAddress, 0)) {
    const first = forwarded.split(',')[0]!.trim();
    if (first) return first;
  }
  return req.get('Host') || undefined;
}

/** The request's origin, or null when its host is missing or is not a valid host name. */
export function requestOrigin(req: Request): string | null {
  const host = requestHost(req);
  if (host === undefined || !isValidHost(host)) return null;
  // req.protocol reads X-Forwarded-Proto only when `trust proxy` trusts the peer; a proxy may still pass anything on.
  const protocol = req.protocol;
  if (protocol !== 'http' && protocol !== 'https') return null;
  return `${protocol}://${host.toLowerCase()}`;
}

/**
 * Marks a response that depends on a derived issuer: the request headers it was built from
 * vary it, and no shared cache may keep it (a poisoned `Host` must not reach other users).
 */
export function varyOnDerivedIssuer(req: Request, res: Response): void {
  res.vary('Host');
  const trust = req.app?.get('trust proxy fn') as TrustFn | undefined;
  if (trust?.(req.socket?.remoteAddress, 0)) {
    res.vary('X-Forwarded-Host');
    res.vary('X-Forwarded-Proto');
  }
}
