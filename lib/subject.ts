/**
 * The `sub` an account has at a client (OpenID Connect Core §8): public (the host's
 * `accountSubject`) or pairwise (an HMAC per sector identifier, §8.1). One function serves every
 * place that names the end user to a client: the ID token, UserInfo, JWT access tokens (RFC 9068
 * §2.2) and introspection (RFC 7662 §2.2), so that they all say the same `sub` and a pairwise
 * client never learns the local account id. Without `oidc`, `sub` is the account id.
 */
import type { OAuthContext } from './context';
import { OAuthError } from './errors';
import { pairwiseSubject } from './id_token';
import type { Application } from './store';

/** The subject type of a client: its own `subjectType`, else the server's `oidcSubjectType`. */
export function effectiveSubjectType(ctx: OAuthContext, app: Pick<Application, 'subjectType'>): 'public' | 'pairwise' {
  if (!ctx.runtime.enabled.has('oidc')) return 'public';
  return (app.subjectType ?? ctx.values.oidcSubjectType) === 'pairwise' ? 'pairwise' : 'public';
}

/** The hosts of a client's redirect URIs, each once. */
export function redirectHosts(redirectUris: readonly string[]): string[] {
  return [...new Set(redirectUris.map((u) => new URL(u).host))];
}

/**
 * §8.1: without a sector_identifier_uri the sector is the host of the redirect URIs, which must
 * be one. A pairwise client on several hosts (left by the global `oidcSubjectType`) gets
 * unauthorized_client, an OAuth answer given before anything is written.
 */
export function ambiguousSector(ctx: OAuthContext): OAuthError {
  return new OAuthError('unauthorized_client', ctx.values.oidcAmbiguousSectorMessage, { reason: 'ambiguous_sector_identifier' });
}

/** The `sub` of an account for a client: public, or pairwise for its sector (§8.1). */
export async function subjectFor(ctx: OAuthContext, app: Application, accountId: string): Promise<string> {
  if (!ctx.runtime.enabled.has('oidc')) return accountId;
  const local = await ctx.methods.accountSubject(accountId);
  if (effectiveSubjectType(ctx, app) !== 'pairwise') return local;
  const salt = ctx.values.oidcPairwiseSalt;
  if (!salt) throw new Error('oidc: a pairwise subject needs oidcPairwiseSalt');
  return pairwiseSubject(salt, await ctx.methods.sectorIdentifier(app), local);
}
