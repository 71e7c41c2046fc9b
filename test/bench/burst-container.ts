/**
 * One container of the provisioning function for the burst bench (burst.ts), run in a worker
 * thread so that each simulated invocation has its own event loop and CPU, as each Lambda
 * container does: what functions/provision/handler.ts builds at cold start (the Provisioner with
 * the real Ledger, Queues, StatusEvents and Atlas profiles, under middy and Powertools'
 * processPartialResponse), from the environment the stack gives the function, with its own AWS
 * stand-ins. Every call of the Provisioner's dependencies is timed and tallied to the record whose
 * work made it (an AsyncLocalStorage context per record), so a record's time splits into the parts
 * it waited for.
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import { parentPort, workerData } from 'node:worker_threads';
import { BatchProcessor, EventType, processPartialResponse } from '@aws-lambda-powertools/batch';
import { Logger } from '@aws-lambda-powertools/logger';
import { injectLambdaContext } from '@aws-lambda-powertools/logger/middleware';
import { Metrics } from '@aws-lambda-powertools/metrics';
import { logMetrics } from '@aws-lambda-powertools/metrics/middleware';
import middy from '@middy/core';
import type { Context, SQSBatchResponse, SQSEvent, SQSRecord } from 'aws-lambda';
import type { AtlasClient } from '#atlas/client.ts';
import { type AtlasProfiles, atlasProfilesFromEnvironment } from '#atlas/profiles.ts';
import type { CreateEndpointBody } from '#atlas/types.ts';
import { StatusEvents } from '#events/publisher.ts';
import { Ledger } from '#ledger/ledger.ts';
import { Queues } from '#messages/queues.ts';
import { naturalKey, type ProvisionRequest } from '#messages/request.ts';
import {
  type EndpointsApi,
  Provisioner,
  type ProvisionerOptions,
  type RecordOutcome,
  tuningFrom,
} from '#provision/provisioner.ts';
import { type ProvisionEnvironment, readEnvironment } from '#runtime/environment.ts';
import { METRICS_NAMESPACE, SERVICE } from '#runtime/metric-names.ts';
import { atlasCallMetrics } from '#runtime/telemetry.ts';
import { standInAws } from '#test/bench/aws-stand-ins.ts';
import { captureProcessOutput } from '#test/local/capture.ts';
import { lambdaContext } from '#test/support/sqs-events.ts';

/** The parts of a record's time, ms: each dependency it waited for. */
export const PARTS = ['atlas', 'atlasHttp', 'token', 'secret', 'ledger', 'eventBridge', 'sqs'] as const;
export type Part = (typeof PARTS)[number];

export interface Tally {
  messageId: string;
  wallMs: number;
  /** Time waiting for at least one dependency: less than the sum of the parts when calls overlap. */
  waitedMs: number;
  outcome?: RecordOutcome;
  error?: string;
  ms: Record<Part, number>;
  calls: Record<Part, number>;
}

export interface ContainerData {
  /** The function's environment, as the stack sets it. */
  environment: Record<string, string>;
  awsLatencyMs: number;
  secrets: Record<string, string>;
}

export type ToContainer = { type: 'batch'; records: SQSRecord[]; timeoutMs: number } | { type: 'report' };

export type FromContainer =
  | { type: 'ready' }
  | { type: 'batch'; handlerMs: number; failures: number; tallies: Tally[] }
  | {
      type: 'report';
      ledger: Array<[string, Record<string, unknown>]>;
      creates: Array<[string, number]>;
      atlasCalls: Record<'list' | 'create' | 'get' | 'delete' | 'token', number>;
      aws: ReturnType<ReturnType<typeof standInAws>['calls']>;
      /** This thread's CPU time while it handled batches, ms. */
      cpuMs: number;
    };

/** The fetch the Atlas client would call, before the probe stands in for it. */
const nativeFetch = globalThis.fetch;

const zero = () => Object.fromEntries(PARTS.map((p) => [p, 0])) as Record<Part, number>;

