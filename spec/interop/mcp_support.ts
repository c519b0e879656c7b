/**
 * What the MCP interop specs share: an `OAuthClientProvider` of `@modelcontextprotocol/sdk`
 * whose `redirectToAuthorization(url)` does what a user's browser does (follows the redirect to
 * the login page, logs in, reads the consent page and approves it with its CSRF token, and
 * captures the code from the redirect to the client), a fetch that records every request the
 * SDK makes, and a connected SDK `Client`.
 */
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { UnauthorizedError, type OAuthClientProvider } from '@modelcontextprotocol/sdk/client/auth.js';
import type { OAuthClientInformationMixed, OAuthClientMetadata, OAuthTokens } from '@modelcontextprotocol/sdk/shared/auth.js';
import { formFields } from '../authorization_code_grant/flow';

/** One request the SDK made: method, URL and the form parameters of its body. */
export interface Recorded {
  method: string;
  url: URL;
  headers: Record<string, string>;
  form?: Record<string, string[]>;
  json?: unknown;
  status: number;
  /** The response's `WWW-Authenticate`, if any. */
  challenge?: string;
}

/** A fetch that records what passes through it (the SDK's transport and auth flow use it). */
export function recordingFetch(log: Recorded[]): typeof fetch {
  return async function recorded(input: string | URL | Request, init?: RequestInit) {
    const url = new URL(input instanceof Request ? input.url : String(input));
    const headers = Object.fromEntries(new Headers(init?.headers).entries());
    const entry: Recorded = { method: init?.method ?? 'GET', url, headers, status: 0 };
    const body = init?.body;
    if (body instanceof URLSearchParams || (typeof body === 'string' && (headers['content-type'] ?? '').startsWith('application/x-www-form-urlencoded'))) {
      const params = new URLSearchParams(body.toString());
      entry.form = {};
      for (const [k, v] of params) (entry.form[k] ??= []).push(v);
    } else if (typeof body === 'string' && (headers['content-type'] ?? '').startsWith('application/json')) {
      entry.json = JSON.parse(body);
    }
    const res = await fetch(input, init);
    entry.status = res.status;
    entry.challenge = res.headers.get('www-authenticate') ?? undefined;
    log.push(entry);
    return res;
  };
}

/** A minimal cookie jar for one origin (the session cookie of the login and consent pages). */
class CookieJar {
  private readonly cookies = new Map<string, string>();
  header(): string {
    return [...this.cookies].map(([k, v]) => `${k}=${v}`).join('; ');
  }
  store(res: Response): void {
    for (const c of res.headers.getSetCookie()) {
      const [pair] = c.split(';');
      const eq = pair!.indexOf('=');
      this.cookies.set(pair!.slice(0, eq).trim(), pair!.slice(eq + 1).trim());
    }
  }
}

/** What the browser saw on its way through login and consent. */
export interface BrowserVisit {
  authorizationUrl: URL;
  consentPage: string;
  redirect: URL;
}

/**
 * An OAuthClientProvider as an MCP host application implements it, with the user's browser
 * simulated: `redirectToAuthorization` logs in as `user` and approves the consent page.
 */
export class BrowserLikeProvider implements OAuthClientProvider {
  readonly visits: BrowserVisit[] = [];
  /** The code of the last approved authorization, for `transport.finishAuth(code)`. */
  code?: string;
  private info?: OAuthClientInformationMixed;
  private saved?: OAuthTokens;
  private verifier?: string;
  private lastState?: string;
  private readonly jar = new CookieJar();

  constructor(
    private readonly opts: {
      redirectUrl: string;
      user: { username: string; password: string };
      metadata?: Partial<OAuthClientMetadata>;
      /** SEP-991: the https URL of this client's metadata document, used as its client_id. */
      clientMetadataUrl?: string;
    },
  ) {}

  get redirectUrl(): string {
    return this.opts.redirectUrl;
  }
  get clientMetadataUrl(): string | undefined {
    return this.opts.clientMetadataUrl;
  }
  get clientMetadata(): OAuthClientMetadata {
    return {
      client_name: 'MCP interop client',
      redirect_uris: [this.opts.redirectUrl],
      grant_types: ['authorization_code', 'refresh_token'],
      response_types: ['code'],
      token_endpoint_auth_method: 'none',
      ...this.opts.metadata,
    };
  }
  state(): string {
    this.lastState = `state-${Math.random().toString(36).slice(2)}`;
    return this.lastState;
  }
  clientInformation(): OAuthClientInformationMixed | undefined {
    return this.info;
  }
  saveClientInformation(info: OAuthClientInformationMixed): void {
    this.info = info;
  }
  tokens(): OAuthTokens | undefined {
    return this.saved;
  }
  saveTokens(tokens: OAuthTokens): void {
    this.saved = tokens;
  }
  saveCodeVerifier(v: string): void {
    this.verifier = v;
  }
  codeVerifier(): string {
    if (!this.verifier) throw new Error('no code verifier saved');
    return this.verifier;
  }

