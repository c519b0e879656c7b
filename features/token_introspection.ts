/**
 * RFC 7662 token introspection: an authenticated client (typically a resource server) learns
 * whether a token is active and what it carries. A caller sees its own tokens, and any token
 * when listed in `oauthIntrospectionAllowedClients` or allowed by `canIntrospect`; every other
 * token, like unknown, expired and revoked ones, is `{"active": false}` (§2.2, §4).
 */
import type { OAuthContext } from '../lib/context';
import { defineFeature, method, value, type MethodsOf, type ValuesOf } from '../lib/feature';
import { invalidClient, supportedAuthMethods } from '../lib/client_auth';
import { requireParam } from '../lib/http/params';
import { setNoCache } from '../lib/http/no_cache';
import type { Application, Grant } from '../lib/store';
import { findTokenGrant, type TokenKind } from '../lib/tokens';
import { subjectFor } from '../lib/subject';
import { ownAudience } from '../lib/resource';
import oauthBase from './oauth_base';

const values = {
  // (c) policy
  oauthIntrospectionAllowedClients: value<string[]>([], 'Client ids (e.g. resource servers) that may introspect tokens issued to any client; other callers see only their own tokens.'),
};

const methods = {
  canIntrospect: method(
    async (ctx: OAuthContext, grant: Grant): Promise<boolean> => {
      const caller = ctx.application;
      if (!caller) return false;
      return grant.oauthApplicationId === caller.id || ctx.values.oauthIntrospectionAllowedClients.includes(caller.clientId);
    },
    "Whether the authenticated caller (`ctx.application`) may see the token's grant: by default its own tokens, or any token when its client id is in oauthIntrospectionAllowedClients.",
  ),
  introspectionUsername: method(
    async (_ctx: OAuthContext, grant: Grant, application: Application): Promise<string | null> => (grant.accountId === null ? application.name : null),
    "The `username` of an active token (RFC 7662 §2.2), omitted when null. Default: the application's name for tokens without a resource owner (client credentials); null for account tokens, whose human-readable login only the host knows (override to look it up; the account id is `sub`).",
  ),
};

declare module '../lib/context' {
  interface OAuthValues extends ValuesOf<typeof values> {}
  interface OAuthMethods extends MethodsOf<typeof methods> {}
}

export default defineFeature({
  id: 'token_introspection',
  doc: 'RFC 7662 token introspection.',
  depends: [oauthBase],
  values,
  methods,
  routes: [{ name: 'introspect', method: 'post', handler: introspectRoute }],
  metadata: {
    introspection_endpoint: (ctx) => ctx.routeUrl('introspect'),
    introspection_endpoint_auth_methods_supported: (ctx) => authMethods(ctx),
  },
});


/** The RFC 7662 §2.2 response of an active token; null members are left out. */
export interface IntrospectionResponse {
  active: true;
  scope: string;
  client_id: string;
  username?: string;
  /** An access token's type (RFC 6749 §5.1); a refresh token has none (§2.2). */
  token_type?: string;
  exp?: number;
  iat?: number;
  sub: string;
  /**
   * RFC 8707 resources the token is for (one string for one); when it names none, the server's
   * own audience (`oauthJwtAudience ?? issuer`), as in a JWT access token's `aud` and at
   * `requireOauthAuthorization`.
   */
  aud: string | string[];
  iss: string;
}

/**
 * POST /introspect: authenticate the caller (§2.1) → read `token` → find its grant → describe
 * it if active and visible to the caller, else `{"active": false}` → 200, never cached (§4).
 */
