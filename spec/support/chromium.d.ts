/** Types of chromium.js (plain CommonJS, loaded by jest.config.js). */
export interface BrowserSpecPlan {
  /** Extra jest `testPathIgnorePatterns`. */
  testPathIgnorePatterns: string[];
  /** The one line printed after the run when the browser specs were left out. */
  notice: string | null;
  /** Why the run must fail (browser required but missing). */
  error: string | null;
}
export const DEFAULT_CHROMIUM_PATH: string;
export const BROWSER_SPEC_DIR: string;
export function chromiumPath(env?: NodeJS.ProcessEnv): string;
export function browserRequired(env?: NodeJS.ProcessEnv): boolean;
export function isExecutableFile(path: string): boolean;
export function browserSpecs(rootDir: string): string[];
export function planBrowserSpecs(facts: { chromiumPath: string; present: boolean; required: boolean; specs: string[] }): BrowserSpecPlan;
export function planForMachine(rootDir: string, env?: NodeJS.ProcessEnv): BrowserSpecPlan;
