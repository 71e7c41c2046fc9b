/**
 * The provisioner against an Atlas that misbehaves the way a slow real server can: creates whose
 * outcome is unknown, two endpoints for one key, FAILED endpoints, and invocations running out.
 */
import { ChangeMessageVisibilityCommand, SendMessageCommand } from '@aws-sdk/client-sqs';
import { describe, expect, it } from 'vitest';
import { MAX_REQUEST_IDS } from '#ledger/ledger.ts';
import { AtlasApiError, AtlasNetworkError } from '#lib/errors.ts';
import type { ProvisionRequest } from '#messages/request.ts';
import { createRequest, sqsRecord } from '#test/support/sqs-events.ts';
import {
  buildProvisioner,
  carrying,
  continuations,
  deferredForTime,
  keyOf,
  NOW,
  provisionerScene,
  publishedDetails,
  QUEUES,
  sentTo,
  sqs,
} from './fixtures.ts';

const SETTLE = 30;

describe('Provisioner, never twice', () => {
  const scene = provisionerScene();

  describe('a create whose outcome is unknown', () => {
    it.each([
      { name: 'a timeout', error: new AtlasNetworkError('create', 'timeout') },
      { name: 'a reset connection', error: new AtlasNetworkError('create', 'network') },
      {
        name: 'a 503',
        error: new AtlasApiError({ status: 503, errorCode: 'SERVICE_UNAVAILABLE', operation: 'create' }),
      },
    ])('is written down before it is sent and keeps the key in doubt after $name', async ({ error }) => {
      const request = createRequest();
      scene.atlas.failNext('create', error);
      const { provisioner } = buildProvisioner(scene.atlas, { now: scene.now, createSettleSeconds: SETTLE });

      await expect(provisioner.handleRecord(sqsRecord(request))).resolves.toBe('WAITING');

      expect(scene.table.items.get(keyOf(request))).toMatchObject({
        pendingCreate: { sentAt: NOW.toISOString() },
      });
      // It waits (no attempt spent) no less than the settle period, whatever the backoff says.
      expect(sqs).not.toReceiveCommand(ChangeMessageVisibilityCommand);
      expect(continuations()).toEqual([expect.objectContaining({ DelaySeconds: SETTLE })]);
    });

    it('is never sent again within the settle period: a duplicate or replayed message waits, calling nothing', async () => {
      const request = createRequest();
      scene.atlas.failNext('create', new AtlasNetworkError('create', 'timeout'));
      const { provisioner } = buildProvisioner(scene.atlas, { now: scene.now, createSettleSeconds: SETTLE });
      await expect(provisioner.handleRecord(sqsRecord(request))).resolves.toBe('WAITING');
      scene.atlas.calls.length = 0;
      sqs.resetHistory();
      scene.clock += 10_000;

      const replay = sqsRecord({ ...request, requestId: 'replayed' }, { messageId: 'replayed-message' });
      const outcome = await provisioner.handleRecord(replay);

      expect(outcome).toBe('WAITING');
      expect(scene.atlas.calls).toEqual([]);
      expect(continuations()).toEqual([
        expect.objectContaining({
          MessageBody: replay.body,
          DelaySeconds: SETTLE - 10,
          MessageAttributes: expect.objectContaining({
            OriginalMessageId: { DataType: 'String', StringValue: 'replayed-message' },
            Waits: { DataType: 'Number', StringValue: '1' },
          }),
        }),
      ]);
      expect(scene.table.items.get(keyOf(request))).not.toHaveProperty('lease');
    });

    it('adopts what a listing after the settle period shows: the create was done, so none is sent again', async () => {
      const request = createRequest();
      scene.atlas.failNext('create', new AtlasNetworkError('create', 'timeout'));
      const { provisioner } = buildProvisioner(scene.atlas, { now: scene.now, createSettleSeconds: SETTLE });
      await expect(provisioner.handleRecord(sqsRecord(request))).resolves.toBe('WAITING');
      const landed = scene.atlas.seed(request.groupId, {
        cloudProvider: 'AWS',
        regionName: 'US_EAST_1',
        status: 'INITIATING',
      });
      scene.clock += SETTLE * 1000;
      scene.atlas.calls.length = 0;

      const outcome = await provisioner.handleRecord(sqsRecord(request, { receiveCount: 2 }));

      expect(outcome).toBe('ADOPTED');
      expect(scene.atlas.calls.map((c) => c.op)).toEqual(['list']);
      expect(scene.table.items.get(keyOf(request))).toMatchObject({ endpointId: landed.id });
      expect(scene.table.items.get(keyOf(request))).not.toHaveProperty('pendingCreate');
    });

    it('creates again only after a listing past the settle period shows nothing, remembering the first as unconfirmed', async () => {
      const request = createRequest();
      scene.atlas.failNext('create', new AtlasNetworkError('create', 'timeout'));
      const { provisioner } = buildProvisioner(scene.atlas, { now: scene.now, createSettleSeconds: SETTLE });
      await expect(provisioner.handleRecord(sqsRecord(request))).resolves.toBe('WAITING');
      scene.clock += SETTLE * 1000;
      scene.atlas.calls.length = 0;

      const outcome = await provisioner.handleRecord(sqsRecord(request, { receiveCount: 2 }));

      expect(outcome).toBe('PROVISIONED');
      expect(scene.atlas.calls.map((c) => c.op)).toEqual(['list', 'create']);
      expect(scene.table.items.get(keyOf(request))).toMatchObject({
        unconfirmedCreates: [NOW.toISOString()],
      });
    });

    it('treats a 429 or a 400 on create as an answer, not doubt', async () => {
      const request = createRequest();
      scene.atlas.failNext(
        'create',
        new AtlasApiError({ status: 429, errorCode: 'RATE_LIMITED', operation: 'create' }),
      );
      const { provisioner } = buildProvisioner(scene.atlas, { now: scene.now, createSettleSeconds: SETTLE });

      await expect(provisioner.handleRecord(sqsRecord(request))).rejects.toThrow();

      expect(scene.table.items.get(keyOf(request))).not.toHaveProperty('pendingCreate');
    });
  });

  describe('two endpoints for one key', () => {
    it('deletes the extra a create in doubt made and announces it, keeping the one the ledger holds', async () => {
      // Prepare: a create timed out, then nothing was listed and a second create succeeded
      const request = createRequest();
      scene.atlas.failNext('create', new AtlasNetworkError('create', 'timeout'));
      const { provisioner, metrics } = buildProvisioner(scene.atlas, {
        now: scene.now,
        createSettleSeconds: SETTLE,
      });
      await expect(provisioner.handleRecord(sqsRecord(request))).resolves.toBe('WAITING');
      scene.clock += SETTLE * 1000;
      await provisioner.handleRecord(sqsRecord(request, { receiveCount: 2 }));
      const kept = scene.table.items.get(keyOf(request))?.endpointId;
      // ...and then the first create landed late.
      const late = scene.atlas.seed(request.groupId, {
        cloudProvider: 'AWS',
        regionName: 'US_EAST_1',
        status: 'INITIATING',
      });
      const ledgerItem = scene.table.items.get(keyOf(request));
      if (ledgerItem) ledgerItem.status = 'MISSING';

      // Act: the key is asked for again and listed
      await provisioner.handleRecord(sqsRecord({ ...request, requestId: 'again' }));

      // Assess
      expect(scene.atlas.calls.filter((c) => c.op === 'delete')).toEqual([
        { op: 'delete', groupId: request.groupId, endpointId: late.id },
      ]);
      expect(scene.table.items.get(keyOf(request))).toMatchObject({ endpointId: kept });
      expect(scene.table.items.get(keyOf(request))).not.toHaveProperty('unconfirmedCreates');
      expect(publishedDetails().filter((d) => d.outcome === 'DUPLICATE_DELETED')).toEqual([
        expect.objectContaining({ endpointId: late.id, naturalKey: keyOf(request) }),
      ]);
      expect(metrics.addMetric).not.toHaveBeenCalledWith('DuplicateEndpoints', 'Count', expect.anything());
    });

    it('reports, counts and leaves an extra that no create in doubt accounts for', async () => {
      const request = createRequest();
      const a = scene.atlas.seed(request.groupId, {
        cloudProvider: 'AWS',
        regionName: 'US_EAST_1',
        status: 'ACTIVE',
      });
      const b = scene.atlas.seed(request.groupId, {
        cloudProvider: 'AWS',
        regionName: 'US_EAST_1',
        status: 'INITIATING',
      });
      const { provisioner, metrics } = buildProvisioner(scene.atlas, { now: scene.now });

      const outcome = await provisioner.handleRecord(sqsRecord(request));

      expect(outcome).toBe('ADOPTED');
      expect(scene.table.items.get(keyOf(request))).toMatchObject({ endpointId: a.id });
      expect(scene.atlas.calls.map((c) => c.op)).toEqual(['list']);
      expect(publishedDetails().filter((d) => d.outcome === 'DUPLICATE_FOUND')).toEqual([
        expect.objectContaining({ endpointId: b.id }),
      ]);
      expect(metrics.addMetric).toHaveBeenCalledWith('DuplicateEndpoints', 'Count', 1);
    });
  });

  describe('FAILED is never success', () => {
    it("deletes a FAILED endpoint, tells the requester with Atlas's message, waits for it to go, then creates anew", async () => {
      // Prepare
      const request = createRequest();
      const failed = scene.atlas.seed(request.groupId, {
        cloudProvider: 'AWS',
        regionName: 'US_EAST_1',
        status: 'FAILED',
        errorMessage: 'the interface endpoint could not be created',
      });
      const { provisioner } = buildProvisioner(scene.atlas, { now: scene.now, createSettleSeconds: SETTLE });

      // Act
      const first = await provisioner.handleRecord(sqsRecord(request));

      // Assess: deleted, announced, waiting
      expect(first).toBe('RECREATING');
      expect(scene.atlas.calls.map((c) => c.op)).toEqual(['list', 'delete']);
      expect(publishedDetails().at(-1)).toMatchObject({
        outcome: 'RECREATING',
        endpointId: failed.id,
        errorMessage: 'the interface endpoint could not be created',
      });
      expect(continuations()).toHaveLength(1);
      expect(scene.table.items.get(keyOf(request))).toMatchObject({ recreating: true, endpointFailures: 1 });

      // Act: still deleting, then gone
      const waited = await provisioner.handleRecord(sqsRecord(request));
      scene.atlas.endpoints.set(request.groupId, []);
      const created = await provisioner.handleRecord(sqsRecord(request));

      // Assess
      expect(waited).toBe('WAITING');
      expect(created).toBe('PROVISIONED');
      expect(scene.atlas.endpoints.get(request.groupId)).toEqual([
        expect.objectContaining({ status: 'INITIATING' }),
      ]);
      expect(scene.table.items.get(keyOf(request))).not.toHaveProperty('recreating');
    });

    it("sends the request to the DLQ with ENDPOINT_FAILED and Atlas's message once the bound is reached", async () => {
      const request = createRequest();
      scene.atlas.seed(request.groupId, {
        cloudProvider: 'AWS',
        regionName: 'US_EAST_1',
        status: 'FAILED',
        errorMessage: 'quota exceeded',
      });
      const { provisioner } = buildProvisioner(scene.atlas, { now: scene.now, maxEndpointFailures: 1 });

      const outcome = await provisioner.handleRecord(sqsRecord(request));

      expect(outcome).toBe('DEAD_LETTERED');
      expect(scene.atlas.calls.map((c) => c.op)).toEqual(['list']);
      expect(sqs).toReceiveCommandWith(SendMessageCommand, {
        QueueUrl: QUEUES.dlqUrl,
        MessageAttributes: expect.objectContaining({
          ErrorCode: { DataType: 'String', StringValue: 'ENDPOINT_FAILED' },
          Detail: expect.objectContaining({ StringValue: expect.stringContaining('quota exceeded') }),
        }),
      });
      expect(publishedDetails().at(-1)).toMatchObject({
        outcome: 'DEAD_LETTERED',
        errorMessage: 'quota exceeded',
      });
    });
  });

  describe('the invocation deadline', () => {
    it('starts no record without time for its Atlas calls: returned with a short delay, nothing claimed', async () => {
      const { provisioner } = buildProvisioner(scene.atlas, { atlasTimeoutMs: 10_000 });

      await expect(
        provisioner.handleRecord(sqsRecord(createRequest()), { getRemainingTimeInMillis: () => 20_000 }),
      ).resolves.toBe('WAITING');
      expect(deferredForTime()).toBe(true);

      expect(scene.table.writes).toEqual([]);
      expect(scene.atlas.calls).toEqual([]);
    });

    it('sends no create that could outlive the invocation, and leaves no create in doubt for it', async () => {
      const request = createRequest();
      // Time to start (two calls of 100 ms and the margin), but the slow listing eats what the create needed.
      scene.atlas.latencyMs = 150;
      const { provisioner } = buildProvisioner(scene.atlas, { atlasTimeoutMs: 100 });

      await expect(
        provisioner.handleRecord(sqsRecord(request), { getRemainingTimeInMillis: () => 3_210 }),
      ).resolves.toBe('WAITING');
      expect(deferredForTime()).toBe(true);

      expect(scene.atlas.calls.map((c) => c.op)).toEqual(['list']);
      expect(scene.table.items.get(keyOf(request))).not.toHaveProperty('pendingCreate');
      expect(scene.table.items.get(keyOf(request))).not.toHaveProperty('lease');
    });

    it('defers a record short of time or meeting a busy key as waits, never attempts: five deferrals on its last delivery never park it', async () => {
      const request = createRequest();
      const short = { getRemainingTimeInMillis: () => 20_000 };
      const { provisioner } = buildProvisioner(scene.atlas, { atlasTimeoutMs: 10_000, maxAttempts: 5 });
      // The request's own last delivery, then each wait it is sent again as.
      let record = sqsRecord(request, { receiveCount: 5 });
      for (const [i, deferral] of ['time', 'busy', 'time', 'busy', 'time'].entries()) {
        sqs.resetHistory();
        if (deferral === 'busy') scene.table.busy.add(keyOf(request));
        await expect(provisioner.handleRecord(record, deferral === 'time' ? short : undefined)).resolves.toBe(
          'WAITING',
        );
        scene.table.busy.delete(keyOf(request));
        expect(sqs).not.toReceiveCommand(ChangeMessageVisibilityCommand);
        const [sent] = sentTo(QUEUES.continuationQueueUrl);
        expect(sent?.MessageAttributes?.Waits?.StringValue).toBe(String(i + 1));
        record = carrying(sqsRecord(request, { receiveCount: 1 }), {
          OriginalMessageId: record.messageAttributes?.OriginalMessageId?.stringValue ?? record.messageId,
          Waits: String(i + 1),
        });
      }
      expect(sentTo(QUEUES.dlqUrl)).toEqual([]);
      expect(scene.atlas.calls).toEqual([]);

      await expect(provisioner.handleRecord(record)).resolves.toBe('PROVISIONED');
      expect(scene.atlas.calls.map((c) => c.op)).toEqual(['list', 'create']);
    });

    it('bounds deferrals as the other waits: one past maxWaits parks the request with DEADLINE, Atlas never called', async () => {
      const request = createRequest();
      const { provisioner } = buildProvisioner(scene.atlas, { atlasTimeoutMs: 10_000, maxWaits: 3 });
      const record = carrying(sqsRecord(request), { OriginalMessageId: 'sender-1', Waits: '3' });

      await expect(
        provisioner.handleRecord(record, { getRemainingTimeInMillis: () => 20_000 }),
      ).resolves.toBe('DEAD_LETTERED');

      expect(sentTo(QUEUES.continuationQueueUrl)).toEqual([]);
      expect(sentTo(QUEUES.dlqUrl)[0]?.MessageAttributes?.ErrorCode?.StringValue).toBe('DEADLINE');
      expect(scene.atlas.calls).toEqual([]);
    });
  });

  it('answers a key that served 10,000 requests like a new one: its requestIds and events stay bounded', async () => {
    const request = createRequest();
    const key = keyOf(request);
    for (let i = 0; i < 10_000; i++) {
      const ask = {
        ...request,
        requestId: `r-${i}`,
        action: 'create' as const,
        profile: 'default',
      } as ProvisionRequest;
      const claimed = await scene.table.claim(ask, `o-${i}`, 60);
      await scene.table.settle(claimed, `o-${i}`, {
        status: 'ACTIVE',
        endpointId: 'e'.repeat(24),
        request: ask,
        statusSince: NOW.toISOString(),
      });
    }
    const { provisioner } = buildProvisioner(scene.atlas, { now: scene.now });

    await expect(provisioner.handleRecord(sqsRecord({ ...request, requestId: 'r-last' }))).resolves.toBe(
      'ADOPTED',
    );

    const item = scene.table.items.get(key);
    expect(item?.requesters.default).toHaveLength(MAX_REQUEST_IDS);
    expect(item?.requesters.default?.at(-1)).toBe('r-last');
    expect(JSON.stringify(item).length).toBeLessThan(8_000);
    expect(publishedDetails().at(-1)?.requestIds).toEqual(['r-last']);
  });
});

