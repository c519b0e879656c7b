/**
 * Another process holds the SQLite lock (lib/store/sql.ts, `SqliteWriter`): the writer waits on
 * timers, never inside better-sqlite3, so reads go on and the event loop never stops; a write that
 * waited `oauthSqliteLockTimeout` gets 503. Always SQLite, whatever DATABASE_URL says: each test
 * has its own database file and a child `node` process that takes the lock.
 */
import { afterEach, describe, expect, it } from '@jest/globals';
import express, { type Express } from 'express';
import knex, { type Knex } from 'knex';
import request, { type Response } from 'supertest';
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { oauth, type OAuthRouter } from '../../lib';
import { resolveSchema } from '../../lib/store/schema';
import { Sql } from '../../lib/store/sql';
import { basic, RecordingLogger } from '../support/build_app';
import { claims, clientAssertionForm, Clock, ENCRYPTION_KEY, ISSUER, keyPair, signWith, type KeyPair } from '../jwt_bearer/support';

/** The parts of a better-sqlite3 connection this spec touches (the package ships no types). */
interface RawDatabase {
  prepare(sql: string): { get(...params: unknown[]): unknown };
  pragma(source: string, options?: { simple: boolean }): unknown;
  close(): void;
}
const Database = require('better-sqlite3') as new (filename: string, options?: { readonly?: boolean }) => RawDatabase;

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

const UNAVAILABLE = { error: 'temporarily_unavailable', error_description: 'The service is temporarily unavailable' };

/** The longest the event loop may stall while a lock is held: a 100 ms synchronous wait shows. */
const MAX_STALL = 300;

/**
 * A child process that holds a lock on the file until told to let go: `write` is BEGIN IMMEDIATE
 * (the write lock), `read` a read transaction that has read a page (in rollback-journal mode, a
 * SHARED lock that keeps any COMMIT from finishing), `exclusive` BEGIN EXCLUSIVE (in
 * rollback-journal mode, no other connection may even read).
 */
class LockHolder {
  private readonly child: ChildProcessWithoutNullStreams;
  private readonly lines: string[] = [];
  private readonly listeners: (() => void)[] = [];
  /** Until `release()` is called, the child holds the lock. */
  released = false;
  readonly exited: Promise<number | null>;

  constructor(filename: string, kind: 'write' | 'read' | 'exclusive') {
    const script = `
      const Database = require(${JSON.stringify(require.resolve('better-sqlite3'))});
      const db = new Database(process.argv[1], { timeout: 0 });
      db.prepare({ write: 'BEGIN IMMEDIATE', read: 'BEGIN', exclusive: 'BEGIN EXCLUSIVE' }[process.argv[2]]).run();
      db.prepare('select count(*) from oauth_grants').get();
      process.stdout.write('locked\\n');
      process.stdin.once('data', () => {
        db.prepare('COMMIT').run();
        db.close();
        process.stdout.write('released\\n');
        process.exit(0);
      });`;
    this.child = spawn(process.execPath, ['-e', script, filename, kind]);
    this.child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
      this.lines.push(...chunk.split('\n').filter(Boolean));
      for (const l of this.listeners.splice(0)) l();
    });
    this.exited = new Promise((resolve) => this.child.on('exit', resolve));
  }

  async said(line: string): Promise<void> {
    while (!this.lines.includes(line)) await new Promise<void>((resolve) => this.listeners.push(resolve));
  }

  /** Lets go of the lock; resolves once the child has committed. */
  async release(): Promise<void> {
    this.released = true;
    this.child.stdin.write('release\n');
    await this.said('released');
  }

  kill(): void {
    if (this.child.exitCode === null) this.child.kill();
  }
}

interface Setup {
  app: Express;
  auth: OAuthRouter;
  db: Knex;
  filename: string;
  client: { clientId: string; clientSecret: string };
}

let dir: string | undefined;
let db: Knex | undefined;
let holder: LockHolder | undefined;

afterEach(async () => {
  holder?.kill();
  await holder?.exited;
  await db?.destroy();
  if (dir) rmSync(dir, { recursive: true, force: true });
  holder = db = dir = undefined;
});

