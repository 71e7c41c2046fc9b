import { declareValuePlugin, PluginKind } from '@stryker-mutator/api/plugin';

const LOG_LEVELS = new Set(['debug', 'info', 'warn', 'error']);
/** `logger.warn(...)`, `at.logger.info(...)`, `deps.logger.error(...)`: a statement that only logs. */
const isLogStatement = (path) => {
  if (!path.isExpressionStatement()) return false;
  const call = path.node.expression;
  if (call.type !== 'CallExpression' || call.callee.type !== 'MemberExpression') return false;
  const { object, property } = call.callee;
  if (property.type !== 'Identifier' || !LOG_LEVELS.has(property.name)) return false;
  const owner = object.type === 'MemberExpression' ? object.property : object;
  return owner.type === 'Identifier' && owner.name === 'logger';
};

export const strykerPlugins = [
  declareValuePlugin(PluginKind.Ignore, 'logging', {
    shouldIgnore: (path) => (isLogStatement(path) ? 'a log statement decides nothing' : undefined),
  }),
];

/**
 * Mutation testing (`npm run mutate`, not part of `npm test`): small breaks of the decision
 * code, each of which the unit tests must notice. `npx stryker run --mutate <file>` for one
 * module; incremental, so a re-run only tests the mutants whose code or tests changed.
 *
 * Mutated: every module that decides something. Left out, each for its reason:
 * - functions/lib/ledger/**: the real Ledger is tested only on moto, so stryker.ledger.config.mjs
 *   (`npm run mutate:ledger`) mutates it; the unit project here would catch none of its mutants.
 * - functions/lib/atlas/types.ts, events/outcomes.ts, runtime/metric-names.ts: names, lists and
 *   types, no logic.
 * - functions/lib/events/schema.ts: the published event schema; no function runs it (the tests
 *   check every event against it, so it is their oracle, not code under test).
 * - functions/lib/zod.ts: a re-export and the registration of zod's English messages, no logic.
 * - functions/{provision,check-status}/handler.ts: wiring (middy, Powertools, clients) around the
 *   domains, tested by handler.test.ts and the e2e runs, which are too slow to run per mutant.
 *
 * Log statements are not mutated (the `logging` ignorer below): a log line decides nothing, and the
 * only tests that could notice a changed message would pin its wording. Their mutants are
 * reported as ignored, outside the score.
 * @type {import('@stryker-mutator/api/core').PartialStrykerOptions}
 */
export default {
  plugins: ['@stryker-mutator/*', import.meta.url],
  ignorers: ['logging'],
  testRunner: 'vitest',
  vitest: { configFile: 'vitest.mutate.config.ts' },
  mutate: [
    'functions/lib/**/*.ts',
    '!functions/lib/ledger/**',
    '!functions/lib/atlas/types.ts',
    '!functions/lib/events/outcomes.ts',
    '!functions/lib/runtime/metric-names.ts',
    '!functions/lib/events/schema.ts',
    '!functions/lib/zod.ts',
    'functions/provision/*.ts',
    '!functions/provision/handler.ts',
    'functions/check-status/*.ts',
    '!functions/check-status/handler.ts',
    'test/support/in-memory-ledger.ts',
  ],
  // Stryker copies the tree into a sandbox and does not read .gitignore: skip the installs and outputs.
  ignorePatterns: ['/.local', '/.tools', '/cdk.out', '/coverage', '/.ci/results.json', '/reports'],
  coverageAnalysis: 'perTest',
  concurrency: 2,
  incremental: true,
  incrementalFile: 'reports/stryker-incremental.json',
  reporters: ['clear-text', 'html', 'json', 'progress'],
  clearTextReporter: { logTests: false, reportTests: false },
  htmlReporter: { fileName: 'reports/mutation/mutation.html' },
  jsonReporter: { fileName: 'reports/mutation/mutation.json' },
  thresholds: { high: 90, low: 85, break: 85 },
  tempDirName: '.stryker-tmp',
};
