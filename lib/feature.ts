/**
 * The feature vocabulary (rodauth's `auth_value_method`, `auth_methods`, `before`/`after`,
 * `route`, `depends`) as typed declarations. A feature is one `defineFeature({...})` call,
 * the default export of `features/<id>.ts`.
 */
import type { OAuthContext, TokenContext } from './context';
import type { OAuthError } from './errors';
import type { TableId } from './migrations';

/** An auth value method: a default and its one-line doc. */
export interface ValueDef<T> {
  readonly kind: 'value';
  readonly default: T;
  readonly doc: string;
  /** The runtime type an override must have, checked at start-up (`typeof`, or `array`). */
  readonly type: ValueType;
}

export type ValueType = 'string' | 'number' | 'boolean' | 'array' | 'object' | 'nullable-string' | 'nullable-number' | 'nullable-object' | 'nullable-array';

/** An auth method: the default implementation (context first) and its one-line doc. */
export interface MethodDef<F extends (ctx: OAuthContext, ...args: never[]) => unknown> {
  readonly kind: 'method';
  readonly impl: F;
  readonly doc: string;
}

/**
 * Declares an auth value method. The runtime type is taken from the default; give it
 * explicitly when the default is `null`.
 */
export function value<T>(defaultValue: T, doc: string, type?: ValueType): ValueDef<T> {
  return { kind: 'value', default: defaultValue, doc, type: type ?? typeOfDefault(defaultValue) };
}

/** Declares an auth method; users replace it, and an override reaches it as `ctx.super.<name>`. */
export function method<F extends (ctx: OAuthContext, ...args: never[]) => unknown>(impl: F, doc: string): MethodDef<F> {
  return { kind: 'method', impl, doc };
}

function typeOfDefault(v: unknown): ValueType {
  if (Array.isArray(v)) return 'array';
  if (v === null) throw new TypeError('value(): a null default needs an explicit type');
  const t = typeof v;
  if (t === 'string' || t === 'number' || t === 'boolean' || t === 'object') return t;
  throw new TypeError(`value(): unsupported default of type ${t}`);
}

/** A route of a feature. Its path is the `<name>Route` value; `before<Name>Route` runs first. */
export interface RouteDef {
  name: string;
  /**
   * Default path segment; default: the name with `_` → `-` (rodauth). A last segment `:name`
   * matches any one segment, which the handler reads as `ctx.req.params.name` (decoded).
   */
  path?: string;
  method: 'get' | 'post' | 'put' | 'delete';
  /** Answers an error thrown by the handler; default: the RFC 6749 §5.2 JSON renderer. */
  renderError?: (ctx: OAuthContext, err: OAuthError) => void | Promise<void>;
  /** Whether the route reads a form/JSON body (default: true for POST). */
  body?: boolean;
  /**
   * Whether the route reads its query string (default: when it reads no body). A route that
   * takes no parameter says false, so a cache-busting or malformed query cannot fail it.
   */
  query?: boolean;
  /**
   * CORS for browser-based clients (lib/http/cors.ts): `document` for a public document
   * (`oauthCorsDocumentOrigins`), `endpoint` for an endpoint a client posts to
   * (`oauthCorsOrigins`). Absent: no CORS headers at all (the authorization endpoint).
   */
  cors?: 'document' | 'endpoint';
  handler: (ctx: OAuthContext) => Promise<void>;
}

/** What a grant type handler returns: the token response body. */
export interface TokenResponse {
  access_token: string;
  token_type: string;
  expires_in: number;
  refresh_token?: string;
  scope: string;
  [extra: string]: unknown;
}

