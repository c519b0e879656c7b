/**
 * `auth.purge()`, `auth.startPurging()` and the purge's part of `auth.close()` (issue 12): deletes,
 * in batches, the rows nothing can use any more:
 * - grants whose access and refresh tokens all expired, or that were revoked, before the cut-off
 *   (now − `oauthPurgeRetention`, so introspection and refresh-token reuse detection still see
 *   recent ones), with the retired refresh tokens of those grants (`refresh`);
 * - authorization codes never redeemed whose lifetime ended before the cut-off;
 * - jtis whose assertion expired (`jwt_bearer`): replay protection needs them only until then;
 * - application rows of client ID metadata documents made before the cut-off that no grant
 *   references (`client_id_metadata_documents`): anyone can make one by naming a new URL, and the
 *   next use of the client id makes it again from its document.
 *
 * Each batch is one short transaction (select up to `batchSize` grants, delete their retired
 * refresh tokens, then them), committed before the next begins, with a turn of the event loop in
 * between: requests are never held longer than one batch, and on SQLite the writer's group
 * commits go on between batches. A batch that fails rolls back whole; earlier batches stay deleted.
 */
import { systemContext } from './applications';
import { OAuthError } from './errors';
import { OAuthConfigurationError } from './options';
import { report } from './report';
import type { Runtime } from './runtime';
import type { Store } from './store';

/** What one purge deleted, per kind of row. */
export type PurgeCounts = {
  /** Grants whose tokens all expired or that were revoked, before the cut-off. */
  grants: number;
  /** Grant rows that only ever held an authorization code, never redeemed, expired before the cut-off. */
  codes: number;
  /** Rotated-out refresh tokens of the deleted grants (`refresh`). */
  retiredRefreshTokens: number;
  /** Used JWT assertion ids whose assertion has expired (`jwt_bearer`). */
  jtis: number;
  /**
   * Application rows of clients known by their metadata document (`client_id_metadata_documents`),
   * made before the cut-off, that no grant references any more (the next use makes them again).
   */
  metadataDocumentClients: number;
};

/** Options of `auth.purge()`. */
export interface PurgeOptions {
  /**
   * The cut-off: rows whose last token expired (or that were revoked) before this instant are
   * deleted, jtis that expired before it too. Default: now − `oauthPurgeRetention` (jtis: now).
   * Never after now: a token still valid is never purged.
   */
  olderThan?: Date;
  /** Grants (or jtis) per transaction, 1 to 10000. Default: `oauthPurgeBatchSize` (1000). */
  batchSize?: number;
  /**
   * Stops the purge between batches: the batch under way completes, and the purge resolves with
   * the counts so far (check `signal.aborted` to tell a stopped purge from a finished one).
   */
  signal?: AbortSignal;
}

/** Options of `auth.startPurging()`. */
export interface StartPurgingOptions {
  /** Seconds between the end of one purge and the start of the next (fractions allowed, at most 24 days). */
  every: number;
}

/** `purge()` was called while a purge of the same instance was running (its own, or `startPurging()`'s). */
export class PurgeAlreadyRunningError extends Error {
  readonly code = 'PURGE_ALREADY_RUNNING';
  constructor() {
    super('purge(): a purge is already running on this instance (from purge() or startPurging()); wait for it to finish, or stop it with its signal or auth.close()');
    this.name = 'PurgeAlreadyRunningError';
  }
}

/** Bound by the databases' parameter limits (SQLite 32766, PostgreSQL 65535; a jti key takes two). */
export const MAX_PURGE_BATCH_SIZE = 10000;
/** setTimeout's longest delay, in seconds. */
const MAX_EVERY = Math.floor(0x7fffffff / 1000);

const EMPTY: Readonly<PurgeCounts> = Object.freeze({ grants: 0, codes: 0, retiredRefreshTokens: 0, jtis: 0, metadataDocumentClients: 0 });

/** Lets the event loop run (I/O, timers, the SQLite writer's commit) between two batches. */
const nextTurn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

