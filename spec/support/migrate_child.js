/**
 * A separate process that runs `auth.migrate()` on a SQLite file, for the migration race of
 * spec/lib/migrations.spec.ts: `node migrate_child.js <file> <feature,…>`. It loads lib/ from
 * source, each .ts file transpiled by TypeScript on require. It prints `migrating` just before
 * calling migrate() and `migrated` once it resolved; a failure goes to stderr, exit code 1.
 */
const { readFileSync } = require('node:fs');
const ts = require('typescript');

require.extensions['.ts'] = function transpile(module, filename) {
  const { outputText } = ts.transpileModule(readFileSync(filename, 'utf8'), {
    fileName: filename,
    compilerOptions: { module: ts.ModuleKind.CommonJS, target: ts.ScriptTarget.ES2022, esModuleInterop: true },
  });
  module._compile(outputText, filename);
};

const knex = require('knex');
const { oauth } = require('../../lib');

const [filename, features] = process.argv.slice(2);
const db = knex({ client: 'better-sqlite3', connection: { filename }, useNullAsDefault: true, pool: { min: 1, max: 1 } });
const auth = oauth({ db, issuer: 'https://as.example.com', enable: features ? features.split(',') : [] });
process.stdout.write('migrating\n');
auth.migrate().then(
  async () => {
    await db.destroy();
    process.stdout.write('migrated\n');
  },
  async (e) => {
    process.stderr.write(`${e && e.stack ? e.stack : e}\n`);
    await db.destroy();
    process.exit(1);
  },
);
