import { buildApp, closeAll, type TestApp } from '../support/build_app';
import { isPostgres } from '../support/db';
import { insertGrant, storeOf } from '../support/token_fixtures';
import { testClock } from '../refresh/helpers';
import { OAuthConfigurationError, PurgeAlreadyRunningError, type OAuthError, type PurgeCounts } from '../../lib';
import { PurgeStore, expiredJtiQuery, purgeableGrantQueries, type PurgeableGrant } from '../../lib/store/purge';
import { resolveSchema } from '../../lib/store/schema';

const START = Date.parse('2030-01-01T00:00:00.000Z');
const RETENTION = 604800;
const ISSUER = 'https://as.example';
const ENCRYPTION_KEY = 'a1'.repeat(32);

afterEach(async () => {
  jest.restoreAllMocks();
  await closeAll();
});

interface Setup {
  t: TestApp;
  clock: ReturnType<typeof testClock>;
  appId: number;
  /** now − oauthPurgeRetention, in ms. */
  cutoff: number;
  errors: OAuthError[];
}

async function setup(options: Record<string, unknown> = {}): Promise<Setup> {
  const clock = testClock(START);
  const errors: OAuthError[] = [];
  const t = await buildApp({
    enable: ['refresh', 'jwt_bearer', 'client_credentials_grant'],
    issuer: ISSUER,
    oauthClientSecretEncryptionKey: ENCRYPTION_KEY,
    now: clock.now,
    onError: (_ctx: unknown, err: OAuthError) => void errors.push(err),
    ...options,
  });
  const { id } = await t.createClient();
  t.logger.lines.length = 0;
  return { t, clock, appId: id, cutoff: START - RETENTION * 1000, errors };
}

/** A grant row: an access token (default), a refresh token (when `refresh` is given), or a code only. */
async function grant(s: Setup, f: { expiresIn: number; refresh?: number | null; revokedAt?: number; code?: boolean; accessToken?: boolean }): Promise<number> {
  const issued = await insertGrant(s.t, {
    applicationId: s.appId,
    createdAt: new Date(START - 60 * 86400 * 1000),
    expiresIn: new Date(f.expiresIn),
    accessToken: f.accessToken ?? true,
    refreshToken: f.refresh !== undefined,
    refreshTokenExpiresIn: f.refresh === undefined || f.refresh === null ? null : new Date(f.refresh),
    code: f.code,
  });
  if (f.revokedAt !== undefined) await storeOf(s.t).grants.revoke(issued.grant.id, new Date(f.revokedAt));
  return issued.grant.id;
}

async function grantIds(t: TestApp): Promise<number[]> {
  return (await t.db('oauth_grants').select('id').orderBy('id')).map((r: { id: unknown }) => Number(r.id));
}

async function retiredGrantIds(t: TestApp): Promise<number[]> {
  return (await t.db('oauth_retired_refresh_tokens').select('oauth_grant_id').orderBy('id')).map((r: { oauth_grant_id: unknown }) => Number(r.oauth_grant_id));
}

async function jtiNames(t: TestApp): Promise<string[]> {
  return (await t.db('oauth_jwt_jtis').select('jti').orderBy('jti')).map((r: { jti: string }) => r.jti);
}

const NONE: PurgeCounts = { grants: 0, codes: 0, retiredRefreshTokens: 0, jtis: 0, metadataDocumentClients: 0 };

