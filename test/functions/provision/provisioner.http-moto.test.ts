/**
 * The real provisioning handler module, loaded with its deployment environment, over real HTTP
 * to the Atlas simulator and the real AWS SDK to moto (queues, secrets, ledger table, EventBridge),
 * both started here once. Records come from messages really sent to and received from the
 * request queue, so receipt handles, receive counts and visibility changes are the real thing;
 * like Lambda's event source, the test deletes the messages the handler did not report failed.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import {
  DeleteMessageBatchCommand,
  type Message,
  ReceiveMessageCommand,
  SendMessageCommand,
} from '@aws-sdk/client-sqs';
import type { SQSBatchResponse, SQSEvent, SQSRecord } from 'aws-lambda';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { type StatusChangedDetail, StatusChangedDetailSchema } from '#events/schema.ts';
import type { LedgerItem } from '#ledger/ledger.ts';
import { Ledger } from '#ledger/ledger.ts';
import { naturalKey, type ProvisionRequest, type ProvisionRequestInput } from '#messages/request.ts';
import { type CapturedOutput, captureProcessOutput } from '#test/local/capture.ts';
import { type Moto, startMoto } from '#test/local/emulators.ts';
import { createLocalEnvironment, type LocalEnvironment, localSettings } from '#test/local/environment.ts';
import { PROVISION_HANDLER } from '#test/local/flow.ts';
import { loadHandler } from '#test/local/in-process-invoker.ts';
import type { LambdaHandler } from '#test/local/invocation.ts';
import { startAtlasSimulator } from '#test/simulator/index.ts';
import type { AtlasSimulator, RecordedRequest } from '#test/simulator/types.ts';
import {
  createRequest,
  lambdaContext,
  loadEvent,
  recordFromMessage,
  sqsEvent,
} from '#test/support/sqs-events.ts';

const account = {
  clientId: 'mdb_sa_id_default',
  clientSecret: `mdb_sa_sk_${randomBytes(24).toString('base64url')}`,
};
const rotating = {
  clientId: 'mdb_sa_id_rotating',
  clientSecret: `mdb_sa_sk_${randomBytes(24).toString('base64url')}`,
};
const rotated = {
  clientId: 'mdb_sa_id_rotated',
  clientSecret: `mdb_sa_sk_${randomBytes(24).toString('base64url')}`,
};
const tokens = {
  clientId: 'mdb_sa_id_tokens',
  clientSecret: `mdb_sa_sk_${randomBytes(24).toString('base64url')}`,
};
const apiKey = { publicKey: randomBytes(4).toString('hex'), privateKey: randomUUID() };
const MAX_ATTEMPTS = 3;

let sim: AtlasSimulator;
let moto: Moto;
let env: LocalEnvironment;
let handler: LambdaHandler<SQSEvent, SQSBatchResponse>;
let ledger: Ledger;
let capture: CapturedOutput;
const output: string[] = [];
/** Access tokens the simulator issued, read off the wire so the log scan can look for them. */
const issuedTokens = new Set<string>();
const realFetch = globalThis.fetch;
const realConsole = { ...console };

