/**
 * RFC 7591 §2 client metadata: the one validator shared by dynamic client registration
 * (`dynamic_client_registration`, RFC 7591 / 7592) and client ID metadata documents
 * (`client_id_metadata_documents`). It reads a parsed JSON object and returns the metadata in
 * camelCase with every default applied, or throws an `OAuthError` (400):
 * `invalid_redirect_uri` for anything about `redirect_uris`, `invalid_client_metadata` for the
 * rest (RFC 7591 §3.2.2). Descriptions name the field, never echo its value.
 *
 * Exported shape:
 * ```ts
 * interface ClientMetadata { redirectUris: string[]; tokenEndpointAuthMethod: string; grantTypes: string[];
 *   responseTypes: string[]; clientName: string | null; clientUri: string | null; logoUri: string | null;
 *   tosUri: string | null; policyUri: string | null; contacts: string[]; scope: string[] | null;
 *   jwksUri: string | null; jwks: { keys: object[] } | null; softwareId: string | null; softwareVersion: string | null }
 * interface ClientMetadataPolicy { authMethods; grantTypes; responseTypes: readonly string[];
 *   scopes?: readonly string[]; defaultAuthMethod?: string; limits?: Partial<ClientMetadataLimits> }
 * function parseClientMetadata(input: unknown, policy: ClientMetadataPolicy): ClientMetadata
 * function clientMetadataJson(m: ClientMetadata): Record<string, unknown>   // back to RFC 7591 names, for responses
 * const DEFAULT_CLIENT_METADATA_LIMITS: ClientMetadataLimits
 * const CLIENT_METADATA_MAX_BYTES = 32768                                   // for the caller's body or fetch limit
 * ```
 *
 * The rules:
 * - Redirect URIs (RFC 6749 §3.1.2, RFC 9700 §2.1, RFC 8252 §7): absolute, in RFC 3986 normal
 *   form, no fragment, no `*`; `https`, or `http` only on a loopback host (127.0.0.0/8, `[::1]`,
 *   `localhost`), or a private-use scheme of a native app in reverse-domain form (a dot in the
 *   scheme, RFC 8252 §7.1: `com.example.app:/cb`). Required (at least one) with
 *   `authorization_code`.
 * - Grant and response types (RFC 7591 §2.1): `authorization_code` ⇔ `code`; `refresh_token`
 *   only with another grant; `implicit`, `token` and anything the server does not serve refused.
 *   Defaults `["authorization_code"]` and, with it, `["code"]`.
 * - `token_endpoint_auth_method`: one the server supports, default `client_secret_basic`
 *   (RFC 7591 §2). `private_key_jwt` needs exactly one of `jwks` / `jwks_uri`; the two are never
 *   both given (§2); `jwks_uri` is https; `jwks` is a JWK Set of public keys.
 * - `client_uri`, `logo_uri`, `tos_uri`, `policy_uri`: https, well-formed.
 * - Strings and lists are bounded (`limits`); names and URIs are kept as given (pages escape
 *   them). Unknown members are ignored (§2: "MUST ignore"), `null` reads as absent, and a
 *   member of the wrong type is refused. Language-tagged members (`client_name#fr`, §2.2) and
 *   `software_statement` (§3.1.1: a server may ignore it) are unknown members here.
 */
import { checkUri, LOOPBACK_HOST } from './applications';
import { OAuthError } from './errors';
import { isScopeToken } from './scopes';

export interface ClientMetadata {
  redirectUris: string[];
  tokenEndpointAuthMethod: string;
  grantTypes: string[];
  responseTypes: string[];
  clientName: string | null;
  clientUri: string | null;
  logoUri: string | null;
  tosUri: string | null;
  policyUri: string | null;
  contacts: string[];
  /** The scopes asked for; null when the metadata has no `scope` (the server's default applies). */
  scope: string[] | null;
  jwksUri: string | null;
  /** A JWK Set of public keys, as given. */
  jwks: { keys: object[] } | null;
  softwareId: string | null;
  softwareVersion: string | null;
}

/** Size bounds of the metadata: lengths in characters, counts in entries. */
export interface ClientMetadataLimits {
  redirectUris: number;
  /** Redirect URIs, `logo_uri`, `tos_uri`, `policy_uri`, `jwks_uri` (text columns). */
  uriLength: number;
  /** `client_uri` (the varchar(255) `homepage_url` column). */
  clientUriLength: number;
  clientNameLength: number;
  contacts: number;
  contactLength: number;
  scopes: number;
  /** `software_id`, `software_version` (varchar(255) columns). */
  stringLength: number;
  jwksKeys: number;
}