/** The purge of one `oauth()` instance: at most one at a time, optionally on a timer. */
export class Purger {
  private readonly retention: number;
  private readonly batchSize: number;
  private running?: Promise<PurgeCounts>;
  /** Aborted by `close()`: a running purge stops after its current batch. */
  private closing = new AbortController();
  /** The scheduled timer of `startPurging()`, replaced at each run; undefined once stopped. */
  private schedule?: { timer?: NodeJS.Timeout };

  constructor(private readonly rt: Runtime) {
    this.retention = constant(rt, 'oauthPurgeRetention', (v) => v >= 0, 'a number of seconds, 0 or more');
    this.batchSize = constant(rt, 'oauthPurgeBatchSize', (v) => Number.isInteger(v) && v >= 1 && v <= MAX_PURGE_BATCH_SIZE, `an integer from 1 to ${MAX_PURGE_BATCH_SIZE}`);
  }

  /** Deletes what is purgeable now (see the module comment). Rejects at once while another purge runs. */
  async purge(options: PurgeOptions = {}): Promise<PurgeCounts> {
    if (this.running) throw new PurgeAlreadyRunningError();
    const run = this.run(options);
    this.running = run;
    try {
      return await run;
    } finally {
      if (this.running === run) this.running = undefined;
    }
  }

  /**
   * Runs `purge()` every `every` seconds, counted from the end of the previous run, so runs never
   * overlap; a tick that finds a purge running waits for the next. The timer does not keep the
   * process alive. A failure is reported to the logger and `onError`, never thrown.
   */
  startPurging(options: StartPurgingOptions): void {
    if (options === null || typeof options !== 'object') throw new TypeError('startPurging(): pass { every: seconds }');
    const { every } = options;
    if (typeof every !== 'number' || !Number.isFinite(every) || every <= 0 || every > MAX_EVERY) {
      throw new TypeError(`startPurging(): every must be a number of seconds above 0 and at most ${MAX_EVERY}; got ${String(every)}`);
    }
    if (this.schedule) throw new Error('startPurging(): purging is already scheduled on this instance; call auth.close() before scheduling it again');
    const schedule: { timer?: NodeJS.Timeout } = {};
    this.schedule = schedule;
    const tick = async (): Promise<void> => {
      schedule.timer = undefined;
      if (!this.running) {
        try {
          const counts = await this.purge();
          this.rt.logger.info('purge: done', { ...counts });
        } catch (e) {
          report(this.rt, undefined, new OAuthError('server_error', 'Purge failed', { reason: 'purge_failed', cause: e }));
        }
      }
      if (this.schedule === schedule) schedule.timer = setTimeout(() => void tick(), every * 1000).unref();
    };
    schedule.timer = setTimeout(() => void tick(), every * 1000).unref();
  }

  /** Stops the timer of `startPurging()`, and a running purge after its current batch; resolves once it has stopped. */
  async close(): Promise<void> {
    const schedule = this.schedule;
    this.schedule = undefined;
    if (schedule?.timer) clearTimeout(schedule.timer);
    const running = this.running;
    if (!running) return;
    const closing = this.closing;
    closing.abort();
    try {
      await running;
    } catch {
      // The purge's own caller gets its error (a timed purge has reported it).
    } finally {
      if (this.closing === closing) this.closing = new AbortController();
    }
  }

