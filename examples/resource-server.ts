/**
 * An API in a second process, protected by tokens from the demo authorization server
 * (`examples/server.ts`) through `resourceServer()`: no database, only HTTP to the issuer.
 *
 *   npm start                          # the demo: http://127.0.0.1:3000
 *   npm run start:resource-server      # this API:  http://127.0.0.1:4000
 *   TOKEN=$(curl -s -u "$CLIENT_ID:$CLIENT_SECRET" -d grant_type=client_credentials -d scope=profile \
 *     http://127.0.0.1:3000/token | node -pe 'JSON.parse(require("fs").readFileSync(0)).access_token')
 *   curl -H "Authorization: Bearer $TOKEN" http://127.0.0.1:4000/api/profile
 *
 * The demo issues opaque access tokens, so this API introspects them (RFC 7662). It needs
 * client credentials the demo's /introspect accepts. By default it reuses the demo client's
 * (`.tmp/demo-client.json`, written by `npm start`): a client may introspect its own tokens.
 * A real resource server gets its own client, listed in the authorization server's
 * `oauthIntrospectionAllowedClients` so that it may see every client's tokens; pass it as
 * RS_CLIENT_ID / RS_CLIENT_SECRET.
 *
 * Every token's `aud` (the JWT claim, or the `aud` of the introspection answer) must include
 * this API's AUDIENCE. The demo names no resource, so its tokens' `aud` is its issuer, the
 * default AUDIENCE; with `oauthJwtAudience: 'http://127.0.0.1:4000'` on the demo, set
 * AUDIENCE=http://127.0.0.1:4000 here.
 *
 * Switching to JWT access tokens (RFC 9068), checked here without any call to the demo: add
 * `'jwt_access_tokens'` to the demo's features with a signing key (`oauthJwtKeys`). Nothing changes here:
 * the demo's metadata then lists its `jwks_uri`, and JWTs are verified against it, while any
 * opaque token left is still introspected (leave the credentials out to accept JWTs only).
 *
 * Environment: ISSUER (http://127.0.0.1:3000), AUDIENCE (default: ISSUER), PORT (4000),
 * HOST (127.0.0.1), RS_CLIENT_ID / RS_CLIENT_SECRET (default: the demo client's).
 */
import express, { type Express, type Request, type Response } from 'express';
import { existsSync, readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { resolve } from 'node:path';
import { resourceServer, type ResourceServer, type ResourceServerOptions } from '../lib';
import { closeOnSignal, runWhenMain } from './run';

export interface ResourceApiOptions {
  issuer: string;
  audience: string;
  /** Introspection credentials; without them only JWT access tokens are accepted. */
  introspection?: ResourceServerOptions['introspection'];
  port?: number;
  host?: string;
}

export interface ResourceApi {
  app: Express;
  rs: ResourceServer;
  server: Server;
  origin: string;
  close(): Promise<void>;
}

/** Builds the API and listens. `createResourceApi()` is exported for the spec. */
export async function createResourceApi(options: ResourceApiOptions): Promise<ResourceApi> {
  const rs = resourceServer({ issuer: options.issuer, audience: options.audience, introspection: options.introspection });
  const app = express();
  app.disable('x-powered-by');

  app.get('/health', function health(_req: Request, res: Response) {
    res.json({ ok: true });
  });
  // The demo's scopes: profile and email.
  app.get('/api/profile', rs.require('profile'), function profile(req: Request, res: Response) {
    // The bearer token itself is not echoed back.
    const { token: _token, ...authorization } = req.oauth!;
    res.json({ service: 'resource-server example', authorization });
  });

  const server = createServer(app);
  await new Promise<void>((done, fail) => {
    server.once('error', fail);
    server.listen(options.port ?? 0, options.host ?? '127.0.0.1', () => done());
  });
  const { port } = server.address() as AddressInfo;
  const host = options.host ?? '127.0.0.1';
  return {
    app,
    rs,
    server,
    origin: `http://${host.includes(':') ? `[${host}]` : host}:${port}`,
    close: () => new Promise<void>((done) => server.close(() => done())),
  };
}

/** RS_CLIENT_ID / RS_CLIENT_SECRET, else the demo client written by `npm start`, else none. */
function introspectionCredentials(env: NodeJS.ProcessEnv): ResourceApiOptions['introspection'] {
  if (env.RS_CLIENT_ID && env.RS_CLIENT_SECRET) return { clientId: env.RS_CLIENT_ID, clientSecret: env.RS_CLIENT_SECRET };
  const file = resolve(process.cwd(), '.tmp', 'demo-client.json');
  if (!existsSync(file)) return undefined;
  const saved = JSON.parse(readFileSync(file, 'utf8')) as { clientId?: unknown; clientSecret?: unknown };
  return typeof saved.clientId === 'string' && typeof saved.clientSecret === 'string' ? { clientId: saved.clientId, clientSecret: saved.clientSecret } : undefined;
}

async function main(): Promise<void> {
  const env = process.env;
  const port = env.PORT ? Number(env.PORT) : 4000;
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new Error(`PORT must be a port number, got '${env.PORT}'`);
  const issuer = env.ISSUER || 'http://127.0.0.1:3000';
  // The demo names no resource (RFC 8707) and sets no oauthJwtAudience: its tokens' `aud` is its issuer.
  const audience = env.AUDIENCE || issuer;
  const introspection = introspectionCredentials(env);
  const api = await createResourceApi({ issuer, audience, introspection, port, host: env.HOST || '127.0.0.1' });
  // Optional: find a misconfiguration (wrong issuer, authorization server down) now rather than at the first request.
  api.rs.ready().catch((e: unknown) => console.warn(`The authorization server is not usable yet: ${e instanceof Error ? e.message : String(e)}`));
  console.log(`resource-server example on ${api.origin}, trusting ${issuer}

  GET ${api.origin}/api/profile   (scope "profile")
  Opaque tokens: ${introspection ? `introspected as client ${introspection.clientId}` : 'refused (no RS_CLIENT_ID / RS_CLIENT_SECRET and no .tmp/demo-client.json: start the demo first)'}
  JWT access tokens: verified against the issuer's jwks_uri, with audience ${audience}
`);
  closeOnSignal(() => api.close());
}

runWhenMain(module, main);
