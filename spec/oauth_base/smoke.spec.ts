import { buildApp, closeAll, basic } from '../support/build_app';
afterAll(closeAll);
it('smoke', async () => {
  const t = await buildApp({ enable: ['client_credentials_grant'] });
  const c = await t.createClient();
  const r = await t.agent.post(t.path('/token')).set('Authorization', basic(c.clientId, c.clientSecret)).type('form').send({ grant_type: 'client_credentials', scope: 'books.read' });
  console.log(r.status, r.headers, r.body);
  const r2 = await t.agent.get('/api/books').set('Authorization', `Bearer ${r.body.access_token}`);
  console.log(r2.status, r2.body);
  const m = await t.agent.get(t.path('/.well-known/oauth-authorization-server'));
  console.log(m.status, m.body);
});
