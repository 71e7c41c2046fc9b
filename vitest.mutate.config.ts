import { defineConfig } from 'vitest/config';
import base, { UNIT } from './vitest.config.ts';

/**
 * What `npm run mutate` (stryker.config.mjs) runs: the unit project alone, with the shared
 * options of vitest.config.ts. Servers, synth and e2e would make each mutant take minutes.
 */
export default defineConfig({ test: { ...base.test, projects: undefined, reporters: ['default'], ...UNIT } });
