import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';
import base from './vitest.config.ts';

/**
 * What `npm run mutate:ledger` (stryker.ledger.config.mjs) runs: the real Ledger's moto tests
 * (the ledger contract), with the shared options of vitest.config.ts. One moto per Stryker test
 * runner (test/mutate/moto-once.ts), which the test file's startMoto() gets through the alias,
 * rather than a moto started for each mutant.
 */
export default defineConfig({
  resolve: {
    alias: [
      {
        find: /^#test\/local\/emulators\.ts$/,
        replacement: fileURLToPath(new URL('./test/mutate/shared-moto.ts', import.meta.url)),
      },
    ],
  },
  test: {
    ...base.test,
    projects: undefined,
    reporters: ['default'],
    name: 'ledger',
    include: ['test/functions/lib/ledger/*.moto.test.ts'],
    globalSetup: ['test/mutate/moto-once.ts'],
  },
});
