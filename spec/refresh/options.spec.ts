import { afterAll, describe, expect, it } from '@jest/globals';
import { oauth } from '../../lib';
import { sha256 } from '../../lib/crypto';
import { buildApp, closeAll } from '../support/build_app';
import { createTestDb } from '../support/db';
import { createGrant, reloadGrant } from '../support/grants';
import { REFRESH_TOKEN_REUSED, me, refresh } from './helpers';

afterAll(closeAll);

describe('refresh › options', () => {
  it.each([
    [{ oauthRefreshTokenProtectionPolicy: 'sometimes' }, "oauth(): option 'oauthRefreshTokenProtectionPolicy' must be 'rotation' or 'none' (got 'sometimes')."],
    [{ oauthRefreshTokenExpiresIn: 0 }, "oauth(): option 'oauthRefreshTokenExpiresIn' must be a positive number of seconds."],
    [{ oauthRefreshTokenExpiresIn: -60 }, "oauth(): option 'oauthRefreshTokenExpiresIn' must be a positive number of seconds."],
    [{ oauthRefreshTokenReuseInterval: -1 }, "oauth(): option 'oauthRefreshTokenReuseInterval' must be a number of seconds, 0 or more."],
  ])('rejects %j at start-up', async (option, message) => {
    const { db, destroy } = await createTestDb();
    try {
      expect(() => oauth({ db, enable: ['refresh'], ...option } as never)).toThrow(message);
    } finally {
      await destroy();
    }
  });

  it('rejects refresh options when the refresh feature is not enabled', async () => {
    const { db, destroy } = await createTestDb();
    try {
      expect(() => oauth({ db, enable: ['client_credentials_grant'], oauthRefreshTokenReuseInterval: 5 } as never)).toThrow(/oauthRefreshTokenReuseInterval/);
    } finally {
      await destroy();
    }
  });

  it('uses configured table and column names for retired tokens and narrowed scopes', async () => {
    const names = {
      oauthRetiredRefreshTokensTable: 'used_refresh_tokens',
      oauthRetiredRefreshTokensTokenHashColumn: 'digest',
      oauthGrantsTokenScopesColumn: 'access_scopes',
    };
    const t = await buildApp({ enable: ['refresh'], ...names });
    const client = await t.createClient();
    const { grant, refreshToken } = await createGrant(t, { applicationId: client.id }, names);
    const narrowed = await refresh(t, client, refreshToken, { scope: 'books.read' });
    expect(narrowed.status).toBe(200);
    expect(await t.db('used_refresh_tokens').select('digest')).toEqual([{ digest: sha256(refreshToken) }]);
    expect(await t.db('oauth_grants').where('id', grant.id).select('access_scopes')).toEqual([{ access_scopes: 'books.read' }]);
    expect((await me(t, narrowed.body.access_token)).body.scopes).toEqual(['books.read']);
    const reused = await refresh(t, client, refreshToken);
    expect(reused.body).toEqual(REFRESH_TOKEN_REUSED);
    expect((await reloadGrant(t, grant.id, names)).revokedAt).toBeInstanceOf(Date);
  });

  it('lets the messages be overridden', async () => {
    const t = await buildApp({ enable: ['refresh'], oauthInvalidRefreshTokenMessage: 'Please sign in again', oauthRefreshTokenReusedMessage: 'Session ended' });
    const client = await t.createClient();
    const { refreshToken } = await createGrant(t, { applicationId: client.id });
    expect((await refresh(t, client, 'nope')).body).toEqual({ error: 'invalid_grant', error_description: 'Please sign in again' });
    await refresh(t, client, refreshToken);
    expect((await refresh(t, client, refreshToken)).body).toEqual({ error: 'invalid_grant', error_description: 'Session ended' });
  });

  it('adds the token scopes column to an existing grants table from before schema versions on migrate, keeping its rows', async () => {
    const t = await buildApp({ enable: ['refresh'] });
    const client = await t.createClient();
    const { grant, refreshToken } = await createGrant(t, { applicationId: client.id });
    await t.db.schema.dropTable('oauth_schema_versions');
    await t.db.schema.alterTable('oauth_grants', (table) => void table.dropColumn('token_scopes'));
    await t.auth.migrate();
    await t.auth.migrate();
    expect(await t.db.schema.hasColumn('oauth_grants', 'token_scopes')).toBe(true);
    expect((await reloadGrant(t, grant.id)).tokenScopes).toBeNull();
    expect((await refresh(t, client, refreshToken, { scope: 'books.read' })).body.scope).toBe('books.read');
  });
});
