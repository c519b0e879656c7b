/**
 * The `claims` request parameter (OpenID Connect Core §5.5) under consent: claims asked by name
 * beyond the scopes are shown on the consent page and released only once approved there;
 * remembered consent covers a new request only when its claims were approved before.
 */
import { afterAll, describe, expect, it } from '@jest/globals';
import { decodeJwt } from 'jose';
import { sha256 } from '../../lib/crypto';
import { closeAll } from '../support/build_app';
import { query } from '../authorization_code_grant/flow';
import { authParams, locationParams, obtainCode, oidcApp, REDIRECT_URI, tokenRequest, type OidcApp } from './support';

afterAll(closeAll);

const CLAIMS = { email: 'alice@example.com', email_verified: true, phone_number: '+1 555 0100', address: { country: 'FR' }, secret_note: 'never released' };

/** A client registered for `openid` only, with an account that has every claim. */
function openidOnlyApp(options: Record<string, unknown> = {}): Promise<OidcApp> {
  return oidcApp({ accountClaims: async () => CLAIMS, ...options }, { scopes: ['openid'] });
}

function authorize(t: OidcApp, extra: Record<string, string>) {
  return t.agent.get(`${t.path('/authorize')}?${query(authParams(t, { scope: 'openid', ...extra }))}`).set('X-Test-User', 'alice');
}

const LEAK = JSON.stringify({ userinfo: { email: null, phone_number: null }, id_token: { email: { essential: true } } });

describe('oidc › claims request under consent', () => {
  it('the consent page lists the claims asked beyond the scopes (escaped, essential marked); unsupported ones are not listed', async () => {
    const t = await openidOnlyApp();
    const claims = JSON.stringify({ userinfo: { email: null, phone_number: null, secret_note: null, '<b>x</b>': null, sub: null }, id_token: { email: { essential: true } } });
    const res = await authorize(t, { claims });
    expect(res.status).toBe(200);
    expect(res.headers['content-type']).toBe('text/html; charset=utf-8');
    const section = /<h2 id="claims-heading">Also asked for<\/h2>([\s\S]*?)<\/ul>/.exec(res.text)?.[1] ?? '';
    expect([...section.matchAll(/<code class="scope claim">([^<]*)<\/code>/g)].map((m) => m[1])).toEqual(['email', 'phone_number']);
    expect(section).toContain('<code class="scope claim">email</code> <span class="essential">(needed by the application)</span>');
    // Only the hidden form field (escaped) carries the parameter as sent.
    const shown = res.text.slice(0, res.text.indexOf('<form'));
    expect(shown).not.toContain('secret_note');
    expect(shown).not.toContain('x</b>');
    expect(res.text).not.toContain('<b>');
  });

  it('claims of granted scopes are not listed again, and without a claims request there is no claims section', async () => {
    const t = await oidcApp({ accountClaims: async () => CLAIMS });
    const res = await t.agent.get(`${t.path('/authorize')}?${query(authParams(t, { scope: 'openid email', claims: JSON.stringify({ userinfo: { email: null } }) }))}`).set('X-Test-User', 'alice');
    expect(res.status).toBe(200);
    expect(res.text).not.toContain('claims-heading');
  });

  it('claim descriptions come through translate (claim.<name>)', async () => {
    const t = await openidOnlyApp({ translate: (ctx: { super: { translate: (k: string, v?: unknown) => string } }, key: string, vars?: unknown) => (key === 'claim.phone_number' ? 'Your <phone> number' : ctx.super.translate(key, vars)) });
    const res = await authorize(t, { claims: JSON.stringify({ userinfo: { phone_number: null } }) });
    expect(res.text).toContain('<span class="scope-description">Your &lt;phone&gt; number</span><code class="scope claim">phone_number</code>');
  });

  it('approved on the page: the ID token and /userinfo carry exactly the approved claims, never an unsupported one', async () => {
    const t = await openidOnlyApp();
    const claims = JSON.stringify({ userinfo: { email: null, phone_number: null, secret_note: null }, id_token: { email: null } });
    const code = await obtainCode(t, authParams(t, { scope: 'openid', claims }));
    const token = await tokenRequest(t, { grant_type: 'authorization_code', code, redirect_uri: REDIRECT_URI });
    expect(token.status).toBe(200);
    expect(decodeJwt(token.body.id_token).email).toBe('alice@example.com');
    const info = await t.agent.get(t.path('/userinfo')).set('Authorization', `Bearer ${token.body.access_token}`);
    expect(info.status).toBe(200);
    expect(info.body).toEqual({ sub: 'alice', email: 'alice@example.com', phone_number: '+1 555 0100' });
  });

  it('remembered consent: the same or fewer claims give a code at once; a claim not approved before shows the page', async () => {
    const t = await openidOnlyApp();
    await obtainCode(t, authParams(t, { scope: 'openid', claims: LEAK }));
    const same = await authorize(t, { claims: JSON.stringify({ userinfo: { phone_number: null } }) });
    expect(same.status).toBe(302);
    expect(locationParams(same.headers.location).code).toMatch(/^[A-Za-z0-9_-]{43}$/);
    const more = await authorize(t, { claims: JSON.stringify({ userinfo: { address: null } }) });
    expect(more.status).toBe(200);
    expect(more.text).toContain('<code class="scope claim">address</code>');
    const none = await authorize(t, { claims: JSON.stringify({ userinfo: { address: null } }), prompt: 'none' });
    expect(none.status).toBe(302);
    expect(locationParams(none.headers.location)).toMatchObject({ error: 'consent_required', state: 'xyz' });
  });

  it('remembered consent: a scope approved before covers its claims asked by name', async () => {
    const t = await oidcApp({ accountClaims: async () => CLAIMS });
    await obtainCode(t, authParams(t, { scope: 'openid email' }));
    const res = await t.agent.get(`${t.path('/authorize')}?${query(authParams(t, { scope: 'openid', claims: JSON.stringify({ id_token: { email: null } }) }))}`).set('X-Test-User', 'alice');
    expect(res.status).toBe(302);
    expect(locationParams(res.headers.location).code).toBeDefined();
  });

  it('the stored claims request keeps only supported claims', async () => {
    const t = await openidOnlyApp();
    const code = await obtainCode(t, authParams(t, { scope: 'openid', claims: JSON.stringify({ userinfo: { secret_note: null, email: { essential: true } }, other: {} }) }));
    const [row] = await t.db('oauth_grants').where({ code: sha256(code) });
    expect(JSON.parse(row.claims)).toEqual({ userinfo: { email: { essential: true } } });
  });
});
