/** Logging with secrets removed (design.md §4.11): tokens and secrets never reach a log line. */
import type { OAuthError } from './errors';

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

/** Default: server errors to `console.error`, start-up warnings to `console.warn`, client errors not logged (they are the client's). */
export const defaultLogger: OAuthLogger = {
  // One string per call: a collector that splits on newlines sees one record per error.
  error: (message, meta) => console.error(formatLine(message, meta)),
  // Configuration warnings (a derived issuer, say): once at start-up, on one line.
  warn: (message) => console.warn(`[express-oauth-features] ${message}`),
  info: () => undefined,
};

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

/** The log entry of an error, on one line: code, reason, status, path and what caused it, with the request's secrets removed. */
export function errorMeta(err: OAuthError, path: string, secrets: readonly string[]): Record<string, unknown> {
  const meta: Record<string, unknown> = { code: err.code, reason: err.reason, description: err.description, status: err.status, path };
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
