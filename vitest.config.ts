import { defineConfig } from 'vitest/config';

/**
 * The test tree mirrors the source (test/functions, test/infra, test/events) beside the harness
 * (test/simulator, test/local, test/support) and the packages as users install them
 * (test/package); a file's suffix says what it needs:
 * `*.test.ts` nothing but itself (unit), `*.{http,moto,http-moto,elasticmq}.test.ts` servers it
 * starts once per file, `*.e2e.test.ts` the whole local flow, and `test/infra/*.test.ts` a
 * synthesised stack (of the bundles in dist/functions). `npm run test:unit` runs the unit project.
 */
const SERVERS = ['http', 'moto', 'http-moto', 'elasticmq'].map((kind) => `test/**/*.${kind}.test.ts`);
const E2E = ['test/**/*.e2e.test.ts'];
const STACK = ['test/infra/*.test.ts'];
/** A synth deploys dist/functions: built by `npm test`, rebuilt before these projects when stale. */
const BUILT = ['test/support/functions-built.ts'];
/** The unit project: every test that needs nothing but itself (also what `npm run mutate` runs). */
export const UNIT = { name: 'unit', include: ['test/**/*.test.ts'], exclude: [...SERVERS, ...E2E, ...STACK] };

export default defineConfig({
  test: {
    setupFiles: ['test/setup.ts'],
    // Two cores: files run in parallel forks, each starting its own servers once.
    pool: 'forks',
    maxWorkers: 2,
    testTimeout: 30_000,
    hookTimeout: 120_000,
    restoreMocks: true,
    // CI reads a JSON report to print one summary line (see .ci/run).
    reporters: process.env.CI ? ['default', ['json', { outputFile: '.ci/results.json' }]] : ['default'],
    projects: [
      {
        extends: true,
        test: UNIT,
      },
      { extends: true, test: { name: 'integration', include: SERVERS, exclude: STACK, globalSetup: BUILT } },
      // On a loaded machine one synth takes most of a minute.
      { extends: true, test: { name: 'stack', include: STACK, testTimeout: 120_000, globalSetup: BUILT } },
      { extends: true, test: { name: 'e2e', include: E2E, globalSetup: BUILT } },
    ],
  },
});
