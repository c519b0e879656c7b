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
 * The scopes to grant: the requested ones if all are allowed (else `invalid_scope`), or all
 * the allowed ones when none were requested.
 */
export function grantableScopes(requested: string | undefined, allowed: readonly string[], message: string): string[] {
  if (requested === undefined) return [...allowed];
  const scopes = parseScope(requested, message);
  if (!scopes.every((s) => allowed.includes(s))) throw new OAuthError('invalid_scope', message, { reason: 'scope_not_allowed' });
  return scopes;
}

export function isScopeToken(s: string): boolean {
  return SCOPE_TOKEN.test(s);
}
