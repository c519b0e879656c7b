/**
 * Client management (issue 12 item 2): `auth.applications.list / get / update / rotateSecret /
 * revokeGrants / delete`. Each is an auth method of `oauth_base` (`listApplications`,
 * `getApplication`, `updateApplication`, `rotateClientSecret`, `revokeGrants`,
 * `deleteApplication`) whose default lives here, so a host can replace or wrap any of them
 * (`ctx.super.deleteApplication(clientId)`); `auth.applications.*` calls them through a system
 * context. Changes are validated by the same functions as `createApplication()`.
 */
import type { OAuthContext } from './context';
import {
  checkAccessTokenFormat,
  checkPostLogoutRedirectUris,
  checkPairwiseSector,
  checkSubjectType,
  checkResourceIndicators,
  checkAuthMethods,
  checkGrantTypes,
  checkJwks,
  checkJwksUri,
  checkName,
  checkRedirectUris,
  checkScopes,
  systemContext,
  type CreateApplicationInput,
} from './applications';
import { randomToken } from './crypto';
import type { Runtime } from './runtime';
import type { Application } from './store';
import type { ApplicationChanges } from './store/applications';

/** A registered client as the management API shows it: everything but its secret. */
export interface ApplicationInfo extends Omit<Application, 'clientSecretHash' | 'clientSecretEncrypted' | 'previousClientSecretHash' | 'previousClientSecretExpiresAt'> {
  /** Whether the client has a secret (a confidential client). A secret is shown only when created or rotated. */
  hasSecret: boolean;
  /** Until when the secret the last rotation replaced is still accepted; null when none is (on the `now()` clock). */
  previousSecretExpiresAt: Date | null;
}

/** Options of `applications.list()`. */
export interface ListApplicationsOptions {
  /** Page size, 1 to 1000 (default 50). */
  limit?: number;
  /** The `next` cursor of the previous page; omitted for the first page. */
  after?: string;
}

/** One page of `applications.list()`, in registration order. */
export interface ApplicationPage {
  applications: ApplicationInfo[];
  /** The cursor of the next page (`list({ after: next })`), or null on the last page. */
  next: string | null;
}

/**
 * What `applications.update()` may change, with the types and rules of `createApplication()`.
 * An omitted field stays as it is; `null` clears a field that may be empty (for
 * `tokenEndpointAuthMethod` and `accessTokenFormat`: back to the server's default).
 */
export interface UpdateApplicationInput {
  name?: string;
  description?: string | null;
  homepageUrl?: string | null;
  redirectUri?: string | string[];
  scopes?: string | string[];
  tokenEndpointAuthMethod?: string | string[] | null;
  grantTypes?: string[];
  responseTypes?: string[] | null;
  responseModes?: string[] | null;
  jwks?: object | string | null;
  jwksUri?: string | null;
  logoUri?: string | null;
  tosUri?: string | null;
  policyUri?: string | null;
  contacts?: string[] | null;
  softwareId?: string | null;
  softwareVersion?: string | null;
  accessTokenFormat?: CreateApplicationInput['accessTokenFormat'] | null;
  /** `oidc`: the post-logout redirect URIs (RP-Initiated Logout 1.0). */
  postLogoutRedirectUris?: string | string[];
  /** `oidc`: 'public' | 'pairwise'; null: the server's `oidcSubjectType`. */
  subjectType?: CreateApplicationInput['subjectType'] | null;
  /** `resource_indicators`: the RFC 8707 resources the client may ask for; null: the server's list. */
  resourceIndicators?: string[] | null;
}

/** Options of `applications.rotateSecret()`. */
export interface RotateSecretOptions {
  /**
   * How long, in seconds, the replaced secret keeps working beside the new one (default 0: it
   * stops at once), so the client's deployments can switch over. At most one year.
   */
  graceSeconds?: number;
}

/** The result of `applications.rotateSecret()`: the new secret, shown this once. */
export interface RotatedSecret {
  clientId: string;
  clientSecret: string;
  /** When the replaced secret stops working; null without a grace period. */
  previousSecretExpiresAt: Date | null;
}

/** Which grants `applications.revokeGrants()` revokes: those of a client, of an account, or of both at once. */
export interface RevokeGrantsFilter {
  clientId?: string;
  accountId?: string | number;
}

