/**
 * The consent decision of `/authorize` beyond the form itself: whether the account already
 * granted what is asked (remembered consent, `oauthRememberConsent`), and what the consent page
 * tells the user (who is signed in, where they will be sent, what each scope means, whether
 * access goes on while they are away). Every text goes through `translate`.
 */
import type { OAuthContext } from './context';
import { claimsBeyondScopes, scopeClaimNames, STANDARD_SCOPE_CLAIMS, storedClaimsRequest } from './claims';
import { registeredAuthMethods } from './client_auth/common';
import { isWebUrl } from './http/redirect';
import type { Application, ConsentRecord } from './store';
import type { TranslationVars } from './translate';

/** What an authorization request asks the user to consent to. */
export interface ConsentRequest {
  scopes: readonly string[];
  /** Where the user is sent after deciding. */
  redirectUri: string;
  /** RFC 8707 resources the tokens would be for (`resource_indicators`); null or absent: none named. */
  resources?: readonly string[] | null;
  /** The OIDC `claims` request as stored on the grant (JSON, supported claims only); null or absent: none. */
  claims?: string | null;
}

/**
 * Remembered consent: the account already approved, through grants of this client not revoked
 * since, everything this request asks. Off with `oauthRememberConsent`.
 *
 * - Scopes, per resource (RFC 8707): for each requested resource, every requested scope was
 *   granted by live grants naming that resource; a request naming no resource is covered only
 *   by grants that named none. Approving `mcp` for resource A says nothing about resource B.
 * - Claims (OpenID Connect Core §5.5): every claim of the `claims` request beyond the requested
 *   scopes' claims was approved before, by a grant's `claims` request or one of its scopes.
 * - RFC 6749 §10.2 and RFC 8252 §8.6: a public client (by its registered or the default token
 *   endpoint auth methods) sending the user to a redirect URI that is not `https` (loopback,
 *   private-use scheme) could be another app on the device impersonating it: always asked.
 */
