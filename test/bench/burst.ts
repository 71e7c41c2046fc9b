/**
 * Burst throughput (issue 11, point 4): 1,000 create requests, one per natural key, over 100
 * projects, through the real Provisioner run as the deployed function runs it (middy, Powertools
 * BatchProcessor and processPartialResponse, the real Ledger, Queues, StatusEvents and Atlas
 * client), measured against the ideal the settings allow.
 *
 * The deployment's concurrency is simulated: `maxConcurrency` containers (burst-container.ts),
 * each in its own worker thread (its own event loop and CPU, as each Lambda container has),
 * initialised before the clock starts, take batches of `batchSize` records from one shared
 * in-memory queue until it is empty; a batch is handed over at once (the event source's polling
 * is not modelled). Atlas is the simulator over real HTTP, on this thread, answering after a
 * fixed latency; AWS is the aws-sdk-client-mock stand-ins (aws-stand-ins.ts) answering after a
 * fixed latency and any number of calls at once, one set per container (the keys are distinct,
 * so no two containers ever touch one ledger item).
 *
 * Ideal: ceil(requests / (maxConcurrency x recordConcurrency)) rounds of 2 Atlas calls (list,
 * create) at the Atlas latency. Only Atlas counts in it, so the ratio measures every AWS call,
 * the code, and the wait for the slowest record of a batch; those are measured per record, per
 * batch and per invocation and printed. Fails loudly unless every request ended PROVISIONED with
 * one create per key, and the ledger holds, for each key, the one endpoint Atlas lists for it.
 *
 * Run alone with `npx tsx test/bench/burst.ts [options]` (see USAGE); `npm run bench` runs it with
 * the defaults.
 */
import { availableParallelism, loadavg } from 'node:os';
import { pathToFileURL } from 'node:url';
import { Worker } from 'node:worker_threads';
import type { SQSRecord } from 'aws-lambda';
import { AtlasClient } from '#atlas/client.ts';
import { ATLAS_REGIONS, type AtlasRegion } from '#atlas/types.ts';
import { integerFlag, parseCommand, UsageError } from '#infra/ops/cli.ts';
import { provisionEnvironment, resolveSettings, type SettingsInput } from '#infra/settings.ts';
import { naturalKey } from '#messages/request.ts';
import {
  type ContainerData,
  type FromContainer,
  PARTS,
  type Part,
  type Tally,
  type ToContainer,
} from '#test/bench/burst-container.ts';
import { newServiceAccount } from '#test/local/flow.ts';
import { startAtlasSimulator } from '#test/simulator/index.ts';
import { seededRandom } from '#test/simulator/random.ts';
import { provisionResources } from '#test/support/resources.ts';
import { sqsRecord } from '#test/support/sqs-events.ts';

const DEFAULTS = { requests: 1000, projects: 100, atlasLatencyMs: 100, awsLatencyMs: 15, seed: 1 };

export const USAGE = `usage: npx tsx test/bench/burst.ts [options]
  --requests N             create requests, one per natural key (default ${DEFAULTS.requests})
  --projects P             Atlas projects they spread over (default ${DEFAULTS.projects})
  --atlas-latency-ms N     the Atlas simulator's fixed latency (default ${DEFAULTS.atlasLatencyMs})
  --aws-latency-ms N       latency of each AWS stand-in call (default ${DEFAULTS.awsLatencyMs})
  --max-concurrency N      invocations at once (default: the setting's default, 5)
  --batch-size N           records per invocation (default: the setting's default, 10)
  --record-concurrency N   records of a batch at once (default: the setting's default, 10)
  --seed S                 seed of the project ids and of the queue's order (default ${DEFAULTS.seed})
  -h, --help               this text`;

/** Regions a project's keys use, one key each (GLOBAL is no AWS region). */
const REGIONS = ATLAS_REGIONS.filter((r) => r !== 'GLOBAL');
const CONTAINER = new URL('./burst-container.ts', import.meta.url);