beforeAll(async () => {
  capture = captureProcessOutput((text) => output.push(text));
  for (const level of ['log', 'info', 'warn', 'error', 'debug'] as const) {
    console[level] = (...args: unknown[]) => output.push(args.map(String).join(' '));
  }
  globalThis.fetch = async (input, init) => {
    const response = await realFetch(input, init);
    if (String(input instanceof Request ? input.url : input).endsWith('/api/oauth/token') && response.ok) {
      const body = (await response.clone().json()) as { access_token?: string };
      if (body.access_token) issuedTokens.add(body.access_token);
    }
    return response;
  };

  [sim, moto] = await Promise.all([
    startAtlasSimulator({
      serviceAccounts: [account, rotating, tokens],
      apiKeys: [apiKey],
      rateLimit: false,
      activationDelayMs: 600_000,
      deletionDelayMs: 600_000,
    }),
    startMoto(),
  ]);
  const settings = localSettings({
    atlasBaseUrl: sim.url,
    allowedProfiles: ['default', 'digest', 'rotating', 'tokens', 'missing'],
    maxAttempts: MAX_ATTEMPTS,
    backoffBaseSeconds: 1,
    backoffCapSeconds: 1,
    // A 5xx or a lost answer on create leaves it in doubt this long: the tests receive it back then.
    createSettleSeconds: 3,
    // The tests share the request queue and receive what comes back to it: follow-ups (proven in
    // test/functions/provision/follow-up.test.ts and test/e2e/follow-up.e2e.test.ts) stay out of sight.
    followUpFirstSeconds: 900,
    followUpMaxSeconds: 900,
  });
  env = await createLocalEnvironment({
    settings,
    sqsEndpoint: moto.endpoint,
    awsEndpoint: moto.endpoint,
    visibilityTimeoutSeconds: 30,
    name: 'provision-it',
    secrets: {
      default: { ClientId: account.clientId, ClientSecret: account.clientSecret },
      rotating: { clientid: rotating.clientId, clientsecret: rotating.clientSecret },
      tokens: { ClientId: tokens.clientId, ClientSecret: tokens.clientSecret },
      digest: { PublicKey: apiKey.publicKey, PrivateKey: apiKey.privateKey },
    },
  });
  ledger = new Ledger({ tableName: env.tableName, client: env.clients.dynamo });
  handler = await loadHandler<SQSEvent, SQSBatchResponse>(PROVISION_HANDLER, env.provisionEnvironment);
});

afterAll(async () => {
  capture?.restore();
  Object.assign(console, realConsole);
  globalThis.fetch = realFetch;
  env?.close();
  await Promise.all([sim?.close(), moto?.stop()]);
});

beforeEach(async () => {
  sim.clearFaults();
  // What an earlier failed test left behind (PurgeQueue is allowed once a minute).
  await Promise.all([env.requestQueue, env.dlq, env.rejectedQueue].map((q) => drain(q.url)));
  await drainStatusEvents();
});

// ---- the event source, as Lambda runs it ----

async function send(...bodies: Array<string | ProvisionRequestInput>): Promise<void> {
  for (const body of bodies) {
    await env.clients.sqs.send(
      new SendMessageCommand({
        QueueUrl: env.requestQueue.url,
        MessageBody: typeof body === 'string' ? body : JSON.stringify(body),
      }),
    );
  }
}

/** Receives `count` messages of a queue, waiting at most `waitSeconds` for them. */
async function receive(queueUrl: string, count: number, waitSeconds = 2): Promise<Message[]> {
  const messages: Message[] = [];
  const deadline = Date.now() + waitSeconds * 1000;
  while (messages.length < count) {
    const left = Math.ceil((deadline - Date.now()) / 1000);
    if (left <= 0) break;
    const { Messages = [] } = await env.clients.sqs.send(
      new ReceiveMessageCommand({
        QueueUrl: queueUrl,
        MaxNumberOfMessages: Math.min(10, count - messages.length),
        WaitTimeSeconds: Math.min(left, 20),
        MessageSystemAttributeNames: ['All'],
        MessageAttributeNames: ['All'],
      }),
    );
    messages.push(...Messages);
  }
  return messages;
}

/** Invokes the handler with the records, then deletes the messages it did not report failed. */
async function invoke(records: SQSRecord[]): Promise<Set<string>> {
  const response = await handler(sqsEvent(...records), lambdaContext());
  const failed = new Set(response.batchItemFailures.map((f) => f.itemIdentifier));
  const done = records.filter((r) => !failed.has(r.messageId));
  if (done.length > 0) {
    await env.clients.sqs.send(
      new DeleteMessageBatchCommand({
        QueueUrl: env.requestQueue.url,
        Entries: done.map((r, i) => ({ Id: String(i), ReceiptHandle: r.receiptHandle })),
      }),
    );
  }
  return failed;
}

