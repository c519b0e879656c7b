/**
 * The database driver behind the host's knex, checked at start-up. The drivers (better-sqlite3,
 * pg, sqlite3) are optional peer dependencies: a host installs the one it configures.
 *
 * knex loads the driver when it is built with a connection, and throws there (its own several
 * lines) when the package is missing. What reaches `oauth()` with a driver that cannot work is
 * a knex built without a connection, or a better-sqlite3 whose native module did not build
 * (install scripts skipped, or built for another Node.js version), which knex only loads at the
 * first connection: the first request, or `migrate()`, would fail with the loader's message.
 * Both become one line here, naming the package and the command that fixes it.
 */
import type { Knex } from 'knex';
import { OAuthConfigurationError } from '../options';

/** The parts of knex's client read here (knex/lib/client.js). */
interface DriverClient {
  driverName?: unknown;
  _packageName?: unknown;
  driver?: unknown;
  _driver?: () => unknown;
  connectionSettings?: { options?: { nativeBinding?: unknown } };
  connectionConfigProvider?: unknown;
}

/** better-sqlite3 constructors whose native module has been seen to load. */
const nativeLoaded = new WeakSet<object>();

/** Throws an `OAuthConfigurationError` naming the package when knex's driver cannot be used. */
export function checkDriver(db: Knex | Knex.Transaction): void {
  const client = db.client as DriverClient | undefined;
  if (!client || typeof client.driverName !== 'string') return;
  const pkg = typeof client._packageName === 'string' ? client._packageName : client.driverName;
  let driver = client.driver;
  if (driver === undefined && typeof client._driver === 'function') {
    try {
      driver = client._driver();
    } catch (e) {
      throw configurationError(
        isMissing(e, pkg)
          ? `oauth(): the database driver ${pkg} is not installed: npm install ${pkg}`
          : `oauth(): the database driver ${pkg} does not load (${firstLine(e)}): reinstall it with npm install ${pkg}`,
        e,
      );
    }
  }
  if (pkg === 'better-sqlite3' && typeof driver === 'function') checkNativeModule(client, driver as new (filename: string) => { close(): void });
}

/**
 * better-sqlite3 loads its compiled module when the first database opens, so open one in memory.
 * A host that points `nativeBinding` at its own build, or computes the connection per use, knows
 * where its module is: it is left alone.
 */
function checkNativeModule(client: DriverClient, Database: new (filename: string) => { close(): void }): void {
  if (nativeLoaded.has(Database)) return;
  if (client.connectionConfigProvider || client.connectionSettings?.options?.nativeBinding !== undefined) return;
  try {
    new Database(':memory:').close();
  } catch (e) {
    throw configurationError(
      `oauth(): better-sqlite3 is installed but its native module does not load (${firstLine(e)}): ` +
        'run npm rebuild better-sqlite3 with install scripts allowed, under the Node.js version that runs the server',
      e,
    );
  }
  nativeLoaded.add(Database);
}

/** Node's (and jest's) error for the package itself missing, not for a file inside it. */
function isMissing(e: unknown, pkg: string): boolean {
  return (e as { code?: unknown })?.code === 'MODULE_NOT_FOUND' && firstLine(e).startsWith(`Cannot find module '${pkg}'`);
}

function firstLine(e: unknown): string {
  return String(e instanceof Error ? e.message : e).split('\n')[0]!.trim();
}

function configurationError(message: string, cause: unknown): OAuthConfigurationError {
  const err = new OAuthConfigurationError(message);
  err.cause = cause;
  return err;
}
