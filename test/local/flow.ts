/**
 * The whole flow on this machine: the AWS API implementations and the Atlas simulator (or a
 * real Atlas) on free loopback ports, the stack's resources, the provisioner behind an SQS
 * event source and the status checker on a schedule, and a tracker following every request.
 * Used by `npm start` and by the end-to-end tests.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { join, resolve } from 'node:path';
import { type MessageAttributeValue, SendMessageBatchCommand } from '@aws-sdk/client-sqs';
import type { ScheduledEvent, SQSEvent, SQSRecord } from 'aws-lambda';
import type { Settings, SettingsInput } from '#infra/settings.ts';
import type { AtlasSimulator, FaultRule, SimulatorOptions } from '#test/simulator/types.ts';
import { type Emulator, type Moto, startElasticMq, startMoto } from './emulators.ts';
import {
  createLocalEnvironment,
  type LocalEnvironment,
  localSettings,
  type ProfileSecret,
} from './environment.ts';
import { type FaultKind, type FaultProxy, type Service, startFaultProxy } from './fault-proxy.ts';
import { startFrontDoorRelay } from './front-door-relay.ts';
import { inProcessInvoker, loadHandler } from './in-process-invoker.ts';
import type { FunctionInvoker, SqsResult } from './invocation.ts';
import { processInvoker } from './process-invoker.ts';
import { ScheduleRunner } from './schedule-runner.ts';
import { SqsPoller } from './sqs-poller.ts';
import { RequestTracker, type TrackedRequest } from './tracker.ts';

const ROOT = resolve(import.meta.dirname, '../..');
export const PROVISION_HANDLER = join(ROOT, 'functions/provision/handler.ts');
export const CHECK_STATUS_HANDLER = join(ROOT, 'functions/check-status/handler.ts');

export interface LocalFlowOptions {
  /** Settings over `localSettings()`'s short local defaults. */
  settings?: SettingsInput;
  /** A real Atlas (or any compatible server) and the profile secret to use with it; no simulator is started. */
  atlas?: { url: string; secret: ProfileSecret };
  simulator?: SimulatorOptions;
  /** Credentials the simulator issues and the secret holds: a service account (default) or an API key (Digest). */
  credentials?: 'serviceAccount' | 'apiKey';
  /** See LocalEnvironmentOptions.visibilityTimeoutSeconds. */
  visibilityTimeoutSeconds?: number;
  /** Where the provisioner runs: in this process (default), or in child processes a crash really kills. */
  isolation?: 'in-process' | 'process';
  /** Simulated crash of the provisioner for batches matching this (see SqsPollerOptions). */
  crashWhen?: (records: SQSRecord[]) => boolean;
  /** Status checker period, ms. Default 1000. */
  checkPeriodMs?: number;
  /** Extra environment for both functions (e.g. POWERTOOLS_LOG_LEVEL). */
  functionEnvironment?: Record<string, string>;
  /** Where the provisioner's logs go when it runs in child processes. */
  functionOutput?: (text: string) => void;
  /**
   * Where the stack's queues are: ElasticMQ (default; it implements message move tasks), or moto,
   * whose EventBridge then delivers the front door's messages to the request queue itself.
   */
  queues?: 'elasticmq' | 'moto';
  /**
   * Puts a fault proxy in front of moto and one in front of the stack's queues, and points only
   * the functions' SDK clients at them (the harness, the tracker and the senders still talk to the
   * emulators), so `flow.outage` takes a dependency down for the deployment, not for the observer.
   */
  outages?: boolean;
}

/** A dependency `flow.outage` can take down: an AWS service behind the fault proxies, or Atlas. */
export type OutageService = Service | 'atlas';

/** An outage started by `flow.outage`. */
export interface StartedOutage {
  readonly service: OutageService;
  readonly kind: FaultKind;
  /** Epoch ms. */
  readonly from: number;
  readonly until: number;
  /** Resolves once it has ended (at `until`, or when ended early). */
  readonly ended: Promise<void>;
  /** Ends it now. */
  end(): void;
}

