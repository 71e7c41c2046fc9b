/**
 * Mutation testing (`npm run mutate`, not part of `npm test`): small breaks of the decision
 * code, each of which the unit tests must notice. `npx stryker run --mutate <file>` for one
 * module; incremental, so a re-run only tests the mutants whose code or tests changed.
 * @type {import('@stryker-mutator/api/core').PartialStrykerOptions}
 */
export default {
  testRunner: 'vitest',
  vitest: { configFile: 'vitest.mutate.config.ts' },
  mutate: [
    'functions/provision/provisioner.ts',
    'functions/check-status/status-checker.ts',
    'functions/lib/errors.ts',
    'functions/lib/messages/request.ts',
    'functions/lib/messages/queues.ts',
    'functions/lib/atlas/digest.ts',
    'test/support/in-memory-ledger.ts',
  ],
  // Stryker copies the tree into a sandbox and does not read .gitignore: skip the installs and outputs.
  ignorePatterns: ['/.local', '/.tools', '/cdk.out', '/coverage', '/.ci/results.json'],
  coverageAnalysis: 'perTest',
  concurrency: 2,
  incremental: true,
  incrementalFile: 'reports/stryker-incremental.json',
  reporters: ['clear-text', 'html', 'json', 'progress'],
  clearTextReporter: { logTests: false, reportTests: false },
  htmlReporter: { fileName: 'reports/mutation/mutation.html' },
  jsonReporter: { fileName: 'reports/mutation/mutation.json' },
  thresholds: { high: 90, low: 80, break: 80 },
  tempDirName: '.stryker-tmp',
};
