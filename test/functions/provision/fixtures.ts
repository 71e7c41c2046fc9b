/**
 * A Provisioner wired to aws-sdk-client-mock fakes of DynamoDB, SQS and EventBridge (the real
 * Ledger, Queues and StatusEvents run on top of them) and to a scriptable fake Atlas client.
 */
import { Logger } from '@aws-lambda-powertools/logger';
import { EventBridgeClient, PutEventsCommand } from '@aws-sdk/client-eventbridge';
import { ChangeMessageVisibilityCommand, SendMessageCommand, SQSClient } from '@aws-sdk/client-sqs';
import type { SQSRecord } from 'aws-lambda';
import { mockClient } from 'aws-sdk-client-mock';
import { beforeEach, vi } from 'vitest';
import type { AtlasEndpoint, CloudProvider, CreateEndpointBody } from '#atlas/types.ts';
import { StatusEvents } from '#events/publisher.ts';
import { type StatusChangedDetail, StatusChangedDetailSchema } from '#events/schema.ts';
import { AtlasApiError } from '#lib/errors.ts';
import { Queues } from '#messages/queues.ts';
import { naturalKey, type ProvisionRequest } from '#messages/request.ts';
import { ALL_PROJECTS, DEFAULT_REQUESTER, type RequesterEntry, Requesters } from '#messages/requesters.ts';
import { type EndpointsApi, Provisioner, type ProvisionerOptions } from '#provision/provisioner.ts';
import { InMemoryLedger } from '#test/support/in-memory-ledger.ts';

export const QUEUES = {
  /** The default requester's queue: the one the events/ fixtures' records come from. */
  requestQueueUrl: 'https://sqs.us-east-1.amazonaws.com/123456789012/atlas-backup-private-endpoints-requests',
  requestQueueArn: 'arn:aws:sqs:us-east-1:123456789012:atlas-backup-private-endpoints-requests',
  dlqUrl: 'https://sqs.us-east-1.amazonaws.com/123456789012/requests-dlq',
  rejectedQueueUrl: 'https://sqs.us-east-1.amazonaws.com/123456789012/requests-rejected',
  continuationQueueUrl: 'https://sqs.us-east-1.amazonaws.com/123456789012/continuations',
  continuationQueueArn: 'arn:aws:sqs:us-east-1:123456789012:continuations',
};

/** The requester of a deployment with none configured: the fixtures' queue, every project and profile. */
export const DEFAULT_ENTRY: RequesterEntry = {
  name: DEFAULT_REQUESTER,
  queueArn: QUEUES.requestQueueArn,
  queueUrl: QUEUES.requestQueueUrl,
  dlqUrl: QUEUES.dlqUrl,
  projects: ALL_PROJECTS,
  profiles: ['default'],
  actions: ['create', 'delete'],
};
export const NOW = new Date('2026-11-29T10:00:00.000Z');

type Op = 'list' | 'create' | 'delete' | 'get';

/** Atlas as the provisioner sees it: endpoints per project, and failures queued per operation. */
export class FakeAtlas implements EndpointsApi {
  readonly endpoints = new Map<string, AtlasEndpoint[]>();
  readonly calls: Array<{ op: Op; groupId: string; endpointId?: string }> = [];
  readonly #failures: Record<Op, unknown[]> = { list: [], create: [], delete: [], get: [] };
  /** Resolves each call after this many ms (to observe concurrency). */
  latencyMs = 0;
  #active = 0;
  maxActive = 0;
  #ids = 0;

  failNext(op: Op, ...errors: unknown[]) {
    this.#failures[op].push(...errors);
  }

