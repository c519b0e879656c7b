import { afterAll, afterEach, beforeAll, describe, expect, it } from '@jest/globals';
import { createPublicKey } from 'node:crypto';
import { base64url, exportJWK, generateKeyPair, importJWK, SignJWT, type JWK, type KeyLike } from 'jose';
import { closeAll, type TestApp } from '../support/build_app';
import { bearer, clientCredentials, countQueries, decode, expectInvalidToken, ISSUER, jwtApp, KID, type Client } from './support';

afterAll(closeAll);

const b64 = (o: unknown) => base64url.encode(JSON.stringify(o));

let queries: ReturnType<typeof countQueries> | undefined;
afterEach(() => queries?.restore());

describe('jwt_access_tokens › bad input: 401 invalid_token, never a 500, never a query (RFC 6750 §3.1, RFC 9068 §4)', () => {
  let t: TestApp & { privateJwk: JWK };
  let client: Client;
  let good: Record<string, unknown>;
  let ourKey: KeyLike;
  beforeAll(async () => {
    t = await jwtApp();
    client = await t.createClient();
    good = decode(await clientCredentials(t, client)).claims;
    ourKey = (await importJWK(t.privateJwk, 'ES256')) as KeyLike;
  });

  /** A token signed with the server's own key: only what is under test differs. */
  function craft(claims: Record<string, unknown> = {}, header: Record<string, unknown> = {}, key: KeyLike | Uint8Array = ourKey): Promise<string> {
    const now = Math.floor(Date.now() / 1000);
    return new SignJWT({ ...good, iat: now, exp: now + 600, ...claims }).setProtectedHeader({ alg: 'ES256', kid: KID, typ: 'at+jwt', ...header }).sign(key);
  }

  /** Sends the token, expecting the invalid_token answer, no store query, and `reason` in the log. */
  async function refused(token: string, reason: string): Promise<void> {
    t.logger.lines.length = 0;
    queries = countQueries();
    const res = await bearer(t, token);
    expect(queries.count()).toBe(0);
    expectInvalidToken(res);
    expect(t.logger.lines).toEqual([expect.stringContaining(`invalid_token (${reason})`)]);
  }

  it('accepts the crafted baseline (so each refusal below is for the one thing changed)', async () => {
    expect((await bearer(t, await craft())).status).toBe(200);
  });

  it('refuses a token signed by another key under our kid (forged)', async () => {
    const { privateKey } = await generateKeyPair('ES256');
    await refused(await craft({}, {}, privateKey), 'token_signature_invalid');
  });

  it('refuses a token whose claims were changed after signing', async () => {
    const [h, , s] = (await craft()).split('.');
    await refused(`${h}.${b64({ ...good, scope: 'books.read books.write admin' })}.${s}`, 'token_signature_invalid');
  });

  it('refuses an expired token', async () => {
    const now = Math.floor(Date.now() / 1000);
    await refused(await craft({ iat: now - 7200, exp: now - 3600 }), 'expired_token');
  });

  it('refuses a token not yet valid (nbf) and one issued in the future (iat)', async () => {
    const now = Math.floor(Date.now() / 1000);
    await refused(await craft({ nbf: now + 600 }), 'token_claim_mismatch');
    await refused(await craft({ iat: now + 600, exp: now + 4200 }), 'token_claim_mismatch');
  });

  it('refuses alg: none', async () => {
    await refused(`${b64({ alg: 'none', typ: 'at+jwt', kid: KID })}.${b64(good)}.`, 'token_signature_invalid');
  });

  it('refuses HS256 signed with the public key (algorithm confusion)', async () => {
    const pem = createPublicKey({ key: t.privateJwk as never, format: 'jwk' }).export({ format: 'pem', type: 'spki' }) as string;
    await refused(await craft({}, { alg: 'HS256' }, new TextEncoder().encode(pem)), 'token_signature_invalid');
    const jwk = await exportJWK(createPublicKey({ key: t.privateJwk as never, format: 'jwk' }));
    await refused(await craft({}, { alg: 'HS256' }, new TextEncoder().encode(JSON.stringify(jwk))), 'token_signature_invalid');
  });

  it.each([
    ['JWT', 'JWT'],
    ['application/jwt', 'application/jwt'],
  ])('refuses a wrong typ (%s)', async (_name, typ) => {
    await refused(await craft({}, { typ }), 'token_claim_mismatch');
  });

  it('refuses a token without typ', async () => {
    const now = Math.floor(Date.now() / 1000);
    const token = await new SignJWT({ ...good, iat: now, exp: now + 600 }).setProtectedHeader({ alg: 'ES256', kid: KID }).sign(ourKey);
    await refused(token, 'token_claim_mismatch');
  });

  it('accepts typ application/at+jwt (RFC 9068 §2.1)', async () => {
    expect((await bearer(t, await craft({}, { typ: 'application/at+jwt' }))).status).toBe(200);
  });

  it('refuses a wrong iss and a wrong aud', async () => {
    await refused(await craft({ iss: 'https://evil.example.com' }), 'token_claim_mismatch');
    await refused(await craft({ aud: 'https://other-api.example.com' }), 'token_claim_mismatch');
    expect((await bearer(t, await craft({ aud: ['https://other.example', ISSUER] }))).status).toBe(200);
  });

  it('refuses an unknown kid, and a known kid with another alg', async () => {
    await refused(await craft({}, { kid: 'no-such-key' }), 'unknown_signing_key');
    const { privateKey } = await generateKeyPair('ES384');
    await refused(await craft({}, { alg: 'ES384' }, privateKey), 'token_signature_invalid');
  });

  it('refuses a signed token that lacks a claim req.oauth needs', async () => {
    await refused(await craft({ gid: undefined }), 'malformed_token');
    await refused(await craft({ aid: 'seven' }), 'malformed_token');
    await refused(await craft({ client_id: undefined }), 'malformed_token');
  });

  it('refuses the issued token spelled another way (RFC 7515 §2: unpadded base64url, unused bits zero), which introspection does not know either', async () => {
    const token = await clientCredentials(t, client);
    const [h, p, sig] = token.split('.') as [string, string, string];
    // ES256: 64 bytes, 86 characters, whose last one carries 4 unused bits.
    const last = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
    const dirty = `${sig.slice(0, -1)}${last[last.indexOf(sig.slice(-1)) ^ 1]}`;
    const others = [`${token}=`, `${token}==`, `${h}.${p}.${sig.slice(0, 5)}~${sig.slice(5)}`, `${h}.${p}.${dirty}`];
    for (const other of others) await refused(other, 'malformed_token');
    queries?.restore();
    for (const other of others) {
      const introspected = await t.agent.post(t.path('/introspect')).type('form').auth(client.clientId, client.clientSecret).send({ token: other });
      expect(introspected.status).toBe(200);
      expect(introspected.body).toEqual({ active: false });
    }
    // The token as issued still works.
    expect((await bearer(t, token)).status).toBe(200);
  });

  it('refuses an oversized token unread', async () => {
    const big = await craft({ pad: 'x'.repeat(9000) });
    expect(big.length).toBeGreaterThan(8192);
    await refused(big, 'malformed_token');
  });

  it.each([
    ['three empty segments', '..'],
    ['segments that are not base64url JSON', 'abc.def.ghi'],
    ['a header that is not an object', `${b64('at+jwt')}.${b64({ sub: 'x' })}.c2ln`],
    ['a payload that is not JSON', `${b64({ alg: 'ES256', typ: 'at+jwt', kid: KID })}.bm90IGpzb24.c2ln`],
    ['a crit header', `${b64({ alg: 'ES256', typ: 'at+jwt', kid: KID, crit: ['x'], x: 1 })}.${b64({ sub: 'x' })}.c2ln`],
  ])('refuses a malformed JWT: %s', async (_name, token) => {
    t.logger.lines.length = 0;
    queries = countQueries();
    const res = await bearer(t, token);
    expect(queries.count()).toBe(0);
    expectInvalidToken(res);
  });
});