export interface LocalFlow {
  readonly settings: Settings;
  readonly environment: LocalEnvironment;
  /** Absent when running against a real Atlas. */
  readonly simulator?: AtlasSimulator;
  readonly atlasUrl: string;
  readonly servers: { readonly sqs: Emulator; readonly aws: Moto };
  /** The secret written for every allowed profile. */
  readonly secret: ProfileSecret;
  /** The event source of the first requester's queue (the default requester's when none is configured). */
  readonly provisioner: SqsPoller;
  /** The event source of each requester's queue, by requester name. */
  readonly pollers: Readonly<Record<string, SqsPoller>>;
  readonly statusChecker: ScheduleRunner;
  readonly tracker: RequestTracker;
  /**
   * Sends request bodies (one message each) to a requester's queue (the first requester's, or the
   * default one's, unless named) and tracks them; numbers them as lines from 1 across calls.
   */
  send(bodies: readonly string[], options?: SendOptions): Promise<TrackedRequest[]>;
  /**
   * With `outages`: takes a dependency down from now for `forMs`. An AWS service answers its
   * fault `kind` (see FaultKind; 'partial' is PutEvents only, other operations of the service
   * pass); Atlas (simulator only) answers 503 to every call, ahead of the fault rules injected so
   * far, which are put back as they were when it ends (their `times` counted afresh).
   */
  outage(service: OutageService, kind: FaultKind, forMs: number): StartedOutage;
  /** With `outages`: the fault proxies (calls refused and forwarded). */
  readonly proxies?: { readonly aws: FaultProxy; readonly sqs: FaultProxy };
  stop(): Promise<void>;
}

export interface SendOptions {
  /** The requester whose queue the messages go to. */
  requester?: string;
  /** String message attributes on every message (what a sender may add, trusted or not). */
  attributes?: Record<string, string>;
  /** SQS DelaySeconds of every message: delivered later than sent (an order that is not the send order). */
  delaySeconds?: number;
}

/** A service account in the shape Atlas issues, fresh per run. */
export function newServiceAccount(): { clientId: string; clientSecret: string } {
  return {
    clientId: `mdb_sa_id_${randomBytes(12).toString('hex')}`,
    clientSecret: `mdb_sa_sk_${randomBytes(24).toString('base64url')}`,
  };
}

