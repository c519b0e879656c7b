/**
 * The client-authentication dispatcher: finds the one method the request uses (RFC 6749 §2.3:
 * never more than one), runs it, and checks a `client_id` parameter against the result.
 */
import type { OAuthContext } from '../context';
import { OAuthError } from '../errors';
import type { ClientAuthMethodDef } from '../feature';
import type { Application } from '../store';
import { invalidClient } from './common';

export { clientSecretBasic } from './basic';
export { clientSecretPost } from './post';
export { none } from './none';
export { findClient, invalidClient, loadClient, registeredAuthMethods, type ClientRefusal, type ClientResolverExtension } from './common';

/**
 * The server-wide list of client-authentication methods: `oauthTokenEndpointAuthMethodsSupported`,
 * or every available method of the enabled features (token endpoint, revocation, introspection, metadata).
 */
export function supportedAuthMethods(ctx: OAuthContext): string[] {
  const configured = (ctx.values as unknown as { oauthTokenEndpointAuthMethodsSupported: string[] | null }).oauthTokenEndpointAuthMethodsSupported;
  const names = configured ?? [...ctx.runtime.clientAuthMethods.keys()];
  return names.filter((n) => ctx.runtime.clientAuthMethods.get(n)?.available?.(ctx) ?? true);
}

/** The method `none` is the fallback: it applies only when no credential-bearing method does. */
export async function authenticateClient(ctx: OAuthContext, methods: ReadonlyMap<string, ClientAuthMethodDef>, supported: readonly string[]): Promise<Application> {
  const used: string[] = [];
  for (const [name, def] of methods) if (name !== 'none' && def.detect(ctx)) used.push(name);
  if (used.length > 1) {
    const message = (ctx.values as unknown as { oauthMultipleClientAuthMethodsMessage: string }).oauthMultipleClientAuthMethodsMessage;
    throw new OAuthError('invalid_request', message, { reason: 'multiple_client_auth_methods' });
  }
  let name = used[0];
  if (name === undefined) {
    if (methods.has('none') && methods.get('none')!.detect(ctx)) name = 'none';
    else throw invalidClient(ctx, 'no_client_auth');
  }
  if (!supported.includes(name)) throw invalidClient(ctx, 'auth_method_not_allowed');
  const app = await methods.get(name)!.authenticate(ctx);
  // RFC 6749 §3.2.1 / RFC 7523 §3: a client_id sent beside other credentials must name the same client.
  const clientIdParam = ctx.params.client_id;
  if (clientIdParam !== undefined && clientIdParam !== app.clientId) throw invalidClient(ctx, 'client_id_mismatch');
  ctx.application = app;
  ctx.clientAuthMethod = name;
  return app;
}
