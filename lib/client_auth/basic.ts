/**
 * `client_secret_basic` (RFC 6749 §2.3.1) through passport-http: the only user of passport-http.
 * Its parser splits at every colon and does not form-decode, so the header is parsed here,
 * split at the first colon and both parts form-decoded, before its verify callback runs.
 */
import type { Request } from 'express';
import { BasicStrategy } from 'passport-http';
import type { OAuthContext } from '../context';
import type { ClientAuthMethodDef } from '../feature';
import type { Application } from '../store';
import { invalidClient } from './common';
import { authenticateWithSecret } from './secret_guard';

const contexts = new WeakMap<Request, OAuthContext>();

/** The passport Strategy actions, set on each per-request instance. */
interface FormDecodedBasicStrategy {
  success(app: Application): void;
  fail(status?: number | string): void;
  error(err: unknown): void;
}

/** passport-http's strategy with an RFC 6749 §2.3.1 header parser. */
class FormDecodedBasicStrategy extends BasicStrategy {
  override authenticate(req: Request): void {
    const header = req.headers.authorization ?? '';
    const match = /^basic +([A-Za-z0-9+/]+={0,2}) *$/i.exec(header);
    if (!match) return this.fail(400);
    const decoded = Buffer.from(match[1]!, 'base64').toString('utf8');
    const colon = decoded.indexOf(':');
    if (colon === -1) return this.fail(400);
    let clientId: string;
    let secret: string;
    try {
      clientId = formDecode(decoded.slice(0, colon));
      secret = formDecode(decoded.slice(colon + 1));
    } catch {
      return this.fail(400);
    }
    // A NUL byte is no credential (and PostgreSQL refuses it in a text parameter).
    if (!clientId || !secret || clientId.includes('\0') || secret.includes('\0')) return this.fail(400);
    const verify = (this as unknown as { _verify: (req: Request, id: string, secret: string, done: (err: unknown, app?: Application | false) => void) => void })._verify;
    verify(req, clientId, secret, (err, app) => {
      if (err) return this.error(err as Error);
      if (!app) return this.fail(401);
      this.success(app);
    });
  }
}

/** application/x-www-form-urlencoded decoding of one credential (RFC 6749 Appendix B). */
function formDecode(v: string): string {
  return decodeURIComponent(v.replace(/\+/g, ' '));
}

const strategy = new FormDecodedBasicStrategy({ passReqToCallback: true, realm: 'oauth' }, ((
  req: Request,
  clientId: string,
  secret: string,
  done: (err: unknown, app?: Application | false) => void,
) => {
  const ctx = contexts.get(req);
  if (!ctx) return done(new Error('client_secret_basic: no OAuth context'));
  authenticateWithSecret(ctx, clientId, secret, 'client_secret_basic').then((app) => done(null, app), done);
}) as never);

/** Runs the strategy with passport's success/fail/error contract turned into a promise. */
function runStrategy(ctx: OAuthContext): Promise<Application> {
  return new Promise((resolve, reject) => {
    const s = Object.create(strategy) as FormDecodedBasicStrategy;
    s.success = (app) => resolve(app);
    // passport-http's bare fail(400) (a header it cannot read) is an RFC error here too.
    s.fail = (status) => reject(invalidClient(ctx, status === 400 ? 'malformed_basic_header' : 'bad_client_secret'));
    s.error = (err) => reject(err);
    contexts.set(ctx.req, ctx);
    try {
      s.authenticate(ctx.req);
    } catch (e) {
      reject(e);
    }
  });
}

export const clientSecretBasic: ClientAuthMethodDef = {
  detect: (ctx) => /^basic(\s|$)/i.test(ctx.req.headers.authorization ?? ''),
  authenticate: runStrategy,
  challenge: 'Basic',
};
