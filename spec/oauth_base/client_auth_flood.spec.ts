import { afterAll, afterEach, describe, expect, it, jest } from '@jest/globals';
import bcrypt from 'bcrypt';
import type { Response } from 'supertest';
import { FailureThrottle, clientAuthSource, failureKey } from '../../lib/client_auth/secret_guard';
import { MAX_PARAM_LENGTH } from '../../lib/http/params';
import { basic, buildApp, closeAll, type TestApp } from '../support/build_app';
import { expectInvalidClient, expectNoStore, tokenBody, type Client } from './helpers';

afterAll(closeAll);
afterEach(() => {
  jest.restoreAllMocks();
});

const cc = { grant_type: 'client_credentials' };
const ccClient = { grantTypes: ['client_credentials'] };

/** Sent at once (a supertest request starts only when awaited). */
async function viaBasic(t: TestApp, clientId: string, secret: string): Promise<Response> {
  return t.agent.post(t.path('/token')).type('form').set('Authorization', basic(clientId, secret)).send(cc);
}

async function viaPost(t: TestApp, clientId: string, secret: string): Promise<Response> {
  return t.agent.post(t.path('/token')).type('form').send({ ...cc, client_id: clientId, client_secret: secret });
}

/** Basic from `address`, as a proxy that Express's `trust proxy` trusts forwards it. */
async function viaBasicFrom(t: TestApp, address: string, clientId: string, secret: string): Promise<Response> {
  return t.agent.post(t.path('/token')).type('form').set('X-Forwarded-For', address).set('Authorization', basic(clientId, secret)).send(cc);
}

function behindProxy(options: Record<string, unknown>): Promise<TestApp> {
  return buildApp({ enable: ['client_credentials_grant'], ...options }, { setup: (app) => app.set('trust proxy', true) });
}

/** The failure throttles that recorded a failure since the spy was set (one per oauth() instance). */
function watchThrottles(): () => FailureThrottle[] {
  const record = jest.spyOn(FailureThrottle.prototype, 'record');
  return () => [...new Set(record.mock.contexts as FailureThrottle[])];
}

/** A clock the spec moves: the `now` method of the instance. */
function testClock(): { now: () => Date; advance(seconds: number): void } {
  let t = Date.UTC(2030, 0, 1);
  return { now: () => new Date(t), advance: (s) => void (t += s * 1000) };
}

/** bcrypt.compare held until `open()`: counts calls and the most ever running at once. */
function gatedCompare(): { calls: () => number; running: () => number; maxRunning: () => number; started: (n: number) => Promise<void>; open(): void } {
  let running = 0;
  let max = 0;
  let opened = false;
  const waiting: (() => void)[] = [];
  const watchers: { n: number; resolve: () => void }[] = [];
  const spy = jest.spyOn(bcrypt, 'compare').mockImplementation((async () => {
    running++;
    max = Math.max(max, running);
    for (const w of watchers.filter((w) => spy.mock.calls.length >= w.n)) w.resolve();
    if (!opened) await new Promise<void>((resolve) => waiting.push(resolve));
    running--;
    return false;
  }) as never);
  return {
    calls: () => spy.mock.calls.length,
    running: () => running,
    maxRunning: () => max,
    started: (n) => (spy.mock.calls.length >= n ? Promise.resolve() : new Promise((resolve) => watchers.push({ n, resolve }))),
    open() {
      opened = true;
      for (const w of waiting.splice(0)) w();
    },
  };
}

/** Resolves once `n` of the requests have answered. */
function settled(requests: Promise<Response>[], n: number): Promise<void> {
  let done = 0;
  return new Promise((resolve) => {
    for (const r of requests) void r.then(() => ++done === n && resolve());
  });
}

function expectLockedOut(res: Response, retryAfter: string): void {
  expectInvalidClient(res);
  expect(res.headers['retry-after']).toBe(retryAfter);
}

function expectBusy(res: Response): void {
  expect(res.status).toBe(503);
  expectNoStore(res);
  expect(res.headers['retry-after']).toBe('1');
  expect(res.headers['www-authenticate']).toBeUndefined();
  expect(res.body).toEqual({ error: 'temporarily_unavailable', error_description: 'Too many client authentications in progress, try again later' });
}