/** An app on a SQLite file, with `GET /api/me` behind a bearer token, and one client_credentials client. */
async function setup(pragmas: string[], options: Record<string, unknown> = {}): Promise<Setup> {
  dir = mkdtempSync(join(tmpdir(), 'eof-busy-'));
  const filename = join(dir, 'oauth.sqlite3');
  db = knex({
    client: 'better-sqlite3',
    connection: { filename },
    useNullAsDefault: true,
    pool: {
      afterCreate(conn: RawDatabase, done: (err: Error | null, conn: RawDatabase) => void) {
        for (const p of pragmas) conn.pragma(p);
        done(null, conn);
      },
    },
  });
  const auth = oauth({ db, logger: new RecordingLogger(), enable: ['client_credentials_grant'], oauthClientSecretHashCost: 4, ...options } as never) as OAuthRouter;
  await auth.migrate();
  const app = express();
  app.use(auth);
  app.get('/api/me', auth.requireOauthAuthorization(), (req, res) => {
    res.json(req.oauth);
  });
  const created = await auth.createApplication({ name: 'Busy client', redirectUri: ['https://client.example/cb'], scopes: ['books.read'], grantTypes: ['client_credentials'] });
  return { app, auth, db, filename, client: { clientId: created.clientId, clientSecret: created.clientSecret ?? '' } };
}

const token = (s: Setup): Promise<Response> =>
  request(s.app).post('/token').set('Authorization', basic(s.client.clientId, s.client.clientSecret)).type('form').send({ grant_type: 'client_credentials' });

const me = (s: Setup, accessToken: string): Promise<Response> => request(s.app).get('/api/me').set('Authorization', `Bearer ${accessToken}`);

/** The grants committed to the file, as a fresh connection of its own sees them. */
function committedGrants(filename: string): number {
  const reader = new Database(filename, { readonly: true });
  try {
    return Number((reader.prepare('select count(*) as n from oauth_grants').get() as { n: number }).n);
  } finally {
    reader.close();
  }
}

function expectUnavailable(res: Response): void {
  expect(res.status).toBe(503);
  expect(res.headers['cache-control']).toBe('no-store');
  expect(res.headers['pragma']).toBe('no-cache');
  expect(res.headers['retry-after']).toMatch(/^[1-9][0-9]*$/);
  expect(res.body).toEqual(UNAVAILABLE);
}

/** Runs `fn` while measuring the event loop's longest stall, in ms. */
async function longestStall<T>(fn: () => Promise<T>): Promise<[T, number]> {
  const h = monitorEventLoopDelay({ resolution: 10 });
  h.enable();
  try {
    // The histogram measures from its first tick on: a stall before it would go unrecorded.
    await sleep(30);
    const result = await fn();
    // The histogram records a stall when its own timer next fires: give it that turn.
    await sleep(50);
    return [result, h.max / 1e6];
  } finally {
    h.disable();
  }
}