/** The result of `applications.delete()`. */
export interface DeletedApplication {
  clientId: string;
  /** How many grants of the client were removed with it. */
  grants: number;
}

/** `auth.applications`: manages registered clients. Every method rejects with `UnknownApplicationError` for an unknown client id. */
export interface ApplicationsApi {
  /**
   * A page of clients in registration order (keyset pagination on the row id).
   * @example
   * ```ts
   * let page = await auth.applications.list({ limit: 100 });
   * while (page.next) page = await auth.applications.list({ limit: 100, after: page.next });
   * ```
   */
  list(options?: ListApplicationsOptions): Promise<ApplicationPage>;
  /** One client by its client id. */
  get(clientId: string): Promise<ApplicationInfo>;
  /**
   * Changes a client's registration, validated as `createApplication()` validates it (a
   * TypeError names the first invalid field; nothing is written then). Its secret and tokens stay.
   * @example
   * ```ts
   * await auth.applications.update(clientId, { redirectUri: ['https://app.example/cb'], scopes: ['books.read'] });
   * ```
   */
  update(clientId: string, changes: UpdateApplicationInput): Promise<ApplicationInfo>;
  /**
   * Issues a new secret, returned this once and stored bcrypt-hashed. The replaced one keeps
   * working for `graceSeconds` (default 0), then stops in every process. A `client_secret_jwt`
   * client gets its new secret kept encrypted too; it cannot have a grace period (the JWT
   * method holds one secret), so `graceSeconds` above 0 is refused for it.
   * @throws TypeError for a public client (no secret), or an invalid `graceSeconds`.
   * @example
   * ```ts
   * const { clientSecret } = await auth.applications.rotateSecret(clientId, { graceSeconds: 86400 });
   * ```
   */
  rotateSecret(clientId: string, options?: RotateSecretOptions): Promise<RotatedSecret>;
  /** Revokes every grant (codes, access and refresh tokens) of a client, an account, or both; resolves with how many it revoked. */
  revokeGrants(filter: RevokeGrantsFilter): Promise<number>;
  /** Revokes and removes a client's grants and the client, in one transaction. */
  delete(clientId: string): Promise<DeletedApplication>;
}

/** A client id that no application has. `code` is `'unknown_client_id'`. */
export class UnknownApplicationError extends Error {
  readonly code = 'unknown_client_id';
  constructor(
    readonly clientId: string,
    caller: string,
  ) {
    super(`${caller}: unknown client id ${JSON.stringify(clientId)}`);
    this.name = 'UnknownApplicationError';
  }
}

/** The auth methods of this module, as their callers see them on `ctx.methods`. */
interface ManagementMethods {
  listApplications(options?: ListApplicationsOptions): Promise<ApplicationPage>;
  getApplication(clientId: string): Promise<ApplicationInfo>;
  updateApplication(clientId: string, changes: UpdateApplicationInput): Promise<ApplicationInfo>;
  rotateClientSecret(clientId: string, options?: RotateSecretOptions): Promise<RotatedSecret>;
  revokeGrants(filter: RevokeGrantsFilter): Promise<number>;
  deleteApplication(clientId: string): Promise<DeletedApplication>;
  secretHash(secret: string): Promise<string>;
  encryptClientSecret?(secret: string): Promise<string | null>;
}

const methodsOf = (ctx: OAuthContext): ManagementMethods => ctx.methods as unknown as ManagementMethods;

/** `auth.applications`: each call runs the auth method in a context of its own. */
export function applicationsApi(rt: Runtime): ApplicationsApi {
  const call = <T>(fn: (m: ManagementMethods) => Promise<T>): Promise<T> => fn(methodsOf(systemContext(rt)));
  return Object.freeze({
    list: (options?: ListApplicationsOptions) => call((m) => m.listApplications(options)),
    get: (clientId: string) => call((m) => m.getApplication(clientId)),
    update: (clientId: string, changes: UpdateApplicationInput) => call((m) => m.updateApplication(clientId, changes)),
    rotateSecret: (clientId: string, options?: RotateSecretOptions) => call((m) => m.rotateClientSecret(clientId, options)),
    revokeGrants: (filter: RevokeGrantsFilter) => call((m) => m.revokeGrants(filter)),
    // One transaction around the method, so an override (audit rows, a check after `ctx.super`) commits or rolls back with it.
    delete: (clientId: string) => {
      const ctx = systemContext(rt);
      return ctx.transaction(() => methodsOf(ctx).deleteApplication(clientId));
    },
  });
}

