import { join } from 'node:path';
import session from 'express-session';
import type { Express, NextFunction, Request, Response } from 'express';
import type { OAuthRouter } from '../../lib';
import { buildApp, closeAll, MOUNT } from '../support/build_app';
import { listen, runClient } from '../support/interop';

afterAll(closeAll);

const CLIENT = join(__dirname, 'authorization_code.client.mjs');

declare module 'express-session' {
  interface SessionData {
    userId?: string;
  }
}

/** The host's side: a session, a login page that logs "alice" in, Passport-style `req.user`. */
function host(app: Express, auth: OAuthRouter): void {
  app.use(session({ secret: 'interop-session-secret', resave: false, saveUninitialized: false }));
  app.use(function sessionUser(req: Request, _res: Response, next: NextFunction) {
    if (req.session.userId) (req as Request & { user?: { id: string } }).user = { id: req.session.userId };
    next();
  });
  app.get('/login', function testLogin(req: Request, res: Response) {
    const returnTo = typeof req.query.return_to === 'string' && /^\/(?!\/)/.test(req.query.return_to) ? req.query.return_to : '/';
    req.session.userId = 'alice';
    res.redirect(302, returnTo);
  });
  // RFC 8414 §3.1: under a path, the well-known URI goes between the host and the path.
  if (MOUNT) app.use(auth.wellKnown({ mountPath: MOUNT }));
}

interface ClientOutput {
  steps: string[];
  callbackIss: string;
  forgedIssAccepted: boolean;
  authorizationError?: { error: string; error_description: string };
  token?: { token_type: string; scope: string; expires_in: number; has_access_token: boolean };
  resource?: { status: number; body: Record<string, unknown> };
  replay?: string;
  resourceAfterReplay?: { status: number; challenge?: unknown };
}

describe('interop › authorization code with PKCE (oauth4webapi)', () => {
  it('discovers the server, logs in, consents, validates state and iss, redeems the code with S256 and calls the API', async () => {
    const t = await buildApp({ enable: ['pkce'] }, { setup: host });
    const { clientId, clientSecret } = await t.createClient({ redirectUri: ['http://127.0.0.1/cb'], scopes: ['books.read', 'books.write'] });
    const server = await listen(t.app);
    try {
      const issuer = `${server.origin}${MOUNT}`;
      const out = await runClient<ClientOutput>(CLIENT, {
        issuer,
        clientId,
        clientSecret,
        redirectUri: 'http://127.0.0.1:53682/cb',
        scope: 'books.read',
        resource: `${server.origin}/api/me`,
      });
      expect(out).toEqual({
        steps: [`GET ${MOUNT}/authorize 302`, 'GET /login 302', `GET ${MOUNT}/authorize 200`, `POST ${MOUNT}/authorize 302`],
        callbackIss: issuer,
        forgedIssAccepted: false,
        token: { token_type: 'bearer', scope: 'books.read', expires_in: 3600, has_access_token: true },
        resource: {
          status: 200,
          body: { accountId: 'alice', clientId, applicationId: expect.any(Number), scopes: ['books.read'], grantId: expect.any(Number), expiresAt: expect.any(String), token: expect.any(String) },
        },
        replay: 'invalid_grant',
        resourceAfterReplay: { status: 401, challenge: [{ scheme: 'bearer', parameters: { realm: 'oauth', error: 'invalid_token', error_description: 'Invalid access token' } }] },
      });
      t.logger.assertNoSecrets([clientSecret]);
    } finally {
      await server.close();
    }
  });

  it('hands a denial to the client as an authorization error it can read', async () => {
    const t = await buildApp({ enable: ['pkce'] }, { setup: host });
    const { clientId, clientSecret } = await t.createClient({ redirectUri: ['http://127.0.0.1/cb'], scopes: ['books.read'] });
    const server = await listen(t.app);
    try {
      const issuer = `${server.origin}${MOUNT}`;
      const out = await runClient<ClientOutput>(CLIENT, { issuer, clientId, clientSecret, redirectUri: 'http://127.0.0.1:53682/cb', scope: 'books.read', resource: `${server.origin}/api/me`, decision: 'deny' });
      expect(out).toEqual({
        steps: [`GET ${MOUNT}/authorize 302`, 'GET /login 302', `GET ${MOUNT}/authorize 200`, `POST ${MOUNT}/authorize 302`],
        callbackIss: issuer,
        forgedIssAccepted: false,
        authorizationError: { error: 'access_denied', error_description: 'The resource owner or authorization server denied the request' },
      });
    } finally {
      await server.close();
    }
  });
});
