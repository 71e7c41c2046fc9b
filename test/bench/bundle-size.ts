/**
 * Bundle size and cold initialisation: each function bundled by esbuild exactly as `npm run build`
 * bundles what the package ships (infra/package/functions.ts), beside the
 * floor (floor-handler.ts: only the SQS and Secrets Manager clients, bundled the same way).
 * Prints each bundle's size and its largest packages, then its cold initialisation (cold-init.ts)
 * with the stack's environment for that function, both as ratios to the floor.
 * Then the same for each part the functions add to the floor (parts/*.ts: the floor plus that
 * part alone), so that the figures say where a function's bytes and milliseconds go.
 * `BENCH_PAIRS` sets the number of paired cold starts (default 15).
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { gzipSync } from 'node:zlib';
import type { Metafile } from 'esbuild';
import { PROJECT_ROOT, runtimeEnvironment } from '#infra/constructs/function.ts';
import { type Bundle, bundle, ENTRIES } from '#infra/package/functions.ts';
import { checkStatusEnvironment, provisionEnvironment, resolveSettings } from '#infra/settings.ts';
import { SERVICE } from '#runtime/metric-names.ts';
import { checkResources, provisionResources } from '#test/support/resources.ts';
import {
  type ImportTime,
  importTime,
  type Paired,
  pairDifferences,
  pairedRuns,
  pairRatios,
  type Spread,
  spread,
  writeBundle,
} from './cold-init.ts';

export const FLOOR_ENTRY = relative(PROJECT_ROOT, join(import.meta.dirname, 'floor-handler.ts'));
const part = (file: string) => relative(PROJECT_ROOT, join(import.meta.dirname, 'parts', file));
/** What the functions add to the floor, one part at a time (each entry: the floor plus the part). */
export const PARTS = {
  'DynamoDB + EventBridge clients': part('clients.ts'),
  'Powertools + middy': part('powertools.ts'),
  'zod + the schemas (and the Atlas client)': part('schemas.ts'),
} as const;
export const GOAL = { size: 1.3, init: 1.15 } as const;

/** Output bytes per package (or `project` for this repository's own code), largest first. */
export function bytesByPackage(metafile: Metafile): Array<[string, number]> {
  const totals = new Map<string, number>();
  for (const output of Object.values(metafile.outputs)) {
    for (const [path, { bytesInOutput }] of Object.entries(output.inputs)) {
      const name = path.match(/node_modules\/((?:@[^/]+\/)?[^/]+)/)?.[1] ?? 'project';
      totals.set(name, (totals.get(name) ?? 0) + bytesInOutput);
    }
  }
  return [...totals].sort((a, b) => b[1] - a[1]);
}

/**
 * Each function's environment in the stack: its settings through the stack's own serialiser
 * (defaults), placeholder queue URLs and table name, the variables AppFunction adds, the region.
 */
export function stackEnvironments(): Record<keyof typeof ENTRIES, Record<string, string>> {
  const settings = resolveSettings();
  const region = 'eu-west-1';
  const queues = `https://sqs.${region}.amazonaws.com/123456789012/AtlasBackupPrivateEndpoints`;
  const ledgerTableName = 'AtlasBackupPrivateEndpoints-Ledger';
  return {
    provisioner: {
      ...provisionEnvironment(settings, { ...provisionResources(queues), ledgerTableName }),
      ...runtimeEnvironment(SERVICE.provisioner),
      AWS_REGION: region,
    },
    statusChecker: {
      ...checkStatusEnvironment(settings, { ...checkResources(queues), ledgerTableName }),
      ...runtimeEnvironment(SERVICE.statusChecker),
      AWS_REGION: region,
    },
  };
}

export interface BundleFigures {
  function: string;
  bytes: number;
  floorBytes: number;
  gzipBytes: number;
  sizeRatio: number;
  /** Elapsed milliseconds of the import, the function's and the floor's. */
  initMs: Spread;
  floorInitMs: Spread;
  /** Each pair's function time over its floor time. */
  initRatio: Spread;
  /** The same for the CPU time of the import. */
  initCpuMs: Spread;
  floorInitCpuMs: Spread;
  initCpuRatio: Spread;
  /** Each pair's function CPU time less its floor CPU time: what the function adds. */
  initCpuAddedMs: Spread;
}

/** What one part (or a whole function) adds to the floor. */
export interface Added {
  name: string;
  bytes: number;
  cpuMs: Spread;
}

const kb = (bytes: number) => `${(bytes / 1024).toFixed(0)} KB`;
const ms = (s: Spread) => `${s.median.toFixed(1)} ms (${s.min.toFixed(1)} / ${s.max.toFixed(1)})`;
const x = (s: Spread) => `${s.median.toFixed(2)}x (${s.min.toFixed(2)} / ${s.max.toFixed(2)})`;