// ---------------------------------------------------------------------------------------------
// The default auth methods.

const DEFAULT_PAGE_SIZE = 50;
const MAX_PAGE_SIZE = 1000;
const MAX_GRACE_SECONDS = 365 * 86400;

/** Default of `listApplications`: one range scan of the primary key, `limit + 1` rows to know whether a page follows. */
export async function listApplications(ctx: OAuthContext, options: ListApplicationsOptions = {}): Promise<ApplicationPage> {
  const caller = 'applications.list()';
  if (options === null || typeof options !== 'object') throw new TypeError(`${caller}: options must be an object ({ limit, after })`);
  const limit = options.limit ?? DEFAULT_PAGE_SIZE;
  if (typeof limit !== 'number' || !Number.isInteger(limit) || limit < 1 || limit > MAX_PAGE_SIZE) {
    throw new TypeError(`${caller}: limit must be an integer from 1 to ${MAX_PAGE_SIZE} (got ${JSON.stringify(limit)})`);
  }
  let afterId = 0;
  if (options.after !== undefined && options.after !== null) {
    if (typeof options.after !== 'string' || !/^[1-9][0-9]{0,14}$/.test(options.after)) {
      throw new TypeError(`${caller}: after must be the 'next' cursor of a previous page (got ${JSON.stringify(options.after)})`);
    }
    afterId = Number(options.after);
  }
  const rows = await ctx.transaction(() => ctx.store.applications.list(afterId, limit + 1));
  const page = rows.slice(0, limit);
  return { applications: page.map((app) => applicationInfo(ctx, app)), next: rows.length > limit ? String(page[page.length - 1]!.id) : null };
}

/** Default of `getApplication`. */
export async function getApplication(ctx: OAuthContext, clientId: string): Promise<ApplicationInfo> {
  return applicationInfo(ctx, await findApplication(ctx, clientId, 'applications.get()'));
}

/** Default of `updateApplication`: validates every change first, then one UPDATE. */
export async function updateApplication(ctx: OAuthContext, clientId: string, changes: UpdateApplicationInput): Promise<ApplicationInfo> {
  const caller = 'applications.update()';
  const validated = validateChanges(ctx, caller, changes);
  return ctx.transaction(async () => {
    const app = await findApplication(ctx, clientId, caller);
    // A pairwise client (its own type or the server's) keeps its redirect URIs on one host (OIDC Core §8.1).
    if (validated.redirectUris !== undefined || validated.subjectType !== undefined) {
      checkPairwiseSector(ctx.runtime as unknown as Runtime, caller, validated.subjectType !== undefined ? validated.subjectType : app.subjectType, validated.redirectUris ?? app.redirectUris);
    }
    await ctx.store.applications.update(app.id, validated);
    return applicationInfo(ctx, (await ctx.store.applications.findById(app.id))!);
  });
}

/**
 * Default of `rotateClientSecret`. bcrypt (and the encryption of a `client_secret_jwt`
 * secret) runs before the write, which is one conditional UPDATE on the hash read before: of two
 * rotations at once, the second fails rather than keep the first's new secret as "previous".
 */
