/**
 * `npm test` on a machine with only Node: without Chromium the specs in spec/browser are left
 * out and one line says so; with REQUIRE_BROWSER (set by .ci/run) a missing browser is a
 * failure (spec/support/chromium.js, applied by jest.config.js).
 */
import { execFile } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { browserRequired, chromiumPath, planBrowserSpecs, planForMachine } from '../support/chromium';

const ROOT = resolve(__dirname, '../..');
const SPECS = ['spec/browser/demo_flow.spec.ts', 'spec/browser/demo_ui.spec.ts'];
const NOTICE =
  'BROWSER SPECS DID NOT RUN (spec/browser/demo_flow.spec.ts, spec/browser/demo_ui.spec.ts): no Chromium at /opt/none/chromium. ' +
  'Install it (sudo apt-get install chromium, or set CHROMIUM_PATH to a Chromium binary); REQUIRE_BROWSER=1 turns this into a failure.';

describe('test setup › the browser specs', () => {
  it('run as usual when Chromium is there', () => {
    expect(planBrowserSpecs({ chromiumPath: '/usr/bin/chromium', present: true, required: false, specs: SPECS })).toEqual({ testPathIgnorePatterns: [], notice: null, error: null });
    expect(planBrowserSpecs({ chromiumPath: '/usr/bin/chromium', present: true, required: true, specs: SPECS })).toEqual({ testPathIgnorePatterns: [], notice: null, error: null });
  });

  it('are left out with one line naming them and the install command when Chromium is missing', () => {
    expect(planBrowserSpecs({ chromiumPath: '/opt/none/chromium', present: false, required: false, specs: SPECS })).toEqual({
      testPathIgnorePatterns: ['<rootDir>/spec/browser/'],
      notice: NOTICE,
      error: null,
    });
  });

  it('fail the run when Chromium is missing and REQUIRE_BROWSER is set', () => {
    expect(planBrowserSpecs({ chromiumPath: '/opt/none/chromium', present: false, required: true, specs: SPECS })).toEqual({
      testPathIgnorePatterns: [],
      notice: null,
      error: 'REQUIRE_BROWSER is set but there is no Chromium at /opt/none/chromium: install it (sudo apt-get install chromium, or set CHROMIUM_PATH to a Chromium binary).',
    });
  });

  it('look for Chromium at CHROMIUM_PATH, else /usr/bin/chromium; REQUIRE_BROWSER is on unless empty or 0', () => {
    expect(chromiumPath({})).toBe('/usr/bin/chromium');
    expect(chromiumPath({ CHROMIUM_PATH: '' })).toBe('/usr/bin/chromium');
    expect(chromiumPath({ CHROMIUM_PATH: '/opt/chromium/chrome' })).toBe('/opt/chromium/chrome');
    expect([undefined, '', '0', '1', 'yes'].map((v) => browserRequired(v === undefined ? {} : { REQUIRE_BROWSER: v }))).toEqual([false, false, false, true, true]);
  });

  describe('on a machine', () => {
    let dir: string;
    beforeAll(() => {
      dir = mkdtempSync(join(tmpdir(), 'eof-setup-'));
      mkdirSync(join(dir, 'spec/browser'), { recursive: true });
      for (const f of ['b.spec.ts', 'a.spec.ts', 'helper.ts']) writeFileSync(join(dir, 'spec/browser', f), '');
      writeFileSync(join(dir, 'chromium'), '#!/bin/sh\n');
      chmodSync(join(dir, 'chromium'), 0o755);
      writeFileSync(join(dir, 'not-executable'), '');
      chmodSync(join(dir, 'not-executable'), 0o644);
    });
    afterAll(() => rmSync(dir, { recursive: true, force: true }));

    it('counts an executable file as the browser, and lists the spec files of spec/browser when it is missing', () => {
      expect(planForMachine(dir, { CHROMIUM_PATH: join(dir, 'chromium') }).notice).toBeNull();
      for (const missing of [join(dir, 'nothing-here'), join(dir, 'not-executable'), join(dir, 'spec')]) {
        const plan = planForMachine(dir, { CHROMIUM_PATH: missing });
        expect(plan.testPathIgnorePatterns).toEqual(['<rootDir>/spec/browser/']);
        expect(plan.notice).toBe(
          `BROWSER SPECS DID NOT RUN (spec/browser/a.spec.ts, spec/browser/b.spec.ts): no Chromium at ${missing}. ` +
            'Install it (sudo apt-get install chromium, or set CHROMIUM_PATH to a Chromium binary); REQUIRE_BROWSER=1 turns this into a failure.',
        );
      }
      expect(planForMachine(dir, { CHROMIUM_PATH: join(dir, 'nothing-here'), REQUIRE_BROWSER: '1' }).error).toMatch(/^REQUIRE_BROWSER is set but there is no Chromium at /);
    });
  });

  describe('jest with this configuration', () => {
    const run = (env: Record<string, string>, args: string[]) =>
      promisify(execFile)(process.execPath, [require.resolve('jest/bin/jest'), ...args], { cwd: ROOT, env: { ...process.env, ...env, FORCE_COLOR: '0' } }).then(
        ({ stdout, stderr }) => ({ code: 0, stdout, stderr }),
        (e: { code: number; stdout: string; stderr: string }) => ({ code: e.code, stdout: e.stdout, stderr: e.stderr }),
      );
    const missing = join(tmpdir(), 'eof-no-chromium-here');

    it('leaves spec/browser out without Chromium, keeps the rest, and prints the line once at the end', async () => {
      const listed = await run({ CHROMIUM_PATH: missing, REQUIRE_BROWSER: '' }, ['--listTests']);
      expect(listed.code).toBe(0);
      const files = listed.stdout.split('\n').filter(Boolean);
      expect(files.filter((f) => f.includes('/spec/browser/'))).toEqual([]);
      expect(files).toContain(join(ROOT, 'spec/lib/test_setup.spec.ts'));

      const ran = await run({ CHROMIUM_PATH: missing, REQUIRE_BROWSER: '' }, ['--passWithNoTests', 'no-spec-has-this-name']);
      expect(ran.code).toBe(0);
      const lines = ran.stderr.split('\n').filter((l) => l.startsWith('BROWSER SPECS DID NOT RUN'));
      expect(lines).toHaveLength(1);
      expect(lines[0]).toMatch(new RegExp(`^BROWSER SPECS DID NOT RUN \\(spec/browser/[a-z_]+\\.spec\\.ts(, spec/browser/[a-z_]+\\.spec\\.ts)*\\): no Chromium at ${missing}\\. `));
    });

    it('fails before running anything when REQUIRE_BROWSER is set and Chromium is missing', async () => {
      const res = await run({ CHROMIUM_PATH: missing, REQUIRE_BROWSER: '1' }, ['--listTests']);
      expect(res.code).not.toBe(0);
      expect(res.stderr).toContain(`REQUIRE_BROWSER is set but there is no Chromium at ${missing}: install it (sudo apt-get install chromium, or set CHROMIUM_PATH to a Chromium binary).`);
      expect(res.stdout).toBe('');
    });
  });
});