describe('lib › store › sql › SQLite locked by another process', () => {
  it('keeps answering reads while another process holds the write lock for 5 s, and completes every write after it (nothing lost)', async () => {
    // The busy_timeout the README used to recommend: the writer must not wait inside it.
    const s = await setup(['journal_mode = WAL', 'busy_timeout = 5000'], { oauthSqliteLockTimeout: 30_000 });
    const first = await token(s);
    expect(first.status).toBe(200);
    const baseline = await me(s, first.body.access_token);
    expect(baseline.status).toBe(200);
    const before = committedGrants(s.filename);

    const h = (holder = new LockHolder(s.filename, 'write'));
    await h.said('locked');
    const [{ reads, writes }, stall] = await longestStall(async () => {
      const reads: { res: Response; whileHeld: boolean }[] = [];
      const writes: Promise<{ res: Response; afterRelease: boolean }>[] = [];
      const until = Date.now() + 5000;
      while (Date.now() < until) {
        writes.push(token(s).then((res) => ({ res, afterRelease: h.released })));
        const res = await me(s, first.body.access_token);
        reads.push({ res, whileHeld: !h.released });
        await sleep(100);
      }
      await h.release();
      return { reads, writes: await Promise.all(writes) };
    });

    expect(stall).toBeLessThan(MAX_STALL);
    // Every read was answered, with the lock still held.
    expect(reads.length).toBeGreaterThan(1);
    for (const r of reads) {
      expect(r.whileHeld).toBe(true);
      expect(r.res.status).toBe(200);
      expect(r.res.body).toEqual(baseline.body);
    }
    // Every write waited for the lock and was acknowledged after it; each acknowledged token is committed.
    for (const w of writes) {
      expect(w.afterRelease).toBe(true);
      expect(w.res.status).toBe(200);
      expect((await me(s, w.res.body.access_token)).status).toBe(200);
    }
    expect(committedGrants(s.filename)).toBe(before + writes.length);
    // The host's own busy_timeout is back on the connection.
    expect(await s.db.raw('pragma busy_timeout')).toEqual([{ timeout: 5000 }]);
  }, 30_000);

  it('answers 503 temporarily_unavailable with Retry-After once a write waited oauthSqliteLockTimeout, writes nothing, and recovers', async () => {
    const s = await setup(['journal_mode = WAL', 'busy_timeout = 5000'], { oauthSqliteLockTimeout: 300 });
    const first = await token(s);
    const before = committedGrants(s.filename);

    const h = (holder = new LockHolder(s.filename, 'write'));
    await h.said('locked');
    const [[refused, read, whileHeld], stall] = await longestStall(async () => {
      const [refused, read] = await Promise.all([token(s), me(s, first.body.access_token)]);
      return [refused, read, !h.released] as const;
    });
    expect(whileHeld).toBe(true);
    expect(stall).toBeLessThan(MAX_STALL);
    expectUnavailable(refused);
    expect(read.status).toBe(200);
    await h.release();

    expect(committedGrants(s.filename)).toBe(before);
    const after = await token(s);
    expect(after.status).toBe(200);
    expect(committedGrants(s.filename)).toBe(before + 1);
  }, 30_000);

  describe('rollback-journal mode: a COMMIT waits for another process to stop reading', () => {
    it('retries the COMMIT on timers and acknowledges the write once the reader lets go', async () => {
      const s = await setup(['journal_mode = DELETE', 'busy_timeout = 5000'], { oauthSqliteLockTimeout: 30_000 });
      const before = committedGrants(s.filename);
      const h = (holder = new LockHolder(s.filename, 'read'));
      await h.said('locked');
      const [[res, released], stall] = await longestStall(async () => {
        const pending = token(s).then((r) => [r, h.released] as const);
        // The write has run inside its group; its COMMIT needs the reader gone.
        await sleep(300);
        await h.release();
        return pending;
      });
      expect(stall).toBeLessThan(MAX_STALL);
      expect(released).toBe(true);
      expect(res.status).toBe(200);
      expect(committedGrants(s.filename)).toBe(before + 1);
      expect((await me(s, res.body.access_token)).status).toBe(200);
    }, 30_000);

    it('rolls the group back and answers 503 when the reader outlasts oauthSqliteLockTimeout: no half-written row', async () => {
      const s = await setup(['journal_mode = DELETE', 'busy_timeout = 5000'], { oauthSqliteLockTimeout: 300 });
      const before = committedGrants(s.filename);
      const h = (holder = new LockHolder(s.filename, 'read'));
      await h.said('locked');
      const [[res, whileHeld], stall] = await longestStall(async () => {
        const r = await token(s);
        return [r, !h.released] as const;
      });
      expect(whileHeld).toBe(true);
      expect(stall).toBeLessThan(MAX_STALL);
      expectUnavailable(res);
      await h.release();
      expect(committedGrants(s.filename)).toBe(before);
      expect((await token(s)).status).toBe(200);
      expect(committedGrants(s.filename)).toBe(before + 1);
    }, 30_000);
  });
});

describe('lib › store › sql › a private_key_jwt client authenticating while another process holds the write lock', () => {
  let rsa: KeyPair;

  /** A private_key_jwt client of an app that enables jwt_bearer: its jti is written before any transaction. */
  async function jwtSetup(lockTimeout: number) {
    rsa ??= await keyPair('RS256');
    const s = await setup(['journal_mode = WAL', 'busy_timeout = 5000'], {
      enable: ['jwt_bearer', 'client_credentials_grant'],
      issuer: ISSUER,
      oauthClientSecretEncryptionKey: ENCRYPTION_KEY,
      oauthSqliteLockTimeout: lockTimeout,
    });
    const created = await s.auth.createApplication({
      name: 'JWT client',
      redirectUri: ['https://client.example/cb'],
      scopes: ['books.read'],
      grantTypes: ['client_credentials'],
      tokenEndpointAuthMethod: 'private_key_jwt',
      jwks: { keys: [rsa.publicJwk] },
    } as never);
    const assertion = await signWith(rsa, claims(new Clock(), created.clientId));
    const send = () => request(s.app).post('/token').type('form').send({ grant_type: 'client_credentials', ...clientAssertionForm(assertion) });
    return { s, send };
  }

  it('spends the assertion jti through the writer: waits on timers, answers after the release, and the jti stays spent (RFC 7523 §3 item 7)', async () => {
    const { s, send } = await jwtSetup(30_000);
    const before = committedGrants(s.filename);
    const h = (holder = new LockHolder(s.filename, 'write'));
    await h.said('locked');
    const [[res, afterRelease], stall] = await longestStall(async () => {
      const pending = send().then((r) => [r, h.released] as const);
      await sleep(500);
      await h.release();
      return pending;
    });
    expect(stall).toBeLessThan(MAX_STALL);
    expect(afterRelease).toBe(true);
    expect(res.status).toBe(200);
    expect(res.headers['cache-control']).toBe('no-store');
    expect(res.headers['pragma']).toBe('no-cache');
    expect(res.body).toEqual({ access_token: expect.any(String), token_type: 'Bearer', expires_in: 3600, scope: 'books.read' });
    expect(committedGrants(s.filename)).toBe(before + 1);
    // The jti was committed: the same assertion is refused.
    const replay = await send();
    expect(replay.status).toBe(401);
    expect(replay.headers['cache-control']).toBe('no-store');
    expect(replay.body).toEqual({ error: 'invalid_client', error_description: 'Invalid client' });
  }, 30_000);

  it('answers 503 once the jti write waited oauthSqliteLockTimeout, spends nothing, and the same assertion works after the release', async () => {
    const { s, send } = await jwtSetup(300);
    const before = committedGrants(s.filename);
    const h = (holder = new LockHolder(s.filename, 'write'));
    await h.said('locked');
    const [[refused, whileHeld], stall] = await longestStall(async () => {
      const r = await send();
      return [r, !h.released] as const;
    });
    expect(whileHeld).toBe(true);
    expect(stall).toBeLessThan(MAX_STALL);
    expectUnavailable(refused);
    await h.release();
    const retried = await send();
    expect(retried.status).toBe(200);
    expect(retried.body).toEqual({ access_token: expect.any(String), token_type: 'Bearer', expires_in: 3600, scope: 'books.read' });
    expect(committedGrants(s.filename)).toBe(before + 1);
  }, 30_000);
});