class Probe {
  readonly #current = new AsyncLocalStorage<Tally>();
  /** Atlas creates per natural key. */
  readonly creates = new Map<string, number>();
  readonly atlasCalls = { list: 0, create: 0, get: 0, delete: 0, token: 0 };

  /** Each record's waits, [from, to], for their union. */
  readonly #waits = new WeakMap<Tally, Array<[number, number]>>();

  async time<T>(part: Part, run: () => Promise<T>): Promise<T> {
    const started = performance.now();
    try {
      return await run();
    } finally {
      this.add(part, started);
    }
  }

  /** A wait of the current record for `part` from `started` until now. */
  add(part: Part, started: number) {
    const tally = this.#current.getStore();
    if (!tally) throw new Error(`a ${part} call outside any record: the bench cannot place it`);
    const ended = performance.now();
    tally.ms[part] += ended - started;
    tally.calls[part] += 1;
    this.#waits.get(tally)?.push([started, ended]);
  }

  #waited(tally: Tally): number {
    const waits = (this.#waits.get(tally) ?? []).sort((a, b) => a[0] - b[0]);
    let total = 0;
    let end = Number.NEGATIVE_INFINITY;
    for (const [from, to] of waits) {
      total += Math.max(0, to - Math.max(from, end));
      end = Math.max(end, to);
    }
    return total;
  }

  /** The listed methods of `target`, each timed as `part`. */
  timed<T extends object, K extends keyof T>(target: T, part: Part, names: readonly K[]): Pick<T, K> {
    return Object.fromEntries(
      names.map((name) => {
        const method = target[name] as (...args: unknown[]) => Promise<unknown>;
        return [name, (...args: unknown[]) => this.time(part, () => method.apply(target, args))];
      }),
    ) as Pick<T, K>;
  }

  /** The Atlas profiles: the time before the client is handed over is the secret read (cold only). */
  atlas(profiles: AtlasProfiles): ProvisionerOptions['atlas'] {
    return {
      withClient: <T>(profile: string, fn: (client: EndpointsApi) => Promise<T>) => {
        const entered = performance.now();
        return profiles.withClient(profile, (client) => {
          this.add('secret', entered);
          return fn(this.#endpoints(client));
        });
      },
    };
  }

  #endpoints(client: AtlasClient): EndpointsApi {
    const calls = this.atlasCalls;
    return {
      listEndpoints: (...args) => {
        calls.list += 1;
        return this.time('atlas', () => client.listEndpoints(...args));
      },
      createEndpoint: (groupId: string, body: CreateEndpointBody, ...rest) => {
        calls.create += 1;
        const key = naturalKey({ groupId, ...body } as ProvisionRequest);
        this.creates.set(key, (this.creates.get(key) ?? 0) + 1);
        return this.time('atlas', () => client.createEndpoint(groupId, body, ...rest));
      },
      getEndpoint: (...args) => {
        calls.get += 1;
        return this.time('atlas', () => client.getEndpoint(...args));
      },
      deleteEndpoint: (...args) => {
        calls.delete += 1;
        return this.time('atlas', () => client.deleteEndpoint(...args));
      },
    };
  }

  /** The Atlas client's fetch: API round trips and token requests, timed apart. */
  readonly fetch: typeof fetch = (input, init) => {
    const token = String(input instanceof Request ? input.url : input).includes('/api/oauth/token');
    if (token) this.atlasCalls.token += 1;
    return this.time(token ? 'token' : 'atlasHttp', () => nativeFetch(input, init));
  };

