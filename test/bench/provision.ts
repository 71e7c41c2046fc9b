/**
 * The provisioner's figures (issue 2, section 7), for the real handler module in one warm
 * container against the in-process Atlas simulator over HTTP: OAuth token requests (goal 1),
 * Secrets Manager reads (goal 1) and Atlas requests per new endpoint (goal <= 2) over 200 create
 * requests with moto as AWS; and the wall time of a batch of 10 requests for different projects
 * over that of one such request alone, the simulator answering after a fixed latency (goal < 1.5:
 * records run concurrently). That ratio is measured twice: with AWS answered by stand-ins that
 * reply after a fixed latency and to any number of calls at once, as the real services do (the
 * goal's figure), and with moto, which serves one call at a time (six per record: the ledger's
 * claim, create written down, settle and outbox cleared, PutEvents, and the follow-up sent to
 * SQS), so no handler can overlap them. Run alone with
 * `npx tsx test/bench/provision.ts`.
 */
import { pathToFileURL } from 'node:url';
import { GetSecretValueCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import type { SQSBatchResponse, SQSEvent } from 'aws-lambda';
import { standInAws } from '#test/bench/aws-stand-ins.ts';
import { captureProcessOutput } from '#test/local/capture.ts';
import { startMoto } from '#test/local/emulators.ts';
import { createLocalEnvironment, localSettings } from '#test/local/environment.ts';
import { newServiceAccount, PROVISION_HANDLER } from '#test/local/flow.ts';
import { startAtlasSimulator } from '#test/simulator/index.ts';
import { createRequest, lambdaContext, sqsEvent, sqsRecord } from '#test/support/sqs-events.ts';

const REQUESTS = 200;
const BATCH = 10;
const ATLAS_LATENCY_MS = 100;
const AWS_LATENCY_MS = 15;
const ROUNDS = 5;

/** Median wall times, ms, of one request alone and of a batch of BATCH, and their ratio. */
export interface BatchTiming {
  batchOfOneMs: number;
  batchOfTenMs: number;
  /** batchOfTenMs / batchOfOneMs. */
  ratio: number;
}

/** A BatchTiming with Atlas answering after ATLAS_LATENCY_MS. */
export interface ConcurrencyFigure extends BatchTiming {
  /** Most Atlas requests of a batch in flight together: BATCH when its records overlap fully. */
  peakAtlasRequestsInFlight: number;
}

export interface ProvisionFigures {
  requests: number;
  tokenRequests: number;
  secretReads: number;
  atlasRequestsPerEndpoint: number;
  /** The goal's figure: AWS answered by stand-ins after AWS_LATENCY_MS, concurrently. */
  concurrentAws: ConcurrencyFigure;
  /** moto serving AWS one call at a time. */
  moto: ConcurrencyFigure;
  /** moto serving AWS one call at a time, Atlas answering at once: moto's own share. */
  motoAtlasAtOnce: BatchTiming;
}

type Handler = (event: SQSEvent, context: ReturnType<typeof lambdaContext>) => Promise<SQSBatchResponse>;

interface Sample {
  one: number;
  ten: number;
  inFlight: number;
}

/** Most requests in flight together, each lasting at least `latencyMs` from its arrival. */
function peakInFlight(arrivals: number[], latencyMs: number): number {
  const sorted = [...arrivals].sort((a, b) => a - b);
  return sorted.reduce(
    (peak, start, i) => Math.max(peak, sorted.slice(i).filter((t) => t < start + latencyMs).length),
    0,
  );
}

const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)] ?? NaN;

function timing(samples: Sample[]): BatchTiming {
  const batchOfOneMs = median(samples.map((s) => s.one));
  const batchOfTenMs = median(samples.map((s) => s.ten));
  return { batchOfOneMs, batchOfTenMs, ratio: batchOfTenMs / batchOfOneMs };
}

const concurrency = (samples: Sample[]): ConcurrencyFigure => ({
  ...timing(samples),
  peakAtlasRequestsInFlight: Math.max(...samples.map((s) => s.inFlight)),
});

/** Counts GetSecretValue calls of every Secrets Manager client, the handler's included. */
function countSecretReads(): { count: () => number; restore: () => void } {
  const send = SecretsManagerClient.prototype.send;
  let reads = 0;
  SecretsManagerClient.prototype.send = function (this: SecretsManagerClient, ...args: unknown[]) {
    if (args[0] instanceof GetSecretValueCommand) reads += 1;
    return (send as (...a: unknown[]) => unknown).apply(this, args);
  } as typeof send;
  return {
    count: () => reads,
    restore: () => {
      SecretsManagerClient.prototype.send = send;
    },
  };
}