/** Waits, on real timers, until `cond` holds; gives up after 10 s so a failed spec stops polling. */
async function until(cond: () => boolean): Promise<void> {
  const deadline = Date.now() + 10_000;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error('until(): the condition never held');
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

/** A promise resolved by hand. */
function gate(): { promise: Promise<void>; open(): void } {
  let open!: () => void;
  const promise = new Promise<void>((resolve) => (open = resolve));
  return { promise, open };
}

/** Records the batches the purge selects (each selection runs in its batch's own transaction). */
function spyBatches(before?: (batch: number) => Promise<void> | void): { batches: PurgeableGrant[][] } {
  const original = PurgeStore.prototype.purgeableGrants;
  const seen = { batches: [] as PurgeableGrant[][] };
  jest.spyOn(PurgeStore.prototype, 'purgeableGrants').mockImplementation(async function (this: PurgeStore, cutoff: Date, limit: number) {
    await before?.(seen.batches.length + 1);
    const found = await original.call(this, cutoff, limit);
    seen.batches.push(found);
    return found;
  });
  return seen;
}

describe('oauth_base › purge', () => {
  describe('what it deletes', () => {
    it('deletes grants whose access and refresh tokens all expired before now − oauthPurgeRetention, and keeps those at the cut-off', async () => {
      const s = await setup();
      const { cutoff } = s;
      await grant(s, { expiresIn: cutoff - 1 });
      const accessOnlyAtCutoff = await grant(s, { expiresIn: cutoff });
      await grant(s, { expiresIn: cutoff - 86400_000, refresh: cutoff - 1 });
      const refreshAtCutoff = await grant(s, { expiresIn: cutoff - 86400_000, refresh: cutoff });
      const refreshNeverExpires = await grant(s, { expiresIn: cutoff - 86400_000, refresh: null });
      const accessOutlivesRefresh = await grant(s, { expiresIn: cutoff, refresh: cutoff - 86400_000 });
      const live = await grant(s, { expiresIn: START + 3600_000, refresh: START + 86400_000 });

      await expect(s.t.auth.purge()).resolves.toEqual({ ...NONE, grants: 2 });
      expect(await grantIds(s.t)).toEqual([accessOnlyAtCutoff, refreshAtCutoff, refreshNeverExpires, accessOutlivesRefresh, live]);
    });

    it('deletes grants revoked before the cut-off, live tokens or not, and keeps those revoked at it', async () => {
      const s = await setup();
      await grant(s, { expiresIn: START + 3600_000, refresh: START + 86400_000, revokedAt: s.cutoff - 1 });
      const revokedAtCutoff = await grant(s, { expiresIn: START + 3600_000, refresh: START + 86400_000, revokedAt: s.cutoff });
      await expect(s.t.auth.purge()).resolves.toEqual({ ...NONE, grants: 1 });
      expect(await grantIds(s.t)).toEqual([revokedAtCutoff]);
    });

    it('deletes unused codes whose lifetime ended before the cut-off, counted as codes; a redeemed one is a grant', async () => {
      const s = await setup();
      await grant(s, { code: true, accessToken: false, expiresIn: s.cutoff - 1 });
      const codeAtCutoff = await grant(s, { code: true, accessToken: false, expiresIn: s.cutoff });
      await grant(s, { code: true, expiresIn: s.cutoff - 1 });
      await expect(s.t.auth.purge()).resolves.toEqual({ ...NONE, grants: 1, codes: 1 });
      expect(await grantIds(s.t)).toEqual([codeAtCutoff]);
    });

    it('deletes the retired refresh tokens of the grants it deletes, and only those', async () => {
      const s = await setup();
      const purged = await grant(s, { expiresIn: s.cutoff - 86400_000, refresh: s.cutoff - 1 });
      const kept = await grant(s, { expiresIn: s.cutoff - 86400_000, refresh: s.cutoff });
      const store = storeOf(s.t);
      await store.retiredRefreshTokens.insert(purged, 'retired-1', new Date(s.cutoff - 3 * 86400_000));
      await store.retiredRefreshTokens.insert(purged, 'retired-2', new Date(s.cutoff - 2 * 86400_000));
      await store.retiredRefreshTokens.insert(kept, 'retired-3', new Date(s.cutoff - 2 * 86400_000));
      await expect(s.t.auth.purge()).resolves.toEqual({ ...NONE, grants: 1, retiredRefreshTokens: 2 });
      expect(await grantIds(s.t)).toEqual([kept]);
      expect(await retiredGrantIds(s.t)).toEqual([kept]);
    });

    it('deletes jtis whose assertion expired before now (no retention: exp already refuses them), keeping one expiring now', async () => {
      const s = await setup();
      const store = storeOf(s.t);
      await store.jtis.use('issuer-a', 'expired', new Date(START - 1));
      await store.jtis.use('issuer-a', 'expires-now', new Date(START));
      await store.jtis.use('issuer-b', 'expired', new Date(START - 3600_000));
      await expect(s.t.auth.purge()).resolves.toEqual({ ...NONE, jtis: 2 });
      expect(await jtiNames(s.t)).toEqual(['expires-now']);
    });

    it('takes olderThan as the cut-off of grants, codes and jtis alike', async () => {
      const s = await setup();
      const olderThan = START - 3600_000;
      await grant(s, { expiresIn: olderThan - 1 });
      const atOlderThan = await grant(s, { expiresIn: olderThan });
      await grant(s, { code: true, accessToken: false, expiresIn: olderThan - 1 });
      const store = storeOf(s.t);
      await store.jtis.use('issuer-a', 'before', new Date(olderThan - 1));
      await store.jtis.use('issuer-a', 'after', new Date(olderThan + 1));
      await expect(s.t.auth.purge({ olderThan: new Date(olderThan) })).resolves.toEqual({ grants: 1, codes: 1, retiredRefreshTokens: 0, jtis: 1, metadataDocumentClients: 0 });
      expect(await grantIds(s.t)).toEqual([atOlderThan]);
      expect(await jtiNames(s.t)).toEqual(['after']);
    });

    it('follows oauthPurgeRetention, and the clock of the now method', async () => {
      const s = await setup({ oauthPurgeRetention: 60 });
      await grant(s, { expiresIn: START - 60_001 });
      const atCutoff = await grant(s, { expiresIn: START - 60_000 });
      await expect(s.t.auth.purge()).resolves.toEqual({ ...NONE, grants: 1 });
      expect(await grantIds(s.t)).toEqual([atCutoff]);
      s.clock.advance(1);
      await expect(s.t.auth.purge()).resolves.toEqual({ ...NONE, grants: 1 });
      expect(await grantIds(s.t)).toEqual([]);
    });

    it('touches only the tables of the enabled features', async () => {
      const clock = testClock(START);
      const t = await buildApp({ enable: ['client_credentials_grant'], issuer: ISSUER, now: clock.now });
      const { id } = await t.createClient();
      await insertGrant(t, { applicationId: id, expiresIn: new Date(START - RETENTION * 1000 - 1), refreshToken: false });
      expect(await t.db.schema.hasTable('oauth_retired_refresh_tokens')).toBe(false);
      expect(await t.db.schema.hasTable('oauth_jwt_jtis')).toBe(false);
      await expect(t.auth.purge()).resolves.toEqual({ ...NONE, grants: 1 });
    });
  });

  describe('batches', () => {
    it('works in transactions of batchSize rows: 5 rows in batches of 2 are 3 batches', async () => {
      const s = await setup();
      for (let i = 0; i < 5; i++) await grant(s, { expiresIn: s.cutoff - 1 - i });
      const seen = spyBatches();
      await expect(s.t.auth.purge({ batchSize: 2 })).resolves.toEqual({ ...NONE, grants: 5 });
      expect(seen.batches.map((b) => b.length)).toEqual([2, 2, 1]);
      expect(await grantIds(s.t)).toEqual([]);
    });

    it('takes its batch size from oauthPurgeBatchSize', async () => {
      const s = await setup({ oauthPurgeBatchSize: 3 });
      for (let i = 0; i < 5; i++) await grant(s, { expiresIn: s.cutoff - 1, revokedAt: i % 2 ? s.cutoff - 1 : undefined });
      const seen = spyBatches();
      await expect(s.t.auth.purge()).resolves.toEqual({ ...NONE, grants: 5 });
      expect(seen.batches.map((b) => b.length)).toEqual([3, 2]);
    });

    it('a batch that fails mid-way leaves every row of that batch in place, earlier batches deleted', async () => {
      const s = await setup();
      const ids: number[] = [];
      for (let i = 0; i < 5; i++) {
        ids.push(await grant(s, { expiresIn: s.cutoff - 86400_000, refresh: s.cutoff - 1 }));
        await storeOf(s.t).retiredRefreshTokens.insert(ids[i]!, `retired-${i}`, new Date(s.cutoff - 2 * 86400_000));
      }
      const seen = spyBatches();
      const original = PurgeStore.prototype.deleteGrants;
      const failure = new Error('disk trouble in batch 2');
      jest.spyOn(PurgeStore.prototype, 'deleteGrants').mockImplementation(async function (this: PurgeStore, batch: readonly number[]) {
        // Batch 2 has already deleted its retired refresh tokens when its grants fail.
        if (seen.batches.length === 2 && batch.length > 0) throw failure;
        return original.call(this, batch);
      });
      await expect(s.t.auth.purge({ batchSize: 2 })).rejects.toBe(failure);
      const first = seen.batches[0]!.map((g) => g.id);
      const rest = ids.filter((id) => !first.includes(id));
      expect(first).toHaveLength(2);
      expect(await grantIds(s.t)).toEqual(rest);
      expect(await retiredGrantIds(s.t)).toEqual(rest);

      jest.restoreAllMocks();
      await expect(s.t.auth.purge({ batchSize: 2 })).resolves.toEqual({ ...NONE, grants: 3, retiredRefreshTokens: 3 });
    });
  });

  describe('one at a time', () => {
    it('rejects a second purge while one runs with PurgeAlreadyRunningError; the first completes', async () => {
      const s = await setup();
      await grant(s, { expiresIn: s.cutoff - 1 });
      const first = s.t.auth.purge();
      const second = s.t.auth.purge();
      await expect(second).rejects.toThrow(PurgeAlreadyRunningError);
      await expect(second).rejects.toMatchObject({ code: 'PURGE_ALREADY_RUNNING', message: expect.stringMatching(/^purge\(\): a purge is already running on this instance/) });
      await expect(first).resolves.toEqual({ ...NONE, grants: 1 });
      await expect(s.t.auth.purge()).resolves.toEqual(NONE);
    });
  });

  // SQLite runs one write transaction at a time (the writer), so there a batch and a request never hold rows at once.
  if (isPostgres) {
    describe('on PostgreSQL', () => {
      it('skips rows a request holds locked rather than wait for it (FOR UPDATE SKIP LOCKED), and takes them next time', async () => {
        const s = await setup();
        const held = await grant(s, { expiresIn: s.cutoff - 1 });
        await grant(s, { expiresIn: s.cutoff - 1 });
        const release = gate();
        let locked!: () => void;
        const lockedNow = new Promise<void>((resolve) => (locked = resolve));
        const request = s.t.db.transaction(async (trx) => {
          await trx('oauth_grants').where('id', held).forUpdate();
          locked();
          await release.promise;
        });
        await lockedNow;
        await expect(s.t.auth.purge()).resolves.toEqual({ ...NONE, grants: 1 });
        expect(await grantIds(s.t)).toEqual([held]);
        release.open();
        await request;
        await expect(s.t.auth.purge()).resolves.toEqual({ ...NONE, grants: 1 });
        expect(await grantIds(s.t)).toEqual([]);
      });
    });
  }

  describe('abort', () => {
    it('an aborted signal stops the purge after its current batch; it resolves with the counts so far', async () => {
      const s = await setup();
      for (let i = 0; i < 5; i++) await grant(s, { expiresIn: s.cutoff - 1 });
      const controller = new AbortController();
      spyBatches((batch) => {
        if (batch === 1) controller.abort();
      });
      await expect(s.t.auth.purge({ batchSize: 2, signal: controller.signal })).resolves.toEqual({ ...NONE, grants: 2 });
      expect(await grantIds(s.t)).toHaveLength(3);
    });

    it('a signal aborted beforehand deletes nothing', async () => {
      const s = await setup();
      await grant(s, { expiresIn: s.cutoff - 1 });
      const seen = spyBatches();
      await expect(s.t.auth.purge({ signal: AbortSignal.abort() })).resolves.toEqual(NONE);
      expect(seen.batches).toEqual([]);
      expect(await grantIds(s.t)).toHaveLength(1);
    });
  });

  describe('startPurging and close', () => {
    it('purges on its timer, logging the counts, until close()', async () => {
      const s = await setup();
      await grant(s, { expiresIn: s.cutoff - 1 });
      const seen = spyBatches();
      s.t.auth.startPurging({ every: 0.01 });
      await until(() => s.t.logger.lines.some((l) => l.startsWith('info purge: done')));
      expect(s.t.logger.lines).toContain(`info purge: done ${JSON.stringify({ ...NONE, grants: 1 })}`);
      expect(await grantIds(s.t)).toEqual([]);
      await until(() => seen.batches.length >= 2);
      await s.t.auth.close();
      const runs = seen.batches.length;
      await new Promise((resolve) => setTimeout(resolve, 50));
      expect(seen.batches.length).toBe(runs);
    });

    it('never overlaps itself: the next run starts only after a slow one ends', async () => {
      const s = await setup();
      const slow = gate();
      let active = 0;
      let most = 0;
      const seen = spyBatches(async (batch) => {
        active++;
        most = Math.max(most, active);
        if (batch === 1) await slow.promise;
        active--;
      });
      s.t.auth.startPurging({ every: 0.001 });
      await until(() => active === 1);
      // Many intervals pass while the first run waits.
      await new Promise((resolve) => setTimeout(resolve, 50));
      expect(seen.batches).toHaveLength(0);
      // A manual purge meanwhile is refused too.
      await expect(s.t.auth.purge()).rejects.toThrow(PurgeAlreadyRunningError);
      slow.open();
      await until(() => seen.batches.length >= 3);
      await s.t.auth.close();
      expect(most).toBe(1);
    });

    it('close() waits for the batch under way, then the purge stops with the counts so far', async () => {
      const s = await setup();
      for (let i = 0; i < 5; i++) await grant(s, { expiresIn: s.cutoff - 1 });
      const slow = gate();
      let inBatch = false;
      spyBatches(async (batch) => {
        if (batch === 1) {
          inBatch = true;
          await slow.promise;
        }
      });
      const purge = s.t.auth.purge({ batchSize: 2 });
      await until(() => inBatch);
      let closed = false;
      const close = s.t.auth.close().then(() => (closed = true));
      await new Promise((resolve) => setImmediate(resolve));
      expect(closed).toBe(false);
      slow.open();
      await close;
      await expect(purge).resolves.toEqual({ ...NONE, grants: 2 });
      expect(await grantIds(s.t)).toHaveLength(3);
      // The instance purges again afterwards.
      await expect(s.t.auth.purge()).resolves.toEqual({ ...NONE, grants: 3 });
    });

    it('reports a failed run to the logger and onError (purge_failed), never throws, and keeps its schedule', async () => {
      const s = await setup();
      await grant(s, { expiresIn: s.cutoff - 1 });
      const original = PurgeStore.prototype.purgeableGrants;
      let calls = 0;
      jest.spyOn(PurgeStore.prototype, 'purgeableGrants').mockImplementation(async function (this: PurgeStore, cutoff: Date, limit: number) {
        if (++calls === 1) throw Object.assign(new Error('no such table: oauth_grants'), { code: 'SQLITE_ERROR' });
        return original.call(this, cutoff, limit);
      });
      s.t.auth.startPurging({ every: 0.01 });
      await until(() => s.t.logger.lines.some((l) => l.startsWith('info purge: done')));
      await s.t.auth.close();
      expect(s.t.logger.lines[0]).toMatch(/^error server_error \(purge_failed\) \{"code":"server_error","reason":"purge_failed",.*"cause":\{"name":"Error","code":"SQLITE_ERROR","message":"no such table: oauth_grants"/);
      expect(s.errors.map((e) => [e.code, e.reason])).toEqual([['server_error', 'purge_failed']]);
      expect(await grantIds(s.t)).toEqual([]);
    });

    it('refuses a second startPurging until close(), and a bad interval', async () => {
      const s = await setup();
      s.t.auth.startPurging({ every: 3600 });
      expect(() => s.t.auth.startPurging({ every: 60 })).toThrow('startPurging(): purging is already scheduled on this instance; call auth.close() before scheduling it again');
      await s.t.auth.close();
      s.t.auth.startPurging({ every: 60 });
      await s.t.auth.close();
      for (const every of [0, -1, Number.NaN, Infinity, '60', 2147484]) {
        expect(() => s.t.auth.startPurging({ every } as never)).toThrow(TypeError);
      }
      expect(() => s.t.auth.startPurging(undefined as never)).toThrow('startPurging(): pass { every: seconds }');
    });

    it('close() without anything running resolves at once', async () => {
      const s = await setup();
      await expect(s.t.auth.close()).resolves.toBeUndefined();
    });
  });

  describe('bad input', () => {
    it('rejects invalid options with a clear error, touching nothing', async () => {
      const s = await setup();
      await grant(s, { expiresIn: s.cutoff - 1 });
      await expect(s.t.auth.purge({ olderThan: new Date(START + 1) })).rejects.toThrow(
        'purge(): olderThan (2030-01-01T00:00:00.001Z) is after now (2030-01-01T00:00:00.000Z): rows whose tokens are still valid are never purged',
      );
      await expect(s.t.auth.purge({ olderThan: new Date(Number.NaN) })).rejects.toThrow('purge(): olderThan must be a valid Date; got Invalid Date');
      await expect(s.t.auth.purge({ olderThan: '2030-01-01' as never })).rejects.toThrow(TypeError);
      for (const batchSize of [0, 1.5, 10001, '10']) {
        await expect(s.t.auth.purge({ batchSize } as never)).rejects.toThrow(`purge(): batchSize must be an integer from 1 to 10000; got ${batchSize}`);
      }
      await expect(s.t.auth.purge({ signal: {} as never })).rejects.toThrow('purge(): signal must be an AbortSignal');
      await expect((s.t.auth.purge as unknown as (p: string) => Promise<unknown>)('/cache')).rejects.toThrow(/it is not Express's router\.purge\(path\) for the HTTP PURGE method/);
      expect(await grantIds(s.t)).toHaveLength(1);
    });

    it.each([
      [{ oauthPurgeRetention: -1 }, "oauth(): option 'oauthPurgeRetention' must be a constant, a number of seconds, 0 or more; got -1."],
      [{ oauthPurgeRetention: () => 60 }, "oauth(): option 'oauthPurgeRetention' must be a constant, a number of seconds, 0 or more; got a function."],
      [{ oauthPurgeBatchSize: 0 }, "oauth(): option 'oauthPurgeBatchSize' must be a constant, an integer from 1 to 10000; got 0."],
      [{ oauthPurgeBatchSize: 20000 }, "oauth(): option 'oauthPurgeBatchSize' must be a constant, an integer from 1 to 10000; got 20000."],
    ])('refuses %p at start-up', async (options, message) => {
      await expect(buildApp({ issuer: ISSUER, ...options })).rejects.toThrow(new OAuthConfigurationError(message));
    });
  });

  describe('indexes', () => {
    it('selects each batch through an index, never a scan of the table', async () => {
      const s = await setup();
      const schema = resolveSchema({});
      const queries = [
        ...purgeableGrantQueries((table) => s.t.db(table), schema, new Date(s.cutoff), 1000),
        // A later selection excludes the ids an earlier one found.
        purgeableGrantQueries((table) => s.t.db(table), schema, new Date(s.cutoff), 1000)[2]!.whereNotIn('id', [1, 2]),
        expiredJtiQuery((table) => s.t.db(table), schema, new Date(START), 1000),
      ];
      for (const q of queries) {
        const { sql, bindings } = q.toSQL();
        if (isPostgres) {
          const plan = await s.t.db.transaction(async (trx) => {
            await trx.raw('set local enable_seqscan = off');
            return (await trx.raw(`explain ${sql}`, bindings as never)).rows.map((r: { 'QUERY PLAN': string }) => r['QUERY PLAN']).join('\n');
          });
          expect(plan).toMatch(/Index/);
          expect(plan).not.toMatch(/Seq Scan/);
        } else {
          const plan = ((await s.t.db.raw(`explain query plan ${sql}`, bindings as never)) as { detail: string }[]).map((r) => r.detail).join('\n');
          expect(plan).toMatch(/USING (COVERING )?INDEX/);
          expect(plan).not.toMatch(/^SCAN /m);
        }
      }
    });
  });
});
