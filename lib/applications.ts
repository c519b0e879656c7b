/** `auth.createApplication()`: registers a client with a generated id and a high-entropy secret. */
import type { Request, Response } from 'express';
import { ContextImpl } from './context';
import { randomToken } from './crypto';
import type { Runtime } from './runtime';
import { isScopeToken } from './scopes';
import type { Application } from './store';

export interface CreateApplicationInput {
  name: string;
  description?: string;
  homepageUrl?: string;
  /** Registered redirect URIs (absolute, no fragment, RFC 6749 §3.1.2). */
  redirectUri?: string | string[];
  scopes?: string | string[];
  /** One method or several; default: `oauthDefaultTokenEndpointAuthMethods` (the column stays NULL). */
  tokenEndpointAuthMethod?: string | string[];
  /**
   * Grant types the client may use. Default, as RFC 7591 §2 says: `authorization_code`, plus
   * `refresh_token` when the `refresh` feature is enabled. Other grants (`client_credentials`,
   * the JWT bearer grant) are never implied: a client gets them only by naming them, since a
   * client credentials token acts for no user with every scope the client holds. A server
   * without `authorization_code_grant` has no default to give, so there `grantTypes` is
   * required (a TypeError otherwise). `[]` is a client of no grant, e.g. a resource server that
   * only calls introspection.
   */
  grantTypes?: string[];
  responseTypes?: string[];
  responseModes?: string[];
  /** A JWK Set (object or JSON string), for `private_key_jwt`. */
  jwks?: object | string;
  jwksUri?: string;
  logoUri?: string;
  tosUri?: string;
  policyUri?: string;
  contacts?: string[];
  softwareId?: string;
  softwareVersion?: string;
  accountId?: string | number;
  /**
   * The format of the client's access tokens: `'jwt'` (RFC 9068, needs `jwt_access_tokens`) or
   * `'opaque'`. Default: the server's `oauthAccessTokenFormat` (the column stays NULL).
   */
  accessTokenFormat?: 'jwt' | 'opaque';
}

export interface CreatedApplication {
  clientId: string;
  /** Returned once and stored only as a bcrypt hash; undefined for public clients (`none`). */
  clientSecret?: string;
  application: Application;
}

/** A context for work outside any request (the request is an empty stand-in). */
export function systemContext(rt: Runtime): ContextImpl {
  const req = { headers: {}, baseUrl: '', originalUrl: '', url: '', protocol: 'http', method: 'GET', get: () => undefined } as unknown as Request;
  return new ContextImpl(rt, req, {} as Response);
}

function list(v: string | string[] | undefined, sep = ' '): string[] | undefined {
  if (v === undefined) return undefined;
  return (Array.isArray(v) ? v : v.split(sep)).map((s) => s.trim()).filter(Boolean);
}

