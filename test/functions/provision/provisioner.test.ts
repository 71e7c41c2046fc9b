import { Logger } from '@aws-lambda-powertools/logger';
import { ProvisionedThroughputExceededException } from '@aws-sdk/client-dynamodb';
import { PutEventsCommand } from '@aws-sdk/client-eventbridge';
import { ChangeMessageVisibilityCommand, SendMessageCommand } from '@aws-sdk/client-sqs';
import { beforeEach, describe, expect, it, vi } from 'vitest';
import { isAnswerKey } from '#ledger/ledger.ts';
import { AtlasApiError, AtlasNetworkError, CredentialsError } from '#lib/errors.ts';
import { tuningFrom } from '#provision/provisioner.ts';
import type { ProvisionEnvironment } from '#runtime/environment.ts';
import { createRequest, loadEvent, sqsRecord } from '#test/support/sqs-events.ts';
import {
  buildProvisioner,
  carrying,
  DEFAULT_ENTRY,
  deferredForTime,
  dlq,
  eventBridge,
  followUps,
  keyOf,
  NOW,
  provisionerScene,
  publishedDetails,
  QUEUES,
  sentTo,
  sqs,
} from './fixtures.ts';

const apiError = (status: number, errorCode: string, retryAfterSeconds?: number) =>
  new AtlasApiError({
    status,
    errorCode,
    detail: `Atlas said ${errorCode}`,
    operation: 'create',
    ...(retryAfterSeconds !== undefined && { retryAfterSeconds }),
  });