export const DEFAULT_CLIENT_METADATA_LIMITS: Readonly<ClientMetadataLimits> = Object.freeze({
  redirectUris: 20,
  uriLength: 2000,
  clientUriLength: 255,
  clientNameLength: 200,
  contacts: 10,
  contactLength: 320,
  scopes: 100,
  stringLength: 200,
  jwksKeys: 10,
});

/** The width of the varchar columns of applications (lib/migrations/versions.ts). */
const VARCHAR_LENGTH = 255;

/** The largest metadata document (a registration body, a fetched document) worth reading, in bytes. */
export const CLIENT_METADATA_MAX_BYTES = 32 * 1024;

/** What the server supports: the metadata must stay within it. */
export interface ClientMetadataPolicy {
  /** Client-authentication methods a client may register. */
  authMethods: readonly string[];
  /** Grant types a client may register. */
  grantTypes: readonly string[];
  /** Response types a client may register (`code` with authorization_code_grant). */
  responseTypes: readonly string[];
  /** Scopes a client may register; undefined: any well-formed scope token. */
  scopes?: readonly string[];
  /** The description when `scopes` is empty and the metadata names a scope. */
  noScopesMessage?: string;
  /** The method of metadata without `token_endpoint_auth_method`; default `client_secret_basic` (RFC 7591 §2). */
  defaultAuthMethod?: string;
  limits?: Partial<ClientMetadataLimits>;
}

/** RFC 8252 §7.1: a private-use scheme is a reverse domain name (at least one dot). */
const PRIVATE_USE_SCHEME = /^[a-z][a-z0-9+-]*(\.[a-z0-9+-]+)+$/;
/** JWK members that carry private or symmetric key material (RFC 7518 §6.2.2, §6.3.2, §6.4.1). */
const PRIVATE_JWK_MEMBERS = ['d', 'p', 'q', 'dp', 'dq', 'qi', 'oth', 'k'];
/** Grant and response types of the implicit flow, refused whatever the server lists (RFC 9700 §2.1.2). */
const IMPLICIT = new Set(['implicit', 'token', 'id_token token', 'code token', 'code id_token token']);

function metadataError(description: string): OAuthError {
  return new OAuthError('invalid_client_metadata', description, { reason: 'invalid_client_metadata' });
}

function redirectError(description: string): OAuthError {
  return new OAuthError('invalid_redirect_uri', description, { reason: 'invalid_client_metadata' });
}

/**
 * Validates RFC 7591 §2 client metadata against what the server supports. Throws
 * `invalid_redirect_uri` or `invalid_client_metadata`; never anything else for any input.
 */