export interface BurstOptions {
  requests: number;
  projects: number;
  atlasLatencyMs: number;
  awsLatencyMs: number;
  seed: number;
  /** Settings as the stack takes them (maxConcurrency, batchSize, recordConcurrency, ...). */
  settings: SettingsInput;
}

export interface BurstFigures {
  requests: number;
  measuredMs: number;
  idealMs: number;
  ratio: number;
  atlasCallsPerEndpoint: number;
  tokenRequests: number;
}

interface Batch {
  container: number;
  first: boolean;
  /** From handing the batch over to its answer. */
  wallMs: number;
  handlerMs: number;
  failures: number;
  tallies: Tally[];
}

type Report = Extract<FromContainer, { type: 'report' }>;

const sum = (values: number[]) => values.reduce((a, b) => a + b, 0);
const mean = (values: number[]) => (values.length === 0 ? 0 : sum(values) / values.length);
const ms = (value: number) => `${value.toFixed(0)} ms`;

/** The requests, one per natural key, `requests / projects` regions per project, in a seeded random order. */
function burstRequests(options: BurstOptions) {
  const random = seededRandom(options.seed);
  const hex = () => Math.floor(random() * 16).toString(16);
  const groupIds = Array.from({ length: options.projects }, () => Array.from({ length: 24 }, hex).join(''));
  const requests = Array.from({ length: options.requests }, (_, i) => ({
    requestId: `burst-${options.seed}-${i}`,
    action: 'create' as const,
    groupId: groupIds[i % options.projects] as string,
    cloudProvider: 'AWS' as const,
    regionName: REGIONS[Math.floor(i / options.projects)] as AtlasRegion,
  }));
  // Shuffled (Fisher-Yates): a batch mixes projects, as independent requesters would send them.
  for (let i = requests.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    const [a, b] = [requests[i], requests[j]];
    if (a && b) [requests[i], requests[j]] = [b, a];
  }
  return requests;
}

/** A container in a worker thread, answering one message at a time. */
async function startContainer(data: ContainerData) {
  const worker = new Worker(CONTAINER, { workerData: data });
  const answers: FromContainer[] = [];
  let waiting: ((message: FromContainer) => void) | undefined;
  let failed: Error | undefined;
  worker.on('message', (message: FromContainer) => {
    if (waiting) waiting(message);
    else answers.push(message);
  });
  worker.on('error', (error) => {
    failed = error;
  });
  const next = () =>
    new Promise<FromContainer>((resolve, reject) => {
      if (failed) return reject(failed);
      const queued = answers.shift();
      if (queued) return resolve(queued);
      const onExit = () => reject(failed ?? new Error('a burst container stopped'));
      worker.once('exit', onExit);
      waiting = (message) => {
        waiting = undefined;
        worker.off('exit', onExit);
        resolve(message);
      };
    });
  const ask = async <T extends FromContainer['type']>(message: ToContainer, type: T) => {
    worker.postMessage(message);
    const answer = await next();
    if (answer.type !== type) throw new Error(`a burst container answered ${answer.type}, not ${type}`);
    return answer as Extract<FromContainer, { type: T }>;
  };
  const ready = await next();
  if (ready.type !== 'ready') throw new Error(`a burst container started with ${ready.type}`);
  return { ask, stop: () => worker.terminate() };
}