describe('Provisioner', () => {
  const scene = provisionerScene();

  describe('create', () => {
    it('creates the endpoint when none is listed: two Atlas requests, settled and announced as PROVISIONED', async () => {
      // Prepare
      const request = createRequest({ vpcRegionName: 'US_WEST_2' });
      const { provisioner, metrics } = buildProvisioner(scene.atlas);

      // Act
      const outcome = await provisioner.handleRecord(sqsRecord(request));

      // Assess
      expect(outcome).toBe('PROVISIONED');
      expect(scene.atlas.calls.map((c) => c.op)).toEqual(['list', 'create']);
      const [endpoint] = scene.atlas.endpoints.get(request.groupId) ?? [];
      expect(endpoint).toMatchObject({ regionName: 'US_EAST_1', vpcRegionName: 'US_WEST_2' });
      expect(scene.table.items.get(keyOf(request))).toMatchObject({
        status: 'INITIATING',
        endpointId: endpoint?.id,
      });
      expect(scene.table.items.get(keyOf(request))).not.toHaveProperty('lease');
      expect(publishedDetails()).toEqual([
        expect.objectContaining({
          outcome: 'PROVISIONED',
          requestIds: [request.requestId],
          naturalKey: keyOf(request),
          action: 'create',
          endpointId: endpoint?.id,
          status: 'INITIATING',
          previousStatus: 'REQUESTED',
          occurredAt: NOW.toISOString(),
        }),
      ]);
      expect(metrics.addMetric).toHaveBeenCalledWith('Requests', 'Count', 1);
      expect(metrics.addMetric).toHaveBeenCalledWith('Provisioned', 'Count', 1);
    });

    it('provisions the valid create request of events/sqs-create.json', async () => {
      const [record] = loadEvent('sqs-create').Records;
      const { provisioner } = buildProvisioner(scene.atlas);

      await expect(provisioner.handleRecord(record as NonNullable<typeof record>)).resolves.toBe(
        'PROVISIONED',
      );
    });

    it('adopts a listed endpoint of the same region and VPC region without creating one', async () => {
      // Prepare
      const request = createRequest();
      const existing = scene.atlas.seed(request.groupId, {
        cloudProvider: 'AWS',
        regionName: 'US_EAST_1',
        status: 'ACTIVE',
      });
      const { provisioner, metrics } = buildProvisioner(scene.atlas);

      // Act
      const outcome = await provisioner.handleRecord(sqsRecord(request));

      // Assess
      expect(outcome).toBe('ADOPTED');
      expect(scene.atlas.calls.map((c) => c.op)).toEqual(['list']);
      expect(scene.table.items.get(keyOf(request))).toMatchObject({
        status: 'ACTIVE',
        endpointId: existing.id,
      });
      expect(publishedDetails()[0]).toMatchObject({
        outcome: 'ADOPTED',
        endpointId: existing.id,
        status: 'ACTIVE',
      });
      expect(metrics.addMetric).toHaveBeenCalledWith('Adopted', 'Count', 1);
    });

    it('creates rather than adopt an endpoint of another VPC region or one being deleted', async () => {
      const request = createRequest();
      scene.atlas.seed(request.groupId, {
        cloudProvider: 'AWS',
        regionName: 'US_EAST_1',
        vpcRegionName: 'EU_WEST_1',
        status: 'ACTIVE',
      });
      scene.atlas.seed(request.groupId, {
        cloudProvider: 'AWS',
        regionName: 'US_EAST_1',
        status: 'DELETING',
      });
      const { provisioner } = buildProvisioner(scene.atlas);

      await expect(provisioner.handleRecord(sqsRecord(request))).resolves.toBe('PROVISIONED');
      expect(scene.atlas.calls.map((c) => c.op)).toEqual(['list', 'create']);
    });

    it("adopts the ledger's live endpoint without any Atlas request", async () => {
      // Prepare
      const request = createRequest();
      const { provisioner } = buildProvisioner(scene.atlas);
      await provisioner.handleRecord(sqsRecord(request));
      scene.atlas.calls.length = 0;

      // Act
      const outcome = await provisioner.handleRecord(sqsRecord({ ...request, requestId: 'replayed-1' }));

      // Assess
      expect(outcome).toBe('ADOPTED');
      expect(scene.atlas.calls).toEqual([]);
      expect(publishedDetails()[1]).toMatchObject({
        outcome: 'ADOPTED',
        requestIds: ['replayed-1'],
        status: 'INITIATING',
      });
      expect(publishedDetails()[1]).not.toHaveProperty('previousStatus');
    });

    it('resolves a 409 on create by listing again and adopting what it finds', async () => {
      // Prepare
      const request = createRequest();
      const { provisioner } = buildProvisioner(scene.atlas);
      const conflict = apiError(409, 'CONFLICT');
      const listed = vi.spyOn(scene.atlas, 'listEndpoints');
      listed.mockResolvedValueOnce([]);
      scene.atlas.failNext('create', conflict);
      const existing = scene.atlas.seed(request.groupId, {
        cloudProvider: 'AWS',
        regionName: 'US_EAST_1',
        status: 'INITIATING',
      });

      // Act
      const outcome = await provisioner.handleRecord(sqsRecord(request));

      // Assess
      expect(outcome).toBe('ADOPTED');
      expect(scene.atlas.calls.map((c) => c.op)).toEqual(['create', 'list']);
      expect(listed).toHaveBeenCalledTimes(2);
      expect(scene.table.items.get(keyOf(request))).toMatchObject({ endpointId: existing.id });
    });

    it('retries a 409 that listing cannot explain', async () => {
      const request = createRequest();
      scene.atlas.failNext('create', apiError(409, 'CONFLICT'));
      const { provisioner } = buildProvisioner(scene.atlas);

      await expect(provisioner.handleRecord(sqsRecord(request))).rejects.toThrow(/409/);
      expect(sqs).toReceiveCommandWith(ChangeMessageVisibilityCommand, { VisibilityTimeout: 1 });
      expect(scene.table.items.get(keyOf(request))).toMatchObject({
        lastError: { code: 'CONFLICT_UNRESOLVED', httpStatus: 409 },
      });
      // A 409 answers the create: it is not in doubt.
      expect(scene.table.items.get(keyOf(request))).not.toHaveProperty('pendingCreate');
    });
  });

  describe('delete', () => {
    it("deletes the ledger's endpoint: 204 is DELETE_REQUESTED with status DELETING", async () => {
      // Prepare
      const request = createRequest();
      const { provisioner, metrics } = buildProvisioner(scene.atlas);
      await provisioner.handleRecord(sqsRecord(request));
      const endpointId = String(scene.table.items.get(keyOf(request))?.endpointId);
      scene.atlas.calls.length = 0;

      // Act
      const outcome = await provisioner.handleRecord(
        sqsRecord({ ...request, requestId: 'del-1', action: 'delete' }),
      );

      // Assess
      expect(outcome).toBe('DELETE_REQUESTED');
      expect(scene.atlas.calls).toEqual([{ op: 'delete', groupId: request.groupId, endpointId }]);
      expect(scene.table.items.get(keyOf(request))).toMatchObject({ status: 'DELETING', action: 'delete' });
      expect(publishedDetails()[1]).toMatchObject({
        outcome: 'DELETE_REQUESTED',
        action: 'delete',
        status: 'DELETING',
      });
      expect(metrics.addMetric).toHaveBeenCalledWith('Deleted', 'Count', 1);
    });

    it('finds the endpoint to delete by listing when the ledger has none', async () => {
      const request = createRequest({ action: 'delete' });
      const existing = scene.atlas.seed(request.groupId, {
        cloudProvider: 'AWS',
        regionName: 'US_EAST_1',
        status: 'ACTIVE',
      });
      const { provisioner } = buildProvisioner(scene.atlas);

      await expect(provisioner.handleRecord(sqsRecord(request))).resolves.toBe('DELETE_REQUESTED');
      expect(scene.atlas.calls.map((c) => c.op)).toEqual(['list', 'delete']);
      expect(scene.atlas.calls[1]?.endpointId).toBe(existing.id);
    });

    it('counts an endpoint that is not listed as already DELETED, without a DELETE request', async () => {
      const [record] = loadEvent('sqs-delete').Records;
      const { provisioner } = buildProvisioner(scene.atlas);

      await expect(provisioner.handleRecord(record as NonNullable<typeof record>)).resolves.toBe('DELETED');
      expect(scene.atlas.calls.map((c) => c.op)).toEqual(['list']);
      expect(publishedDetails()[0]).toMatchObject({
        outcome: 'DELETED',
        status: 'DELETED',
        action: 'delete',
      });
    });

    it('counts a 404 on delete as already DELETED', async () => {
      const request = createRequest({ action: 'delete' });
      scene.atlas.seed(request.groupId, { cloudProvider: 'AWS', regionName: 'US_EAST_1', status: 'ACTIVE' });
      scene.atlas.failNext(
        'delete',
        new AtlasApiError({ status: 404, errorCode: 'RESOURCE_NOT_FOUND', operation: 'delete' }),
      );
      const { provisioner } = buildProvisioner(scene.atlas);

      await expect(provisioner.handleRecord(sqsRecord(request))).resolves.toBe('DELETED');
      expect(scene.table.items.get(keyOf(request))).toMatchObject({ status: 'DELETED' });
    });

    it('deletes the endpoint Atlas recreated under a new id when the ledger still names the old one', async () => {
      const request = createRequest();
      const { provisioner } = buildProvisioner(scene.atlas);
      await provisioner.handleRecord(sqsRecord(request));
      const old = scene.table.items.get(keyOf(request))?.endpointId;
      // Atlas recreated it: the old id is gone, a new endpoint for the key stands in its place.
      scene.atlas.endpoints.set(request.groupId, []);
      const successor = scene.atlas.seed(request.groupId, {
        cloudProvider: 'AWS',
        regionName: 'US_EAST_1',
        status: 'ACTIVE',
      });
      scene.atlas.calls.length = 0;

      await expect(
        provisioner.handleRecord(sqsRecord({ ...request, requestId: 'del-1', action: 'delete' })),
      ).resolves.toBe('DELETE_REQUESTED');
      expect(scene.atlas.calls).toEqual([
        { op: 'delete', groupId: request.groupId, endpointId: old },
        { op: 'list', groupId: request.groupId },
        { op: 'delete', groupId: request.groupId, endpointId: successor.id },
      ]);
      expect(successor.status).toBe('DELETING');
      expect(scene.table.items.get(keyOf(request))).toMatchObject({
        status: 'DELETING',
        endpointId: successor.id,
      });
    });

    it('does not delete again an endpoint the ledger already sees being deleted', async () => {
      const request = createRequest({ action: 'delete' });
      scene.atlas.seed(request.groupId, { cloudProvider: 'AWS', regionName: 'US_EAST_1', status: 'ACTIVE' });
      const { provisioner } = buildProvisioner(scene.atlas);
      await provisioner.handleRecord(sqsRecord(request));
      scene.atlas.calls.length = 0;

      await expect(provisioner.handleRecord(sqsRecord(request))).resolves.toBe('DELETE_REQUESTED');
      expect(scene.atlas.calls).toEqual([]);
    });
  });

  describe('retry', () => {
    it('delays the record by Retry-After on a 429, records the failure and throws', async () => {
      // Prepare
      const request = createRequest();
      scene.atlas.failNext('list', apiError(429, 'RATE_LIMITED', 37));
      const { provisioner, metrics } = buildProvisioner(scene.atlas);
      const record = sqsRecord(request);

      // Act
      const result = provisioner.handleRecord(record);

      // Assess
      await expect(result).rejects.toBeInstanceOf(AtlasApiError);
      expect(sqs).toReceiveCommandWith(ChangeMessageVisibilityCommand, {
        QueueUrl: QUEUES.requestQueueUrl,
        ReceiptHandle: record.receiptHandle,
        VisibilityTimeout: 37,
      });
      expect(scene.table.items.get(keyOf(request))).toMatchObject({
        lastError: { code: 'RATE_LIMITED', httpStatus: 429, detail: 'Atlas said RATE_LIMITED' },
      });
      expect(scene.table.items.get(keyOf(request))).not.toHaveProperty('lease');
      expect(sqs).not.toReceiveCommand(SendMessageCommand);
      expect(eventBridge).not.toReceiveCommand(PutEventsCommand);
      expect(metrics.addMetric).toHaveBeenCalledWith('Retried', 'Count', 1);
    });

    it("caps a Retry-After beyond 12 hours at what is left of SQS's 12 hours after the receive", async () => {
      scene.atlas.failNext('list', apiError(503, 'SERVICE_UNAVAILABLE', 90_000));
      const { provisioner } = buildProvisioner(scene.atlas);

      await expect(provisioner.handleRecord(sqsRecord(createRequest()))).rejects.toThrow();
      expect(sqs).toReceiveCommandWith(ChangeMessageVisibilityCommand, { VisibilityTimeout: 42_000 });
    });

    it.each([
      [1, 0.5, 1],
      [3, 0.5, 4],
      [3, 1, 8],
      [12, 0.999, 899],
      [4, 0, 0],
    ])(
      'backs off a 5xx with full jitter: attempt %i, random %d -> %i s',
      async (attempt, random, seconds) => {
        scene.atlas.failNext('list', apiError(500, 'UNEXPECTED_ERROR'));
        const { provisioner } = buildProvisioner(scene.atlas, { random: () => random, maxAttempts: 20 });

        await expect(
          provisioner.handleRecord(sqsRecord(createRequest(), { receiveCount: attempt })),
        ).rejects.toThrow();
        expect(sqs).toReceiveCommandWith(ChangeMessageVisibilityCommand, { VisibilityTimeout: seconds });
      },
    );

    it.each([
      ['a network error', new AtlasNetworkError('list', 'network'), 'ATLAS_UNREACHABLE'],
      ['a timeout', new AtlasNetworkError('list', 'timeout'), 'ATLAS_TIMEOUT'],
      ['an error nobody expected', new TypeError('cannot read properties of undefined'), 'INTERNAL_ERROR'],
    ])('retries %s and never acknowledges it', async (_name, error, code) => {
      const request = createRequest();
      scene.atlas.failNext('list', error);
      const { provisioner } = buildProvisioner(scene.atlas);

      await expect(provisioner.handleRecord(sqsRecord(request))).rejects.toBe(error);
      expect(scene.table.items.get(keyOf(request))).toMatchObject({ lastError: { code } });
      expect(sqs).toReceiveCommandTimes(ChangeMessageVisibilityCommand, 1);
    });

    it('waits out a key another worker holds, spending no attempt and touching nothing of its item', async () => {
      const request = createRequest();
      scene.table.busy.add(keyOf(request));
      const { provisioner, metrics } = buildProvisioner(scene.atlas);
      const record = sqsRecord(request);

      await expect(provisioner.handleRecord(record)).resolves.toBe('WAITING');
      expect(scene.table.writes).toEqual(['claim']);
      expect(scene.atlas.calls).toEqual([]);
      expect(sqs).not.toReceiveCommand(ChangeMessageVisibilityCommand);
      expect(sentTo(QUEUES.continuationQueueUrl)).toEqual([
        expect.objectContaining({
          MessageBody: record.body,
          DelaySeconds: 2,
          MessageAttributes: expect.objectContaining({ Waits: { DataType: 'Number', StringValue: '1' } }),
        }),
      ]);
      expect(metrics.addMetric).toHaveBeenCalledWith('Waiting', 'Count', 1);
    });

    it('still throws for a retry when the visibility change fails', async () => {
      sqs.on(ChangeMessageVisibilityCommand).rejects(new Error('ReceiptHandleIsInvalid'));
      scene.atlas.failNext('list', apiError(500, 'UNEXPECTED_ERROR'));
      const { provisioner } = buildProvisioner(scene.atlas);

      await expect(provisioner.handleRecord(sqsRecord(createRequest()))).rejects.toBeInstanceOf(
        AtlasApiError,
      );
    });

    it('keeps a provisioned answer EventBridge refused in the outbox, counts it, and sends it with the next delivery', async () => {
      // Prepare
      const request = createRequest();
      eventBridge.on(PutEventsCommand).rejects(new Error('EventBridge is down'));
      const { provisioner, metrics } = buildProvisioner(scene.atlas);

      // Act
      const record = sqsRecord(request);
      const outcome = await provisioner.handleRecord(record);

      // Assess: provisioned all the same, the answer kept with the state it announces
      expect(outcome).toBe('PROVISIONED');
      const item = scene.table.items.get(keyOf(request));
      expect(item).toMatchObject({ status: 'INITIATING', tracked: 'OPEN' });
      const kept = Object.values(item?.outbox ?? {});
      expect(kept).toEqual([
        expect.objectContaining({ outcome: 'PROVISIONED', requestIds: [request.requestId] }),
      ]);
      expect(metrics.addMetric).toHaveBeenCalledWith('EventPublishFailed', 'Count', 1);
      expect(sqs).not.toReceiveCommand(ChangeMessageVisibilityCommand);

      // Act: EventBridge is back; a duplicate delivery announces the recorded answer, nothing else
      eventBridge.reset();
      eventBridge.on(PutEventsCommand).resolves({ FailedEntryCount: 0, Entries: [{ EventId: 'e-2' }] });
      scene.atlas.calls.length = 0;
      await expect(provisioner.handleRecord(record)).resolves.toBe('PROVISIONED');

      // Assess
      const sent = publishedDetails();
      expect(sent).toEqual([kept[0]]);
      expect(scene.atlas.calls).toEqual([]);
      expect(scene.table.items.get(keyOf(request))).not.toHaveProperty('outbox');
    });
  });

  describe('dead-letter queue', () => {
    it('sends the original body with the failure attributes to the DLQ after the last attempt', async () => {
      // Prepare
      const request = createRequest();
      scene.atlas.failNext('list', apiError(503, 'SERVICE_UNAVAILABLE', 5));
      const { provisioner, metrics } = buildProvisioner(scene.atlas, { maxAttempts: 5 });
      const record = sqsRecord(`  ${JSON.stringify(request)}\n`, { receiveCount: 5 });

      // Act
      const outcome = await provisioner.handleRecord(record);

      // Assess
      expect(outcome).toBe('DEAD_LETTERED');
      expect(sqs).toReceiveCommandWith(SendMessageCommand, {
        QueueUrl: QUEUES.dlqUrl,
        MessageBody: record.body,
        MessageAttributes: {
          ErrorCode: { DataType: 'String', StringValue: 'SERVICE_UNAVAILABLE' },
          HttpStatus: { DataType: 'Number', StringValue: '503' },
          Detail: { DataType: 'String', StringValue: 'Atlas said SERVICE_UNAVAILABLE' },
          Attempts: { DataType: 'Number', StringValue: '5' },
          FirstFailureAt: { DataType: 'String', StringValue: NOW.toISOString() },
          LastFailureAt: { DataType: 'String', StringValue: NOW.toISOString() },
          RequestId: { DataType: 'String', StringValue: request.requestId },
          OriginalMessageId: { DataType: 'String', StringValue: record.messageId },
          RequesterName: { DataType: 'String', StringValue: 'default' },
          // Its place in its requester's order, kept for a replay (README "Order").
          SentAt: { DataType: 'Number', StringValue: record.attributes.SentTimestamp },
        },
      });
      expect(sqs).not.toReceiveCommand(ChangeMessageVisibilityCommand);
      expect(publishedDetails()).toEqual([
        expect.objectContaining({
          outcome: 'DEAD_LETTERED',
          requestIds: [request.requestId],
          naturalKey: keyOf(request),
          error: { code: 'SERVICE_UNAVAILABLE', httpStatus: 503, detail: 'Atlas said SERVICE_UNAVAILABLE' },
        }),
      ]);
      expect(metrics.addMetric).toHaveBeenCalledWith('DeadLettered', 'Count', 1);
    });

    it.each([
      ['a 403', apiError(403, 'USER_UNAUTHORIZED'), 'USER_UNAUTHORIZED'],
      ['a 401 that survived the credentials refresh', apiError(401, 'UNAUTHORIZED'), 'UNAUTHORIZED'],
      ['a 406 version error', apiError(406, 'INVALID_VERSION_DATE'), 'INVALID_VERSION_DATE'],
      ['a 410 version gone', apiError(410, 'VERSION_GONE'), 'VERSION_GONE'],
      [
        'a missing secret',
        new CredentialsError(
          'secret "cfn/atlas/profile/default" does not exist',
          'cfn/atlas/profile/default',
          'SECRET_NOT_FOUND',
        ),
        'SECRET_NOT_FOUND',
      ],
    ])('sends the record to the DLQ at once on %s', async (_name, error, code) => {
      scene.atlas.failNext('list', error);
      const { provisioner } = buildProvisioner(scene.atlas);

      await expect(provisioner.handleRecord(sqsRecord(createRequest()))).resolves.toBe('DEAD_LETTERED');
      expect(sqs).toReceiveCommandWith(SendMessageCommand, {
        QueueUrl: QUEUES.dlqUrl,
        MessageAttributes: expect.objectContaining({
          ErrorCode: { DataType: 'String', StringValue: code },
          Attempts: { DataType: 'Number', StringValue: '1' },
        }),
      });
    });

    it('throws, to be retried, when the DLQ cannot take the record', async () => {
      sqs.on(SendMessageCommand).rejects(new Error('AccessDenied'));
      scene.atlas.failNext('list', apiError(403, 'USER_UNAUTHORIZED'));
      const { provisioner } = buildProvisioner(scene.atlas);

      await expect(provisioner.handleRecord(sqsRecord(createRequest()))).rejects.toThrow('AccessDenied');
      expect(sqs).toReceiveCommandTimes(SendMessageCommand, 1);
    });

    it('parks a request with its reason whatever EventBridge does, and keeps the answer it refused until the sweep sends it', async () => {
      // Prepare
      eventBridge.on(PutEventsCommand).rejects(new Error('EventBridge is down'));
      const { provisioner, metrics } = buildProvisioner(scene.atlas);
      const record = sqsRecord('{"requestId": "req-1", "groupId": 42}');

      // Act
      const outcome = await provisioner.handleRecord(record);

      // Assess: parked once, with its reason; the answer kept as an item of its own
      expect(outcome).toBe('REJECTED');
      expect(sentTo(QUEUES.rejectedQueueUrl)).toEqual([
        expect.objectContaining({
          MessageBody: record.body,
          MessageAttributes: expect.objectContaining({
            ErrorCode: { DataType: 'String', StringValue: 'INVALID_REQUEST' },
          }),
        }),
      ]);
      const kept = [...scene.table.items.values()].filter((i) => isAnswerKey(i.key));
      expect(kept).toHaveLength(1);
      expect(Object.values(kept[0]?.outbox ?? {})).toEqual([
        expect.objectContaining({ outcome: 'REJECTED', requestIds: ['req-1'], messageId: record.messageId }),
      ]);
      expect(kept[0]).toMatchObject({ tracked: 'OPEN' });
      expect(metrics.addMetric).toHaveBeenCalledWith('EventPublishFailed', 'Count', 1);
    });

    it('announces nothing when the parking queue refuses: the record comes back, parked and announced once', async () => {
      sqs.on(SendMessageCommand).rejectsOnce(new Error('SQS is down')).resolves({ MessageId: 'm' });
      const { provisioner } = buildProvisioner(scene.atlas);
      const record = sqsRecord('{"requestId": "req-1", "groupId": 42}');

      await expect(provisioner.handleRecord(record)).rejects.toThrow('SQS is down');
      expect(publishedDetails()).toEqual([]);
      await expect(provisioner.handleRecord(record)).resolves.toBe('REJECTED');

      expect(publishedDetails()).toHaveLength(1);
      expect(sentTo(QUEUES.rejectedQueueUrl)).toHaveLength(2);
    });

    it('counts an answer lost only when the ledger refuses it too, and still parks the request', async () => {
      eventBridge.on(PutEventsCommand).rejects(new Error('EventBridge is down'));
      vi.spyOn(scene.table, 'keepAnswer').mockRejectedValue(
        new Error('ProvisionedThroughputExceededException'),
      );
      const { provisioner, metrics } = buildProvisioner(scene.atlas);

      await expect(provisioner.handleRecord(sqsRecord('{"requestId": "req-1"}'))).resolves.toBe('REJECTED');

      expect(sentTo(QUEUES.rejectedQueueUrl)).toHaveLength(1);
      expect(metrics.addMetric).toHaveBeenCalledWith('AnswersLost', 'Count', 1);
    });

    it('dates the first failure from the first receive when the ledger has no record of it', async () => {
      const first = Date.parse('2026-11-29T08:30:00.000Z');
      const { provisioner } = buildProvisioner(scene.atlas, { maxAttempts: 3 });
      const request = createRequest();
      vi.spyOn(scene.table, 'claim').mockRejectedValue(new Error('ProvisionedThroughputExceededException'));

      await provisioner.handleRecord(sqsRecord(request, { receiveCount: 3, firstReceivedAt: first }));

      expect(sqs).toReceiveCommandWith(SendMessageCommand, {
        MessageAttributes: expect.objectContaining({
          ErrorCode: { DataType: 'String', StringValue: 'INTERNAL_ERROR' },
          FirstFailureAt: { DataType: 'String', StringValue: '2026-11-29T08:30:00.000Z' },
        }),
      });
    });
  });

  describe('rejected', () => {
    it('rejects every invalid record of events/sqs-batch-invalid.json with a reason naming the field', async () => {
      // Prepare
      const [valid, ...invalid] = loadEvent('sqs-batch-invalid').Records;
      const { provisioner, metrics } = buildProvisioner(scene.atlas);

      // Act
      const outcomes = await Promise.all(invalid.map((record) => provisioner.handleRecord(record)));

      // Assess
      expect(valid).toBeDefined();
      expect(outcomes).toEqual(['REJECTED', 'REJECTED', 'REJECTED']);
      expect(scene.table.writes).toEqual([]);
      expect(scene.atlas.calls).toEqual([]);
      const parked = sqs.commandCalls(SendMessageCommand).map((c) => c.args[0].input);
      expect(parked.map((p) => p.QueueUrl)).toEqual([
        QUEUES.rejectedQueueUrl,
        QUEUES.rejectedQueueUrl,
        QUEUES.rejectedQueueUrl,
      ]);
      expect(parked.map((p) => p.MessageBody)).toEqual(invalid.map((r) => r.body));
      const details = parked.map((p) => p.MessageAttributes?.Detail?.StringValue);
      expect(details[0]).toContain('unknown field(s): regionname');
      expect(details[1]).toContain('body is not valid JSON');
      expect(details[2]).toMatch(/action: .*groupId: .*cloudProvider: /);
      expect(parked[0]?.MessageAttributes?.RequestId).toEqual({
        DataType: 'String',
        StringValue: 'req-2026-11-29-0004',
      });
      // The truncated body's requestId is read leniently, for correlation only.
      expect(parked[1]?.MessageAttributes?.RequestId).toEqual({
        DataType: 'String',
        StringValue: 'req-2026-11-29-0005',
      });
      expect(publishedDetails().map((d) => [d.outcome, d.requestIds, d.error?.code])).toEqual([
        ['REJECTED', ['req-2026-11-29-0004'], 'INVALID_REQUEST'],
        ['REJECTED', ['req-2026-11-29-0005'], 'INVALID_REQUEST'],
        ['REJECTED', ['req-2026-11-29-0006'], 'INVALID_REQUEST'],
      ]);
      expect(metrics.addMetric).toHaveBeenCalledWith('Rejected', 'Count', 1);
    });

    it('rejects a profile the deployment does not allow, before claiming anything', async () => {
      const { provisioner } = buildProvisioner(scene.atlas);

      await expect(provisioner.handleRecord(sqsRecord(createRequest({ profile: 'intruder' })))).resolves.toBe(
        'REJECTED',
      );
      expect(scene.table.writes).toEqual([]);
      expect(sqs).toReceiveCommandWith(SendMessageCommand, {
        QueueUrl: QUEUES.rejectedQueueUrl,
        MessageAttributes: expect.objectContaining({
          ErrorCode: { DataType: 'String', StringValue: 'PROFILE_NOT_ALLOWED' },
        }),
      });
    });

    it.each([[400, 'INVALID_ENUM_VALUE']])(
      'rejects a create that Atlas answers %i, which no replay can fix',
      async (status, errorCode) => {
        scene.atlas.failNext('create', apiError(status, errorCode));
        const { provisioner } = buildProvisioner(scene.atlas);

        await expect(provisioner.handleRecord(sqsRecord(createRequest()))).resolves.toBe('REJECTED');
        expect(sqs).toReceiveCommandWith(SendMessageCommand, {
          QueueUrl: QUEUES.rejectedQueueUrl,
          MessageAttributes: expect.objectContaining({
            ErrorCode: { DataType: 'String', StringValue: errorCode },
            HttpStatus: { DataType: 'Number', StringValue: String(status) },
          }),
        });
      },
    );
  });

  describe('concurrency', () => {
    it('runs records for the same key one after another, so a duplicate adopts instead of creating twice', async () => {
      // Prepare
      const request = createRequest();
      scene.atlas.latencyMs = 20;
      const { provisioner } = buildProvisioner(scene.atlas);

      // Act
      const outcomes = await Promise.all([
        provisioner.handleRecord(sqsRecord(request)),
        provisioner.handleRecord(sqsRecord({ ...request, requestId: 'duplicate' })),
      ]);

      // Assess
      expect(outcomes).toEqual(['PROVISIONED', 'ADOPTED']);
      expect(scene.atlas.endpoints.get(request.groupId)).toHaveLength(1);
      expect(scene.atlas.calls.map((c) => c.op)).toEqual(['list', 'create']);
    });

    it('runs records for different keys concurrently, at most recordConcurrency at once', async () => {
      scene.atlas.latencyMs = 20;
      const { provisioner } = buildProvisioner(scene.atlas, { recordConcurrency: 3 });

      const outcomes = await Promise.all(
        Array.from({ length: 8 }, () => provisioner.handleRecord(sqsRecord(createRequest()))),
      );

      expect(outcomes).toEqual(Array(8).fill('PROVISIONED'));
      expect(scene.atlas.maxActive).toBe(3);
    });

    it('writes the requestId on every log line of a record, even with records running concurrently', async () => {
      // Prepare
      const lines: string[] = [];
      for (const stream of [process.stdout, process.stderr]) {
        vi.spyOn(stream, 'write').mockImplementation((chunk: string | Uint8Array) => {
          lines.push(String(chunk));
          return true;
        });
      }
      const logger = new Logger({ serviceName: 'provisioner', logLevel: 'INFO' });
      scene.atlas.latencyMs = 10;
      scene.atlas.failNext('list', apiError(500, 'UNEXPECTED_ERROR'));
      const { provisioner } = buildProvisioner(scene.atlas, { logger });
      const requests = [createRequest(), createRequest(), createRequest()];

      // Act
      await Promise.allSettled(requests.map((r) => provisioner.handleRecord(sqsRecord(r))));

      // Assess
      const entries = lines
        .flatMap((l) => l.split('\n'))
        .filter(Boolean)
        .map((l) => JSON.parse(l));
      expect(entries.map((e) => e.message).sort()).toEqual([
        'request done',
        'request done',
        'request will be retried',
      ]);
      for (const entry of entries) {
        expect(requests.map((r) => r.requestId)).toContain(entry.requestId);
      }
      expect(new Set(entries.map((e) => e.requestId)).size).toBe(3);
    });
  });
});

