import type { OAuthContext } from '../../lib/context';
import { FEATURES } from '../../lib/features';
import { interpolate, LABEL_VALUES, requestedLocales, TRANSLATIONS } from '../../lib/translate';
import { buildApp, closeAll, type TestApp } from '../support/build_app';
import { consent, errorPage, formFields, ISSUER, locationParams, query, testLogin, unescapeHtml } from './flow';

afterAll(closeAll);

const REDIRECT = 'https://client.example/cb';

/** A host's own table: French for what it knows, the English default (ctx.super) for the rest. */
const FRENCH: Record<string, string> = {
  'consent.title': 'Autoriser',
  'consent.lead': "L'application {name} souhaite accéder à vos données",
  'consent.allow': 'Autoriser',
  'consent.deny': 'Refuser',
  'consent.signedInAs': 'Connecté en tant que {account}',
  'scope.books.read': 'Lire vos livres',
  'errorPage.title': 'Erreur',
  'errorPage.problem.csrf_mismatch': 'Ce formulaire a expiré.',
};

function frenchWhenAsked(ctx: OAuthContext & { super: { translate(key: string, vars?: object): string } }, key: string, vars?: Record<string, string>): string {
  if (requestedLocales(ctx)[0] === 'fr' && FRENCH[key] !== undefined) return interpolate(FRENCH[key], vars ?? {});
  return ctx.super.translate(key, vars);
}

async function setup(options: Record<string, unknown> = {}): Promise<{ t: TestApp; clientId: string }> {
  const t = await buildApp(
    { enable: ['authorization_code_grant'], issuer: ISSUER, translate: frenchWhenAsked, locale: (ctx: OAuthContext) => (requestedLocales(ctx)[0] === 'fr' ? 'fr' : 'en'), ...options },
    { setup: testLogin },
  );
  const { clientId } = await t.createClient({ redirectUri: [REDIRECT], name: 'Livres' });
  return { t, clientId };
}

function params(clientId: string, extra: Record<string, string> = {}): Record<string, string> {
  return { client_id: clientId, redirect_uri: REDIRECT, response_type: 'code', scope: 'books.read', state: 'st', ...extra };
}

describe('translate', () => {
  it('every label value names a key of the table, and its default is the English text of that key', () => {
    const declared = Object.fromEntries(Object.values(FEATURES).flatMap((f) => Object.entries(f.values as Record<string, { default: unknown }>)));
    for (const [key, valueName] of Object.entries(LABEL_VALUES)) {
      expect(TRANSLATIONS[key]).toBeDefined();
      expect([key, declared[valueName]?.default]).toEqual([key, TRANSLATIONS[key]]);
    }
  });

  it('interpolate fills {name} from vars, inserts values as is and leaves unknown placeholders', () => {
    expect(interpolate("{name} $& $' {missing}", { name: '$1 <b>' })).toBe("$1 <b> $& $' {missing}");
  });

  it('a host translate chooses by ui_locales; lang follows locale(); unknown keys fall back to English', async () => {
    const { t, clientId } = await setup();
    const res = await t.agent.get(`${t.path('/authorize')}?${query(params(clientId, { ui_locales: 'fr-CA fr en' }))}`).set('X-Test-User', 'alice');
    expect(res.status).toBe(200);
    expect(res.text).toContain('<html lang="en">');
    const fr = await t.agent.get(`${t.path('/authorize')}?${query(params(clientId, { ui_locales: 'fr en' }))}`).set('X-Test-User', 'alice');
    expect(fr.text).toContain('<html lang="fr">');
    expect(/<title>([^<]*)<\/title>/.exec(fr.text)?.[1]).toBe('Autoriser');
    expect(unescapeHtml(/class="lead">([^<]*)</.exec(fr.text)![1]!)).toBe("L'application Livres souhaite accéder à vos données");
    expect(/class="signed-in-as">([^<]*)</.exec(fr.text)?.[1]).toBe('Connecté en tant que alice');
    expect(/class="scope-description">([^<]*)</.exec(fr.text)?.[1]).toBe('Lire vos livres');
    expect(fr.text).toContain('id="approve">Autoriser</button>');
    // Not in the host's table: the English default through ctx.super.translate.
    expect(/class="redirect">([^<]*)</.exec(fr.text)?.[1]).toBe('After your choice you will be sent to ');
    expect(formFields(fr.text).ui_locales).toBe('fr en');
  });

  it('ui_locales is carried to the POST, so the error page after it speaks the same language', async () => {
    const { t, clientId } = await setup();
    const page = await t.agent.get(`${t.path('/authorize')}?${query(params(clientId, { ui_locales: 'fr' }))}`).set('X-Test-User', 'alice');
    const res = await t.agent.post(t.path('/authorize')).set('X-Test-User', 'alice').type('form').send({ ...formFields(page.text), csrf_token: 'forged', decision: 'approve' });
    expect(res.status).toBe(400);
    expect(res.text).toContain('<html lang="fr">');
    expect(/<title>([^<]*)<\/title>/.exec(res.text)?.[1]).toBe('Erreur');
    expect(/class="problem">([^<]*)</.exec(res.text)?.[1]).toBe('Ce formulaire a expiré.');
    // The code and its description are protocol: as before.
    expect(errorPage(res.text)).toEqual({ error: 'invalid_request', description: 'The form has expired or was not sent by this site; please try again' });
  });

  it('error codes and descriptions on the wire stay untranslated', async () => {
    const { t, clientId } = await setup();
    const denied = await consent(t, params(clientId, { ui_locales: 'fr' }), { decision: 'deny' });
    expect(locationParams(denied.headers.location)).toMatchObject({ error: 'access_denied', error_description: 'The resource owner or authorization server denied the request' });
    const none = await t.agent.get(`${t.path('/authorize')}?${query(params(clientId, { ui_locales: 'fr', prompt: 'none' }))}`).set('X-Test-User', 'alice');
    expect(locationParams(none.headers.location)).toMatchObject({ error: 'consent_required', error_description: 'Consent required' });
  });

  it('the form_post page is translated too', async () => {
    const { t, clientId } = await setup({
      translate: (ctx: OAuthContext & { super: { translate(k: string, v?: object): string } }, key: string, vars?: object) =>
        key === 'formPost.title' ? 'Redirection' : key === 'formPost.button' ? 'Retour' : ctx.super.translate(key, vars),
    });
    const res = await consent(t, params(clientId, { response_mode: 'form_post' }));
    expect(res.status).toBe(200);
    expect(/<title>([^<]*)<\/title>/.exec(res.text)?.[1]).toBe('Redirection');
    expect(res.text).toContain('<noscript><button type="submit">Retour</button></noscript>');
  });

  it('a label value still overrides its key when translate is not overridden', async () => {
    const t = await buildApp({ enable: ['authorization_code_grant'], issuer: ISSUER, oauthDenyButton: 'No thanks', authorizeErrorPageTitle: 'Oops' }, { setup: testLogin });
    const { clientId } = await t.createClient({ redirectUri: [REDIRECT] });
    const res = await t.agent.get(`${t.path('/authorize')}?${query(params(clientId))}`).set('X-Test-User', 'alice');
    expect(res.text).toContain('id="deny">No thanks</button>');
    const err = await t.agent.get(`${t.path('/authorize')}?client_id=nope`);
    expect(/<title>([^<]*)<\/title>/.exec(err.text)?.[1]).toBe('Oops');
  });
});
