/**
 * RFC 8707 resource indicators: the `resource` parameter at /authorize and /token names the
 * resources (APIs, MCP servers) a token is for, and the token is bound to them: a JWT access
 * token's `aud`, the resources stored on the grant for opaque ones, `aud` in introspection.
 * `requireOauthAuthorization({ resource })` and `protectedResource().require()` accept only
 * tokens bound to their resource (lib/resource.ts).
 *
 * The parameter may be repeated (§2); lib/http/params.ts lets it be, and only it, through the
 * `multiValuedParameters` point. Each value is checked (§2: an absolute URI without a fragment)
 * and must be allowed for the client (`resourceAllowed`: the application's own list when it has
 * one, else the `oauthResourceIndicators` list and the resources of `protectedResource()`),
 * else `invalid_target`.
 */
import type { OAuthContext } from '../lib/context';
import { defineFeature, method, value, type MethodsOf, type ValuesOf } from '../lib/feature';
import { OAuthError } from '../lib/errors';
import { paramValues } from '../lib/http/params';
import { OAuthConfigurationError } from '../lib/options';
import { isDeclaredResource } from '../lib/protected_resource';
import { isResourceUri } from '../lib/resource';
import type { Application } from '../lib/store';
import type { TokenResourcesExtension } from '../lib/tokens';
import type { AuthorizationRequestExtension } from './authorization_code_grant';
import oauthBase from './oauth_base';

const values = {
  // (c) policy
  oauthResourceIndicators: value<string[]>(
    [],
    "Resources (absolute URIs, RFC 8707 §2) every client without its own list (`resourceIndicators`) may ask for with `resource`, besides those of `auth.protectedResource()`. Override `resourceAllowed` for another policy.",
  ),
  // (d) messages
  oauthMalformedResourceMessage: value('The resource must be an absolute URI without a fragment', 'error_description of invalid_target for a `resource` that is not an absolute URI, or has a fragment (RFC 8707 §2).'),
  oauthInvalidResourceMessage: value('Unknown or unauthorized resource', 'error_description of invalid_target for a `resource` the client may not ask for, or (at /token) one the grant does not cover.'),
};

const methods = {
  resourceAllowed: method(
    (ctx: OAuthContext, application: Application, resource: string): boolean =>
      Array.isArray(application.resourceIndicators)
        ? application.resourceIndicators.includes(resource)
        : ctx.values.oauthResourceIndicators.includes(resource) || isDeclaredResource(ctx.runtime, resource),
    "Whether `application` may ask for a token for `resource` (an absolute URI): by default, when it is in the application's own list (`resourceIndicators` of createApplication / applications.update), or, for an application without one, in `oauthResourceIndicators` or given to `auth.protectedResource()`. Synchronous.",
  ),
};

declare module '../lib/context' {
  interface OAuthValues extends ValuesOf<typeof values> {}
  interface OAuthMethods extends MethodsOf<typeof methods> {}
}

const authorizationRequest: AuthorizationRequestExtension = {
  parameters: ['resource'],
  // §2.1: checked once the client and redirect URI are known, so a refusal goes back to the client.
  validate(ctx, application) {
    const resources = allowedResources(ctx, application);
    return resources.length > 0 ? { resources } : {};
  },
};

const tokenResources: TokenResourcesExtension = {
  narrow: narrowResources,
  request: (ctx) => allowedResources(ctx, ctx.application!),
};

export default defineFeature({
  id: 'resource_indicators',
  doc: 'RFC 8707 resource indicators: `resource` at /authorize and /token, audience-bound tokens, invalid_target.',
  depends: [oauthBase],
  values,
  methods,
  extend: { multiValuedParameters: 'resource', authorizationRequest, tokenResources },
  validate: validateOptions,
});

/** §2: every `resource` of the request, each an absolute URI without a fragment, without repeats. */
function requestedResources(ctx: OAuthContext): string[] {
  const resources = [...new Set(paramValues(ctx.params, 'resource'))];
  if (!resources.every(isResourceUri)) throw new OAuthError('invalid_target', ctx.values.oauthMalformedResourceMessage, { reason: 'malformed_resource' });
  return resources;
}

/** §2: the requested resources, each one the client may ask for (/authorize, and /token for a new grant). */
function allowedResources(ctx: OAuthContext, application: Application): string[] {
  const resources = requestedResources(ctx);
  for (const r of resources) {
    if (!ctx.methods.resourceAllowed(application, r)) throw new OAuthError('invalid_target', ctx.values.oauthInvalidResourceMessage, { reason: 'resource_not_allowed' });
  }
  return resources;
}

/**
 * §2.2: at the token endpoint for an existing grant (code exchange, refresh), `resource` picks
 * some of the grant's resources, the audience of this access token only; the grant keeps them
 * all, so a later refresh may pick others. Without it, the token is for all of them.
 */
function narrowResources(ctx: OAuthContext, granted: readonly string[]): string[] {
  const requested = requestedResources(ctx);
  if (requested.length === 0) return [...granted];
  if (!requested.every((r) => granted.includes(r))) throw new OAuthError('invalid_target', ctx.values.oauthInvalidResourceMessage, { reason: 'resource_not_allowed' });
  return requested;
}

/** Rejects at start-up a list the types cannot check (JavaScript callers, malformed URIs). */
function validateOptions(v: Record<string, unknown>): void {
  const list = v.oauthResourceIndicators;
  if (Array.isArray(list)) {
    const bad = list.find((r) => !isResourceUri(r));
    if (bad !== undefined) throw new OAuthConfigurationError(`oauth(): option 'oauthResourceIndicators' must list absolute URIs without a fragment (RFC 8707 §2); got ${JSON.stringify(bad)}.`);
  }
}
