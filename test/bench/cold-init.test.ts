import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { importTime, pairDifferences, pairedRuns, pairRatios, spread, writeBundle } from './cold-init.ts';

describe('spread', () => {
  it('gives the middle value of an odd count and the mean of the middle two of an even one', () => {
    expect(spread([5, 1, 3])).toEqual({ min: 1, median: 3, max: 5 });
    expect(spread([4, 1, 10, 2])).toEqual({ min: 1, median: 3, max: 10 });
  });

  it('fails on no values', () => {
    expect(() => spread([])).toThrow('no values');
  });
});

describe('pairedRuns', () => {
  it('runs the floor first in even pairs and second in odd ones, and keeps each pair together', async () => {
    const order: string[] = [];
    let n = 0;
    const paired = await pairedRuns(
      3,
      async () => {
        order.push('floor');
        return ++n;
      },
      async () => {
        order.push('function');
        return 10 * ++n;
      },
    );
    expect(order).toEqual(['floor', 'function', 'function', 'floor', 'floor', 'function']);
    expect(paired).toEqual({ floor: [1, 4, 5], function: [20, 30, 60] });
    expect(pairRatios(paired)).toEqual([20, 7.5, 12]);
    expect(pairDifferences(paired)).toEqual([19, 26, 55]);
  });
});

describe('importTime', () => {
  it('imports the module in a fresh node with exactly the environment given', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'cold-init-test-'));
    try {
      const code = `import { writeFileSync } from 'node:fs';
writeFileSync(new URL('./seen.json', import.meta.url), JSON.stringify(process.env));
//# sourceMappingURL=index.mjs.map`;
      const file = await writeBundle(dir, {
        code: new TextEncoder().encode(code),
        map: new TextEncoder().encode('{"version":3,"sources":[],"mappings":""}'),
      });
      const time = await importTime(file, { ONLY_THIS: 'yes' });
      expect(time.ms).toBeGreaterThan(0);
      expect(time.cpuMs).toBeGreaterThan(0);
      expect(JSON.parse(await readFile(join(dir, 'seen.json'), 'utf8'))).toEqual({ ONLY_THIS: 'yes' });
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('fails with the error of a module that does not load', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'cold-init-test-'));
    try {
      const file = await writeBundle(dir, {
        code: new TextEncoder().encode("throw new Error('no configuration');"),
        map: new TextEncoder().encode('{}'),
      });
      await expect(importTime(file, {})).rejects.toThrow('no configuration');
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
