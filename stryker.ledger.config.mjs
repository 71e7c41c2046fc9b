import base from './stryker.config.mjs';

/**
 * Mutation testing of the real Ledger (`npm run mutate:ledger`), which only its moto tests
 * exercise (test/functions/lib/ledger/*.moto.test.ts, the ledger contract): the unit project of
 * stryker.config.mjs would catch none of its mutants. vitest.mutate-ledger.config.ts starts one
 * moto per test runner. Left out: item.ts (the item's types and bounds) and schema.ts (the
 * table's attribute names), which decide nothing.
 * @type {import('@stryker-mutator/api/core').PartialStrykerOptions}
 */
export default {
  ...base,
  vitest: { configFile: 'vitest.mutate-ledger.config.ts' },
  mutate: ['functions/lib/ledger/*.ts', '!functions/lib/ledger/item.ts', '!functions/lib/ledger/schema.ts'],
  incrementalFile: 'reports/stryker-ledger-incremental.json',
  htmlReporter: { fileName: 'reports/mutation-ledger/mutation.html' },
  jsonReporter: { fileName: 'reports/mutation-ledger/mutation.json' },
};
