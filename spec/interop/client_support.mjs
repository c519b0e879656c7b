// Shared by the interop client scripts: loopback http, discovery, a protected-resource call,
// errors turned into JSON the spec can assert on, and a user agent for login and consent.
import * as oauth from 'oauth4webapi';

/** oauth4webapi refuses http unless told; the specs run on loopback. */
export const insecure = { [oauth.allowInsecureRequests]: true };

/** Discovers the authorization server at `issuer` (`algorithm`: 'oauth2' or 'oidc'). */
export async function discover(issuer, algorithm = 'oauth2') {
  const url = new URL(issuer);
  return oauth.processDiscoveryResponse(url, await oauth.discoveryRequest(url, { algorithm, ...insecure }));
}

/** GET the protected resource with the access token: its status and JSON body. */
export async function callResource(resource, accessToken) {
  const response = await oauth.protectedResourceRequest(accessToken, 'GET', new URL(resource), undefined, undefined, insecure);
  return { status: response.status, body: await response.json() };
}

/** Runs `fn`, expecting an OAuth error: `{ error: null }` when none was thrown. */
export async function expectError(fn) {
  try {
    await fn();
    return { error: null };
  } catch (e) {
    if (e instanceof oauth.ResponseBodyError) return { error: e.error, error_description: e.error_description, status: e.status };
    if (e instanceof oauth.WWWAuthenticateChallengeError) return { challenge: e.cause.map((c) => c.scheme), status: e.status };
    return { error: 'unexpected', message: String(e && e.message) };
  }
}

/** A user agent: a cookie jar, manual redirects, and the forms of our consent and logout pages
 * submitted as the user would, with `headers` on every request; `steps` records each request as
 * "METHOD path status". */
export function userAgent(headers = {}) {
  const jar = new Map();
  const steps = [];
  async function browse(url, init = {}) {
    const cookie = [...jar].map(([k, v]) => `${k}=${v}`).join('; ');
    const res = await fetch(url, { ...init, redirect: 'manual', headers: { ...headers, ...(init.headers ?? {}), ...(cookie ? { cookie } : {}) } });
    for (const c of res.headers.getSetCookie()) {
      const [pair] = c.split(';');
      const i = pair.indexOf('=');
      jar.set(pair.slice(0, i), pair.slice(i + 1));
    }
    steps.push(`${init.method ?? 'GET'} ${new URL(url).pathname} ${res.status}`);
    return res;
  }
  /** Follows redirects until one leaves for `stopAt` (returned as `callback`) or a page answers. */
  async function follow(res, from, stopAt) {
    while (res.status === 302) {
      const next = new URL(res.headers.get('location'), from);
      if (next.href.startsWith(stopAt)) return { callback: next };
      res = await browse(next);
      from = next;
    }
    return { page: res, url: from };
  }
  /** Submits the page's form with `decision`, then follows the redirects. */
  async function submit(hop, decision, stopAt) {
    const html = await hop.page.text();
    const decode = (s) => s.replace(/&#34;/g, '"').replace(/&#39;/g, "'").replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&amp;/g, '&');
    const action = new URL(decode(/<form method="post" action="([^"]+)">/.exec(html)[1]), hop.url);
    const form = new URLSearchParams();
    for (const m of html.matchAll(/<input type="hidden" name="([^"]*)" value="([^"]*)">/g)) form.set(decode(m[1]), decode(m[2]));
    form.set('decision', decision);
    return follow(await browse(action, { method: 'POST', body: form, headers: { 'content-type': 'application/x-www-form-urlencoded' } }), action, stopAt);
  }
  return { browse, follow, submit, steps };
}