describe('Provisioner, choosing the endpoint to keep', () => {
  const scene = provisionerScene();

  it('adopts an ACTIVE endpoint over one listed before it, and reports the other', async () => {
    const request = createRequest();
    const initiating = scene.endpoint(request, 'INITIATING');
    const active = scene.endpoint(request, 'ACTIVE');
    const { provisioner } = buildProvisioner(scene.atlas);

    await expect(provisioner.handleRecord(sqsRecord(request))).resolves.toBe('ADOPTED');

    expect(scene.table.items.get(keyOf(request))).toMatchObject({ endpointId: active.id, status: 'ACTIVE' });
    expect(publishedDetails().map((d) => [d.outcome, d.endpointId, d.status])).toEqual([
      ['ADOPTED', active.id, 'ACTIVE'],
      ['DUPLICATE_FOUND', initiating.id, 'INITIATING'],
    ]);
  });

  it('adopts the first listed endpoint when none is ACTIVE', async () => {
    const request = createRequest();
    const first = scene.endpoint(request, 'PENDING_ACCEPTANCE');
    scene.endpoint(request, 'INITIATING');
    const { provisioner } = buildProvisioner(scene.atlas);

    await expect(provisioner.handleRecord(sqsRecord(request))).resolves.toBe('ADOPTED');

    expect(scene.table.items.get(keyOf(request))).toMatchObject({
      endpointId: first.id,
      status: 'PENDING_ACCEPTANCE',
    });
  });

  it("keeps the ledger's own endpoint over an ACTIVE one, which no create of this key accounts for", async () => {
    const request = createRequest();
    const { provisioner, metrics } = buildProvisioner(scene.atlas);
    await provisioner.handleRecord(sqsRecord(request));
    const own = scene.table.items.get(keyOf(request))?.endpointId;
    const other = scene.endpoint(request, 'ACTIVE');
    const item = scene.table.items.get(keyOf(request));
    if (item) item.status = 'MISSING';

    await expect(provisioner.handleRecord(sqsRecord({ ...request, requestId: 'again' }))).resolves.toBe(
      'ADOPTED',
    );

    expect(scene.table.items.get(keyOf(request))).toMatchObject({ endpointId: own, status: 'INITIATING' });
    expect(scene.atlas.calls.filter((c) => c.op === 'delete')).toEqual([]);
    expect(publishedDetails().at(-1)).toMatchObject({
      outcome: 'DUPLICATE_FOUND',
      endpointId: other.id,
      status: 'ACTIVE',
      requestIds: ['again'],
    });
    expect(metrics.addMetric).toHaveBeenCalledWith('DuplicateEndpoints', 'Count', 1);
  });

  it("announces the adopted endpoint's Atlas errorMessage and the status it had before", async () => {
    const request = createRequest();
    scene.atlas.seed(request.groupId, {
      cloudProvider: 'AWS',
      regionName: 'US_EAST_1',
      status: 'PENDING_ACCEPTANCE',
      errorMessage: 'waiting for the interface endpoint',
    });
    const { provisioner } = buildProvisioner(scene.atlas);

    await provisioner.handleRecord(sqsRecord(request));
    await provisioner.handleRecord(sqsRecord({ ...request, requestId: 'again' }));

    expect(scene.table.items.get(keyOf(request))).toMatchObject({
      atlasErrorMessage: 'waiting for the interface endpoint',
    });
    expect(publishedDetails().map((d) => [d.outcome, d.previousStatus, d.errorMessage])).toEqual([
      ['ADOPTED', 'REQUESTED', 'waiting for the interface endpoint'],
      ['ADOPTED', undefined, 'waiting for the interface endpoint'],
    ]);
  });

  it('lists again rather than adopt what the ledger holds as gone', async () => {
    for (const status of ['REQUESTED', 'DELETING', 'DELETED', 'MISSING'] as const) {
      const request = createRequest();
      const { provisioner } = buildProvisioner(scene.atlas);
      await provisioner.handleRecord(sqsRecord(request));
      const item = scene.table.items.get(keyOf(request));
      if (item) item.status = status;
      scene.atlas.endpoints.set(request.groupId, []);
      scene.atlas.calls.length = 0;

      await expect(provisioner.handleRecord(sqsRecord(request))).resolves.toBe('PROVISIONED');
      expect(scene.atlas.calls.map((c) => c.op)).toEqual(['list', 'create']);
    }
  });
});

