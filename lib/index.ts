/**
 * express-oauth-features: an OAuth 2.0 authorization server for Express, built from opt-in
 * features. The public surface: `oauth`, `OAuthError` and the exported types.
 *
 * @example
 * ```ts
 * import { oauth } from 'express-oauth-features';
 * const auth = oauth({ db, enable: ['client_credentials_grant'] });
 * await auth.migrate();
 * app.use(auth);
 * ```
 */
export { oauth, type MigrateOptions, type OAuthOptions, type OAuthRouter, type WellKnownOptions } from './oauth';
export type { OAuthMigration } from './migrations';
export { OAuthError, statusFor, type OAuthErrorCode, type OAuthErrorReason, type OAuthErrorOptions } from './errors';
export type { OAuthContext, TokenContext, OAuthValues, OAuthMethods, OAuthParams } from './context';
export type { OAuthAuthorization, RequireOauthAuthorizationOptions } from './resource';
export type { McpAuthInfo, ProtectedResource, ProtectedResourceOptions } from './protected_resource';
export { resourceServer, type ResourceServer, type ResourceServerOptions, type RemoteOAuthAuthorization } from './resource_server';
export type { Application, Grant } from './store';
export type { CreateApplicationInput, CreatedApplication } from './applications';
export {
  UnknownApplicationError,
  type ApplicationInfo,
  type ApplicationPage,
  type ApplicationsApi,
  type DeletedApplication,
  type ListApplicationsOptions,
  type RevokeGrantsFilter,
  type RotatedSecret,
  type RotateSecretOptions,
  type UpdateApplicationInput,
} from './client_management';
export { PurgeAlreadyRunningError, type PurgeCounts, type PurgeOptions, type StartPurgingOptions } from './purge';
export type { FeatureId } from './features';
export type { OAuthLogger } from './log';
export { OAuthConfigurationError } from './options';
export type { TokenResponse } from './feature';
export { STANDARD_SCOPE_CLAIMS } from './claims';
export { interpolate, requestedLocales, TRANSLATIONS, type TranslationTable, type TranslationVars } from './translate';
export { PROMPT_VALUES, type AuthorizationLoginExtension, type FreshLoginReason, type Prompt } from './prompt';
export type { AccountClaimsOptions, AuthenticationContext, SubjectType } from '../features/oidc';
