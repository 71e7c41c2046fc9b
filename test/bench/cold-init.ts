/**
 * Cold initialisation of a bundle: written to a directory of its own as `index.mjs` with its
 * source map, then imported by a fresh `node` with the function's environment. The child times
 * the dynamic import itself (`performance.now()` around it): that is what a bundle adds to
 * Lambda's Init duration (parse, compile, top-level code: configuration, clients). Node's own
 * start-up is the same for every bundle and is not Lambda's runtime start either, so timing the
 * whole process would only add a constant that pulls every ratio towards 1. The child also reports
 * the CPU time the import took (all its threads): on a loaded machine the elapsed time includes
 * waiting for a core, the CPU time does not, so it is the steadier of the two.
 */
import { execFile } from 'node:child_process';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { promisify } from 'node:util';

const run = promisify(execFile);

/** The minified bundle and its source map, as esbuild wrote them. */
export interface BundleFiles {
  code: Uint8Array;
  map: Uint8Array;
}

/** Writes `index.mjs` and `index.mjs.map` into `dir` (created) and returns the module's path. */
export async function writeBundle(dir: string, files: BundleFiles): Promise<string> {
  await mkdir(dir, { recursive: true });
  const file = join(dir, 'index.mjs');
  await writeFile(file, files.code);
  await writeFile(`${file}.map`, files.map);
  return file;
}

const MARK = 'cold-init=';
const CHILD = `const cpu0 = process.cpuUsage();
const t0 = performance.now();
await import(process.argv[1]);
const ms = performance.now() - t0;
const cpu = process.cpuUsage(cpu0);
process.stderr.write('\\n${MARK}' + JSON.stringify({ ms, cpuMs: (cpu.user + cpu.system) / 1000 }) + '\\n');`;

/** One cold import: elapsed and CPU milliseconds. */
export interface ImportTime {
  ms: number;
  cpuMs: number;
}

/**
 * How long a fresh `node` (this one's binary) takes to import `file`, with exactly `env` as its
 * environment (NODE_OPTIONS included).
 */
export async function importTime(file: string, env: Record<string, string>): Promise<ImportTime> {
  const { stderr } = await run(
    process.execPath,
    ['--input-type=module', '--eval', CHILD, pathToFileURL(file).href],
    { env, maxBuffer: 16 * 1024 * 1024 },
  );
  const line = stderr.split('\n').findLast((l) => l.startsWith(MARK));
  if (line === undefined) throw new Error(`no timing from the import of ${file}: ${stderr.slice(-500)}`);
  return JSON.parse(line.slice(MARK.length)) as ImportTime;
}

export interface Paired<T> {
  floor: T[];
  function: T[];
}

/**
 * `pairs` runs of the floor and the function back to back, the floor first in even pairs and
 * second in odd ones, so a change of load on the machine touches both halves of a pair alike.
 */
export async function pairedRuns<T>(
  pairs: number,
  floor: () => Promise<T>,
  fn: () => Promise<T>,
): Promise<Paired<T>> {
  const result: Paired<T> = { floor: [], function: [] };
  for (let i = 0; i < pairs; i++) {
    if (i % 2 === 0) {
      result.floor.push(await floor());
      result.function.push(await fn());
    } else {
      result.function.push(await fn());
      result.floor.push(await floor());
    }
  }
  return result;
}

export interface Spread {
  min: number;
  median: number;
  max: number;
}

/** Min, median (the mean of the middle two for an even count) and max. */
export function spread(values: readonly number[]): Spread {
  if (values.length === 0) throw new Error('no values');
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  const median =
    sorted.length % 2 === 1
      ? (sorted[mid] as number)
      : ((sorted[mid - 1] as number) + (sorted[mid] as number)) / 2;
  return { min: sorted[0] as number, median, max: sorted.at(-1) as number };
}

/** Each pair's function figure less its floor figure. */
export function pairDifferences(paired: Paired<number>): number[] {
  return paired.function.map((value, i) => value - (paired.floor[i] as number));
}

/** Each pair's function figure over its floor figure. */
export function pairRatios(paired: Paired<number>): number[] {
  return paired.function.map((value, i) => value / (paired.floor[i] as number));
}
