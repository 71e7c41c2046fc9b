/**
 * Bundle size: each function bundled by esbuild with the stack's own options (`BUNDLING` in
 * infra/constructs/function.ts, the flags `cdk synth` passes), measured in memory.
 */
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { type BuildOptions, build } from 'esbuild';
import { BUNDLING, PROJECT_ROOT } from '#infra/constructs/function.ts';
import { ENTRIES } from '#infra/stack.ts';

export interface BundleSize {
  function: string;
  entry: string;
  /** The minified `index.mjs`. */
  bytes: number;
  /** The same, gzipped: close to what the deployment zip adds. */
  gzipBytes: number;
  sourceMapBytes: number;
}

/** The esbuild options NodejsFunction derives from BUNDLING (aws-lambda-nodejs bundling.ts). */
export function esbuildOptions(entry: string): BuildOptions {
  return {
    entryPoints: [join(PROJECT_ROOT, entry)],
    absWorkingDir: PROJECT_ROOT,
    bundle: true,
    platform: 'node',
    target: BUNDLING.target,
    format: BUNDLING.format,
    outfile: 'index.mjs',
    minify: BUNDLING.minify,
    sourcemap: BUNDLING.sourceMap,
    sourcesContent: BUNDLING.sourcesContent,
    mainFields: BUNDLING.mainFields,
    external: [...(BUNDLING.externalModules ?? (BUNDLING.bundleAwsSDK ? [] : ['@aws-sdk/*']))],
    ...(BUNDLING.banner && { banner: { js: BUNDLING.banner } }),
    write: false,
    logLevel: 'error',
  };
}

export async function run(): Promise<BundleSize[]> {
  const sizes: BundleSize[] = [];
  for (const [name, entry] of Object.entries(ENTRIES)) {
    const { outputFiles = [] } = await build(esbuildOptions(entry));
    const code = outputFiles.find((f) => f.path.endsWith('.mjs'));
    const map = outputFiles.find((f) => f.path.endsWith('.map'));
    if (!code) throw new Error(`esbuild produced no index.mjs for ${entry}`);
    sizes.push({
      function: name,
      entry,
      bytes: code.contents.byteLength,
      gzipBytes: gzipSync(code.contents).byteLength,
      sourceMapBytes: map?.contents.byteLength ?? 0,
    });
  }
  for (const s of sizes) {
    console.log(
      `${s.function.padEnd(14)} ${s.bytes.toLocaleString('en').padStart(10)} B minified` +
        `  ${s.gzipBytes.toLocaleString('en').padStart(9)} B gzipped` +
        `  ${s.sourceMapBytes.toLocaleString('en').padStart(10)} B source map  (${s.entry})`,
    );
  }
  return sizes;
}
