/**
 * The announcement lag (issue 12): how long after Atlas turns an endpoint ACTIVE its requester
 * hears ACTIVE, and the Atlas calls spent on following it. It runs the real Provisioner and
 * StatusChecker (the domains the two handlers call), the Atlas simulator's own endpoint lifecycle
 * (test/simulator/endpoints.ts) and the in-memory ledger on one virtual clock: SQS message delays
 * (DelaySeconds, whole seconds) and the checker's schedule are events on that clock, so ten
 * minutes of activations run in well under a second and the figures are in real time, with no
 * scaling error. SQS is taken to deliver a message the moment its delay ends (a real poll adds up
 * to a second or so).
 *
 * ENDPOINTS create requests, each for its own project, arrive over the first scheduler period;
 * each endpoint turns ACTIVE after a delay drawn uniformly from 10 s to 10 min (seeded). The
 * checker runs every `scheduleRateMinutes` (default 5) at a random phase. Printed per spacing:
 * lag median / p95 / max, follow-up GETs per endpoint, and the checker's listings (the sweep's
 * Atlas calls, which follow-ups must not raise). "sweep only" is the behaviour before follow-ups.
 * Run alone with `npx tsx test/bench/follow-up-lag.ts`.
 */
import { pathToFileURL } from 'node:url';
import { Logger } from '@aws-lambda-powertools/logger';
import type { Metrics } from '@aws-lambda-powertools/metrics';
import type { SQSRecord } from 'aws-lambda';
import type { AtlasEndpoint, CloudProvider, CreateEndpointBody } from '#atlas/types.ts';
import { StatusChecker } from '#check-status/status-checker.ts';
import type { StatusChangedDetail } from '#events/status-event.ts';
import { AtlasApiError } from '#lib/errors.ts';
import { FOLLOW_UP, FOLLOWED_ENDPOINT_ID, ORIGINAL_MESSAGE_ID, WAITS } from '#messages/attributes.ts';
import { Requesters } from '#messages/requesters.ts';
import { type EndpointsApi, Provisioner } from '#provision/provisioner.ts';
import { defaultRequester } from '#test/support/resources.ts';

const CONTINUATIONS = 'arn:aws:sqs:us-east-1:123456789012:continuations';

import { EndpointStore } from '#test/simulator/endpoints.ts';
import { seededRandom } from '#test/simulator/random.ts';
import { InMemoryLedger } from '#test/support/in-memory-ledger.ts';
import { createRequest, sqsRecord } from '#test/support/sqs-events.ts';

const ENDPOINTS = 200;
const MIN_ACTIVATION_S = 10;
const MAX_ACTIVATION_S = 600;
const SCHEDULE_MINUTES = 5;
/** Simulated time: every activation, then two more checker periods. */
const HORIZON_MS = (MAX_ACTIVATION_S + SCHEDULE_MINUTES * 60 * 3) * 1000;

export interface LagFigures {
  spacing: string;
  endpoints: number;
  medianLagSeconds: number;
  p95LagSeconds: number;
  maxLagSeconds: number;
  /** GETs of follow-ups per endpoint. */
  followUpCallsPerEndpoint: number;
  /** Most follow-up GETs one endpoint took. */
  maxFollowUpCalls: number;
  /** Listings of the checker over the horizon (one per project per run). */
  sweepListings: number;
}

const quantile = (sorted: number[], q: number) =>
  sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)] ?? Number.NaN;

