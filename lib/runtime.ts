/**
 * One configured `oauth()` instance: the enabled features in dependency order, the resolved
 * values, methods and hooks, the contribution registries and the store. Built once at start-up.
 */
import type { Knex } from 'knex';
import type { AnyFeature, ClientAuthMethodDef, GrantTypeDef, MetadataDef, RouteDef, ValueType } from './feature';
import type { OAuthContext } from './context';
import { OAuthError } from './errors';
import { VerifiedSecretCache } from './crypto';
import { loggerFor, type OAuthLogger } from './log';
import { OAuthConfigurationError, checkMessageValue, checkValueType, defaultRoutePath, optionNames, routeValueName, unknownFeature, unknownOption, FRAMEWORK_OPTIONS } from './options';
import { isSchemaValue, resolveSchema, type Schema } from './store/schema';
import { issuerProblem } from './http/origin';
import { Store } from './store';
import type { TableId } from './migrations';

type Fn = (...args: any[]) => any;
const CTX = Symbol('ctx');

export interface RuntimeOptions {
  db: Knex;
  enable?: readonly string[];
  issuer?: string;
  logger?: OAuthLogger;
  onError?: (ctx: OAuthContext | undefined, err: OAuthError) => void | Promise<void>;
  [option: string]: unknown;
}

export class Runtime {
  readonly features: AnyFeature[];
  readonly enabled: ReadonlySet<string>;
  readonly schema: Schema;
  readonly store: Store;
  readonly db: Knex;
  readonly issuer: string | undefined;
  get issuerConfigured(): boolean {
    return this.issuer !== undefined;
  }
  readonly logger: OAuthLogger;
  readonly onError: RuntimeOptions['onError'];
  readonly hooks = new Map<string, Fn[]>();
  readonly routes: { feature: string; def: RouteDef; path: string }[] = [];
  readonly routePaths = new Map<string, string>();
  readonly grantTypes = new Map<string, GrantTypeDef>();
  readonly clientAuthMethods = new Map<string, ClientAuthMethodDef>();
  readonly metadata: [string, MetadataDef][] = [];
  readonly tables = new Set<TableId>();
  private readonly extensionPoints = new Map<string, unknown[]>();
  readonly secretCache: VerifiedSecretCache;
  private readonly appValues: Readonly<Record<string, unknown>>;
  private readonly valueFns: [string, (ctx: OAuthContext) => unknown, ValueType][] = [];
  private readonly methodsProto: Record<string, Fn> = {};
  private readonly superProto: Record<string, Fn> = {};
  /** The auth methods an option overrides. */
  private readonly overriddenMethods = new Set<string>();

