/** Logging with secrets removed (design.md §4.11): tokens and secrets never reach a log line. */
import { decodeJwt } from 'jose';
import type { OAuthError } from './errors';
import { OAuthConfigurationError } from './options';

export interface OAuthLogger {
  error(message: string, meta?: Record<string, unknown>): void;
  warn(message: string, meta?: Record<string, unknown>): void;
  info(message: string, meta?: Record<string, unknown>): void;
}

/** One log line: the message, then the metadata as compact JSON (newlines escaped), so one error is one line. */
export function formatLine(message: string, meta?: Record<string, unknown>): string {
  const head = `[express-oauth-features] ${message.replace(/[\r\n]+/g, ' ')}`;
  if (meta === undefined) return head;
  try {
    return `${head} ${JSON.stringify(meta)}`;
  } catch {
    return head; // a cyclic or BigInt value in a host's meta: the message still gets out
  }
}

/**
 * The levels of `oauthLogLevel`, quietest first. What each carries:
 * - `error`: server errors (500, 503), repeats rate-limited with a count;
 * - `warn`: configuration warnings, once at start-up (a derived issuer, say);
 * - `info`: every refused request, one line each, with its reason and client id (`invalid_client`
 *   stays one message on the wire; the log says why).
 */
export const LOG_LEVELS = ['error', 'warn', 'info'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

/** The default level: errors and start-up warnings. A flood of refused requests writes nothing. */
export const DEFAULT_LOG_LEVEL: LogLevel = 'warn';

/**
 * The console logger at a level: server errors to `console.error`, warnings to `console.warn`,
 * refused requests to `console.info`, each one string on one line (a collector that splits on
 * newlines sees one record per entry). Levels above `level` are dropped.
 */
export function consoleLogger(level: LogLevel = DEFAULT_LOG_LEVEL): OAuthLogger {
  const on = (l: LogLevel) => LOG_LEVELS.indexOf(l) <= LOG_LEVELS.indexOf(level);
  const off = () => undefined;
  return {
    error: on('error') ? (message, meta) => console.error(formatLine(message, meta)) : off,
    warn: on('warn') ? (message, meta) => console.warn(formatLine(message, meta)) : off,
    info: on('info') ? (message, meta) => console.info(formatLine(message, meta)) : off,
  };
}

/** The default logger: {@link consoleLogger} at {@link DEFAULT_LOG_LEVEL}. */
export const defaultLogger: OAuthLogger = consoleLogger();

/**
 * The logger of an instance: the host's (whose own levels decide what it keeps; it gets every
 * line), else the console logger at `oauthLogLevel`. The level is checked either way, and must be
 * a constant: the logger is built once, before the first request.
 */
export function loggerFor(logger: OAuthLogger | undefined, level: unknown): OAuthLogger {
  if (level !== undefined && !(LOG_LEVELS as readonly unknown[]).includes(level)) {
    const got = typeof level === 'function' ? 'a function' : JSON.stringify(level);
    throw new OAuthConfigurationError(`oauth(): option 'oauthLogLevel' must be one of ${LOG_LEVELS.map((l) => `'${l}'`).join(', ')} (a constant); got ${got}.`);
  }
  return logger ?? (level === undefined ? defaultLogger : consoleLogger(level as LogLevel));
}

/** Parameters whose values are credentials. */
export const SECRET_PARAMS = ['token', 'access_token', 'refresh_token', 'code', 'code_verifier', 'client_secret', 'assertion', 'client_assertion', 'password'];

/** Replaces every occurrence of each secret in a string. */
export function redact(text: string, secrets: readonly string[]): string {
  let out = text;
  for (const s of secrets) if (s.length >= 4) out = out.split(s).join('[REDACTED]');
  return out;
}

/** The secrets a request carries: credential parameters and the Authorization header's parts. */
export function requestSecrets(params: Readonly<Record<string, string>>, authorization: string | undefined): string[] {
  const out: string[] = [];
  for (const p of SECRET_PARAMS) {
    const v = params[p];
    if (v) out.push(v);
  }
  if (authorization) {
    const i = authorization.indexOf(' ');
    const cred = i === -1 ? authorization : authorization.slice(i + 1).trim();
    if (cred) {
      out.push(cred);
      const decoded = Buffer.from(cred, 'base64').toString('utf8');
      const colon = decoded.indexOf(':');
      if (colon !== -1) {
        out.push(decoded.slice(colon + 1));
        try {
          out.push(decodeURIComponent(decoded.slice(colon + 1).replace(/\+/g, ' ')));
        } catch {
          /* not form-encoded */
        }
      }
    }
  }
  return out;
}

/** The longest client id written to a log line, in characters; a longer one is cut and ends in `…`. */
export const MAX_LOGGED_CLIENT_ID = 128;

/**
 * A client id as a log line may carry it: whatever the client sent, without control or
 * invisible format characters (no forged line breaks, no terminal escapes, no bidi tricks),
 * at most {@link MAX_LOGGED_CLIENT_ID} characters, and with the request's secrets redacted
 * (a client that put its secret in the id field). Undefined when nothing is left.
 */
export function loggableClientId(value: unknown, secrets: readonly string[] = []): string | undefined {
  if (typeof value !== 'string') return undefined;
  const chars = Array.from(redact(value, secrets).replace(/[\p{Cc}\p{Cf}\u2028\u2029]/gu, ''));
  if (chars.length === 0) return undefined;
  return chars.length > MAX_LOGGED_CLIENT_ID ? `${chars.slice(0, MAX_LOGGED_CLIENT_ID - 1).join('')}…` : chars.join('');
}

/** What a request needs for {@link presentedClientId}: its parameters and Authorization header. */
export interface ClientIdSource {
  params: Readonly<Record<string, string>>;
  authorization: string | undefined;
  /** The client that authenticated, if one did. */
  authenticated?: string;
}

/**
 * The client id a request names, for the log: the authenticated client's, else the one it
 * presented, read as each client-authentication method reads it: the user part of a Basic
 * header (form-decoded, RFC 6749 §2.3.1), the `sub` (else `iss`) of a `client_assertion`
 * (RFC 7523 §3; read, not trusted), else the `client_id` parameter. Never the secret.
 */
export function presentedClientId(src: ClientIdSource): string | undefined {
  if (src.authenticated !== undefined) return src.authenticated;
  const auth = src.authorization;
  if (auth !== undefined && /^basic /i.test(auth)) {
    const decoded = Buffer.from(auth.slice(6).trim(), 'base64').toString('utf8');
    const colon = decoded.indexOf(':');
    const user = colon === -1 ? decoded : decoded.slice(0, colon);
    try {
      return decodeURIComponent(user.replace(/\+/g, ' '));
    } catch {
      return user;
    }
  }
  const assertion = src.params.client_assertion;
  if (assertion !== undefined) {
    try {
      const claims = decodeJwt(assertion);
      const id = typeof claims.sub === 'string' ? claims.sub : claims.iss;
      if (typeof id === 'string') return id;
    } catch {
      /* not a JWT: fall back to client_id */
    }
  }
  return src.params.client_id;
}

/**
 * The log entry of an error, on one line: code, reason, the client id (when known), status,
 * path and what caused it, with the request's secrets removed.
 */
export function errorMeta(err: OAuthError, path: string, secrets: readonly string[], clientId?: string): Record<string, unknown> {
  const meta: Record<string, unknown> = { code: err.code, reason: err.reason };
  const id = loggableClientId(clientId, secrets);
  if (id !== undefined) meta.client_id = id;
  Object.assign(meta, { description: err.description, status: err.status, path });
  if (err.cause !== undefined) meta.cause = causeMeta(err.cause, secrets);
  return meta;
}

/**
 * The cause's name, code, message and where it was thrown (the first stack frame only). A
 * database error's message is reduced to the driver's own words: knex prefixes it with the SQL
 * and its bindings substituted (token hashes, client ids), and pg's `detail`, `where` and the
 * like repeat values, so none of those are read.
 */
export function causeMeta(cause: unknown, secrets: readonly string[]): Record<string, unknown> {
  if (typeof cause !== 'object' || cause === null) return { message: redact(String(cause), secrets) };
  const c = cause as { name?: unknown; message?: unknown; stack?: unknown; code?: unknown };
  const out: Record<string, unknown> = { name: typeof c.name === 'string' ? c.name : undefined };
  if (typeof c.code === 'string' || typeof c.code === 'number') out.code = c.code;
  if (c.message !== undefined) {
    const message = databaseMessage(cause, String(c.message));
    if (message) out.message = redact(message, secrets).replace(/\s+/g, ' ').slice(0, 300);
  }
  if (typeof c.stack === 'string') {
    const frame = /^\s+at (.+)$/m.exec(c.stack);
    if (frame) out.at = redact(frame[1]!, secrets);
  }
  return out;
}

/** SQL verbs a knex-prefixed message starts with. */
const SQL_START = /^\s*(?:select|insert|update|delete|with|begin|commit|rollback|savepoint|release|pragma|create|alter|drop|set|truncate|lock)\b/i;

function isDatabaseError(cause: object): boolean {
  const c = cause as { name?: unknown; code?: unknown; severity?: unknown; routine?: unknown };
  if (typeof c.code === 'string' && c.code.startsWith('SQLITE_')) return true;
  if (c.name === 'SqliteError' || c.name === 'DatabaseError') return true;
  return typeof c.severity === 'string' || typeof c.routine === 'string'; // pg's fields
}

/**
 * The message to log: unchanged for other errors; for a database error (or any message that
 * starts with SQL, such as pg's "Connection terminated" that knex prefixed), only what follows
 * knex's " - " separator. Taking the text after the last separator is safe whatever the
 * bindings hold: it is always a suffix of the driver's message. No separator after SQL: nothing.
 */
function databaseMessage(cause: object, message: string): string | undefined {
  const startsWithSql = SQL_START.test(message);
  if (!startsWithSql && !isDatabaseError(cause)) return message;
  const i = message.lastIndexOf(' - ');
  if (i !== -1) return message.slice(i + 3);
  return startsWithSql ? undefined : message;
}

/** How often the same server error is logged at most (ms); repeats in between are counted. */
export const REPEAT_INTERVAL_MS = 10_000;

/**
 * Rate-limits repeats of the same error: the first is logged, then at most one per interval,
 * carrying the number of repeats left out since the last logged one. An outage that fails
 * every request then writes a few lines, not one per request. Keys are bounded in number
 * (oldest dropped), so varied causes cannot grow it without end.
 */
export class RepeatLimiter {
  private readonly seen = new Map<string, { last: number; suppressed: number }>();

  constructor(
    private readonly intervalMs = REPEAT_INTERVAL_MS,
    private readonly maxKeys = 500,
  ) {}

  /** Whether to log this occurrence, and how many were left out since the last logged one (at `since`). */
  admit(key: string, now: number): { log: false } | { log: true; suppressed: number; since: number } {
    const s = this.seen.get(key);
    if (s && now - s.last < this.intervalMs && now >= s.last) {
      s.suppressed++;
      return { log: false };
    }
    this.seen.delete(key); // re-inserted last: the Map stays in least-recently-logged order
    this.seen.set(key, { last: now, suppressed: 0 });
    if (this.seen.size > this.maxKeys) this.seen.delete(this.seen.keys().next().value!);
    return s ? { log: true, suppressed: s.suppressed, since: s.last } : { log: true, suppressed: 0, since: now };
  }
}

/** What makes two errors "the same" for rate-limiting: code, reason, and the cause's name, code and location. */
export function repeatKey(err: OAuthError, meta: Record<string, unknown>): string {
  const cause = (meta.cause ?? {}) as { name?: unknown; code?: unknown; at?: unknown };
  return JSON.stringify([err.code, err.reason, cause.name, cause.code, cause.at]);
}