  seed(groupId: string, endpoint: Omit<AtlasEndpoint, 'id'> & { id?: string }): AtlasEndpoint {
    const full = { id: endpoint.id ?? this.#nextId(), ...endpoint };
    this.endpoints.set(groupId, [...(this.endpoints.get(groupId) ?? []), full]);
    return full;
  }

  async listEndpoints(groupId: string, _cloudProvider: CloudProvider): Promise<AtlasEndpoint[]> {
    // Copies, as a listing over HTTP gives: what Atlas does later never changes one already read.
    return this.#call({ op: 'list', groupId }, () =>
      (this.endpoints.get(groupId) ?? []).map((e) => ({ ...e })),
    );
  }

  async createEndpoint(groupId: string, body: CreateEndpointBody): Promise<AtlasEndpoint> {
    return this.#call({ op: 'create', groupId }, () => this.seed(groupId, { ...body, status: 'INITIATING' }));
  }

  async getEndpoint(
    groupId: string,
    _cloudProvider: CloudProvider,
    endpointId: string,
  ): Promise<AtlasEndpoint> {
    return this.#call({ op: 'get', groupId, endpointId }, () => {
      const found = (this.endpoints.get(groupId) ?? []).find((e) => e.id === endpointId);
      if (!found) throw new AtlasApiError({ status: 404, errorCode: 'RESOURCE_NOT_FOUND', operation: 'get' });
      return { ...found };
    });
  }

  async deleteEndpoint(groupId: string, _cloudProvider: CloudProvider, endpointId: string): Promise<void> {
    return this.#call({ op: 'delete', groupId, endpointId }, () => {
      const list = this.endpoints.get(groupId) ?? [];
      const found = list.find((e) => e.id === endpointId);
      if (!found)
        throw new AtlasApiError({ status: 404, errorCode: 'RESOURCE_NOT_FOUND', operation: 'delete' });
      found.status = 'DELETING';
    });
  }

  #nextId() {
    this.#ids += 1;
    return this.#ids.toString(16).padStart(24, 'e');
  }

  async #call<T>(call: { op: Op; groupId: string; endpointId?: string }, answer: () => T): Promise<T> {
    this.calls.push(call);
    this.#active += 1;
    this.maxActive = Math.max(this.maxActive, this.#active);
    try {
      if (this.latencyMs > 0) await new Promise((r) => setTimeout(r, this.latencyMs));
      const failure = this.#failures[call.op].shift();
      if (failure !== undefined) throw failure;
      return answer();
    } finally {
      this.#active -= 1;
    }
  }
}

export const sqs = mockClient(SQSClient);
export const eventBridge = mockClient(EventBridgeClient);

let ledger = new InMemoryLedger(() => NOW);

/** Resets the SDK fakes and the in-memory ledger (whose items, busy keys and writes tests read). */
export function resetAws(): InMemoryLedger {
  sqs.reset();
  eventBridge.reset();
  eventBridge.on(PutEventsCommand).resolves({ FailedEntryCount: 0, Entries: [{ EventId: 'e-1' }] });
  ledger = new InMemoryLedger(() => NOW);
  return ledger;
}

/** The messages the provisioner sent to one queue, oldest first. */
export function sentTo(queueUrl: string) {
  return sqs
    .commandCalls(SendMessageCommand)
    .map((c) => c.args[0].input)
    .filter((m) => m.QueueUrl === queueUrl);
}

/** What the provisioner sent back to itself (waits, follow-ups, hand-backs), oldest first. */
export const continuations = () => sentTo(QUEUES.continuationQueueUrl);

/** The continuations that are follow-ups: the key looked at again until its endpoint settles. */
export const followUps = () => continuations().filter((m) => m.MessageAttributes?.FollowUp !== undefined);

/** The requests parked in the default requester's DLQ, oldest first. */
export const dlq = () => sentTo(QUEUES.dlqUrl);

/** The ledger key of a request (or of a request's body as a test wrote it). */
export const keyOf = (request: object) => naturalKey(request as ProvisionRequest);

/**
 * Whether the record was deferred for lack of invocation time as a wait: sent again on the
 * continuation queue after DEADLINE_RETRY_SECONDS with its waits counted, its own delivery
 * acknowledged (no ChangeMessageVisibility: no attempt spent).
 */