/** Sends the bodies, receives them as one batch and invokes the handler; returns the failed messageIds. */
async function provision(...bodies: Array<string | ProvisionRequestInput>): Promise<Set<string>> {
  await send(...bodies);
  const messages = await receive(env.requestQueue.url, bodies.length);
  expect(messages).toHaveLength(bodies.length);
  return invoke(messages.map((m) => recordFromMessage(m, env.requestQueue.arn)));
}

// ---- what happened ----

async function drain(queueUrl: string): Promise<void> {
  for (;;) {
    const { Messages = [] } = await env.clients.sqs.send(
      new ReceiveMessageCommand({ QueueUrl: queueUrl, MaxNumberOfMessages: 10 }),
    );
    if (Messages.length === 0) return;
    await env.clients.sqs.send(
      new DeleteMessageBatchCommand({
        QueueUrl: queueUrl,
        Entries: Messages.map((m, i) => ({ Id: String(i), ReceiptHandle: m.ReceiptHandle })),
      }),
    );
  }
}

async function drainStatusEvents(): Promise<StatusChangedDetail[]> {
  const details: StatusChangedDetail[] = [];
  for (;;) {
    const { Messages = [] } = await env.clients.eventsSqs.send(
      new ReceiveMessageCommand({ QueueUrl: env.statusEventQueue.url, MaxNumberOfMessages: 10 }),
    );
    if (Messages.length === 0) return details;
    for (const m of Messages)
      details.push(StatusChangedDetailSchema.parse(JSON.parse(m.Body ?? '{}').detail));
    await env.clients.eventsSqs.send(
      new DeleteMessageBatchCommand({
        QueueUrl: env.statusEventQueue.url,
        Entries: Messages.map((m, i) => ({ Id: String(i), ReceiptHandle: m.ReceiptHandle })),
      }),
    );
  }
}

const outcomes = async () => (await drainStatusEvents()).map((d) => [d.outcome, d.requestIds[0]]);

const atlasRequests = (groupId: string): RecordedRequest[] =>
  sim.requests.filter((r) => r.groupId === groupId);
const operations = (groupId: string) =>
  atlasRequests(groupId)
    .filter((r) => r.auth !== 'challenge')
    .map((r) => `${r.operation} ${r.status}`);

const ledgerItem = (request: ProvisionRequestInput): Promise<LedgerItem | undefined> =>
  ledger.get(naturalKey(request as ProvisionRequest));

interface Parked {
  body: string;
  attributes: Record<string, string | undefined>;
}
async function parked(queueUrl: string, count = 1): Promise<Parked[]> {
  return (await receive(queueUrl, count)).map((m) => ({
    body: m.Body ?? '',
    attributes: Object.fromEntries(
      Object.entries(m.MessageAttributes ?? {}).map(([name, value]) => [name, value.StringValue]),
    ),
  }));
}