export async function run(overrides: Partial<BurstOptions> = {}): Promise<BurstFigures> {
  const options: BurstOptions = { ...DEFAULTS, settings: {}, ...overrides };
  const perProject = Math.ceil(options.requests / options.projects);
  if (perProject > REGIONS.length) {
    throw new UsageError(
      `${options.requests} requests over ${options.projects} projects need ${perProject} keys per project; the bench makes at most ${REGIONS.length} (one per region)`,
    );
  }
  const account = newServiceAccount();
  const sim = await startAtlasSimulator({
    serviceAccounts: [account],
    rateLimit: false,
    // Every endpoint stays INITIATING: the burst is about requests, not activation.
    activationDelayMs: 3_600_000,
    latencyMs: options.atlasLatencyMs,
  });
  const settings = resolveSettings({ ...options.settings, atlasBaseUrl: sim.url });
  const queueUrl = (name: string) => `https://sqs.us-east-1.amazonaws.com/123456789012/burst-${name}`;
  const data: ContainerData = {
    environment: provisionEnvironment(settings, {
      ...provisionResources(queueUrl('queues')),
      ledgerTableName: 'burst-ledger',
    }),
    awsLatencyMs: options.awsLatencyMs,
    secrets: {
      [`${settings.secretPrefix}default`]: JSON.stringify({
        ClientId: account.clientId,
        ClientSecret: account.clientSecret,
      }),
    },
  };
  const containers: Array<Awaited<ReturnType<typeof startContainer>>> = [];
  try {
    for (let i = 0; i < settings.maxConcurrency; i++) containers.push(await startContainer(data));
    const requests = burstRequests(options);
    const queue: SQSRecord[] = requests.map((r) => sqsRecord(r));
    const batches: Batch[] = [];
    const spans: number[] = [];
    const timeoutMs = settings.provisionTimeoutSeconds * 1000;

    const load = loadavg()[0] ?? 0;
    const simulatorCpu = process.threadCpuUsage();
    const startedAt = performance.now();
    await Promise.all(
      containers.map(async (container, index) => {
        let first = true;
        for (let records = queue.splice(0, settings.batchSize); records.length > 0; ) {
          const handedAt = performance.now();
          const answer = await container.ask({ type: 'batch', records, timeoutMs }, 'batch');
          batches.push({
            container: index,
            first,
            wallMs: performance.now() - handedAt,
            handlerMs: answer.handlerMs,
            failures: answer.failures,
            tallies: answer.tallies,
          });
          first = false;
          records = queue.splice(0, settings.batchSize);
        }
        spans[index] = performance.now() - startedAt;
      }),
    );
    const measuredMs = performance.now() - startedAt;
    const simulatorCpuMs = (({ user, system }) => (user + system) / 1000)(
      process.threadCpuUsage(simulatorCpu),
    );

    const reports: Report[] = [];
    for (const container of containers) reports.push(await container.ask({ type: 'report' }, 'report'));
    await verify(requests, batches, reports, sim.url, account);

    const n = options.requests;
    const s = settings;
    const total = (pick: (r: Report) => number) => sum(reports.map(pick));
    const calls = {
      list: total((r) => r.atlasCalls.list),
      create: total((r) => r.atlasCalls.create),
      get: total((r) => r.atlasCalls.get),
      delete: total((r) => r.atlasCalls.delete),
      token: total((r) => r.atlasCalls.token),
    };
    const apiCalls = calls.list + calls.create + calls.get + calls.delete;
    const rounds = Math.ceil(n / (s.maxConcurrency * s.recordConcurrency));
    const idealMs = rounds * 2 * options.atlasLatencyMs;
    const tallies = batches.flatMap((b) => b.tallies);
    const per = (count: number) => (count / n).toFixed(2);

    // Means over batches: of its records' parts, of the tail to its slowest record, of the invocation around them.
    const perBatch = batches.map((b) => {
      const walls = b.tallies.map((t) => t.wallMs);
      return {
        ...b,
        record: mean(walls),
        slowest: Math.max(...walls),
        parts: Object.fromEntries(PARTS.map((p) => [p, mean(b.tallies.map((t) => t.ms[p]))])) as Record<
          Part,
          number
        >,
      };
    });
    const avg = (pick: (b: (typeof perBatch)[number]) => number, of = perBatch) => mean(of.map(pick));
    const p = Object.fromEntries(PARTS.map((q) => [q, avg((b) => b.parts[q])])) as Record<Part, number>;
    const record = avg((b) => b.record);
    const waited = avg((b) => mean(b.tallies.map((t) => t.waitedMs)));
    const overlapped = p.atlas + p.secret + p.ledger + p.eventBridge + p.sqs - waited;
    const code = record - waited;
    const tail = avg((b) => b.slowest - b.record);
    const around = avg((b) => b.handlerMs - b.slowest);
    const handover = avg((b) => b.wallMs - b.handlerMs);
    const batchMs = avg((b) => b.wallMs);
    const perContainer = batches.length / s.maxConcurrency;
    const between = mean(
      spans.map((span, i) => span - sum(batches.filter((b) => b.container === i).map((b) => b.wallMs))),
    );
    const uneven = measuredMs - mean(spans);
    const cpuPerRecord = total((r) => r.cpuMs) / n;
    const aws = {
      ledger: sum(tallies.map((t) => t.calls.ledger)),
      putEvents: total((r) => r.aws.putEvents),
      sqs: total((r) => r.aws.sqs),
      secretReads: total((r) => r.aws.secretReads),
    };
    const awsCalls = sum(tallies.map((t) => t.calls.ledger + t.calls.eventBridge + t.calls.sqs));
    const awsCallMs = sum(tallies.map((t) => t.ms.ledger + t.ms.eventBridge + t.ms.sqs)) / awsCalls;
    const atlasCallMs = sum(tallies.map((t) => t.ms.atlasHttp)) / sum(tallies.map((t) => t.calls.atlasHttp));
    const awsPerRecord = awsCalls / n;
    const floorMs = rounds * (2 * options.atlasLatencyMs + awsPerRecord * options.awsLatencyMs);
    const firstBatchMs = avg(
      (b) => b.wallMs,
      perBatch.filter((b) => b.first),
    );
    const laterBatchMs = avg(
      (b) => b.wallMs,
      perBatch.filter((b) => !b.first),
    );
    const coldMs = firstBatchMs - laterBatchMs;
    // Only AWS calls can overlap (the follow-up beside the announcement): the overlap comes off their share.
    const lateAws = perContainer * (p.ledger + p.eventBridge + p.sqs - overlapped);
    const lateAtlas = perContainer * (p.atlas - 2 * options.atlasLatencyMs);
    const lateRest = measuredMs - idealMs - lateAws - lateAtlas;

    const lines = [
      `${n} create requests, one per natural key (${options.projects} projects x ${perProject} regions, shuffled), through the Provisioner as the function runs it: ${s.maxConcurrency} containers at once (maxConcurrency), each in its own thread, taking batches of ${s.batchSize} (batchSize) from one queue, ${s.recordConcurrency} records of a batch at once (recordConcurrency); Atlas: the simulator over HTTP answering after ${options.atlasLatencyMs} ms; AWS: stand-ins answering concurrently after ${options.awsLatencyMs} ms`,
      `measured ${ms(measuredMs)}; ideal = ceil(requests / (maxConcurrency x recordConcurrency)) x 2 Atlas calls x Atlas latency = ceil(${n} / (${s.maxConcurrency} x ${s.recordConcurrency})) x 2 x ${options.atlasLatencyMs} ms = ${ms(idealMs)}`,
      `measured / ideal: ${(measuredMs / idealMs).toFixed(2)} (goal < 1.5)`,
      `floor of the record's path with its calls one after another, each at its latency, and no code: ${rounds} x (2 x ${options.atlasLatencyMs} + ${awsPerRecord.toFixed(0)} AWS calls x ${options.awsLatencyMs}) ms = ${ms(floorMs)}, ${(floorMs / idealMs).toFixed(2)} x the ideal`,
      `Atlas calls per endpoint: ${(apiCalls / n).toFixed(2)} (list ${per(calls.list)}, create ${per(calls.create)}, get ${per(calls.get)}, delete ${per(calls.delete)}; goal <= 2); OAuth token requests ${calls.token}, Secrets Manager reads ${aws.secretReads} (one each per container)`,
      `AWS calls per record: ledger ${per(aws.ledger)} (claim, create written down, settle, outbox cleared), EventBridge ${per(aws.putEvents)}, SQS ${per(aws.sqs)} (the follow-up)`,
      `where the time goes (means over ${batches.length} batches, ${perContainer.toFixed(1)} per container):`,
      `  a record ${ms(record)} = Atlas ${ms(p.atlas)} (HTTP ${ms(p.atlasHttp)} for 2 calls at ${options.atlasLatencyMs} ms latency; OAuth token ${ms(p.token)}; client code and waiting for another record's token ${ms(p.atlas - p.atlasHttp - p.token)}) + ledger ${ms(p.ledger)} + EventBridge ${ms(p.eventBridge)} + SQS ${ms(p.sqs)} + secret read ${ms(p.secret)}${overlapped >= 1 ? ` - ${ms(overlapped)} of those calls overlapping` : ''} + the Provisioner's own code and event-loop waits ${ms(code)}`,
      `  (an AWS stand-in call took ${(awsCallMs).toFixed(1)} ms, an Atlas call ${(atlasCallMs).toFixed(1)} ms, against latencies of ${options.awsLatencyMs} and ${options.atlasLatencyMs} ms: the rest is code, and timers and threads that a loaded machine runs late)`,
      `  a batch ${ms(batchMs)} = mean record ${ms(record)} + batch tail (its slowest record less the mean) ${ms(tail)} + the invocation around its records (batch processor, middy, metrics) ${ms(around)} + handing it over ${ms(handover)}; a container's first batch ${ms(
        avg(
          (b) => b.wallMs,
          perBatch.filter((b) => b.first),
        ),
      )}, later ones ${ms(
        avg(
          (b) => b.wallMs,
          perBatch.filter((b) => !b.first),
        ),
      )}`,
      `  the burst ${ms(measuredMs)} = ${perContainer.toFixed(1)} batches x ${ms(batchMs)} + between batches ${ms(between)} + uneven finish (the last container less the mean) ${ms(uneven)}`,
      `  over the ideal: AWS calls ${ms(lateAws)}, Atlas beyond its latency (HTTP, token, client) ${ms(lateAtlas)}, the rest (code, secret, batch tails, invocations, uneven finish) ${ms(lateRest)}; the first batch of each container (secret read, OAuth token, code not yet optimised) took ${ms(coldMs)} longer than the later ones`,
      `  CPU: ${cpuPerRecord.toFixed(1)} ms per record in the containers' threads (the stand-ins' mock matching included), ${ms(simulatorCpuMs)} in the simulator's thread over the burst; load average ${load.toFixed(1)} on ${availableParallelism()} cores when the burst started`,
      `verified: all ${n} requests PROVISIONED, one Atlas create per key, the ledger holds for each key the one endpoint Atlas lists`,
    ];
    console.log(lines.join('\n'));
    return {
      requests: n,
      measuredMs,
      idealMs,
      ratio: measuredMs / idealMs,
      atlasCallsPerEndpoint: apiCalls / n,
      tokenRequests: calls.token,
    };
  } finally {
    await Promise.all(containers.map((c) => c.stop()));
    await sim.close();
  }
}