describe('Provisioner, the invocation deadline', () => {
  const scene = provisionerScene();
  const START = 1_800_000_000_000;

  beforeEach(() => {
    vi.spyOn(Date, 'now').mockReturnValue(START);
  });

  const left = (ms: number) => ({ getRemainingTimeInMillis: () => ms });

  it('starts a record with just the time for two Atlas calls and the margin', async () => {
    const { provisioner } = buildProvisioner(scene.atlas, { atlasTimeoutMs: 10_000 });

    await expect(provisioner.handleRecord(sqsRecord(createRequest()), left(23_000))).resolves.toBe(
      'PROVISIONED',
    );
  });

  it('starts no record with a millisecond less, and claims nothing', async () => {
    const { provisioner } = buildProvisioner(scene.atlas, { atlasTimeoutMs: 10_000 });

    await expect(provisioner.handleRecord(sqsRecord(createRequest()), left(22_999))).resolves.toBe('WAITING');
    expect(deferredForTime()).toBe(true);
    expect(scene.table.writes).toEqual([]);
  });

  /** Makes `method` of `target` take `ms` of the invocation. */
  const slow = <T extends object>(target: T, method: keyof T & string, ms: number) => {
    const original = (target[method] as (...args: unknown[]) => Promise<unknown>).bind(target);
    vi.spyOn(target, method as never).mockImplementation((async (...args: unknown[]) => {
      vi.mocked(Date.now).mockReturnValue(Date.now() + ms);
      return original(...args);
    }) as never);
  };

  it('lists nothing when the claim used up the time for it', async () => {
    slow(scene.table, 'claim', 11_000);
    const { provisioner } = buildProvisioner(scene.atlas, { atlasTimeoutMs: 10_000 });

    await expect(provisioner.handleRecord(sqsRecord(createRequest()), left(23_000))).resolves.toBe('WAITING');
    expect(deferredForTime()).toBe(true);
    expect(scene.atlas.calls).toEqual([]);
  });

  it('sends no create once writing it down used up its time, and leaves no create in doubt', async () => {
    const request = createRequest();
    slow(scene.atlas, 'listEndpoints', 9_000);
    slow(scene.table, 'amend', 2_000);
    const { provisioner } = buildProvisioner(scene.atlas, { atlasTimeoutMs: 10_000 });

    await expect(provisioner.handleRecord(sqsRecord(request), left(23_000))).resolves.toBe('WAITING');
    expect(deferredForTime()).toBe(true);
    expect(scene.atlas.calls.map((c) => c.op)).toEqual(['list']);
    expect(scene.table.items.get(keyOf(request))).not.toHaveProperty('pendingCreate');
  });

  it('sends a create with exactly the time for it left after the listing', async () => {
    slow(scene.atlas, 'listEndpoints', 10_000);
    const { provisioner } = buildProvisioner(scene.atlas, { atlasTimeoutMs: 10_000 });

    await expect(provisioner.handleRecord(sqsRecord(createRequest()), left(23_000))).resolves.toBe(
      'PROVISIONED',
    );
  });

  it('writes down no create it has no time to send', async () => {
    slow(scene.atlas, 'listEndpoints', 10_001);
    const { provisioner } = buildProvisioner(scene.atlas, { atlasTimeoutMs: 10_000 });

    await expect(provisioner.handleRecord(sqsRecord(createRequest()), left(23_000))).resolves.toBe('WAITING');
    expect(deferredForTime()).toBe(true);
    expect(scene.table.writes).not.toContain('amend');
  });

  it('sends no delete once the listing used up its time', async () => {
    const request = createRequest({ action: 'delete' });
    scene.atlas.seed(request.groupId, { cloudProvider: 'AWS', regionName: 'US_EAST_1', status: 'ACTIVE' });
    slow(scene.atlas, 'listEndpoints', 11_000);
    const { provisioner } = buildProvisioner(scene.atlas, { atlasTimeoutMs: 10_000 });

    await expect(provisioner.handleRecord(sqsRecord(request), left(23_000))).resolves.toBe('WAITING');
    expect(deferredForTime()).toBe(true);
    expect(scene.atlas.calls.map((c) => c.op)).toEqual(['list']);
  });

  it('gives each Atlas call a timeout of the time left, less the margin', async () => {
    const list = vi.spyOn(scene.atlas, 'listEndpoints');
    const { provisioner } = buildProvisioner(scene.atlas, { atlasTimeoutMs: 10_000 });
    const timeout = vi.spyOn(AbortSignal, 'timeout');

    await provisioner.handleRecord(sqsRecord(createRequest()), left(60_000));

    expect(timeout).toHaveBeenCalledWith(57_000);
    expect(list).toHaveBeenCalledWith(expect.any(String), 'AWS', { signal: expect.any(AbortSignal) });
  });

  it('bounds no Atlas call when no invocation clock is given', async () => {
    const list = vi.spyOn(scene.atlas, 'listEndpoints');
    const { provisioner } = buildProvisioner(scene.atlas);

    await provisioner.handleRecord(sqsRecord(createRequest()));

    expect(list).toHaveBeenCalledWith(expect.any(String), 'AWS', {});
  });
});