describe('Provisioner, waiting for Atlas', () => {
  const scene = provisionerScene();

  /** A key whose create timed out at NOW: in doubt for SETTLE seconds. */
  async function createInDoubt(options: Parameters<typeof buildProvisioner>[1] = {}) {
    const request = createRequest();
    scene.atlas.failNext('create', new AtlasNetworkError('create', 'timeout'));
    const built = buildProvisioner(scene.atlas, { now: scene.now, createSettleSeconds: SETTLE, ...options });
    await expect(built.provisioner.handleRecord(sqsRecord(request))).resolves.toBe('WAITING');
    sqs.resetHistory();
    return { request, ...built };
  }

  it("waits no less than the settle period after a create in doubt, or Atlas's Retry-After when longer", async () => {
    const request = createRequest();
    scene.atlas.failNext(
      'create',
      new AtlasApiError({
        status: 503,
        errorCode: 'SERVICE_UNAVAILABLE',
        retryAfterSeconds: 45,
        operation: 'create',
      }),
    );
    const { provisioner } = buildProvisioner(scene.atlas, { now: scene.now, createSettleSeconds: SETTLE });

    await expect(provisioner.handleRecord(sqsRecord(request))).resolves.toBe('WAITING');

    expect(sentTo(QUEUES.continuationQueueUrl)).toEqual([expect.objectContaining({ DelaySeconds: 45 })]);
    expect(scene.table.items.get(keyOf(request))).toMatchObject({
      pendingCreate: { sentAt: NOW.toISOString() },
    });
  });

  it("waits out a create answered 5xx on the request's last attempt, and adopts what a listing after the settle period shows", async () => {
    const request = createRequest();
    // Atlas did the create but answered 503.
    scene.atlas.failNext(
      'create',
      new AtlasApiError({ status: 503, errorCode: 'SERVICE_UNAVAILABLE', operation: 'create' }),
    );
    const { provisioner } = buildProvisioner(scene.atlas, {
      now: scene.now,
      createSettleSeconds: SETTLE,
      maxAttempts: 5,
    });

    const last = sqsRecord(request, { receiveCount: 5 });
    await expect(provisioner.handleRecord(last)).resolves.toBe('WAITING');

    expect(sentTo(QUEUES.dlqUrl)).toEqual([]);
    const [wait] = sentTo(QUEUES.continuationQueueUrl);
    expect(wait).toMatchObject({ DelaySeconds: SETTLE, MessageBody: last.body });
    const made = scene.atlas.seed(request.groupId, {
      cloudProvider: 'AWS',
      regionName: 'US_EAST_1',
      status: 'ACTIVE',
    });
    scene.clock += SETTLE * 1000;
    scene.atlas.calls.length = 0;

    const waited = carrying(sqsRecord(request), { OriginalMessageId: last.messageId, Waits: '1' });
    await expect(provisioner.handleRecord(waited)).resolves.toBe('ADOPTED');
    expect(scene.atlas.calls.map((c) => c.op)).toEqual(['list']);
    expect(scene.table.items.get(keyOf(request))).toMatchObject({ endpointId: made.id, status: 'ACTIVE' });
    expect(scene.table.items.get(keyOf(request))).not.toHaveProperty('pendingCreate');
  });

  it('sends no create it could not wait for: with no wait left, a listing after the settle period showing nothing parks the request, saying so', async () => {
    const { request, provisioner } = await createInDoubt({ maxWaits: 3 });
    scene.clock += SETTLE * 1000;
    const record = carrying(sqsRecord(request), { OriginalMessageId: 'sender-1', Waits: '3' });

    await expect(provisioner.handleRecord(record)).resolves.toBe('DEAD_LETTERED');

    expect(scene.atlas.calls.map((c) => c.op)).toEqual(['list', 'create', 'list']);
    const parked = sentTo(QUEUES.dlqUrl)[0]?.MessageAttributes;
    expect(parked?.ErrorCode?.StringValue).toBe('WAITS_EXHAUSTED');
    expect(parked?.Detail?.StringValue).toContain(
      'a listing after the settle period shows no endpoint for the key',
    );
  });

  it('says in the reason of a request parked after the settle period which endpoint the listing showed', async () => {
    const { request, provisioner } = await createInDoubt({ maxEndpointFailures: 1 });
    const made = scene.atlas.seed(request.groupId, {
      cloudProvider: 'AWS',
      regionName: 'US_EAST_1',
      status: 'FAILED',
      errorMessage: 'quota exceeded',
    });
    scene.clock += SETTLE * 1000;

    await expect(provisioner.handleRecord(sqsRecord(request))).resolves.toBe('DEAD_LETTERED');

    const parked = sentTo(QUEUES.dlqUrl)[0]?.MessageAttributes;
    expect(parked?.ErrorCode?.StringValue).toBe('ENDPOINT_FAILED');
    expect(parked?.Detail?.StringValue).toContain(
      `a listing after the settle period shows endpoint ${made.id} (FAILED) for the key`,
    );
  });

  it('says in the reason of a request parked while its create is still in doubt that whether an endpoint exists is not known', async () => {
    const { request, provisioner } = await createInDoubt({ maxAttempts: 1 });
    scene.clock += SETTLE * 1000;
    scene.atlas.failNext(
      'list',
      new AtlasApiError({ status: 500, errorCode: 'UNEXPECTED_ERROR', operation: 'list' }),
    );

    await expect(provisioner.handleRecord(sqsRecord(request))).resolves.toBe('DEAD_LETTERED');

    expect(sentTo(QUEUES.dlqUrl)[0]?.MessageAttributes?.Detail?.StringValue).toContain(
      `the create sent at ${NOW.toISOString()} is still in doubt: no listing after its settle period succeeded, so whether an endpoint exists is not known`,
    );
  });

  it("carries the sender's messageId and counts the waits from one wait to the next, recording no failure", async () => {
    const { request, provisioner, metrics } = await createInDoubt();
    scene.clock += 10_000;
    const record = carrying(sqsRecord(request), { OriginalMessageId: 'sender-1', Waits: '2' });

    await expect(provisioner.handleRecord(record)).resolves.toBe('WAITING');

    expect(sentTo(QUEUES.continuationQueueUrl)).toEqual([
      expect.objectContaining({
        MessageBody: record.body,
        DelaySeconds: SETTLE - 10,
        MessageAttributes: {
          Requester: { DataType: 'String', StringValue: 'default' },
          OriginalMessageId: { DataType: 'String', StringValue: 'sender-1' },
          Waits: { DataType: 'Number', StringValue: '3' },
        },
      }),
    ]);
    expect(sqs).not.toReceiveCommand(ChangeMessageVisibilityCommand);
    expect(scene.table.items.get(keyOf(request))).not.toHaveProperty('lease');
    expect(scene.table.items.get(keyOf(request))?.lastError?.code).not.toBe('CREATE_IN_DOUBT');
    expect(metrics.addMetric).toHaveBeenCalledWith('Waiting', 'Count', 1);
  });

  it('parks the request in the DLQ with CREATE_IN_DOUBT once it has waited maxWaits times', async () => {
    const { request, provisioner, metrics } = await createInDoubt({ maxWaits: 3 });
    scene.clock += 10_000;
    const record = carrying(sqsRecord(request), { OriginalMessageId: 'sender-1', Waits: '3' });

    await expect(provisioner.handleRecord(record)).resolves.toBe('DEAD_LETTERED');

    expect(sentTo(QUEUES.continuationQueueUrl)).toEqual([]);
    expect(sentTo(QUEUES.dlqUrl)).toEqual([
      expect.objectContaining({
        MessageBody: record.body,
        MessageAttributes: expect.objectContaining({
          ErrorCode: { DataType: 'String', StringValue: 'CREATE_IN_DOUBT' },
          OriginalMessageId: { DataType: 'String', StringValue: 'sender-1' },
        }),
      }),
    ]);
    expect(publishedDetails().at(-1)).toMatchObject({
      outcome: 'DEAD_LETTERED',
      messageId: 'sender-1',
      error: { code: 'CREATE_IN_DOUBT' },
    });
    expect(scene.table.items.get(keyOf(request))).toMatchObject({
      lastError: { code: 'CREATE_IN_DOUBT' },
      pendingCreate: { sentAt: NOW.toISOString() },
    });
    expect(metrics.addMetric).toHaveBeenCalledWith('DeadLettered', 'Count', 1);
  });

  it.each([
    { waits: '59', outcome: 'WAITING' },
    { waits: '60', outcome: 'DEAD_LETTERED' },
  ])(
    'waits at most 60 times by default: after $waits waits the request is $outcome',
    async ({ waits, outcome }) => {
      const { request, provisioner } = await createInDoubt();
      scene.clock += 10_000;

      await expect(provisioner.handleRecord(carrying(sqsRecord(request), { Waits: waits }))).resolves.toBe(
        outcome,
      );
    },
  );

  it('waits longer each time the FAILED endpoint is still being deleted: the settle period doubled per wait, at most 15 minutes', async () => {
    const request = createRequest();
    scene.atlas.seed(request.groupId, { cloudProvider: 'AWS', regionName: 'US_EAST_1', status: 'FAILED' });
    const { provisioner } = buildProvisioner(scene.atlas, { now: scene.now, createSettleSeconds: SETTLE });
    await expect(provisioner.handleRecord(sqsRecord(request))).resolves.toBe('RECREATING');

    const delays = [];
    for (const waits of ['1', '2', '5']) {
      sqs.resetHistory();
      await expect(provisioner.handleRecord(carrying(sqsRecord(request), { Waits: waits }))).resolves.toBe(
        'WAITING',
      );
      delays.push(sentTo(QUEUES.continuationQueueUrl)[0]?.DelaySeconds);
    }

    expect(delays).toEqual([60, 120, 900]);
    expect(scene.table.items.get(keyOf(request))).toMatchObject({ status: 'DELETING', recreating: true });
  });
});

