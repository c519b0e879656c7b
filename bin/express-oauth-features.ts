#!/usr/bin/env node
/**
 * The admin CLI (issue 12 item 3): `express-oauth-features --config ./oauth.config.js <command>`.
 * It loads the host's own configuration module, which exports the configured `oauth()` router
 * (or a function, possibly async, that returns it) as `module.exports` or `default`, so every
 * command runs with the host's database, table names and options, through the same public API a
 * host calls (style.md §9). A `db` export (the knex instance) is destroyed at the end.
 *
 * Output is a table, or JSON with `--json`. Exit codes: 0 done, 1 the operation failed, 2 usage
 * (unknown command or option, a config that cannot be loaded or exports nothing usable). A
 * secret is printed only once: the new one of `apps create` and `apps rotate-secret`.
 */
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { parseArgs, type ParseArgsConfig } from 'node:util';
import type { ApplicationInfo, CreateApplicationInput, OAuthRouter, UpdateApplicationInput } from '../lib';

const BIN = 'express-oauth-features';

/** A usage error: one line on stderr, exit 2. */
class UsageError extends Error {}

type Options = NonNullable<ParseArgsConfig['options']>;
type Values = Record<string, string | boolean | string[] | undefined>;

interface Command {
  /** `apps create` */
  name: string;
  summary: string;
  /** Positional arguments, for the help line (`<client-id>`). */
  args?: string[];
  options: Options;
  /** Help lines of the options, in order. */
  help: [string, string][];
  run(auth: OAuthRouter, values: Values, args: string[]): Promise<Output>;
}

/** What a command prints: `json` with --json, else `table` (lines). */
interface Output {
  json: unknown;
  table: string[];
}

const GLOBAL: Options = {
  config: { type: 'string', short: 'c' },
  json: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
};
const GLOBAL_HELP: [string, string][] = [
  ['-c, --config <file>', 'the configuration module (default ./oauth.config.js)'],
  ['--json', 'print JSON instead of a table'],
  ['-h, --help', 'show help'],
];

const APP_FIELDS: Options = {
  name: { type: 'string' },
  description: { type: 'string' },
  'homepage-url': { type: 'string' },
  'redirect-uri': { type: 'string', multiple: true },
  scope: { type: 'string', multiple: true },
  'auth-method': { type: 'string', multiple: true },
  'grant-type': { type: 'string', multiple: true },
  jwks: { type: 'string' },
  'jwks-uri': { type: 'string' },
};
const APP_FIELDS_HELP: [string, string][] = [
  ['--name <name>', 'display name'],
  ['--description <text>', 'description'],
  ['--homepage-url <url>', 'homepage URL'],
  ['--redirect-uri <uri>', 'a redirect URI (repeat for several)'],
  ['--scope <scope>', 'a scope the client may request (repeat, or space-separated)'],
  ['--auth-method <method>', 'a token endpoint auth method (repeat for several)'],
  ['--grant-type <type>', 'a grant type (repeat for several)'],
  ['--jwks <json>', 'the client\'s JWK Set, as JSON'],
  ['--jwks-uri <url>', 'the URL of the client\'s JWK Set'],
];

