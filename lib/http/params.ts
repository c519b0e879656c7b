/**
 * Request parameters as RFC 6749 wants them (§3.1, §3.2): each at most once, each a string,
 * empty ones treated as absent. Form and JSON bodies are read; the host app is untouched.
 *
 * The one exception: a parameter a feature declares multi-valued through the
 * `multiValuedParameters` extension point (RFC 8707 §2: `resource` "MAY be used multiple
 * times") may be repeated in a form or query, or be a JSON array of strings. `params[name]`
 * is then its first value and {@link paramValues} gives them all; every other parameter is
 * still refused when repeated.
 */
import express, { type Request, type Response, type NextFunction, type RequestHandler } from 'express';
import { OAuthError } from '../errors';
import type { OAuthParams } from '../context';

/** Body size limit for OAuth endpoints. */
export const BODY_LIMIT = '64kb';
/** No single parameter may be longer than this (a JWT assertion fits; a flood does not). */
export const MAX_PARAM_LENGTH = 16 * 1024;

const FORM = 'application/x-www-form-urlencoded';

const textParser = express.text({ type: FORM, limit: BODY_LIMIT, defaultCharset: 'utf-8' });
const JSON_TYPES = ['application/json', 'application/*+json'];
// Read as text and parsed here: JSON.parse keeps the last of repeated keys, which must be refused.
const jsonParser = express.text({ type: JSON_TYPES, limit: BODY_LIMIT, defaultCharset: 'utf-8' });

declare module 'express-serve-static-core' {
  interface Request {
    /** The parsed OAuth parameters, set by the OAuth router on its own routes only. */
    oauthParams?: OAuthParams;
  }
}

/** The names of no multi-valued parameter. */
const SINGLE: ReadonlySet<string> = new Set();

/** Every value of a multi-valued parameter, by the params object it belongs to. */
const multiValues = new WeakMap<OAuthParams, Readonly<Record<string, readonly string[]>>>();

/** All values of a parameter, in request order: several only for a declared multi-valued one; `[]` when absent. */
export function paramValues(params: OAuthParams, name: string): readonly string[] {
  const values = multiValues.get(params)?.[name];
  if (values) return values;
  const v = params[name];
  return v === undefined ? [] : [v];
}

/**
 * Parses the body into `req.oauthParams`; body-parser failures become `invalid_request`.
 * `multi`: the parameters that may be repeated (see the module comment).
 */
export function parseBody(req: Request, res: Response, next: NextFunction, multi: ReadonlySet<string> = SINGLE): void {
  const type = req.headers['content-type'];
  const hasBody = req.headers['transfer-encoding'] !== undefined || (req.headers['content-length'] !== undefined && req.headers['content-length'] !== '0');
  if (!hasBody) {
    req.oauthParams = collect([], multi);
    return next();
  }
  if (!type) return next(new OAuthError('invalid_request', 'The request body must be application/x-www-form-urlencoded or application/json', { reason: 'malformed_body' }));
  const parser: RequestHandler = req.is(FORM) ? textParser : req.is(JSON_TYPES) ? jsonParser : unsupported;
  parser(req, res, (err?: unknown) => {
    if (err) return next(bodyError(err));
    try {
      const body: unknown = req.body;
      if (typeof body === 'string') req.oauthParams = req.is(FORM) ? fromForm(body, multi) : fromJsonText(body, multi);
      // A body parser of the host app (express.urlencoded(), express.json()) already read the stream.
      else req.oauthParams = body === undefined ? collect([], multi) : fromJson(body, multi);
      next();
    } catch (e) {
      next(e);
    }
  });
}

const unsupported: RequestHandler = (_req, _res, next) =>
  next(new OAuthError('invalid_request', 'The request body must be application/x-www-form-urlencoded or application/json', { reason: 'malformed_body' }));

function bodyError(err: unknown): OAuthError {
  if (err instanceof OAuthError) return err;
  const status = (err as { status?: number }).status;
  const description = status === 413 ? 'The request body is too large' : 'The request body could not be parsed';
  return new OAuthError('invalid_request', description, { reason: 'malformed_body', cause: err });
}

/** Reads the query string of a GET route, with the same rules as a body. */
export function parseQuery(req: Request, multi: ReadonlySet<string> = SINGLE): OAuthParams {
  const url = req.originalUrl ?? req.url;
  const i = url.indexOf('?');
  return fromForm(i === -1 ? '' : url.slice(i + 1), multi);
}

function fromForm(body: string, multi: ReadonlySet<string>): OAuthParams {
  return collect(new URLSearchParams(body).entries(), multi);
}

function fromJsonText(text: string, multi: ReadonlySet<string>): OAuthParams {
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    // No cause: V8's SyntaxError quotes the start of the body, which may be a credential.
    throw new OAuthError('invalid_request', 'The request body could not be parsed', { reason: 'malformed_body' });
  }
  const params = fromJson(body, multi);
  // A multi-valued parameter is a JSON array; a repeated key stays refused for it too.
  const repeated = repeatedJsonKey(text);
  if (repeated !== undefined) throw duplicate(repeated);
  return params;
}

