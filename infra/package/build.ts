/**
 * `npm run build`: everything the packages ship, into the git-ignored dist/ (`npm pack` runs it
 * first, and so does `npm test`, whose stack and package tests read it):
 *   dist/functions/<name>/index.mjs   the Lambda bundles the construct deploys (./functions.ts)
 *   dist/lib/                         the construct library, ESM and CommonJS with declarations (./library.ts)
 *   dist/CHANGELOG.md                 the changelog (infra/package/CHANGELOG.md)
 *   dist/requester/                   the requester package, packed on its own (./requester.ts)
 */
import { copyFile } from 'node:fs/promises';
import { join } from 'node:path';
import { PROJECT_ROOT } from '#infra/constructs/function.ts';
import { isMain, runMain } from '#infra/ops/cli.ts';
import { buildFunctions } from './functions.ts';
import { buildLibrary } from './library.ts';
import { buildRequesterPackage } from './requester.ts';

/** Builds dist/; each part's time goes to stderr. */
export async function buildAll(): Promise<void> {
  const timed = async (what: string, step: () => Promise<unknown>) => {
    const started = performance.now();
    await step();
    process.stderr.write(`built ${what} in ${((performance.now() - started) / 1000).toFixed(1)} s\n`);
  };
  await timed('dist/functions', () => buildFunctions());
  await timed('dist/lib', buildLibrary);
  await copyFile(join(PROJECT_ROOT, 'infra/package/CHANGELOG.md'), join(PROJECT_ROOT, 'dist/CHANGELOG.md'));
  await timed('dist/requester', buildRequesterPackage);
}

if (isMain(import.meta)) await runMain(() => buildAll().then(() => 0));
