/**
 * CSRF protection of form posts (the consent page). The token is bound to the host's session
 * when there is one (`req.session`, as express-session provides), else to a cookie: the cookie
 * holds a random nonce and the form carries HMAC-SHA-256(key, nonce ‖ binding), so a forged
 * form cannot guess it and a token minted for one account does not verify for another.
 */
import { createHmac, randomBytes } from 'node:crypto';
import type { Request, Response } from 'express';
import { constantTimeEqual, randomToken } from './crypto';

export interface CsrfOptions {
  /** HMAC key of the cookie mode; null: a random key per process (tokens die with the process). */
  secret: string | null;
  cookieName: string;
  /** The cookie's path: the form's endpoint. */
  cookiePath: string;
  /** What the token is bound to besides the session or cookie (the account id). */
  binding: string;
  /**
   * Whether the issuer is https: the cookie is then `Secure` even when this hop is plain http
   * (TLS ended at a proxy that Express does not trust), since the browser only ever sees https.
   */
  httpsIssuer: boolean;
}

const PROCESS_KEY = randomBytes(32);
const SESSION_KEY = 'oauthCsrfToken';
const NONCE = /^[A-Za-z0-9_-]{43}$/;

type SessionLike = Record<string, unknown>;

function sessionOf(req: Request): SessionLike | undefined {
  const s = (req as Request & { session?: unknown }).session;
  return typeof s === 'object' && s !== null ? (s as unknown as SessionLike) : undefined;
}

/** One cookie of the request, without a cookie parser: our nonces are base64url, never encoded. */
function readCookie(req: Request, name: string): string | undefined {
  const header = req.headers.cookie;
  if (!header) return undefined;
  for (const part of header.split(';')) {
    const i = part.indexOf('=');
    if (i !== -1 && part.slice(0, i).trim() === name) return part.slice(i + 1).trim();
  }
  return undefined;
}

function mac(opts: CsrfOptions, nonce: string): string {
  return createHmac('sha256', opts.secret ?? PROCESS_KEY).update(`${nonce}\0${opts.binding}`, 'utf8').digest('base64url');
}

/** The token to put in the form; starts the session entry or sets the cookie when needed. */
export function issueCsrfToken(req: Request, res: Response, opts: CsrfOptions): string {
  const session = sessionOf(req);
  if (session) {
    let token = session[SESSION_KEY];
    if (typeof token !== 'string' || !NONCE.test(token)) {
      token = randomToken();
      session[SESSION_KEY] = token;
    }
    return mac(opts, token as string);
  }
  let nonce = readCookie(req, opts.cookieName);
  if (nonce === undefined || !NONCE.test(nonce)) {
    nonce = randomToken();
    res.cookie(opts.cookieName, nonce, { httpOnly: true, sameSite: 'lax', secure: req.secure || opts.httpsIssuer, path: opts.cookiePath });
  }
  return mac(opts, nonce);
}

/** Whether the presented token matches the session's or the cookie's (constant time). */
export function verifyCsrfToken(req: Request, opts: CsrfOptions, presented: string | undefined): boolean {
  if (presented === undefined) return false;
  const session = sessionOf(req);
  const nonce = session ? session[SESSION_KEY] : readCookie(req, opts.cookieName);
  if (typeof nonce !== 'string' || !NONCE.test(nonce)) return false;
  return constantTimeEqual(mac(opts, nonce), presented);
}