describe('provision handler over HTTP and moto', () => {
  describe('provisioned', () => {
    it('creates an endpoint with a service account: one list and one create over OAuth', async () => {
      // Prepare
      const request = createRequest({ vpcRegionName: 'EU_WEST_1' });

      // Act
      const failed = await provision(request);

      // Assess
      expect(failed.size).toBe(0);
      const [endpoint, ...others] = sim.endpoints(request.groupId);
      expect(others).toEqual([]);
      expect(endpoint).toMatchObject({
        regionName: 'US_EAST_1',
        vpcRegionName: 'EU_WEST_1',
        status: 'INITIATING',
      });
      expect(operations(request.groupId)).toEqual(['list 200', 'create 201']);
      expect(
        atlasRequests(request.groupId).every((r) => r.auth === 'bearer' && r.specViolations.length === 0),
      ).toBe(true);
      expect(await ledgerItem(request)).toMatchObject({
        status: 'INITIATING',
        endpointId: endpoint?.id,
        tracked: 'OPEN',
        requesters: { default: [request.requestId] },
        holds: ['default'],
      });
      expect(await drainStatusEvents()).toEqual([
        expect.objectContaining({
          outcome: 'PROVISIONED',
          requestIds: [request.requestId],
          endpointId: endpoint?.id,
        }),
      ]);
    });

    it('creates an endpoint with an API key over HTTP Digest', async () => {
      const request = createRequest({ profile: 'digest' });

      const failed = await provision(request);

      expect(failed.size).toBe(0);
      expect(sim.endpoints(request.groupId)).toHaveLength(1);
      expect(operations(request.groupId)).toEqual(['list 200', 'create 201']);
      expect(
        atlasRequests(request.groupId)
          .filter((r) => r.status < 400)
          .map((r) => r.auth),
      ).toEqual(['digest', 'digest']);
      expect(await outcomes()).toEqual([['PROVISIONED', request.requestId]]);
    });

    it('adopts through the ledger a replayed request, without any Atlas request', async () => {
      const request = createRequest();
      await provision(request);
      const before = atlasRequests(request.groupId).length;
      await drainStatusEvents();

      const failed = await provision({ ...request, requestId: `${request.requestId}-replay` });

      expect(failed.size).toBe(0);
      expect(atlasRequests(request.groupId)).toHaveLength(before);
      expect(await outcomes()).toEqual([['ADOPTED', `${request.requestId}-replay`]]);
      expect((await ledgerItem(request))?.requesters.default).toEqual(
        [request.requestId, `${request.requestId}-replay`].sort(),
      );
    });

    it('adopts an endpoint listed before creating', async () => {
      const request = createRequest();
      const existing = sim.seedEndpoint(request.groupId, {
        cloudProvider: 'AWS',
        regionName: 'US_EAST_1',
        status: 'ACTIVE',
      });

      await provision(request);

      expect(operations(request.groupId)).toEqual(['list 200']);
      expect(await ledgerItem(request)).toMatchObject({ endpointId: existing.id, status: 'ACTIVE' });
      expect(await outcomes()).toEqual([['ADOPTED', request.requestId]]);
    });

    it('resolves a 409 on create by listing again and adopting the endpoint that appeared', async () => {
      // Prepare: the create waits in the simulator while another creator's endpoint appears.
      const request = createRequest();
      sim.injectFault({
        fault: { kind: 'delay', ms: 500 },
        operations: ['create'],
        groupId: request.groupId,
        times: 1,
      });

      // Act
      const running = provision(request);
      const deadline = Date.now() + 5_000;
      while (!atlasRequests(request.groupId).some((r) => r.operation === 'create') && Date.now() < deadline) {
        await new Promise((resolve) => setTimeout(resolve, 10));
      }
      const other = sim.seedEndpoint(request.groupId, {
        cloudProvider: 'AWS',
        regionName: 'US_EAST_1',
        status: 'ACTIVE',
      });
      const failed = await running;

      // Assess
      expect(failed.size).toBe(0);
      expect(operations(request.groupId)).toEqual(['list 200', 'create 409', 'list 200']);
      expect(sim.endpoints(request.groupId)).toEqual([expect.objectContaining({ id: other.id })]);
      expect(await ledgerItem(request)).toMatchObject({ endpointId: other.id, status: 'ACTIVE' });
      expect(await outcomes()).toEqual([['ADOPTED', request.requestId]]);
    });

    it('makes one endpoint of duplicate records in one batch', async () => {
      // Prepare
      const request = createRequest();
      const again = { ...request, requestId: `${request.requestId}-again` };

      // Act
      const failed = await provision(request, request, again);

      // Assess
      expect(failed.size).toBe(0);
      expect(sim.endpoints(request.groupId)).toHaveLength(1);
      expect(operations(request.groupId)).toEqual(['list 200', 'create 201']);
      expect((await outcomes()).map(([outcome]) => outcome).sort()).toEqual([
        'ADOPTED',
        'ADOPTED',
        'PROVISIONED',
      ]);
    });

    it('asks Atlas to delete the endpoint (204) and reports DELETE_REQUESTED', async () => {
      const request = createRequest();
      await provision(request);
      const [endpoint] = sim.endpoints(request.groupId);
      await drainStatusEvents();

      const failed = await provision({
        ...request,
        requestId: `${request.requestId}-delete`,
        action: 'delete',
      });

      expect(failed.size).toBe(0);
      expect(operations(request.groupId)).toEqual(['list 200', 'create 201', 'delete 204']);
      expect(sim.endpoints(request.groupId)).toEqual([
        expect.objectContaining({ id: endpoint?.id, status: 'DELETING' }),
      ]);
      expect(await ledgerItem(request)).toMatchObject({
        status: 'DELETING',
        action: 'delete',
        tracked: 'OPEN',
      });
      // The create, still INITIATING, is told its requester's delete took effect in its place.
      expect(await outcomes()).toEqual([
        ['DELETE_REQUESTED', `${request.requestId}-delete`],
        ['SUPERSEDED', request.requestId],
      ]);
    });

    it('counts a delete of an endpoint that is already gone as DELETED', async () => {
      const request = createRequest({ action: 'delete' });

      await provision(request);

      expect(operations(request.groupId)).toEqual(['list 200']);
      expect(await ledgerItem(request)).toMatchObject({ status: 'DELETED' });
      expect(await outcomes()).toEqual([['DELETED', request.requestId]]);
    });
  });

  describe('retried', () => {
    it('makes a record rate limited with Retry-After visible again after that many seconds', async () => {
      // Prepare
      const request = createRequest();
      sim.injectFault({
        fault: { kind: 'status', status: 429, errorCode: 'RATE_LIMITED', retryAfterSeconds: 1 },
        operations: ['list'],
        groupId: request.groupId,
        times: 1,
      });

      // Act
      const failed = await provision(request);
      // The queue's own visibility timeout is 30 s: within a wait of 10 s, only the change brings it back.
      const [back] = await receive(env.requestQueue.url, 1, 10);

      // Assess
      expect(failed.size).toBe(1);
      expect(back?.Attributes?.ApproximateReceiveCount).toBe('2');
      expect(await invoke([recordFromMessage(back as Message, env.requestQueue.arn)])).toEqual(new Set());
      expect(sim.endpoints(request.groupId)).toHaveLength(1);
    });

    it('waits out a create answered 5xx (it may have been done) and creates after the listing shows nothing', async () => {
      const request = createRequest();
      sim.injectFault({
        fault: { kind: 'status', status: 500, errorCode: 'UNEXPECTED_ERROR' },
        operations: ['create'],
        groupId: request.groupId,
        times: 1,
      });

      // Acknowledged: it waits on the continuation queue, spending no attempt.
      expect((await provision(request)).size).toBe(0);
      expect(await ledgerItem(request)).toHaveProperty('pendingCreate');
      const [back] = await receive(env.continuationQueue.url, 1, 6);
      await invoke([recordFromMessage(back as Message, env.continuationQueue.arn)]);

      expect(sim.endpoints(request.groupId)).toHaveLength(1);
      expect(await ledgerItem(request)).not.toHaveProperty('lastError');
      expect(await outcomes()).toEqual([['PROVISIONED', request.requestId]]);
    });

    it('adopts, after its wait, the endpoint Atlas created when the create response was lost', async () => {
      const request = createRequest();
      sim.injectFault({
        fault: { kind: 'lostResponse' },
        operations: ['create'],
        groupId: request.groupId,
        times: 1,
      });

      expect((await provision(request)).size).toBe(0);
      const [back] = await receive(env.continuationQueue.url, 1, 6);
      await invoke([recordFromMessage(back as Message, env.continuationQueue.arn)]);

      expect(sim.endpoints(request.groupId)).toHaveLength(1);
      expect(await outcomes()).toEqual([['ADOPTED', request.requestId]]);
    });
  });

  describe('dead-letter queue', () => {
    it('parks the original body with its failure attributes after the last attempt', async () => {
      // Prepare
      const request = createRequest();
      const body = `${JSON.stringify(request)}\n`;
      sim.injectFault({
        fault: { kind: 'status', status: 503, errorCode: 'SERVICE_UNAVAILABLE' },
        groupId: request.groupId,
      });

      // Act
      await send(body);
      for (let attempt = 1; attempt <= MAX_ATTEMPTS; attempt++) {
        const [message] = await receive(env.requestQueue.url, 1, 4);
        expect(message?.Attributes?.ApproximateReceiveCount).toBe(String(attempt));
        await invoke([recordFromMessage(message as Message, env.requestQueue.arn)]);
      }

      // Assess
      const [dead] = await parked(env.dlq.url);
      expect(dead?.body).toBe(body);
      expect(dead?.attributes).toMatchObject({
        ErrorCode: 'SERVICE_UNAVAILABLE',
        HttpStatus: '503',
        Attempts: String(MAX_ATTEMPTS),
        RequestId: request.requestId,
      });
      expect(dead?.attributes.Detail).toBeTruthy();
      const item = await ledgerItem(request);
      expect(dead?.attributes.FirstFailureAt).toBe(item?.firstFailureAt);
      expect(Date.parse(dead?.attributes.LastFailureAt ?? '')).toBeGreaterThan(
        Date.parse(item?.firstFailureAt ?? ''),
      );
      expect(await receive(env.requestQueue.url, 1, 0)).toEqual([]);
      expect(await outcomes()).toEqual([['DEAD_LETTERED', request.requestId]]);
    });

    it('parks a request for a project Atlas does not know at once, with its 404 GROUP_NOT_FOUND and detail', async () => {
      const request = createRequest();
      sim.injectFault({
        fault: { kind: 'status', status: 404, errorCode: 'GROUP_NOT_FOUND' },
        operations: ['list'],
        groupId: request.groupId,
      });

      expect((await provision(request)).size).toBe(0);

      const [dead] = await parked(env.dlq.url);
      expect(dead?.attributes).toMatchObject({
        ErrorCode: 'GROUP_NOT_FOUND',
        HttpStatus: '404',
        Attempts: '1',
      });
      expect(dead?.attributes.Detail).toBeTruthy();
      expect(await outcomes()).toEqual([['DEAD_LETTERED', request.requestId]]);
    });

    it('parks a record at once on a 403', async () => {
      const request = createRequest();
      sim.injectFault({
        fault: { kind: 'status', status: 403, errorCode: 'USER_UNAUTHORIZED' },
        groupId: request.groupId,
      });

      expect((await provision(request)).size).toBe(0);

      const [dead] = await parked(env.dlq.url);
      expect(dead?.attributes).toMatchObject({
        ErrorCode: 'USER_UNAUTHORIZED',
        HttpStatus: '403',
        Attempts: '1',
      });
    });

    it('parks a record at once when its profile secret is missing, naming the secret', async () => {
      const request = createRequest({ profile: 'missing' });

      expect((await provision(request)).size).toBe(0);

      const [dead] = await parked(env.dlq.url);
      expect(dead?.attributes).toMatchObject({ ErrorCode: 'SECRET_NOT_FOUND', Attempts: '1' });
      expect(dead?.attributes.Detail).toContain('"cfn/atlas/profile/missing"');
      expect(dead?.attributes).not.toHaveProperty('HttpStatus');
    });
  });

  describe('rejected', () => {
    it('rejects the invalid records of a batch with reasons naming the field, and provisions the valid one', async () => {
      // Prepare
      const bodies = loadEvent('sqs-batch-invalid').Records.map((r) => r.body);

      // Act
      const failed = await provision(...bodies);

      // Assess
      expect(failed.size).toBe(0);
      const rejected = await parked(env.rejectedQueue.url, 3);
      expect(rejected.map((r) => r.body).sort()).toEqual(bodies.slice(1).sort());
      const details = rejected.map((r) => r.attributes.Detail).join('\n');
      expect(details).toContain('unknown field(s): regionname');
      expect(details).toContain('body is not valid JSON');
      expect(details).toMatch(/groupId: must be a 24-character lowercase hex Atlas project id/);
      expect(rejected.every((r) => r.attributes.ErrorCode === 'INVALID_REQUEST')).toBe(true);
      expect(sim.endpoints('6565b8f1c0e4a2b3d4e5f602')).toHaveLength(1);
    });

    it.each([[400, 'INVALID_ATTRIBUTE', 'create']] as const)(
      'rejects a request Atlas answers %i',
      async (status, errorCode, operation) => {
        const request = createRequest();
        sim.injectFault({
          fault: { kind: 'status', status, errorCode },
          operations: [operation],
          groupId: request.groupId,
        });

        expect((await provision(request)).size).toBe(0);

        const [rejected] = await parked(env.rejectedQueue.url);
        expect(rejected?.attributes).toMatchObject({ ErrorCode: errorCode, HttpStatus: String(status) });
        expect(await outcomes()).toEqual([['REJECTED', request.requestId]]);
      },
    );
  });

  describe('credentials', () => {
    it('reuses one OAuth token for every record and invocation of a profile', async () => {
      const tokenRequests = () => sim.requests.filter((r) => r.operation === 'token').length;
      const before = tokenRequests();

      await provision(createRequest({ profile: 'tokens' }), createRequest({ profile: 'tokens' }));
      await provision(createRequest({ profile: 'tokens' }));

      expect(tokenRequests() - before).toBe(1);
    });

    it('picks up a rotated secret at the first 401: re-reads it, gets a new token and retries once', async () => {
      // Prepare
      await provision(createRequest({ profile: 'rotating' }));
      sim.addServiceAccount(rotated.clientId, rotated.clientSecret);
      await env.putSecret('rotating', { ClientId: rotated.clientId, ClientSecret: rotated.clientSecret });
      sim.removeServiceAccount(rotating.clientId);
      sim.revokeAllTokens();
      const request = createRequest({ profile: 'rotating' });
      const from = sim.requests.length;

      // Act
      const failed = await provision(request);

      // Assess
      expect(failed.size).toBe(0);
      expect(sim.requests.slice(from).map((r) => `${r.operation} ${r.status}`)).toEqual([
        'list 401',
        'token 200',
        'list 200',
        'create 201',
      ]);
      expect(sim.endpoints(request.groupId)).toHaveLength(1);
    });
  });

  describe('logs', () => {
    it('carries the requestId on every log line and never a secret value', () => {
      const text = output.join('');
      const entries = text
        .split('\n')
        .filter((line) => line.startsWith('{'))
        .map((line) => JSON.parse(line) as Record<string, unknown>)
        .filter((entry) => 'level' in entry);

      expect(entries.length).toBeGreaterThan(20);
      expect(
        entries.filter((e) => typeof e.requestId !== 'string' && typeof e.messageId !== 'string'),
      ).toEqual([]);
      expect(issuedTokens.size).toBeGreaterThanOrEqual(3);
      for (const secret of [
        account.clientSecret,
        rotating.clientSecret,
        rotated.clientSecret,
        tokens.clientSecret,
        apiKey.privateKey,
        ...issuedTokens,
      ]) {
        expect(text).not.toContain(secret);
      }
    });
  });
});