async function introspectRoute(ctx: OAuthContext): Promise<void> {
  setNoCache(ctx.res);
  await ctx.methods.authenticateClient();
  // §2.1 and §4: the endpoint requires authorization to prevent token scanning; a public
  // client's client_id authenticates nobody.
  if (!authMethods(ctx).includes(ctx.clientAuthMethod ?? '')) throw invalidClient(ctx, 'auth_method_not_allowed');
  const token = requireParam(ctx.params, 'token');
  const found = await findTokenGrant(ctx, token, ctx.params.token_type_hint);
  const body = found ? await describeToken(ctx, found.grant, found.kind) : undefined;
  ctx.res.status(200).json(body ?? { active: false });
}

/** The client-authentication methods of the token endpoint, except `none`. */
function authMethods(ctx: OAuthContext): string[] {
  return supportedAuthMethods(ctx).filter((m) => m !== 'none');
}

/** §2.2: an active token's members; undefined when it is revoked, expired or not the caller's to see. */
async function describeToken(ctx: OAuthContext, grant: Grant, kind: TokenKind): Promise<IntrospectionResponse | undefined> {
  if (grant.revokedAt) return undefined;
  // A refresh token without an expiry lives as long as its grant (as the refresh grant treats it).
  const expiresAt = kind === 'access_token' ? grant.expiresIn : grant.refreshTokenExpiresIn;
  if (expiresAt && expiresAt.getTime() <= ctx.now().getTime()) return undefined;
  if (!(await ctx.methods.canIntrospect(grant))) return undefined;
  const caller = ctx.application!;
  // §2.2: client_id is the client the token was issued to, not the caller.
  const app = grant.oauthApplicationId === caller.id ? caller : await ctx.store.applications.findById(grant.oauthApplicationId);
  if (!app) return undefined;
  const username = await ctx.methods.introspectionUsername(grant, app);
  const issuedAt = tokenIssuedAt(ctx, grant, kind, expiresAt);
  return {
    active: true,
    scope: grant.scopes.join(' '),
    client_id: app.clientId,
    ...(username !== null && { username }),
    // §2.2: token_type is "the type of the token as defined in Section 5.1 of OAuth 2.0", a type
    // of access token ("Bearer"); a refresh token has no such type, so the member is left out.
    ...(kind === 'access_token' && { token_type: ctx.values.oauthTokenType }),
    ...(expiresAt && { exp: epochSeconds(expiresAt) }),
    ...(issuedAt && { iat: epochSeconds(issuedAt) }),
    // The `sub` the client knows the end user by (lib/subject.ts: the ID token's, pairwise included).
    sub: grant.accountId === null ? app.clientId : await subjectFor(ctx, app, grant.accountId),
    aud: audience(grant, kind) ?? ownAudience(ctx),
    iss: ctx.issuer,
  };
}

/** RFC 8707 §2: the resources of the token (an access token's own when a request narrowed them), else undefined. */
function audience(grant: Grant, kind: TokenKind): string | string[] | undefined {
  const resources = (kind === 'access_token' ? grant.tokenResources : null) ?? grant.resources ?? [];
  return resources.length === 0 ? undefined : resources.length === 1 ? resources[0] : resources;
}

/**
 * When the token was issued. The row keeps one creation time for the whole grant, while a
 * refresh issues new tokens later; a token's issue time is its expiry less the configured
 * lifetime, never before the grant was created.
 */
function tokenIssuedAt(ctx: OAuthContext, grant: Grant, kind: TokenKind, expiresAt: Date | null): Date | null {
  const lifetime =
    kind === 'access_token'
      ? ctx.values.oauthAccessTokenExpiresIn
      : ctx.runtime.enabled.has('refresh')
        ? Number((ctx.values as unknown as { oauthRefreshTokenExpiresIn?: number }).oauthRefreshTokenExpiresIn)
        : NaN;
  if (!expiresAt || !Number.isFinite(lifetime)) return grant.createdAt;
  const derived = expiresAt.getTime() - lifetime * 1000;
  return new Date(grant.createdAt ? Math.max(derived, grant.createdAt.getTime()) : derived);
}

function epochSeconds(d: Date): number {
  return Math.floor(d.getTime() / 1000);
}