export async function run(): Promise<ProvisionFigures> {
  const account = newServiceAccount();
  const secret = { ClientId: account.clientId, ClientSecret: account.clientSecret };
  const [sim, moto] = await Promise.all([
    startAtlasSimulator({ serviceAccounts: [account], rateLimit: false, activationDelayMs: 3_600_000 }),
    startMoto(),
  ]);
  const settings = localSettings({
    atlasBaseUrl: sim.url,
    recordConcurrency: BATCH,
    atlasTimeoutMs: 10_000,
    // What an Atlas timeout of 10 s needs: time to start a record, and a settle period as long.
    provisionTimeoutSeconds: 30,
    createSettleSeconds: 30,
  });
  const env = await createLocalEnvironment({
    settings,
    sqsEndpoint: moto.endpoint,
    awsEndpoint: moto.endpoint,
    name: 'bench',
    secrets: { default: secret },
  });
  const saved = { ...process.env };
  Object.assign(process.env, env.provisionEnvironment);
  const secretReads = countSecretReads();
  // The handler logs a line per record: keep them out of the figures.
  const output = captureProcessOutput(() => undefined);
  try {
    const { handler } = (await import(pathToFileURL(PROVISION_HANDLER).href)) as { handler: Handler };
    /** Handles `size` create requests for new projects; fails unless each created an endpoint. */
    const invoke = async (size: number) => {
      // Sent on the default requester's queue: a record from a queue of no requester is refused.
      const event = sqsEvent(
        ...Array.from({ length: size }, () => ({
          ...sqsRecord(createRequest()),
          eventSourceARN: env.requestQueue.arn,
        })),
      );
      const before = sim.endpoints().length;
      const started = performance.now();
      const response = await handler(event, lambdaContext());
      const elapsed = performance.now() - started;
      const created = sim.endpoints().length - before;
      if (response.batchItemFailures.length > 0 || created !== size) {
        throw new Error(
          `the bench expects every request to create an endpoint; ${response.batchItemFailures.length} of ${size} failed, ${created} created`,
        );
      }
      return elapsed;
    };
    const sample = async (atlasLatencyMs: number): Promise<Sample> => {
      sim.setLatency(atlasLatencyMs);
      const one = await invoke(1);
      const from = sim.requests.length;
      const ten = await invoke(BATCH);
      const arrivals = sim.requests.slice(from).map((r) => r.at);
      return { one, ten, inFlight: peakInFlight(arrivals, atlasLatencyMs) };
    };

    for (let done = 0; done < REQUESTS; done += BATCH) await invoke(BATCH);
    const endpoints = sim.endpoints().length;
    const atlasCalls = sim.requests.filter((r) => r.operation !== 'token' && r.auth !== 'challenge').length;
    const tokenRequests = sim.requests.filter((r) => r.operation === 'token').length;
    const reads = secretReads.count();

    const withMoto: Sample[] = [];
    const withMotoAtlasAtOnce: Sample[] = [];
    // Interleaved, so that the load of a shared machine falls on both the same way.
    for (let round = 0; round < ROUNDS; round++) {
      withMoto.push(await sample(ATLAS_LATENCY_MS));
      withMotoAtlasAtOnce.push(await sample(0));
    }

    const withStandIns: Sample[] = [];
    const aws = standInAws({
      latencyMs: AWS_LATENCY_MS,
      secrets: { [env.secretName('default')]: JSON.stringify(secret) },
    });
    try {
      sim.setLatency(ATLAS_LATENCY_MS);
      await invoke(BATCH); // warms the stand-ins' code path
      for (let round = 0; round < ROUNDS; round++) withStandIns.push(await sample(ATLAS_LATENCY_MS));
      const records = BATCH + ROUNDS * (1 + BATCH);
      const calls = aws.calls();
      if (
        calls.claims !== records ||
        calls.settles !== records ||
        calls.putEvents !== records ||
        calls.sqs !== records
      ) {
        throw new Error(
          `the stand-ins should answer one claim, settle, PutEvents and follow-up (SQS) per record (${records}): ${JSON.stringify(calls)}`,
        );
      }
    } finally {
      aws.restore();
    }

    const figures: ProvisionFigures = {
      requests: REQUESTS,
      tokenRequests,
      secretReads: reads,
      atlasRequestsPerEndpoint: atlasCalls / endpoints,
      concurrentAws: concurrency(withStandIns),
      moto: concurrency(withMoto),
      motoAtlasAtOnce: timing(withMotoAtlasAtOnce),
    };
    const times = (t: BatchTiming) => `${t.batchOfTenMs.toFixed(0)} ms / ${t.batchOfOneMs.toFixed(0)} ms`;
    const { concurrentAws, moto: serial, motoAtlasAtOnce } = figures;
    const rows: Array<[string, string, string]> = [
      [`OAuth token requests (${REQUESTS} requests)`, String(figures.tokenRequests), '1'],
      [`Secrets Manager reads (${REQUESTS} requests)`, String(figures.secretReads), '1'],
      ['Atlas requests per new endpoint', figures.atlasRequestsPerEndpoint.toFixed(2), '<= 2'],
      [
        `batch of ${BATCH} / batch of 1, Atlas latency ${ATLAS_LATENCY_MS} ms, AWS stand-ins answering concurrently after ${AWS_LATENCY_MS} ms (${times(concurrentAws)}, median of ${ROUNDS})`,
        concurrentAws.ratio.toFixed(2),
        '< 1.5',
      ],
      [
        `  Atlas requests in flight at once in that batch of ${BATCH}`,
        String(concurrentAws.peakAtlasRequestsInFlight),
        String(BATCH),
      ],
      [
        `batch of ${BATCH} / batch of 1, Atlas latency ${ATLAS_LATENCY_MS} ms, with moto serving AWS one call at a time, 6 per record (${times(serial)}, median of ${ROUNDS})`,
        serial.ratio.toFixed(2),
        'none: moto queues the AWS calls',
      ],
      [
        `  Atlas requests in flight at once in that batch of ${BATCH}`,
        String(serial.peakAtlasRequestsInFlight),
        String(BATCH),
      ],
      [
        `  moto's own share: the same with Atlas answering at once (${times(motoAtlasAtOnce)})`,
        motoAtlasAtOnce.ratio.toFixed(2),
        'none',
      ],
    ];
    output.write(`${rows.map(([what, value, goal]) => `${what}: ${value} (goal ${goal})`).join('\n')}\n`);
    return figures;
  } finally {
    output.restore();
    secretReads.restore();
    for (const name of Object.keys(env.provisionEnvironment)) {
      if (saved[name] === undefined) delete process.env[name];
      else process.env[name] = saved[name];
    }
    env.close();
    await Promise.all([sim.close(), moto.stop()]);
  }
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) await run();