export async function rotateClientSecret(ctx: OAuthContext, clientId: string, options: RotateSecretOptions = {}): Promise<RotatedSecret> {
  const caller = 'applications.rotateSecret()';
  if (options === null || typeof options !== 'object') throw new TypeError(`${caller}: options must be an object ({ graceSeconds })`);
  const grace = options.graceSeconds ?? 0;
  if (typeof grace !== 'number' || !Number.isFinite(grace) || grace < 0 || grace > MAX_GRACE_SECONDS) {
    throw new TypeError(`${caller}: graceSeconds must be a number of seconds from 0 to ${MAX_GRACE_SECONDS} (one year; got ${JSON.stringify(grace)})`);
  }
  const app = await findApplication(ctx, clientId, caller);
  const methods = app.tokenEndpointAuthMethods;
  if (methods !== null && methods.every((m) => m === 'none')) {
    throw new TypeError(`${caller}: client ${JSON.stringify(clientId)} is a public client (token_endpoint_auth_method none): it has no secret to rotate`);
  }
  const m = methodsOf(ctx);
  // client_secret_jwt verifies HMACs with the one decrypted secret: it cannot accept two.
  const keepsEncrypted = app.clientSecretEncrypted !== null || (methods?.includes('client_secret_jwt') ?? false);
  if (keepsEncrypted && grace > 0) {
    throw new TypeError(`${caller}: client ${JSON.stringify(clientId)} uses client_secret_jwt, whose secret cannot have a grace period (the server keeps one secret to check its JWTs); rotate with graceSeconds 0`);
  }
  const clientSecret = randomToken(32);
  const clientSecretHash = await m.secretHash(clientSecret);
  const clientSecretEncrypted = keepsEncrypted && m.encryptClientSecret ? await m.encryptClientSecret(clientSecret) : null;
  const previous = grace > 0 && app.clientSecretHash ? app.clientSecretHash : null;
  const previousSecretExpiresAt = previous === null ? null : new Date(ctx.now().getTime() + grace * 1000);
  const rotated = await ctx.store.applications.rotateSecret(app.id, app.clientSecretHash, {
    clientSecretHash,
    clientSecretEncrypted,
    previousClientSecretHash: previous,
    previousClientSecretExpiresAt: previousSecretExpiresAt,
  });
  if (!rotated) {
    await findApplication(ctx, clientId, caller);
    throw new Error(`${caller}: the secret of client ${JSON.stringify(clientId)} was changed meanwhile (another rotation?); nothing was written, try again`);
  }
  return { clientId, clientSecret, previousSecretExpiresAt };
}

/** Default of `revokeGrants`: one UPDATE of every grant not yet revoked. */
export async function revokeGrants(ctx: OAuthContext, filter: RevokeGrantsFilter): Promise<number> {
  const caller = 'applications.revokeGrants()';
  if (filter === null || typeof filter !== 'object' || (filter.clientId === undefined && filter.accountId === undefined)) {
    throw new TypeError(`${caller}: give clientId, accountId or both`);
  }
  const { accountId } = filter;
  if (accountId !== undefined && !((typeof accountId === 'string' && accountId !== '') || (typeof accountId === 'number' && Number.isFinite(accountId)))) {
    throw new TypeError(`${caller}: accountId must be a non-empty string or a number (got ${JSON.stringify(accountId)})`);
  }
  const app = filter.clientId === undefined ? undefined : await findApplication(ctx, filter.clientId, caller);
  return ctx.store.grants.revokeMatching({ applicationId: app?.id, accountId: accountId === undefined ? undefined : String(accountId) }, ctx.now());
}

/**
 * Default of `deleteApplication`: in one transaction, revokes the client's grants (through
 * `revokeGrants`, so its override sees them), deletes them with their retired refresh tokens,
 * then the client. A failure at any step leaves every row in place.
 */
export async function deleteApplication(ctx: OAuthContext, clientId: string): Promise<DeletedApplication> {
  const caller = 'applications.delete()';
  return ctx.transaction(async () => {
    const app = await findApplication(ctx, clientId, caller);
    await methodsOf(ctx).revokeGrants({ clientId: app.clientId });
    const grants = await ctx.store.grants.deleteOfApplication(app.id, ctx.runtime.enabled.has('refresh'));
    if (!(await ctx.store.applications.delete(app.id))) throw new UnknownApplicationError(clientId, caller);
    return { clientId: app.clientId, grants };
  });
}

// ---------------------------------------------------------------------------------------------

async function findApplication(ctx: OAuthContext, clientId: unknown, caller: string): Promise<Application> {
  if (typeof clientId !== 'string' || clientId === '') throw new TypeError(`${caller}: clientId must be a non-empty string (got ${JSON.stringify(clientId)})`);
  const app = await ctx.store.applications.findByClientId(clientId);
  if (!app) throw new UnknownApplicationError(clientId, caller);
  return app;
}

function applicationInfo(ctx: OAuthContext, app: Application): ApplicationInfo {
  const { clientSecretHash, clientSecretEncrypted: _encrypted, previousClientSecretHash, previousClientSecretExpiresAt, ...rest } = app;
  const inGrace = previousClientSecretHash !== null && previousClientSecretExpiresAt !== null && previousClientSecretExpiresAt.getTime() > ctx.now().getTime();
  return { ...rest, hasSecret: Boolean(clientSecretHash), previousSecretExpiresAt: inGrace ? previousClientSecretExpiresAt : null };
}