const COMMANDS: Command[] = [
  {
    name: 'migrate',
    summary: 'create or update the tables to the latest schema version',
    options: { 'dry-run': { type: 'boolean' } },
    help: [['--dry-run', 'print the SQL statements instead of running them']],
    async run(auth, v) {
      if (v['dry-run']) {
        const sql = await auth.migrate({ dryRun: true });
        return { json: { statements: sql }, table: sql.length === 0 ? ['The schema is up to date: nothing to run.'] : sql.map((s) => `${s};`) };
      }
      await auth.migrate();
      return { json: { migrated: true }, table: ['The schema is up to date.'] };
    },
  },
  {
    name: 'purge',
    summary: 'delete expired and revoked grants, unused codes and expired jtis',
    options: { 'older-than': { type: 'string' }, 'batch-size': { type: 'string' } },
    help: [
      ['--older-than <date>', 'an ISO 8601 date: purge what ended before it (default: now − oauthPurgeRetention)'],
      ['--batch-size <n>', 'rows per transaction (default oauthPurgeBatchSize)'],
    ],
    async run(auth, v) {
      const options: { olderThan?: Date; batchSize?: number } = {};
      if (v['older-than'] !== undefined) options.olderThan = date('--older-than', v['older-than'] as string);
      if (v['batch-size'] !== undefined) options.batchSize = integer('--batch-size', v['batch-size'] as string);
      const counts = await auth.purge(options);
      return { json: counts, table: table(['DELETED', 'ROWS'], Object.entries(counts).map(([k, n]) => [k, String(n)])) };
    },
  },
  {
    name: 'apps create',
    summary: 'register a client; prints its secret, once',
    options: { ...APP_FIELDS, 'account-id': { type: 'string' } },
    help: [...APP_FIELDS_HELP, ['--account-id <id>', 'the account that owns the client']],
    async run(auth, v) {
      if (v.name === undefined) throw new UsageError('apps create: --name is required');
      const input: CreateApplicationInput = { name: v.name as string, ...(appChanges(v) as Omit<CreateApplicationInput, 'name'>) };
      if (v['account-id'] !== undefined) input.accountId = v['account-id'] as string;
      const { clientId, clientSecret } = await auth.createApplication(input);
      const app = await auth.applications.get(clientId);
      return {
        json: { ...app, clientSecret },
        table: [...details(app), ...(clientSecret === undefined ? [] : ['', `client secret: ${clientSecret}`, 'Store the secret now: it is not shown again.'])],
      };
    },
  },
  {
    name: 'apps list',
    summary: 'list the clients, a page at a time',
    options: { limit: { type: 'string' }, after: { type: 'string' } },
    help: [
      ['--limit <n>', 'page size, 1 to 1000 (default 50)'],
      ['--after <cursor>', 'the next-page cursor a previous page printed'],
    ],
    async run(auth, v) {
      const page = await auth.applications.list({
        limit: v.limit === undefined ? undefined : integer('--limit', v.limit as string),
        after: v.after as string | undefined,
      });
      const rows = page.applications.map((a) => [a.clientId, a.name, (a.grantTypes ?? ['(all)']).join(' '), (a.tokenEndpointAuthMethods ?? ['(default)']).join(' '), a.scopes.join(' ')]);
      return {
        json: page,
        table: [...table(['CLIENT ID', 'NAME', 'GRANT TYPES', 'AUTH METHODS', 'SCOPES'], rows), ...(page.next ? ['', `more: --after ${page.next}`] : [])],
      };
    },
  },
  {
    name: 'apps show',
    summary: 'show one client',
    args: ['<client-id>'],
    options: {},
    help: [],
    async run(auth, _v, [clientId]) {
      const app = await auth.applications.get(clientId!);
      return { json: app, table: details(app) };
    },
  },
  {
    name: 'apps update',
    summary: "change a client's registration (only the options given)",
    args: ['<client-id>'],
    options: APP_FIELDS,
    help: [...APP_FIELDS_HELP, ['', "--jwks '' or --jwks-uri '' clears it"]],
    async run(auth, v, [clientId]) {
      const changes = appChanges(v);
      if (Object.keys(changes).length === 0) throw new UsageError('apps update: nothing to change (see --help)');
      const app = await auth.applications.update(clientId!, changes);
      return { json: app, table: details(app) };
    },
  },
  {
    name: 'apps rotate-secret',
    summary: 'issue a new secret; prints it, once',
    args: ['<client-id>'],
    options: { grace: { type: 'string' } },
    help: [['--grace <seconds>', 'how long the old secret keeps working (default 0)']],
    async run(auth, v, [clientId]) {
      const rotated = await auth.applications.rotateSecret(clientId!, { graceSeconds: v.grace === undefined ? 0 : integer('--grace', v.grace as string) });
      return {
        json: rotated,
        table: [
          `client id: ${rotated.clientId}`,
          `client secret: ${rotated.clientSecret}`,
          rotated.previousSecretExpiresAt ? `the old secret works until ${rotated.previousSecretExpiresAt.toISOString()}` : 'the old secret no longer works',
          'Store the secret now: it is not shown again.',
        ],
      };
    },
  },
  {
    name: 'apps delete',
    summary: 'delete a client with its grants',
    args: ['<client-id>'],
    options: {},
    help: [],
    async run(auth, _v, [clientId]) {
      const deleted = await auth.applications.delete(clientId!);
      return { json: deleted, table: [`Deleted client ${deleted.clientId} and ${deleted.grants} grant${deleted.grants === 1 ? '' : 's'}.`] };
    },
  },
  {
    name: 'grants revoke',
    summary: 'revoke every grant of a client, an account, or both',
    options: { client: { type: 'string' }, account: { type: 'string' } },
    help: [
      ['--client <client-id>', 'the grants of this client'],
      ['--account <account-id>', 'the grants of this account'],
    ],
    async run(auth, v) {
      if (v.client === undefined && v.account === undefined) throw new UsageError('grants revoke: give --client, --account or both');
      const revoked = await auth.applications.revokeGrants({ clientId: v.client as string | undefined, accountId: v.account as string | undefined });
      return { json: { revoked }, table: [`Revoked ${revoked} grant${revoked === 1 ? '' : 's'}.`] };
    },
  },
];

// ---------------------------------------------------------------------------------------------

