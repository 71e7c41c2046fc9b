/**
 * Vitest global setup: the construct deploys the bundles `npm run build` writes to dist/functions
 * (infra/package/functions.ts), so a synth in a test needs them, and needs them current. `npm
 * test` builds first; a test run on its own rebuilds them here when a source is newer. The
 * package tests (test/package) check the rest of dist/ the same way before they pack it.
 */
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { FUNCTIONS, PROJECT_ROOT } from '#infra/constructs/function.ts';
import { buildFunctions, FUNCTIONS_OUT } from '#infra/package/functions.ts';

/** The newest modification time of the files under `dir` (recursively). */
function newest(dir: string): number {
  return readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((entry) => entry.isFile())
    .reduce((latest, entry) => Math.max(latest, statSync(join(entry.parentPath, entry.name)).mtimeMs), 0);
}

/** Whether dist/functions is missing a bundle or is older than the functions' sources or the lock file. */
export function functionsStale(): boolean {
  const bundles = Object.values(FUNCTIONS).map((f) =>
    join(PROJECT_ROOT, FUNCTIONS_OUT, f.bundle, 'index.mjs'),
  );
  if (!bundles.every(existsSync)) return true;
  const built = Math.min(...bundles.map((file) => statSync(file).mtimeMs));
  const inputs = [
    newest(join(PROJECT_ROOT, 'functions')),
    statSync(join(PROJECT_ROOT, 'package-lock.json')).mtimeMs,
    statSync(join(PROJECT_ROOT, 'infra/package/functions.ts')).mtimeMs,
  ];
  return Math.max(...inputs) > built;
}

/** Whether dist/lib or dist/requester is missing or older than the sources they are built from. */
export function libraryStale(): boolean {
  const outputs = ['dist/lib/index.mjs', 'dist/lib/index.cjs', 'dist/requester/package.json'].map((file) =>
    join(PROJECT_ROOT, file),
  );
  if (!outputs.every(existsSync)) return true;
  const built = Math.min(...outputs.map((file) => statSync(file).mtimeMs));
  const inputs = [
    newest(join(PROJECT_ROOT, 'infra')),
    newest(join(PROJECT_ROOT, 'functions/lib')),
    newest(join(PROJECT_ROOT, 'events/schema')),
    statSync(join(PROJECT_ROOT, 'package.json')).mtimeMs,
  ];
  return Math.max(...inputs) > built;
}

/** One build per run: each project that synths has this setup, and vitest may load it once per project. */
const BUILD = Symbol.for('atlas-backup-private-endpoints.functions-built');
const shared = globalThis as { [BUILD]?: Promise<unknown> };

export default async function setup(): Promise<void> {
  shared[BUILD] ??= functionsStale() ? buildFunctions() : Promise.resolve();
  await shared[BUILD];
}