export function parseClientMetadata(input: unknown, policy: ClientMetadataPolicy): ClientMetadata {
  if (typeof input !== 'object' || input === null || Array.isArray(input)) throw metadataError('The client metadata must be a JSON object');
  const limits = { ...DEFAULT_CLIENT_METADATA_LIMITS, ...policy.limits };
  // Never above the width of the column a field is stored in (varchar(255)).
  for (const k of ['clientUriLength', 'clientNameLength', 'stringLength'] as const) limits[k] = Math.min(limits[k], VARCHAR_LENGTH);
  const body = input as Record<string, unknown>;
  const field = (name: string): unknown => (Object.prototype.hasOwnProperty.call(body, name) && body[name] !== null ? body[name] : undefined);

  const text = (name: string, max: number): string | null => {
    const v = field(name);
    if (v === undefined) return null;
    if (typeof v !== 'string') throw metadataError(`${name} must be a string`);
    // Every bound is within its column's width (lib/migrations/versions.ts: name, homepage_url,
    // software_id and software_version are varchar(255)), which PostgreSQL enforces.
    if (v.length === 0 || v.length > max) throw metadataError(`${name} must be 1 to ${max} characters`);
    // Plain text shown on pages: control characters have no place in it.
    if (/[\u0000-\u001f\u007f]/.test(v)) throw metadataError(`${name} must not contain control characters`);
    return v;
  };
  const strings = (name: string, max: number, fail = metadataError): string[] | undefined => {
    const v = field(name);
    if (v === undefined) return undefined;
    if (!Array.isArray(v) || v.some((x) => typeof x !== 'string')) throw fail(`${name} must be an array of strings`);
    if (v.length > max) throw fail(`${name} must have at most ${max} entries`);
    return v as string[];
  };
  const webUri = (name: string, max = limits.uriLength): string | null => {
    const v = text(name, max);
    if (v === null) return null;
    const problem = uriProblem(v);
    if (problem) throw metadataError(`${name} ${problem}`);
    if (new URL(v).protocol !== 'https:') throw metadataError(`${name} must be an https URI`);
    return v;
  };

  // Grant and response types (RFC 7591 §2.1).
  const grantTypes = unique(strings('grant_types', 10) ?? ['authorization_code']);
  for (const g of grantTypes) {
    if (IMPLICIT.has(g)) throw metadataError(`grant_types: '${shortName(g)}' is not supported (the implicit grant is deprecated, RFC 9700 section 2.1.2)`);
    if (!policy.grantTypes.includes(g)) throw metadataError(`grant_types: '${shortName(g)}' is not supported (supported: ${policy.grantTypes.join(', ')})`);
  }
  if (grantTypes.includes('refresh_token') && grantTypes.length === 1) throw metadataError('grant_types: refresh_token needs a grant that issues the first refresh token');
  const usesCode = grantTypes.includes('authorization_code');
  const responseTypes = unique(strings('response_types', 10) ?? (usesCode ? ['code'] : []));
  for (const r of responseTypes) {
    if (IMPLICIT.has(r)) throw metadataError(`response_types: '${shortName(r)}' is not supported (the implicit grant is deprecated, RFC 9700 section 2.1.2)`);
    if (!policy.responseTypes.includes(r)) throw metadataError(`response_types: '${shortName(r)}' is not supported${policy.responseTypes.length ? ` (supported: ${policy.responseTypes.join(', ')})` : ''}`);
  }
  if (usesCode !== responseTypes.includes('code')) {
    throw metadataError(usesCode ? "grant_types has authorization_code, so response_types must include 'code' (RFC 7591 section 2.1)" : "response_types has 'code', so grant_types must include authorization_code (RFC 7591 section 2.1)");
  }

  // Redirect URIs (RFC 7591 §2: required by redirect-based flows).
  const redirectUris = unique(strings('redirect_uris', limits.redirectUris, redirectError) ?? []);
  redirectUris.forEach((uri, i) => {
    const label = `redirect_uris[${i}]`;
    if (uri.length === 0 || uri.length > limits.uriLength) throw redirectError(`${label} must be 1 to ${limits.uriLength} characters`);
    const problem = uriProblem(uri);
    if (problem) throw redirectError(`${label} ${problem}`);
    if (uri.includes('*')) throw redirectError(`${label} must not contain a wildcard: redirect URIs are matched exactly`);
    const u = new URL(uri);
    const scheme = u.protocol.slice(0, -1);
    if (scheme === 'https') return;
    if (scheme === 'http') {
      if (LOOPBACK_HOST.test(u.hostname)) return;
      throw redirectError(`${label} uses http outside loopback: use https, or http on 127.0.0.1, [::1] or localhost (RFC 8252 section 7.3)`);
    }
    if (!PRIVATE_USE_SCHEME.test(scheme)) throw redirectError(`${label} must use https, http on loopback, or a private-use scheme in reverse-domain form such as com.example.app: (RFC 8252 section 7.1)`);
  });
  if (usesCode && redirectUris.length === 0) throw redirectError('redirect_uris is required with the authorization_code grant');

  // Client authentication (RFC 7591 §2).
  const method = field('token_endpoint_auth_method');
  if (method !== undefined && typeof method !== 'string') throw metadataError('token_endpoint_auth_method must be a string');
  const tokenEndpointAuthMethod = (method as string | undefined) ?? policy.defaultAuthMethod ?? 'client_secret_basic';
  if (!policy.authMethods.includes(tokenEndpointAuthMethod)) {
    throw metadataError(`token_endpoint_auth_method${method === undefined ? ` is required: the default, ${tokenEndpointAuthMethod}, ` : ` '${shortName(tokenEndpointAuthMethod)}' `}is not supported (supported: ${policy.authMethods.join(', ')})`);
  }
  const jwksUri = webUri('jwks_uri');
  const jwks = jwkSet(field('jwks'), limits.jwksKeys);
  if (jwks && jwksUri !== null) throw metadataError('jwks and jwks_uri must not both be given (RFC 7591 section 2)');
  if (tokenEndpointAuthMethod === 'private_key_jwt' && !jwks && jwksUri === null) throw metadataError('private_key_jwt needs the client keys: jwks or jwks_uri');

  // Scope (RFC 7591 §2: space-separated scope values).
  const scopeValue = field('scope');
  let scope: string[] | null = null;
  if (scopeValue !== undefined) {
    if (typeof scopeValue !== 'string') throw metadataError('scope must be a string of space-separated scope values');
    scope = unique(scopeValue.split(' ').filter(Boolean));
    if (scope.length > limits.scopes) throw metadataError(`scope must have at most ${limits.scopes} values`);
    if (policy.scopes && policy.scopes.length === 0 && scope.length > 0) throw metadataError(policy.noScopesMessage ?? 'scope: this server lists no scopes a client may register');
    for (const s of scope) {
      if (!isScopeToken(s) || s.length > 255) throw metadataError('scope is not a space-separated list of scope values (RFC 6749 section 3.3)');
      if (policy.scopes && !policy.scopes.includes(s)) throw metadataError(`scope: '${shortName(s)}' is not supported`);
    }
  }

  const contacts = strings('contacts', limits.contacts) ?? [];
  for (const c of contacts) {
    if (c.length === 0 || c.length > limits.contactLength || /[\s\u0000-\u001f\u007f]/.test(c)) throw metadataError(`contacts entries must be 1 to ${limits.contactLength} characters without spaces`);
  }

  return {
    redirectUris,
    tokenEndpointAuthMethod,
    grantTypes,
    responseTypes,
    clientName: text('client_name', limits.clientNameLength),
    clientUri: webUri('client_uri', limits.clientUriLength),
    logoUri: webUri('logo_uri'),
    tosUri: webUri('tos_uri'),
    policyUri: webUri('policy_uri'),
    contacts: unique(contacts),
    scope,
    jwksUri,
    jwks,
    softwareId: text('software_id', limits.stringLength),
    softwareVersion: text('software_version', limits.stringLength),
  };
}

