import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { bundle, ENTRIES } from '#infra/package/functions.ts';
import { bytesByPackage, FLOOR_ENTRY, PARTS, stackEnvironments } from './bundle-size.ts';
import { importTime, writeBundle } from './cold-init.ts';

describe('the floor', () => {
  it('bundles both SDK clients with the stack options and loads in a fresh node', async () => {
    const floor = await bundle(FLOOR_ENTRY);
    const packages = new Map(bytesByPackage(floor.metafile));
    expect(packages.get('@aws-sdk/client-sqs')).toBeGreaterThan(0);
    expect(packages.get('@aws-sdk/client-secrets-manager')).toBeGreaterThan(0);
    expect(packages.has('zod')).toBe(false);
    const dir = await mkdtemp(join(tmpdir(), 'floor-test-'));
    try {
      const file = await writeBundle(dir, floor);
      expect((await importTime(file, stackEnvironments().provisioner)).ms).toBeGreaterThan(0);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('the functions', () => {
  // Built at import, a schema no function parses would be cold-start time for nothing.
  it.each(Object.entries(ENTRIES))(
    '%s bundles no module that is only for requesters and tests',
    async (_, entry) => {
      const { metafile } = await bundle(entry);
      const inputs = Object.keys(metafile.inputs);
      expect(inputs).toContain('functions/lib/events/status-event.ts');
      expect(inputs).not.toContain('functions/lib/events/schema.ts');
    },
  );

  // Two copies of a package (one nested under another's node_modules) ship and load its code twice.
  it.each(Object.entries(ENTRIES))('%s bundles each package once', async (_, entry) => {
    const { metafile } = await bundle(entry);
    const copies = new Map<string, Set<string>>();
    for (const path of Object.keys(metafile.inputs)) {
      const match = path.match(/^(.*node_modules\/)((?:@[^/]+\/)?[^/]+)\//);
      if (match)
        copies.set(match[2] as string, (copies.get(match[2] as string) ?? new Set()).add(match[1] as string));
    }
    expect([...copies].filter(([, roots]) => roots.size > 1).map(([name]) => name)).toEqual([]);
    expect(copies.has('@aws-lambda-powertools/commons')).toBe(true);
  });
});

describe('the parts', () => {
  // Each part is the floor plus what it names, and nothing else the functions add.
  const expected: Record<keyof typeof PARTS, { has: string[]; hasNot: string[]; functions: boolean }> = {
    'DynamoDB + EventBridge clients': {
      has: ['@aws-sdk/client-dynamodb', '@aws-sdk/lib-dynamodb', '@aws-sdk/client-eventbridge'],
      hasNot: ['zod', '@aws-lambda-powertools/logger'],
      functions: false,
    },
    'Powertools + middy': {
      has: [
        '@aws-lambda-powertools/logger',
        '@aws-lambda-powertools/metrics',
        '@aws-lambda-powertools/batch',
        '@middy/core',
      ],
      hasNot: ['zod', '@aws-sdk/client-dynamodb'],
      functions: false,
    },
    'zod + the schemas (and the Atlas client)': {
      has: ['zod'],
      hasNot: ['@aws-sdk/client-dynamodb', '@aws-lambda-powertools/logger'],
      functions: true,
    },
  };
  it.each(Object.entries(PARTS))('%s: the floor and that part', async (name, entry) => {
    const { metafile } = await bundle(entry);
    const packages = new Map(bytesByPackage(metafile));
    const { has, hasNot, functions } = expected[name as keyof typeof PARTS];
    expect(Object.keys(metafile.inputs).some((path) => path.startsWith('functions/'))).toBe(functions);
    for (const p of ['@aws-sdk/client-sqs', '@aws-sdk/client-secrets-manager', ...has])
      expect(packages.get(p)).toBeGreaterThan(0);
    for (const p of hasNot) expect(packages.has(p)).toBe(false);
  });
});

describe('stackEnvironments', () => {
  it('gives each function its settings, the Powertools variables, source maps and a region', () => {
    const { provisioner, statusChecker } = stackEnvironments();
    expect(provisioner).toMatchObject({
      POWERTOOLS_SERVICE_NAME: 'provisioner',
      NODE_OPTIONS: '--enable-source-maps',
      AWS_REGION: 'eu-west-1',
    });
    expect(provisioner.CONTINUATION_QUEUE_URL).toMatch(/^https:\/\/sqs\./);
    expect(statusChecker).toMatchObject({ POWERTOOLS_SERVICE_NAME: 'status-checker' });
    expect(statusChecker.LEDGER_TABLE_NAME).toBe(provisioner.LEDGER_TABLE_NAME);
  });
});
