/**
 * lib/http/own_paths_router.ts: the routers a host mounts (`oauth()`, `wellKnown()`,
 * `protectedResource()`) let the host's other requests pass without entering them, as a plain
 * middleware would: synchronously, with `req.url`, `req.baseUrl` and `req.params` untouched. Their
 * own paths are served as before, and layers a host adds to a router are still reached.
 */
import { afterAll, describe, expect, it } from '@jest/globals';
import express, { type NextFunction, type Request, type RequestHandler, type Response } from 'express';
import request from 'supertest';
import { buildApp, closeAll, type TestApp } from '../support/build_app';
import { BOOKS, ISSUER, MCP } from '../resource_indicators/support';

afterAll(closeAll);

/**
 * Records, for the host's route, whether a `process.nextTick` queued before the mounted router had
 * already run: Express's router (router 2.x) leaves through `setImmediate`, after which it has.
 */
function tickProbe(req: Request, res: Response, next: NextFunction): void {
  res.locals.ticked = false;
  process.nextTick(() => {
    res.locals.ticked = true;
  });
  next();
}

/** The host's route after the router: what it saw of the request. */
function hostRoute(req: Request, res: Response): void {
  res.json({ ticked: res.locals.ticked, url: req.url, originalUrl: req.originalUrl, baseUrl: req.baseUrl, params: req.params });
}

async function oauthApp(): Promise<TestApp> {
  return buildApp({ issuer: ISSUER, enable: ['client_credentials_grant', 'resource_indicators'], oauthResourceIndicators: [BOOKS] });
}

/** A host with `mounted` at `at` (the root when undefined), the probe before it and a catch-all route after it. */
function host(mounted: RequestHandler, at?: string): express.Express {
  const app = express();
  app.use(tickProbe);
  if (at === undefined) app.use(mounted);
  else app.use(at, mounted);
  app.get('/{*rest}', hostRoute);
  return app;
}

describe('lib › own_paths_router (host requests pass the mounted routers)', () => {
  it('oauth() at the root: a host request passes synchronously, url, baseUrl and params untouched', async () => {
    const t = await oauthApp();
    const res = await request(host(t.auth)).get('/api/ping?x=1');
    expect(res.status).toBe(200);
    expect(res.headers['content-type']).toMatch(/^application\/json/);
    expect(res.body).toEqual({ ticked: false, url: '/api/ping?x=1', originalUrl: '/api/ping?x=1', baseUrl: '', params: { rest: ['api', 'ping'] } });
  });

  it('oauth() under a prefix: a host request below the prefix that no route names passes the same way', async () => {
    const t = await oauthApp();
    const res = await request(host(t.auth, '/oauth')).get('/oauth/not-an-endpoint');
    expect(res.status).toBe(200);
    expect(res.body).toEqual({ ticked: false, url: '/oauth/not-an-endpoint', originalUrl: '/oauth/not-an-endpoint', baseUrl: '', params: { rest: ['oauth', 'not-an-endpoint'] } });
  });

  it('oauth(): its own paths are still served, any method, case and trailing slash as Express matches them', async () => {
    const t = await oauthApp();
    const app = host(t.auth, '/oauth');
    const metadata = await request(app).get('/oauth/.well-known/OAuth-Authorization-Server/');
    expect(metadata.status).toBe(200);
    expect(metadata.body.token_endpoint).toBe(`${ISSUER}/token`);
    const wrongMethod = await request(app).put('/oauth/token');
    expect(wrongMethod.status).toBe(405);
    expect(wrongMethod.headers.allow).toBe('POST');
    expect(wrongMethod.body.error).toBe('invalid_request');
  });

  it('oauth(): a layer the host adds to the router is still reached, and other requests still pass', async () => {
    const t = await oauthApp();
    t.auth.get('/host-extra', (_req, res) => void res.json({ extra: true }));
    const app = host(t.auth);
    const extra = await request(app).get('/host-extra');
    expect(extra.status).toBe(200);
    expect(extra.body).toEqual({ extra: true });
    const other = await request(app).get('/api/ping');
    expect(other.status).toBe(200);
    expect(other.body).toMatchObject({ url: '/api/ping', baseUrl: '' });
  });

  it('wellKnown(): serves its document and lets every other host request pass synchronously', async () => {
    const t = await oauthApp();
    const app = host(t.auth.wellKnown());
    const doc = await request(app).get('/.well-known/oauth-authorization-server');
    expect(doc.status).toBe(200);
    expect(doc.body.issuer).toBe(ISSUER);
    const other = await request(app).get('/.well-known/something-else');
    expect(other.status).toBe(200);
    expect(other.body).toMatchObject({ ticked: false, url: '/.well-known/something-else', baseUrl: '' });
  });

  it('protectedResource(): serves its RFC 9728 document and lets every other host request pass synchronously', async () => {
    const t = await oauthApp();
    const app = host(t.auth.protectedResource({ resource: MCP }));
    const doc = await request(app).get('/.well-known/oauth-protected-resource/mcp');
    expect(doc.status).toBe(200);
    expect(doc.body).toMatchObject({ resource: MCP, authorization_servers: [ISSUER] });
    const other = await request(app).get('/mcp');
    expect(other.status).toBe(200);
    expect(other.body).toMatchObject({ ticked: false, url: '/mcp', baseUrl: '' });
  });
});