/** A JSON string. */
const JSON_STRING = '"(?:[^"\\\\]|\\\\.)*"';
/**
 * One member of a flat object whose values are strings, null or arrays of strings (all
 * `fromJson` lets through): the key, then `,` or `}`.
 */
const JSON_MEMBER = new RegExp(`\\s*(${JSON_STRING})\\s*:\\s*(?:${JSON_STRING}|null|\\[\\s*(?:${JSON_STRING}\\s*(?:,\\s*${JSON_STRING}\\s*)*)?\\])\\s*([,}])`, 'y');

/**
 * RFC 6749 §3.2: the first key of a JSON object that appears twice (JSON.parse keeps only the
 * last). Every member is read to the closing `}`; a member of any other shape (which `fromJson`
 * refused already) is a malformed body, never a reason to stop looking.
 */
function repeatedJsonKey(text: string): string | undefined {
  const seen = new Set<string>();
  const open = text.indexOf('{') + 1;
  if (/^\s*\}/.test(text.slice(open))) return undefined; // {}
  JSON_MEMBER.lastIndex = open;
  for (let m = JSON_MEMBER.exec(text); m; m = JSON_MEMBER.exec(text)) {
    const key = JSON.parse(m[1]!) as string;
    if (seen.has(key)) return key;
    seen.add(key);
    if (m[2] === '}') return undefined;
  }
  throw new OAuthError('invalid_request', 'The request body could not be parsed', { reason: 'malformed_body' });
}

function fromJson(body: unknown, multi: ReadonlySet<string>): OAuthParams {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    throw new OAuthError('invalid_request', 'The JSON body must be an object', { reason: 'malformed_body' });
  }
  const entries: [string, string][] = [];
  for (const [k, v] of Object.entries(body as Record<string, unknown>)) {
    if (v === null || v === undefined) continue;
    if (Array.isArray(v) && multi.has(k)) {
      for (const item of v) {
        if (typeof item !== 'string') throw new OAuthError('invalid_request', `Parameter '${safeName(k)}' must be a string or an array of strings`, { reason: 'malformed_parameter' });
        entries.push([k, item]);
      }
      continue;
    }
    if (Array.isArray(v)) throw duplicate(k);
    if (typeof v !== 'string') throw new OAuthError('invalid_request', `Parameter '${safeName(k)}' must be a string`, { reason: 'malformed_parameter' });
    entries.push([k, v]);
  }
  return collect(entries, multi);
}

/** A multi-valued parameter may be sent this many times at most (a flood of them is refused). */
const MAX_VALUES = 20;

function collect(entries: Iterable<[string, string]>, multi: ReadonlySet<string>): OAuthParams {
  const out: Record<string, string> = Object.create(null);
  const seen = new Set<string>();
  let lists: Record<string, string[]> | undefined;
  for (const [k, v] of entries) {
    const repeatable = multi.has(k);
    if (seen.has(k) && !repeatable) throw duplicate(k);
    seen.add(k);
    if (v.length > MAX_PARAM_LENGTH) throw new OAuthError('invalid_request', `Parameter '${safeName(k)}' is too long`, { reason: 'malformed_parameter' });
    if (v.includes('\0')) throw new OAuthError('invalid_request', `Parameter '${safeName(k)}' is malformed`, { reason: 'malformed_parameter' });
    // RFC 6749 §3.1: parameters sent without a value are treated as omitted.
    if (v === '') continue;
    if (repeatable) {
      const list = ((lists ??= Object.create(null) as Record<string, string[]>)[k] ??= []);
      if (list.length === MAX_VALUES) throw new OAuthError('invalid_request', `Parameter '${safeName(k)}' is repeated too often`, { reason: 'malformed_parameter' });
      list.push(v);
    }
    out[k] ??= v;
  }
  const params = Object.freeze(out);
  if (lists) multiValues.set(params, Object.freeze(lists));
  return params;
}

function duplicate(name: string): OAuthError {
  return new OAuthError('invalid_request', `Parameter '${safeName(name)}' must not be repeated`, { reason: 'duplicate_parameter' });
}

/** A parameter name as it may appear in an error description: short, printable ASCII. */
function safeName(name: string): string {
  const clean = name.replace(/[^\x20-\x7e]/g, '?').replace(/['"\\]/g, '?');
  return clean.length > 40 ? `${clean.slice(0, 40)}…` : clean;
}

/** The value of a required parameter, or `invalid_request`. */
export function requireParam(params: OAuthParams, name: string): string {
  const v = params[name];
  if (v === undefined) throw new OAuthError('invalid_request', `Missing parameter '${name}'`, { reason: 'missing_parameter' });
  return v;
}