  /** The browser: authorization URL → login page → log in → consent page → approve → the client's redirect URI. */
  async redirectToAuthorization(authorizationUrl: URL): Promise<void> {
    let res = await this.get(authorizationUrl);
    if (res.status !== 302) throw new Error(`authorization request: expected a redirect to the login page, got ${res.status} ${await res.text()}`);
    const loginUrl = new URL(res.headers.get('location')!, authorizationUrl);
    res = await this.get(loginUrl);
    const loginPage = await res.text();
    if (res.status !== 200) throw new Error(`login page: ${res.status} ${loginPage}`);
    const login = formFields(loginPage);
    res = await this.post(new URL('/login', loginUrl), { ...login, username: this.opts.user.username, password: this.opts.user.password });
    if (res.status !== 302) throw new Error(`log in: ${res.status} ${await res.text()}`);
    const back = new URL(res.headers.get('location')!, loginUrl);
    res = await this.get(back);
    const consentPage = await res.text();
    if (res.status !== 200) throw new Error(`consent page: ${res.status} ${consentPage}`);
    res = await this.post(new URL(back.pathname, back), { ...formFields(consentPage), decision: 'approve' });
    if (res.status !== 302) throw new Error(`approve: ${res.status} ${await res.text()}`);
    const redirect = new URL(res.headers.get('location')!);
    this.visits.push({ authorizationUrl, consentPage, redirect });
    if (`${redirect.origin}${redirect.pathname}` !== this.opts.redirectUrl) throw new Error(`redirected to ${redirect.href}, not the redirect URI`);
    if (redirect.searchParams.get('state') !== this.lastState) throw new Error('state not echoed');
    this.code = redirect.searchParams.get('code') ?? undefined;
    if (!this.code) throw new Error(`no code: ${redirect.href}`);
  }

  private async get(url: URL): Promise<Response> {
    const res = await fetch(url, { redirect: 'manual', headers: { cookie: this.jar.header(), accept: 'text/html' } });
    this.jar.store(res);
    return res;
  }

  private async post(url: URL, form: Record<string, string>): Promise<Response> {
    const res = await fetch(url, {
      method: 'POST',
      redirect: 'manual',
      headers: { cookie: this.jar.header(), 'content-type': 'application/x-www-form-urlencoded', accept: 'text/html' },
      body: new URLSearchParams(form).toString(),
    });
    this.jar.store(res);
    return res;
  }
}

/** A tool's answer as `whoami` gives it: what the MCP server saw of the token. */
export interface Whoami {
  accountId: string | null;
  clientId: string | null;
  scopes: string[];
  resource: string | null;
  expiresAt: number | null;
}

/**
 * Connects the SDK's Client the way its OAuth example does: the first connect runs discovery,
 * registration and the authorization request (the provider approves it), and ends in
 * UnauthorizedError; `finishAuth(code)` exchanges the code; a second connect succeeds.
 */
export async function connectWithOAuth(url: string, provider: BrowserLikeProvider, log: Recorded[]): Promise<{ client: Client; transport: StreamableHTTPClientTransport }> {
  const first = new StreamableHTTPClientTransport(new URL(url), { authProvider: provider, fetch: recordingFetch(log) });
  const firstClient = new Client({ name: 'mcp-interop-spec', version: '1.0.0' });
  const failure = await firstClient.connect(first).then(
    () => null,
    (e: unknown) => e,
  );
  if (!(failure instanceof UnauthorizedError)) throw new Error(`expected the first connect to need authorization, got ${String(failure)}`);
  await first.finishAuth(provider.code!);
  await firstClient.close();
  const transport = new StreamableHTTPClientTransport(new URL(url), { authProvider: provider, fetch: recordingFetch(log) });
  const client = new Client({ name: 'mcp-interop-spec', version: '1.0.0' });
  await client.connect(transport);
  return { client, transport };
}

/** Calls `whoami` and returns its structured answer. */
export async function whoami(client: Client): Promise<Whoami> {
  const result = await client.callTool({ name: 'whoami', arguments: {} });
  return result.structuredContent as unknown as Whoami;
}