export async function consentRemembered(ctx: OAuthContext, app: Application, accountId: string, request: ConsentRequest): Promise<boolean> {
  if (!ctx.values.oauthRememberConsent) return false;
  if (registeredAuthMethods(ctx, app).includes('none') && !/^https:\/\//i.test(request.redirectUri)) return false;
  const records = await ctx.transaction(() => ctx.store.grants.consentRecords(accountId, app.id));
  return resourcesAndScopesCovered(records, request) && claimsCovered(ctx, records, request);
}

function resourcesAndScopesCovered(records: readonly ConsentRecord[], request: ConsentRequest): boolean {
  const targets: (string | null)[] = request.resources && request.resources.length > 0 ? [...request.resources] : [null];
  return targets.every((target) => {
    const matching = records.filter((r) => (target === null ? r.resources === null || r.resources.length === 0 : r.resources?.includes(target) === true));
    if (matching.length === 0) return false;
    const granted = new Set(matching.flatMap((r) => r.scopes));
    return request.scopes.every((s) => granted.has(s));
  });
}

function claimsCovered(ctx: OAuthContext, records: readonly ConsentRecord[], request: ConsentRequest): boolean {
  const asked = claimsToConsent(ctx, request);
  if (asked.length === 0) return true;
  const table = scopeClaimTable(ctx);
  const approved = new Set<string>();
  for (const r of records) {
    for (const name of scopeClaimNames(r.scopes, table)) approved.add(name);
    const stored = storedClaimsRequest(r.claims);
    for (const name of [...Object.keys(stored.userinfo ?? {}), ...Object.keys(stored.id_token ?? {})]) approved.add(name);
  }
  return asked.every((c) => approved.has(c.name));
}

/** The claims of the request's `claims` parameter that its scopes do not already ask for. */
function claimsToConsent(ctx: OAuthContext, request: ConsentRequest): { name: string; essential: boolean }[] {
  if (!request.claims) return [];
  return claimsBeyondScopes(storedClaimsRequest(request.claims), request.scopes, scopeClaimTable(ctx));
}

/** `oidcScopeClaims` (a claims request is only stored with `oidc`, which declares it). */
function scopeClaimTable(ctx: OAuthContext): Readonly<Record<string, readonly string[]>> {
  return (ctx.values as unknown as { oidcScopeClaims?: Readonly<Record<string, readonly string[]>> }).oidcScopeClaims ?? STANDARD_SCOPE_CLAIMS;
}

/** One requested scope on the consent page: its description (null when it has none) and the raw scope. */
export interface ConsentScope {
  scope: string;
  description: string | null;
}

/** A claim of the `claims` request on the consent page: its description (null when it has none), the raw name, whether the client marked it essential. */
export interface ConsentClaim {
  claim: string;
  description: string | null;
  essential: boolean;
}

/** The consent page's variables besides the form (README "The consent page" lists them all). */
export interface ConsentPageLocals {
  account: { id: string; displayName: string };
  signedInAs: string;
  notYouUrl: string | null;
  notYouLabel: string;
  logoAlt: string;
  homepageUrl: string | null;
  redirectHost: string;
  redirectNotice: string;
  scopeItems: ConsentScope[];
  noScopesText: string;
  claimsLabel: string;
  claimItems: ConsentClaim[];
  essentialText: string;
  resourcesLabel: string;
  resourceHosts: string[];
  offlineAccess: string | null;
  actionsLabel: string;
}

export async function consentPageLocals(ctx: OAuthContext, app: Application, request: ConsentRequest, accountId: string): Promise<ConsentPageLocals> {
  const t = (key: string, vars?: TranslationVars): string => ctx.methods.translate(key, vars);
  const { scopes, redirectUri } = request;
  const displayName = String(await ctx.methods.accountDisplayName(accountId));
  const redirectHost = hostOf(redirectUri);
  return {
    account: { id: accountId, displayName },
    signedInAs: t('consent.signedInAs', { account: displayName }),
    notYouUrl: notYouUrl(ctx),
    notYouLabel: t('consent.notYou'),
    logoAlt: t('consent.logoAlt', { name: app.name }),
    homepageUrl: isWebUrl(app.homepageUrl) ? app.homepageUrl : null,
    redirectHost,
    redirectNotice: t('consent.redirectNotice', { host: redirectHost }),
    scopeItems: scopes.map((scope) => {
      const description = t(`scope.${scope}`, { scope });
      return { scope, description: description === scope || description === `scope.${scope}` ? null : description };
    }),
    noScopesText: t('consent.noScopes'),
    // OpenID Connect Core §5.5: claims asked by name are released only as approved here.
    claimsLabel: t('consent.claimsLabel'),
    claimItems: claimsToConsent(ctx, request).map(({ name, essential }) => {
      const description = t(`claim.${name}`, { claim: name });
      return { claim: name, description: description === name || description === `claim.${name}` ? null : description, essential };
    }),
    essentialText: t('consent.essentialClaim'),
    // RFC 8707: where the access will be used, as hosts the user can recognise.
    resourcesLabel: t('consent.resourcesLabel'),
    resourceHosts: [...new Set((request.resources ?? []).map(hostOf))],
    offlineAccess: refreshTokenIssued(ctx, app) ? t('consent.offlineAccess', { name: app.name }) : null,
    actionsLabel: t('consent.actionsLabel'),
  };
}

/**
 * Where the user is sent after deciding, as the user should read it: the host (with its port
 * when not the default), or for a private-use scheme (RFC 8252 §7.1) the scheme itself.
 */
export function hostOf(uri: string): string {
  try {
    const u = new URL(uri);
    if (u.host !== '') return u.host;
    return u.protocol.replace(/:$/, '');
  } catch {
    return uri;
  }
}

/** `logoutRoute` with `return_to` = this authorization request, so the other account comes back to it. */
function notYouUrl(ctx: OAuthContext): string | null {
  const logout = ctx.values.logoutRoute;
  if (logout === null) return null;
  return `${logout}${logout.includes('?') ? '&' : '?'}return_to=${encodeURIComponent(ctx.req.originalUrl)}`;
}

/** Whether the code will be exchanged for a refresh token too (as lib/tokens.ts newRefreshToken decides). */
function refreshTokenIssued(ctx: OAuthContext, app: Application): boolean {
  if (!ctx.runtime.enabled.has('refresh')) return false;
  return app.grantTypes === null || app.grantTypes.includes('refresh_token');
}
