/**
 * A Provisioner wired to aws-sdk-client-mock fakes of DynamoDB, SQS and EventBridge (the real
 * Ledger, Queues and StatusEvents run on top of them) and to a scriptable fake Atlas client.
 */
import { Logger } from '@aws-lambda-powertools/logger';
import { ConditionalCheckFailedException, DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { EventBridgeClient, PutEventsCommand } from '@aws-sdk/client-eventbridge';
import { SQSClient } from '@aws-sdk/client-sqs';
import { DynamoDBDocumentClient, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { mockClient } from 'aws-sdk-client-mock';
import { vi } from 'vitest';
import type { AtlasEndpoint, CloudProvider, CreateEndpointBody } from '#atlas/types.ts';
import { StatusEvents } from '#lib/events.ts';
import { Ledger } from '#lib/ledger.ts';
import { type EndpointsApi, Provisioner, type ProvisionerOptions } from '#lib/provisioner.ts';
import { Queues } from '#lib/queues.ts';
import { type StatusChangedDetail, StatusChangedDetailSchema } from '#lib/status-event.ts';
import { claimedItem, settledItem } from '#test/support/ledger-writes.ts';

export const QUEUES = {
  requestQueueUrl: 'https://sqs.us-east-1.amazonaws.com/123456789012/requests',
  dlqUrl: 'https://sqs.us-east-1.amazonaws.com/123456789012/requests-dlq',
  rejectedQueueUrl: 'https://sqs.us-east-1.amazonaws.com/123456789012/requests-rejected',
};
export const NOW = new Date('2026-11-29T10:00:00.000Z');
export const FIRST_FAILURE = '2026-11-29T09:00:00.000Z';

type Op = 'list' | 'create' | 'delete';

/** Atlas as the provisioner sees it: endpoints per project, and failures queued per operation. */
export class FakeAtlas implements EndpointsApi {
  readonly endpoints = new Map<string, AtlasEndpoint[]>();
  readonly calls: Array<{ op: Op; groupId: string; endpointId?: string }> = [];
  readonly #failures: Record<Op, unknown[]> = { list: [], create: [], delete: [] };
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
    return this.#call({ op: 'list', groupId }, () => [...(this.endpoints.get(groupId) ?? [])]);
  }

  async createEndpoint(groupId: string, body: CreateEndpointBody): Promise<AtlasEndpoint> {
    return this.#call({ op: 'create', groupId }, () => this.seed(groupId, { ...body, status: 'INITIATING' }));
  }

  async deleteEndpoint(groupId: string, _cloudProvider: CloudProvider, endpointId: string): Promise<void> {
    return this.#call({ op: 'delete', groupId, endpointId }, () => {
      const list = this.endpoints.get(groupId) ?? [];
      const found = list.find((e) => e.id === endpointId);
      if (found) found.status = 'DELETING';
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

export const ddb = mockClient(DynamoDBDocumentClient);
export const sqs = mockClient(SQSClient);
export const eventBridge = mockClient(EventBridgeClient);

/**
 * Resets the SDK fakes and answers the Ledger's UpdateCommands as DynamoDB would for a table
 * holding the returned items (a claim on a key in `busy` fails its condition); enough for the
 * provisioner's paths, while the conditions themselves are proven against moto in
 * ledger.moto.test.ts.
 */
export function resetAws() {
  ddb.reset();
  sqs.reset();
  eventBridge.reset();
  eventBridge.on(PutEventsCommand).resolves({ FailedEntryCount: 0, Entries: [{ EventId: 'e-1' }] });
  const items = new Map<string, Record<string, unknown>>();
  const busy = new Set<string>();
  ddb.on(UpdateCommand).callsFake((input: UpdateCommand['input']) => {
    const key = String(input.Key?.key);
    const values = input.ExpressionAttributeValues ?? {};
    const stored = items.get(key);
    if (values[':rid']) {
      if (busy.has(key))
        throw new ConditionalCheckFailedException({
          message: 'The conditional request failed',
          $metadata: {},
        });
      const item = claimedItem(stored, key, values);
      items.set(key, item);
      return { Attributes: item };
    }
    if (values[':err']) {
      const { lease: _, ...rest } = stored ?? {};
      const item = { ...rest, lastError: values[':err'], firstFailureAt: FIRST_FAILURE };
      items.set(key, item);
      return { Attributes: item };
    }
    const item = settledItem(stored ?? {}, values);
    items.set(key, item);
    return { Attributes: item };
  });
  return { items, busy };
}

/** The status event details published so far, each checked against the published schema. */
export function publishedDetails(): StatusChangedDetail[] {
  return eventBridge
    .commandCalls(PutEventsCommand)
    .flatMap((call) => call.args[0].input.Entries ?? [])
    .map((entry) => StatusChangedDetailSchema.parse(JSON.parse(entry.Detail ?? '{}')));
}

export function silentLogger() {
  return new Logger({ serviceName: 'provisioner', logLevel: 'SILENT' });
}

export function buildProvisioner(atlas: FakeAtlas, overrides: Partial<ProvisionerOptions> = {}) {
  const metrics = { addMetric: vi.fn() };
  const provisioner = new Provisioner({
    ledger: new Ledger({
      tableName: 'ledger',
      client: DynamoDBDocumentClient.from(new DynamoDBClient({ region: 'us-east-1' })),
      now: () => NOW,
    }),
    atlas: { withClient: (_profile, fn) => fn(atlas) },
    queues: new Queues({ ...QUEUES, client: new SQSClient({ region: 'us-east-1' }) }),
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
    random: () => 0.5,
    now: () => NOW,
    ...overrides,
  });
  return { provisioner, metrics };
}
