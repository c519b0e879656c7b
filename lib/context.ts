/**
 * The per-request context every handler, method, value function and hook receives: the
 * request, its parameters, the resolved values and methods, the store and the transaction.
 */
import type { Request, Response } from 'express';
import type { Knex } from 'knex';
import { OAuthError } from './errors';
import { requestOrigin } from './http/origin';
import type { Application, Grant } from './store';
import type { Store } from './store';
import type { Runtime } from './runtime';
import type { ClientAuthMethodDef, GrantTypeDef, MetadataDef } from './feature';
import type { VerifiedSecretCache } from './crypto';
import type { OAuthLogger } from './log';

/** What a feature may read of the configured instance: the contribution registries. */
export interface RuntimeView {
  readonly enabled: ReadonlySet<string>;
  readonly grantTypes: ReadonlyMap<string, GrantTypeDef>;
  readonly clientAuthMethods: ReadonlyMap<string, ClientAuthMethodDef>;
  readonly metadata: readonly (readonly [string, MetadataDef])[];
  readonly secretCache: VerifiedSecretCache;
  readonly logger: OAuthLogger;
  /** Whether the `issuer` option is set (else the issuer is derived from each request). */
  readonly issuerConfigured: boolean;
  /** The registered hook functions, by hook name. */
  readonly hooks: ReadonlyMap<string, readonly unknown[]>;
  /** What the enabled features contribute to a declared extension point (see `defineFeature({ extend })`). */
  extensions<T = unknown>(point: string): readonly T[];
}

/**
 * Every auth value method of every feature, by name. Each feature file adds its own with
 * `declare module '../lib/context' { interface OAuthValues extends ValuesOf<typeof values> {} }`.
 */
// eslint-disable-next-line @typescript-eslint/no-empty-interface
export interface OAuthValues {}

/** Every auth method, bound to the context (call `ctx.methods.secretMatches(app, secret)`). */
// eslint-disable-next-line @typescript-eslint/no-empty-interface
export interface OAuthMethods {}

/** The request's parameters: single, non-empty strings (RFC 6749 §3.1, §3.2). */
export type OAuthParams = Readonly<Record<string, string>>;

export interface OAuthContext {
  readonly req: Request;
  readonly res: Response;
  /** Parameters of the body (POST) or the query (GET), already checked for duplicates and types. */
  params: OAuthParams;
  /** Auth value methods: constants, or computed from this context when overridden by a function. */
  readonly values: OAuthValues;
  /** Auth methods, resolved to the user's override where there is one. */
  readonly methods: OAuthMethods;
  /** The default implementations, for an override that wants to call what it replaces. */
  readonly super: OAuthMethods;
  /** Queries, bound to the current transaction when inside `transaction()`. */
  readonly store: Store;
  /**
   * A knex handle for hooks and overridden methods: bound to the current transaction inside one
   * (on SQLite, the transaction's own connection; its writes roll back with the request), the
   * host's knex outside one. A query through a handle whose transaction has ended throws.
   */
  readonly db: Knex;
  /** The authenticated client, once client authentication has run. */
  application?: Application;
  /** The client-authentication method that authenticated `application`. */
  clientAuthMethod?: string;
  /** The grant being created or used, where there is one. */
  grant?: Grant;
  /** The logged-in resource owner's id, where there is one. */
  accountId?: string | null;
  /** The configured instance's registries (grant types, client-auth methods, metadata). */
  readonly runtime: RuntimeView;
  /** Free space for hooks and overrides to pass data along one request. */
  readonly locals: Record<string, unknown>;
  /** Runs a declared hook (all registered functions, in order). */
  hook(name: string): Promise<void>;
  /** Runs `fn` in one database transaction (reused when already inside one). */
  transaction<T>(fn: () => Promise<T>): Promise<T>;
  /** The current time (an auth method, so specs and hosts can move the clock). */
  now(): Date;
  /** The issuer identifier: the `issuer` option, or (development only) the request's origin and mount path. */
  readonly issuer: string;
  /** An absolute URL of one of this router's routes (by route name), following the mount path. */
  routeUrl(name: string): string;
  /** The path of one of this router's routes, following the mount path. */
  routePath(name: string): string;
}

/** The context of a grant-type handler: the client is authenticated. */
export interface TokenContext extends OAuthContext {
  application: Application;
  readonly grantType: string;
}

/** Builds contexts for one configured `oauth()` instance. */
export class ContextImpl implements OAuthContext {
  params: OAuthParams = EMPTY;
  application?: Application;
  clientAuthMethod?: string;
  grant?: Grant;
  accountId?: string | null;
  grantType = '';
  readonly values: OAuthValues;
  readonly methods: OAuthMethods;
  private superMethods?: OAuthMethods;
  private storeInstance: Store;
  private localsObj?: Record<string, unknown>;
  private issuerCache?: string;

  get runtime(): RuntimeView {
    return this.rt;
  }

  constructor(
    readonly rt: Runtime,
    readonly req: Request,
    readonly res: Response,
  ) {
    this.values = rt.valuesFor(this);
    this.methods = rt.bindMethods(this, false);
    this.storeInstance = rt.store;
  }

  /** The default methods, bound when an override first asks for them (most requests never do). */
  get super(): OAuthMethods {
    return (this.superMethods ??= this.rt.bindMethods(this, true));
  }

  get store(): Store {
    return this.storeInstance;
  }

  get db(): Knex {
    return this.storeInstance.knex;
  }

  get locals(): Record<string, unknown> {
    return (this.localsObj ??= {});
  }

  async hook(name: string): Promise<void> {
    const fns = this.rt.hooks.get(name);
    if (!fns) return;
    for (const fn of fns) await fn(this);
  }

  async transaction<T>(fn: () => Promise<T>): Promise<T> {
    if (this.storeInstance.inTransaction) return fn();
    const outer = this.storeInstance;
    let committedError: OAuthError | undefined;
    try {
      const result = await outer.transaction(async (store) => {
        this.storeInstance = store;
        try {
          return await fn();
        } catch (e) {
          // A replay's revocation is committed, and the error still answers the request.
          if (e instanceof OAuthError && e.commit) {
            committedError = e;
            return undefined as T;
          }
          throw e;
        }
      });
      if (committedError) throw committedError;
      return result;
    } finally {
      this.storeInstance = outer;
    }
  }

  now(): Date {
    return (this.methods as { now(): Date }).now();
  }

  get issuer(): string {
    if (this.issuerCache === undefined) {
      // A request with an invalid Host never reaches a handler (lib/oauth.ts answers it 400); a
      // host middleware may still ask, and gets a name that matches nothing rather than the header.
      this.issuerCache = this.rt.issuer ?? `${requestOrigin(this.req) ?? 'http://invalid-host.invalid'}${this.req.baseUrl ?? ''}`;
    }
    return this.issuerCache;
  }

  routePath(name: string): string {
    const path = this.rt.routePaths.get(name);
    if (path === undefined) throw new OAuthError('server_error', undefined, { reason: 'internal_error', cause: new Error(`unknown route ${name}`) });
    return `${this.req.baseUrl ?? ''}${path}`;
  }

  routeUrl(name: string): string {
    // Endpoints live under the issuer (RFC 8414 §2), which is the origin and mount path by default.
    const path = this.rt.routePaths.get(name);
    if (path === undefined) return this.routePath(name);
    return `${this.issuer}${path}`;
  }

}

const EMPTY: OAuthParams = Object.freeze(Object.create(null));
