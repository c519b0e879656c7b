import { afterAll, describe, expect, it } from '@jest/globals';
import type { Knex } from 'knex';
import { OAuthError, type OAuthContext } from '../../lib';
import { basic, buildApp, closeAll, type TestApp } from '../support/build_app';

afterAll(closeAll);

const AUDIT = 'host_audit';

/** A table of the host's own, created through the host's knex as a migration of the app would. */
async function withAuditTable(t: TestApp): Promise<void> {
  await t.db.schema.createTable(AUDIT, (table) => {
    table.increments('id');
    table.string('client_id').notNullable();
    table.string('client_name').notNullable();
  });
}

async function token(t: TestApp, client: { clientId: string; clientSecret: string }) {
  return t.agent.post(t.path('/token')).set('Authorization', basic(client.clientId, client.clientSecret)).type('form').send({ grant_type: 'client_credentials' });
}

async function auditRows(t: TestApp): Promise<{ client_id: string; client_name: string }[]> {
  return t.db(AUDIT).select('client_id', 'client_name');
}

describe('oauth_base › ctx.db (a knex handle for hooks)', () => {
  // The default test database is one connection on SQLite (knex's default) and a pool on PostgreSQL.
  it('lets beforeToken read and write through ctx.db inside the token transaction, on a one-connection SQLite pool too', async () => {
    const t = await buildApp({
      enable: ['client_credentials_grant'],
      beforeToken: async (ctx: OAuthContext) => {
        const row = (await ctx.db('oauth_applications').where({ id: ctx.application!.id }).first('client_id', 'name')) as { client_id: string; name: string };
        await ctx.db(AUDIT).insert({ client_id: row.client_id, client_name: row.name });
      },
    });
    await withAuditTable(t);
    const client = await t.createClient({ name: 'Audited app', grantTypes: ['client_credentials'] });
    const res = await token(t, client);
    expect(res.status).toBe(200);
    expect(res.headers['cache-control']).toBe('no-store');
    expect(res.body).toEqual({ access_token: expect.any(String), token_type: 'Bearer', expires_in: 3600, scope: 'books.read books.write' });
    expect(await auditRows(t)).toEqual([{ client_id: client.clientId, client_name: 'Audited app' }]);
  });

  it("rolls the hook's writes back with the request when a later hook refuses it", async () => {
    const t = await buildApp({
      enable: ['client_credentials_grant'],
      beforeToken: async (ctx: OAuthContext) => {
        await ctx.db(AUDIT).insert({ client_id: ctx.application!.clientId, client_name: 'x' });
      },
      afterToken: async () => {
        throw new OAuthError('access_denied', 'Not now', { reason: 'hook_denied' });
      },
    });
    await withAuditTable(t);
    const client = await t.createClient({ grantTypes: ['client_credentials'] });
    const res = await token(t, client);
    expect(res.status).toBe(400);
    expect(res.body).toEqual({ error: 'access_denied', error_description: 'Not now' });
    expect(await auditRows(t)).toEqual([]);
    expect(await t.db('oauth_grants').select('id')).toEqual([]);
  });

  it("is the host's knex outside a transaction", async () => {
    let seen: Knex | undefined;
    const t = await buildApp({
      enable: ['client_credentials_grant'],
      beforeTokenRoute: async (ctx: OAuthContext) => {
        seen = ctx.db;
      },
    });
    const client = await t.createClient({ grantTypes: ['client_credentials'] });
    expect((await token(t, client)).status).toBe(200);
    expect(seen).toBe(t.db);
  });

  it('throws a clear error when a handle is used after its transaction ended', async () => {
    let kept: Knex | undefined;
    const t = await buildApp({
      enable: ['client_credentials_grant'],
      beforeToken: async (ctx: OAuthContext) => {
        kept = ctx.db;
      },
    });
    await withAuditTable(t);
    const client = await t.createClient({ grantTypes: ['client_credentials'] });
    expect((await token(t, client)).status).toBe(200);
    await expect(Promise.resolve().then(() => kept!(AUDIT).insert({ client_id: 'late', client_name: 'late' }))).rejects.toThrow(
      'ctx.db was used after its transaction ended',
    );
    expect(await auditRows(t)).toEqual([]);
  });
});
