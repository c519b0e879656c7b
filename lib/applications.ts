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

function checkUri(kind: string, uri: string): void {
  let u: URL;
  try {
    u = new URL(uri);
  } catch {
    throw new TypeError(`createApplication(): ${kind} '${uri}' is not an absolute URI`);
  }
  if (u.hash || uri.includes('#')) throw new TypeError(`createApplication(): ${kind} '${uri}' must not have a fragment (RFC 6749 §3.1.2)`);
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
  const redirectUris = list(input.redirectUri) ?? [];
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
  });
  return { clientId, clientSecret, application };
}