/** Runs the CLI: the exit code. Output goes through `out` / `err` (lines). */
export async function main(argv: string[], out: (s: string) => void, err: (s: string) => void): Promise<number> {
  // A first, lenient pass finds the command words; the second parses strictly with its options.
  const loose = parseArgs({ args: argv, options: GLOBAL, allowPositionals: true, strict: false });
  const words = loose.positionals;
  const command = COMMANDS.find((c) => c.name.split(' ').every((w, i) => words[i] === w));
  const help = loose.values.help === true;
  if (!command) {
    const group = words.join(' ');
    const inGroup = COMMANDS.filter((c) => c.name.startsWith(`${group} `));
    if (help && (words.length === 0 || inGroup.length > 0)) {
      out(mainHelp(group));
      return 0;
    }
    if (words.length === 0) err(`${BIN}: a command is required (${commandList(COMMANDS)}; see --help)`);
    else if (inGroup.length > 0) err(`${BIN}: '${group}' needs a subcommand (${commandList(inGroup)}; see ${group} --help)`);
    else err(`${BIN}: unknown command '${group}' (${commandList(COMMANDS)}; see --help)`);
    return 2;
  }
  let values: Values;
  let args: string[];
  try {
    const parsed = parseArgs({ args: argv, options: { ...GLOBAL, ...command.options }, allowPositionals: true, strict: true });
    values = parsed.values as Values;
    args = parsed.positionals.slice(command.name.split(' ').length);
  } catch (e) {
    err(`${BIN} ${command.name}: ${(e as Error).message.split('\n')[0]}`);
    return 2;
  }
  if (values.help) {
    out(commandHelp(command));
    return 0;
  }
  const expected = command.args ?? [];
  if (args.length !== expected.length) {
    err(`${BIN} ${command.name}: expected ${expected.length === 0 ? 'no argument' : expected.join(' ')}, got ${args.length === 0 ? 'none' : args.map((a) => JSON.stringify(a)).join(' ')}`);
    return 2;
  }

  let loaded: Loaded;
  try {
    loaded = await loadConfig((values.config as string | undefined) ?? './oauth.config.js');
  } catch (e) {
    err(`${BIN}: ${(e as Error).message.split('\n')[0]}`);
    return 2;
  }
  let code = 0;
  try {
    const output = await command.run(loaded.auth, values, args);
    out(values.json ? JSON.stringify(output.json, null, 2) : output.table.join('\n'));
  } catch (e) {
    if (e instanceof UsageError) {
      err(`${BIN} ${e.message}`);
      code = 2;
    } else {
      err(`${BIN} ${command.name}: ${(e as Error)?.message ?? String(e)}`);
      code = 1;
    }
  } finally {
    await loaded.close();
  }
  return code;
}

interface Loaded {
  auth: OAuthRouter;
  close(): Promise<void>;
}

/** Loads the configuration module and finds the router in it (awaiting a factory). */
async function loadConfig(path: string): Promise<Loaded> {
  const file = resolve(process.cwd(), path);
  if (!existsSync(file)) throw new Error(`cannot find the configuration module ${path} (resolved to ${file}); pass --config <file>`);
  let mod: Record<string, unknown>;
  try {
    mod = require(file) as Record<string, unknown>;
  } catch (e) {
    if ((e as { code?: string }).code !== 'ERR_REQUIRE_ESM') throw new Error(`cannot load ${path}: ${(e as Error).message.split('\n')[0]}`);
    // An ES module: a real import(), which TypeScript's CommonJS output would turn into require().
    mod = (await (new Function('f', 'return import(f)') as (f: string) => Promise<Record<string, unknown>>)(`file://${file}`));
  }
  let exported: unknown = mod && typeof mod === 'object' && 'default' in mod ? mod.default : mod;
  if (typeof exported === 'function' && !isRouter(exported)) exported = await (exported as () => unknown)();
  if (!isRouter(exported)) {
    throw new Error(`${path} exports nothing usable: export the configured oauth() router, or a function returning it, as module.exports or default`);
  }
  const auth = exported;
  const db = (mod as { db?: { destroy?: () => Promise<void> } }).db;
  return {
    auth,
    async close() {
      await auth.close?.();
      if (db && typeof db.destroy === 'function') await db.destroy();
    },
  };
}

function isRouter(v: unknown): v is OAuthRouter {
  const r = v as Partial<OAuthRouter> | null;
  return (typeof v === 'function' || typeof v === 'object') && r !== null && typeof r.migrate === 'function' && typeof r.createApplication === 'function' && typeof r.applications === 'object';
}

