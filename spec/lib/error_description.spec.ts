/**
 * RFC 6749 §5.2: error_description is printable ASCII without '"' and '\' (issue 10 item 7).
 * A constant message outside that set is refused at start-up; a description made at request
 * time is transliterated on every channel.
 */
import { afterAll, describe, expect, it } from '@jest/globals';
import knex from 'knex';
import { OAuthConfigurationError, OAuthError, oauth } from '../../lib';
import { buildApp, closeAll } from '../support/build_app';
import { tokenRequest } from '../oauth_base/helpers';
import { consent, locationParams, testLogin } from '../authorization_code_grant/flow';

afterAll(closeAll);

describe('lib › error_description is ASCII (RFC 6749 §5.2)', () => {
  describe('at start-up', () => {
    const db = knex({ client: 'better-sqlite3', connection: { filename: ':memory:' }, useNullAsDefault: true, pool: { min: 0, max: 1 } });
    afterAll(() => db.destroy());
    const build = (options: Record<string, unknown>) => () => oauth({ db, issuer: 'https://auth.example', ...options } as never);
    const refusal = (option: string, shown: string) =>
      `oauth(): option '${option}' becomes an error_description, which must be printable ASCII without '"' and '\\' (RFC 6749 §5.2); it contains ${shown}.`;

    it.each([
      ['an accented letter', { oauthInvalidClientMessage: 'Client inconnu, réessayez' }, 'oauthInvalidClientMessage', 'U+00E9'],
      ['a symbol', { oauthInvalidGrantMessage: 'Grant ✗' }, 'oauthInvalidGrantMessage', 'U+2717'],
      ['an emoji', { oauthInvalidScopeMessage: 'Scope 🔐' }, 'oauthInvalidScopeMessage', 'U+1F510'],
      ['a double quote', { oauthInvalidTokenMessage: 'Invalid "token"' }, 'oauthInvalidTokenMessage', `'"'`],
      ['a backslash', { oauthMissingTokenMessage: 'a\\b' }, 'oauthMissingTokenMessage', `'\\'`],
      ['a newline', { oauthInsufficientScopeMessage: 'two\nlines' }, 'oauthInsufficientScopeMessage', 'U+000A'],
      ['a feature’s message', { enable: ['refresh'], oauthInvalidRefreshTokenMessage: 'Jeton périmé' }, 'oauthInvalidRefreshTokenMessage', 'U+00E9'],
    ])('refuses a constant message with %s, naming the option', (_what, options, option, shown) => {
      const run = build(options);
      expect(run).toThrow(OAuthConfigurationError);
      expect(run).toThrow(refusal(option, shown));
    });

    it('accepts printable ASCII, function-valued messages, and non-ASCII in values that are not messages', () => {
      expect(build({ oauthInvalidClientMessage: "Unknown client; it's not 'registered' [see /docs] ~!" })).not.toThrow();
      expect(build({ oauthInvalidClientMessage: () => 'Client inconnu' })).not.toThrow();
      expect(build({ enable: ['authorization_code_grant'], authorizeErrorPageTitle: 'Erreur d’autorisation' })).not.toThrow();
    });
  });

  describe('at request time, transliterated on the wire', () => {
    it('JSON: a hook’s OAuthError and a function-valued message', async () => {
      const t = await buildApp({
        enable: ['client_credentials_grant'],
        beforeToken: () => {
          throw new OAuthError('invalid_request', 'Café "crème" \\ ∑ naïve');
        },
        oauthInvalidClientMessage: () => 'Client inconnu — réessayez',
      });
      const c = await t.createClient();
      const denied = await tokenRequest(t, c);
      expect(denied.status).toBe(400);
      expect(denied.body).toEqual({ error: 'invalid_request', error_description: "Cafe 'creme' / ? naive" });
      const wrong = await tokenRequest(t, { clientId: c.clientId, clientSecret: 'wrong-secret' });
      expect(wrong.status).toBe(401);
      expect(wrong.body).toEqual({ error: 'invalid_client', error_description: 'Client inconnu ? reessayez' });
    });

    it('Bearer: the challenge’s error_description and the body', async () => {
      const t = await buildApp({ enable: ['client_credentials_grant'], oauthInvalidTokenMessage: () => 'Jeton « invalide », réessayez' });
      const res = await t.agent.get('/api/me').set('Authorization', 'Bearer not-a-known-token');
      expect(res.status).toBe(401);
      expect(res.headers['www-authenticate']).toBe('Bearer realm="oauth", error="invalid_token", error_description="Jeton ? invalide ?, reessayez"');
      expect(res.body).toEqual({ error: 'invalid_token', error_description: 'Jeton ? invalide ?, reessayez' });
    });

    it('redirect: the error_description query parameter', async () => {
      const REDIRECT = 'https://client.example/cb';
      const t = await buildApp(
        {
          enable: ['authorization_code_grant'],
          issuer: 'https://auth.example.com',
          beforeAuthorize: () => {
            throw new OAuthError('access_denied', 'Accès refusé: "pas maintenant" \\ plus tard');
          },
        },
        { setup: testLogin },
      );
      const { clientId } = await t.createClient({ redirectUri: [REDIRECT] });
      const res = await consent(t, { client_id: clientId, redirect_uri: REDIRECT, response_type: 'code', scope: 'books.read', state: 'st' });
      expect(res.status).toBe(302);
      expect(locationParams(res.headers.location)).toEqual({
        error: 'access_denied',
        error_description: "Acces refuse: 'pas maintenant' / plus tard",
        state: 'st',
        iss: 'https://auth.example.com',
      });
    });
  });
});