describe('Provisioner, failures and their record', () => {
  const scene = provisionerScene();

  it('dates the failures of a request parked in the DLQ from the first one the ledger recorded', async () => {
    const request = createRequest();
    const { provisioner } = buildProvisioner(scene.atlas, { now: scene.now, maxAttempts: 2 });
    scene.atlas.failNext('list', apiError(500, 'UNEXPECTED_ERROR'), apiError(500, 'UNEXPECTED_ERROR'));
    await expect(provisioner.handleRecord(sqsRecord(request))).rejects.toThrow();
    scene.clock += 60_000;

    await expect(provisioner.handleRecord(sqsRecord(request, { receiveCount: 2 }))).resolves.toBe(
      'DEAD_LETTERED',
    );

    expect(dlq()[0]?.MessageAttributes).toMatchObject({
      Attempts: { DataType: 'Number', StringValue: '2' },
      FirstFailureAt: { DataType: 'String', StringValue: NOW.toISOString() },
      LastFailureAt: { DataType: 'String', StringValue: new Date(scene.clock).toISOString() },
    });
  });

  it('retries before the last attempt: one attempt short of maxAttempts is delayed, not parked', async () => {
    scene.atlas.failNext('list', apiError(500, 'UNEXPECTED_ERROR'));
    const { provisioner } = buildProvisioner(scene.atlas, { maxAttempts: 5 });

    await expect(provisioner.handleRecord(sqsRecord(createRequest(), { receiveCount: 4 }))).rejects.toThrow();

    expect(dlq()).toEqual([]);
    expect(sqs).toReceiveCommandWith(ChangeMessageVisibilityCommand, { VisibilityTimeout: 8 });
  });

  it('dates the first failure of a first delivery from now, whatever the receive timestamp says', async () => {
    const request = createRequest();
    vi.spyOn(scene.table, 'claim').mockRejectedValue(new Error('ProvisionedThroughputExceededException'));
    const { provisioner } = buildProvisioner(scene.atlas, { maxAttempts: 1 });

    await provisioner.handleRecord(
      sqsRecord(request, { receiveCount: 1, firstReceivedAt: Date.parse('2026-11-29T08:30:00.000Z') }),
    );

    expect(dlq()[0]?.MessageAttributes?.FirstFailureAt).toEqual({
      DataType: 'String',
      StringValue: NOW.toISOString(),
    });
  });

  it('dates the first failure from now when the receive timestamp is unreadable', async () => {
    const request = createRequest();
    vi.spyOn(scene.table, 'claim').mockRejectedValue(new Error('ProvisionedThroughputExceededException'));
    const { provisioner } = buildProvisioner(scene.atlas, { maxAttempts: 2 });
    const record = sqsRecord(request, { receiveCount: 2 });
    record.attributes.ApproximateFirstReceiveTimestamp = 'soon';

    await provisioner.handleRecord(record);

    expect(dlq()[0]?.MessageAttributes?.FirstFailureAt?.StringValue).toBe(NOW.toISOString());
  });

  it('counts an unreadable receive count as the first delivery', async () => {
    scene.atlas.failNext('list', apiError(500, 'UNEXPECTED_ERROR'));
    const { provisioner } = buildProvisioner(scene.atlas, { maxAttempts: 2 });
    const record = sqsRecord(createRequest());
    record.attributes.ApproximateReceiveCount = 'many';

    await expect(provisioner.handleRecord(record)).rejects.toThrow();
    expect(dlq()).toEqual([]);
  });

  it('still parks the request when the ledger cannot record the failure', async () => {
    scene.atlas.failNext('list', apiError(403, 'USER_UNAUTHORIZED'));
    vi.spyOn(scene.table, 'recordFailure').mockRejectedValue(
      new Error('ProvisionedThroughputExceededException'),
    );
    const { provisioner } = buildProvisioner(scene.atlas);

    await expect(provisioner.handleRecord(sqsRecord(createRequest()))).resolves.toBe('DEAD_LETTERED');
    expect(dlq()).toHaveLength(1);
  });

  it('still waits when the ledger cannot release the key', async () => {
    const request = createRequest();
    scene.atlas.failNext('create', new AtlasNetworkError('create', 'timeout'));
    const { provisioner } = buildProvisioner(scene.atlas, { now: scene.now });
    await expect(provisioner.handleRecord(sqsRecord(request))).resolves.toBe('WAITING');
    vi.spyOn(scene.table, 'release').mockRejectedValue(new Error('ProvisionedThroughputExceededException'));

    await expect(provisioner.handleRecord(sqsRecord(request))).resolves.toBe('WAITING');
  });

  it('takes a create answered FAILED whose delete then fails as answered, not in doubt', async () => {
    const request = createRequest();
    vi.spyOn(scene.atlas, 'createEndpoint').mockResolvedValueOnce({
      id: 'c'.repeat(24),
      cloudProvider: 'AWS',
      regionName: 'US_EAST_1',
      status: 'FAILED',
    });
    scene.atlas.failNext('delete', apiError(503, 'SERVICE_UNAVAILABLE'));
    const { provisioner } = buildProvisioner(scene.atlas, { now: scene.now });

    await expect(provisioner.handleRecord(sqsRecord(request))).rejects.toThrow();

    expect(scene.table.items.get(keyOf(request))).not.toHaveProperty('pendingCreate');
    expect(sqs).toReceiveCommandWith(ChangeMessageVisibilityCommand, { VisibilityTimeout: 1 });
  });

  it('recreates a FAILED endpoint that a create returns', async () => {
    const request = createRequest();
    vi.spyOn(scene.atlas, 'createEndpoint').mockResolvedValueOnce({
      id: 'c'.repeat(24),
      cloudProvider: 'AWS',
      regionName: 'US_EAST_1',
      status: 'FAILED',
      errorMessage: 'no capacity',
    });
    const { provisioner } = buildProvisioner(scene.atlas, { now: scene.now });

    await expect(provisioner.handleRecord(sqsRecord(request))).resolves.toBe('RECREATING');

    expect(scene.atlas.calls.map((c) => c.op)).toEqual(['list', 'delete']);
    expect(scene.table.items.get(keyOf(request))).toMatchObject({
      endpointId: 'c'.repeat(24),
      endpointFailures: 1,
    });
  });
});

