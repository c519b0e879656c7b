import request from 'supertest';
import type { TestApp } from '../support/build_app';
import { expectError, INVALID_CLIENT } from '../support/expect_oauth_error';
import { insertGrant } from '../support/token_fixtures';
import { errorPage, pkcePair } from '../authorization_code_grant/flow';
import { consentPage, setupWithClock, REDIRECT_URI, useDocumentServer } from './support';

const docs = useDocumentServer();

/** The error page of an unusable client id, and the reason logged for it. */
function expectRefused(t: TestApp, res: request.Response, reason: string) {
  expect(res.status).toBe(400);
  expect(res.headers.location).toBeUndefined();
  expect(errorPage(res.text)).toEqual({ error: 'invalid_request', description: "Invalid or missing 'client_id'" });
  expect(t.logger.lines.some((l) => l.includes(`(${reason})`))).toBe(true);
}

const token = (t: TestApp, clientId: string) =>
  request(t.app).post(t.path('/token')).type('form').send({ grant_type: 'authorization_code', client_id: clientId, code: 'x', redirect_uri: REDIRECT_URI, code_verifier: pkcePair().verifier });

async function appCount(t: TestApp): Promise<number> {
  return Number(((await t.db('oauth_applications').count({ n: '*' })) as { n: unknown }[])[0]!.n);
}

let n = 0;
const fresh = (name: string) => `/review/${name}-${++n}.json`;

describe('client_id_metadata_documents › fields within their columns', () => {
  it('refuses a document whose client_uri is longer than its column (255) at /authorize and /token, and writes no row', async () => {
    const { t } = await setupWithClock();
    const path = fresh('long-client-uri');
    const clientId = docs.client(path, { client_uri: `https://docs-app.example/${'a'.repeat(240)}` });
    expectRefused(t, await consentPage(t, clientId), 'invalid_client_metadata_document');
    expectError(await token(t, clientId), 401, INVALID_CLIENT);
    expect(await appCount(t)).toBe(0);
  });
});