describe('lib › store › sql › reads in rollback-journal mode', () => {
  const INSERT = (sql: Sql, name: string) => sql.insert('busy.insert', (q, p) => q('items').insert({ name: p(0) }), [name], 'id');
  const BY_NAME = (sql: Sql, name: string) => sql.first('busy.byName', (q, p) => q('items').where('name', p(0)), [name]);

  /** A store `Sql` on the app's connection, and a table of its own. */
  async function itemsSetup(lockTimeout: number): Promise<{ s: Setup; sql: Sql }> {
    const s = await setup(['journal_mode = DELETE', 'busy_timeout = 5000']);
    await s.db.schema.createTable('items', (t) => {
      t.increments('id');
      t.string('name');
    });
    return { s, sql: new Sql(s.db, resolveSchema({}), undefined, lockTimeout) };
  }

  /** Runs `p` and notes, in `events`, when it settled and how. */
  const track = <T>(events: string[], name: string, p: Promise<T>): Promise<T | string> =>
    p.then(
      (v) => {
        events.push(`${name} resolved`);
        return v;
      },
      (e: unknown) => {
        events.push(`${name} rejected`);
        return String((e as Error).message);
      },
    );

  it('holds a read while a busy COMMIT is retried, so it never sees rows the group then rolls back', async () => {
    const { s, sql } = await itemsSetup(300);
    const h = (holder = new LockHolder(s.filename, 'read'));
    await h.said('locked');
    const events: string[] = [];
    const [[written, read], stall] = await longestStall(async () => {
      const written = track(events, 'write', INSERT(sql, 'a'));
      // The insert ran in its group; the COMMIT is being retried while the reader holds its lock.
      await sleep(50);
      const read = track(events, 'read', BY_NAME(sql, 'a'));
      return Promise.all([written, read]);
    });
    expect(stall).toBeLessThan(MAX_STALL);
    expect(written).toBe('The SQLite database stayed locked by another connection for 300 ms');
    expect(read).toBeUndefined();
    expect(events).toEqual(['write rejected', 'read resolved']);
    await h.release();
    expect(await BY_NAME(sql, 'a')).toBeUndefined();
  }, 30_000);

  it('answers a read held during a busy COMMIT once the COMMIT succeeds, with the committed row', async () => {
    const { s, sql } = await itemsSetup(30_000);
    const h = (holder = new LockHolder(s.filename, 'read'));
    await h.said('locked');
    const events: string[] = [];
    const [[written, read], stall] = await longestStall(async () => {
      const written = track(events, 'write', INSERT(sql, 'a'));
      await sleep(50);
      const read = track(events, 'read', BY_NAME(sql, 'a'));
      await sleep(100);
      events.push('release');
      await h.release();
      return Promise.all([written, read]);
    });
    expect(stall).toBeLessThan(MAX_STALL);
    expect(written).toBe(1);
    expect(read).toEqual({ id: 1, name: 'a' });
    expect(events).toEqual(['release', 'write resolved', 'read resolved']);
  }, 30_000);

  it('retries a read on timers while another process holds an exclusive lock, instead of waiting inside SQLite, and answers after the release', async () => {
    const s = await setup(['journal_mode = DELETE', 'busy_timeout = 5000'], { oauthSqliteLockTimeout: 30_000 });
    const first = await token(s);
    expect(first.status).toBe(200);
    const h = (holder = new LockHolder(s.filename, 'exclusive'));
    await h.said('locked');
    const [[res, afterRelease], stall] = await longestStall(async () => {
      const pending = me(s, first.body.access_token).then((r) => [r, h.released] as const);
      await sleep(300);
      await h.release();
      return pending;
    });
    expect(stall).toBeLessThan(MAX_STALL);
    expect(afterRelease).toBe(true);
    expect(res.status).toBe(200);
    expect(res.body).toEqual({ accountId: null, clientId: s.client.clientId, applicationId: expect.any(Number), scopes: ['books.read'], grantId: expect.any(Number), expiresAt: expect.any(String), token: first.body.access_token });
    // The host's own busy_timeout is back on the connection.
    expect(await s.db.raw('pragma busy_timeout')).toEqual([{ timeout: 5000 }]);
  }, 30_000);

  it('answers a read 503 temporarily_unavailable once it waited oauthSqliteLockTimeout for an exclusive lock', async () => {
    const s = await setup(['journal_mode = DELETE', 'busy_timeout = 5000'], { oauthSqliteLockTimeout: 300 });
    const first = await token(s);
    const h = (holder = new LockHolder(s.filename, 'exclusive'));
    await h.said('locked');
    const [[res, whileHeld], stall] = await longestStall(async () => {
      const r = await me(s, first.body.access_token);
      return [r, !h.released] as const;
    });
    expect(whileHeld).toBe(true);
    expect(stall).toBeLessThan(MAX_STALL);
    expectUnavailable(res);
    // A server-side failure says nothing about the token: no challenge (RFC 6750 §3).
    expect(res.headers['www-authenticate']).toBeUndefined();
    await h.release();
    expect((await me(s, first.body.access_token)).status).toBe(200);
  }, 30_000);
});

