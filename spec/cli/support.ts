/**
 * Runs the admin CLI as a child process, compiled once per spec file (with the library, into
 * node_modules/.cache, so the packages resolve and the shared dist/ is left alone), against a
 * SQLite file or a fresh PostgreSQL schema (DATABASE_URL), with a configuration module written
 * to a temporary directory.
 */
import { execFile, execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import knex, { type Knex } from 'knex';
import { DATABASE_URL } from '../support/db';

const ROOT = join(__dirname, '..', '..');

export interface Cli {
  /** The compiled output: `${out}/bin/express-oauth-features.js`, `${out}/lib/index.js`. */
  out: string;
  /** The temporary directory of configuration modules (the CLI's cwd). */
  dir: string;
  /** A knex on the CLI's database, for the spec's own checks. */
  db: Knex;
  /** The knex configuration a config module uses, as a JS expression. */
  dbConfig: string;
  run(args: string[]): Promise<{ code: number; stdout: string; stderr: string }>;
  /** Writes a configuration module; returns its file name (relative to `dir`). */
  config(name: string, body: string): string;
  cleanup(): Promise<void>;
}

export async function setupCli(): Promise<Cli> {
  const out = join(ROOT, 'node_modules', '.cache', `cli-spec-${process.pid}-${randomBytes(3).toString('hex')}`);
  mkdirSync(out, { recursive: true });
  // tsc emits even when another engineer's file fails to type-check; the CLI's own specs say whether it works.
  try {
    execFileSync(process.execPath, [require.resolve('typescript/bin/tsc'), '-p', join(ROOT, 'tsconfig.build.json'), '--outDir', out, '--declaration', 'false'], { cwd: ROOT, stdio: 'pipe' });
  } catch {}
  const dir = mkdtempSync(join(tmpdir(), 'eof-cli-'));
  let db: Knex;
  let dbConfig: string;
  let dropSchema = async (): Promise<void> => undefined;
  if (DATABASE_URL) {
    const schema = `cli_${randomBytes(6).toString('hex')}`;
    const admin = knex({ client: 'pg', connection: DATABASE_URL, pool: { min: 0, max: 1 } });
    await admin.raw('create schema ??', [schema]);
    await admin.destroy();
    const config = { client: 'pg', connection: DATABASE_URL, searchPath: [schema], pool: { min: 0, max: 2 } };
    db = knex(config);
    dbConfig = JSON.stringify(config);
    dropSchema = async () => void (await db.raw('drop schema ?? cascade', [schema]));
  } else {
    const config = { client: 'better-sqlite3', connection: { filename: join(dir, 'oauth.sqlite3') }, useNullAsDefault: true, pool: { min: 1, max: 1 } };
    db = knex(config);
    dbConfig = JSON.stringify(config);
  }
  const bin = join(out, 'bin', 'express-oauth-features.js');
  return {
    out,
    dir,
    db,
    dbConfig,
    run(args) {
      return new Promise((resolve) => {
        execFile(process.execPath, [bin, ...args], { cwd: dir, env: { ...process.env, NODE_ENV: 'test' } }, (error, stdout, stderr) => {
          const code = error ? (typeof error.code === 'number' ? error.code : -1) : 0;
          resolve({ code, stdout, stderr });
        });
      });
    },
    config(name, body) {
      writeFileSync(join(dir, name), body);
      return name;
    },
    async cleanup() {
      await dropSchema();
      await db.destroy();
      rmSync(dir, { recursive: true, force: true });
      rmSync(out, { recursive: true, force: true });
    },
  };
}

/** A configuration module body: the host's oauth() on the spec's database, with `options` (a JS object literal). */
export function hostConfig(cli: Cli, options: string, shape: 'router' | 'async-factory' = 'router'): string {
  const head = `const knex = require(${JSON.stringify(require.resolve('knex'))});
const { oauth } = require(${JSON.stringify(join(cli.out, 'lib', 'index.js'))});
`;
  if (shape === 'router') {
    return `${head}const db = knex(${cli.dbConfig});
module.exports = oauth({ db, ...${options} });
`;
  }
  return `${head}const db = knex(${cli.dbConfig});
exports.db = db;
exports.default = async () => oauth({ db, ...${options} });
`;
}