describe('client_id_metadata_documents › fetch limits', () => {
  it('oauthClientIdMetadataDocumentRateLimit: a source over its fetches of new documents is refused without a fetch; cached documents still serve it', async () => {
    const { t } = await setupWithClock({ oauthClientIdMetadataDocumentRateLimit: { max: 2, windowSeconds: 60 } });
    const paths = [fresh('rate'), fresh('rate'), fresh('rate')];
    const ids = paths.map((p) => docs.client(p));
    expect((await consentPage(t, ids[0]!)).status).toBe(200);
    expect((await consentPage(t, ids[1]!)).status).toBe(200);
    expectRefused(t, await consentPage(t, ids[2]!), 'client_metadata_document_unavailable');
    expectError(await token(t, ids[2]!), 401, INVALID_CLIENT);
    expect(docs.count(paths[2]!)).toBe(0);
    expect(await appCount(t)).toBe(2);
    // Cached: no fetch, not counted.
    expect((await consentPage(t, ids[0]!)).status).toBe(200);
    expect(docs.count(paths[0]!)).toBe(1);
  });

  it('oauthClientIdMetadataDocumentRateLimit: the window ends, and fetches resume', async () => {
    const { t, clock } = await setupWithClock({ oauthClientIdMetadataDocumentRateLimit: { max: 1, windowSeconds: 60 } });
    const a = docs.client(fresh('window'));
    const bPath = fresh('window');
    const b = docs.client(bPath);
    expect((await consentPage(t, a)).status).toBe(200);
    expectRefused(t, await consentPage(t, b), 'client_metadata_document_unavailable');
    clock.advance(61);
    expect((await consentPage(t, b)).status).toBe(200);
    expect(docs.count(bPath)).toBe(1);
  });

  it('has a default rate limit', async () => {
    const { t } = await setupWithClock();
    const ids = Array.from({ length: 21 }, () => docs.client(fresh('default')));
    const statuses: number[] = [];
    for (const id of ids) statuses.push((await consentPage(t, id)).status);
    expect(statuses.slice(0, 20).every((s) => s === 200)).toBe(true);
    expect(statuses[20]).toBe(400);
  });

  it('oauthClientIdMetadataDocumentMaxConcurrentFetches: a fetch beyond the cap is refused, not queued, and not remembered as a failure', async () => {
    const { t } = await setupWithClock({ oauthClientIdMetadataDocumentMaxConcurrentFetches: 1 });
    const slowPath = fresh('slow');
    const slow = docs.client(slowPath, {}, { delayMs: 1000 });
    const otherPath = fresh('other');
    const other = docs.client(otherPath);
    const first = consentPage(t, slow).then((r) => r);
    // The slow fetch is in flight once its server has the request.
    while (docs.count(slowPath) === 0) await new Promise((r) => setTimeout(r, 10));
    const second = await consentPage(t, other);
    expectRefused(t, second, 'client_metadata_document_unavailable');
    expect(docs.count(otherPath)).toBe(0);
    expect((await first).status).toBe(200);
    expect((await consentPage(t, other)).status).toBe(200);
  });

  it('refuses a bad option value', async () => {
    await expect(setupWithClock({ oauthClientIdMetadataDocumentRateLimit: { max: 0, windowSeconds: 60 } })).rejects.toThrow(/oauthClientIdMetadataDocumentRateLimit/);
    await expect(setupWithClock({ oauthClientIdMetadataDocumentMaxConcurrentFetches: 0 })).rejects.toThrow(/oauthClientIdMetadataDocumentMaxConcurrentFetches/);
    await expect(setupWithClock({ oauthClientIdMetadataDocumentFetchTimeout: 0 })).rejects.toThrow(
      "oauth(): option 'oauthClientIdMetadataDocumentFetchTimeout' must be a number of milliseconds, more than 0; got 0.",
    );
    await expect(setupWithClock({ oauthClientIdMetadataDocumentFetchTimeout: 3_000_000_000 })).rejects.toThrow(
      "oauth(): option 'oauthClientIdMetadataDocumentFetchTimeout' must be at most 2147483647 (the longest delay a Node timer takes); got 3000000000.",
    );
  });
});

describe('client_id_metadata_documents › purge', () => {
  it('auth.purge() deletes the rows of metadata-document clients made before the cut-off that no grant references; the next use makes them again', async () => {
    const { t, clock } = await setupWithClock();
    const unused = docs.client(fresh('unused'));
    const used = docs.client(fresh('used'));
    const recent = docs.client(fresh('recent'));
    expect((await consentPage(t, unused)).status).toBe(200);
    expect((await consentPage(t, used)).status).toBe(200);
    const registered = await t.auth.createApplication({ name: 'Registered', redirectUri: [REDIRECT_URI], scopes: ['books.read'], tokenEndpointAuthMethod: 'none', grantTypes: ['authorization_code'] });
    const usedApp = (await t.auth.applications.get(used))!;
    await insertGrant(t, { applicationId: usedApp.id, createdAt: clock.now() });
    clock.advance(10);
    const cutoff = clock.now();
    clock.advance(10);
    expect((await consentPage(t, recent)).status).toBe(200);

    const counts = await t.auth.purge({ olderThan: cutoff });
    expect(counts.metadataDocumentClients).toBe(1);
    await expect(t.auth.applications.get(unused)).rejects.toThrow(/unknown client id/);
    expect(Number(((await t.db('oauth_applications').where({ client_id: unused }).count({ n: '*' })) as { n: unknown }[])[0]!.n)).toBe(0);
    expect(await t.auth.applications.get(used)).toBeDefined();
    expect(await t.auth.applications.get(recent)).toBeDefined();
    expect(await t.auth.applications.get(registered.clientId)).toBeDefined();

    expect((await consentPage(t, unused)).status).toBe(200);
    expect(await t.auth.applications.get(unused)).toMatchObject({ clientId: unused, name: 'Docs App' });
    expect((await t.auth.purge({ olderThan: cutoff })).metadataDocumentClients).toBe(0);
  });
});