describe('Provisioner, a 404 that is not the endpoint gone', () => {
  const scene = provisionerScene();

  const notFound = (errorCode: string, operation: string, detail = `Atlas said ${errorCode}`) =>
    new AtlasApiError({ status: 404, errorCode, detail, operation });
  const parkedWith = (errorCode: string, detail: string) =>
    expect(sqs).toReceiveCommandWith(SendMessageCommand, {
      QueueUrl: QUEUES.dlqUrl,
      MessageAttributes: expect.objectContaining({
        ErrorCode: { DataType: 'String', StringValue: errorCode },
        HttpStatus: { DataType: 'Number', StringValue: '404' },
        Detail: { DataType: 'String', StringValue: detail },
      }),
    });

  it('sends a create for a project Atlas does not know to the DLQ with its code and detail, never rejects it', async () => {
    scene.atlas.failNext(
      'list',
      notFound('GROUP_NOT_FOUND', 'list', 'No group with ID 5f1e2d3c4b5a69788796a5b4 exists.'),
    );
    const { provisioner } = buildProvisioner(scene.atlas);

    await expect(provisioner.handleRecord(sqsRecord(createRequest()))).resolves.toBe('DEAD_LETTERED');
    parkedWith('GROUP_NOT_FOUND', 'No group with ID 5f1e2d3c4b5a69788796a5b4 exists.');
  });

  it.each([
    ['a missing project', 'GROUP_NOT_FOUND'],
    ['a code this version does not know', 'NOT_FOUND'],
    ['no Atlas body (another environment)', 'HTTP_404'],
  ])('never counts a delete answered 404 for %s as DELETED: the DLQ', async (_what, errorCode) => {
    const request = createRequest();
    const { provisioner } = buildProvisioner(scene.atlas);
    await provisioner.handleRecord(sqsRecord(request));
    scene.atlas.failNext('delete', notFound(errorCode, 'delete'));
    sqs.resetHistory();

    await expect(
      provisioner.handleRecord(sqsRecord({ ...request, requestId: 'del-1', action: 'delete' })),
    ).resolves.toBe('DEAD_LETTERED');

    expect(scene.table.items.get(keyOf(request))).toMatchObject({ status: 'INITIATING' });
    expect(scene.table.items.get(keyOf(request))?.endpointId).toBeDefined();
    parkedWith(errorCode, `Atlas said ${errorCode}`);
  });

  it('never counts the delete of a FAILED endpoint answered 404 for a missing project as done: the DLQ', async () => {
    const request = createRequest();
    vi.spyOn(scene.atlas, 'createEndpoint').mockResolvedValueOnce({
      id: 'c'.repeat(24),
      cloudProvider: 'AWS',
      regionName: 'US_EAST_1',
      status: 'FAILED',
      errorMessage: 'no capacity',
    });
    scene.atlas.failNext('delete', notFound('GROUP_NOT_FOUND', 'delete'));
    const { provisioner } = buildProvisioner(scene.atlas);

    await expect(provisioner.handleRecord(sqsRecord(request))).resolves.toBe('DEAD_LETTERED');

    expect(scene.table.items.get(keyOf(request))).not.toHaveProperty('recreating');
    parkedWith('GROUP_NOT_FOUND', 'Atlas said GROUP_NOT_FOUND');
  });
});

describe('Provisioner, the outbox', () => {
  const scene = provisionerScene();

  /** A key whose answers EventBridge refused `count` times: its outbox holds them. */
  async function backlog(count: number) {
    const request = createRequest();
    const { provisioner } = buildProvisioner(scene.atlas);
    await provisioner.handleRecord(sqsRecord(request));
    const item = scene.table.items.get(keyOf(request));
    if (!item) throw new Error('no item');
    const [answer] = publishedDetails();
    if (!answer) throw new Error('no answer');
    item.outbox = Object.fromEntries(
      Array.from({ length: count }, (_, i) => {
        const eventId = i.toString(16).padStart(32, '0');
        return [eventId, { ...answer, eventId }];
      }),
    );
    eventBridge.reset();
    eventBridge.on(PutEventsCommand).rejects(new Error('EventBridge is down'));
    scene.atlas.calls.length = 0;
    return { request, provisioner };
  }

  it('lets a request through while the outbox has room, keeping what EventBridge refused', async () => {
    const { request, provisioner } = await backlog(49);

    await expect(provisioner.handleRecord(sqsRecord({ ...request, requestId: 'next' }))).resolves.toBe(
      'ADOPTED',
    );
    expect(Object.keys(scene.table.items.get(keyOf(request))?.outbox ?? {})).toHaveLength(50);
  });

  it('makes a new request wait, spending no attempt, once 50 events are waiting for EventBridge', async () => {
    const { request, provisioner } = await backlog(50);

    await expect(provisioner.handleRecord(sqsRecord({ ...request, requestId: 'next' }))).resolves.toBe(
      'WAITING',
    );
    expect(sqs).not.toReceiveCommand(ChangeMessageVisibilityCommand);
    expect(sentTo(QUEUES.continuationQueueUrl)).toHaveLength(1);
    expect(scene.table.items.get(keyOf(request))?.requesters.default).not.toContain('next');
  });

  it('sends what the outbox held before the new answer, and empties it', async () => {
    const { request, provisioner } = await backlog(2);
    eventBridge.reset();
    eventBridge.on(PutEventsCommand).resolves({ FailedEntryCount: 0, Entries: [{ EventId: 'e-1' }] });

    await provisioner.handleRecord(sqsRecord({ ...request, requestId: 'next' }));

    expect(publishedDetails().map((d) => d.requestIds)).toEqual([
      [request.requestId],
      [request.requestId],
      ['next'],
    ]);
    expect(scene.table.items.get(keyOf(request))).not.toHaveProperty('outbox');
  });
});

describe('Provisioner, delete', () => {
  const scene = provisionerScene();

  it('waits to delete while a create is in doubt, and deletes what a listing after the settle period shows', async () => {
    const request = createRequest();
    scene.atlas.failNext('create', new AtlasNetworkError('create', 'timeout'));
    const { provisioner } = buildProvisioner(scene.atlas, { now: scene.now, createSettleSeconds: 30 });
    await expect(provisioner.handleRecord(sqsRecord(request))).resolves.toBe('WAITING');
    const landed = scene.endpoint(request, 'INITIATING');
    scene.atlas.calls.length = 0;
    const del = sqsRecord({ ...request, requestId: 'del-1', action: 'delete' });

    scene.clock += 29_000;
    await expect(provisioner.handleRecord(del)).resolves.toBe('WAITING');
    expect(scene.atlas.calls).toEqual([]);
    scene.clock += 1_000;
    await expect(provisioner.handleRecord(del)).resolves.toBe('DELETE_REQUESTED');

    expect(scene.atlas.calls.map((c) => [c.op, c.endpointId])).toEqual([
      ['list', undefined],
      ['delete', landed.id],
    ]);
    expect(scene.table.items.get(keyOf(request))).not.toHaveProperty('pendingCreate');
  });

  it('deletes a live endpoint rather than one Atlas is deleting already', async () => {
    const request = createRequest({ action: 'delete' });
    scene.endpoint(request, 'DELETING');
    const live = scene.endpoint(request, 'ACTIVE');
    const { provisioner } = buildProvisioner(scene.atlas);

    await expect(provisioner.handleRecord(sqsRecord(request))).resolves.toBe('DELETE_REQUESTED');

    expect(scene.atlas.calls.at(-1)).toEqual({ op: 'delete', groupId: request.groupId, endpointId: live.id });
  });

  it('calls an endpoint Atlas is deleting already DELETE_REQUESTED, without a DELETE request', async () => {
    const request = createRequest({ action: 'delete' });
    const deleting = scene.endpoint(request, 'DELETING');
    const { provisioner } = buildProvisioner(scene.atlas);

    await expect(provisioner.handleRecord(sqsRecord(request))).resolves.toBe('DELETE_REQUESTED');

    expect(scene.atlas.calls.map((c) => c.op)).toEqual(['list']);
    expect(scene.table.items.get(keyOf(request))).toMatchObject({
      status: 'DELETING',
      endpointId: deleting.id,
    });
  });

  it('takes over a key whose FAILED endpoint is being recreated: deleted, no recreation, no failure count', async () => {
    const request = createRequest();
    scene.endpoint(request, 'FAILED');
    const { provisioner } = buildProvisioner(scene.atlas);
    await expect(provisioner.handleRecord(sqsRecord(request))).resolves.toBe('RECREATING');
    scene.atlas.calls.length = 0;

    await expect(
      provisioner.handleRecord(sqsRecord({ ...request, requestId: 'del-1', action: 'delete' })),
    ).resolves.toBe('DELETE_REQUESTED');

    expect(scene.atlas.calls.map((c) => c.op)).toEqual(['list']);
    const item = scene.table.items.get(keyOf(request));
    expect(item).toMatchObject({ status: 'DELETING', action: 'delete' });
    expect(item).not.toHaveProperty('recreating');
    expect(item).not.toHaveProperty('endpointFailures');
  });

  it('lists to find what to delete when the ledger holds its endpoint as gone', async () => {
    const request = createRequest();
    const { provisioner } = buildProvisioner(scene.atlas);
    await provisioner.handleRecord(sqsRecord(request));
    const item = scene.table.items.get(keyOf(request));
    if (item) item.status = 'MISSING';
    scene.atlas.endpoints.set(request.groupId, []);
    scene.atlas.calls.length = 0;

    await expect(
      provisioner.handleRecord(sqsRecord({ ...request, requestId: 'del-1', action: 'delete' })),
    ).resolves.toBe('DELETED');

    expect(scene.atlas.calls.map((c) => c.op)).toEqual(['list']);
    expect(scene.table.items.get(keyOf(request))).not.toHaveProperty('endpointId');
  });

  it('retries a delete Atlas fails for another reason than 404', async () => {
    const request = createRequest({ action: 'delete' });
    scene.endpoint(request, 'ACTIVE');
    scene.atlas.failNext('delete', apiError(500, 'UNEXPECTED_ERROR'));
    const { provisioner } = buildProvisioner(scene.atlas);

    await expect(provisioner.handleRecord(sqsRecord(request))).rejects.toThrow(/500/);
    expect(scene.table.items.get(keyOf(request))).toMatchObject({ lastError: { code: 'UNEXPECTED_ERROR' } });
  });
});

