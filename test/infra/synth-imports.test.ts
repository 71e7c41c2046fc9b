/**
 * `cdk synth` loads infra/app.ts and what it imports from functions/: names, schemas and bounds.
 * Those modules must be dependency-free, or every synth (and every tool importing a constant)
 * would load the functions' runtime SDKs.
 */
import { build } from 'esbuild';
import { describe, expect, it } from 'vitest';
import { PROJECT_ROOT } from '#infra/constructs/function.ts';

/** The packages a module graph imports, each by its package name. */
async function packagesImportedBy(entry: string): Promise<{ packages: string[]; files: string[] }> {
  const { metafile } = await build({
    entryPoints: [entry],
    absWorkingDir: PROJECT_ROOT,
    bundle: true,
    platform: 'node',
    format: 'esm',
    packages: 'external',
    write: false,
    metafile: true,
    logLevel: 'error',
  });
  const packages = new Set<string>();
  for (const input of Object.values(metafile.inputs)) {
    for (const { path, external } of input.imports) {
      if (external)
        packages.add(
          path
            .split('/')
            .slice(0, path.startsWith('@') ? 2 : 1)
            .join('/'),
        );
    }
  }
  return { packages: [...packages].sort(), files: Object.keys(metafile.inputs) };
}

describe('what cdk synth loads', () => {
  it('imports from functions/ only modules that load no AWS SDK, Powertools or middy', async () => {
    const { packages, files } = await packagesImportedBy('infra/app.ts');

    expect(files).toContain('functions/lib/runtime/metric-names.ts');
    expect(files).toContain('functions/lib/ledger/schema.ts');
    expect(packages.filter((p) => /^@aws-sdk\/|^@aws-lambda-powertools\/|^@middy\//.test(p))).toEqual([]);
    expect(packages).toEqual(expect.arrayContaining(['aws-cdk-lib', 'constructs', 'cdk-nag']));
  });

  it('sees a runtime SDK when a module imports one (the check works)', async () => {
    const { packages } = await packagesImportedBy('functions/lib/messages/queues.ts');

    expect(packages).toContain('@aws-sdk/client-sqs');
  });
});
