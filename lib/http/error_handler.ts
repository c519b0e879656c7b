/**
 * One renderer per response channel (style.md §7.7): JSON for the token, revocation and
 * introspection endpoints, Bearer for protected resources. Everything not an OAuthError
 * becomes a generic `server_error`; the internal reason goes to the logger and `onError` only.
 */
import type { Response } from 'express';
import { OAuthError, toOAuthError } from '../errors';
import { setNoCache } from './no_cache';
import { challenge } from './www_authenticate';

/** RFC 6749 §5.2 JSON error. A failed client authentication gets 401 and a Basic challenge. */
export function renderJsonError(res: Response, err: OAuthError, realm: string): void {
  if (res.headersSent) return;
  setNoCache(res);
  if (err.status === 401) res.setHeader('WWW-Authenticate', challenge(err.challenge ?? 'Basic', { realm }));
  res.status(err.status).json(err.toJSON());
}

/** RFC 6750 §3 error for a protected resource. */
export function renderBearerError(res: Response, err: OAuthError, realm: string): void {
  if (res.headersSent) return;
  const params: Record<string, string | undefined> = { realm };
  // RFC 6750 §3.1: a request without any credentials gets a challenge without an error code.
  if (err.reason !== 'missing_token') {
    params.error = err.code;
    params.error_description = err.description;
  }
  if (err.code === 'insufficient_scope') params.scope = err.scope;
  res.setHeader('WWW-Authenticate', challenge('Bearer', params));
  res.status(err.status).json(err.toJSON());
}

export { toOAuthError };
