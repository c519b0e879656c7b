/** What every client-authentication method shares: loading the client and checking its methods. */
import type { OAuthContext } from '../context';
import { OAuthError, type OAuthErrorReason } from '../errors';
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

/** Builds the error of a client id that cannot be resolved: `invalid_client` at the token endpoint, the error page at /authorize. */
export type ClientRefusal = (reason: OAuthErrorReason, cause?: unknown) => OAuthError;

/**
 * Extension point `clientResolver`: client ids a feature resolves itself, such as a client ID
 * metadata document URL (`client_id_metadata_documents`), to an application row. `handles` is
 * a syntactic test, so an ordinary client id costs no fetch and no query beyond the store's.
 */
export interface ClientResolverExtension {
  /** Whether this resolver owns the client id (no I/O). */
  handles(clientId: string): boolean;
  /** The application, or throws `refuse(reason, cause)` when the client id cannot be resolved. */
  resolve(ctx: OAuthContext, clientId: string, refuse: ClientRefusal): Promise<Application>;
}

/** The application of a client id: through the resolver that owns it, else one indexed query; undefined when unknown. */
export async function findClient(ctx: OAuthContext, clientId: string, refuse: ClientRefusal): Promise<Application | undefined> {
  for (const resolver of ctx.runtime.extensions<ClientResolverExtension>('clientResolver')) {
    if (resolver.handles(clientId)) return resolver.resolve(ctx, clientId, refuse);
  }
  return ctx.store.applications.findByClientId(clientId);
}

/**
 * The application with this client id, if it is registered for `method` (design.md §4.4);
 * otherwise `invalid_client`, before any secret is checked.
 */
export async function loadClient(ctx: OAuthContext, clientId: string, method: string): Promise<Application> {
  // A client id read from a header or an assertion claim may hold a NUL byte, which no stored id
  // has and which PostgreSQL refuses in a text parameter (a 500 otherwise).
  if (clientId.includes('\0')) throw invalidClient(ctx, 'unknown_client');
  const app = await findClient(ctx, clientId, (reason, cause) => invalidClient(ctx, reason, cause));
  if (!app) throw invalidClient(ctx, 'unknown_client');
  if (!registeredAuthMethods(ctx, app).includes(method)) throw invalidClient(ctx, 'auth_method_not_allowed');
  return app;
}