/** Starts everything; if any server cannot start, stops the others and fails saying why. */
export async function startLocalFlow(options: LocalFlowOptions = {}): Promise<LocalFlow> {
  const account = newServiceAccount();
  const apiKey = { publicKey: randomBytes(4).toString('hex'), privateKey: randomUUID() };
  const useApiKey = options.credentials === 'apiKey';
  const started = await Promise.allSettled([
    startElasticMq(),
    startMoto(),
    options.atlas
      ? Promise.resolve(undefined)
      : import('#test/simulator/index.ts').then(({ startAtlasSimulator }) =>
          startAtlasSimulator({
            ...options.simulator,
            ...(useApiKey
              ? { apiKeys: [...(options.simulator?.apiKeys ?? []), apiKey] }
              : { serviceAccounts: [...(options.simulator?.serviceAccounts ?? []), account] }),
          }),
        ),
  ]);
  const [sqsServer, awsServer, simulator] = started;
  const cleanups: Array<() => Promise<void>> = [];
  // Stops what was started, last first, carrying on past failures.
  const cleanup = async () => {
    for (const stop of cleanups.splice(0).reverse()) await stop().catch(() => undefined);
  };
  const stopServers: Array<() => Promise<void>> = [];
  if (sqsServer.status === 'fulfilled') stopServers.push(() => sqsServer.value.stop());
  if (awsServer.status === 'fulfilled') stopServers.push(() => awsServer.value.stop());
  const sim = simulator.status === 'fulfilled' ? simulator.value : undefined;
  if (sim) stopServers.push(() => sim.close());
  // The servers stop side by side.
  cleanups.push(async () => {
    await Promise.allSettled(stopServers.map((stop) => stop()));
  });
  if (
    sqsServer.status !== 'fulfilled' ||
    awsServer.status !== 'fulfilled' ||
    simulator.status !== 'fulfilled'
  ) {
    const why = (name: string, result: PromiseSettledResult<unknown>) =>
      result.status === 'rejected' ? [`${name}: ${(result.reason as Error).message}`] : [];
    await cleanup();
    throw new Error(
      `the local flow could not start:\n${[
        ...why('ElasticMQ', sqsServer),
        ...why('moto', awsServer),
        ...why('the Atlas simulator', simulator),
      ].join('\n')}`,
    );
  }

  try {
    const atlasUrl = options.atlas?.url ?? sim?.url ?? '';
    const settings = localSettings({ atlasBaseUrl: atlasUrl, ...options.settings });
    const secret: ProfileSecret =
      options.atlas?.secret ??
      (useApiKey
        ? { PublicKey: apiKey.publicKey, PrivateKey: apiKey.privateKey }
        : { ClientId: account.clientId, ClientSecret: account.clientSecret });
    const environment = await createLocalEnvironment({
      settings,
      sqsEndpoint: options.queues === 'moto' ? awsServer.value.endpoint : sqsServer.value.endpoint,
      awsEndpoint: awsServer.value.endpoint,
      secrets: Object.fromEntries(settings.allowedProfiles.map((profile) => [profile, secret])),
      ...(options.visibilityTimeoutSeconds !== undefined && {
        visibilityTimeoutSeconds: options.visibilityTimeoutSeconds,
      }),
    });
    cleanups.push(async () => environment.close());

    const sqsEndpoint = options.queues === 'moto' ? awsServer.value.endpoint : sqsServer.value.endpoint;
    let proxies: { aws: FaultProxy; sqs: FaultProxy } | undefined;
    if (options.outages) {
      const [aws, sqs] = await Promise.all([
        // moto serves every service: each call is named by its X-Amz-Target.
        startFaultProxy({ target: awsServer.value.endpoint, service: 'sqs' }),
        // The stack's queues: the query protocol names no service.
        startFaultProxy({ target: sqsEndpoint, service: 'sqs' }),
      ]);
      proxies = { aws, sqs };
      cleanups.push(async () => {
        await Promise.all([aws.stop(), sqs.stop()]);
      });
    }
    // Only the functions go through the proxies.
    const proxied: Record<string, string> = proxies
      ? { AWS_ENDPOINT_URL: proxies.aws.endpoint, AWS_ENDPOINT_URL_SQS: proxies.sqs.endpoint }
      : {};
    // The SQS client sends each call to its QueueUrl's host, not to AWS_ENDPOINT_URL_SQS: the
    // queue URLs the functions are given name the proxy too.
    const queueOrigin = new URL(environment.continuationQueue.url).origin;
    const throughProxy = (env: Record<string, string>): Record<string, string> =>
      proxies
        ? Object.fromEntries(
            Object.entries({ ...env, ...proxied }).map(([name, value]) => [
              name,
              value.replaceAll(queueOrigin, proxies.sqs.endpoint),
            ]),
          )
        : env;
    const extra = options.functionEnvironment ?? {};
    const provisionEnv = { ...throughProxy(environment.provisionEnvironment), ...extra };
    const checkHandler = await loadHandler<ScheduledEvent, unknown>(CHECK_STATUS_HANDLER, {
      ...throughProxy(environment.checkStatusEnvironment),
      ...extra,
    });
    type ProvisionInvoker = FunctionInvoker<SQSEvent, SqsResult>;
    let invoker: () => ProvisionInvoker;
    if (options.isolation === 'process') {
      invoker = () =>
        processInvoker({
          modulePath: PROVISION_HANDLER,
          env: provisionEnv,
          ...(options.functionOutput && { output: options.functionOutput }),
        });
    } else {
      const handler = await loadHandler<SQSEvent, SqsResult>(PROVISION_HANDLER, provisionEnv);
      invoker = () => inProcessInvoker(handler);
    }

    const requesterNames = Object.keys(environment.requesters);
    const tracker = new RequestTracker({
      eventsSqs: environment.clients.eventsSqs,
      statusEventQueueUrl: environment.statusEventQueue.url,
      maxReceiveCount: environment.maxReceiveCount,
      requesterQueues: Object.fromEntries(
        Object.entries(environment.requesters).map(([name, { queue }]) => [queue.arn, name]),
      ),
    }).start();
    cleanups.push(() => tracker.stop());
    for (const route of environment.frontDoor?.relays ?? []) {
      const relay = startFrontDoorRelay({
        from: { sqs: route.from.sqs, url: route.from.queue.url },
        to: { sqs: environment.clients.sqs, url: route.to.url },
        onError: (error) => tracker.problems.push(error.message),
      });
      cleanups.push(() => relay.stop());
    }
    // One event source per queue the provisioner consumes, as the stack wires it: each
    // requester's queue, and the continuation queue.
    const queues = [
      ...Object.values(environment.requesters).map((r) => r.queue),
      environment.continuationQueue,
    ];
    // The stack splits maxConcurrency between the event sources, at least 2 each.
    const perSource = Math.max(2, Math.floor(settings.maxConcurrency / queues.length));
    const started = queues.map((queue) =>
      new SqsPoller({
        sqs: environment.clients.sqs,
        queue,
        region: environment.region,
        functionName: 'provision',
        timeoutSeconds: settings.provisionTimeoutSeconds,
        batchSize: settings.batchSize,
        concurrency: perSource,
        invoker,
        onActivity: tracker.onActivity,
        ...(options.crashWhen && { crashWhen: options.crashWhen }),
      }).start(),
    );
    for (const poller of started) cleanups.push(() => poller.stop());
    const pollers = Object.fromEntries(requesterNames.map((name, i) => [name, started[i] as SqsPoller]));
    const provisioner = started[0];
    if (!provisioner) throw new Error('no provisioner poller');
    const statusChecker = new ScheduleRunner({
      invoker: inProcessInvoker(checkHandler),
      periodMs: options.checkPeriodMs ?? 1000,
      region: environment.region,
      functionName: 'check-status',
      timeoutSeconds: settings.checkTimeoutSeconds,
      onRun: ({ error }) => {
        if (error) tracker.problems.push(`the status checker failed: ${error.message}`);
      },
    }).start();
    cleanups.push(() => statusChecker.stop());

    // Atlas's outage sits ahead of the rules injected so far and puts them back after: the
    // simulator removes no single rule, so the flow keeps what was injected.
    const atlasRules: FaultRule[] = [];
    if (sim && options.outages) {
      const inject = sim.injectFault.bind(sim);
      const clear = sim.clearFaults.bind(sim);
      sim.injectFault = (rule) => {
        inject(rule);
        atlasRules.push(rule);
      };
      sim.clearFaults = () => {
        clear();
        atlasRules.splice(0);
      };
    }
    let atlasDown = 0;
    const outage = (service: OutageService, kind: FaultKind, forMs: number): StartedOutage => {
      const from = Date.now();
      const until = from + forMs;
      let stop: () => void;
      if (service === 'atlas') {
        if (!sim) throw new Error('an Atlas outage needs the simulator');
        const rules = () => {
          const kept = [...atlasRules];
          sim.clearFaults();
          if (atlasDown > 0) sim.injectFault({ fault: { kind: 'status', status: 503 }, probability: 1 });
          // The 503 rule is not one of the run's: it is not put back.
          atlasRules.splice(0);
          for (const rule of kept) sim.injectFault(rule);
        };
        atlasDown += 1;
        rules();
        stop = () => {
          atlasDown -= 1;
          rules();
        };
      } else {
        if (!proxies)
          throw new Error('startLocalFlow({ outages: true }) starts the fault proxies outages need');
        const proxy = service === 'sqs' ? proxies.sqs : proxies.aws;
        stop = proxy.add({ service, kind, from, until });
      }
      let resolveEnded: () => void = () => undefined;
      const ended = new Promise<void>((ok) => {
        resolveEnded = ok;
      });
      let over = false;
      const end = () => {
        if (over) return;
        over = true;
        clearTimeout(timer);
        stop();
        resolveEnded();
      };
      const timer = setTimeout(end, forMs);
      cleanups.push(async () => end());
      return { service, kind, from, until, ended, end };
    };

    let lines = 0;
    return {
      outage,
      ...(proxies && { proxies }),
      settings,
      environment,
      ...(sim && { simulator: sim }),
      atlasUrl,
      servers: { sqs: options.queues === 'moto' ? awsServer.value : sqsServer.value, aws: awsServer.value },
      secret,
      provisioner,
      pollers,
      statusChecker,
      tracker,
      async send(bodies, sendOptions = {}) {
        const requester = sendOptions.requester ?? requesterNames[0] ?? '';
        const queue = environment.requesters[requester]?.queue;
        if (!queue) {
          throw new Error(`no requester "${requester}": the requesters are ${requesterNames.join(', ')}`);
        }
        const attributes = Object.entries(sendOptions.attributes ?? {});
        const MessageAttributes: Record<string, MessageAttributeValue> | undefined =
          attributes.length > 0
            ? Object.fromEntries(
                attributes.map(([name, value]) => [name, { DataType: 'String', StringValue: value }]),
              )
            : undefined;
        const tracked: TrackedRequest[] = [];
        for (let i = 0; i < bodies.length; i += 10) {
          const chunk = bodies.slice(i, i + 10);
          const out = await environment.clients.sqs.send(
            new SendMessageBatchCommand({
              QueueUrl: queue.url,
              Entries: chunk.map((body, n) => ({
                Id: String(n),
                MessageBody: body,
                ...(MessageAttributes && { MessageAttributes }),
                ...(sendOptions.delaySeconds && { DelaySeconds: sendOptions.delaySeconds }),
              })),
            }),
          );
          if (out.Failed?.length) throw new Error(`SendMessageBatch refused: ${JSON.stringify(out.Failed)}`);
          const ids = new Map((out.Successful ?? []).map((s) => [s.Id, s.MessageId ?? '']));
          chunk.forEach((body, n) => {
            lines += 1;
            tracked.push(tracker.sent(body, ids.get(String(n)) ?? '', lines, requester));
          });
        }
        return tracked;
      },
      stop: cleanup,
    };
  } catch (error) {
    await cleanup();
    throw error;
  }
}
