/**
 * The consent decision of `/authorize` beyond the form itself: whether the account already
 * granted what is asked (remembered consent, `oauthRememberConsent`), and what the consent page
 * tells the user (who is signed in, where they will be sent, what each scope means, whether
 * access goes on while they are away). Every text goes through `translate`.
 */
import type { OAuthContext } from './context';
import type { Application } from './store';
import type { TranslationVars } from './translate';

/**
 * Remembered consent: the account has granted this client every requested scope, through
 * grants not revoked since (all its live grants together). Off with `oauthRememberConsent`.
 * RFC 6749 §10.2 and RFC 8252 §8.6: a public client sending the user to a redirect URI that is
 * not `https` (loopback, private-use scheme) could be another app on the device impersonating
 * it, so such a request is always asked.
 */
export async function consentRemembered(ctx: OAuthContext, app: Application, accountId: string, scopes: readonly string[], redirectUri: string): Promise<boolean> {
  if (!ctx.values.oauthRememberConsent) return false;
  if (app.tokenEndpointAuthMethods?.includes('none') && !/^https:\/\//i.test(redirectUri)) return false;
  const granted = await ctx.transaction(() => ctx.store.grants.consentedScopes(accountId, app.id));
  return granted !== null && scopes.every((s) => granted.includes(s));
}

/** One requested scope on the consent page: its description (null when it has none) and the raw scope. */
export interface ConsentScope {
  scope: string;
  description: string | null;
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
  offlineAccess: string | null;
  actionsLabel: string;
}

export async function consentPageLocals(ctx: OAuthContext, app: Application, scopes: readonly string[], redirectUri: string, accountId: string): Promise<ConsentPageLocals> {
  const t = (key: string, vars?: TranslationVars): string => ctx.methods.translate(key, vars);
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

function isWebUrl(u: string | null): u is string {
  return u !== null && /^https?:\/\//i.test(u);
}