async function simulate(followUp: { firstSeconds: number; maxSeconds: number } | undefined, seed: number) {
  let t = Date.parse('2026-12-01T00:00:00.000Z');
  const start = t;
  const random = seededRandom(seed);
  const agenda: Array<{ at: number; seq: number; run: () => Promise<void> }> = [];
  let seq = 0;
  const at = (when: number, run: () => Promise<void>) => {
    agenda.push({ at: when, seq: seq++, run });
    agenda.sort((a, b) => a.at - b.at || a.seq - b.seq);
  };

  // Atlas: the simulator's lifecycle; each create draws its own activation delay.
  const storeOptions = { activationDelayMs: 0, deletionDelayMs: 30_000, now: () => t };
  const store = new EndpointStore(storeOptions);
  const activeAt = new Map<string, number>();
  const calls = { list: 0, get: 0, create: 0, delete: 0 };
  const getsByEndpoint = new Map<string, number>();
  let checking = false;
  let sweepListings = 0;
  const atlas: EndpointsApi = {
    listEndpoints: async (groupId: string) => {
      calls.list += 1;
      if (checking) sweepListings += 1;
      return store.list(groupId);
    },
    createEndpoint: async (groupId: string, body: CreateEndpointBody) => {
      calls.create += 1;
      const delay = (MIN_ACTIVATION_S + random() * (MAX_ACTIVATION_S - MIN_ACTIVATION_S)) * 1000;
      storeOptions.activationDelayMs = delay;
      const created = store.create(groupId, body);
      activeAt.set(created.id, t + delay);
      return created;
    },
    deleteEndpoint: async (groupId: string, _p: CloudProvider, id: string) => {
      calls.delete += 1;
      store.delete(groupId, id);
    },
    getEndpoint: async (groupId: string, _p: CloudProvider, id: string): Promise<AtlasEndpoint> => {
      calls.get += 1;
      getsByEndpoint.set(id, (getsByEndpoint.get(id) ?? 0) + 1);
      const found = store.get(groupId, id);
      if (!found) throw new AtlasApiError({ status: 404, errorCode: 'NOT_FOUND', operation: 'get' });
      return found;
    },
  };

  const ledger = new InMemoryLedger(() => new Date(t));
  const heardActive = new Map<string, number>();
  const events = {
    publish: async (...details: StatusChangedDetail[]) => {
      for (const d of details) {
        if (d.status === 'ACTIVE' && d.endpointId && !heardActive.has(d.endpointId))
          heardActive.set(d.endpointId, t);
      }
    },
  };
  const logger = new Logger({ serviceName: 'bench', logLevel: 'SILENT' });
  const metrics = { addMetric: () => metrics } as unknown as Pick<Metrics, 'addMetric'>;

  let provisioner: Provisioner;
  /** A message on the request queue, delivered after its delay. */
  const enqueue = (body: string, delaySeconds: number, attributes: Record<string, string> = {}) => {
    const record: SQSRecord = sqsRecord(body);
    record.eventSourceARN = CONTINUATIONS;
    record.messageAttributes = Object.fromEntries(
      Object.entries({ Requester: 'default', ...attributes }).map(([name, value]) => [
        name,
        { dataType: 'String', stringValue: value, stringListValues: [], binaryListValues: [] },
      ]),
    );
    at(t + delaySeconds * 1000, async () => {
      await provisioner.handleRecord(record).catch(() => {
        // A retry: SQS delivers it again after the visibility timeout (not expected here).
        at(t + 30_000, async () => void (await provisioner.handleRecord(record).catch(() => undefined)));
      });
    });
  };
  provisioner = new Provisioner({
    requesters: new Requesters([defaultRequester()]),
    continuationQueueArn: CONTINUATIONS,
    continuationQueueUrl: 'https://sqs.us-east-1.amazonaws.com/123456789012/continuations',
    ledger,
    atlas: { withClient: (_profile, fn) => fn(atlas) },
    queues: {
      wait: async (body, seconds, carried) =>
        enqueue(body, seconds, {
          [ORIGINAL_MESSAGE_ID]: carried.originalMessageId,
          [WAITS]: String(carried.waits),
        }),
      followUp: async (body, seconds, carried) =>
        enqueue(body, seconds, {
          [ORIGINAL_MESSAGE_ID]: carried.originalMessageId,
          [FOLLOW_UP]: String(carried.number),
          [FOLLOWED_ENDPOINT_ID]: carried.endpointId,
        }),
      delay: async () => undefined,
      park: async () => undefined,
    },
    events,
    logger,
    metrics,
    allowedProfiles: ['default'],
    maxAttempts: 5,
    leaseSeconds: 120,
    recordConcurrency: 10,
    backoff: { baseSeconds: 2, capSeconds: 900 },
    createSettleSeconds: 30,
    maxEndpointFailures: 3,
    atlasTimeoutMs: 10_000,
    random,
    now: () => new Date(t),
    ...(followUp && { followUp }),
  });
  const checker = new StatusChecker({
    ledger,
    atlas: { withClient: (_profile, fn) => fn(atlas) },
    events,
    requests: { send: async (body) => enqueue(body, 0) },
    logger,
    metrics,
    deadlines: { pendingAcceptanceMinutes: 1440, inProgressMinutes: 60 },
    projectConcurrency: 4,
    safetyMarginMs: 10_000,
    now: () => new Date(t),
  });

  const periodMs = SCHEDULE_MINUTES * 60_000;
  const tick = async (): Promise<void> => {
    checking = true;
    try {
      await checker.run({ remainingMs: () => 120_000 });
    } finally {
      checking = false;
    }
    if (t + periodMs <= start + HORIZON_MS) at(t + periodMs, tick);
  };
  at(start + random() * periodMs, tick);
  for (let i = 0; i < ENDPOINTS; i++) {
    const body = JSON.stringify(createRequest());
    at(start + random() * periodMs, async () => enqueue(body, 0));
  }

  for (let next = agenda.shift(); next && next.at <= start + HORIZON_MS; next = agenda.shift()) {
    t = next.at;
    await next.run();
  }

  const lags = [...activeAt].map(([id, when]) => (heardActive.get(id) ?? Number.NaN) - when);
  if (lags.some((lag) => !Number.isFinite(lag) || lag < 0)) {
    throw new Error(`${lags.filter((l) => !Number.isFinite(l)).length} endpoints never announced ACTIVE`);
  }
  if (calls.create !== ENDPOINTS) throw new Error(`expected ${ENDPOINTS} creates, Atlas saw ${calls.create}`);
  const sorted = lags.sort((a, b) => a - b).map((ms) => ms / 1000);
  const gets = [...getsByEndpoint.values()];
  return {
    spacing: followUp
      ? `follow-ups ${followUp.firstSeconds} s doubling to ${followUp.maxSeconds} s`
      : 'sweep only',
    endpoints: ENDPOINTS,
    medianLagSeconds: quantile(sorted, 0.5),
    p95LagSeconds: quantile(sorted, 0.95),
    maxLagSeconds: sorted.at(-1) ?? Number.NaN,
    followUpCallsPerEndpoint: calls.get / ENDPOINTS,
    maxFollowUpCalls: gets.length > 0 ? Math.max(...gets) : 0,
    sweepListings,
  } satisfies LagFigures;
}

