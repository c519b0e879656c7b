/**
 * Builds an Express app around `oauth()` with the options under test visible in the spec
 * (style.md §7.10). Mounted at MOUNT_PATH when set, so the whole suite runs under a prefix too.
 */
import express, { type Express } from 'express';
import request from 'supertest';
import { oauth, type OAuthLogger, type OAuthRouter } from '../../lib';
import type { CreateApplicationInput } from '../../lib/applications';
import { createTestDb, type TestDb } from './db';

export const MOUNT = process.env.MOUNT_PATH ?? '';

/** A logger that records everything, so specs can check that no secret is ever logged. */
export class RecordingLogger implements OAuthLogger {
  readonly lines: string[] = [];
  error(message: string, meta?: Record<string, unknown>): void {
    this.lines.push(`error ${message} ${JSON.stringify(meta ?? {})}`);
  }
  warn(message: string, meta?: Record<string, unknown>): void {
    this.lines.push(`warn ${message} ${JSON.stringify(meta ?? {})}`);
  }
  info(message: string, meta?: Record<string, unknown>): void {
    this.lines.push(`info ${message} ${JSON.stringify(meta ?? {})}`);
  }
  /** Throws if any recorded line contains one of the secrets. */
  assertNoSecrets(secrets: readonly (string | undefined)[]): void {
    for (const s of secrets) {
      if (!s) continue;
      const hit = this.lines.find((l) => l.includes(s));
      if (hit) throw new Error(`a secret reached the log: ${hit}`);
    }
  }
}

export interface TestApp {
  app: Express;
  auth: OAuthRouter;
  agent: ReturnType<typeof request.agent>;
  db: TestDb['db'];
  logger: RecordingLogger;
  /** A path under the mount point. */
  path(p: string): string;
  /**
   * Registers a test client. Without `grantTypes` it is registered for every enabled grant among
   * authorization_code, refresh_token and client_credentials, named explicitly, so the token specs
   * need not repeat them. `createApplication`'s own default (RFC 7591 §2) is specified in
   * spec/oauth_base/storage.spec.ts, which calls it directly.
   */
  createClient(input?: Partial<CreateApplicationInput>): Promise<{ clientId: string; clientSecret: string; id: number }>;
  close(): Promise<void>;
}

/** Feature id → the grant a test client is registered for when that feature is enabled. */
const TEST_GRANT_TYPES: Record<string, string> = {
  authorization_code_grant: 'authorization_code',
  refresh: 'refresh_token',
  client_credentials_grant: 'client_credentials',
};

const open: TestApp[] = [];

export async function buildApp(options: Record<string, unknown> = {}, opts: { shared?: boolean; poolMax?: number; setup?: (app: Express, auth: OAuthRouter) => void } = {}): Promise<TestApp> {
  const testDb = await createTestDb({ shared: opts.shared, poolMax: opts.poolMax });
  const logger = new RecordingLogger();
  const auth = oauth({ db: testDb.db, logger, oauthClientSecretHashCost: 4, ...options } as never) as OAuthRouter;
  // Specs read what requests log; the start-up warning of a derived issuer is spec/oauth_base/issuer.spec.ts's.
  logger.lines.splice(0, logger.lines.length, ...logger.lines.filter((l) => !l.startsWith("warn oauth(): no 'issuer' option")));
  await auth.migrate();
  const app = express();
  opts.setup?.(app, auth);
  if (MOUNT) app.use(MOUNT, auth);
  else app.use(auth);
  app.get('/api/me', auth.requireOauthAuthorization(), (req, res) => {
    res.json(req.oauth);
  });
  app.get('/api/books', auth.requireOauthAuthorization('books.read'), (req, res) => {
    res.json({ books: [], scopes: req.oauth?.scopes });
  });
  const agent = request.agent(app);
  if (typeof options.issuer === 'string' && options.issuer.startsWith('https://')) browseAsHttps(agent);
  const t: TestApp = {
    app,
    auth,
    agent,
    db: testDb.db,
    logger,
    path: (p) => `${MOUNT}${p}`,
    async createClient(input = {}) {
      const grantTypes = Object.entries(TEST_GRANT_TYPES).filter(([feature]) => auth.features.includes(feature)).map(([, grant]) => grant);
      const created = await auth.createApplication({ name: 'Test client', redirectUri: ['https://client.example/cb'], scopes: ['books.read', 'books.write'], grantTypes, ...input });
      return { clientId: created.clientId, clientSecret: created.clientSecret ?? '', id: created.application.id };
    },
    async close() {
      await testDb.destroy();
    },
  };
  open.push(t);
  return t;
}

/**
 * With an https issuer the agent stands for a browser that reaches the server over https through
 * a TLS-terminating proxy: it sends `Secure` cookies back, although the test connection is http.
 */
export function browseAsHttps(agent: ReturnType<typeof request.agent>): void {
  type Access = { domain: string; path: string; secure: boolean; script: boolean };
  const jar = (agent as unknown as { jar: { getCookies(access: Access): unknown } }).jar;
  const getCookies = jar.getCookies.bind(jar);
  jar.getCookies = (access) => getCookies({ ...access, secure: true });
}

/** Closes every app built in the current spec file. Call from afterAll/afterEach. */
export async function closeAll(): Promise<void> {
  while (open.length) await open.pop()!.close();
}

/** `Authorization: Basic` with RFC 6749 §2.3.1 form-encoding of both parts. */
export function basic(clientId: string, secret: string): string {
  const enc = (s: string) => encodeURIComponent(s).replace(/%20/g, '+');
  return `Basic ${Buffer.from(`${enc(clientId)}:${enc(secret)}`).toString('base64')}`;
}