/** RFC 3986 §2: the characters a URI may hold (unreserved, reserved, and `%` of a pct-encoded octet). */
const URI_CHARACTERS = /^[A-Za-z0-9\-._~:/?#[\]@!$&'()*+,;=%]*$/;
/** RFC 3986 Appendix B: scheme, authority, path and query of a URI reference (a fragment is refused before). */
const URI_PARTS = /^([^:/?#]+):(?:\/\/([^/?#]*))?([^?#]*)(\?[^#]*)?$/;

/**
 * An absolute URI without fragment (RFC 6749 §3.1.2), valid per RFC 3986: no whitespace,
 * control or non-ASCII characters, pct-encodings complete, a scheme, and a form the WHATWG
 * parser (`new URL`) keeps as is but for the case of the scheme, the authority's normal form
 * (host case, IP address forms, default port) and the `/` of an empty path. So `https://a.example/x y`, `/cb`, `https:a.example/cb` and
 * `https://a.example/a/../cb` are refused rather than stored as something else.
 */
function checkUri(kind: string, uri: unknown): void {
  if (typeof uri !== 'string') throw new TypeError(`createApplication(): ${kind} ${JSON.stringify(uri)} must be a string`);
  const label = `createApplication(): ${kind} '${uri}'`;
  if (!URI_CHARACTERS.test(uri)) throw new TypeError(`${label} contains whitespace, a control or non-ASCII character, or another character RFC 3986 §2 does not allow`);
  if (/%(?![0-9A-Fa-f]{2})/.test(uri)) throw new TypeError(`${label} has an incomplete percent-encoding (RFC 3986 §2.1)`);
  if (uri.includes('#')) throw new TypeError(`${label} must not have a fragment (RFC 6749 §3.1.2)`);
  const parts = URI_PARTS.exec(uri);
  if (!parts || !/^[A-Za-z][A-Za-z0-9+.-]*$/.test(parts[1]!)) throw new TypeError(`${label} is not an absolute URI (RFC 3986 §4.3)`);
  let u: URL;
  try {
    u = new URL(uri);
  } catch {
    throw new TypeError(`${label} is not a valid URI (RFC 3986 §3)`);
  }
  const [, scheme, authority, path, query = ''] = parts;
  // The authority as the parser normalised it (host case, IP address forms, default port): only
  // whether there is one, and the scheme, path and query, must come out as written.
  const normalisedAuthority = /^[^:]+:\/\/([^/?#]*)/.exec(u.href)?.[1];
  const host = authority === undefined ? '' : `//${normalisedAuthority ?? authority}`;
  const expected = `${scheme!.toLowerCase()}:${host}${path === '' && u.pathname === '/' ? '/' : path}${query}`;
  if (expected !== u.href) throw new TypeError(`${label} is not in RFC 3986 normal form (it would be read as ${JSON.stringify(u.href)})`);
}

/** Redirect URIs: an array as given (each entry checked whole), or one space-separated string. */
function uriList(v: unknown): unknown[] {
  if (v === undefined) return [];
  if (Array.isArray(v)) return v;
  if (typeof v === 'string') return v.split(' ').filter(Boolean);
  throw new TypeError('createApplication(): redirectUri must be a string or an array of strings');
}

/** RFC 7591 §2: `authorization_code` when grant_types is omitted; `refresh_token` goes with it when enabled. */
function defaultGrantTypes(rt: Runtime): string[] {
  if (!rt.grantTypes.has('authorization_code')) {
    throw new TypeError(`createApplication(): grantTypes is required when authorization_code_grant is not enabled: the RFC 7591 §2 default, authorization_code, is not served here (enabled: ${[...rt.grantTypes.keys()].join(', ')})`);
  }
  return rt.grantTypes.has('refresh_token') ? ['authorization_code', 'refresh_token'] : ['authorization_code'];
}

export async function createApplication(rt: Runtime, input: CreateApplicationInput): Promise<CreatedApplication> {
  if (!input || typeof input.name !== 'string' || input.name.trim() === '') throw new TypeError('createApplication(): name is required');
  const redirectUris = uriList(input.redirectUri);
  for (const uri of redirectUris) checkUri('redirect URI', uri);
  const scopes = list(input.scopes) ?? [];
  for (const s of scopes) if (!isScopeToken(s)) throw new TypeError(`createApplication(): '${s}' is not a valid scope (RFC 6749 §3.3)`);
  const methods = list(input.tokenEndpointAuthMethod) ?? null;
  for (const m of methods ?? []) {
    if (!rt.clientAuthMethods.has(m)) throw new TypeError(`createApplication(): client authentication method '${m}' is not provided by the enabled features (${[...rt.clientAuthMethods.keys()].join(', ')})`);
  }
  const grantTypes = input.grantTypes ?? defaultGrantTypes(rt);
  if (!Array.isArray(grantTypes)) throw new TypeError('createApplication(): grantTypes must be an array of grant types');
  for (const g of grantTypes) {
    if (!rt.grantTypes.has(g)) throw new TypeError(`createApplication(): grant type '${g}' is not provided by the enabled features (${[...rt.grantTypes.keys()].join(', ')})`);
  }
  if (input.jwksUri !== undefined) checkUri('jwks_uri', input.jwksUri);
  let jwks: string | null = null;
  if (input.jwks !== undefined) {
    const parsed: unknown = typeof input.jwks === 'string' ? JSON.parse(input.jwks) : input.jwks;
    if (typeof parsed !== 'object' || parsed === null || !Array.isArray((parsed as { keys?: unknown }).keys)) throw new TypeError('createApplication(): jwks must be a JWK Set ({ keys: [...] })');
    jwks = JSON.stringify(parsed);
  }

  const accessTokenFormat = input.accessTokenFormat ?? null;
  if (accessTokenFormat !== null && accessTokenFormat !== 'opaque' && !rt.extensions<{ name: string }>('accessTokenFormats').some((f) => f.name === accessTokenFormat)) {
    throw new TypeError(`createApplication(): accessTokenFormat must be 'opaque'${rt.enabled.has('jwt_access_tokens') ? " or 'jwt'" : " ('jwt' needs the jwt_access_tokens feature)"} (got ${JSON.stringify(accessTokenFormat)})`);
  }

  const ctx = systemContext(rt);
  const m = ctx.methods;
  // A client registered for `none` only is public: it has no secret to hold.
  const isPublic = methods !== null && methods.every((x) => x === 'none');
  const clientSecret = isPublic ? undefined : randomToken(32);
  const encrypt = (ctx.methods as unknown as { encryptClientSecret?: (s: string) => Promise<string | null> }).encryptClientSecret;
  const clientSecretEncrypted = clientSecret !== undefined && methods?.includes('client_secret_jwt') && encrypt ? await encrypt.call(ctx.methods, clientSecret) : null;
  const clientId = randomToken(16);
  const application = await ctx.store.applications.insert({
    accountId: input.accountId === undefined ? null : String(input.accountId),
    name: input.name,
    description: input.description ?? null,
    homepageUrl: input.homepageUrl ?? null,
    redirectUris: redirectUris as string[],
    clientId,
    clientSecretHash: clientSecret === undefined ? null : await m.secretHash(clientSecret),
    clientSecretEncrypted,
    scopes,
    tokenEndpointAuthMethods: methods,
    grantTypes,
    responseTypes: input.responseTypes ?? null,
    responseModes: input.responseModes ?? null,
    jwks,
    jwksUri: input.jwksUri ?? null,
    logoUri: input.logoUri ?? null,
    tosUri: input.tosUri ?? null,
    policyUri: input.policyUri ?? null,
    contacts: input.contacts ? input.contacts.join(' ') : null,
    softwareId: input.softwareId ?? null,
    softwareVersion: input.softwareVersion ?? null,
    createdAt: m.now(),
    accessTokenFormat,
  });
  return { clientId, clientSecret, application };
}