describe('Provisioner, extra endpoints for one key', () => {
  const scene = provisionerScene();
  const SETTLE = 30;

  /** Two creates of the key time out, a listing after the settle period between them showing nothing. */
  async function twoCreatesInDoubt() {
    const request = createRequest();
    const { provisioner, metrics } = buildProvisioner(scene.atlas, {
      now: scene.now,
      createSettleSeconds: SETTLE,
    });
    scene.atlas.failNext(
      'create',
      new AtlasNetworkError('create', 'timeout'),
      new AtlasNetworkError('create', 'timeout'),
    );
    await expect(provisioner.handleRecord(sqsRecord(request))).resolves.toBe('WAITING');
    const firstSentAt = new Date(scene.clock).toISOString();
    scene.clock += SETTLE * 1000;
    await expect(provisioner.handleRecord(sqsRecord(request))).resolves.toBe('WAITING');
    scene.clock += SETTLE * 1000;
    return { request, provisioner, metrics, firstSentAt };
  }

  it('deletes one of two endpoints that two creates in doubt made, keeping the ACTIVE one', async () => {
    const { request, provisioner, metrics } = await twoCreatesInDoubt();
    const first = scene.endpoint(request, 'INITIATING');
    const second = scene.endpoint(request, 'ACTIVE');
    scene.atlas.calls.length = 0;

    await expect(provisioner.handleRecord(sqsRecord(request))).resolves.toBe('ADOPTED');

    expect(scene.atlas.calls.map((c) => [c.op, c.endpointId])).toEqual([
      ['list', undefined],
      ['delete', first.id],
    ]);
    const item = scene.table.items.get(keyOf(request));
    expect(item).toMatchObject({ endpointId: second.id, status: 'ACTIVE' });
    expect(item).not.toHaveProperty('unconfirmedCreates');
    expect(item).not.toHaveProperty('pendingCreate');
    expect(publishedDetails().filter((d) => d.outcome === 'DUPLICATE_DELETED')).toEqual([
      expect.objectContaining({ endpointId: first.id, status: 'DELETING', naturalKey: keyOf(request) }),
    ]);
    expect(metrics.addMetric).not.toHaveBeenCalledWith('DuplicateEndpoints', 'Count', expect.anything());
  });

  it('remembers the older create in doubt when one endpoint answers the newer', async () => {
    const { request, provisioner, firstSentAt } = await twoCreatesInDoubt();
    scene.endpoint(request, 'INITIATING');

    await expect(provisioner.handleRecord(sqsRecord(request))).resolves.toBe('ADOPTED');

    expect(scene.table.items.get(keyOf(request))).toMatchObject({ unconfirmedCreates: [firstSentAt] });
  });

  it('no longer counts on a create in doubt older than a day: its endpoint would have shown by now', async () => {
    const request = createRequest();
    const { provisioner, metrics } = buildProvisioner(scene.atlas, {
      now: scene.now,
      createSettleSeconds: SETTLE,
    });
    scene.atlas.failNext('create', new AtlasNetworkError('create', 'timeout'));
    await expect(provisioner.handleRecord(sqsRecord(request))).resolves.toBe('WAITING');
    scene.clock += SETTLE * 1000;
    await expect(provisioner.handleRecord(sqsRecord(request))).resolves.toBe('PROVISIONED');
    const late = scene.endpoint(request, 'INITIATING');
    const item = scene.table.items.get(keyOf(request));
    if (item) item.status = 'MISSING';
    scene.clock += 24 * 3_600_000 + 1;

    await expect(provisioner.handleRecord(sqsRecord(request))).resolves.toBe('ADOPTED');

    expect(scene.atlas.calls.filter((c) => c.op === 'delete')).toEqual([]);
    expect(publishedDetails().at(-1)).toMatchObject({ outcome: 'DUPLICATE_FOUND', endpointId: late.id });
    expect(metrics.addMetric).toHaveBeenCalledWith('DuplicateEndpoints', 'Count', 1);
  });

  it('reports, after a 409, a second endpoint that the one earlier create in doubt cannot account for', async () => {
    const request = createRequest();
    const { provisioner } = buildProvisioner(scene.atlas, { now: scene.now, createSettleSeconds: SETTLE });
    scene.atlas.failNext('create', new AtlasNetworkError('create', 'timeout'));
    await expect(provisioner.handleRecord(sqsRecord(request))).resolves.toBe('WAITING');
    scene.clock += SETTLE * 1000;
    const listed = vi.spyOn(scene.atlas, 'listEndpoints');
    listed.mockResolvedValueOnce([]);
    scene.atlas.failNext('create', apiError(409, 'CONFLICT'));
    const a = scene.endpoint(request, 'ACTIVE');
    const b = scene.endpoint(request, 'INITIATING');

    await expect(provisioner.handleRecord(sqsRecord(request))).resolves.toBe('ADOPTED');

    // The 409 answered the create (nothing was made): only the earlier create in doubt made one.
    expect(scene.atlas.calls.filter((c) => c.op === 'delete')).toEqual([]);
    expect(scene.table.items.get(keyOf(request))).toMatchObject({ endpointId: a.id });
    expect(scene.table.items.get(keyOf(request))).not.toHaveProperty('pendingCreate');
    expect(publishedDetails().at(-1)).toMatchObject({ outcome: 'DUPLICATE_FOUND', endpointId: b.id });
  });
});

describe('Provisioner, one key at a time across instances', () => {
  const scene = provisionerScene();

  it("sends a record whose key another instance's record holds to wait, rather than run beside it", async () => {
    const request = createRequest();
    scene.atlas.latencyMs = 20;
    const one = buildProvisioner(scene.atlas).provisioner;
    const other = buildProvisioner(scene.atlas).provisioner;

    const outcomes = await Promise.allSettled([
      one.handleRecord(sqsRecord(request)),
      other.handleRecord(sqsRecord({ ...request, requestId: 'same-key' })),
    ]);

    expect(outcomes.map((o) => (o.status === 'fulfilled' ? o.value : o.status))).toEqual([
      'PROVISIONED',
      'WAITING',
    ]);
    expect(scene.atlas.endpoints.get(request.groupId)).toHaveLength(1);
    expect(scene.table.items.get(keyOf(request))?.requesters.default).toEqual([request.requestId]);
  });

  it('reads a record that carries no message attributes', async () => {
    const record = sqsRecord(createRequest());
    Reflect.deleteProperty(record, 'messageAttributes');
    const { provisioner } = buildProvisioner(scene.atlas);

    await expect(provisioner.handleRecord(record)).resolves.toBe('PROVISIONED');
  });
});

describe('Provisioner, what it records', () => {
  const scene = provisionerScene();

  it('keeps the time a status began when an answer repeats it, and dates a new status from now', async () => {
    const request = createRequest();
    const { provisioner } = buildProvisioner(scene.atlas, { now: scene.now });
    await provisioner.handleRecord(sqsRecord(request));
    scene.clock += 3_600_000;

    await provisioner.handleRecord(sqsRecord({ ...request, requestId: 'again' }));
    const kept = scene.table.items.get(keyOf(request))?.statusSince;
    await provisioner.handleRecord(sqsRecord({ ...request, requestId: 'del-1', action: 'delete' }));

    expect(kept).toBe(NOW.toISOString());
    expect(publishedDetails().map((d) => [d.outcome, d.statusSince])).toEqual([
      ['PROVISIONED', NOW.toISOString()],
      ['ADOPTED', NOW.toISOString()],
      ['DELETE_REQUESTED', new Date(scene.clock).toISOString()],
      // The creates, still INITIATING, are told the delete took effect in their place.
      ['SUPERSEDED', undefined],
    ]);
    expect(scene.table.items.get(keyOf(request))?.statusSince).toBe(new Date(scene.clock).toISOString());
  });

  it('remembers at most ten unconfirmed creates of a key, forgetting the oldest', async () => {
    const request = createRequest();
    const { provisioner } = buildProvisioner(scene.atlas, { now: scene.now, createSettleSeconds: 30 });
    scene.atlas.failNext('create', new AtlasNetworkError('create', 'timeout'));
    await expect(provisioner.handleRecord(sqsRecord(request))).resolves.toBe('WAITING');
    const earlier = Array.from({ length: 10 }, (_, i) =>
      new Date(NOW.getTime() - (10 - i) * 60_000).toISOString(),
    );
    const item = scene.table.items.get(keyOf(request));
    if (item) item.unconfirmedCreates = earlier;
    scene.clock += 30_000;

    await expect(provisioner.handleRecord(sqsRecord(request))).resolves.toBe('PROVISIONED');

    expect(scene.table.items.get(keyOf(request))?.unconfirmedCreates).toEqual([
      ...earlier.slice(1),
      NOW.toISOString(),
    ]);
  });

  it('creates anew once the FAILED endpoint is gone, whatever else Atlas is still deleting', async () => {
    const request = createRequest();
    scene.atlas.seed(request.groupId, { cloudProvider: 'AWS', regionName: 'US_EAST_1', status: 'FAILED' });
    const { provisioner } = buildProvisioner(scene.atlas, { now: scene.now });
    await expect(provisioner.handleRecord(sqsRecord(request))).resolves.toBe('RECREATING');
    scene.atlas.endpoints.set(request.groupId, []);
    scene.atlas.seed(request.groupId, { cloudProvider: 'AWS', regionName: 'US_EAST_1', status: 'DELETING' });

    await expect(provisioner.handleRecord(sqsRecord(request))).resolves.toBe('PROVISIONED');
    expect(scene.table.items.get(keyOf(request))).not.toHaveProperty('recreating');
    expect(scene.table.items.get(keyOf(request))).toMatchObject({
      endpointFailures: 1,
      status: 'INITIATING',
    });
  });

  it('retries a 409 whose listing shows only an endpoint being deleted', async () => {
    const request = createRequest();
    vi.spyOn(scene.atlas, 'listEndpoints').mockResolvedValueOnce([]);
    scene.atlas.failNext('create', apiError(409, 'CONFLICT'));
    scene.atlas.seed(request.groupId, { cloudProvider: 'AWS', regionName: 'US_EAST_1', status: 'DELETING' });
    const { provisioner } = buildProvisioner(scene.atlas, { now: scene.now });

    await expect(provisioner.handleRecord(sqsRecord(request))).rejects.toThrow(/409/);
    expect(scene.table.items.get(keyOf(request))).toMatchObject({
      lastError: { code: 'CONFLICT_UNRESOLVED' },
    });
  });

  it('takes a 409 whose listing then fails as answered: retried with backoff, not in doubt', async () => {
    const request = createRequest();
    scene.atlas.failNext('create', apiError(409, 'CONFLICT'));
    const { provisioner } = buildProvisioner(scene.atlas, { now: scene.now });
    vi.spyOn(scene.atlas, 'listEndpoints')
      .mockResolvedValueOnce([])
      .mockRejectedValueOnce(apiError(503, 'SERVICE_UNAVAILABLE'));

    await expect(provisioner.handleRecord(sqsRecord(request))).rejects.toThrow(/503/);
    expect(scene.table.items.get(keyOf(request))).not.toHaveProperty('pendingCreate');
    expect(sqs).toReceiveCommandWith(ChangeMessageVisibilityCommand, { VisibilityTimeout: 1 });
  });
});

