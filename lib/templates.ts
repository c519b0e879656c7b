/**
 * HTML views rendered with EJS (auto-escaping `<%= %>`; our templates never use raw output).
 * `render('authorize', locals, dir)` reads `<dir>/authorize.html` when the host points
 * `oauthTemplatesDir` at its own copies, else the built-in `templates/authorize.html`.
 * Compiled templates are cached per file.
 */
import { existsSync, readFileSync } from 'node:fs';
import { isAbsolute, join, resolve } from 'node:path';
import ejs from 'ejs';

/** The package's own templates: `templates/` beside `lib/` (sources) or beside `dist/` (build). */
export const BUILT_IN_TEMPLATES_DIR: string =
  [join(__dirname, '..', 'templates'), join(__dirname, '..', '..', 'templates')].find((d) => existsSync(join(d, 'authorize.html'))) ?? join(__dirname, '..', 'templates');

const compiled = new Map<string, ejs.TemplateFunction>();

/** The file of a view: the host's copy when it has one, else the built-in one. */
export function templatePath(name: string, templatesDir?: string | null): string {
  if (!/^[a-z][a-z0-9_]*$/.test(name)) throw new TypeError(`render(): invalid template name '${name}'`);
  if (templatesDir) {
    const dir = isAbsolute(templatesDir) ? templatesDir : resolve(templatesDir);
    const own = join(dir, `${name}.html`);
    if (existsSync(own)) return own;
  }
  return join(BUILT_IN_TEMPLATES_DIR, `${name}.html`);
}

/** Renders a view to a string; every `<%= %>` output is HTML-escaped by EJS. */
export function render(name: string, locals: Record<string, unknown>, templatesDir?: string | null): string {
  const file = templatePath(name, templatesDir);
  let fn = compiled.get(file);
  if (!fn) {
    fn = ejs.compile(readFileSync(file, 'utf8'), { filename: file, async: false });
    compiled.set(file, fn);
  }
  return fn(locals);
}
