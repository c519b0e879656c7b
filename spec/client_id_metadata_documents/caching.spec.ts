import { consentPage, setupWithClock, REDIRECT_URI, useDocumentServer } from './support';

const docs = useDocumentServer();

let n = 0;
const fresh = (name: string) => `/cache/${name}-${++n}.json`;

describe('client_id_metadata_documents › caching', () => {
  it('fetches a document once for several requests, and again after its max-age', async () => {
    const { t, clock } = await setupWithClock();
    const path = fresh('max-age');
    const clientId = docs.client(path, {}, { headers: { 'cache-control': 'max-age=300' } });
    for (let i = 0; i < 3; i++) expect((await consentPage(t, clientId)).status).toBe(200);
    expect(docs.count(path)).toBe(1);
    clock.advance(299);
    expect((await consentPage(t, clientId)).status).toBe(200);
    expect(docs.count(path)).toBe(1);
    clock.advance(2);
    expect((await consentPage(t, clientId)).status).toBe(200);
    expect(docs.count(path)).toBe(2);
  });

  it('makes concurrent first requests share one fetch and one application row', async () => {
    const { t } = await setupWithClock();
    const path = fresh('concurrent');
    const clientId = docs.client(path, {}, { delayMs: 100 });
    const answers = await Promise.all([1, 2, 3, 4].map(() => consentPage(t, clientId)));
    expect(answers.map((r) => r.status)).toEqual([200, 200, 200, 200]);
    expect(docs.count(path)).toBe(1);
    expect(await t.db('oauth_applications').where({ client_id: clientId }).select('id')).toHaveLength(1);
  });

  it('keeps a document at least oauthClientIdMetadataDocumentMinCacheExpiresIn, even with no-store', async () => {
    const { t, clock } = await setupWithClock({ oauthClientIdMetadataDocumentMinCacheExpiresIn: 30 });
    const path = fresh('no-store');
    const clientId = docs.client(path, {}, { headers: { 'cache-control': 'no-store' } });
    await consentPage(t, clientId);
    clock.advance(29);
    await consentPage(t, clientId);
    expect(docs.count(path)).toBe(1);
    clock.advance(2);
    await consentPage(t, clientId);
    expect(docs.count(path)).toBe(2);
  });

  it('keeps a document at most oauthClientIdMetadataDocumentMaxCacheExpiresIn, whatever its max-age', async () => {
    const { t, clock } = await setupWithClock({ oauthClientIdMetadataDocumentMaxCacheExpiresIn: 600 });
    const path = fresh('capped');
    const clientId = docs.client(path, {}, { headers: { 'cache-control': 'max-age=31536000' } });
    await consentPage(t, clientId);
    clock.advance(601);
    await consentPage(t, clientId);
    expect(docs.count(path)).toBe(2);
  });

  it('uses oauthClientIdMetadataDocumentCacheExpiresIn for a document without cache headers', async () => {
    const { t, clock } = await setupWithClock({ oauthClientIdMetadataDocumentCacheExpiresIn: 100 });
    const path = fresh('default');
    const clientId = docs.client(path);
    await consentPage(t, clientId);
    clock.advance(99);
    await consentPage(t, clientId);
    expect(docs.count(path)).toBe(1);
    clock.advance(2);
    await consentPage(t, clientId);
    expect(docs.count(path)).toBe(2);
  });

  it('updates the application row when a refetched document changed, and only then', async () => {
    const { t, clock } = await setupWithClock({ oauthClientIdMetadataDocumentCacheExpiresIn: 60 });
    const path = fresh('changed');
    const clientId = docs.client(path, { client_name: 'Old name' });
    expect((await consentPage(t, clientId)).text).toContain('The application Old name would like');
    const before = await t.auth.applications.get(clientId);
    clock.advance(61);
    await consentPage(t, clientId);
    expect(await t.auth.applications.get(clientId)).toEqual(before);
    docs.client(path, { client_name: 'New name', redirect_uris: [REDIRECT_URI, 'https://docs-app.example/other'] });
    clock.advance(61);
    expect((await consentPage(t, clientId)).text).toContain('The application New name would like');
    const after = await t.auth.applications.get(clientId);
    expect(after).toMatchObject({ id: before.id, name: 'New name', redirectUris: [REDIRECT_URI, 'https://docs-app.example/other'] });
    expect(after.metadataDocumentHash).not.toBe(before.metadataDocumentHash);
    expect(docs.count(path)).toBe(3);
  });

  it('remembers a failure for oauthClientIdMetadataDocumentFailureBackoff, doubling on each further failure', async () => {
    const { t, clock } = await setupWithClock({ oauthClientIdMetadataDocumentFailureBackoff: 10, oauthClientIdMetadataDocumentMaxFailureBackoff: 300 });
    const path = fresh('failing');
    const clientId = docs.serve(path, { status: 500, body: {} });
    expect((await consentPage(t, clientId)).status).toBe(400);
    expect((await consentPage(t, clientId)).status).toBe(400);
    expect(docs.count(path)).toBe(1);
    clock.advance(11);
    expect((await consentPage(t, clientId)).status).toBe(400);
    expect(docs.count(path)).toBe(2);
    clock.advance(11);
    expect((await consentPage(t, clientId)).status).toBe(400);
    expect(docs.count(path)).toBe(2);
    clock.advance(10);
    docs.client(path);
    expect((await consentPage(t, clientId)).status).toBe(200);
    expect(docs.count(path)).toBe(3);
  });
});
