import { afterAll, describe, expect, it } from '@jest/globals';
import { join } from 'node:path';
import { createRemoteJWKSet, jwtVerify } from 'jose';
import { buildApp, closeAll, MOUNT } from '../support/build_app';
import { listen, runClient } from '../support/interop';
import { clientCredentials, es256, KID } from './support';

afterAll(closeAll);

describe('jwt_access_tokens › a third party validates our tokens (RFC 9068 §4) over a listening server', () => {
  it("verifies them with jose's jwtVerify and createRemoteJWKSet on our jwks_uri, and with oauth4webapi's validateJwtAccessToken", async () => {
    // No issuer option: it is the listening origin and mount path, as a third party sees it.
    const t = await buildApp({ enable: ['jwt_access_tokens', 'client_credentials_grant'], oauthJwtKeys: (await es256()).option });
    const client = await t.createClient();
    const server = await listen(t.app);
    try {
      const issuer = `${server.origin}${MOUNT}`;
      const metadata = (await fetch(`${issuer}/.well-known/oauth-authorization-server`).then((r) => r.json())) as Record<string, unknown>;
      const jwksUri = metadata.jwks_uri as string;
      expect(jwksUri).toBe(`${issuer}/jwks`);
      const tok = await fetch(`${issuer}/token`, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: `Basic ${Buffer.from(`${client.clientId}:${client.clientSecret}`).toString('base64')}` },
        body: new URLSearchParams({ grant_type: 'client_credentials', scope: 'books.read' }),
      }).then((r) => r.json() as Promise<{ access_token: string }>);
      const token = tok.access_token;

      // §4: typ at+jwt, iss = the issuer, aud = the expected audience, signature with the issuer's keys, exp.
      const jwks = createRemoteJWKSet(new URL(jwksUri));
      const { payload, protectedHeader } = await jwtVerify(token, jwks, { typ: 'at+jwt', issuer, audience: issuer, algorithms: ['ES256'], requiredClaims: ['exp', 'iat', 'jti', 'sub', 'client_id'] });
      expect(protectedHeader).toEqual({ alg: 'ES256', kid: KID, typ: 'at+jwt' });
      expect(payload).toMatchObject({ iss: issuer, aud: issuer, sub: client.clientId, client_id: client.clientId, scope: 'books.read' });
      await expect(jwtVerify(token, jwks, { typ: 'at+jwt', issuer, audience: 'https://other-api.example.com' })).rejects.toMatchObject({ code: 'ERR_JWT_CLAIM_VALIDATION_FAILED', claim: 'aud' });

      const out = await runClient<Record<string, { ok?: Record<string, unknown>; error?: string; message?: string }>>(join(__dirname, 'validate_jwt_access_token.client.mjs'), { issuer, jwksUri, token, audience: issuer });
      expect(out.valid!.ok).toMatchObject({ iss: issuer, aud: issuer, sub: client.clientId, client_id: client.clientId, scope: 'books.read', jti: payload.jti, exp: payload.exp });
      expect(out.wrongAudience!.error).toBe('OAUTH_JWT_CLAIM_COMPARISON_FAILED');
      expect(out.forged).toEqual({ error: 'OAUTH_INVALID_RESPONSE', message: 'JWT signature verification failed' });
      // And our own protected route takes the very token.
      expect((await fetch(`${server.origin}/api/me`, { headers: { authorization: `Bearer ${token}` } })).status).toBe(200);
    } finally {
      await server.close();
    }
  });
});