/** Fails loudly unless every request ended PROVISIONED with its endpoint in Atlas and in the ledger. */
async function verify(
  requests: ReturnType<typeof burstRequests>,
  batches: Batch[],
  reports: Report[],
  atlasUrl: string,
  account: { clientId: string; clientSecret: string },
) {
  const problems: string[] = [];
  const failed = sum(batches.map((b) => b.failures));
  if (failed > 0) problems.push(`${failed} records reported as batch item failures`);
  const outcomes = new Map<string, number>();
  for (const t of batches.flatMap((b) => b.tallies)) {
    const outcome = t.outcome ?? `error (${t.error})`;
    outcomes.set(outcome, (outcomes.get(outcome) ?? 0) + 1);
  }
  if (outcomes.get('PROVISIONED') !== requests.length || outcomes.size !== 1) {
    problems.push(
      `outcomes ${JSON.stringify(Object.fromEntries(outcomes))}, expected ${requests.length} PROVISIONED`,
    );
  }
  const ledger = new Map(reports.flatMap((r) => r.ledger));
  const creates = new Map<string, number>();
  for (const [key, count] of reports.flatMap((r) => r.creates))
    creates.set(key, (creates.get(key) ?? 0) + count);
  // Atlas as anyone would see it: every project listed over HTTP.
  const client = new AtlasClient({ baseUrl: atlasUrl, credentials: { kind: 'serviceAccount', ...account } });
  const listed = new Map<string, string[]>();
  for (const groupId of new Set(requests.map((r) => r.groupId))) {
    for (const e of await client.listEndpoints(groupId, 'AWS')) {
      const key = naturalKey({
        groupId,
        cloudProvider: 'AWS',
        regionName: e.regionName as AtlasRegion,
        vpcRegionName: e.vpcRegionName as AtlasRegion | undefined,
      });
      listed.set(key, [...(listed.get(key) ?? []), e.id]);
    }
  }
  let wrong = 0;
  for (const r of requests) {
    const key = naturalKey(r);
    const item = ledger.get(key);
    const ids = listed.get(key) ?? [];
    const ok =
      creates.get(key) === 1 &&
      ids.length === 1 &&
      item?.endpointId === ids[0] &&
      item?.status === 'INITIATING' &&
      item?.lease === undefined &&
      item?.pendingCreate === undefined &&
      (item?.requesters as Record<string, string[]> | undefined)?.default?.includes(r.requestId) === true;
    if (!ok && ++wrong <= 3) {
      problems.push(
        `${key}: ${creates.get(key) ?? 0} creates, Atlas lists ${JSON.stringify(ids)}, ledger ${JSON.stringify(item)}`,
      );
    }
  }
  if (wrong > 0) problems.push(`${wrong} of ${requests.length} keys not provisioned exactly once`);
  if (listed.size !== requests.length) {
    problems.push(`Atlas lists endpoints for ${listed.size} keys, expected ${requests.length}`);
  }
  if (problems.length > 0)
    throw new Error(`the burst did not provision every request:\n  ${problems.join('\n  ')}`);
}