describe('Provisioner, FAILED endpoints', () => {
  const scene = provisionerScene();

  /** Atlas reports the key's endpoint FAILED, and the status checker recorded it. */
  const fails = (request: ProvisionRequest | ReturnType<typeof createRequest>, errorMessage: string) => {
    const [endpoint] = (scene.atlas.endpoints.get(request.groupId) ?? []).filter(
      (e) => e.status !== 'DELETING',
    );
    if (!endpoint) throw new Error('no endpoint');
    endpoint.status = 'FAILED';
    endpoint.errorMessage = errorMessage;
    const item = scene.table.items.get(keyOf(request));
    if (item) item.status = 'FAILED';
  };

  it('parks the request in the DLQ with ENDPOINT_FAILED after the third FAILED endpoint, leaving it for an operator', async () => {
    // Prepare
    const request = createRequest();
    const { provisioner, metrics } = buildProvisioner(scene.atlas, { maxEndpointFailures: 3 });
    const outcomes: string[] = [];
    for (const message of ['first', 'second']) {
      outcomes.push(await provisioner.handleRecord(sqsRecord(request)));
      fails(request, message);
      outcomes.push(await provisioner.handleRecord(sqsRecord(request)));
      scene.atlas.endpoints.set(request.groupId, []);
    }
    outcomes.push(await provisioner.handleRecord(sqsRecord(request)));
    const third = scene.atlas.endpoints.get(request.groupId)?.[0];
    fails(request, 'third');
    sqs.resetHistory();

    // Act
    const outcome = await provisioner.handleRecord(sqsRecord(request));

    // Assess
    expect(outcomes).toEqual(['PROVISIONED', 'RECREATING', 'PROVISIONED', 'RECREATING', 'PROVISIONED']);
    expect(outcome).toBe('DEAD_LETTERED');
    expect(scene.atlas.calls.filter((c) => c.op === 'delete')).toHaveLength(2);
    expect(sentTo(QUEUES.dlqUrl)).toEqual([
      expect.objectContaining({
        MessageAttributes: expect.objectContaining({
          ErrorCode: { DataType: 'String', StringValue: 'ENDPOINT_FAILED' },
          Detail: {
            DataType: 'String',
            StringValue: `the endpoint of ${keyOf(request)} FAILED 3 time(s), the most this deployment recreates: third`,
          },
        }),
      }),
    ]);
    const item = scene.table.items.get(keyOf(request));
    expect(item).toMatchObject({
      status: 'FAILED',
      endpointId: third?.id,
      atlasErrorMessage: 'third',
      lastError: { code: 'ENDPOINT_FAILED' },
    });
    expect(item).not.toHaveProperty('endpointFailures');
    expect(item).not.toHaveProperty('recreating');
    expect(publishedDetails().at(-1)).toMatchObject({
      outcome: 'DEAD_LETTERED',
      errorMessage: 'third',
      error: { code: 'ENDPOINT_FAILED' },
    });
    expect(metrics.addMetric).toHaveBeenCalledWith('Recreating', 'Count', 1);
  });

  it('keeps counting FAILED endpoints through a brief ACTIVE: the checker seeing ACTIVE resets nothing', async () => {
    const request = createRequest();
    const { provisioner } = buildProvisioner(scene.atlas, { maxEndpointFailures: 2 });
    await expect(provisioner.handleRecord(sqsRecord(request))).resolves.toBe('PROVISIONED');
    fails(request, 'first');
    await expect(provisioner.handleRecord(sqsRecord(request))).resolves.toBe('RECREATING');
    scene.atlas.endpoints.set(request.groupId, []);
    await expect(provisioner.handleRecord(sqsRecord(request))).resolves.toBe('PROVISIONED');
    // ACTIVE for a moment, as the sweep (or a follow-up) records it, then FAILED again.
    await scene.table.recordCheck(keyOf(request), 'INITIATING', { status: 'ACTIVE' }, undefined);
    fails(request, 'second');

    await expect(provisioner.handleRecord(sqsRecord(request))).resolves.toBe('DEAD_LETTERED');

    expect(sentTo(QUEUES.dlqUrl)[0]?.MessageAttributes?.Detail?.StringValue).toBe(
      `the endpoint of ${keyOf(request)} FAILED 2 time(s), the most this deployment recreates: second`,
    );
  });

  it.each([
    { hoursAgo: 1, outcome: 'DEAD_LETTERED' },
    { hoursAgo: 25, outcome: 'RECREATING' },
  ])(
    'bounds FAILED endpoints per day across lifecycles and replays: nine more $hoursAgo h ago make the next one $outcome',
    async ({ hoursAgo, outcome }) => {
      const request = createRequest();
      const { provisioner } = buildProvisioner(scene.atlas, { maxEndpointFailures: 3 });
      await expect(provisioner.handleRecord(sqsRecord(request))).resolves.toBe('PROVISIONED');
      const item = scene.table.items.get(keyOf(request));
      if (item)
        item.endpointFailedAt = Array.from({ length: 9 }, (_, i) =>
          new Date(NOW.getTime() - hoursAgo * 3_600_000 + i).toISOString(),
        );
      fails(request, 'again');

      await expect(provisioner.handleRecord(sqsRecord(request))).resolves.toBe(outcome);

      if (outcome === 'DEAD_LETTERED') {
        expect(sentTo(QUEUES.dlqUrl)[0]?.MessageAttributes?.Detail?.StringValue).toBe(
          `the endpoint of ${keyOf(request)} FAILED 10 time(s) in the last 24 hours, the most this deployment recreates: again`,
        );
        expect(scene.table.items.get(keyOf(request))?.endpointFailedAt).toHaveLength(10);
      } else {
        expect(scene.table.items.get(keyOf(request))?.endpointFailedAt).toEqual([NOW.toISOString()]);
      }
    },
  );

  it('counts each FAILED endpoint of the key and announces the recreation with the endpoint and its message', async () => {
    const request = createRequest();
    const { provisioner } = buildProvisioner(scene.atlas, { maxEndpointFailures: 3 });
    await provisioner.handleRecord(sqsRecord(request));
    const failed = scene.atlas.endpoints.get(request.groupId)?.[0];
    fails(request, 'no subnet');

    await expect(provisioner.handleRecord(sqsRecord(request))).resolves.toBe('RECREATING');

    expect(scene.atlas.calls.at(-1)).toEqual({
      op: 'delete',
      groupId: request.groupId,
      endpointId: failed?.id,
    });
    expect(scene.table.items.get(keyOf(request))).toMatchObject({
      status: 'DELETING',
      endpointId: failed?.id,
      endpointFailures: 1,
      recreating: true,
      atlasErrorMessage: 'no subnet',
    });
    expect(publishedDetails().at(-1)).toMatchObject({
      outcome: 'RECREATING',
      endpointId: failed?.id,
      status: 'DELETING',
      previousStatus: 'FAILED',
      errorMessage: 'no subnet',
    });
  });

  it('dates the FAILED status it records from when it saw it, unless the ledger had it FAILED already', async () => {
    const { provisioner } = buildProvisioner(scene.atlas, { maxEndpointFailures: 1, now: scene.now });
    const drifted = createRequest();
    const known = createRequest();
    for (const request of [drifted, known]) await provisioner.handleRecord(sqsRecord(request));
    fails(drifted, 'no subnet');
    fails(known, 'no subnet');
    const item = scene.table.items.get(keyOf(drifted));
    if (item) item.status = 'MISSING';
    scene.clock += 3_600_000;

    for (const request of [drifted, known])
      await expect(provisioner.handleRecord(sqsRecord(request))).resolves.toBe('DEAD_LETTERED');

    expect(scene.table.items.get(keyOf(drifted))).toMatchObject({
      status: 'FAILED',
      statusSince: new Date(scene.clock).toISOString(),
    });
    expect(scene.table.items.get(keyOf(known))).toMatchObject({
      status: 'FAILED',
      statusSince: NOW.toISOString(),
    });
  });

  it('says so when Atlas gave no errorMessage for the FAILED endpoint', async () => {
    const request = createRequest();
    scene.atlas.seed(request.groupId, { cloudProvider: 'AWS', regionName: 'US_EAST_1', status: 'FAILED' });
    const { provisioner } = buildProvisioner(scene.atlas, { maxEndpointFailures: 1 });

    await expect(provisioner.handleRecord(sqsRecord(request))).resolves.toBe('DEAD_LETTERED');

    expect(scene.table.items.get(keyOf(request))).not.toHaveProperty('atlasErrorMessage');
    expect(publishedDetails().at(-1)).not.toHaveProperty('errorMessage');
    expect(sentTo(QUEUES.dlqUrl)[0]?.MessageAttributes?.Detail?.StringValue).toContain(
      'Atlas gave no errorMessage',
    );
  });
});