describe('oauth_base › client_auth_flood', () => {
  describe('an unknown client id costs what a wrong secret costs', () => {
    it('runs exactly one bcrypt compare for an unknown id, a wrong secret and a client not registered for the method', async () => {
      const t = await buildApp({ enable: ['client_credentials_grant'] });
      const client = await t.createClient(ccClient);
      const postOnly = await t.createClient({ ...ccClient, tokenEndpointAuthMethod: 'client_secret_post' });
      const compare = jest.spyOn(bcrypt, 'compare');

      for (const res of [
        await viaBasic(t, client.clientId, 'wrong'),
        await viaBasic(t, 'no-such-client', 'wrong'),
        await viaBasic(t, postOnly.clientId, postOnly.clientSecret),
        await viaPost(t, 'no-such-client', 'wrong'),
      ]) {
        expectInvalidClient(res);
        expect(res.headers['retry-after']).toBeUndefined();
      }
      expect(compare).toHaveBeenCalledTimes(4);
    });

    it('checks an unknown id against a dummy hash of the configured cost, made once', async () => {
      const t = await buildApp({ enable: ['client_credentials_grant'], oauthClientSecretHashCost: 5 });
      const compare = jest.spyOn(bcrypt, 'compare');
      expectInvalidClient(await viaBasic(t, 'no-such-client', 'wrong'));
      expectInvalidClient(await viaBasic(t, 'another-unknown', 'wrong'));
      const hashes = compare.mock.calls.map((c) => c[1]);
      expect(hashes).toEqual([expect.stringMatching(/^\$2[ab]\$05\$/), hashes[0]]);
    });
  });

  describe('failure throttling per client id and source address', () => {
    it('refuses a locked-out id with Retry-After and no bcrypt, still accepts its cached secret, and checks again after the lockout', async () => {
      const clock = testClock();
      const t = await buildApp({ enable: ['client_credentials_grant'], now: clock.now });
      const client = await t.createClient(ccClient);
      expect((await viaBasic(t, client.clientId, client.clientSecret)).status).toBe(200); // now cached
      const compare = jest.spyOn(bcrypt, 'compare');

      for (let i = 0; i < 5; i++) {
        const res = await viaBasic(t, client.clientId, `wrong-${i}`);
        expectInvalidClient(res);
        expect(res.headers['retry-after']).toBeUndefined();
      }
      expect(compare).toHaveBeenCalledTimes(5);

      expectLockedOut(await viaBasic(t, client.clientId, 'wrong-5'), '60');
      expectLockedOut(await viaPost(t, client.clientId, 'wrong-6'), '60');
      expect(compare).toHaveBeenCalledTimes(5);

      const cached = await viaBasic(t, client.clientId, client.clientSecret);
      expect(cached.status).toBe(200);
      expect(cached.headers['retry-after']).toBeUndefined();
      expect(cached.body).toEqual(tokenBody('books.read books.write'));

      clock.advance(45);
      expectLockedOut(await viaBasic(t, client.clientId, 'wrong-7'), '15');
      clock.advance(15);
      const again = await viaBasic(t, client.clientId, 'wrong-8');
      expectInvalidClient(again);
      expect(again.headers['retry-after']).toBeUndefined();
      expect(compare).toHaveBeenCalledTimes(6);
    });

    it("serves an uncached correct secret from another address during an attacker's lockout, and keeps refusing the attacker's address", async () => {
      const t = await behindProxy({ oauthSecretCacheSize: 0, oauthClientAuthFailureLimit: 2, oauthClientAuthLockout: 30 });
      const client = await t.createClient(ccClient);
      const attacker = '203.0.113.7';
      for (let i = 0; i < 2; i++) expectInvalidClient(await viaBasicFrom(t, attacker, client.clientId, 'wrong'));
      const compare = jest.spyOn(bcrypt, 'compare');
      expectLockedOut(await viaBasicFrom(t, attacker, client.clientId, 'wrong'), '30');
      expectLockedOut(await viaBasicFrom(t, attacker, client.clientId, client.clientSecret), '30');
      expect(compare).not.toHaveBeenCalled();

      for (const address of ['198.51.100.20', '198.51.100.20', '2001:db8::1']) {
        const res = await viaBasicFrom(t, address, client.clientId, client.clientSecret);
        expect(res.status).toBe(200);
        expectNoStore(res);
        expect(res.headers['retry-after']).toBeUndefined();
        expect(res.body).toEqual(tokenBody('books.read books.write'));
      }
      expect(compare).toHaveBeenCalledTimes(3);
      expectLockedOut(await viaBasicFrom(t, attacker, client.clientId, 'wrong'), '30');
      expect(compare).toHaveBeenCalledTimes(3);
    });

    it('counts an IPv6 source by its /64 and an IPv4-mapped one as its IPv4 address', async () => {
      const t = await behindProxy({ oauthClientAuthFailureLimit: 2 });
      const client = await t.createClient(ccClient);
      expectInvalidClient(await viaBasicFrom(t, '2001:db8:1:2::1', client.clientId, 'wrong'));
      expectInvalidClient(await viaBasicFrom(t, '2001:0db8:0001:0002:ffff:0:0:9', client.clientId, 'wrong'));
      expectLockedOut(await viaBasicFrom(t, '2001:db8:1:2:abcd::42', client.clientId, 'wrong'), '60');
      const nextBlock = await viaBasicFrom(t, '2001:db8:1:3::1', client.clientId, 'wrong');
      expectInvalidClient(nextBlock);
      expect(nextBlock.headers['retry-after']).toBeUndefined();

      for (let i = 0; i < 2; i++) expectInvalidClient(await viaBasicFrom(t, '192.0.2.1', client.clientId, 'wrong'));
      expectLockedOut(await viaBasicFrom(t, '::ffff:192.0.2.1', client.clientId, 'wrong'), '60');
      expect(clientAuthSource('::ffff:c000:201')).toBe('192.0.2.1');
      expect(clientAuthSource('fe80::1%eth0')).toBe('fe80:0:0:0::/64');
      expect(clientAuthSource(undefined)).toBe('');
    });

    it("reads X-Forwarded-For only through Express's trust proxy: without it, a forged header buys no fresh attempts", async () => {
      const t = await buildApp({ enable: ['client_credentials_grant'], oauthClientAuthFailureLimit: 2 });
      const client = await t.createClient(ccClient);
      for (let i = 0; i < 2; i++) expectInvalidClient(await viaBasicFrom(t, `203.0.113.${i}`, client.clientId, 'wrong'));
      expectLockedOut(await viaBasicFrom(t, '203.0.113.99', client.clientId, 'wrong'), '60');
    });

    it('locks out an unknown id as it does a known one', async () => {
      const t = await buildApp({ enable: ['client_credentials_grant'] });
      for (let i = 0; i < 5; i++) expectInvalidClient(await viaBasic(t, 'no-such-client', 'wrong'));
      const compare = jest.spyOn(bcrypt, 'compare');
      expectLockedOut(await viaBasic(t, 'no-such-client', 'wrong'), '60');
      expect(compare).not.toHaveBeenCalled();
    });

    it('counts failures within oauthClientAuthFailureWindow only', async () => {
      const clock = testClock();
      const t = await buildApp({ enable: ['client_credentials_grant'], now: clock.now, oauthClientAuthFailureWindow: 10 });
      const client = await t.createClient(ccClient);
      for (let i = 0; i < 4; i++) expectInvalidClient(await viaBasic(t, client.clientId, 'wrong'));
      clock.advance(10);
      for (let i = 0; i < 5; i++) {
        const res = await viaBasic(t, client.clientId, 'wrong');
        expectInvalidClient(res);
        expect(res.headers['retry-after']).toBeUndefined();
      }
      expectLockedOut(await viaBasic(t, client.clientId, 'wrong'), '60');
    });

    it('starts afresh after a secret that bcrypt verified', async () => {
      const t = await buildApp({ enable: ['client_credentials_grant'] });
      const client = await t.createClient(ccClient);
      for (let i = 0; i < 4; i++) expectInvalidClient(await viaBasic(t, client.clientId, 'wrong'));
      expect((await viaBasic(t, client.clientId, client.clientSecret)).status).toBe(200);
      for (let i = 0; i < 5; i++) {
        const res = await viaBasic(t, client.clientId, 'wrong');
        expectInvalidClient(res);
        expect(res.headers['retry-after']).toBeUndefined();
      }
      expectLockedOut(await viaBasic(t, client.clientId, 'wrong'), '60');
    });

    it('keeps a fixed-size key per entry however long the presented client id', async () => {
      const t = await buildApp({ enable: ['client_credentials_grant'] });
      const throttles = watchThrottles();
      const ids = ['a', 'b', 'c'].map((c) => c.repeat(MAX_PARAM_LENGTH));
      for (const id of ids) expectInvalidClient(await viaPost(t, id, 'wrong'));
      const [throttle, ...others] = throttles();
      expect(others).toHaveLength(0);
      expect(throttle!.keys()).toEqual(ids.map((id) => failureKey(id, clientAuthSource('::ffff:127.0.0.1'))));
      for (const key of throttle!.keys()) expect(key).toMatch(/^[A-Za-z0-9_-]{43}$/);
    });

    it('drops entries whose window and lockout have passed', async () => {
      const clock = testClock();
      const t = await buildApp({ enable: ['client_credentials_grant'], now: clock.now, oauthClientAuthFailureLimit: 2, oauthClientAuthFailureWindow: 10, oauthClientAuthLockout: 30 });
      const throttles = watchThrottles();
      expectInvalidClient(await viaBasic(t, 'counted', 'wrong'));
      for (let i = 0; i < 2; i++) expectInvalidClient(await viaBasic(t, 'locked', 'wrong'));
      const [throttle] = throttles();
      expect(throttle!.size).toBe(2);

      clock.advance(10); // the window of 'counted' has passed; 'locked' has 20 s to go
      expectInvalidClient(await viaBasic(t, 'fresh', 'wrong'));
      expect(throttle!.size).toBe(2);
      expectLockedOut(await viaBasic(t, 'locked', 'wrong'), '20');

      clock.advance(20);
      const again = await viaBasic(t, 'locked', 'wrong'); // looked up after its lockout: dropped, then counted afresh
      expectInvalidClient(again);
      expect(again.headers['retry-after']).toBeUndefined();
      expect(throttle!.size).toBe(1);
    });

    it('holds at most its bound of entries, the least recently failed going first', () => {
      const throttle = new FailureThrottle(2);
      const limits = { oauthClientAuthFailureLimit: 1, oauthClientAuthFailureWindow: 60, oauthClientAuthLockout: 60 };
      for (const key of ['k1', 'k2', 'k1', 'k3']) throttle.record(key, 0, limits);
      expect(throttle.keys()).toEqual(['k1', 'k3']);
      expect(throttle.lockedFor('k2', 0)).toBe(0);
      expect(throttle.lockedFor('k1', 0)).toBe(60_000);
    });

    it('is off with oauthClientAuthFailureLimit: 0', async () => {
      const t = await buildApp({ enable: ['client_credentials_grant'], oauthClientAuthFailureLimit: 0 });
      const compare = jest.spyOn(bcrypt, 'compare');
      for (let i = 0; i < 8; i++) {
        const res = await viaBasic(t, 'no-such-client', 'wrong');
        expectInvalidClient(res);
        expect(res.headers['retry-after']).toBeUndefined();
      }
      expect(compare).toHaveBeenCalledTimes(8);
    });
  });

  describe('bounded bcrypt concurrency', () => {
    it('never runs more than oauthBcryptConcurrency compares at once, and answers 503 with Retry-After when the queue is full', async () => {
      const t = await buildApp({ enable: ['client_credentials_grant'], oauthBcryptConcurrency: 2, oauthBcryptQueueLimit: 3, oauthClientAuthFailureLimit: 0 });
      const client = await t.createClient(ccClient);
      const compare = gatedCompare();
      const flood = Array.from({ length: 10 }, (_, i) => viaBasic(t, i % 2 ? client.clientId : `unknown-${i}`, 'wrong'));
      await Promise.all([settled(flood, 5), compare.started(2)]); // 2 running and 3 waiting: the other 5 are refused at once
      expect(compare.running()).toBe(2);
      compare.open();
      const answers = await Promise.all(flood);
      expect(answers.filter((r) => r.status === 401)).toHaveLength(5);
      for (const res of answers) (res.status === 401 ? expectInvalidClient : expectBusy)(res);
      expect(compare.calls()).toBe(5);
      expect(compare.maxRunning()).toBe(2);
    });

    it('serves cached clients while every bcrypt slot and the queue are taken', async () => {
      const t = await buildApp({ enable: ['client_credentials_grant'], oauthBcryptConcurrency: 1, oauthBcryptQueueLimit: 1 });
      const victim = await t.createClient(ccClient);
      const other = await t.createClient(ccClient);
      for (const c of [victim, other]) expect((await viaBasic(t, c.clientId, c.clientSecret)).status).toBe(200);
      const compare = gatedCompare();
      const flood = [viaBasic(t, victim.clientId, 'wrong'), viaBasic(t, victim.clientId, 'wrong')];
      await compare.started(1);
      expectBusy(await viaBasic(t, victim.clientId, 'wrong'));
      for (const c of [victim, other]) {
        const res = await viaBasic(t, c.clientId, c.clientSecret);
        expect(res.status).toBe(200);
        expect(res.body).toEqual(tokenBody('books.read books.write'));
      }
      compare.open();
      for (const res of await Promise.all(flood)) expectInvalidClient(res);
    });
  });

  describe('a flood against one client', () => {
    it("serves another client's first, uncached request while the flooded id is refused without bcrypt", async () => {
      const t = await buildApp({ enable: ['client_credentials_grant'] });
      const victim = await t.createClient(ccClient);
      const other: Client = await t.createClient(ccClient);
      for (let i = 0; i < 5; i++) expectInvalidClient(await viaBasic(t, victim.clientId, 'wrong'));
      const compare = jest.spyOn(bcrypt, 'compare');
      const flood = Array.from({ length: 20 }, () => viaBasic(t, victim.clientId, 'wrong'));
      const served = viaBasic(t, other.clientId, other.clientSecret);
      const res = await served;
      expect(res.status).toBe(200);
      expect(res.body).toEqual(tokenBody('books.read books.write'));
      for (const r of await Promise.all(flood)) expectLockedOut(r, '60');
      expect(compare).toHaveBeenCalledTimes(1);
    });
  });
});