/** A grant type contributed to the token endpoint's registry (oidc-provider's grant registry). */
export interface GrantTypeDef<Prepared = any> {
  /** The parameters the grant reads; all must be strings and single (RFC 6749 §3.2). */
  parameters: readonly string[];
  /**
   * `required` (default): the client authenticates with a registered method before the handler runs.
   * `assertion`: the grant identifies its client itself (RFC 7521 §4.1); client credentials are optional.
   */
  clientAuthentication?: 'required' | 'assertion';
  /**
   * The handler writes at most one statement on every path (an INSERT, or one conditional
   * UPDATE): with no `beforeToken` / `afterToken` hook registered, the token endpoint then skips
   * the explicit transaction, since a single statement is atomic on its own.
   */
  singleStatement?: boolean;
  /**
   * The grant's slow work, run before any transaction opens: client authentication of an
   * `assertion` grant, signature checks, key fetches, host lookups. Its result is handed to
   * `handler`. A transaction holds the database (on SQLite, the one writer every request waits
   * for) only for its own statements, so nothing that waits on a hash, a network or a client
   * belongs in `handler`.
   */
  prepare?: (ctx: TokenContext) => Promise<Prepared>;
  /** Writes the grant and builds the response, inside the token transaction with the hooks. */
  handler: (ctx: TokenContext, prepared: Prepared) => Promise<TokenResponse>;
}

/**
 * A grant type whose `prepare` result is the `handler`'s second argument, checked by the
 * compiler (the registry stores grants of any preparation).
 */
export function grantType<Prepared>(def: GrantTypeDef<Prepared>): GrantTypeDef<Prepared> {
  return def;
}

/** What a feature's start-up check may read of the instance besides its values. */
export interface ValidationContext {
  /** The `issuer` option; undefined when the issuer is derived from requests (development). */
  readonly issuer: string | undefined;
  /** The instance's logger, for a start-up warning about a working but questionable configuration. */
  readonly logger: import('./log').OAuthLogger;
}

/** The passport Strategy contract for a client-authentication method. */
export interface ClientAuthMethodDef {
  /** Whether the request carries this method's credentials. */
  detect: (ctx: OAuthContext) => boolean;
  /** Resolves with the authenticated application, or throws an `invalid_client` OAuthError. */
  authenticate: (ctx: OAuthContext) => Promise<import('./store/applications').Application>;
  /** The challenge scheme to send back on failure (`Basic` for client_secret_basic). */
  challenge?: 'Basic';
  /** Whether the configuration lets the method work at all (default: yes); unavailable methods are neither accepted nor advertised. */
  available?: (ctx: OAuthContext) => boolean;
}

/** A metadata key: a constant, or computed from the request (URLs follow the mount path). */
export type MetadataDef = (ctx: OAuthContext) => unknown;

export type AnyFeature = Feature<string, readonly AnyFeature[], Record<string, ValueDef<any>>, Record<string, MethodDef<any>>, readonly string[], readonly RouteDef[]>;

export interface Feature<
  Id extends string,
  Deps extends readonly AnyFeature[],
  V extends Record<string, ValueDef<any>>,
  M extends Record<string, MethodDef<any>>,
  H extends readonly string[],
  R extends readonly RouteDef[],
> {
  readonly id: Id;
  readonly depends: Deps;
  readonly doc: string;
  readonly values: V;
  readonly methods: M;
  readonly hooks: H;
  readonly routes: R;
  readonly grantTypes: Readonly<Record<string, GrantTypeDef>>;
  readonly clientAuthMethods: Readonly<Record<string, ClientAuthMethodDef>>;
  /** Metadata keys (RFC 8414) this feature adds; lists are merged by the registry. */
  readonly metadata: Readonly<Record<string, MetadataDef>>;
  /** Runs once at start-up with the resolved options, to reject inconsistent configuration early. */
  readonly validate?: (values: Record<string, unknown>, instance: ValidationContext) => void;
  /** The tables `auth.migrate()` creates for this feature. */
  readonly tables?: readonly TableId[];
  /**
   * Contributions to extension points that other features declare and call through
   * `ctx.runtime.extensions(point)` (e.g. `pkce` contributes checks to `authorization_code_grant`).
   */
  readonly extend: Readonly<Record<string, unknown>>;
}

export interface FeatureInput<
  Id extends string,
  Deps extends readonly AnyFeature[],
  V extends Record<string, ValueDef<any>>,
  M extends Record<string, MethodDef<any>>,
  H extends readonly string[],
  R extends readonly RouteDef[],
> {
  id: Id;
  doc: string;
  depends?: Deps;
  values?: V;
  methods?: M;
  hooks?: H;
  routes?: R;
  grantTypes?: Record<string, GrantTypeDef>;
  clientAuthMethods?: Record<string, ClientAuthMethodDef>;
  metadata?: Record<string, MetadataDef>;
  validate?: (values: Record<string, unknown>, instance: ValidationContext) => void;
  tables?: readonly TableId[];
  extend?: Record<string, unknown>;
}