  private async run(options: PurgeOptions): Promise<PurgeCounts> {
    const { olderThan, batchSize, signal } = checkOptions(options);
    const closing = this.closing.signal;
    const stopped = () => closing.aborted || signal?.aborted === true;
    const counts = { ...EMPTY };
    if (stopped()) return counts;
    const rt = this.rt;
    const now = systemContext(rt).now();
    if (olderThan && olderThan.getTime() > now.getTime()) {
      throw new RangeError(`purge(): olderThan (${olderThan.toISOString()}) is after now (${now.toISOString()}): rows whose tokens are still valid are never purged`);
    }
    const cutoff = olderThan ?? new Date(now.getTime() - this.retention * 1000);
    const size = batchSize ?? this.batchSize;
    const retired = rt.tables.has('retiredRefreshTokens');

    await inBatches(rt, size, stopped, counts, async (store) => {
      const found = await store.purge.purgeableGrants(cutoff, size);
      const ids = found.map((g) => g.id);
      return {
        found: found.length,
        // Dependents first: a grant never goes before its retired refresh tokens.
        retiredRefreshTokens: retired ? await store.purge.deleteRetiredRefreshTokens(ids) : 0,
        codes: await store.purge.deleteGrants(found.filter((g) => g.unusedCode).map((g) => g.id)),
        grants: await store.purge.deleteGrants(found.filter((g) => !g.unusedCode).map((g) => g.id)),
      };
    });

    if (rt.tables.has('jtis')) {
      // No retention: an expired assertion is refused by its exp, whatever the table holds.
      const jtiCutoff = olderThan ?? now;
      await inBatches(rt, size, stopped, counts, async (store) => {
        const keys = await store.purge.expiredJtis(jtiCutoff, size);
        return { found: keys.length, jtis: await store.purge.deleteJtis(keys) };
      });
    }

    if (rt.enabled.has('client_id_metadata_documents')) {
      // After the grants: a client whose last grant was just purged goes in the same run.
      await inBatches(rt, size, stopped, counts, async (store) => {
        const ids = await store.purge.unusedMetadataDocumentApplications(cutoff, size);
        return { found: ids.length, metadataDocumentClients: await store.purge.deleteUnusedApplications(ids) };
      });
    }
    return counts;
  }
}

/**
 * Runs `batch` (one short transaction) until it finds fewer than `size` rows or the purge is
 * stopped, with a turn of the event loop in between. Adds what each batch deleted to `counts`
 * once committed: a batch that failed deleted nothing.
 */
async function inBatches(
  rt: Runtime,
  size: number,
  stopped: () => boolean,
  counts: PurgeCounts,
  batch: (store: Store) => Promise<Partial<PurgeCounts> & { found: number }>,
): Promise<void> {
  for (let more = true; more && !stopped(); ) {
    const { found, ...deleted } = await rt.store.transaction(batch);
    for (const key of Object.keys(deleted) as (keyof PurgeCounts)[]) counts[key] += deleted[key] ?? 0;
    more = found === size;
    await nextTurn();
  }
}

function checkOptions(options: PurgeOptions): PurgeOptions {
  if (typeof options === 'string' || options instanceof RegExp || Array.isArray(options)) {
    throw new TypeError("auth.purge() deletes expired grants and takes { olderThan, batchSize, signal }; it is not Express's router.purge(path) for the HTTP PURGE method: route PURGE on a router of your own");
  }
  if (options === null || typeof options !== 'object') throw new TypeError('purge(): options must be an object ({ olderThan, batchSize, signal })');
  const { olderThan, batchSize, signal } = options;
  if (olderThan !== undefined && !(olderThan instanceof Date && Number.isFinite(olderThan.getTime()))) {
    throw new TypeError(`purge(): olderThan must be a valid Date; got ${String(olderThan)}`);
  }
  if (batchSize !== undefined && !(typeof batchSize === 'number' && Number.isInteger(batchSize) && batchSize >= 1 && batchSize <= MAX_PURGE_BATCH_SIZE)) {
    throw new TypeError(`purge(): batchSize must be an integer from 1 to ${MAX_PURGE_BATCH_SIZE}; got ${String(batchSize)}`);
  }
  if (signal !== undefined && !(signal instanceof AbortSignal)) throw new TypeError('purge(): signal must be an AbortSignal');
  return { olderThan, batchSize, signal };
}

/** A purge setting, checked at start-up: the purge runs outside any request, so it must be a constant. */
function constant(rt: Runtime, name: string, ok: (v: number) => boolean, what: string): number {
  const v = rt.constant<unknown>(name);
  if (typeof v !== 'number' || !Number.isFinite(v) || !ok(v)) {
    throw new OAuthConfigurationError(`oauth(): option '${name}' must be a constant, ${what}; got ${typeof v === 'undefined' ? 'a function' : String(v)}.`);
  }
  return v;
}
