/**
 * Translations: every string a person reads on our pages goes through one method,
 * `translate(ctx, key, vars)`, whose default reads the English table below. A host plugs
 * i18next (or its own table) by overriding `translate` and `locale`; `ctx.super.translate`
 * gives the English default for the keys it does not know.
 *
 * The label values of earlier releases (`authorizePageTitle`, `oauthAuthorizeButton`, …) stay
 * overrides: the default `translate` reads the value a key names in {@link LABEL_VALUES}, whose
 * default is the English text of the table, so a host that set one sees its own words.
 *
 * Error codes and the `error_description` sent to clients (redirects, JSON) are protocol, not
 * text for people: they are never translated.
 */
import type { OAuthContext } from './context';

/** The English defaults, by key. `{name}` placeholders are filled from `vars`. */
export const TRANSLATIONS: Readonly<Record<string, string>> = {
  // The consent page (templates/authorize.html)
  'consent.title': 'Authorize',
  'consent.lead': 'The application {name} would like to access your data',
  'consent.signedInAs': 'Signed in as {account}',
  'consent.notYou': 'Not you?',
  'consent.logoAlt': 'Logo of {name}',
  'consent.scopesLabel': 'Scopes',
  'consent.noScopes': 'No access to your data beyond knowing that you approved.',
  'consent.resourcesLabel': 'For use with',
  'consent.offlineAccess': '{name} will keep this access while you are not using it, until you revoke it.',
  'consent.redirectNotice': 'After your choice you will be sent to',
  'consent.homepage': 'Homepage',
  'consent.policy': 'Policy URL',
  'consent.tos': 'Terms of service URL',
  'consent.allow': 'Allow',
  'consent.deny': 'Deny',
  'consent.actionsLabel': 'Your decision',
  // The form_post response page (templates/form_post.html)
  'formPost.title': 'Redirecting',
  'formPost.button': 'Back to Client Application',
  // The error page of /authorize (templates/authorize_error.html): a problem, then what to do
  'errorPage.title': 'Authorize Error',
  'errorPage.home': 'Go back to the home page',
  'errorPage.codeLabel': 'Error code',
  'errorPage.problem': 'This sign-in request could not be completed.',
  'errorPage.action': 'Go back to the application and try again. If it keeps happening, contact the application’s support.',
  'errorPage.problem.unknown_client': 'The application that sent you here is not known to this site.',
  'errorPage.action.unknown_client': 'The link you followed may be wrong or out of date. Go back to the application and try again, or contact its support.',
  'errorPage.problem.redirect_uri_mismatch': 'The application asked to send you to an address it has not registered.',
  'errorPage.action.redirect_uri_mismatch': 'For your safety you were not sent there. Contact the application’s support.',
  'errorPage.problem.missing_parameter': 'The sign-in request is incomplete.',
  'errorPage.action.missing_parameter': 'Go back to the application and start again. If it keeps happening, contact its support.',
  'errorPage.problem.malformed_parameter': 'The sign-in request is malformed.',
  'errorPage.action.malformed_parameter': 'Go back to the application and start again. If it keeps happening, contact its support.',
  'errorPage.problem.duplicate_parameter': 'The sign-in request is malformed.',
  'errorPage.action.duplicate_parameter': 'Go back to the application and start again. If it keeps happening, contact its support.',
  'errorPage.problem.csrf_mismatch': 'This form has expired or was not sent from this site.',
  'errorPage.action.csrf_mismatch': 'Go back to the application and start again. Nothing was shared.',
  'errorPage.problem.server_error': 'Something went wrong on our side.',
  'errorPage.action.server_error': 'Please try again in a moment.',
  'errorPage.problem.temporarily_unavailable': 'This service is busy or briefly unavailable.',
  'errorPage.action.temporarily_unavailable': 'Please try again in a moment.',
};

/**
 * Keys whose text a label value of earlier releases sets. The default `translate` reads the
 * value (a constant or a function of the context), so existing overrides keep working.
 */