/** The metadata under its RFC 7591 §2 names, absent members left out: the registered metadata of a response (§3.2.1). */
export function clientMetadataJson(m: ClientMetadata): Record<string, unknown> {
  const out: Record<string, unknown> = {
    redirect_uris: m.redirectUris,
    token_endpoint_auth_method: m.tokenEndpointAuthMethod,
    grant_types: m.grantTypes,
    response_types: m.responseTypes,
    client_name: m.clientName,
    client_uri: m.clientUri,
    logo_uri: m.logoUri,
    tos_uri: m.tosUri,
    policy_uri: m.policyUri,
    contacts: m.contacts.length ? m.contacts : null,
    scope: m.scope === null ? null : m.scope.join(' '),
    jwks_uri: m.jwksUri,
    jwks: m.jwks,
    software_id: m.softwareId,
    software_version: m.softwareVersion,
  };
  for (const k of Object.keys(out)) if (out[k] === null) delete out[k];
  return out;
}

/** What is wrong with a URI (lib/applications.ts `checkUri`: absolute, RFC 3986 normal form, no fragment), or null. */
function uriProblem(uri: string): string | null {
  try {
    checkUri('URI', uri, 'metadata');
    return null;
  } catch (e) {
    if (!(e instanceof TypeError)) throw e;
    if (uri.includes('#')) return 'must not have a fragment';
    return 'is not a well-formed absolute URI (RFC 3986)';
  }
}

/** A JWK Set (RFC 7517 §5) of public keys: `{ keys: [...] }`, each with its `kty`, none with private members. */
function jwkSet(v: unknown, maxKeys: number): { keys: object[] } | null {
  if (v === undefined) return null;
  const keys = typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as { keys?: unknown }).keys : undefined;
  if (!Array.isArray(keys) || keys.length === 0) throw metadataError('jwks must be a JWK Set: an object with a non-empty keys array (RFC 7517 section 5)');
  if (keys.length > maxKeys) throw metadataError(`jwks must have at most ${maxKeys} keys`);
  keys.forEach((k, i) => {
    if (typeof k !== 'object' || k === null || Array.isArray(k) || typeof (k as { kty?: unknown }).kty !== 'string') throw metadataError(`jwks.keys[${i}] is not a JWK (no kty, RFC 7517 section 4.1)`);
    if (PRIVATE_JWK_MEMBERS.some((p) => Object.prototype.hasOwnProperty.call(k, p))) throw metadataError(`jwks.keys[${i}] holds private or symmetric key material: register public keys only`);
  });
  return v as { keys: object[] };
}

function unique(list: readonly string[]): string[] {
  return [...new Set(list)];
}

/** A client-supplied name as it may appear in a description: short, printable ASCII. */
function shortName(s: string): string {
  const clean = s.replace(/[^\x20-\x7e]/g, '?').replace(/['"\\]/g, '?');
  return clean.length > 40 ? `${clean.slice(0, 40)}...` : clean;
}
