import { readdir, readFile } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { describe, expect, it } from 'vitest';
import { PROJECT_ROOT } from '#infra/constructs/function.ts';
import { bundle } from '#infra/package/functions.ts';
import * as z from '#lib/zod.ts';
import { ProvisionRequestSchema } from '#messages/request.ts';

/**
 * Modules of functions/ that use the tree-shakable API, directly or through #lib/zod.ts (itself
 * left out: as an entry point, everything it re-exports is kept).
 */
async function miniModules(): Promise<string[]> {
  const files = await readdir(join(PROJECT_ROOT, 'functions'), { recursive: true });
  const found: string[] = [];
  for (const file of files.filter((f) => f.endsWith('.ts') && f !== join('lib', 'zod.ts'))) {
    const path = join(PROJECT_ROOT, 'functions', file);
    if (/from '(#lib\/zod\.ts|zod\/mini)'/.test(await readFile(path, 'utf8')))
      found.push(relative(PROJECT_ROOT, path));
  }
  return found;
}

describe('#lib/zod.ts', () => {
  it('gives the English messages of the classic API', () => {
    const result = ProvisionRequestSchema.safeParse({ requestId: 42 });
    expect(result.success).toBe(false);
    expect(result.error?.issues.map((i) => `${i.path.join('.')}: ${i.message}`)).toEqual(
      expect.arrayContaining([
        'requestId: Invalid input: expected string, received number',
        'groupId: Invalid input: expected string, received undefined',
        'cloudProvider: Invalid input: expected "AWS"',
      ]),
    );
    expect(z.number().check(z.int()).safeParse(1.5).error?.issues[0]?.message).toBe(
      'Invalid input: expected int, received number',
    );
  });

  it('bundles only the parts of zod a module uses, never the classic API or other locales', async () => {
    const modules = await miniModules();
    expect(modules).toEqual(
      expect.arrayContaining(['functions/lib/messages/request.ts', 'functions/lib/events/schema.ts']),
    );
    for (const entry of modules) {
      const { metafile } = await bundle(entry);
      const zod = Object.values(metafile.outputs)
        .flatMap((output) => Object.entries(output.inputs))
        .filter(([path]) => path.includes('node_modules/zod/'));
      const paths = zod.map(([path]) => path.replace(/.*node_modules\/zod\//, ''));
      expect(
        paths.filter((p) => p.startsWith('v4/classic/')),
        entry,
      ).toEqual([]);
      expect(
        paths.filter((p) => p.startsWith('v4/locales/') && !/\/(en|index)\.js$/.test(p)),
        entry,
      ).toEqual([]);
      // The whole of zod/mini is about 430 KB minified; what these schemas use is about 33 KB.
      expect(
        zod.reduce((sum, [, input]) => sum + input.bytesInOutput, 0),
        entry,
      ).toBeLessThan(64 * 1024);
    }
  });
});
