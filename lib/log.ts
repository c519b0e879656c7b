/** Logging with secrets removed (design.md §4.11): tokens and secrets never reach a log line. */
import type { OAuthError } from './errors';

export interface OAuthLogger {
  error(message: string, meta?: Record<string, unknown>): void;
  warn(message: string, meta?: Record<string, unknown>): void;
  info(message: string, meta?: Record<string, unknown>): void;
}

/** Default: server errors to `console.error`, client errors not logged (they are the client's). */
export const defaultLogger: OAuthLogger = {
  error: (message, meta) => console.error(`[express-oauth-features] ${message}`, meta ?? ''),
  warn: () => undefined,
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

/** The log entry of an error: code, reason and cause, with the request's secrets removed. */
export function errorMeta(err: OAuthError, path: string, secrets: readonly string[]): Record<string, unknown> {
  const cause = err.cause as { name?: string; message?: string; stack?: string; code?: unknown } | undefined;
  const meta: Record<string, unknown> = { code: err.code, reason: err.reason, description: err.description, status: err.status, path };
  if (cause) {
    meta.cause = {
      name: cause.name,
      code: cause.code,
      message: cause.message === undefined ? undefined : redact(String(cause.message), secrets),
      stack: cause.stack === undefined ? undefined : redact(String(cause.stack), secrets),
    };
  }
  return meta;
}
