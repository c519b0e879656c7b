/**
 * Issue 11 item 1: the published package is the library and its templates (no demo, bench,
 * scripts or specs), and a host installs only what the library uses: express and the database
 * drivers are peers, the demo's packages are for development only.
 *
 * `npm pack --dry-run` lists what would be published. It runs without scripts (its `prepare`
 * would build): the build is run here only when an output it must see is missing, the demo's
 * included, so that a `files` entry shipping it would show.
 */
import { beforeAll, describe, expect, it } from '@jest/globals';
import { execFileSync } from 'node:child_process';
import { builtinModules } from 'node:module';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

const ROOT = join(__dirname, '..', '..');
const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as {
  files: string[];
  dependencies: Record<string, string>;
  devDependencies: Record<string, string>;
  peerDependencies: Record<string, string>;
  peerDependenciesMeta: Record<string, { optional?: boolean }>;
};

let published: string[];

beforeAll(() => {
  const outputs = ['dist/lib/index.js', 'dist/lib/index.d.ts', 'dist/features/oauth_base.js', 'dist/examples/server.js', 'dist/bench/run.js', 'dist/scripts/generate_docs.js', 'dist/bin/express-oauth-features.js'];
  if (outputs.some((f) => !existsSync(join(ROOT, f)))) {
    // tsc emits even when another file fails to type-check; what must exist is asserted below.
    try {
      execFileSync(process.execPath, [require.resolve('typescript/bin/tsc'), '-p', 'tsconfig.build.json'], { cwd: ROOT, stdio: 'pipe' });
    } catch {}
  }
  const out = execFileSync('npm', ['pack', '--dry-run', '--json', '--ignore-scripts'], { cwd: ROOT, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  published = (JSON.parse(out) as { files: { path: string }[] }[])[0]!.files.map((f) => f.path);
}, 60_000);

/** `dist/lib/x.js` → `dist/lib`; `templates/a.html` → `templates`; `LICENSE` → `LICENSE`. */
const topLevel = (path: string): string => path.split('/').slice(0, path.startsWith('dist/') ? 2 : 1).join('/');

/** The packages a compiled file loads (`require("x")`) or a declaration file names (`from "x"`, `import("x")`). */
function packagesIn(files: string[]): Set<string> {
  const names = new Set<string>();
  for (const file of files) {
    const text = readFileSync(join(ROOT, file), 'utf8').replace(/\/\*[\s\S]*?\*\//g, '').replace(/^\s*\/\/.*$/gm, '');
    for (const m of text.matchAll(/(?:require\(|from |import\()\s*["']([^"'./][^"']*)["']/g)) {
      const spec = m[1]!;
      if (spec.startsWith('node:') || builtinModules.includes(spec)) continue;
      names.add(spec.split('/').slice(0, spec.startsWith('@') ? 2 : 1).join('/'));
    }
  }
  return names;
}

describe('lib › packaging (npm pack --dry-run)', () => {
  it('publishes the compiled library, its templates, README, LICENSE and CHANGELOG only', () => {
    expect([...new Set(published.map(topLevel))].sort()).toEqual(
      ['CHANGELOG.md', 'LICENSE', 'README.md', 'dist/bin', 'dist/features', 'dist/lib', 'package.json', 'templates'].sort(),
    );
    const templates = readdirSync(join(ROOT, 'templates')).filter((f) => f.endsWith('.html'));
    expect(templates.length).toBeGreaterThan(0);
    expect(published.filter((p) => p.startsWith('templates/')).sort()).toEqual(templates.map((f) => `templates/${f}`).sort());
    expect(published).toEqual(expect.arrayContaining(['dist/lib/index.js', 'dist/lib/index.d.ts', 'dist/features/oauth_base.js', 'dist/features/oauth_base.d.ts']));
    // The admin CLI (package.json `bin`) is published with its shebang.
    expect((pkg as unknown as { bin: Record<string, string> }).bin).toEqual({ 'express-oauth-features': 'dist/bin/express-oauth-features.js' });
    expect(published).toContain('dist/bin/express-oauth-features.js');
    expect(readFileSync(join(ROOT, 'dist/bin/express-oauth-features.js'), 'utf8')).toMatch(/^#!\/usr\/bin\/env node\n/);
  });

  it('has no demo, bench, scripts, specs, sources or CI files in it', () => {
    for (const prefix of ['dist/examples/', 'dist/bench/', 'dist/scripts/', 'dist/spec/', 'spec/', 'lib/', 'features/', 'examples/', 'bench/', 'scripts/', 'docs/', '.ci/', 'node_modules/']) {
      expect(published.filter((p) => p.startsWith(prefix))).toEqual([]);
    }
    expect(published.filter((p) => p.endsWith('.ts') && !p.endsWith('.d.ts'))).toEqual([]);
  });

  it("express and knex are required peers (the host's own copies); the drivers and @types/express are optional peers", () => {
    expect(pkg.peerDependencies).toEqual({
      '@types/express': '^4.17.21 || ^5',
      'better-sqlite3': '^12.0.0',
      express: '^4.21 || ^5',
      knex: '^3.1.0',
      pg: '^8.0.0',
      sqlite3: '^5.0.0',
    });
    expect(pkg.peerDependenciesMeta).toEqual({
      '@types/express': { optional: true },
      'better-sqlite3': { optional: true },
      pg: { optional: true },
      sqlite3: { optional: true },
    });
    for (const name of ['express', 'knex', 'better-sqlite3', 'pg', 'sqlite3']) expect(pkg.dependencies[name]).toBeUndefined();
  });

  it("the demo's packages are development dependencies only, beside express and the drivers the specs use", () => {
    for (const name of ['passport-local', 'express-session', 'passport']) expect(pkg.dependencies[name]).toBeUndefined();
    for (const name of ['passport-local', 'express-session', 'passport', 'express', 'knex', 'better-sqlite3', 'pg']) expect(pkg.devDependencies[name]).toEqual(expect.any(String));
  });

  it("the published code loads exactly its dependencies and express (knex is the host's instance); its declarations name only dependencies and peers", () => {
    const js = published.filter((p) => p.endsWith('.js'));
    expect([...packagesIn(js)].sort()).toEqual([...Object.keys(pkg.dependencies), 'express'].sort());
    const declared = new Set([...Object.keys(pkg.dependencies), ...Object.keys(pkg.peerDependencies)]);
    expect([...packagesIn(published.filter((p) => p.endsWith('.d.ts')))].filter((name) => !declared.has(name))).toEqual([]);
  });
});
