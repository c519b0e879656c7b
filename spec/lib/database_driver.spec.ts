/**
 * Issue 11: the database drivers are optional peer dependencies, so a host can have a knex whose
 * driver is missing or broken. oauth() refuses it at start-up with one line naming the package.
 * Each case loads knex and the library afresh with the driver package replaced.
 */
import { afterEach, describe, expect, it, jest } from '@jest/globals';
import type { Knex } from 'knex';
import type * as Lib from '../../lib';

afterEach(() => {
  jest.dontMock('better-sqlite3');
  jest.dontMock('pg');
});

/** Node's error for a package that is not there. */
function notFound(name: string): Error {
  return Object.assign(new Error(`Cannot find module '${name}'\nRequire stack:\n- /app/node_modules/knex/lib/dialects/x/index.js`), { code: 'MODULE_NOT_FOUND' });
}

/** knex and the library loaded with `pkg` replaced by `factory`'s module. */
function withDriver(pkg: string, factory: () => unknown): { knex: (config: Knex.Config) => Knex; lib: typeof Lib } {
  jest.doMock(pkg, factory);
  let loaded!: { knex: (config: Knex.Config) => Knex; lib: typeof Lib };
  jest.isolateModules(() => {
    loaded = { knex: require('knex') as (config: Knex.Config) => Knex, lib: require('../../lib') as typeof Lib };
  });
  return loaded;
}

function startUp(lib: typeof Lib, db: Knex): unknown {
  try {
    lib.oauth({ db, issuer: 'https://auth.example' });
  } catch (e) {
    return e;
  }
  return undefined;
}

describe('lib › database driver', () => {
  it('a knex for better-sqlite3 without the package installed: one OAuthConfigurationError naming it', () => {
    const { knex, lib } = withDriver('better-sqlite3', () => {
      throw notFound('better-sqlite3');
    });
    const db = knex({ client: 'better-sqlite3', useNullAsDefault: true });
    const err = startUp(lib, db) as Error;
    expect(err).toBeInstanceOf(lib.OAuthConfigurationError);
    expect(err.message).toBe('oauth(): the database driver better-sqlite3 is not installed: npm install better-sqlite3');
    expect((err.cause as Error).message).toContain("Cannot find module 'better-sqlite3'");
  });

  it('a knex for pg without the package installed names pg', () => {
    const { knex, lib } = withDriver('pg', () => {
      throw notFound('pg');
    });
    const err = startUp(lib, knex({ client: 'pg' })) as Error;
    expect(err).toBeInstanceOf(lib.OAuthConfigurationError);
    expect(err.message).toBe('oauth(): the database driver pg is not installed: npm install pg');
  });

  it('a driver that is installed but fails to load (a dependency of its own missing) says so, with the package to reinstall', () => {
    const { knex, lib } = withDriver('pg', () => {
      throw notFound('pg-types');
    });
    const err = startUp(lib, knex({ client: 'pg' })) as Error;
    expect(err).toBeInstanceOf(lib.OAuthConfigurationError);
    expect(err.message).toBe("oauth(): the database driver pg does not load (Cannot find module 'pg-types'): reinstall it with npm install pg");
  });

  it('better-sqlite3 whose native module did not build: refused at start-up, not at the first request', async () => {
    const { knex, lib } = withDriver('better-sqlite3', () =>
      class Database {
        constructor() {
          throw new Error('Could not locate the bindings file. Tried:\n → /app/node_modules/better-sqlite3/build/better_sqlite3.node');
        }
      },
    );
    const db = knex({ client: 'better-sqlite3', connection: { filename: ':memory:' }, useNullAsDefault: true, pool: { min: 1, max: 1 } });
    try {
      const err = startUp(lib, db) as Error;
      expect(err).toBeInstanceOf(lib.OAuthConfigurationError);
      expect(err.message).toBe(
        'oauth(): better-sqlite3 is installed but its native module does not load (Could not locate the bindings file. Tried:): ' +
          'run npm rebuild better-sqlite3 with install scripts allowed, under the Node.js version that runs the server',
      );
    } finally {
      await db.destroy();
    }
  });

  it('better-sqlite3 with its own nativeBinding is left to the host', async () => {
    const { knex, lib } = withDriver('better-sqlite3', () =>
      class Database {
        constructor() {
          throw new Error('Could not locate the bindings file.');
        }
      },
    );
    const db = knex({ client: 'better-sqlite3', connection: { filename: ':memory:', options: { nativeBinding: '/opt/sqlite/better_sqlite3.node' } }, useNullAsDefault: true });
    try {
      expect(startUp(lib, db)).toBeUndefined();
    } finally {
      await db.destroy();
    }
  });

  it('an installed driver passes (the real better-sqlite3)', async () => {
    let loaded!: { knex: (config: Knex.Config) => Knex; lib: typeof Lib };
    jest.isolateModules(() => {
      loaded = { knex: require('knex') as (config: Knex.Config) => Knex, lib: require('../../lib') as typeof Lib };
    });
    const db = loaded.knex({ client: 'better-sqlite3', connection: { filename: ':memory:' }, useNullAsDefault: true, pool: { min: 1, max: 1 } });
    try {
      expect(startUp(loaded.lib, db)).toBeUndefined();
    } finally {
      await db.destroy();
    }
  });
});