const UPDATABLE: readonly (keyof UpdateApplicationInput)[] = [
  'name', 'description', 'homepageUrl', 'redirectUri', 'scopes', 'tokenEndpointAuthMethod', 'grantTypes', 'responseTypes', 'responseModes',
  'jwks', 'jwksUri', 'logoUri', 'tosUri', 'policyUri', 'contacts', 'softwareId', 'softwareVersion', 'accessTokenFormat',
  'postLogoutRedirectUris', 'subjectType', 'resourceIndicators',
];

/** The changes as store fields, each checked as `createApplication()` checks it. */
function validateChanges(ctx: OAuthContext, caller: string, changes: UpdateApplicationInput): ApplicationChanges {
  if (changes === null || typeof changes !== 'object' || Array.isArray(changes)) throw new TypeError(`${caller}: changes must be an object`);
  for (const key of Object.keys(changes)) {
    if (!(UPDATABLE as readonly string[]).includes(key)) throw new TypeError(`${caller}: '${key}' cannot be changed (fields: ${UPDATABLE.join(', ')})`);
  }
  const rt = ctx.runtime as unknown as Runtime;
  const c = changes;
  const out: ApplicationChanges = {};
  const text = (field: keyof UpdateApplicationInput, v: unknown): string | null | undefined => {
    if (v === undefined || v === null) return v;
    if (typeof v !== 'string') throw new TypeError(`${caller}: ${field} must be a string or null`);
    return v;
  };
  const strings = (field: keyof UpdateApplicationInput, v: unknown): string[] | null | undefined => {
    if (v === undefined || v === null) return v;
    if (!Array.isArray(v) || v.some((x) => typeof x !== 'string' || x === '' || /\s/.test(x))) throw new TypeError(`${caller}: ${field} must be an array of strings without spaces, or null`);
    return v as string[];
  };
  if (c.name !== undefined) out.name = checkName(caller, c.name);
  if (c.redirectUri !== undefined) out.redirectUris = checkRedirectUris(caller, c.redirectUri);
  if (c.scopes !== undefined) out.scopes = checkScopes(caller, c.scopes);
  if (c.tokenEndpointAuthMethod !== undefined) out.tokenEndpointAuthMethods = c.tokenEndpointAuthMethod === null ? null : checkAuthMethods(rt, caller, c.tokenEndpointAuthMethod);
  if (c.grantTypes !== undefined) out.grantTypes = checkGrantTypes(rt, caller, c.grantTypes);
  if (c.jwksUri !== undefined) out.jwksUri = c.jwksUri === null ? null : checkJwksUri(caller, c.jwksUri);
  if (c.jwks !== undefined) out.jwks = c.jwks === null ? null : checkJwks(caller, c.jwks);
  if (c.accessTokenFormat !== undefined) out.accessTokenFormat = checkAccessTokenFormat(rt, caller, c.accessTokenFormat);
  if (c.postLogoutRedirectUris !== undefined) out.postLogoutRedirectUris = checkPostLogoutRedirectUris(rt, caller, c.postLogoutRedirectUris);
  if (c.subjectType !== undefined) out.subjectType = checkSubjectType(rt, caller, c.subjectType, out.redirectUris);
  if (c.resourceIndicators !== undefined) out.resourceIndicators = checkResourceIndicators(rt, caller, c.resourceIndicators);
  out.description = text('description', c.description);
  out.homepageUrl = text('homepageUrl', c.homepageUrl);
  out.logoUri = text('logoUri', c.logoUri);
  out.tosUri = text('tosUri', c.tosUri);
  out.policyUri = text('policyUri', c.policyUri);
  out.softwareId = text('softwareId', c.softwareId);
  out.softwareVersion = text('softwareVersion', c.softwareVersion);
  out.responseTypes = strings('responseTypes', c.responseTypes);
  out.responseModes = strings('responseModes', c.responseModes);
  const contacts = strings('contacts', c.contacts);
  out.contacts = contacts === undefined || contacts === null ? contacts : contacts.join(' ');
  return out;
}
