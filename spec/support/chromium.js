/**
 * Chromium for the specs in spec/browser, and what jest does without it.
 *
 * The browser specs drive Debian's Chromium with playwright-core (which downloads no browser),
 * at CHROMIUM_PATH or /usr/bin/chromium. A machine with only Node runs everything else and is
 * told, in one line, which specs did not run and how to get the browser; with
 * REQUIRE_BROWSER=1 (set by .ci/run) a missing browser fails the run instead.
 *
 * Plain CommonJS: jest.config.js loads it before any transform exists.
 */
'use strict';
const { accessSync, constants, readdirSync, statSync } = require('node:fs');
const { join } = require('node:path');

const DEFAULT_CHROMIUM_PATH = '/usr/bin/chromium';
/** The folder of the specs that need Chromium, relative to the project root. */
const BROWSER_SPEC_DIR = 'spec/browser';

/** The Chromium binary the browser specs launch. */
function chromiumPath(env = process.env) {
  return env.CHROMIUM_PATH || DEFAULT_CHROMIUM_PATH;
}

/** REQUIRE_BROWSER set to anything but '' or '0'. */
function browserRequired(env = process.env) {
  const value = env.REQUIRE_BROWSER;
  return value !== undefined && value !== '' && value !== '0';
}

/** An executable regular file at `path`. */
function isExecutableFile(path) {
  try {
    accessSync(path, constants.X_OK);
    return statSync(path).isFile();
  } catch {
    return false;
  }
}

/** The browser spec files, as paths relative to `rootDir`, sorted. */
function browserSpecs(rootDir) {
  return readdirSync(join(rootDir, BROWSER_SPEC_DIR))
    .filter((name) => name.endsWith('.spec.ts'))
    .sort()
    .map((name) => `${BROWSER_SPEC_DIR}/${name}`);
}

/**
 * The decision, from plain facts: with the browser present nothing changes; without it the
 * browser specs are ignored and `notice` says so, unless the browser is required, in which
 * case `error` says why the run cannot go on.
 */
function planBrowserSpecs({ chromiumPath: path, present, required, specs }) {
  if (present) return { testPathIgnorePatterns: [], notice: null, error: null };
  const install = `sudo apt-get install chromium, or set CHROMIUM_PATH to a Chromium binary`;
  if (required) {
    return {
      testPathIgnorePatterns: [],
      notice: null,
      error: `REQUIRE_BROWSER is set but there is no Chromium at ${path}: install it (${install}).`,
    };
  }
  return {
    testPathIgnorePatterns: [`<rootDir>/${BROWSER_SPEC_DIR}/`],
    notice: `BROWSER SPECS DID NOT RUN (${specs.join(', ')}): no Chromium at ${path}. Install it (${install}); REQUIRE_BROWSER=1 turns this into a failure.`,
    error: null,
  };
}

/** The decision for this machine and environment. */
function planForMachine(rootDir, env = process.env) {
  const path = chromiumPath(env);
  return planBrowserSpecs({ chromiumPath: path, present: isExecutableFile(path), required: browserRequired(env), specs: browserSpecs(rootDir) });
}

module.exports = { DEFAULT_CHROMIUM_PATH, BROWSER_SPEC_DIR, chromiumPath, browserRequired, isExecutableFile, browserSpecs, planBrowserSpecs, planForMachine };
