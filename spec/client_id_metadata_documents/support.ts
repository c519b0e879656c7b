/**
 * The client side of the client ID metadata document specs: an https server on loopback that
 * serves each client's document (with the status, headers, delay or body a spec sets), counts
 * the requests per path, and the options that let the server under test reach and trust it.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { buildApp, closeAll, type TestApp } from '../support/build_app';
import { pkcePair, query, testLogin, ISSUER } from '../authorization_code_grant/flow';
import { HttpsLoopbackServer, TEST_CERTIFICATE } from '../support/https_server';

export interface Served {
  status?: number;
  headers?: Record<string, string>;
  /** A JSON document, or raw text. */
  body: unknown;
  /** Milliseconds before answering. */
  delayMs?: number;
}

export class DocumentServer {
  readonly requests = new Map<string, number>();
  private readonly docs = new Map<string, Served>();
  private readonly https = new HttpsLoopbackServer((req, res) => this.answer(req, res));

  get origin(): string {
    return this.https.origin;
  }

  async start(): Promise<this> {
    await this.https.listen();
    return this;
  }

  close(): Promise<void> {
    return this.https.close();
  }

  /** The client id (the document's URL) of `path`. */
  url(path: string): string {
    return `${this.origin}${path}`;
  }

  serve(path: string, served: Served): string {
    this.docs.set(path, served);
    return this.url(path);
  }

  /** Serves a valid public-client document at `path` (with `extra` members) and returns its client id. */
  client(path: string, extra: Record<string, unknown> = {}, served: Omit<Served, 'body'> = {}): string {
    const clientId = this.url(path);
    return this.serve(path, { ...served, body: { client_id: clientId, client_name: 'Docs App', redirect_uris: [REDIRECT_URI], ...extra } });
  }

  count(path: string): number {
    return this.requests.get(path) ?? 0;
  }

  private answer(req: IncomingMessage, res: ServerResponse): void {
    const path = req.url ?? '/';
    this.requests.set(path, this.count(path) + 1);
    const served = this.docs.get(path);
    if (!served) {
      res.writeHead(404).end();
      return;
    }
    const send = () => {
      if (res.destroyed) return;
      const body = typeof served.body === 'string' ? served.body : JSON.stringify(served.body);
      res.writeHead(served.status ?? 200, { 'content-type': 'application/json', ...served.headers });
      res.end(body);
    };
    if (served.delayMs) setTimeout(send, served.delayMs).unref();
    else send();
  }
}

/** One document server for the spec file: started before its tests, closed (with the apps they built) after. */
export function useDocumentServer(): DocumentServer {
  const docs = new DocumentServer();
  beforeAll(() => docs.start());
  afterAll(async () => {
    await docs.close();
    await closeAll();
  });
  return docs;
}

export const REDIRECT_URI = 'https://docs-app.example/cb';

/** What the server under test needs to fetch from the loopback document server (development allowance). */
export const LOOPBACK_FETCH = { oauthFetchAllowPrivateAddresses: true, oauthFetchTrustedCertificates: TEST_CERTIFICATE } as const;

/** A clock the server reads through its `now` method. */
export class Clock {
  ms = Date.now();
  readonly now = (): Date => new Date(this.ms);
  advance(seconds: number): void {
    this.ms += seconds * 1000;
  }
}

/** An app with client_id_metadata_documents on a `Clock` the spec advances. */
export async function setupWithClock(options: Record<string, unknown> = {}): Promise<{ t: TestApp; clock: Clock }> {
  const clock = new Clock();
  const t = await buildApp({ enable: ['client_id_metadata_documents'], issuer: ISSUER, oauthApplicationScopes: ['books.read'], now: clock.now, ...LOOPBACK_FETCH, ...options }, { setup: testLogin });
  return { t, clock };
}

/** GET /authorize for `clientId` (PKCE S256) as the logged-in "alice". */
export function consentPage(t: TestApp, clientId: string) {
  return t.agent
    .get(`${t.path('/authorize')}?${query({ client_id: clientId, redirect_uri: REDIRECT_URI, response_type: 'code', code_challenge: pkcePair().challenge, code_challenge_method: 'S256' })}`)
    .set('X-Test-User', 'alice');
}