/** The registration options given, as `update()` changes (`''` clears jwks / jwks-uri). */
function appChanges(v: Values): UpdateApplicationInput {
  const c: UpdateApplicationInput = {};
  if (v.name !== undefined) c.name = v.name as string;
  if (v.description !== undefined) c.description = v.description as string;
  if (v['homepage-url'] !== undefined) c.homepageUrl = v['homepage-url'] as string;
  if (v['redirect-uri'] !== undefined) c.redirectUri = v['redirect-uri'] as string[];
  if (v.scope !== undefined) c.scopes = (v.scope as string[]).flatMap((s) => s.split(' ')).filter(Boolean);
  if (v['auth-method'] !== undefined) c.tokenEndpointAuthMethod = v['auth-method'] as string[];
  if (v['grant-type'] !== undefined) c.grantTypes = v['grant-type'] as string[];
  if (v['jwks-uri'] !== undefined) c.jwksUri = v['jwks-uri'] === '' ? null : (v['jwks-uri'] as string);
  if (v.jwks !== undefined) c.jwks = v.jwks === '' ? null : (v.jwks as string);
  return c;
}

function integer(flag: string, s: string): number {
  if (!/^[0-9]+$/.test(s)) throw new UsageError(`${flag} must be a whole number (got ${JSON.stringify(s)})`);
  return Number(s);
}

function date(flag: string, s: string): Date {
  const d = new Date(s);
  if (Number.isNaN(d.getTime())) throw new UsageError(`${flag} must be an ISO 8601 date, like 2030-01-01T00:00:00Z (got ${JSON.stringify(s)})`);
  return d;
}

/** A client as `key: value` lines (no secret: only whether there is one). */
function details(a: ApplicationInfo): string[] {
  const rows: [string, unknown][] = [
    ['client id', a.clientId],
    ['name', a.name],
    ['description', a.description],
    ['redirect URIs', a.redirectUris.join(' ')],
    ['scopes', a.scopes.join(' ')],
    ['grant types', a.grantTypes?.join(' ') ?? '(all enabled)'],
    ['auth methods', a.tokenEndpointAuthMethods?.join(' ') ?? '(server default)'],
    ['jwks', a.jwks],
    ['jwks URI', a.jwksUri],
    ['account', a.accountId],
    ['has secret', a.hasSecret ? 'yes' : 'no'],
    ['old secret until', a.previousSecretExpiresAt?.toISOString()],
    ['created', a.createdAt?.toISOString()],
  ];
  const shown = rows.filter(([, v]) => v !== null && v !== undefined && v !== '');
  const width = Math.max(...shown.map(([k]) => k.length));
  return shown.map(([k, v]) => `${`${k}:`.padEnd(width + 2)}${String(v)}`);
}

/** Columns padded to their widest cell. */
function table(header: string[], rows: string[][]): string[] {
  const all = [header, ...rows];
  const widths = header.map((_, i) => Math.max(...all.map((r) => (r[i] ?? '').length)));
  return all.map((r) => r.map((cell, i) => (i === r.length - 1 ? cell : cell.padEnd(widths[i]!))).join('  ').trimEnd());
}

function commandList(commands: Command[]): string {
  return `commands: ${commands.map((c) => c.name).join(', ')}`;
}

function mainHelp(prefix: string): string {
  const listed = COMMANDS.filter((c) => prefix === '' || c.name.startsWith(`${prefix} `));
  const width = Math.max(...listed.map((c) => c.name.length + (c.args ? c.args.join(' ').length + 1 : 0)));
  return [
    `Usage: ${BIN} [--config <file>] [--json] <command> [options]`,
    '',
    'Commands:',
    ...listed.map((c) => `  ${[c.name, ...(c.args ?? [])].join(' ').padEnd(width)}  ${c.summary}`),
    '',
    'Options:',
    ...optionLines(GLOBAL_HELP),
    '',
    `Run '${BIN} <command> --help' for the options of a command. Exit codes: 0 done, 1 failed, 2 usage.`,
  ].join('\n');
}

function commandHelp(c: Command): string {
  return [
    `Usage: ${BIN} ${[c.name, ...(c.args ?? [])].join(' ')} [options]`,
    '',
    `${c.summary.charAt(0).toUpperCase()}${c.summary.slice(1)}.`,
    '',
    'Options:',
    ...optionLines([...c.help, ...GLOBAL_HELP]),
  ].join('\n');
}

function optionLines(help: [string, string][]): string[] {
  const width = Math.max(...help.map(([f]) => f.length));
  return help.map(([f, d]) => `  ${f.padEnd(width)}  ${d}`);
}

if (require.main === module) {
  const write = (stream: NodeJS.WriteStream) => (s: string) => void stream.write(`${s}\n`);
  main(process.argv.slice(2), write(process.stdout), write(process.stderr)).then(
    (code) => {
      // The host's knex pool (when its module does not export it as `db`) would keep the process alive.
      process.stdout.write('', () => process.exit(code));
    },
    (e: unknown) => {
      process.stderr.write(`${BIN}: ${(e as Error)?.message ?? String(e)}\n`, () => process.exit(1));
    },
  );
}
