/**
 * OpenID Connect claims (Core §5): which claims a scope asks for (§5.4), the `claims` request
 * parameter (§5.5), and choosing, from what the host's `accountClaims` returns, the claims
 * one response (the ID token or the UserInfo answer) carries.
 */

/** Standard claims by scope value (OpenID Connect Core §5.4); `oidcScopeClaims` may replace or extend it. */
export const STANDARD_SCOPE_CLAIMS: Readonly<Record<string, readonly string[]>> = Object.freeze({
  profile: Object.freeze([
    'name', 'family_name', 'given_name', 'middle_name', 'nickname', 'preferred_username', 'profile',
    'picture', 'website', 'gender', 'birthdate', 'zoneinfo', 'locale', 'updated_at',
  ]),
  email: Object.freeze(['email', 'email_verified']),
  address: Object.freeze(['address']),
  phone: Object.freeze(['phone_number', 'phone_number_verified']),
});

/**
 * Claims the server sets itself in an ID token (§2) or UserInfo answer (`sub`): a `claims`
 * request can ask for them (e.g. `auth_time` as essential), but `accountClaims` never provides them.
 */
export const PROTOCOL_CLAIMS: ReadonlySet<string> = new Set(['iss', 'sub', 'aud', 'exp', 'iat', 'auth_time', 'nonce', 'acr', 'amr', 'azp', 'at_hash', 'c_hash', 'sid']);

/** One requested claim (§5.5.1): null, or `{ essential?, value?, values? }`. */
export interface ClaimRequest {
  essential?: boolean;
  value?: unknown;
  values?: unknown[];
}

/** The `claims` parameter, as checked: the claims asked for in each response. */
export interface ClaimsRequest {
  userinfo?: Record<string, ClaimRequest | null>;
  id_token?: Record<string, ClaimRequest | null>;
}

/** Longest `claims` parameter read, in characters: it is stored with the grant. */
export const MAX_CLAIMS_PARAMETER_LENGTH = 4096;

const CLAIM_NAME = /^[\x21-\x7e]{1,100}$/;

/**
 * Parses and checks the `claims` parameter (§5.5): a JSON object whose `userinfo` and
 * `id_token` members, when present, are objects of claim names to null or to an object with
 * `essential` (boolean), `value` or `values` (array). Other top-level members are ignored
 * (§5.5: "other members MAY be ignored"). Returns the normalized request, or a problem string.
 */
export function parseClaimsParameter(raw: string): ClaimsRequest | string {
  if (raw.length > MAX_CLAIMS_PARAMETER_LENGTH) return `is longer than ${MAX_CLAIMS_PARAMETER_LENGTH} characters`;
  let parsed: unknown;
  try {
    parsed = JSON.parse(raw);
  } catch {
    return 'is not JSON';
  }
  if (!isObject(parsed)) return 'is not a JSON object';
  const out: ClaimsRequest = {};
  for (const target of ['userinfo', 'id_token'] as const) {
    const member = parsed[target];
    if (member === undefined || member === null) continue;
    if (!isObject(member)) return `member ${target} is not an object`;
    const claims: Record<string, ClaimRequest | null> = Object.create(null);
    for (const [name, spec] of Object.entries(member)) {
      if (!CLAIM_NAME.test(name)) return `claim name ${JSON.stringify(name.slice(0, 40))} is not valid`;
      if (spec === null) {
        claims[name] = null;
        continue;
      }
      if (!isObject(spec)) return `claim ${name} must be null or an object`;
      const request: ClaimRequest = {};
      if (spec.essential !== undefined) {
        if (typeof spec.essential !== 'boolean') return `claim ${name}: essential must be a boolean`;
        request.essential = spec.essential;
      }
      if (spec.value !== undefined) request.value = spec.value;
      if (spec.values !== undefined) {
        if (!Array.isArray(spec.values)) return `claim ${name}: values must be an array`;
        request.values = spec.values;
      }
      claims[name] = request;
    }
    out[target] = { ...claims };
  }
  return out;
}

