import { setupCli, hostConfig, type Cli } from './support';

let cli: Cli;
let config: string;
const OPTIONS = "{ enable: ['client_credentials_grant', 'refresh'], issuer: 'https://as.example', oauthClientSecretHashCost: 4, oauthApplicationsTable: 'clients' }";

beforeAll(async () => {
  cli = await setupCli();
  config = cli.config('oauth.config.js', hostConfig(cli, OPTIONS));
}, 180_000);

afterAll(async () => {
  await cli?.cleanup();
});

const run = (...args: string[]) => cli.run(['--config', config, ...args]);
const json = async (...args: string[]) => {
  const r = await run(...args, '--json');
  if (r.code !== 0) throw new Error(`${args.join(' ')} exited ${r.code}: ${r.stderr}`);
  expect(r.stderr).toBe('');
  return JSON.parse(r.stdout) as Record<string, any>;
};

/** One line on stderr, nothing on stdout. */
function expectOneLineError(r: { code: number; stdout: string; stderr: string }, code: number, text: string | RegExp): void {
  expect(r.code).toBe(code);
  expect(r.stdout).toBe('');
  expect(r.stderr.trimEnd().split('\n')).toHaveLength(1);
  expect(r.stderr.trimEnd()).toMatch(text);
}

const COMMANDS = ['migrate', 'purge', 'apps create', 'apps list', 'apps show', 'apps update', 'apps rotate-secret', 'apps delete', 'grants revoke'];

describe('cli › help', () => {
  it('lists every command with --help (exit 0), without loading a config', async () => {
    const r = await cli.run(['--help']);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^Usage: express-oauth-features \[--config <file>\] \[--json\] <command> \[options\]/);
    for (const c of COMMANDS) expect(r.stdout).toContain(`  ${c}`);
  });

  it.each(COMMANDS)('%s --help prints its usage and options (exit 0)', async (command) => {
    const r = await cli.run([...command.split(' '), '--help', '--config', 'missing.js']);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain(`Usage: express-oauth-features ${command}`);
    expect(r.stdout).toContain('--json');
  });

  it('apps --help lists the apps subcommands only', async () => {
    const r = await cli.run(['apps', '--help']);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('apps rotate-secret <client-id>');
    expect(r.stdout).not.toContain('grants revoke');
  });
});

