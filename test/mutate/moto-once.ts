/**
 * Vitest globalSetup of `npm run mutate:ledger` (vitest.mutate-ledger.config.ts): one moto for a
 * whole Stryker test runner, however many mutants it tests, instead of one per run of the ledger's
 * moto test file. The test file's own `startMoto()` resolves to shared-moto.ts there, which resets
 * this server and hands it over.
 */
import { existsSync, symlinkSync } from 'node:fs';
import { basename, join, resolve } from 'node:path';
import type { TestProject } from 'vitest/node';
import { startMoto } from '../local/emulators.ts';

declare module 'vitest' {
  export interface ProvidedContext {
    motoEndpoint: string;
  }
}

const ROOT = resolve(import.meta.dirname, '../..');

/**
 * Stryker's sandbox (<project>/.stryker-tmp/sandbox-*) is a copy without .local (ignorePatterns),
 * where the emulators are installed: link the project's, or startMoto would install them anew.
 */
function linkEmulators(): void {
  const local = join(ROOT, '.local');
  const sandboxes = resolve(ROOT, '..');
  if (existsSync(local) || basename(sandboxes) !== '.stryker-tmp') return;
  symlinkSync(join(resolve(sandboxes, '..'), '.local'), local, 'dir');
}

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  linkEmulators();
  const moto = await startMoto();
  project.provide('motoEndpoint', moto.endpoint);
  return () => moto.stop();
}
