import { join } from 'node:path';
import { exportJWK, generateKeyPair } from 'jose';
import type { Express, Request } from 'express';
import { afterAll, describe, expect, it } from '@jest/globals';
import { buildApp, closeAll, MOUNT, type TestApp } from '../support/build_app';
import { listen, runClient, sessionLogin } from '../support/interop';

afterAll(closeAll);

declare module 'express-session' {
  interface SessionData {
    oidcLoggedInAt?: number;
  }
}

const REDIRECT_URI = 'http://127.0.0.1:53682/cb';
const LOGGED_OUT = 'http://127.0.0.1:53682/logged-out';

/** The host: `sessionLogin`, recording when "alice" logged in. */
function host(app: Express): void {
  sessionLogin(app, (req) => {
    req.session.oidcLoggedInAt = Date.now();
  });
}

async function interopApp(): Promise<TestApp & { clientId: string; clientSecret: string }> {
  const { privateKey } = await generateKeyPair('RS256', { extractable: true });
  const t = await buildApp(
    {
      enable: ['oidc', 'pkce', 'refresh'],
      oauthJwtKeys: [{ key: await exportJWK(privateKey), alg: 'RS256' }],
      accountAuthenticatedAt: (ctx: { req: Request }) => (ctx.req.session.oidcLoggedInAt ? new Date(ctx.req.session.oidcLoggedInAt) : null),
      accountClaims: async (_ctx: unknown, accountId: string) => ({ name: `${accountId[0]!.toUpperCase()}${accountId.slice(1)}`, email: `${accountId}@example.com`, email_verified: true }),
    },
    { setup: host },
  );
  const { clientId, clientSecret } = await t.createClient({ redirectUri: ['http://127.0.0.1/cb'], scopes: ['openid', 'profile', 'email'], postLogoutRedirectUris: [LOGGED_OUT] });
  return Object.assign(t, { clientId, clientSecret });
}

describe('oidc › interop', () => {
  it('openid-client 6.9.0 (default OIDC discovery): code flow with PKCE and nonce, userinfo, refresh with a new ID token, logout', async () => {
    const t = await interopApp();
    const server = await listen(t.app);
    try {
      const out = await runClient<Record<string, unknown>>(join(__dirname, 'openid_client.client.mjs'), {
        issuer: `${server.origin}${MOUNT}`,
        clientId: t.clientId,
        clientSecret: t.clientSecret,
        redirectUri: REDIRECT_URI,
        postLogoutRedirectUri: LOGGED_OUT,
      });
      expect(out).toEqual({
        idToken: { sub: 'alice', aud: t.clientId, nonce: true, auth_time: 'number', at_hash: 'string' },
        userinfo: { sub: 'alice', name: 'Alice', email: 'alice@example.com', email_verified: true },
        refresh: { newIdToken: true, sameSub: true, sameAuthTime: true, nonce: null },
        endSessionPath: `${MOUNT}/end-session`,
        loggedOutTo: `${LOGGED_OUT}?state=bye`,
        afterLogout: '/login',
        steps: [
          `GET ${MOUNT}/authorize 302`,
          'GET /login 302',
          `GET ${MOUNT}/authorize 200`,
          `POST ${MOUNT}/authorize 302`,
          `GET ${MOUNT}/end-session 200`,
          `POST ${MOUNT}/end-session 302`,
          `GET ${MOUNT}/authorize 302`,
        ],
      });
      t.logger.assertNoSecrets([t.clientSecret]);
    } finally {
      await server.close();
    }
  });

  it('oauth4webapi: validateAuthResponse, processAuthorizationCodeResponse with its ID token checks, processUserInfoResponse', async () => {
    const t = await interopApp();
    const server = await listen(t.app);
    try {
      const issuer = `${server.origin}${MOUNT}`;
      const out = await runClient<Record<string, unknown>>(join(__dirname, 'oauth4webapi.client.mjs'), { issuer, clientId: t.clientId, clientSecret: t.clientSecret, redirectUri: REDIRECT_URI });
      expect(out).toEqual({
        claims: { iss: issuer, sub: 'alice', aud: t.clientId, nonce: true, auth_time: 'number' },
        userinfo: { sub: 'alice', email: 'alice@example.com', email_verified: true },
        mismatchedNonce: 'OAUTH_JWT_CLAIM_COMPARISON_FAILED',
        otherSubject: 'OAUTH_JSON_ATTRIBUTE_COMPARISON_FAILED',
      });
    } finally {
      await server.close();
    }
  });
});