  constructor(all: Readonly<Record<string, AnyFeature>>, options: RuntimeOptions) {
    if (typeof options !== 'object' || options === null) throw new OAuthConfigurationError('oauth(): options must be an object.');
    if (!options.db || typeof (options.db as unknown as Fn) !== 'function' || typeof options.db.transaction !== 'function') {
      throw new OAuthConfigurationError("oauth(): option 'db' must be a knex instance.");
    }
    if (options.enable !== undefined && !Array.isArray(options.enable)) throw new OAuthConfigurationError("oauth(): option 'enable' must be an array of feature ids.");
    if (options.issuer !== undefined) {
      const problem = issuerProblem(options.issuer);
      if (problem) throw new OAuthConfigurationError(`oauth(): option 'issuer' ${problem} (RFC 8414 §2); got ${JSON.stringify(options.issuer)}.`);
    } else if (process.env.NODE_ENV === 'production') {
      // design.md §4.12: the issuer never comes from an untrusted header in production.
      throw new OAuthConfigurationError(
        "oauth(): option 'issuer' is required with NODE_ENV=production (e.g. issuer: 'https://auth.example.com'): a derived issuer would come from the request's Host header, which any client sets.",
      );
    }
    this.db = options.db;
    this.issuer = options.issuer;
    this.logger = loggerFor(options.logger, options.oauthLogLevel);
    this.onError = options.onError;
    if (this.issuer === undefined) {
      this.logger.warn(
        "oauth(): no 'issuer' option: the issuer is derived from each request's Host header (development only; responses that depend on it are sent Cache-Control: no-store and Vary: Host). Set 'issuer' in production.",
      );
    }

    this.features = closure(all, ['oauth_base', ...(options.enable ?? [])]);
    this.enabled = new Set(this.features.map((f) => f.id));
    const names = optionNames(this.features);
    const everyName = new Map<string, string>();
    for (const [n, o] of optionNames(Object.values(all))) everyName.set(n, o.feature);
    for (const key of Object.keys(options)) {
      if ((FRAMEWORK_OPTIONS as readonly string[]).includes(key)) continue;
      if (!names.has(key)) throw unknownOption(key, [...names.keys(), ...FRAMEWORK_OPTIONS], everyName);
    }

    // Values: constants are plain properties of one frozen object; functions become getters.
    const values: Record<string, unknown> = {};
    for (const f of this.features) {
      for (const [name, def] of Object.entries(f.values)) {
        const override = options[name];
        if (override === undefined) {
          values[name] = def.default;
          continue;
        }
        checkValueType(name, override, def.type);
        checkMessageValue(name, override);
        if (typeof override === 'function') {
          if (isSchemaValue(name)) throw new OAuthConfigurationError(`oauth(): option '${name}' must be a constant: table and column names are fixed at start-up (migrations and indexes use them).`);
          if (name === 'oauthSecretCacheSize') throw new OAuthConfigurationError(`oauth(): option '${name}' must be a constant: the verified-secret cache is sized at start-up.`);
          this.valueFns.push([name, override as (ctx: OAuthContext) => unknown, def.type]);
        } else values[name] = override;
      }
      for (const r of f.routes) {
        const name = routeValueName(r.name);
        const override = options[name];
        if (override !== undefined && typeof override !== 'string') throw new OAuthConfigurationError(`oauth(): option '${name}' must be a string path segment.`);
        const segment = (override ?? r.path ?? defaultRoutePath(r.name)).replace(/^\/+/, '');
        values[name] = segment;
        const path = `/${segment}`;
        this.routes.push({ feature: f.id, def: r, path });
        this.routePaths.set(r.name, path);
      }
    }
    this.appValues = Object.freeze(values);

    // Methods: the override if given, else the default; `super` always reaches the default.
    for (const f of this.features) {
      for (const [name, def] of Object.entries(f.methods)) {
        const override = options[name];
        if (override !== undefined && typeof override !== 'function') throw new OAuthConfigurationError(`oauth(): option '${name}' overrides an auth method and must be a function.`);
        const dflt = def.impl as Fn;
        const impl = (override as Fn | undefined) ?? dflt;
        if (override !== undefined) this.overriddenMethods.add(name);
        this.methodsProto[name] = function method(this: { [CTX]: OAuthContext }, ...args: unknown[]) {
          return impl(this[CTX], ...args);
        };
        this.superProto[name] = function superMethod(this: { [CTX]: OAuthContext }, ...args: unknown[]) {
          return dflt(this[CTX], ...args);
        };
      }
    }

    // Hooks, in the order of the declared list.
    for (const [name, o] of names) {
      if (o.kind !== 'hook') continue;
      const fn = options[name];
      if (fn === undefined) continue;
      if (typeof fn !== 'function') throw new OAuthConfigurationError(`oauth(): hook '${name}' must be a function.`);
      this.hooks.set(name, [fn as Fn]);
    }
    if (this.onError !== undefined && typeof this.onError !== 'function') throw new OAuthConfigurationError("oauth(): option 'onError' must be a function.");

    // Contributions, in dependency order.
    for (const f of this.features) {
      for (const [k, g] of Object.entries(f.grantTypes)) this.grantTypes.set(k, g);
      for (const [k, m] of Object.entries(f.clientAuthMethods)) this.clientAuthMethods.set(k, m);
      for (const [k, m] of Object.entries(f.metadata)) this.metadata.push([k, m]);
      for (const t of f.tables ?? []) this.tables.add(t);
      for (const [point, contribution] of Object.entries(f.extend)) {
        const list = this.extensionPoints.get(point) ?? [];
        list.push(contribution);
        this.extensionPoints.set(point, list);
      }
    }
    for (const f of this.features) f.validate?.(this.appValues, { issuer: this.issuer, logger: this.logger });

    this.schema = resolveSchema(this.appValues);
    this.store = new Store(this.db, this.schema, undefined, { sqliteLockTimeout: options.oauthSqliteLockTimeout ?? this.appValues.oauthSqliteLockTimeout });
    this.secretCache = new VerifiedSecretCache(Number(this.appValues.oauthSecretCacheSize ?? 0));
  }

  /** The values object of a context: shared when nothing is a function of the request. */
  valuesFor(ctx: OAuthContext): any {
    if (this.valueFns.length === 0) return this.appValues;
    const o = Object.create(this.appValues);
    for (const [name, fn, type] of this.valueFns) {
      // What the function returns is checked like a constant: a wrong type is a server error, not a wrong response.
      Object.defineProperty(o, name, {
        get: () => {
          const v = fn(ctx);
          checkValueType(name, v, type);
          return v;
        },
        enumerable: true,
      });
    }
    return o;
  }

  /** The methods object of a context, its functions reaching the context through the prototype. */
  bindMethods(ctx: OAuthContext, useDefaults: boolean): any {
    const o = Object.create(useDefaults ? this.superProto : this.methodsProto);
    o[CTX] = ctx;
    return o;
  }

  /** Whether an option overrides the auth method `name` (else its feature's default runs). */
  overridden(name: string): boolean {
    return this.overriddenMethods.has(name);
  }

  /** What the enabled features contribute to an extension point, in dependency order. */
  extensions<T = unknown>(point: string): readonly T[] {
    return (this.extensionPoints.get(point) ?? []) as T[];
  }

  /** The value as configured, outside any request (constants only). */
  constant<T>(name: string): T {
    return this.appValues[name] as T;
  }
}

/** The enabled features and their dependencies, dependencies first (rodauth's `depends`). */
function closure(all: Readonly<Record<string, AnyFeature>>, ids: readonly unknown[]): AnyFeature[] {
  const out: AnyFeature[] = [];
  const seen = new Set<string>();
  const visit = (f: AnyFeature) => {
    if (seen.has(f.id)) return;
    seen.add(f.id);
    for (const d of f.depends) visit(d);
    out.push(f);
  };
  for (const id of ids) {
    if (typeof id !== 'string' || !Object.prototype.hasOwnProperty.call(all, id)) throw unknownFeature(id, Object.keys(all));
    visit(all[id]!);
  }
  return out;
}