export function deferredForTime(): boolean {
  const sent = sentTo(QUEUES.continuationQueueUrl);
  return (
    sent.length === 1 &&
    sent[0]?.DelaySeconds === 2 &&
    sent[0]?.MessageAttributes?.Waits?.StringValue !== undefined &&
    sqs.commandCalls(ChangeMessageVisibilityCommand).length === 0
  );
}

/** The status event details published so far, each checked against the published schema. */
export function publishedDetails(): StatusChangedDetail[] {
  return eventBridge
    .commandCalls(PutEventsCommand)
    .flatMap((call) => call.args[0].input.Entries ?? [])
    .map((entry) => StatusChangedDetailSchema.parse(JSON.parse(entry.Detail ?? '{}')));
}

/**
 * The world each test of the describe block that calls this starts from: before each test, fresh
 * SDK fakes and ledger (`table`), a fresh FakeAtlas, and a clock back at NOW. A test moves the
 * clock (`scene.clock += ms`) and hands a provisioner `{ now: scene.now }` to run on it.
 */
export function provisionerScene() {
  let atlas: FakeAtlas;
  let table: InMemoryLedger;
  let clock: number;

  beforeEach(() => {
    table = resetAws();
    atlas = new FakeAtlas();
    clock = NOW.getTime();
  });

  return {
    get atlas() {
      return atlas;
    },
    get table() {
      return table;
    },
    get clock() {
      return clock;
    },
    set clock(ms: number) {
      clock = ms;
    },
    now: () => new Date(clock),
    /** An endpoint Atlas lists for the request's key, in `status`. */
    endpoint: (request: { groupId: string }, status: string) =>
      atlas.seed(request.groupId, { cloudProvider: 'AWS', regionName: 'US_EAST_1', status }),
  };
}

export function silentLogger() {
  return new Logger({ serviceName: 'provisioner', logLevel: 'SILENT' });
}

export function buildProvisioner(atlas: FakeAtlas, overrides: Partial<ProvisionerOptions> = {}) {
  const metrics = { addMetric: vi.fn() };
  const provisioner = new Provisioner({
    ledger,
    atlas: { withClient: (_profile, fn) => fn(atlas) },
    queues: new Queues({ ...QUEUES, client: new SQSClient({ region: 'us-east-1' }) }),
    // The default requester is granted every profile the deployment allows, as the stack writes it.
    requesters: new Requesters([
      { ...DEFAULT_ENTRY, profiles: [...(overrides.allowedProfiles ?? ['default'])] },
    ]),
    continuationQueueArn: QUEUES.continuationQueueArn,
    continuationQueueUrl: QUEUES.continuationQueueUrl,
    events: new StatusEvents({
      busName: 'default',
      source: 'atlas.backup-private-endpoints',
      client: new EventBridgeClient({ region: 'us-east-1' }),
    }),
    logger: silentLogger(),
    metrics,
    allowedProfiles: ['default'],
    maxAttempts: 5,
    leaseSeconds: 120,
    recordConcurrency: 10,
    backoff: { baseSeconds: 2, capSeconds: 900 },
    createSettleSeconds: 30,
    maxEndpointFailures: 3,
    atlasTimeoutMs: 10_000,
    random: () => 0.5,
    now: () => NOW,
    ...overrides,
  });
  return { provisioner, metrics };
}

/** A record as SQS delivers a message the provisioner sent back, with the attributes it carried. */
export function carrying(record: SQSRecord, attributes: Record<string, string>): SQSRecord {
  record.eventSourceARN = QUEUES.continuationQueueArn;
  record.messageAttributes = Object.fromEntries(
    Object.entries({ Requester: 'default', ...attributes }).map(([name, stringValue]) => [
      name,
      { dataType: 'String', stringValue, stringListValues: [], binaryListValues: [] },
    ]),
  );
  return record;
}