/** The options given as flags, or undefined after --help. */
function parseOptions(argv: string[]): Partial<BurstOptions> | undefined {
  const flag = { type: 'string' } as const;
  const values = parseCommand(
    {
      requests: flag,
      projects: flag,
      'atlas-latency-ms': flag,
      'aws-latency-ms': flag,
      'max-concurrency': flag,
      'batch-size': flag,
      'record-concurrency': flag,
      seed: flag,
    },
    argv,
    USAGE,
  );
  if (!values) return undefined;
  const int = (name: keyof typeof values, min: number, max: number) =>
    integerFlag(name, values[name] as string | undefined, min, max);
  const given = {
    requests: int('requests', 1, 100_000),
    projects: int('projects', 1, 100_000),
    atlasLatencyMs: int('atlas-latency-ms', 1, 60_000),
    awsLatencyMs: int('aws-latency-ms', 0, 60_000),
    seed: int('seed', 0, 2 ** 32 - 1),
  };
  const settings = {
    maxConcurrency: int('max-concurrency', 2, 1000),
    batchSize: int('batch-size', 1, 100),
    recordConcurrency: int('record-concurrency', 1, 100),
  };
  const defined = <T extends object>(o: T) =>
    Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
  return { ...defined(given), settings: defined(settings) };
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  try {
    const options = parseOptions(process.argv.slice(2));
    if (options) await run(options);
  } catch (error) {
    if (!(error instanceof UsageError)) throw error;
    console.error(error.message);
    process.exitCode = 2;
  }
}
