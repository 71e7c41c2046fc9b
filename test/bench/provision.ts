/**
 * The provisioner's figures (issue 2, section 7), for 200 create requests handled by the real
 * handler module in one warm container, against the in-process Atlas simulator and moto:
 * OAuth token requests (goal 1), Secrets Manager reads (goal 1), Atlas requests per new
 * endpoint (goal <= 2), and the wall time of a batch of 10 requests for different projects
 * over that of one such request alone, the simulator answering after a fixed latency
 * (goal < 1.5: records run concurrently). moto answers one call at a time (about 12-20 ms each,
 * three per record), which no handler can overlap; so the bench also times the same batches with
 * Atlas answering at once (moto's share), and counts the Atlas requests of a batch in flight at
 * once. Run alone with `npx tsx test/bench/provision.ts`.
 */
import { pathToFileURL } from 'node:url';
import { GetSecretValueCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import type { SQSBatchResponse, SQSEvent } from 'aws-lambda';
import { captureProcessOutput } from '#test/local/capture.ts';
import { startMoto } from '#test/local/emulators.ts';
import { createLocalEnvironment, localSettings } from '#test/local/environment.ts';
import { newServiceAccount, PROVISION_HANDLER } from '#test/local/flow.ts';
import { startAtlasSimulator } from '#test/simulator/index.ts';
import { createRequest, lambdaContext, sqsEvent, sqsRecord } from '#test/support/sqs-events.ts';

const REQUESTS = 200;
const BATCH = 10;
const LATENCY_MS = 100;
const ROUNDS = 5;

export interface ProvisionFigures {
  requests: number;
  tokenRequests: number;
  secretReads: number;
  atlasRequestsPerEndpoint: number;
  /** Median wall times, ms, with Atlas answering after LATENCY_MS and at once. */
  batchOfOneMs: number;
  batchOfTenMs: number;
  batchOfOneNoLatencyMs: number;
  batchOfTenNoLatencyMs: number;
  /** batchOfTenMs / batchOfOneMs: the issue's figure. */
  concurrencyRatio: number;
  /** Most Atlas requests of a batch of 10 in flight together: 10 when its records overlap fully. */
  peakAtlasRequestsInFlight: number;
}

type Handler = (event: SQSEvent, context: ReturnType<typeof lambdaContext>) => Promise<SQSBatchResponse>;

/** Most requests in flight together, each lasting at least `latencyMs` from its arrival. */
function peakInFlight(arrivals: number[], latencyMs: number): number {
  const sorted = [...arrivals].sort((a, b) => a - b);
  return sorted.reduce(
    (peak, start, i) => Math.max(peak, sorted.slice(i).filter((t) => t < start + latencyMs).length),
    0,
  );
}

const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)] ?? NaN;

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
  const [sim, moto] = await Promise.all([
    startAtlasSimulator({ serviceAccounts: [account], rateLimit: false, activationDelayMs: 3_600_000 }),
    startMoto(),
  ]);
  const settings = localSettings({ atlasBaseUrl: sim.url, recordConcurrency: BATCH, atlasTimeoutMs: 10_000 });
  const env = await createLocalEnvironment({
    settings,
    sqsEndpoint: moto.endpoint,
    awsEndpoint: moto.endpoint,
    name: 'bench',
    secrets: { default: { ClientId: account.clientId, ClientSecret: account.clientSecret } },
  });
  const saved = { ...process.env };
  Object.assign(process.env, env.provisionEnvironment);
  const secretReads = countSecretReads();
  // The handler logs a line per record: keep them out of the figures.
  const output = captureProcessOutput(() => undefined);
  try {
    const { handler } = (await import(pathToFileURL(PROVISION_HANDLER).href)) as { handler: Handler };
    const invoke = async (size: number) => {
      const event = sqsEvent(...Array.from({ length: size }, () => sqsRecord(createRequest())));
      const started = performance.now();
      const response = await handler(event, lambdaContext());
      const elapsed = performance.now() - started;
      if (response.batchItemFailures.length > 0) {
        throw new Error(
          `the bench expects every request provisioned; ${response.batchItemFailures.length} failed`,
        );
      }
      return elapsed;
    };

    for (let done = 0; done < REQUESTS; done += BATCH) await invoke(BATCH);
    const endpoints = sim.endpoints().length;
    const atlasCalls = sim.requests.filter((r) => r.operation !== 'token' && r.auth !== 'challenge').length;
    const tokenRequests = sim.requests.filter((r) => r.operation === 'token').length;
    const reads = secretReads.count();

    const ones: number[] = [];
    const tens: number[] = [];
    const onesAtOnce: number[] = [];
    const tensAtOnce: number[] = [];
    let inFlight = 0;
    // Interleaved, so that the load of a shared machine falls on both the same way.
    for (let round = 0; round < ROUNDS; round++) {
      sim.setLatency(LATENCY_MS);
      ones.push(await invoke(1));
      const from = sim.requests.length;
      tens.push(await invoke(BATCH));
      inFlight = Math.max(
        inFlight,
        peakInFlight(
          sim.requests.slice(from).map((r) => r.at),
          LATENCY_MS,
        ),
      );
      sim.setLatency(0);
      onesAtOnce.push(await invoke(1));
      tensAtOnce.push(await invoke(BATCH));
    }

    const figures: ProvisionFigures = {
      requests: REQUESTS,
      tokenRequests,
      secretReads: reads,
      atlasRequestsPerEndpoint: atlasCalls / endpoints,
      batchOfOneMs: median(ones),
      batchOfTenMs: median(tens),
      batchOfOneNoLatencyMs: median(onesAtOnce),
      batchOfTenNoLatencyMs: median(tensAtOnce),
      concurrencyRatio: median(tens) / median(ones),
      peakAtlasRequestsInFlight: inFlight,
    };
    const ms = (n: number) => `${n.toFixed(0)} ms`;
    const rows: Array<[string, string, string]> = [
      [`OAuth token requests (${REQUESTS} requests)`, String(figures.tokenRequests), '1'],
      [`Secrets Manager reads (${REQUESTS} requests)`, String(figures.secretReads), '1'],
      ['Atlas requests per new endpoint', figures.atlasRequestsPerEndpoint.toFixed(2), '<= 2'],
      [
        `batch of ${BATCH} / batch of 1, Atlas latency ${LATENCY_MS} ms (${ms(figures.batchOfTenMs)} / ${ms(figures.batchOfOneMs)}, median of ${ROUNDS})`,
        figures.concurrencyRatio.toFixed(2),
        '< 1.5',
      ],
      [
        `  the same with Atlas answering at once, i.e. moto's share (${ms(figures.batchOfTenNoLatencyMs)} / ${ms(figures.batchOfOneNoLatencyMs)})`,
        (figures.batchOfTenNoLatencyMs / figures.batchOfOneNoLatencyMs).toFixed(2),
        'none',
      ],
      [`  Atlas requests in flight at once in a batch of ${BATCH}`, String(inFlight), String(BATCH)],
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