describe('cli › usage errors (exit 2, one line on stderr)', () => {
  it.each([
    ['an unknown command', ['frobnicate'], /^express-oauth-features: unknown command 'frobnicate' \(commands: migrate, purge, apps create/],
    ['no command', [], /^express-oauth-features: a command is required/],
    ['a group without its subcommand', ['apps'], /^express-oauth-features: 'apps' needs a subcommand \(commands: apps create, apps list/],
    ['an unknown option', ['apps', 'list', '--colour'], /^express-oauth-features apps list: Unknown option '--colour'/],
    ['a missing client id', ['apps', 'show'], /^express-oauth-features apps show: expected <client-id>, got none/],
    ['grants revoke without a filter', ['grants', 'revoke'], /^express-oauth-features grants revoke: give --client, --account or both/],
    ['a bad --older-than', ['purge', '--older-than', 'yesterday'], /^express-oauth-features --older-than must be an ISO 8601 date/],
  ])('%s', async (_label, args, message) => {
    expectOneLineError(await run(...args), 2, message);
  });

  it('a configuration module that does not exist', async () => {
    expectOneLineError(await cli.run(['--config', './nope.config.js', 'apps', 'list']), 2, /^express-oauth-features: cannot find the configuration module \.\/nope\.config\.js \(resolved to .*nope\.config\.js\); pass --config <file>$/);
  });

  it('a configuration module that exports nothing usable', async () => {
    const empty = cli.config('empty.config.js', 'module.exports = { db: null };\n');
    expectOneLineError(await cli.run(['--config', empty, 'apps', 'list']), 2, /^express-oauth-features: empty\.config\.js exports nothing usable: export the configured oauth\(\) router, or a function returning it/);
    const fn = cli.config('fn.config.js', 'module.exports = async () => 42;\n');
    expectOneLineError(await cli.run(['--config', fn, 'apps', 'list']), 2, /exports nothing usable/);
  });

  it('a configuration module that throws when loaded', async () => {
    const broken = cli.config('broken.config.js', "throw new Error('no DATABASE_URL');\n");
    expectOneLineError(await cli.run(['--config', broken, 'migrate']), 2, /^express-oauth-features: cannot load broken\.config\.js: no DATABASE_URL$/);
  });
});

describe('cli › commands (host configuration: table clients)', () => {
  it('migrate --dry-run prints the SQL and changes nothing; migrate creates the host-named tables', async () => {
    const dry = await json('migrate', '--dry-run');
    expect(dry.statements).toEqual(expect.arrayContaining([expect.stringMatching(/^create table .clients./)]));
    expect(await cli.db.schema.hasTable('clients')).toBe(false);
    const table = await run('migrate', '--dry-run');
    expect(table.code).toBe(0);
    expect(table.stdout.split('\n').filter((l) => /^create table .clients./.test(l))[0]).toMatch(/;$/);

    expect(await run('migrate')).toEqual({ code: 0, stdout: 'The schema is up to date.\n', stderr: '' });
    expect(await cli.db.schema.hasTable('clients')).toBe(true);
    expect(await json('migrate', '--dry-run')).toEqual({ statements: [] });
  });

  it('apps create / list / show / update / rotate-secret / delete, printing a secret only when it is new', async () => {
    const created = await json('apps', 'create', '--name', 'Books', '--grant-type', 'client_credentials', '--scope', 'books.read books.write', '--redirect-uri', 'https://books.example/cb');
    expect(created).toMatchObject({ name: 'Books', clientId: expect.any(String), clientSecret: expect.stringMatching(/^[A-Za-z0-9_-]{43}$/), scopes: ['books.read', 'books.write'], grantTypes: ['client_credentials'], hasSecret: true });
    expect(created).not.toHaveProperty('clientSecretHash');
    const { clientId, clientSecret } = created as { clientId: string; clientSecret: string };
    expect(await cli.db('clients').where('client_id', clientId).first()).toMatchObject({ name: 'Books' });

    const tableCreate = await run('apps', 'create', '--name', 'Other', '--grant-type', 'client_credentials');
    expect(tableCreate.code).toBe(0);
    expect(tableCreate.stdout).toMatch(/^client id: +\S+$/m);
    expect(tableCreate.stdout).toMatch(/^client secret: [A-Za-z0-9_-]{43}$/m);
    expect(tableCreate.stdout).toContain('Store the secret now: it is not shown again.');

    const page = await json('apps', 'list', '--limit', '1');
    expect(page.applications).toEqual([expect.objectContaining({ clientId, name: 'Books' })]);
    expect(page.next).toEqual(expect.any(String));
    const rest = await json('apps', 'list', '--limit', '1', '--after', page.next);
    expect(rest).toMatchObject({ applications: [{ name: 'Other' }], next: null });
    const list = await run('apps', 'list');
    expect(list.code).toBe(0);
    expect(list.stdout.split('\n')[0]).toMatch(/^CLIENT ID +NAME +GRANT TYPES +AUTH METHODS +SCOPES$/);
    expect(list.stdout).toMatch(new RegExp(`^${clientId} +Books +client_credentials +\\(default\\) +books.read books.write$`, 'm'));

    const show = await run('apps', 'show', clientId);
    expect(show.code).toBe(0);
    expect(show.stdout).toMatch(/^name: +Books$/m);
    expect(show.stdout).toMatch(/^has secret: +yes$/m);
    expect(await json('apps', 'show', clientId)).toMatchObject({ clientId, redirectUris: ['https://books.example/cb'] });

    const updated = await json('apps', 'update', clientId, '--name', 'Library', '--redirect-uri', 'https://library.example/cb', '--redirect-uri', 'http://127.0.0.1/cb', '--auth-method', 'client_secret_post');
    expect(updated).toMatchObject({ name: 'Library', redirectUris: ['https://library.example/cb', 'http://127.0.0.1/cb'], tokenEndpointAuthMethods: ['client_secret_post'] });

    const rotated = await json('apps', 'rotate-secret', clientId, '--grace', '3600');
    expect(rotated).toEqual({ clientId, clientSecret: expect.stringMatching(/^[A-Za-z0-9_-]{43}$/), previousSecretExpiresAt: expect.any(String) });
    expect(rotated.clientSecret).not.toBe(clientSecret);
    const rotatedTable = await run('apps', 'rotate-secret', clientId);
    expect(rotatedTable.stdout).toMatch(/^client secret: [A-Za-z0-9_-]{43}$/m);
    expect(rotatedTable.stdout).toContain('the old secret no longer works');

    // No secret in anything but create and rotate-secret.
    for (const args of [['apps', 'list'], ['apps', 'show', clientId], ['apps', 'list', '--json'], ['apps', 'show', clientId, '--json']]) {
      const r = await run(...args);
      for (const secret of [clientSecret, rotated.clientSecret as string]) expect(r.stdout).not.toContain(secret);
      expect(r.stdout).not.toMatch(/\$2[aby]\$/);
    }

    expect(await run('apps', 'delete', clientId)).toEqual({ code: 0, stdout: `Deleted client ${clientId} and 0 grants.\n`, stderr: '' });
    expectOneLineError(await run('apps', 'show', clientId), 1, `express-oauth-features apps show: applications.get(): unknown client id "${clientId}"`);
  });

  it('reports a refused change or an unknown client with exit 1 and one line, writing nothing', async () => {
    const { clientId } = await json('apps', 'create', '--name', 'Strict', '--grant-type', 'client_credentials');
    expectOneLineError(await run('apps', 'update', clientId, '--redirect-uri', 'http://app.example/cb'), 1, /^express-oauth-features apps update: applications\.update\(\): redirect URI 'http:\/\/app\.example\/cb' uses http outside loopback/);
    expectOneLineError(await run('apps', 'update', clientId, '--grant-type', 'password'), 1, /grant type 'password' is not provided by the enabled features/);
    expectOneLineError(await run('apps', 'update', clientId, '--jwks', '{"kty":"RSA"}'), 1, /jwks must be a JWK Set/);
    expectOneLineError(await run('apps', 'rotate-secret', 'nope'), 1, /unknown client id "nope"/);
    expectOneLineError(await run('apps', 'create', '--name', 'x', '--grant-type', 'authorization_code'), 1, /grant type 'authorization_code' is not provided/);
    expectOneLineError(await run('apps', 'update', clientId), 2, /nothing to change/);
    expect(await json('apps', 'show', clientId)).toMatchObject({ redirectUris: [], grantTypes: ['client_credentials'], jwks: null });
  });

  it('grants revoke --client / --account revokes and counts', async () => {
    const { clientId } = await json('apps', 'create', '--name', 'Granted', '--grant-type', 'client_credentials');
    const app = await cli.db('clients').where('client_id', clientId).first();
    const row = (account: string, n: number) => ({ oauth_application_id: app.id, account_id: account, type: 'client_credentials', token: `hash-${clientId}-${n}`, expires_in: new Date(Date.now() + 3600_000), scopes: 'books.read', created_at: new Date() });
    await cli.db('oauth_grants').insert([row('alice', 1), row('bob', 2), row('alice', 3)]);

    expect(await json('grants', 'revoke', '--client', clientId, '--account', 'bob')).toEqual({ revoked: 1 });
    expect(await run('grants', 'revoke', '--account', 'alice')).toEqual({ code: 0, stdout: 'Revoked 2 grants.\n', stderr: '' });
    expect(await json('grants', 'revoke', '--client', clientId)).toEqual({ revoked: 0 });
    expectOneLineError(await run('grants', 'revoke', '--client', 'nope'), 1, /unknown client id "nope"/);
    expect(await json('apps', 'delete', clientId)).toEqual({ clientId, grants: 3 });
  });

  it('purge prints the counts per kind of row', async () => {
    expect(await json('purge')).toEqual({ grants: 0, codes: 0, retiredRefreshTokens: 0, jtis: 0, metadataDocumentClients: 0 });
    const r = await run('purge', '--batch-size', '100');
    expect(r.code).toBe(0);
    expect(r.stdout.split('\n')).toEqual(expect.arrayContaining([expect.stringMatching(/^DELETED +ROWS$/), expect.stringMatching(/^grants +0$/), expect.stringMatching(/^retiredRefreshTokens +0$/)]));
  });

  it('loads an async factory exported as default, and destroys the db it exports', async () => {
    const factory = cli.config('factory.config.js', hostConfig(cli, OPTIONS, 'async-factory'));
    const r = await cli.run(['--config', factory, 'apps', 'list', '--json']);
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout).applications.length).toBeGreaterThan(0);
  });
});
