import { afterAll, describe, expect, it } from '@jest/globals';
import express from 'express';
import request from 'supertest';
import { buildApp, closeAll, MOUNT } from '../support/build_app';

afterAll(closeAll);

const WELL_KNOWN = '/.well-known/oauth-authorization-server';
/** Always a prefix: MOUNT_PATH when the suite runs under one, else /oauth. */
const PREFIX = MOUNT || '/oauth';

/** The router at PREFIX and `wellKnown()` at the root, as a host mounts them. */
async function host(options: Record<string, unknown>, wellKnown: Parameters<import('../../lib').OAuthRouter['wellKnown']>[0]) {
  const t = await buildApp({ enable: ['client_credentials_grant'], ...options });
  const app = express();
  app.use(PREFIX, t.auth);
  app.use(t.auth.wellKnown(wellKnown));
  return { t, agent: request(app) };
}

const document = (issuer: string) => ({
  issuer,
  token_endpoint: `${issuer}/token`,
  response_types_supported: [],
  grant_types_supported: ['client_credentials'],
  token_endpoint_auth_methods_supported: ['client_secret_basic', 'client_secret_post', 'none'],
});

describe('oauth_base › wellKnown() (RFC 8414 §3.1 under a prefix mount)', () => {
  it('serves the metadata at /.well-known/oauth-authorization-server<issuer path>, the same document as the router’s own route', async () => {
    const issuer = `https://auth.example.com${PREFIX}`;
    const { agent } = await host({ issuer }, undefined);
    const res = await agent.get(`${WELL_KNOWN}${PREFIX}`);
    expect(res.status).toBe(200);
    expect(res.headers['content-type']).toBe('application/json; charset=utf-8');
    expect(res.headers['cache-control']).toBe('public, max-age=3600');
    expect(res.body).toEqual(document(issuer));
    const own = await agent.get(`${PREFIX}${WELL_KNOWN}`);
    expect(own.body).toEqual(res.body);
  });

  it('without an issuer option, computes the document for the given mountPath (derived issuer: no-store, Vary: Host)', async () => {
    const { agent } = await host({}, { mountPath: PREFIX });
    const res = await agent.get(`${WELL_KNOWN}${PREFIX}`).set('Host', 'auth.example');
    expect(res.status).toBe(200);
    expect(res.headers['cache-control']).toBe('no-store');
    expect(res.headers.vary).toBe('Host');
    expect(res.body).toEqual(document(`http://auth.example${PREFIX}`));
    const own = await agent.get(`${PREFIX}${WELL_KNOWN}`).set('Host', 'auth.example');
    expect(own.body).toEqual(res.body);
  });

  it('answers another method 405 with Allow and an RFC 6749 §5.2 body', async () => {
    const { agent } = await host({ issuer: `https://auth.example.com${PREFIX}` }, undefined);
    const res = await agent.post(`${WELL_KNOWN}${PREFIX}`);
    expect(res.status).toBe(405);
    expect(res.headers.allow).toBe('GET, HEAD');
    expect(res.headers['cache-control']).toBe('no-store');
    expect(res.body).toEqual({ error: 'invalid_request', error_description: 'Method not allowed' });
  });

  it('leaves every other path to the host', async () => {
    const { agent } = await host({ issuer: `https://auth.example.com${PREFIX}` }, undefined);
    expect((await agent.get(`${WELL_KNOWN}/elsewhere`)).status).toBe(404);
    expect((await agent.get(WELL_KNOWN)).status).toBe(404);
  });

  it.each([
    ['no issuer and no mountPath', {}, undefined, "wellKnown(): without an 'issuer' option, pass the path the router is mounted at: auth.wellKnown({ mountPath: '/oauth' })"],
    ['a mountPath with a trailing slash', {}, { mountPath: '/oauth/' }, 'wellKnown(): mountPath must be the path the router is mounted at, like \'/oauth\' (no trailing slash, query or fragment); got "/oauth/"'],
    ['a mountPath without a leading slash', {}, { mountPath: 'oauth' }, 'wellKnown(): mountPath must be the path the router is mounted at, like \'/oauth\' (no trailing slash, query or fragment); got "oauth"'],
    [
      'a mountPath other than the issuer’s path',
      { issuer: 'https://auth.example.com/oauth' },
      { mountPath: '/other' },
      'wellKnown(): mountPath "/other" disagrees with the path of the issuer "https://auth.example.com/oauth"; RFC 8414 §3.1 derives the well-known URI from the issuer, so omit mountPath',
    ],
  ])('throws a TypeError for %s', async (_label, options, wellKnown, message) => {
    const t = await buildApp({ enable: ['client_credentials_grant'], ...options });
    expect(() => t.auth.wellKnown(wellKnown)).toThrow(new TypeError(message));
  });
});
