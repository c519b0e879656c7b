/**
 * Compile-only type tests (style.md §7.3, jose's test-d): `npm run typecheck` compiles this
 * file; every `@ts-expect-error` must meet an error, every other line must compile.
 */
import { STANDARD_SCOPE_CLAIMS } from '../../lib';
import knex from 'knex';
import { oauth, OAuthError, type Application, type OAuthAuthorization, type OAuthContext } from '../../lib';

const db = knex({ client: 'better-sqlite3', connection: { filename: ':memory:' }, useNullAsDefault: true });

// ---- Positive cases ---------------------------------------------------------------------

oauth({ db });
oauth({ db, enable: ['client_credentials_grant'], oauthAccessTokenExpiresIn: 600, oauthApplicationsTable: 'clients', issuer: 'https://auth.example' });
oauth({ db, enable: ['refresh'], oauthRefreshTokenExpiresIn: 3600, oauthRefreshTokenProtectionPolicy: 'none' });
// Options of a dependency are accepted: pkce enables authorization_code_grant and oauth_base.
oauth({ db, enable: ['pkce'], oauthInvalidClientMessage: 'Unknown client' });

// A value override as a function of the request context, with ctx typed.
oauth({
  db,
  oauthAccessTokenExpiresIn: (ctx) => {
    const seconds: number = ctx.values.oauthAccessTokenExpiresIn;
    const host: string | undefined = ctx.req.get('host');
    return host === 'slow.example' ? seconds * 2 : seconds;
  },
  oauthInvalidClientMessage: (ctx) => (ctx.req.headers['accept-language'] === 'fr' ? 'Client inconnu' : 'Unknown client'),
});

// A method override gets typed arguments and can call the default through ctx.super.
oauth({
  db,
  secretMatches: async (ctx, application, secret) => {
    const app: Application = application;
    const s: string = secret;
    if (app.name === 'legacy' && s === 'open sesame') return true;
    return ctx.super.secretMatches(app, s);
  },
  generateToken: (ctx) => `at.${ctx.super.generateToken()}`,
  now: () => new Date(0),
});

// Hooks and route options get the context; route hooks follow the enabled features.
oauth({
  db,
  enable: ['token_revocation'],
  beforeToken: async (ctx: OAuthContext) => {
    if (ctx.application?.name === 'blocked') throw new OAuthError('access_denied', 'Not now');
  },
  afterToken: (ctx) => void ctx.grant?.id,
  beforeTokenRoute: (ctx) => void ctx.params.grant_type,
  tokenRoute: 'oauth2/token',
  revokeRoute: 'oauth2/revoke',
  beforeRevokeRoute: () => undefined,
  onError: (_ctx, err) => void err.reason,
});

// req.oauth is typed.
const auth = oauth({ db, enable: ['client_credentials_grant'] });
auth.requireOauthAuthorization('books.read');
export const readAuthorization = (a: OAuthAuthorization): [string | null, string, string[], Date] => [a.accountId, a.clientId, a.scopes, a.expiresAt];

// ---- Negative cases ---------------------------------------------------------------------

// @ts-expect-error a misspelled feature id
oauth({ db, enable: ['refrsh'] });

// @ts-expect-error a misspelled option
oauth({ db, oauthAccessTokenExpireIn: 600 });

// @ts-expect-error a value of the wrong type
oauth({ db, oauthAccessTokenExpiresIn: '600' });

// @ts-expect-error a function value returning the wrong type
oauth({ db, oauthAccessTokenExpiresIn: () => '600' });

// @ts-expect-error a value outside a literal union
oauth({ db, enable: ['refresh'], oauthRefreshTokenProtectionPolicy: 'sometimes' });

// @ts-expect-error a log level the default logger does not have
oauth({ db, oauthLogLevel: 'debug' });

// A ctx.db handle is a knex instance in hooks.
oauth({ db, beforeToken: async (ctx) => void (await ctx.db('audit').insert({ at: new Date() })) });

// @ts-expect-error an option of a feature that is not enabled
oauth({ db, enable: ['client_credentials_grant'], oauthRefreshTokenExpiresIn: 3600 });

// @ts-expect-error a route option of a feature that is not enabled
oauth({ db, enable: ['client_credentials_grant'], revokeRoute: 'revoke' });

// @ts-expect-error an unknown hook
oauth({ db, beforeTokn: () => undefined });

// @ts-expect-error a method override with the wrong argument types
oauth({ db, secretMatches: async (_ctx: OAuthContext, _app: Application, _secret: number) => true });

// @ts-expect-error a method override with the wrong return type
oauth({ db, generateToken: () => 42 });

// @ts-expect-error a hook that is not a function
oauth({ db, beforeToken: true });

// @ts-expect-error the db is required
oauth({ enable: ['refresh'] });

// oidc: values, methods, hooks and routes of OpenID Connect, with contextual types.
oauth({
  db,
  enable: ['oidc'],
  oidcRequireNonce: (ctx) => ctx.application?.clientId !== 'legacy',
  oidcSubjectType: 'pairwise',
  oidcPairwiseSalt: 'a-secret-of-at-least-thirty-two-characters',
  oidcScopeClaims: { ...STANDARD_SCOPE_CLAIMS, employee: ['employee_id'] },
  accountClaims: async (_ctx, accountId, names, { locales }) => ({ name: accountId, names, locales }),
  accountSubject: async (_ctx, accountId) => `user-${accountId}`,
  accountAuthenticationContext: async () => ({ acr: 'urn:example:loa:2', amr: ['pwd'] }),
  logoutAccount: async () => undefined,
  afterLogout: async () => undefined,
  endSessionRoute: 'logout',
});

// @ts-expect-error oidcSubjectType is 'public' or 'pairwise'
oauth({ db, enable: ['oidc'], oidcSubjectType: 'secret' });

// @ts-expect-error accountClaims resolves with an object of claims
oauth({ db, enable: ['oidc'], accountClaims: async () => 'alice' });