describe('lib › store › SQLite pool', () => {
  const message = (max: number) =>
    `oauth(): a SQLite knex instance must have one pooled connection, not ${max}. SQLite lets one connection write at a time and ` +
    "better-sqlite3 runs each statement synchronously, so more connections add no concurrency; their writes would wait on the store's " +
    "own (and ':memory:' is a separate database on each connection). Set pool: { min: 1, max: 1 }, knex's default for SQLite.";

  function startupError(pool: Record<string, number> | undefined, filename: string): { name: string; message: string } | undefined {
    db = knex({ client: 'better-sqlite3', connection: { filename }, useNullAsDefault: true, ...(pool ? { pool } : {}) });
    try {
      oauth({ db, logger: new RecordingLogger() } as never);
      return undefined;
    } catch (e) {
      return { name: (e as Error).name, message: (e as Error).message };
    }
  }

  it('refuses a file database whose pool has more than one connection, at start-up', () => {
    dir = mkdtempSync(join(tmpdir(), 'eof-busy-'));
    expect(startupError({ min: 1, max: 4 }, join(dir, 'oauth.sqlite3'))).toEqual({ name: 'OAuthConfigurationError', message: message(4) });
  });

  it('refuses an in-memory database whose pool has more than one connection', () => {
    expect(startupError({ min: 0, max: 2 }, ':memory:')).toEqual({ name: 'OAuthConfigurationError', message: message(2) });
  });

  it("accepts knex's default SQLite pool and an explicit single connection", async () => {
    expect(startupError(undefined, ':memory:')).toBeUndefined();
    await db?.destroy();
    expect(startupError({ min: 1, max: 1 }, ':memory:')).toBeUndefined();
  });
});

describe('lib › store › oauthSqliteLockTimeout', () => {
  it('must be a constant number of milliseconds', () => {
    db = knex({ client: 'better-sqlite3', connection: { filename: ':memory:' }, useNullAsDefault: true });
    expect(() => oauth({ db, logger: new RecordingLogger(), oauthSqliteLockTimeout: () => 100 } as never)).toThrow(
      "oauth(): option 'oauthSqliteLockTimeout' must be a constant number of milliseconds (0 or more): the store reads it once, at start-up.",
    );
    expect(() => oauth({ db, logger: new RecordingLogger(), oauthSqliteLockTimeout: -1 } as never)).toThrow(
      "oauth(): option 'oauthSqliteLockTimeout' must be a constant number of milliseconds (0 or more): the store reads it once, at start-up.",
    );
  });
});
