/**
 * The package's JavaScript: the construct library (infra/index.ts) and the requester
 * (functions/lib/messages/requester.ts), each bundled by tsdown into ESM and CommonJS with their
 * declarations. Bundled, so the `#alias` imports and `.ts` paths of the sources never reach a
 * user, and zod (the settings' and the request's checks) travels inside: the declarations name
 * plain interfaces (infra/settings.ts, functions/lib/messages/request.ts), never zod's types.
 */
import { join } from 'node:path';
import { build, type InlineConfig } from 'tsdown';
import { PROJECT_ROOT } from '#infra/constructs/function.ts';

/** The oldest Node the package runs on (package.json `engines`). */
const TARGET = 'node22';

const common = (outDir: string): InlineConfig => ({
  config: false,
  cwd: PROJECT_ROOT,
  outDir: join(PROJECT_ROOT, outDir),
  format: ['esm', 'cjs'],
  platform: 'node',
  target: TARGET,
  dts: true,
  // import.meta.dirname in the CommonJS output (the construct finds its bundles from it).
  shims: true,
  tsconfig: join(PROJECT_ROOT, 'infra/package/tsconfig.lib.json'),
  // zod goes inside; deps.onlyBundle lists what may, so anything else fails the build.
  deps: { onlyBundle: ['zod'] },
  logLevel: 'warn',
  // rolldown's notes on plugin timings say nothing about this build's output.
  checks: { pluginTimings: false },
  clean: true,
});

/** dist/lib: the construct, with aws-cdk-lib and constructs left to the app (peer dependencies). */
export async function buildLibrary(): Promise<void> {
  await build({
    ...common('dist/lib'),
    entry: { index: 'infra/index.ts' },
    deps: { onlyBundle: ['zod'], neverBundle: [/^aws-cdk-lib(\/|$)/, /^constructs$/] },
  });
}

/** The requester: the SDK clients stay dependencies of its package (infra/package/requester.ts). */
export async function buildRequester(outDir: string): Promise<void> {
  await build({
    ...common(outDir),
    entry: { index: 'functions/lib/messages/requester.ts' },
    deps: { onlyBundle: ['zod'], neverBundle: [/^@aws-sdk\/client-(sqs|eventbridge)$/] },
  });
}
