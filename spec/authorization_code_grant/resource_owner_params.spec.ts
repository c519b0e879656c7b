import type { OAuthContext } from '../../lib';
import { basic, buildApp, closeAll } from '../support/build_app';
import { ISSUER, obtainCode, testLogin } from './flow';

afterAll(closeAll);

const REDIRECT = 'https://client.example/cb';

describe('authorization_code_grant › resourceOwnerParams (extra grant columns)', () => {
  it('reads the host’s extra columns back into ctx.grant.extra at code exchange and at refresh', async () => {
    const seen: string[] = [];
    const record = (hook: string) => async (ctx: OAuthContext) => {
      seen.push(`${ctx.params.grant_type} ${hook} ${JSON.stringify(ctx.grant?.extra ?? null)}`);
    };
    const t = await buildApp(
      {
        enable: ['authorization_code_grant', 'refresh'],
        issuer: ISSUER,
        resourceOwnerParams: () => ({ tenant_id: 't1' }),
        beforeToken: record('beforeToken'),
        afterToken: record('afterToken'),
        beforeRefreshToken: record('beforeRefreshToken'),
      },
      { setup: testLogin },
    );
    // The host's own migration adds the column.
    await t.db.schema.alterTable('oauth_grants', (table) => void table.string('tenant_id'));
    const { clientId, clientSecret } = await t.createClient({ redirectUri: [REDIRECT] });
    const code = await obtainCode(t, { client_id: clientId, redirect_uri: REDIRECT, response_type: 'code', scope: 'books.read' });
    const token = (body: Record<string, string>) => t.agent.post(t.path('/token')).set('Authorization', basic(clientId, clientSecret)).type('form').send(body);

    const exchanged = await token({ grant_type: 'authorization_code', code, redirect_uri: REDIRECT });
    expect(exchanged.status).toBe(200);
    expect(exchanged.body).toEqual({ access_token: expect.any(String), token_type: 'Bearer', expires_in: 3600, refresh_token: expect.any(String), scope: 'books.read' });
    const refreshed = await token({ grant_type: 'refresh_token', refresh_token: exchanged.body.refresh_token });
    expect(refreshed.status).toBe(200);
    expect(refreshed.body).toEqual({ access_token: expect.any(String), token_type: 'Bearer', expires_in: 3600, refresh_token: expect.any(String), scope: 'books.read' });

    expect(seen).toEqual([
      'authorization_code beforeToken {"tenant_id":"t1"}',
      'authorization_code afterToken {"tenant_id":"t1"}',
      // The refresh grant looks its grant up inside the transaction, after beforeToken.
      'refresh_token beforeToken null',
      'refresh_token beforeRefreshToken {"tenant_id":"t1"}',
      'refresh_token afterToken {"tenant_id":"t1"}',
    ]);
    const [row] = await t.db('oauth_grants').select('tenant_id');
    expect(row).toEqual({ tenant_id: 't1' });
  });

  it('gives an empty extra when the host added no column', async () => {
    let extra: unknown;
    const t = await buildApp({ enable: ['authorization_code_grant'], issuer: ISSUER, beforeToken: async (ctx: OAuthContext) => void (extra = ctx.grant?.extra) }, { setup: testLogin });
    const { clientId, clientSecret } = await t.createClient({ redirectUri: [REDIRECT] });
    const code = await obtainCode(t, { client_id: clientId, redirect_uri: REDIRECT, response_type: 'code', scope: 'books.read' });
    const res = await t.agent.post(t.path('/token')).set('Authorization', basic(clientId, clientSecret)).type('form').send({ grant_type: 'authorization_code', code, redirect_uri: REDIRECT });
    expect(res.status).toBe(200);
    expect(extra).toEqual({});
  });
});
