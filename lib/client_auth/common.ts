/** What every client-authentication method shares: loading the client and checking its methods. */
import type { OAuthContext } from '../context';
import { OAuthError } from '../errors';
import type { Application } from '../store';

interface BaseValues {
  oauthInvalidClientMessage: string;
  oauthDefaultTokenEndpointAuthMethods: readonly string[];
}

export function invalidClient(ctx: OAuthContext, reason: NonNullable<OAuthError['reason']>, cause?: unknown, retryAfter?: number): OAuthError {
  return new OAuthError('invalid_client', (ctx.values as unknown as BaseValues).oauthInvalidClientMessage, { reason, cause, challenge: 'Basic', retryAfter });
}

/** The methods an application may use: its column, or `oauthDefaultTokenEndpointAuthMethods` when NULL. */
export function registeredAuthMethods(ctx: OAuthContext, app: Application): readonly string[] {
  return app.tokenEndpointAuthMethods ?? (ctx.values as unknown as BaseValues).oauthDefaultTokenEndpointAuthMethods;
}

/**
 * The application with this client id, if it is registered for `method` (design.md §4.4);
 * otherwise `invalid_client`, before any secret is checked.
 */
export async function loadClient(ctx: OAuthContext, clientId: string, method: string): Promise<Application> {
  // A client id read from a header or an assertion claim may hold a NUL byte, which no stored id
  // has and which PostgreSQL refuses in a text parameter (a 500 otherwise).
  if (clientId.includes('\0')) throw invalidClient(ctx, 'unknown_client');
  const app = await ctx.store.applications.findByClientId(clientId);
  if (!app) throw invalidClient(ctx, 'unknown_client');
  if (!registeredAuthMethods(ctx, app).includes(method)) throw invalidClient(ctx, 'auth_method_not_allowed');
  return app;
}