describe('Provisioner, its tuning and what it follows', () => {
  const scene = provisionerScene();

  it("takes the backoff and the follow-up spacing from its function's environment", () => {
    const env = {
      maxAttempts: 5,
      backoffBaseSeconds: 3,
      backoffCapSeconds: 600,
      followUpFirstSeconds: 15,
      followUpMaxSeconds: 240,
      requesterRegistry: [DEFAULT_ENTRY],
    } as ProvisionEnvironment;

    expect(tuningFrom(env)).toMatchObject({
      maxAttempts: 5,
      backoff: { baseSeconds: 3, capSeconds: 600 },
      followUp: { firstSeconds: 15, maxSeconds: 240 },
    });
    expect(tuningFrom(env).requesters.byQueue(DEFAULT_ENTRY.queueArn)).toEqual(DEFAULT_ENTRY);
  });

  it('follows a new endpoint whose status is the one the ledger had for the old', async () => {
    // A create in doubt, then a sweep that followed another endpoint of the key (INITIATING);
    // after the settle period Atlas lists only the endpoint the create made, INITIATING too.
    const request = createRequest();
    const { provisioner } = buildProvisioner(scene.atlas, {
      now: scene.now,
      followUp: { firstSeconds: 10, maxSeconds: 120 },
    });
    scene.atlas.failNext('create', new AtlasNetworkError('create', 'timeout'));
    await expect(provisioner.handleRecord(sqsRecord(request))).resolves.toBe('WAITING');
    Object.assign(scene.table.items.get(keyOf(request)) ?? {}, {
      status: 'INITIATING',
      endpointId: 'a'.repeat(24),
    });
    const landed = scene.atlas.seed(request.groupId, {
      cloudProvider: 'AWS',
      regionName: 'US_EAST_1',
      status: 'INITIATING',
    });
    scene.clock += 30_000;
    sqs.resetHistory();

    await expect(provisioner.handleRecord(sqsRecord(request))).resolves.toBe('ADOPTED');

    expect(followUps().map((m) => m.MessageAttributes?.EndpointId?.StringValue)).toEqual([landed.id]);
  });

  it('starts no follow-up, and drops none, for an endpoint that is settled already', async () => {
    const request = createRequest();
    scene.atlas.seed(request.groupId, { cloudProvider: 'AWS', regionName: 'US_EAST_1', status: 'ACTIVE' });
    const { provisioner, metrics } = buildProvisioner(scene.atlas, {
      followUp: { firstSeconds: 10, maxSeconds: 120 },
    });

    await expect(provisioner.handleRecord(sqsRecord(request))).resolves.toBe('ADOPTED');

    expect(followUps()).toEqual([]);
    expect(metrics.addMetric).not.toHaveBeenCalledWith('FollowUpsDropped', 'Count', 1);
  });
});

// An outage of our own AWS services (the ledger's DynamoDB, Secrets Manager) is nobody's fault in
// the request: it waits the outage out as new messages on the continuation queue, spending none
// of its attempts, longer each time, and only past maxWaits goes to the DLQ with its reason.
describe('Provisioner, our own AWS services down', () => {
  const scene = provisionerScene();
  const throttled = () =>
    new ProvisionedThroughputExceededException({
      message: 'The level of configured provisioned throughput for the table was exceeded',
      $metadata: { httpStatusCode: 400, attempts: 3 },
    });

  it('waits out a throttled ledger before any claim: no attempt spent, Atlas never called', async () => {
    const request = createRequest();
    vi.spyOn(scene.table, 'claim').mockRejectedValueOnce(throttled());
    const { provisioner, metrics } = buildProvisioner(scene.atlas);
    const record = sqsRecord(request);

    await expect(provisioner.handleRecord(record)).resolves.toBe('WAITING');

    expect(scene.atlas.calls).toEqual([]);
    expect(sqs).not.toReceiveCommand(ChangeMessageVisibilityCommand);
    expect(sentTo(QUEUES.continuationQueueUrl)).toEqual([
      expect.objectContaining({
        MessageBody: record.body,
        // The first wait: base 2 s, between half of it and all of it.
        DelaySeconds: 2,
        MessageAttributes: expect.objectContaining({
          Waits: { DataType: 'Number', StringValue: '1' },
          OriginalMessageId: { DataType: 'String', StringValue: record.messageId },
        }),
      }),
    ]);
    expect(sentTo(QUEUES.dlqUrl)).toEqual([]);
    expect(publishedDetails()).toEqual([]);
    expect(metrics.addMetric).toHaveBeenCalledWith('Waiting', 'Count', 1);
  });

  it('waits longer the more it waited, up to the backoff cap', async () => {
    const request = createRequest();
    vi.spyOn(scene.table, 'claim').mockRejectedValue(throttled());
    const { provisioner } = buildProvisioner(scene.atlas, { maxWaits: 60 });

    for (const waits of ['4', '30']) {
      await provisioner.handleRecord(
        carrying(sqsRecord(request), { OriginalMessageId: 'sender-1', Waits: waits }),
      );
    }

    // Wait 5: ceiling 2 * 2^4 = 32 s, random 0.5 -> 24 s; wait 31: the 900 s cap -> 675 s.
    expect(sentTo(QUEUES.continuationQueueUrl).map((m) => m.DelaySeconds)).toEqual([24, 675]);
  });

  it('waits out a create answered while the ledger could not record it, and adopts it after the outage', async () => {
    const request = createRequest();
    const { provisioner } = buildProvisioner(scene.atlas);
    // The create is written down, sent and answered; recording its endpoint is throttled.
    vi.spyOn(scene.table, 'settle').mockRejectedValueOnce(throttled());

    await expect(provisioner.handleRecord(sqsRecord(request))).resolves.toBe('WAITING');
    const [waited] = sentTo(QUEUES.continuationQueueUrl);
    expect(scene.atlas.endpoints.get(request.groupId)).toHaveLength(1);

    // The outage is over: the wait comes back and adopts the endpoint its create made.
    const again = carrying(sqsRecord(request), {
      OriginalMessageId: waited?.MessageAttributes?.OriginalMessageId?.StringValue ?? '',
      Waits: '1',
    });
    await expect(provisioner.handleRecord(again)).resolves.toBe('ADOPTED');

    expect(scene.atlas.calls.filter((c) => c.op === 'create')).toHaveLength(1);
    expect(scene.table.items.get(keyOf(request))).toMatchObject({
      endpointId: scene.atlas.endpoints.get(request.groupId)?.[0]?.id,
    });
  });

  it('parks the request with DEPENDENCY_UNAVAILABLE once it waited maxWaits times, naming the error', async () => {
    const request = createRequest();
    vi.spyOn(scene.table, 'claim').mockRejectedValue(throttled());
    const { provisioner, metrics } = buildProvisioner(scene.atlas, { maxWaits: 3 });

    await expect(
      provisioner.handleRecord(carrying(sqsRecord(request), { OriginalMessageId: 'sender-1', Waits: '3' })),
    ).resolves.toBe('DEAD_LETTERED');

    expect(sentTo(QUEUES.continuationQueueUrl)).toEqual([]);
    const [parked] = sentTo(QUEUES.dlqUrl);
    expect(parked?.MessageAttributes?.ErrorCode?.StringValue).toBe('DEPENDENCY_UNAVAILABLE');
    expect(parked?.MessageAttributes?.Detail?.StringValue).toContain(
      'ProvisionedThroughputExceededException',
    );
    expect(publishedDetails()).toEqual([
      expect.objectContaining({
        outcome: 'DEAD_LETTERED',
        messageId: 'sender-1',
        error: expect.objectContaining({ code: 'DEPENDENCY_UNAVAILABLE' }),
      }),
    ]);
    expect(metrics.addMetric).toHaveBeenCalledWith('DeadLettered', 'Count', 1);
  });

  it('waits out an unavailable Secrets Manager the same way', async () => {
    const request = createRequest();
    scene.atlas.failNext(
      'list',
      new CredentialsError(
        'secret "s" could not be read just now (ThrottlingException)',
        's',
        'SECRET_UNAVAILABLE',
      ),
    );
    const { provisioner } = buildProvisioner(scene.atlas);

    await expect(provisioner.handleRecord(sqsRecord(request))).resolves.toBe('WAITING');
    expect(sqs).not.toReceiveCommand(ChangeMessageVisibilityCommand);
    expect(sentTo(QUEUES.continuationQueueUrl)).toHaveLength(1);
  });
});
