/**
 * One renderer per response channel (style.md §7.7): JSON for the token, revocation and
 * introspection endpoints, Bearer for protected resources. Everything not an OAuthError
 * becomes a generic `server_error`; the internal reason goes to the logger and `onError` only.
 */
import type { Response } from 'express';
import { DEFAULT_RETRY_AFTER, OAuthError, asciiDescription, toOAuthError } from '../errors';
import { setNoCache } from './no_cache';
import { challenge } from './www_authenticate';

/**
 * RFC 9110 §10.2.3: an error that says when to try again carries `Retry-After` (seconds): its
 * own `retryAfter`, else, on a 503, a header already set while failing or the default.
 */
export function setRetryAfter(res: Response, err: OAuthError): void {
  if (res.headersSent) return;
  if (err.retryAfter !== undefined) res.setHeader('Retry-After', String(Math.max(0, Math.ceil(err.retryAfter))));
  else if (err.status === 503 && res.getHeader('Retry-After') === undefined) res.setHeader('Retry-After', String(DEFAULT_RETRY_AFTER));
}

/** RFC 6749 §5.2 JSON error. A failed client authentication gets 401 and a Basic challenge. */
export function renderJsonError(res: Response, err: OAuthError, realm: string): void {
  if (res.headersSent) return;
  setNoCache(res);
  setRetryAfter(res, err);
  if (err.status === 401) res.setHeader('WWW-Authenticate', challenge(err.challenge ?? 'Basic', { realm }));
  res.status(err.status).json(err.toJSON());
}

/**
 * RFC 6750 §3 error for a protected resource. A server-side failure (5xx) says nothing about
 * the token, so it gets no challenge: only the JSON body and, for a 503, `Retry-After`.
 * `extra` (protectedResource): RFC 9728 §5.1 `resource_metadata`, and the `scope` to ask for
 * when the error is not insufficient_scope (which names the scope it required).
 */
export function renderBearerError(res: Response, err: OAuthError, realm: string, extra: { resource_metadata?: string; scope?: string } = {}): void {
  if (res.headersSent) return;
  setNoCache(res);
  setRetryAfter(res, err);
  if (err.status < 500) {
    const params: Record<string, string | undefined> = { realm };
    // RFC 6750 §3.1: a request without any credentials gets a challenge without an error code.
    if (err.reason !== 'missing_token') {
      params.error = err.code;
      params.error_description = err.description === undefined ? undefined : asciiDescription(err.description);
    }
    params.resource_metadata = extra.resource_metadata;
    params.scope = err.code === 'insufficient_scope' ? err.scope : extra.scope;
    res.setHeader('WWW-Authenticate', challenge('Bearer', params));
  }
  res.status(err.status).json(err.toJSON());
}

export { toOAuthError };
