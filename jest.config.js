const { planForMachine } = require('./spec/support/chromium');

// spec/browser needs Chromium (spec/support/chromium.js): without it those specs are left out
// and a reporter says so once, unless REQUIRE_BROWSER makes a missing browser a failure.
const browser = planForMachine(__dirname);
if (browser.error) throw new Error(browser.error);

/** @type {import('jest').Config} */
module.exports = {
  testEnvironment: 'node',
  roots: ['<rootDir>/spec'],
  testMatch: ['**/*.spec.ts'],
  testPathIgnorePatterns: ['/node_modules/', ...browser.testPathIgnorePatterns],
  reporters: browser.notice ? ['default', ['<rootDir>/spec/support/chromium_notice_reporter.js', { notice: browser.notice }]] : ['default'],
  transform: { '^.+\\.ts$': ['ts-jest', { tsconfig: 'tsconfig.json', diagnostics: { warnOnly: false } }] },
  testTimeout: 30000,
  maxWorkers: 2,
};