/** Declares a feature. See `features/client_credentials_grant.ts` for the smallest complete one. */
export function defineFeature<
  const Id extends string,
  const Deps extends readonly AnyFeature[] = readonly [],
  V extends Record<string, ValueDef<any>> = {},
  M extends Record<string, MethodDef<any>> = {},
  const H extends readonly string[] = readonly [],
  const R extends readonly RouteDef[] = readonly [],
>(input: FeatureInput<Id, Deps, V, M, H, R>): Feature<Id, Deps, V, M, H, R> {
  return Object.freeze({
    id: input.id,
    doc: input.doc,
    depends: (input.depends ?? []) as unknown as Deps,
    values: (input.values ?? {}) as V,
    methods: (input.methods ?? {}) as M,
    hooks: (input.hooks ?? []) as unknown as H,
    routes: (input.routes ?? []) as unknown as R,
    grantTypes: input.grantTypes ?? {},
    clientAuthMethods: input.clientAuthMethods ?? {},
    metadata: input.metadata ?? {},
    validate: input.validate,
    tables: input.tables ?? [],
    extend: input.extend ?? {},
  });
}

// ---------------------------------------------------------------------------------------
// Option types that follow the enabled features (style.md §7.3).

/** The dependency closure of a feature, as a union. */
export type Closure<F> = F extends AnyFeature ? F | ClosureOfDeps<F['depends']> : never;
type ClosureOfDeps<D> = D extends readonly [infer Head, ...infer Tail] ? Closure<Head> | ClosureOfDeps<Tail> : never;

type UnionToIntersection<U> = (U extends unknown ? (x: U) => void : never) extends (x: infer I) => void ? I : never;

/** Flattens an intersection for readable hovers and error messages. */
export type Simplify<T> = { [K in keyof T]: T[K] } & {};

/** A value override: a constant, or a function of the request context. */
export type ValueOverride<T> = T | ((ctx: OAuthContext) => T);

/** Widens literal defaults (`3600` → `number`) while keeping declared unions. */
type Widen<T> = T extends string ? (string extends T ? string : T) : T extends number ? number : T extends boolean ? boolean : T;

type ValueOptions<V> = { [K in keyof V]?: V[K] extends ValueDef<infer T> ? ValueOverride<Widen<T>> : never };
type MethodOptions<M> = { [K in keyof M]?: M[K] extends MethodDef<infer F> ? F : never };
type HookOptions<H extends readonly string[]> = { [K in H[number]]?: (ctx: OAuthContext) => void | Promise<void> };
type RouteName<S extends string> = S extends `${infer A}_${infer B}` ? `${A}${Capitalize<RouteName<B>>}` : S;
type RouteOptions<R extends readonly RouteDef[]> = { [K in R[number]['name'] as `${RouteName<K>}Route`]?: ValueOverride<string> } & {
  [K in R[number]['name'] as `before${Capitalize<RouteName<K>>}Route`]?: (ctx: OAuthContext) => void | Promise<void>;
};

type OptionsOfFeature<F> = F extends Feature<any, any, infer V, infer M, infer H, infer R>
  ? ValueOptions<V> & MethodOptions<M> & HookOptions<H> & RouteOptions<R>
  : never;

/** The options accepted for a set of features (give it the closure). */
export type OptionsFor<F> = Simplify<UnionToIntersection<OptionsOfFeature<F>>>;

/** The values a feature declares, as plain types (for `OAuthValues` augmentation). */
export type ValuesOf<V> = { readonly [K in keyof V]: V[K] extends ValueDef<infer T> ? Widen<T> : never };

/** The methods a feature declares, bound to the context (for `OAuthMethods` augmentation). */
export type MethodsOf<M> = {
  readonly [K in keyof M]: M[K] extends MethodDef<infer F> ? (F extends (ctx: any, ...args: infer A) => infer Ret ? (...args: A) => Ret : never) : never;
};

/** Hooks common to every feature set. */
export interface CommonHookOptions {
  /** Receives every error with its internal reason (never sent to the client). */
  onError?: (ctx: OAuthContext | undefined, error: OAuthError) => void | Promise<void>;
}
