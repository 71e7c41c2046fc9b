/**
 * The import graph of the shipped code (functions/ and infra/) has no circles, type-only imports
 * included: each room of functions/lib can be read, moved and mutated without the others.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';

const ROOT = resolve(import.meta.dirname, '../..');
const ALIASES = Object.entries(
  JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')).imports as Record<string, string>,
).map(([alias, target]) => [alias.replace(/\*$/, ''), target.replace(/\*$/, '')] as const);

const sources = (dir: string): string[] =>
  readdirSync(join(ROOT, dir), { withFileTypes: true, recursive: true })
    .filter((entry) => entry.isFile() && /\.(ts|cts)$/.test(entry.name) && !entry.name.endsWith('.d.cts'))
    .map((entry) => relative(ROOT, join(entry.parentPath, entry.name)));

/** Every project file a file imports or re-exports, types included (`from '…'`, `import('…')`). */
function importsOf(file: string, text: string): string[] {
  const code = text.replace(/\/\*[\s\S]*?\*\//g, '').replace(/^\s*\/\/.*$/gm, '');
  const specifiers = [...code.matchAll(/(?:from|import)\s*\(?\s*'([^']+)'/g)].map((m) => m[1] as string);
  return specifiers.flatMap((spec) => {
    const alias = ALIASES.find(([prefix]) => spec.startsWith(prefix));
    if (alias) return [join(alias[1], spec.slice(alias[0].length))];
    if (spec.startsWith('.')) return [join(dirname(file), spec)];
    return [];
  });
}

/** The strongly connected components with more than one file (or a file importing itself). */
function circles(graph: Map<string, string[]>): string[][] {
  let index = 0;
  const order = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const found: string[][] = [];
  const visit = (node: string) => {
    order.set(node, index);
    low.set(node, index++);
    stack.push(node);
    onStack.add(node);
    for (const next of graph.get(node) ?? []) {
      if (!order.has(next)) {
        visit(next);
        low.set(node, Math.min(low.get(node) as number, low.get(next) as number));
      } else if (onStack.has(next))
        low.set(node, Math.min(low.get(node) as number, order.get(next) as number));
    }
    if (low.get(node) === order.get(node)) {
      const component: string[] = [];
      let member: string;
      do {
        member = stack.pop() as string;
        onStack.delete(member);
        component.push(member);
      } while (member !== node);
      if (component.length > 1 || graph.get(node)?.includes(node)) found.push(component.sort());
    }
  };
  for (const node of graph.keys()) if (!order.has(node)) visit(node);
  return found;
}

describe('the import graph of functions/ and infra/', () => {
  it('has no circle, type-only imports included', () => {
    const files = [...sources('functions'), ...sources('infra')];
    const graph = new Map(files.map((f) => [f, importsOf(f, readFileSync(join(ROOT, f), 'utf8'))]));
    expect(graph.size).toBeGreaterThan(40);
    expect(circles(graph)).toEqual([]);
  });

  it('sees a circle made only of type imports', () => {
    const a = importsOf('functions/lib/a.ts', "import type { B } from '#lib/b.ts';");
    const b = importsOf('functions/lib/b.ts', "export type { A } from './a.ts';");
    expect(a).toEqual(['functions/lib/b.ts']);
    expect(
      circles(
        new Map([
          ['functions/lib/a.ts', a],
          ['functions/lib/b.ts', b],
          ['c.ts', ['functions/lib/a.ts']],
        ]),
      ),
    ).toEqual([['functions/lib/a.ts', 'functions/lib/b.ts']]);
  });
});
