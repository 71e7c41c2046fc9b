/**
 * The functions' bundles: each handler bundled by esbuild into `dist/functions/<folder>/index.mjs`
 * (with its source map), which the construct deploys with `lambda.Code.fromAsset` and the package
 * ships as it is. The stack tests, the consumer apps' synth (test/package) and the bench
 * (test/bench/bundle-size.ts) all use these options, so what is measured and tested is what ships.
 */
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { type BuildOptions, build, type Metafile } from 'esbuild';
import { FUNCTIONS, type FunctionName, PROJECT_ROOT } from '#infra/constructs/function.ts';

/** Where `npm run build` writes the bundles, relative to the repository root. */
export const FUNCTIONS_OUT = 'dist/functions';

/** Handler modules of the functions, relative to the repository root. */
export const ENTRIES = Object.fromEntries(Object.entries(FUNCTIONS).map(([name, f]) => [name, f.entry])) as {
  readonly [K in FunctionName]: (typeof FUNCTIONS)[K]['entry'];
};

/**
 * esbuild options of every function: ESM for Node 24, minified, with a source map that has the
 * mappings but not a second copy of the sources, every dependency bundled (the AWS SDK too: deploy
 * the version the tests ran against, not whichever one the runtime carries today).
 */
export function esbuildOptions(entry: string): BuildOptions {
  return {
    entryPoints: [join(PROJECT_ROOT, entry)],
    absWorkingDir: PROJECT_ROOT,
    bundle: true,
    platform: 'node',
    target: 'node24',
    format: 'esm',
    outfile: 'index.mjs',
    minify: true,
    sourcemap: true,
    sourcesContent: false,
    mainFields: ['module', 'main'],
    // ESM output has no `require`; bundled CommonJS dependencies still call it for Node built-ins.
    banner: {
      js: "import { createRequire } from 'node:module';const require = createRequire(import.meta.url);",
    },
    write: false,
    logLevel: 'error',
  };
}

export interface Bundle {
  /** The minified `index.mjs`. */
  code: Uint8Array;
  map: Uint8Array;
  metafile: Metafile;
}

/** Bundles `entry` (relative to the repository root) in memory, with its metafile. */
export async function bundle(entry: string): Promise<Bundle> {
  const { outputFiles = [], metafile } = await build({ ...esbuildOptions(entry), metafile: true });
  const code = outputFiles.find((f) => f.path.endsWith('.mjs'));
  const map = outputFiles.find((f) => f.path.endsWith('.map'));
  if (!code || !map || !metafile) throw new Error(`esbuild produced no index.mjs with its map for ${entry}`);
  return { code: code.contents, map: map.contents, metafile };
}

/**
 * Writes every function's `index.mjs` and `index.mjs.map` under `outDir`; returns each bundle's
 * folder. Bundled in memory first, so the old bundles are replaced only once the new ones exist:
 * a synth running beside a rebuild finds one or the other.
 */
export async function buildFunctions(
  outDir = join(PROJECT_ROOT, FUNCTIONS_OUT),
): Promise<Record<FunctionName, string>> {
  const bundles = await Promise.all(
    Object.entries(FUNCTIONS).map(async ([name, f]) => ({
      name,
      dir: join(outDir, f.bundle),
      ...(await bundle(f.entry)),
    })),
  );
  await rm(outDir, { recursive: true, force: true });
  for (const { dir, code, map } of bundles) {
    await mkdir(dir, { recursive: true });
    await writeFile(join(dir, 'index.mjs'), code);
    await writeFile(join(dir, 'index.mjs.map'), map);
  }
  return Object.fromEntries(bundles.map(({ name, dir }) => [name, dir])) as Record<FunctionName, string>;
}
