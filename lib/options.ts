/**
 * Start-up validation of `oauth()` options (style.md §7.3): unknown features and options
 * (with a "did you mean"), wrong types, unknown hooks. Everything throws before the first request.
 */
import { DESCRIPTION_CHARS } from './errors';
import type { AnyFeature, ValueType } from './feature';

/** Options that are not values, methods or hooks of a feature. */
export const FRAMEWORK_OPTIONS = ['db', 'enable', 'issuer', 'logger', 'onError'] as const;

export class OAuthConfigurationError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'OAuthConfigurationError';
  }
}

/** Levenshtein distance, for "did you mean" hints. */
function distance(a: string, b: string): number {
  const prev = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    let diag = prev[0]!;
    prev[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const tmp = prev[j]!;
      prev[j] = Math.min(prev[j]! + 1, prev[j - 1]! + 1, diag + (a[i - 1]!.toLowerCase() === b[j - 1]!.toLowerCase() ? 0 : 1));
      diag = tmp;
    }
  }
  return prev[b.length]!;
}

/** The closest candidate within a third of the name's length, as a hint. */
export function didYouMean(name: string, candidates: Iterable<string>): string {
  let best: string | undefined;
  let bestDistance = Infinity;
  for (const c of candidates) {
    const d = distance(name, c);
    if (d < bestDistance) {
      best = c;
      bestDistance = d;
    }
  }
  return best !== undefined && bestDistance <= Math.max(2, Math.ceil(name.length / 3)) ? ` Did you mean '${best}'?` : '';
}

export function checkValueType(name: string, v: unknown, type: ValueType): void {
  if (typeof v === 'function') return; // a function of the request context, checked when called
  const ok = (() => {
    switch (type) {
      case 'array':
        return Array.isArray(v);
      case 'object':
        return typeof v === 'object' && v !== null && !Array.isArray(v);
      case 'nullable-string':
        return v === null || typeof v === 'string';
      case 'nullable-number':
        return v === null || (typeof v === 'number' && Number.isFinite(v));
      case 'nullable-array':
        return v === null || Array.isArray(v);
      case 'nullable-object':
        return v === null || (typeof v === 'object' && !Array.isArray(v));
      case 'number':
        return typeof v === 'number' && Number.isFinite(v);
      default:
        return typeof v === type;
    }
  })();
  if (!ok) {
    const got = v === null ? 'null' : Array.isArray(v) ? 'array' : typeof v;
    throw new OAuthConfigurationError(`oauth(): option '${name}' must be ${describeType(type)} (or a function of the request context), got ${got}.`);
  }
}

/**
 * RFC 6749 §5.2: a message becomes an `error_description`, limited to printable ASCII without
 * `"` and `\`. A constant outside that set is refused here, naming the option; a message made
 * at request time (a function, a hook's OAuthError) is transliterated by the renderers instead.
 */
export function checkMessageValue(name: string, v: unknown): void {
  if (!name.endsWith('Message') || typeof v !== 'string' || DESCRIPTION_CHARS.test(v)) return;
  const bad = [...v].find((c) => !DESCRIPTION_CHARS.test(c))!;
  const shown = /^[\x20-\x7e]$/.test(bad) ? `'${bad}'` : `U+${bad.codePointAt(0)!.toString(16).toUpperCase().padStart(4, '0')}`;
  throw new OAuthConfigurationError(
    `oauth(): option '${name}' becomes an error_description, which must be printable ASCII without '"' and '\\' (RFC 6749 §5.2); it contains ${shown}.`,
  );
}

function describeType(t: ValueType): string {
  const base = t.startsWith('nullable-') ? t.slice(9) : t;
  const article = base === 'array' || base === 'object' ? 'an' : 'a';
  return t.startsWith('nullable-') ? `${article} ${base} or null` : `${article} ${base}`;
}

export function unknownFeature(id: unknown, known: Iterable<string>): OAuthConfigurationError {
  return new OAuthConfigurationError(`oauth(): unknown feature '${String(id)}'.${didYouMean(String(id), known)}`);
}

export function unknownOption(name: string, known: Iterable<string>, allKnown: Map<string, string>): OAuthConfigurationError {
  const owner = allKnown.get(name);
  if (owner) return new OAuthConfigurationError(`oauth(): option '${name}' belongs to feature '${owner}', which is not enabled.`);
  return new OAuthConfigurationError(`oauth(): unknown option '${name}'.${didYouMean(name, known)}`);
}

/** Collects every option name a set of features accepts, by kind, and rejects collisions. */
export function optionNames(features: readonly AnyFeature[]): Map<string, { kind: 'value' | 'method' | 'hook' | 'route'; feature: string }> {
  const out = new Map<string, { kind: 'value' | 'method' | 'hook' | 'route'; feature: string }>();
  const add = (name: string, kind: 'value' | 'method' | 'hook' | 'route', feature: string) => {
    if ((FRAMEWORK_OPTIONS as readonly string[]).includes(name)) throw new OAuthConfigurationError(`oauth(): feature '${feature}' declares '${name}', an option of oauth() itself.`);
    const prev = out.get(name);
    if (prev && prev.feature !== feature) {
      throw new OAuthConfigurationError(`oauth(): feature '${feature}' declares '${name}', already declared by '${prev.feature}'.`);
    }
    out.set(name, { kind, feature });
  };
  for (const f of features) {
    for (const k of Object.keys(f.values)) add(k, 'value', f.id);
    for (const k of Object.keys(f.methods)) add(k, 'method', f.id);
    for (const k of f.hooks) add(k, 'hook', f.id);
    for (const r of f.routes) {
      add(routeValueName(r.name), 'route', f.id);
      add(routeHookName(r.name), 'hook', f.id);
    }
  }
  return out;
}

function camel(name: string): string {
  return name.replace(/_([a-z])/g, (_, c: string) => c.toUpperCase());
}

/** Route `device_authorization` → value `deviceAuthorizationRoute`. */
export function routeValueName(route: string): string {
  return `${camel(route)}Route`;
}

/** Route `device_authorization` → hook `beforeDeviceAuthorizationRoute`. */
export function routeHookName(route: string): string {
  const c = camel(route);
  return `before${c.charAt(0).toUpperCase()}${c.slice(1)}Route`;
}

/** Route `device_authorization` → default path `device-authorization` (rodauth). */
export function defaultRoutePath(route: string): string {
  return route.replace(/_/g, '-');
}