export async function run(): Promise<LagFigures[]> {
  const variants = [
    undefined,
    { firstSeconds: 10, maxSeconds: 30 },
    { firstSeconds: 10, maxSeconds: 60 },
    { firstSeconds: 10, maxSeconds: 120 },
  ];
  const figures: LagFigures[] = [];
  for (const variant of variants) figures.push(await simulate(variant, 12));
  console.log(
    `${ENDPOINTS} endpoints, one project each, ACTIVE after 10 s-10 min (uniform), checker every ${SCHEDULE_MINUTES} min; lag = Atlas ACTIVE -> requester's ACTIVE event, real seconds`,
  );
  for (const f of figures) {
    console.log(
      `${f.spacing}${f.spacing.endsWith(' 30 s') ? ' (default)' : ''}: lag median ${f.medianLagSeconds.toFixed(1)} s, p95 ${f.p95LagSeconds.toFixed(1)} s, max ${f.maxLagSeconds.toFixed(1)} s; follow-up GETs per endpoint ${f.followUpCallsPerEndpoint.toFixed(2)} (max ${f.maxFollowUpCalls}); sweep listings ${f.sweepListings}`,
    );
  }
  console.log(
    'goals: p95 lag <= 30 s with default settings; <= 6 follow-up calls per endpoint; sweep listings not above sweep only',
  );
  return figures;
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) await run();
