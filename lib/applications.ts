/** `auth.createApplication()`: registers a client with a generated id and a high-entropy secret. */
import type { Request, Response } from 'express';
import { ContextImpl } from './context';
import { randomToken } from './crypto';
import type { Runtime } from './runtime';
import { isResourceUri } from './resource';
import { isScopeToken } from './scopes';
import { redirectHosts } from './subject';
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
  /** `oidc`: where RP-initiated logout may send the user back (`post_logout_redirect_uri`), checked like redirect URIs. */
  postLogoutRedirectUris?: string | string[];
  /**
   * `oidc`: `'public'` (the same `sub` for every client) or `'pairwise'` (a `sub` per sector
   * identifier, OpenID Connect Core §8); default: the server's `oidcSubjectType`. A pairwise
   * client's redirect URIs must share one host, its sector identifier (§8.1).
   */
  subjectType?: 'public' | 'pairwise';
  /**
   * `resource_indicators`: the RFC 8707 resources (absolute URIs without fragment) this client
   * may ask for, in place of the server's `oauthResourceIndicators` (and the resources of
   * `protectedResource()`); `[]` allows none. Default (null): the server's list.
   */
  resourceIndicators?: string[] | null;
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
export function checkUri(kind: string, uri: unknown, caller = 'createApplication()'): void {
  if (typeof uri !== 'string') throw new TypeError(`${caller}: ${kind} ${JSON.stringify(uri)} must be a string`);
  const label = `${caller}: ${kind} '${uri}'`;
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
function uriList(v: unknown, caller: string): unknown[] {
  if (v === undefined) return [];
  if (Array.isArray(v)) return v;
  if (typeof v === 'string') return v.split(' ').filter(Boolean);
  throw new TypeError(`${caller}: redirectUri must be a string or an array of strings`);
}

// ---------------------------------------------------------------------------------------------
// The validation of registration fields, shared by createApplication() and applications.update().
// `caller` starts each message (`createApplication()`, `applications.update()`).

/** RFC 8252 §7.3 / §8.3: the hosts a plain-http redirect URI may name. */
export const LOOPBACK_HOST = /^(127\.\d{1,3}\.\d{1,3}\.\d{1,3}|\[::1\]|localhost)$/;

/**
 * Registered redirect URIs: each an RFC 3986 absolute URI without fragment (`checkUri`), and
 * `http` only for a loopback host (RFC 9700 §2.1 and §4.1: plain http elsewhere exposes the code
 * to the network; RFC 8252 §7.3 native apps listen on loopback).
 */
export function checkRedirectUris(caller: string, v: unknown): string[] {
  const uris = uriList(v, caller);
  for (const uri of uris) {
    checkUri('redirect URI', uri, caller);
    const u = new URL(uri as string);
    if (u.protocol === 'http:' && !LOOPBACK_HOST.test(u.hostname)) {
      throw new TypeError(`${caller}: redirect URI '${uri as string}' uses http outside loopback: use https (RFC 9700 §2.1; plain http only for 127.0.0.1, [::1] or localhost, RFC 8252 §7.3)`);
    }
  }
  return uris as string[];
}

/** The name column's width (lib/migrations/versions.ts): PostgreSQL refuses a longer value, SQLite would keep it. */
export const APPLICATION_NAME_MAX_LENGTH = 255;

export function checkName(caller: string, name: unknown): string {
  if (typeof name !== 'string' || name.trim() === '') throw new TypeError(`${caller}: name is required`);
  if (name.length > APPLICATION_NAME_MAX_LENGTH) throw new TypeError(`${caller}: name must be at most ${APPLICATION_NAME_MAX_LENGTH} characters (got ${name.length})`);
  return name;
}

/** Scope tokens (RFC 6749 §3.3): an array, or one space-separated string. */
export function checkScopes(caller: string, v: string | string[] | undefined): string[] {
  const scopes = list(v) ?? [];
  for (const s of scopes) if (!isScopeToken(s)) throw new TypeError(`${caller}: '${s}' is not a valid scope (RFC 6749 §3.3)`);
  return scopes;
}

/** Client-authentication methods of the enabled features; undefined → null (`oauthDefaultTokenEndpointAuthMethods`). */
export function checkAuthMethods(rt: Runtime, caller: string, v: string | string[] | undefined): string[] | null {
  const methods = list(v) ?? null;
  for (const m of methods ?? []) {
    if (!rt.clientAuthMethods.has(m)) throw new TypeError(`${caller}: client authentication method '${m}' is not provided by the enabled features (${[...rt.clientAuthMethods.keys()].join(', ')})`);
  }
  return methods;
}

/** Grant types of the enabled features. */
export function checkGrantTypes(rt: Runtime, caller: string, grantTypes: unknown): string[] {
  if (!Array.isArray(grantTypes)) throw new TypeError(`${caller}: grantTypes must be an array of grant types`);
  for (const g of grantTypes) {
    if (!rt.grantTypes.has(g)) throw new TypeError(`${caller}: grant type '${String(g)}' is not provided by the enabled features (${[...rt.grantTypes.keys()].join(', ')})`);
  }
  return grantTypes as string[];
}

export function checkJwksUri(caller: string, v: unknown): string {
  checkUri('jwks_uri', v, caller);
  return v as string;
}

/** A JWK Set (RFC 7517 §5), given as an object or JSON: `{ keys: [...] }`, each key with its `kty` (§4.1). Stored as JSON. */
export function checkJwks(caller: string, v: object | string): string {
  const message = `${caller}: jwks must be a JWK Set ({ keys: [...] })`;
  let parsed: unknown;
  try {
    parsed = typeof v === 'string' ? JSON.parse(v) : v;
  } catch {
    throw new TypeError(`${message}: it is not JSON`);
  }
  if (typeof parsed !== 'object' || parsed === null || !Array.isArray((parsed as { keys?: unknown }).keys)) throw new TypeError(message);
  (parsed as { keys: unknown[] }).keys.forEach((k, i) => {
    if (typeof k !== 'object' || k === null || typeof (k as { kty?: unknown }).kty !== 'string') throw new TypeError(`${message}: keys[${i}] is not a JWK (no kty, RFC 7517 §4.1)`);
  });
  return JSON.stringify(parsed);
}

/** 'opaque' or a contributed access token format (`'jwt'` with jwt_access_tokens); null: the server's default. */
export function checkAccessTokenFormat(rt: Runtime, caller: string, format: unknown): string | null {
  if (format === undefined || format === null) return null;
  if (format !== 'opaque' && !rt.extensions<{ name: string }>('accessTokenFormats').some((f) => f.name === format)) {
    throw new TypeError(`${caller}: accessTokenFormat must be 'opaque'${rt.enabled.has('jwt_access_tokens') ? " or 'jwt'" : " ('jwt' needs the jwt_access_tokens feature)"} (got ${JSON.stringify(format)})`);
  }
  return format as string;
}

/** `oidc`: post-logout redirect URIs, under the rules of redirect URIs (RP-Initiated Logout 1.0 §3.1). */
export function checkPostLogoutRedirectUris(rt: Runtime, caller: string, v: unknown): string[] {
  if (v !== undefined && !rt.enabled.has('oidc')) throw new TypeError(`${caller}: postLogoutRedirectUris needs the oidc feature`);
  try {
    return checkRedirectUris(caller, v);
  } catch (e) {
    throw new TypeError((e as Error).message.replace('redirect URI', 'post-logout redirect URI'));
  }
}

/**
 * `oidc`: 'public' or 'pairwise'; a pairwise client's redirect URIs share one host, its sector
 * identifier (OpenID Connect Core §8.1). Null or undefined: the server's `oidcSubjectType`,
 * whose redirect URIs are checked the same way.
 */
export function checkSubjectType(rt: Runtime, caller: string, v: unknown, redirectUris: readonly string[] | undefined): string | null {
  if (v !== undefined && v !== null) {
    if (!rt.enabled.has('oidc')) throw new TypeError(`${caller}: subjectType needs the oidc feature`);
    if (v !== 'public' && v !== 'pairwise') throw new TypeError(`${caller}: subjectType must be 'public' or 'pairwise' (got ${JSON.stringify(v)})`);
    if (v === 'pairwise' && !rt.constant<string | null>('oidcPairwiseSalt')) throw new TypeError(`${caller}: subjectType 'pairwise' needs the oidcPairwiseSalt option`);
  }
  if (redirectUris !== undefined) checkPairwiseSector(rt, caller, (v as string | null | undefined) ?? null, redirectUris);
  return (v as string | null | undefined) ?? null;
}

/**
 * §8.1: the redirect URIs of a client whose subject type (its own, else the server's
 * `oidcSubjectType` when that is a constant) is pairwise must be on one host.
 */
export function checkPairwiseSector(rt: Runtime, caller: string, subjectType: string | null, redirectUris: readonly string[]): void {
  const effective = subjectType ?? (rt.enabled.has('oidc') ? rt.constant<unknown>('oidcSubjectType') : undefined);
  if (effective === 'pairwise' && redirectHosts(redirectUris).length > 1) {
    throw new TypeError(`${caller}: a pairwise client's redirect URIs must all be on one host, its sector identifier (OpenID Connect Core §8.1)`);
  }
}

/** `resource_indicators`: a client's own RFC 8707 allow-list, each an absolute URI without fragment (§2); null: the server's. */
export function checkResourceIndicators(rt: Runtime, caller: string, v: unknown): string[] | null {
  if (v === undefined || v === null) return null;
  if (!rt.enabled.has('resource_indicators')) throw new TypeError(`${caller}: resourceIndicators needs the resource_indicators feature`);
  if (!Array.isArray(v) || !v.every((r) => isResourceUri(r) && !/\s/.test(r))) {
    throw new TypeError(`${caller}: resourceIndicators must be an array of absolute URIs without fragment (RFC 8707 §2), or null`);
  }
  return [...new Set(v as string[])];
}

/** RFC 7591 §2: `authorization_code` when grant_types is omitted; `refresh_token` goes with it when enabled. */
function defaultGrantTypes(rt: Runtime): string[] {
  if (!rt.grantTypes.has('authorization_code')) {
    throw new TypeError(`createApplication(): grantTypes is required when authorization_code_grant is not enabled: the RFC 7591 §2 default, authorization_code, is not served here (enabled: ${[...rt.grantTypes.keys()].join(', ')})`);
  }
  return rt.grantTypes.has('refresh_token') ? ['authorization_code', 'refresh_token'] : ['authorization_code'];
}

export async function createApplication(rt: Runtime, input: CreateApplicationInput): Promise<CreatedApplication> {
  const caller = 'createApplication()';
  if (!input) throw new TypeError(`${caller}: name is required`);
  checkName(caller, input.name);
  const redirectUris = checkRedirectUris(caller, input.redirectUri);
  const scopes = checkScopes(caller, input.scopes);
  const methods = checkAuthMethods(rt, caller, input.tokenEndpointAuthMethod);
  const grantTypes = checkGrantTypes(rt, caller, input.grantTypes ?? defaultGrantTypes(rt));
  if (input.jwksUri !== undefined) checkJwksUri(caller, input.jwksUri);
  const jwks = input.jwks === undefined ? null : checkJwks(caller, input.jwks);
  const accessTokenFormat = checkAccessTokenFormat(rt, caller, input.accessTokenFormat);
  const postLogoutRedirectUris = checkPostLogoutRedirectUris(rt, caller, input.postLogoutRedirectUris);
  const subjectType = checkSubjectType(rt, caller, input.subjectType, redirectUris);
  const resourceIndicators = checkResourceIndicators(rt, caller, input.resourceIndicators);

  const ctx = systemContext(rt);
  const m = ctx.methods;
  // A client registered for `none` only is public: it has no secret to hold.
  const isPublic = methods !== null && methods.every((x) => x === 'none');
  const clientSecret = isPublic ? undefined : randomToken(32);
  const encrypt = (ctx.methods as unknown as { encryptClientSecret?: (s: string) => Promise<string | null> }).encryptClientSecret;
  const clientSecretEncrypted = clientSecret !== undefined && methods?.includes('client_secret_jwt') && encrypt ? await encrypt.call(ctx.methods, clientSecret) : null;
  const clientId = newClientId();
  const application = await ctx.store.applications.insert({
    accountId: input.accountId === undefined ? null : String(input.accountId),
    name: input.name,
    description: input.description ?? null,
    homepageUrl: input.homepageUrl ?? null,
    redirectUris,
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
    postLogoutRedirectUris,
    subjectType,
    resourceIndicators,
  });
  return { clientId, clientSecret, application };
}

/**
 * A new client id: 128 random bits, base64url, never starting with `-`, which a command line
 * (the admin CLI's `apps show <id>`, `--client <id>`) would read as an option.
 */
export function newClientId(): string {
  for (;;) {
    const id = randomToken(16);
    if (!id.startsWith('-')) return id;
  }
}