  /** The record handler, each record run in its own tally, collected into `into`. */
  record(handle: Provisioner['handleRecord'], into: () => Tally[]): Provisioner['handleRecord'] {
    return (record, context) => {
      const tally: Tally = { messageId: record.messageId, wallMs: 0, waitedMs: 0, ms: zero(), calls: zero() };
      this.#waits.set(tally, []);
      into().push(tally);
      const started = performance.now();
      return this.#current.run(tally, () =>
        handle(record, context).then(
          (outcome) => {
            tally.wallMs = performance.now() - started;
            tally.waitedMs = this.#waited(tally);
            tally.outcome = outcome;
            return outcome;
          },
          (error: unknown) => {
            tally.wallMs = performance.now() - started;
            tally.waitedMs = this.#waited(tally);
            tally.error = error instanceof Error ? `${error.name}: ${error.message}` : String(error);
            throw error;
          },
        ),
      );
    };
  }
}

type Handler = (event: SQSEvent, context: Context) => Promise<SQSBatchResponse>;

/** What handler.ts builds at cold start, from `env`, with the dependencies timed by `probe`. */
function coldStart(env: ProvisionEnvironment, probe: Probe, tallies: () => Tally[]): Handler {
  const logger = new Logger({ serviceName: SERVICE.provisioner });
  const metrics = new Metrics({ namespace: METRICS_NAMESPACE, serviceName: SERVICE.provisioner });
  const ledgerMethods = [
    'claim',
    'amend',
    'release',
    'settle',
    'recordFailure',
    'clearOutbox',
    'get',
    'recordCheck',
    'keepAnswer',
  ] as const;
  const provisioner = new Provisioner({
    ...tuningFrom(env),
    ledger: probe.timed(new Ledger({ tableName: env.ledgerTableName }), 'ledger', ledgerMethods),
    atlas: probe.atlas(atlasProfilesFromEnvironment(env, atlasCallMetrics(metrics))),
    queues: probe.timed(new Queues(env), 'sqs', ['delay', 'park', 'wait', 'followUp']),
    events: probe.timed(
      new StatusEvents({ busName: env.eventBusName, source: env.eventSource }),
      'eventBridge',
      ['publish'],
    ),
    logger,
    metrics,
  });
  const handleRecord = probe.record(provisioner.handleRecord, tallies);
  return middy(
    (event: SQSEvent, context: Context): Promise<SQSBatchResponse> =>
      processPartialResponse(event, handleRecord, new BatchProcessor(EventType.SQS), {
        context,
        throwOnFullBatchFailure: false,
      }),
  )
    .use(injectLambdaContext(logger))
    .use(logMetrics(metrics, { captureColdStartMetric: true }));
}

if (parentPort) {
  const port = parentPort;
  const data = workerData as ContainerData;
  const post = (message: FromContainer) => port.postMessage(message);
  process.env.AWS_REGION ??= 'us-east-1';
  // The function logs a line per record: kept out of the figures (and written nowhere).
  captureProcessOutput(() => undefined);
  const aws = standInAws({ latencyMs: data.awsLatencyMs, secrets: data.secrets });
  const probe = new Probe();
  let batch: Tally[] = [];
  // The Atlas client calls the global fetch: timed here, it tells API round trips from token requests.
  globalThis.fetch = probe.fetch;
  const handler = coldStart(readEnvironment('provision', data.environment), probe, () => batch);
  let cpuMs = 0;
  port.on('message', async (message: ToContainer) => {
    if (message.type === 'report') {
      post({
        type: 'report',
        ledger: [...aws.ledgerItems()],
        creates: [...probe.creates],
        atlasCalls: probe.atlasCalls,
        aws: aws.calls(),
        cpuMs,
      });
      return;
    }
    batch = [];
    const cpu = process.threadCpuUsage();
    const started = performance.now();
    const deadline = Date.now() + message.timeoutMs;
    const response = await handler(
      { Records: message.records },
      lambdaContext({ getRemainingTimeInMillis: () => deadline - Date.now() }),
    );
    const handlerMs = performance.now() - started;
    const used = process.threadCpuUsage(cpu);
    cpuMs += (used.user + used.system) / 1000;
    post({ type: 'batch', handlerMs, failures: response.batchItemFailures.length, tallies: batch });
  });
  post({ type: 'ready' });
}
