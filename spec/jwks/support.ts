/** What the jwks specs share: fresh keys in every accepted form, and an app that signs with them. */
import { exportJWK, exportPKCS8, exportSPKI, generateKeyPair, type JWK } from 'jose';
import type { OAuthContext } from '../../lib';
import { serverKeys, type ServerKeys } from '../../lib/keys';
import { buildApp, type TestApp } from '../support/build_app';

export const ISSUER = 'https://auth.example.com';

/** The members of a private JWK that must never be published (RFC 7517 §9.2, RFC 7518 §6.2.2, §6.3.2). */
export const PRIVATE_MEMBERS = ['d', 'p', 'q', 'dp', 'dq', 'qi', 'oth', 'k'];

export interface TestKey {
  alg: string;
  privateJwk: JWK;
  publicJwk: JWK;
  privatePem: string;
  publicPem: string;
}

/** A fresh extractable key pair for `alg`, as JWKs and PEMs. */
export async function newKey(alg: string, options: { crv?: string } = {}): Promise<TestKey> {
  const { privateKey, publicKey } = await generateKeyPair(alg, { extractable: true, ...options });
  return {
    alg,
    privateJwk: await exportJWK(privateKey),
    publicJwk: await exportJWK(publicKey),
    privatePem: await exportPKCS8(privateKey),
    publicPem: await exportSPKI(publicKey),
  };
}

/**
 * An app with the `jwks` feature whose `beforeJwksRoute` hook hands out the instance's
 * `serverKeys(ctx)`, so a spec can reach the very object that other features sign and verify with.
 */
export async function jwksApp(options: Record<string, unknown>): Promise<TestApp & { keys(): Promise<ServerKeys> }> {
  let seen: ServerKeys | undefined;
  const t = await buildApp({
    issuer: ISSUER,
    enable: ['jwks'],
    ...options,
    beforeJwksRoute: (ctx: OAuthContext) => {
      seen = serverKeys(ctx);
    },
  });
  return Object.assign(t, {
    async keys(): Promise<ServerKeys> {
      await t.agent.get(t.path('/jwks')).expect(200);
      return seen!;
    },
  });
}