/** The stored form of a claims request (JSON), or null when it asks for nothing. */
export function serializeClaimsRequest(request: ClaimsRequest): string | null {
  return request.userinfo || request.id_token ? JSON.stringify(request) : null;
}

/** A stored claims request read back; an unreadable one (edited by hand) asks for nothing. */
export function storedClaimsRequest(json: string | null | undefined): ClaimsRequest {
  if (!json) return {};
  const parsed = parseClaimsParameter(json);
  return typeof parsed === 'string' ? {} : parsed;
}

/** The claims the granted scopes ask for (§5.4), in the order of the scope table. */
export function scopeClaimNames(scopes: readonly string[], scopeClaims: Readonly<Record<string, readonly string[]>>): string[] {
  const names = new Set<string>();
  for (const scope of scopes) {
    if (!Object.prototype.hasOwnProperty.call(scopeClaims, scope)) continue;
    for (const name of scopeClaims[scope]!) names.add(name);
  }
  return [...names];
}

/**
 * The claims one response carries, besides those the server sets itself: those of the scopes
 * when `withScopeClaims`, and those the `claims` request names for this response (§5.5).
 */
export function requestedClaimNames(scopeNames: readonly string[], request: ClaimsRequest, target: 'userinfo' | 'id_token', withScopeClaims: boolean): string[] {
  const names = new Set<string>(withScopeClaims ? scopeNames : []);
  for (const name of Object.keys(request[target] ?? {})) if (!PROTOCOL_CLAIMS.has(name)) names.add(name);
  return [...names];
}

/** Whether the `claims` request asks for a claim of this response as essential (§5.5.1). */
export function isEssential(request: ClaimsRequest, target: 'userinfo' | 'id_token', name: string): boolean {
  return request[target]?.[name]?.essential === true;
}

/**
 * Of what the host returned, only the claims asked for that have a value (§5.3.2: a claim
 * without a value is omitted, not sent as null); the protocol claims are never taken from it.
 */
export function pickClaims(provided: unknown, names: readonly string[]): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  if (!isObject(provided)) return out;
  for (const name of names) {
    if (PROTOCOL_CLAIMS.has(name) || !Object.prototype.hasOwnProperty.call(provided, name)) continue;
    const v = provided[name];
    if (v !== undefined && v !== null) out[name] = v;
  }
  return out;
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/**
 * The request without the claims the server does not support (§5.5: a claim it does not
 * understand is ignored, not an error): only `supported` names (Discovery `claims_supported`)
 * stay; a member left empty is dropped.
 */
export function supportedClaimsRequest(request: ClaimsRequest, supported: ReadonlySet<string>): ClaimsRequest {
  const out: ClaimsRequest = {};
  for (const target of ['userinfo', 'id_token'] as const) {
    const entries = Object.entries(request[target] ?? {}).filter(([name]) => supported.has(name));
    if (entries.length > 0) out[target] = Object.fromEntries(entries);
  }
  return out;
}

/**
 * The account claims a `claims` request asks for beyond those of `scopes` (§5.4), in either
 * response, each once (essential when either response asks for it as essential): what the
 * consent page must show and the user approve before it is released. Protocol claims (`sub`,
 * `auth_time`, …) are not the user's data and are left out.
 */
export function claimsBeyondScopes(request: ClaimsRequest, scopes: readonly string[], scopeClaims: Readonly<Record<string, readonly string[]>>): { name: string; essential: boolean }[] {
  const fromScopes = new Set(scopeClaimNames(scopes, scopeClaims));
  const out = new Map<string, boolean>();
  for (const target of ['id_token', 'userinfo'] as const) {
    for (const name of Object.keys(request[target] ?? {})) {
      if (PROTOCOL_CLAIMS.has(name) || fromScopes.has(name)) continue;
      out.set(name, out.get(name) === true || isEssential(request, target, name));
    }
  }
  return [...out].map(([name, essential]) => ({ name, essential }));
}