export const LABEL_VALUES: Readonly<Record<string, string>> = {
  'consent.title': 'authorizePageTitle',
  'consent.lead': 'authorizePageLead',
  'consent.scopesLabel': 'oauthGrantsScopesLabel',
  'consent.homepage': 'oauthApplicationsHomepageUrlLabel',
  'consent.policy': 'oauthApplicationsPolicyUriLabel',
  'consent.tos': 'oauthApplicationsTosUriLabel',
  'consent.allow': 'oauthAuthorizeButton',
  'consent.deny': 'oauthDenyButton',
  'formPost.title': 'authorizeFormPostPageTitle',
  'formPost.button': 'oauthAuthorizePostButton',
  'errorPage.title': 'authorizeErrorPageTitle',
};

/** Variables of a translation: `{name}` in the text is replaced by `vars.name`. */
export type TranslationVars = Readonly<Record<string, string | number | null | undefined>>;

/**
 * The extension point `translations`: a feature contributes the English table of its own keys
 * (`extend: { translations: { 'grants.title': 'Your authorized applications' } }`).
 */
export type TranslationTable = Readonly<Record<string, string>>;

/**
 * Scope descriptions of the `oauthScopeDescriptions` value, by scope. Like every value it may
 * be given as a function of the context returning the table (e.g. by the request's language).
 */
export type ScopeDescriptions = Readonly<Record<string, string>>;

/**
 * Default `translate`: a label value the key names (see {@link LABEL_VALUES}), else the
 * contributed tables and {@link TRANSLATIONS}; `scope.<scope>` reads `oauthScopeDescriptions`
 * and falls back to the scope itself. An unknown key comes back as is (as i18next does).
 * `{name}` placeholders are replaced with `vars.name` (inserted as is: escaping is the
 * template's job).
 */
export function defaultTranslate(ctx: OAuthContext, key: string, vars: TranslationVars = {}): string {
  return interpolate(englishText(ctx, key), vars);
}

function englishText(ctx: OAuthContext, key: string): string {
  const values = ctx.values as unknown as Record<string, unknown>;
  const valueName = LABEL_VALUES[key];
  if (valueName !== undefined && typeof values[valueName] === 'string') return values[valueName] as string;
  if (key.startsWith('scope.')) return scopeDescription(ctx, key.slice('scope.'.length)) ?? key.slice('scope.'.length);
  for (const table of ctx.runtime.extensions<TranslationTable>('translations')) {
    if (Object.prototype.hasOwnProperty.call(table, key)) return table[key]!;
  }
  return Object.prototype.hasOwnProperty.call(TRANSLATIONS, key) ? TRANSLATIONS[key]! : key;
}

/** The description `oauthScopeDescriptions` gives a scope, or null. */
export function scopeDescription(ctx: OAuthContext, scope: string): string | null {
  const descriptions = (ctx.values as unknown as { oauthScopeDescriptions?: ScopeDescriptions | null }).oauthScopeDescriptions;
  if (!descriptions) return null;
  const d = Object.prototype.hasOwnProperty.call(descriptions, scope) ? descriptions[scope] : undefined;
  return typeof d === 'string' && d !== '' ? d : null;
}

/** `{name}` → `vars.name`; a placeholder without a variable stays as written. */
export function interpolate(text: string, vars: TranslationVars): string {
  return text.replace(/\{([A-Za-z0-9_]+)\}/g, (whole, name: string) => {
    const v = Object.prototype.hasOwnProperty.call(vars, name) ? vars[name] : undefined;
    return v === undefined || v === null ? whole : String(v);
  });
}

/**
 * The languages the request asks for, best first: the `ui_locales` parameter (OpenID Connect
 * Core §3.1.2.1, space-separated BCP 47 tags), as a host's `locale` or `translate` reads it.
 */
export function requestedLocales(ctx: OAuthContext): string[] {
  const raw = ctx.params.ui_locales;
  if (typeof raw !== 'string') return [];
  return raw.split(' ').filter((tag) => /^[A-Za-z]{1,8}(?:-[A-Za-z0-9]{1,8})*$/.test(tag));
}

/** Default `locale`: the language of the default translations, `en`. */
export function defaultLocale(_ctx: OAuthContext): string {
  return 'en';
}