export async function run(): Promise<BundleFigures[]> {
  const pairs = Number(process.env.BENCH_PAIRS ?? 15);
  const floor = await bundle(FLOOR_ENTRY);
  const functions = await Promise.all(
    Object.entries(ENTRIES).map(async ([name, entry]) => ({ name, entry, ...(await bundle(entry)) })),
  );
  const size = (b: Bundle) => b.code.byteLength;

  console.log(`size: minified index.mjs, goal <= ${GOAL.size}x the floor`);
  console.log(`${'floor'.padEnd(14)} ${size(floor).toLocaleString('en').padStart(10)} B  (${FLOOR_ENTRY})`);
  for (const f of functions) {
    const top = bytesByPackage(f.metafile)
      .slice(0, 6)
      .map(([name, bytes]) => `${name} ${kb(bytes)}`)
      .join(', ');
    console.log(
      `${f.name.padEnd(14)} ${size(f).toLocaleString('en').padStart(10)} B  ${(size(f) / size(floor)).toFixed(2)}x` +
        `  gzipped ${gzipSync(f.code).byteLength.toLocaleString('en')} B  (${f.entry})\n${''.padEnd(16)}largest: ${top}`,
    );
  }

  console.log(
    `\ncold init: import of index.mjs by a fresh node ${process.version} with the function's environment,` +
      ` ${pairs} pairs with the floor; median (min / max); goal <= ${GOAL.init}x the floor`,
  );
  const dir = await mkdtemp(join(tmpdir(), 'bundle-bench-'));
  const figures: BundleFigures[] = [];
  let parts: Added[] = [];
  try {
    const floorFile = await writeBundle(join(dir, 'floor'), floor);
    const environments = stackEnvironments();
    for (const f of functions) {
      const env = environments[f.name as keyof typeof ENTRIES];
      const of = await pairedWithFloor(floorFile, await writeBundle(join(dir, f.name), f), env, pairs);
      const figure: BundleFigures = {
        function: f.name,
        bytes: size(f),
        floorBytes: size(floor),
        gzipBytes: gzipSync(f.code).byteLength,
        sizeRatio: size(f) / size(floor),
        initMs: spread(of('ms').function),
        floorInitMs: spread(of('ms').floor),
        initRatio: spread(pairRatios(of('ms'))),
        initCpuMs: spread(of('cpuMs').function),
        floorInitCpuMs: spread(of('cpuMs').floor),
        initCpuRatio: spread(pairRatios(of('cpuMs'))),
        initCpuAddedMs: spread(pairDifferences(of('cpuMs'))),
      };
      figures.push(figure);
      console.log(
        `${f.name.padEnd(14)} ${ms(figure.initMs)}  floor ${ms(figure.floorInitMs)}  ratio ${x(figure.initRatio)}` +
          `\n${''.padEnd(15)}CPU ${ms(figure.initCpuMs)}  ratio ${x(figure.initCpuRatio)}`,
      );
    }
    parts = await measureParts(dir, floor, floorFile, environments.provisioner, pairs);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }

  console.log('\nfunction            bytes  size        init median  init        init CPU');
  for (const f of figures) {
    const goal = (value: number, max: number) => `${value.toFixed(2)}x ${value <= max ? 'ok' : 'over'}`;
    console.log(
      `${f.function.padEnd(14)} ${f.bytes.toLocaleString('en').padStart(9)}  ${goal(f.sizeRatio, GOAL.size)}` +
        `  ${f.initMs.median.toFixed(1).padStart(8)} ms  ${goal(f.initRatio.median, GOAL.init)}` +
        `  ${goal(f.initCpuRatio.median, GOAL.init)}`,
    );
  }
  printParts(parts, figures);
  return figures;
}

/**
 * `pairs` paired cold imports of the floor and of `file`, after one untimed import of each (fails
 * early on a bundle that does not load, and warms the file cache); each figure's floor and
 * function series.
 */
async function pairedWithFloor(floorFile: string, file: string, env: Record<string, string>, pairs: number) {
  await importTime(floorFile, env);
  await importTime(file, env);
  const paired = await pairedRuns(
    pairs,
    () => importTime(floorFile, env),
    () => importTime(file, env),
  );
  return (key: keyof ImportTime): Paired<number> => ({
    floor: paired.floor.map((t) => t[key]),
    function: paired.function.map((t) => t[key]),
  });
}

/** Each part bundled and loaded the way the functions are, paired with the floor. */
async function measureParts(
  dir: string,
  floor: Bundle,
  floorFile: string,
  env: Record<string, string>,
  pairs: number,
): Promise<Added[]> {
  const added: Added[] = [];
  for (const [name, entry] of Object.entries(PARTS)) {
    const b = await bundle(entry);
    const of = await pairedWithFloor(
      floorFile,
      await writeBundle(join(dir, `part-${added.length}`), b),
      env,
      pairs,
    );
    added.push({
      name,
      bytes: b.code.byteLength - floor.code.byteLength,
      cpuMs: spread(pairDifferences(of('cpuMs'))),
    });
  }
  return added;
}

function printParts(parts: Added[], figures: BundleFigures[]): void {
  const row = (name: string, bytes: number, cpuMs: number) =>
    `${name.padEnd(44)} ${`${bytes >= 0 ? '+' : ''}${kb(bytes)}`.padStart(9)}  ${`${cpuMs >= 0 ? '+' : ''}${cpuMs.toFixed(1)} ms`.padStart(10)}`;
  console.log(
    '\nwhat each part adds to the floor (the floor plus that part alone, bundled and loaded the same way;' +
      " init: median of the pairs' CPU differences)",
  );
  console.log(`${'part'.padEnd(44)} ${'size'.padStart(9)}  ${'init CPU'.padStart(10)}`);
  for (const p of parts) console.log(row(p.name, p.bytes, p.cpuMs.median));
  const partsBytes = sum(parts.map((p) => p.bytes));
  const partsMs = sum(parts.map((p) => p.cpuMs.median));
  console.log(row('the parts together', partsBytes, partsMs));
  for (const f of figures) {
    const bytes = f.bytes - f.floorBytes;
    console.log(row(`${f.function}, all it adds`, bytes, f.initCpuAddedMs.median));
    console.log(
      row(
        `  of which beyond the parts (its own code...)`,
        bytes - partsBytes,
        f.initCpuAddedMs.median - partsMs,
      ),
    );
    console.log(
      `${''.padEnd(46)}goals allow +${kb(f.floorBytes * (GOAL.size - 1))} and +${(
        f.floorInitCpuMs.median * (GOAL.init - 1)
      ).toFixed(1)} ms`,
    );
  }
}

const sum = (values: number[]) => values.reduce((a, b) => a + b, 0);
