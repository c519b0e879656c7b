/** Scope parsing and checks (RFC 6749 §3.3). */
import { OAuthError } from './errors';

/** scope-token = 1*( %x21 / %x23-5B / %x5D-7E ) */
const SCOPE_TOKEN = /^[\x21\x23-\x5b\x5d-\x7e]+$/;

/** Splits a scope parameter; a malformed one is `invalid_scope`. */
export function parseScope(scope: string, message: string): string[] {
  const tokens = scope.split(' ').filter((t) => t.length > 0);
  if (tokens.length === 0 || !tokens.every((t) => SCOPE_TOKEN.test(t))) {
    throw new OAuthError('invalid_scope', message, { reason: 'scope_not_allowed' });
  }
  return [...new Set(tokens)];
}

/**
 * The scopes to grant: the requested ones if all are allowed (else `invalid_scope`). A request
 * without `scope` gets the documented default (RFC 6749 §3.3, `oauthDefaultScopes`): null means
 * every allowed scope; a list means those of its scopes that are allowed, so a client never gets
 * one it is not registered for. A default that leaves nothing (`[]`, or a list the client holds
 * none of) makes `scope` required: the request fails with `invalid_scope`, the answer §3.3 names.
 */
export function grantableScopes(requested: string | undefined, allowed: readonly string[], message: string, defaults: readonly string[] | null = null): string[] {
  if (requested === undefined) {
    if (defaults === null) return [...allowed];
    const scopes = defaults.filter((s) => allowed.includes(s));
    if (scopes.length === 0) throw new OAuthError('invalid_scope', message, { reason: 'missing_parameter' });
    return [...new Set(scopes)];
  }
  const scopes = parseScope(requested, message);
  if (!scopes.every((s) => allowed.includes(s))) throw new OAuthError('invalid_scope', message, { reason: 'scope_not_allowed' });
  return scopes;
}

export function isScopeToken(s: string): boolean {
  return SCOPE_TOKEN.test(s);
}
