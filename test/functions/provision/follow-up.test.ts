/**
 * Follow-ups: after a create, an adoption of an endpoint in progress or a delete, the key is looked
 * at again (one GET) on a growing delay until its endpoint settles, and the requester hears the
 * change as soon as Atlas has made it, as the same fact the status checker would announce.
 */
import { Logger } from '@aws-lambda-powertools/logger';
import { PutEventsCommand } from '@aws-sdk/client-eventbridge';
import type { SendMessageCommandInput } from '@aws-sdk/client-sqs';
import { SendMessageCommand } from '@aws-sdk/client-sqs';
import type { SQSRecord } from 'aws-lambda';
import { describe, expect, it, vi } from 'vitest';
import type { StatusChangedDetail } from '#events/schema.ts';
import { statusChange } from '#events/status-change.ts';
import { MAX_OUTBOX } from '#ledger/item.ts';
import { AtlasApiError, AtlasNetworkError } from '#lib/errors.ts';
import { MAX_FOLLOW_UPS } from '#provision/provisioner.ts';
import { captureOutput } from '#test/support/handler-module.ts';
import { createRequest, sqsRecord } from '#test/support/sqs-events.ts';
import {
  buildProvisioner,
  continuations,
  eventBridge,
  followUps,
  keyOf,
  NOW,
  provisionerScene,
  publishedDetails,
  QUEUES,
  sqs,
} from './fixtures.ts';

const FOLLOW_UP = { firstSeconds: 10, maxSeconds: 120 };

describe('Provisioner, follow-ups', () => {
  const scene = provisionerScene();
  const build = () => buildProvisioner(scene.atlas, { now: scene.now, followUp: FOLLOW_UP });

  const parked = () =>
    sqs
      .commandCalls(SendMessageCommand)
      .map((c) => c.args[0].input)
      .filter((m) => m.QueueUrl !== QUEUES.continuationQueueUrl);

  /** The record SQS delivers for a message the provisioner sent. */
  const delivered = (message: SendMessageCommandInput | undefined): SQSRecord => {
    if (!message?.MessageBody) throw new Error('no message');
    const record = sqsRecord(message.MessageBody);
    record.eventSourceARN = QUEUES.continuationQueueArn;
    record.messageAttributes = Object.fromEntries(
      Object.entries(message.MessageAttributes ?? {}).map(([name, v]) => [
        name,
        {
          dataType: v.DataType ?? 'String',
          stringValue: v.StringValue,
          stringListValues: [],
          binaryListValues: [],
        },
      ]),
    );
    return record;
  };

  /** Provisions a create (INITIATING) and returns the first follow-up it scheduled. */
  async function provisioned() {
    const request = createRequest();
    const { provisioner, metrics } = build();
    await expect(provisioner.handleRecord(sqsRecord(request, { messageId: 'sender-id' }))).resolves.toBe(
      'PROVISIONED',
    );
    const [first] = followUps();
    return {
      request,
      provisioner,
      metrics,
      first,
      endpoint: scene.atlas.endpoints.get(request.groupId)?.[0],
    };
  }

  it('follows a new endpoint: the first follow-up after firstSeconds, carrying the original body and messageId', async () => {
    const { request, endpoint } = await provisioned();
    expect(followUps()).toEqual([
      expect.objectContaining({
        MessageBody: JSON.stringify(request),
        DelaySeconds: 10,
        MessageAttributes: expect.objectContaining({
          FollowUp: { DataType: 'Number', StringValue: '1' },
          EndpointId: { DataType: 'String', StringValue: endpoint?.id },
          OriginalMessageId: { DataType: 'String', StringValue: 'sender-id' },
        }),
      }),
    ]);
  });

  it('looks with one GET, never lists or creates, and comes back twice as late, capped', async () => {
    const { provisioner, first } = await provisioned();
    scene.atlas.calls.length = 0;
    let record = delivered(first);
    const delays: Array<number | undefined> = [];
    for (let i = 0; i < 6; i++) {
      sqs.resetHistory();
      await expect(provisioner.handleRecord(record)).resolves.toBe('FOLLOWED');
      const [next] = followUps();
      delays.push(next?.DelaySeconds);
      record = delivered(next);
    }
    expect(scene.atlas.calls.map((c) => c.op)).toEqual(['get', 'get', 'get', 'get', 'get', 'get']);
    expect(delays).toEqual([20, 40, 80, 120, 120, 120]);
    expect(publishedDetails().filter((e) => e.outcome === 'STATUS_CHANGED')).toEqual([]);
  });

  it('announces ACTIVE as soon as Atlas says so, as the same fact (eventId) the checker would, and stops', async () => {
    const { request, provisioner, first, endpoint } = await provisioned();
    if (!endpoint) throw new Error('no endpoint');
    endpoint.status = 'ACTIVE';
    scene.clock += 10_000;
    const before = { ...scene.table.items.get(keyOf(request)) } as NonNullable<
      ReturnType<typeof scene.table.items.get>
    >;
    sqs.resetHistory();

    await expect(provisioner.handleRecord(delivered(first))).resolves.toBe('FOLLOWED');

    const item = scene.table.items.get(keyOf(request));
    expect(item).toMatchObject({ status: 'ACTIVE', statusSince: new Date(scene.clock).toISOString() });
    expect(item).not.toHaveProperty('lease');
    expect(item).not.toHaveProperty('outbox');
    const changed = publishedDetails().filter((e) => e.outcome === 'STATUS_CHANGED');
    const [expected] = statusChange(before, { status: 'ACTIVE' }, new Date(scene.clock)).events;
    expect(changed).toEqual([expect.objectContaining({ eventId: expected?.eventId, status: 'ACTIVE' })]);
    expect(changed[0]).toMatchObject({ previousStatus: 'INITIATING', requestIds: [request.requestId] });
    expect(followUps()).toEqual([]);
  });

  it.each([
    {
      name: 'a 429 with Retry-After',
      error: new AtlasApiError({
        status: 429,
        errorCode: 'RATE_LIMITED',
        retryAfterSeconds: 37,
        operation: 'get',
      }),
      delay: 37,
    },
    {
      name: 'a 503',
      error: new AtlasApiError({ status: 503, errorCode: 'SERVICE_UNAVAILABLE', operation: 'get' }),
      delay: 10,
    },
    { name: 'a timeout', error: new AtlasNetworkError('get', 'timeout'), delay: 10 },
  ])('asks again later after $name, never retrying the record or parking it', async ({ error, delay }) => {
    const { provisioner, first, request } = await provisioned();
    scene.atlas.failNext('get', error);
    sqs.resetHistory();

    await expect(provisioner.handleRecord(delivered(first))).resolves.toBe('FOLLOWED');

    expect(followUps()).toEqual([
      expect.objectContaining({
        DelaySeconds: delay,
        MessageAttributes: expect.objectContaining({ FollowUp: { DataType: 'Number', StringValue: '2' } }),
      }),
    ]);
    expect(parked()).toEqual([]);
    expect(scene.table.items.get(keyOf(request))).toMatchObject({ status: 'INITIATING' });
    expect(scene.table.items.get(keyOf(request))).not.toHaveProperty('lease');
  });

  it('drops a follow-up Atlas refuses (403) or one past the chain bound, with a metric, never parking it', async () => {
    const { provisioner, first, metrics } = await provisioned();
    scene.atlas.failNext('get', new AtlasApiError({ status: 403, errorCode: 'FORBIDDEN', operation: 'get' }));
    sqs.resetHistory();
    await expect(provisioner.handleRecord(delivered(first))).resolves.toBe('FOLLOW_UP_DROPPED');

    const last = delivered(first);
    const number = last.messageAttributes.FollowUp;
    if (number) number.stringValue = String(MAX_FOLLOW_UPS);
    await expect(provisioner.handleRecord(last)).resolves.toBe('FOLLOW_UP_DROPPED');

    expect(followUps()).toEqual([]);
    expect(parked()).toEqual([]);
    expect(metrics.addMetric).toHaveBeenCalledWith('FollowUpsDropped', 'Count', 1);
  });

  it('never keeps a key busy: a key a request holds is looked at later, without calling Atlas', async () => {
    const { provisioner, first, request } = await provisioned();
    const item = scene.table.items.get(keyOf(request));
    if (!item) throw new Error('no item');
    item.lease = { owner: 'someone', expiresAt: scene.clock + 60_000 };
    scene.atlas.calls.length = 0;
    sqs.resetHistory();

    await expect(provisioner.handleRecord(delivered(first))).resolves.toBe('FOLLOWED');

    expect(scene.atlas.calls).toEqual([]);
    expect(followUps()).toEqual([expect.objectContaining({ DelaySeconds: 20 })]);
    expect(scene.table.items.get(keyOf(request))?.lease?.owner).toBe('someone');
  });

  it('stops when the key moved on: another endpoint, or a settled status', async () => {
    const { provisioner, first, request } = await provisioned();
    const item = scene.table.items.get(keyOf(request));
    if (!item) throw new Error('no item');
    scene.atlas.calls.length = 0;
    sqs.resetHistory();

    item.endpointId = 'f'.repeat(24);
    await expect(provisioner.handleRecord(delivered(first))).resolves.toBe('FOLLOWED');
    item.endpointId = first?.MessageAttributes?.EndpointId?.StringValue;
    item.status = 'ACTIVE';
    await expect(provisioner.handleRecord(delivered(first))).resolves.toBe('FOLLOWED');

    expect(scene.atlas.calls).toEqual([]);
    expect(continuations()).toEqual([]);
  });

  it('hands a FAILED create back to the provisioner, which deletes it to create it anew', async () => {
    const { provisioner, first, request, endpoint } = await provisioned();
    if (!endpoint) throw new Error('no endpoint');
    endpoint.status = 'FAILED';
    endpoint.errorMessage = 'bucket policy denied';
    sqs.resetHistory();

    await expect(provisioner.handleRecord(delivered(first))).resolves.toBe('FOLLOWED');

    expect(scene.table.items.get(keyOf(request))).toMatchObject({ status: 'FAILED' });
    expect(publishedDetails()).toContainEqual(
      expect.objectContaining({
        outcome: 'STATUS_CHANGED',
        status: 'FAILED',
        errorMessage: 'bucket policy denied',
      }),
    );
    const [handBack] = continuations();
    expect(handBack?.MessageAttributes?.FollowUp).toBeUndefined();
    expect(JSON.parse(handBack?.MessageBody ?? '{}')).toMatchObject({
      action: 'create',
      requestId: request.requestId,
    });
    scene.atlas.calls.length = 0;
    await expect(provisioner.handleRecord(delivered(handBack))).resolves.toBe('RECREATING');
    expect(scene.atlas.calls.map((c) => c.op)).toEqual(['list', 'delete']);
  });

  it('answers a key the status checker handed back with requestIds only: its message id is no sender one', async () => {
    const { provisioner, first, request, endpoint } = await provisioned();
    if (!endpoint) throw new Error('no endpoint');
    endpoint.status = 'FAILED';
    await provisioner.handleRecord(delivered(first));
    const [handBack] = continuations().filter((m) => m.MessageAttributes?.FollowUp === undefined);
    if (!handBack) throw new Error('no hand-back');
    // As the checker sends it (hand-back.ts): its requester and lifecycle, no sender's messageId.
    const { OriginalMessageId: _sender, ...attributes } = handBack.MessageAttributes ?? {};
    eventBridge.resetHistory();

    await expect(
      provisioner.handleRecord(delivered({ ...handBack, MessageAttributes: attributes })),
    ).resolves.toBe('RECREATING');

    const [recreating] = publishedDetails();
    expect(recreating).toMatchObject({ outcome: 'RECREATING', requestIds: [request.requestId] });
    expect(recreating).not.toHaveProperty('messageId');
  });

  it('follows a delete until the endpoint is gone (404), then announces DELETED', async () => {
    const { provisioner, request, endpoint } = await provisioned();
    if (!endpoint) throw new Error('no endpoint');
    endpoint.status = 'ACTIVE';
    const item = scene.table.items.get(keyOf(request));
    if (item) item.status = 'ACTIVE';
    sqs.resetHistory();
    const del = { ...request, requestId: 'delete-1', action: 'delete' as const };
    await expect(provisioner.handleRecord(sqsRecord(del))).resolves.toBe('DELETE_REQUESTED');
    const [first] = followUps();
    expect(first).toBeDefined();
    scene.atlas.endpoints.set(request.groupId, []);

    await expect(provisioner.handleRecord(delivered(first))).resolves.toBe('FOLLOWED');

    expect(scene.table.items.get(keyOf(request))).toMatchObject({ status: 'DELETED' });
    expect(publishedDetails()).toContainEqual(
      expect.objectContaining({ outcome: 'DELETED', status: 'DELETED', requestIds: ['delete-1'] }),
    );
    expect(followUps()).toHaveLength(1);
  });

  it('does not start a second chain for a request that changes nothing (a duplicate message)', async () => {
    const { provisioner, request } = await provisioned();
    sqs.resetHistory();
    await expect(provisioner.handleRecord(sqsRecord({ ...request, requestId: 'again' }))).resolves.toBe(
      'ADOPTED',
    );
    expect(followUps()).toEqual([]);
  });

  it('follows an endpoint in progress that a create adopts from Atlas', async () => {
    const request = createRequest();
    const found = scene.atlas.seed(request.groupId, {
      cloudProvider: 'AWS',
      regionName: request.regionName,
      status: 'PENDING_RECREATION',
    });
    const { provisioner } = build();
    await expect(provisioner.handleRecord(sqsRecord(request))).resolves.toBe('ADOPTED');
    expect(followUps()).toEqual([
      expect.objectContaining({
        DelaySeconds: 10,
        MessageAttributes: expect.objectContaining({
          EndpointId: { DataType: 'String', StringValue: found.id },
        }),
      }),
    ]);
  });

  it('does not follow what is settled already: an ACTIVE adoption, or PENDING_ACCEPTANCE, which waits on a person', async () => {
    const { provisioner } = build();
    for (const status of ['ACTIVE', 'PENDING_ACCEPTANCE'] as const) {
      const request = createRequest();
      scene.atlas.seed(request.groupId, { cloudProvider: 'AWS', regionName: request.regionName, status });
      await expect(provisioner.handleRecord(sqsRecord(request))).resolves.toBe('ADOPTED');
    }
    expect(followUps()).toEqual([]);
  });

  it('reads the key again on the next follow-up when it moved on while Atlas was asked', async () => {
    const { provisioner, first, request, endpoint } = await provisioned();
    if (!endpoint) throw new Error('no endpoint');
    endpoint.status = 'ACTIVE';
    // Another writer (a request answered, a checker run) moves the item between read and write.
    const recordCheck = scene.table.recordCheck.bind(scene.table);
    scene.table.recordCheck = async (...args) => {
      const item = scene.table.items.get(keyOf(request));
      if (item) item.updatedAt = new Date(scene.clock + 1).toISOString();
      return recordCheck(...args);
    };
    sqs.resetHistory();

    await expect(provisioner.handleRecord(delivered(first))).resolves.toBe('FOLLOWED');

    expect(scene.table.items.get(keyOf(request))).toMatchObject({ status: 'INITIATING' });
    expect(publishedDetails().filter((e) => e.outcome === 'STATUS_CHANGED')).toEqual([]);
    expect(followUps()).toEqual([
      expect.objectContaining({
        MessageAttributes: expect.objectContaining({ FollowUp: { DataType: 'Number', StringValue: '2' } }),
      }),
    ]);
  });

  it('drops a follow-up whose body it cannot read, without calling Atlas or parking it', async () => {
    const { provisioner, first } = await provisioned();
    const broken = delivered(first);
    broken.body = '{"requestId":';
    scene.atlas.calls.length = 0;
    sqs.resetHistory();
    await expect(provisioner.handleRecord(broken)).resolves.toBe('FOLLOW_UP_DROPPED');
    expect(scene.atlas.calls).toEqual([]);
    expect(sqs.commandCalls(SendMessageCommand)).toEqual([]);
  });

  /** A follow-up record like `record`, carrying another FollowUp number. */
  const numbered = (record: SQSRecord, number: number): SQSRecord => {
    const attribute = record.messageAttributes.FollowUp;
    if (attribute) attribute.stringValue = String(number);
    return record;
  };

  it('counts each look at Atlas and does not record a status that did not change', async () => {
    const { provisioner, first, request, metrics } = await provisioned();
    const writes = scene.table.writes.length;

    await expect(provisioner.handleRecord(delivered(first))).resolves.toBe('FOLLOWED');

    expect(metrics.addMetric).toHaveBeenCalledWith('FollowUps', 'Count', 1);
    expect(scene.table.writes.slice(writes)).toEqual([]);
    expect(scene.table.items.get(keyOf(request))).toMatchObject({ status: 'INITIATING' });
  });

  it('reports a created endpoint that Atlas no longer knows (404) as MISSING, and stops', async () => {
    const { provisioner, first, request } = await provisioned();
    scene.atlas.endpoints.set(request.groupId, []);
    sqs.resetHistory();

    await expect(provisioner.handleRecord(delivered(first))).resolves.toBe('FOLLOWED');

    expect(scene.table.items.get(keyOf(request))).toMatchObject({ status: 'MISSING' });
    expect(publishedDetails().at(-1)).toMatchObject({ outcome: 'MISSING', previousStatus: 'INITIATING' });
    expect(followUps()).toEqual([]);
  });

  it.each([
    ['a missing project', 'GROUP_NOT_FOUND'],
    ['a code this version does not know', 'NOT_FOUND'],
  ])(
    'never reads a GET answered 404 for %s as the endpoint gone: dropped, nothing recorded',
    async (_what, errorCode) => {
      const { provisioner, first, request } = await provisioned();
      scene.atlas.failNext('get', new AtlasApiError({ status: 404, errorCode, operation: 'get' }));
      sqs.resetHistory();
      eventBridge.resetHistory();

      await expect(provisioner.handleRecord(delivered(first))).resolves.toBe('FOLLOW_UP_DROPPED');

      expect(scene.table.items.get(keyOf(request))).toMatchObject({ status: 'INITIATING' });
      expect(publishedDetails()).toEqual([]);
      expect(followUps()).toEqual([]);
    },
  );

  it('keeps following a status that changed but has not settled', async () => {
    const { provisioner, first, request, endpoint } = await provisioned();
    if (!endpoint) throw new Error('no endpoint');
    endpoint.status = 'PENDING_RECREATION';
    sqs.resetHistory();

    await expect(provisioner.handleRecord(delivered(first))).resolves.toBe('FOLLOWED');

    expect(scene.table.items.get(keyOf(request))).toMatchObject({ status: 'PENDING_RECREATION' });
    expect(followUps()).toEqual([
      expect.objectContaining({
        DelaySeconds: 20,
        MessageAttributes: expect.objectContaining({ FollowUp: { DataType: 'Number', StringValue: '2' } }),
      }),
    ]);
  });

  it("hands a FAILED create back at once, under the sender's messageId, as a request that has not waited", async () => {
    const { provisioner, first, endpoint } = await provisioned();
    if (!endpoint) throw new Error('no endpoint');
    endpoint.status = 'FAILED';
    sqs.resetHistory();

    await provisioner.handleRecord(delivered(first));

    expect(continuations()).toEqual([
      {
        QueueUrl: QUEUES.continuationQueueUrl,
        MessageBody: expect.any(String),
        MessageAttributes: {
          Requester: { DataType: 'String', StringValue: 'default' },
          OriginalMessageId: { DataType: 'String', StringValue: 'sender-id' },
          Waits: { DataType: 'Number', StringValue: '0' },
          // The hand-back continues the lifecycle its create started (README "Order").
          Lifecycle: { DataType: 'String', StringValue: 'sender-id' },
        },
      },
    ]);
  });

  it('hands back no delete whose endpoint FAILED: it is recorded and announced only', async () => {
    const { provisioner, request, endpoint } = await provisioned();
    if (!endpoint) throw new Error('no endpoint');
    const del = { ...request, requestId: 'delete-1', action: 'delete' as const };
    await expect(provisioner.handleRecord(sqsRecord(del))).resolves.toBe('DELETE_REQUESTED');
    const [first] = followUps().slice(-1);
    endpoint.status = 'FAILED';
    sqs.resetHistory();

    await expect(provisioner.handleRecord(delivered(first))).resolves.toBe('FOLLOWED');

    expect(scene.table.items.get(keyOf(request))).toMatchObject({ status: 'FAILED', action: 'delete' });
    expect(continuations()).toEqual([]);
  });

  it('announces what the outbox still held together with the change, and empties it', async () => {
    const { provisioner, first, request, endpoint } = await provisioned();
    if (!endpoint) throw new Error('no endpoint');
    const item = scene.table.items.get(keyOf(request));
    if (!item) throw new Error('no item');
    const earlier = { ...publishedDetails()[0], eventId: 'b'.repeat(32) } as NonNullable<
      ReturnType<typeof publishedDetails>[number]
    >;
    item.outbox = { [earlier.eventId]: earlier };
    endpoint.status = 'ACTIVE';

    await expect(provisioner.handleRecord(delivered(first))).resolves.toBe('FOLLOWED');

    expect(
      publishedDetails()
        .slice(1)
        .map((d) => [d.eventId, d.outcome]),
    ).toEqual([
      [earlier.eventId, 'PROVISIONED'],
      [expect.any(String), 'STATUS_CHANGED'],
    ]);
    expect(scene.table.items.get(keyOf(request))).toMatchObject({ status: 'ACTIVE' });
    expect(scene.table.items.get(keyOf(request))).not.toHaveProperty('outbox');
  });

  it('looks at a key whose lease ran out', async () => {
    const { provisioner, first, request } = await provisioned();
    const item = scene.table.items.get(keyOf(request));
    if (item) item.lease = { owner: 'crashed', expiresAt: scene.clock - 1 };
    scene.atlas.calls.length = 0;

    await expect(provisioner.handleRecord(delivered(first))).resolves.toBe('FOLLOWED');

    expect(scene.atlas.calls.map((c) => c.op)).toEqual(['get']);
  });

  it('leaves a key alone while its lease lasts, to the millisecond', async () => {
    const { provisioner, first, request } = await provisioned();
    const item = scene.table.items.get(keyOf(request));
    if (item) item.lease = { owner: 'someone', expiresAt: scene.clock };
    scene.atlas.calls.length = 0;

    await expect(provisioner.handleRecord(delivered(first))).resolves.toBe('FOLLOWED');

    expect(scene.atlas.calls).toEqual([]);
  });

  it.each([
    { name: 'a key being recreated', change: { recreating: true } },
    { name: 'a create in doubt', change: { pendingCreate: { sentAt: NOW.toISOString() } } },
    { name: 'a key with no ledger item', change: undefined },
  ])('stops following $name: the provisioner has it again', async ({ change }) => {
    const { provisioner, first, request } = await provisioned();
    if (change) Object.assign(scene.table.items.get(keyOf(request)) ?? {}, change);
    else scene.table.items.delete(keyOf(request));
    scene.atlas.calls.length = 0;
    sqs.resetHistory();

    await expect(provisioner.handleRecord(delivered(first))).resolves.toBe('FOLLOWED');

    expect(scene.atlas.calls).toEqual([]);
    expect(continuations()).toEqual([]);
  });

  it('sends the last follow-up the chain allows, and drops the one after it', async () => {
    const { provisioner, first, metrics } = await provisioned();
    sqs.resetHistory();

    await expect(provisioner.handleRecord(numbered(delivered(first), MAX_FOLLOW_UPS - 1))).resolves.toBe(
      'FOLLOWED',
    );
    const [last] = followUps();
    expect(last?.MessageAttributes?.FollowUp).toEqual({
      DataType: 'Number',
      StringValue: String(MAX_FOLLOW_UPS),
    });
    expect(metrics.addMetric).not.toHaveBeenCalledWith('FollowUpsDropped', 'Count', 1);
  });

  it.each([
    {
      name: 'a 503 late in the chain waits the current spacing',
      error: 503,
      retryAfter: undefined,
      delay: 80,
    },
    { name: 'a Retry-After sooner than the spacing is kept', error: 429, retryAfter: 2, delay: 2 },
    { name: 'a Retry-After of 0 waits a second', error: 429, retryAfter: 0, delay: 1 },
  ])('asks Atlas again later: $name', async ({ error, retryAfter, delay }) => {
    const { provisioner, first } = await provisioned();
    scene.atlas.failNext(
      'get',
      new AtlasApiError({
        status: error,
        errorCode: 'BUSY',
        operation: 'get',
        ...(retryAfter !== undefined && { retryAfterSeconds: retryAfter }),
      }),
    );
    sqs.resetHistory();

    await expect(provisioner.handleRecord(numbered(delivered(first), 4))).resolves.toBe('FOLLOWED');

    expect(followUps()).toEqual([
      expect.objectContaining({
        DelaySeconds: delay,
        MessageAttributes: expect.objectContaining({ FollowUp: { DataType: 'Number', StringValue: '5' } }),
      }),
    ]);
  });

  it('drops a follow-up it cannot send again, with a metric, and the sweep settles the key', async () => {
    const { provisioner, first, metrics } = await provisioned();
    sqs.on(SendMessageCommand).rejects(new Error('SQS is down'));

    await expect(provisioner.handleRecord(delivered(first))).resolves.toBe('FOLLOW_UP_DROPPED');

    expect(metrics.addMetric).toHaveBeenCalledWith('FollowUpsDropped', 'Count', 1);
  });

  it('provisions all the same when the first follow-up cannot be sent', async () => {
    sqs.on(SendMessageCommand).rejects(new Error('SQS is down'));
    const request = createRequest();
    const { provisioner, metrics } = build();

    await expect(provisioner.handleRecord(sqsRecord(request))).resolves.toBe('PROVISIONED');

    expect(scene.table.items.get(keyOf(request))).toMatchObject({ status: 'INITIATING' });
    expect(metrics.addMetric).toHaveBeenCalledWith('FollowUpsDropped', 'Count', 1);
    expect(metrics.addMetric).toHaveBeenCalledWith('Provisioned', 'Count', 1);
  });

  it('drops a follow-up that names no endpoint, without calling Atlas', async () => {
    const { provisioner, first } = await provisioned();
    const record = delivered(first);
    delete record.messageAttributes.EndpointId;
    scene.atlas.calls.length = 0;
    sqs.resetHistory();

    await expect(provisioner.handleRecord(record)).resolves.toBe('FOLLOW_UP_DROPPED');
    expect(scene.atlas.calls).toEqual([]);
    expect(continuations()).toEqual([]);
  });

  it('drops the follow-ups still queued once a deployment turns them off', async () => {
    const { first } = await provisioned();
    const { provisioner } = buildProvisioner(scene.atlas, { now: scene.now });
    sqs.resetHistory();

    await expect(provisioner.handleRecord(delivered(first))).resolves.toBe('FOLLOW_UP_DROPPED');
    expect(continuations()).toEqual([]);
  });

  it('starts no follow-up without follow-ups configured, nor for a FAILED endpoint being recreated', async () => {
    const plain = buildProvisioner(scene.atlas, { now: scene.now });
    await expect(plain.provisioner.handleRecord(sqsRecord(createRequest()))).resolves.toBe('PROVISIONED');
    const request = createRequest();
    scene.atlas.seed(request.groupId, { cloudProvider: 'AWS', regionName: 'US_EAST_1', status: 'FAILED' });
    await expect(build().provisioner.handleRecord(sqsRecord(request))).resolves.toBe('RECREATING');

    expect(followUps()).toEqual([]);
  });

  describe('an endpoint Atlas recreates under a new id', () => {
    /** Atlas replaces the key's endpoint: the old one is gone, these stand in its place. */
    const replace = (groupId: string, ...statuses: string[]) => {
      const [old] = scene.atlas.endpoints.get(groupId) ?? [];
      if (!old) throw new Error('no endpoint');
      scene.atlas.endpoints.set(groupId, []);
      return statuses.map((status) =>
        scene.atlas.seed(groupId, {
          cloudProvider: old.cloudProvider,
          regionName: old.regionName,
          vpcRegionName: old.vpcRegionName ?? old.regionName,
          status,
        }),
      );
    };
    /** The endpoint a follow-up message names, and its number. */
    const followed = (message: SendMessageCommandInput | undefined) => ({
      endpointId: message?.MessageAttributes?.EndpointId?.StringValue,
      number: message?.MessageAttributes?.FollowUp?.StringValue,
    });

    it('follows PENDING_RECREATION to the new endpoint: one RECREATED event naming both ids, then its statuses', async () => {
      const { request, provisioner, first, endpoint } = await provisioned();
      if (!endpoint) throw new Error('no endpoint');
      endpoint.status = 'PENDING_RECREATION';
      sqs.resetHistory();
      await expect(provisioner.handleRecord(delivered(first))).resolves.toBe('FOLLOWED');
      expect(scene.table.items.get(keyOf(request))?.status).toBe('PENDING_RECREATION');
      const [second] = followUps();
      expect(followed(second)).toEqual({ endpointId: endpoint.id, number: '2' });

      const [successor] = replace(request.groupId, 'INITIATING');
      sqs.resetHistory();
      eventBridge.resetHistory();
      await expect(provisioner.handleRecord(delivered(second))).resolves.toBe('FOLLOWED');
      expect(scene.table.items.get(keyOf(request))).toMatchObject({
        endpointId: successor?.id,
        status: 'INITIATING',
      });
      expect(publishedDetails()).toEqual([
        expect.objectContaining({
          outcome: 'RECREATED',
          endpointId: successor?.id,
          previousEndpointId: endpoint.id,
          previousStatus: 'PENDING_RECREATION',
          status: 'INITIATING',
          requestIds: [request.requestId],
        }),
      ]);
      const [third] = followUps();
      expect(followed(third)).toEqual({ endpointId: successor?.id, number: '3' });

      if (!successor) throw new Error('no successor');
      successor.status = 'ACTIVE';
      sqs.resetHistory();
      eventBridge.resetHistory();
      await expect(provisioner.handleRecord(delivered(third))).resolves.toBe('FOLLOWED');
      expect(publishedDetails()).toEqual([
        expect.objectContaining({ outcome: 'STATUS_CHANGED', endpointId: successor.id, status: 'ACTIVE' }),
      ]);
      expect(followUps()).toEqual([]);
    });

    it('waits for the new endpoint while only the old one is gone, announcing nothing', async () => {
      const { request, provisioner, first, endpoint } = await provisioned();
      if (!endpoint) throw new Error('no endpoint');
      endpoint.status = 'PENDING_RECREATION';
      await provisioner.handleRecord(delivered(first));
      const [, second] = followUps();
      replace(request.groupId);
      sqs.resetHistory();
      eventBridge.resetHistory();
      await expect(provisioner.handleRecord(delivered(second))).resolves.toBe('FOLLOWED');
      expect(scene.table.items.get(keyOf(request))).toMatchObject({
        endpointId: endpoint.id,
        status: 'PENDING_RECREATION',
      });
      expect(publishedDetails()).toEqual([]);
      expect(followed(followUps()[0])).toEqual({ endpointId: endpoint.id, number: '3' });
    });

    it('adopts the one endpoint that took the place of a vanished one, naming both ids', async () => {
      const { request, provisioner, first, endpoint } = await provisioned();
      const [successor] = replace(request.groupId, 'INITIATING');
      sqs.resetHistory();
      eventBridge.resetHistory();
      await expect(provisioner.handleRecord(delivered(first))).resolves.toBe('FOLLOWED');
      expect(scene.table.items.get(keyOf(request))?.endpointId).toBe(successor?.id);
      expect(publishedDetails()).toEqual([
        expect.objectContaining({
          outcome: 'ADOPTED',
          endpointId: successor?.id,
          previousEndpointId: endpoint?.id,
        }),
      ]);
      expect(followed(followUps()[0])).toEqual({ endpointId: successor?.id, number: '2' });
    });

    it('reports the key MISSING, as before, when two endpoints took its place', async () => {
      const { request, provisioner, first } = await provisioned();
      replace(request.groupId, 'INITIATING', 'ACTIVE');
      sqs.resetHistory();
      eventBridge.resetHistory();
      await expect(provisioner.handleRecord(delivered(first))).resolves.toBe('FOLLOWED');
      expect(scene.table.items.get(keyOf(request))?.status).toBe('MISSING');
      expect(publishedDetails().map((e) => e.outcome)).toEqual(['MISSING']);
      expect(followUps()).toEqual([]);
    });

    it('follows the one new endpoint beside others Atlas is deleting, and one a listing still shows under the old id', async () => {
      const { request, provisioner, first, endpoint } = await provisioned();
      if (!endpoint) throw new Error('no endpoint');
      // The GET no longer finds the endpoint while the listing still shows it, beside one being
      // deleted and the one that took its place.
      scene.atlas.failNext(
        'get',
        new AtlasApiError({ status: 404, errorCode: 'RESOURCE_NOT_FOUND', operation: 'get' }),
      );
      scene.atlas.seed(request.groupId, {
        cloudProvider: 'AWS',
        regionName: 'US_EAST_1',
        status: 'DELETING',
      });
      const successor = scene.atlas.seed(request.groupId, {
        cloudProvider: 'AWS',
        regionName: 'US_EAST_1',
        status: 'INITIATING',
      });
      eventBridge.resetHistory();

      await expect(provisioner.handleRecord(delivered(first))).resolves.toBe('FOLLOWED');

      expect(scene.table.items.get(keyOf(request))).toMatchObject({
        endpointId: successor.id,
        status: 'INITIATING',
      });
      expect(publishedDetails().map((e) => [e.outcome, e.endpointId])).toEqual([['ADOPTED', successor.id]]);
    });

    it('reads a deleted key with one GET, never a listing, when its endpoint is gone', async () => {
      const { provisioner, request } = await provisioned();
      const del = { ...request, requestId: 'delete-1', action: 'delete' as const };
      await expect(provisioner.handleRecord(sqsRecord(del))).resolves.toBe('DELETE_REQUESTED');
      const [first] = followUps().slice(-1);
      scene.atlas.endpoints.set(request.groupId, []);
      scene.atlas.calls.length = 0;

      await expect(provisioner.handleRecord(delivered(first))).resolves.toBe('FOLLOWED');

      expect(scene.atlas.calls.map((c) => c.op)).toEqual(['get']);
      expect(scene.table.items.get(keyOf(request))).toMatchObject({ status: 'DELETED' });
    });

    it('comes back twice as late while the new endpoint is not listed yet', async () => {
      const { request, provisioner, first, endpoint } = await provisioned();
      if (!endpoint) throw new Error('no endpoint');
      endpoint.status = 'PENDING_RECREATION';
      await provisioner.handleRecord(delivered(first));
      const [, second] = followUps();
      replace(request.groupId);
      sqs.resetHistory();

      await expect(provisioner.handleRecord(delivered(second))).resolves.toBe('FOLLOWED');

      expect(followUps()).toEqual([expect.objectContaining({ DelaySeconds: 40 })]);
    });

    it('follows the new endpoint at the next spacing, and hands nothing back while it is in progress', async () => {
      const { request, provisioner, first } = await provisioned();
      const [successor] = replace(request.groupId, 'INITIATING');
      sqs.resetHistory();

      await expect(provisioner.handleRecord(delivered(first))).resolves.toBe('FOLLOWED');

      expect(continuations()).toEqual([
        expect.objectContaining({
          DelaySeconds: 20,
          MessageAttributes: expect.objectContaining({
            FollowUp: { DataType: 'Number', StringValue: '2' },
            EndpointId: { DataType: 'String', StringValue: successor?.id },
          }),
        }),
      ]);
    });

    it('stops at a new endpoint that is ACTIVE already', async () => {
      const { request, provisioner, first } = await provisioned();
      const [successor] = replace(request.groupId, 'ACTIVE');
      sqs.resetHistory();

      await expect(provisioner.handleRecord(delivered(first))).resolves.toBe('FOLLOWED');

      expect(scene.table.items.get(keyOf(request))).toMatchObject({
        endpointId: successor?.id,
        status: 'ACTIVE',
      });
      expect(continuations()).toEqual([]);
    });

    it("hands a new endpoint that is FAILED back to the provisioner, under the sender's messageId", async () => {
      const { request, provisioner, first } = await provisioned();
      const [successor] = replace(request.groupId, 'FAILED');
      sqs.resetHistory();

      await expect(provisioner.handleRecord(delivered(first))).resolves.toBe('FOLLOWED');

      expect(scene.table.items.get(keyOf(request))).toMatchObject({
        endpointId: successor?.id,
        status: 'FAILED',
      });
      expect(continuations()).toEqual([
        {
          QueueUrl: QUEUES.continuationQueueUrl,
          MessageBody: expect.any(String),
          MessageAttributes: {
            Requester: { DataType: 'String', StringValue: 'default' },
            OriginalMessageId: { DataType: 'String', StringValue: 'sender-id' },
            Waits: { DataType: 'Number', StringValue: '0' },
            Lifecycle: { DataType: 'String', StringValue: 'sender-id' },
          },
        },
      ]);
      expect(JSON.parse(continuations()[0]?.MessageBody ?? '{}')).toMatchObject({
        action: 'create',
        requestId: request.requestId,
      });
    });

    it('keeps the event naming the new endpoint in the outbox when EventBridge refuses it', async () => {
      const { request, provisioner, first } = await provisioned();
      const [successor] = replace(request.groupId, 'INITIATING');
      eventBridge.reset();
      eventBridge.on(PutEventsCommand).rejects(new Error('EventBridge is down'));

      await expect(provisioner.handleRecord(delivered(first))).resolves.toBe('FOLLOWED');

      expect(Object.values(scene.table.items.get(keyOf(request))?.outbox ?? {})).toEqual([
        expect.objectContaining({ outcome: 'ADOPTED', endpointId: successor?.id }),
      ]);
    });

    it('records the new endpoint beside what the outbox still held, and announces both', async () => {
      const { request, provisioner, first } = await provisioned();
      const item = scene.table.items.get(keyOf(request));
      if (!item) throw new Error('no item');
      const earlier = { ...publishedDetails()[0], eventId: 'b'.repeat(32) } as NonNullable<
        ReturnType<typeof publishedDetails>[number]
      >;
      item.outbox = { [earlier.eventId]: earlier };
      const [successor] = replace(request.groupId, 'INITIATING');
      eventBridge.resetHistory();

      await expect(provisioner.handleRecord(delivered(first))).resolves.toBe('FOLLOWED');

      expect(scene.table.items.get(keyOf(request))).toMatchObject({ endpointId: successor?.id });
      expect(publishedDetails().map((d) => [d.eventId, d.outcome])).toEqual([
        [earlier.eventId, 'PROVISIONED'],
        [expect.any(String), 'ADOPTED'],
      ]);
      expect(scene.table.items.get(keyOf(request))).not.toHaveProperty('outbox');
    });

    it('announces nothing and reads the key again later when it moved on while Atlas was asked', async () => {
      const { request, provisioner, first, endpoint } = await provisioned();
      replace(request.groupId, 'INITIATING');
      const recordCheck = scene.table.recordCheck.bind(scene.table);
      scene.table.recordCheck = async (...args) => {
        const item = scene.table.items.get(keyOf(request));
        if (item) item.updatedAt = new Date(scene.clock + 1).toISOString();
        return recordCheck(...args);
      };
      sqs.resetHistory();
      eventBridge.resetHistory();

      await expect(provisioner.handleRecord(delivered(first))).resolves.toBe('FOLLOWED');

      expect(scene.table.items.get(keyOf(request))).toMatchObject({
        endpointId: endpoint?.id,
        status: 'INITIATING',
      });
      expect(publishedDetails()).toEqual([]);
      expect(followUps()).toEqual([
        expect.objectContaining({
          DelaySeconds: 20,
          MessageAttributes: expect.objectContaining({
            FollowUp: { DataType: 'Number', StringValue: '2' },
            EndpointId: { DataType: 'String', StringValue: endpoint?.id },
          }),
        }),
      ]);
    });
  });

  describe('a status change', () => {
    it.each(['ACTIVE', 'PENDING_RECREATION'])(
      'hands a create back only when its endpoint FAILED, not when it turns %s',
      async (status) => {
        const { provisioner, first, endpoint } = await provisioned();
        if (!endpoint) throw new Error('no endpoint');
        endpoint.status = status;
        sqs.resetHistory();

        await expect(provisioner.handleRecord(delivered(first))).resolves.toBe('FOLLOWED');

        expect(continuations().filter((m) => m.MessageAttributes?.FollowUp === undefined)).toEqual([]);
      },
    );

    it('keeps the change in the outbox when EventBridge refuses it', async () => {
      const { request, provisioner, first, endpoint } = await provisioned();
      if (!endpoint) throw new Error('no endpoint');
      endpoint.status = 'ACTIVE';
      eventBridge.reset();
      eventBridge.on(PutEventsCommand).rejects(new Error('EventBridge is down'));

      await expect(provisioner.handleRecord(delivered(first))).resolves.toBe('FOLLOWED');

      expect(Object.values(scene.table.items.get(keyOf(request))?.outbox ?? {})).toEqual([
        expect.objectContaining({ outcome: 'STATUS_CHANGED', status: 'ACTIVE' }),
      ]);
    });

    it('comes back at the next spacing when the key moved on while Atlas was asked', async () => {
      const { request, provisioner, first, endpoint } = await provisioned();
      if (!endpoint) throw new Error('no endpoint');
      endpoint.status = 'ACTIVE';
      const recordCheck = scene.table.recordCheck.bind(scene.table);
      scene.table.recordCheck = async (...args) => {
        const item = scene.table.items.get(keyOf(request));
        if (item) item.updatedAt = new Date(scene.clock + 1).toISOString();
        return recordCheck(...args);
      };
      sqs.resetHistory();

      await expect(provisioner.handleRecord(delivered(first))).resolves.toBe('FOLLOWED');

      expect(followUps()).toEqual([expect.objectContaining({ DelaySeconds: 20 })]);
    });
  });

  it('names on every log line of a follow-up its message, its number and its request', async () => {
    const lines: string[] = [];
    const { request, first, endpoint } = await provisioned();
    if (!endpoint) throw new Error('no endpoint');
    endpoint.status = 'FAILED';
    for (const stream of [process.stdout, process.stderr]) {
      vi.spyOn(stream, 'write').mockImplementation((chunk: string | Uint8Array) => {
        lines.push(String(chunk));
        return true;
      });
    }
    const logger = new Logger({ serviceName: 'provisioner', logLevel: 'INFO' });
    const { provisioner } = buildProvisioner(scene.atlas, { now: scene.now, followUp: FOLLOW_UP, logger });

    await expect(provisioner.handleRecord(delivered(first))).resolves.toBe('FOLLOWED');

    const entries = lines
      .flatMap((l) => l.split('\n'))
      .filter(Boolean)
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(entries.length).toBeGreaterThan(1);
    for (const entry of entries) {
      expect(entry).toMatchObject({ messageId: 'sender-id', followUp: 1, requestId: request.requestId });
    }
  });

  describe('what it logs of what it gives up or swallows', () => {
    /** Delivers `record` to a provisioner logging at WARN; the JSON lines it wrote. */
    async function logsOf(record: SQSRecord, outcome: string) {
      const lines = captureOutput();
      const logger = new Logger({ serviceName: 'provisioner', logLevel: 'WARN' });
      const { provisioner } = buildProvisioner(scene.atlas, { now: scene.now, followUp: FOLLOW_UP, logger });
      await expect(provisioner.handleRecord(record)).resolves.toBe(outcome);
      vi.mocked(process.stdout.write).mockRestore();
      vi.mocked(process.stderr.write).mockRestore();
      return lines.map((l) => JSON.parse(l) as Record<string, unknown>);
    }

    it('says why it dropped a follow-up: the failure Atlas answered, or the chain bound reached', async () => {
      const { first } = await provisioned();
      scene.atlas.failNext(
        'get',
        new AtlasApiError({ status: 403, errorCode: 'FORBIDDEN', operation: 'get' }),
      );
      const refused = await logsOf(delivered(first), 'FOLLOW_UP_DROPPED');
      const bounded = await logsOf(numbered(delivered(first), MAX_FOLLOW_UPS), 'FOLLOW_UP_DROPPED');

      expect(refused).toEqual([
        expect.objectContaining({
          level: 'WARN',
          reason: expect.any(String),
          failure: expect.objectContaining({ code: 'FORBIDDEN', httpStatus: 403 }),
        }),
      ]);
      expect(bounded).toEqual([
        expect.objectContaining({ level: 'WARN', reason: expect.any(String), followUps: MAX_FOLLOW_UPS }),
      ]);
    });

    it('logs the Atlas failure it will ask again about, with the delay', async () => {
      const { first } = await provisioned();
      scene.atlas.failNext(
        'get',
        new AtlasApiError({ status: 503, errorCode: 'SERVICE_UNAVAILABLE', operation: 'get' }),
      );

      const entries = await logsOf(delivered(first), 'FOLLOWED');

      expect(entries).toContainEqual(
        expect.objectContaining({
          level: 'WARN',
          failure: expect.objectContaining({ code: 'SERVICE_UNAVAILABLE' }),
          delaySeconds: 10,
        }),
      );
    });

    it('logs the SQS error of a follow-up it could not send, naming the endpoint', async () => {
      const { first, endpoint } = await provisioned();
      sqs.on(SendMessageCommand).rejects(new Error('SQS is down'));

      const entries = await logsOf(delivered(first), 'FOLLOW_UP_DROPPED');

      expect(entries).toContainEqual(
        expect.objectContaining({
          level: 'WARN',
          endpointId: endpoint?.id,
          error: expect.objectContaining({ message: 'SQS is down' }),
        }),
      );
    });
  });

  describe('one live chain per key', () => {
    it("records the chain its first follow-up carries as the key's live chain", async () => {
      const { request, first } = await provisioned();
      const chain = scene.table.items.get(keyOf(request))?.followChain;
      expect(chain).toEqual(expect.any(String));
      expect(first?.MessageAttributes?.FollowChain).toEqual({ DataType: 'String', StringValue: chain });
    });

    it('stops a follow-up of a chain the key no longer records, without calling Atlas or sending another', async () => {
      const { request, provisioner, first } = await provisioned();
      // Another request (or the checker) started a chain for the key since.
      const item = scene.table.items.get(keyOf(request));
      if (item) item.followChain = 'a-newer-chain';
      scene.atlas.calls.length = 0;
      sqs.resetHistory();

      await expect(provisioner.handleRecord(delivered(first))).resolves.toBe('FOLLOWED');

      expect(scene.atlas.calls).toEqual([]);
      expect(followUps()).toEqual([]);
    });

    it('keeps one chain when two requests start one each: the older chain stops at its next look', async () => {
      const { request, provisioner, first } = await provisioned();
      // A second request lists the key (a create of it in doubt long settled) and follows what it adopts anew.
      const item = scene.table.items.get(keyOf(request));
      if (item) {
        item.status = 'REQUESTED';
        item.pendingCreate = { sentAt: new Date(scene.clock - 3_600_000).toISOString() };
      }
      sqs.resetHistory();
      await expect(
        provisioner.handleRecord(sqsRecord({ ...request, requestId: 'second' }, { messageId: 'second-id' })),
      ).resolves.toBe('ADOPTED');
      const [second] = followUps();
      expect(second).toBeDefined();
      scene.atlas.calls.length = 0;
      sqs.resetHistory();

      await expect(provisioner.handleRecord(delivered(first))).resolves.toBe('FOLLOWED');
      expect(scene.atlas.calls).toEqual([]);
      expect(followUps()).toEqual([]);

      await expect(provisioner.handleRecord(delivered(second))).resolves.toBe('FOLLOWED');
      expect(scene.atlas.calls.map((c) => c.op)).toEqual(['get']);
      expect(followUps()).toHaveLength(1);
    });
  });

  describe('the invocation deadline', () => {
    const START = 1_800_000_000_000;
    const left = (ms: number) => ({ getRemainingTimeInMillis: () => ms });

    it('looks at Atlas with just the time for one call and the margin, bounding the call by it', async () => {
      const { provisioner, first } = await provisioned();
      vi.spyOn(Date, 'now').mockReturnValue(START);
      const get = vi.spyOn(scene.atlas, 'getEndpoint');
      const timeout = vi.spyOn(AbortSignal, 'timeout');

      await expect(provisioner.handleRecord(delivered(first), left(13_000))).resolves.toBe('FOLLOWED');

      expect(get).toHaveBeenCalledWith(expect.any(String), 'AWS', expect.any(String), {
        signal: expect.any(AbortSignal),
      });
      expect(timeout).toHaveBeenCalledWith(10_000);
    });

    it('sends the next follow-up of the chain shortly when less is left, without calling Atlas', async () => {
      const { provisioner, first } = await provisioned();
      vi.spyOn(Date, 'now').mockReturnValue(START);
      scene.atlas.calls.length = 0;
      sqs.resetHistory();

      await expect(provisioner.handleRecord(delivered(first), left(12_999))).resolves.toBe('FOLLOWED');

      expect(scene.atlas.calls).toEqual([]);
      expect(followUps()).toEqual([
        expect.objectContaining({
          DelaySeconds: 2,
          MessageAttributes: expect.objectContaining({ FollowUp: { DataType: 'Number', StringValue: '2' } }),
        }),
      ]);
    });

    it('advances the chain even short of time: its last follow-up is dropped, never sent again as itself', async () => {
      const { provisioner, first, metrics } = await provisioned();
      vi.spyOn(Date, 'now').mockReturnValue(START);
      const last = delivered(first);
      last.messageAttributes.FollowUp = {
        ...last.messageAttributes.FollowUp,
        stringValue: String(MAX_FOLLOW_UPS),
      } as never;
      scene.atlas.calls.length = 0;
      sqs.resetHistory();

      await expect(provisioner.handleRecord(last, left(12_999))).resolves.toBe('FOLLOW_UP_DROPPED');

      expect(scene.atlas.calls).toEqual([]);
      expect(followUps()).toEqual([]);
      expect(metrics.addMetric).toHaveBeenCalledWith('FollowUpsDropped', 'Count', 1);
    });

    it('bounds no call when no invocation clock is given', async () => {
      const { provisioner, first } = await provisioned();
      const get = vi.spyOn(scene.atlas, 'getEndpoint');

      await provisioner.handleRecord(delivered(first));

      expect(get).toHaveBeenCalledWith(expect.any(String), 'AWS', expect.any(String), {});
    });
  });

  describe('the outbox bound, while EventBridge refuses', () => {
    const refuse = () => {
      eventBridge.reset();
      eventBridge.on(PutEventsCommand).rejects(new Error('EventBridge is down'));
    };
    /** Fills the key's outbox to `count` events: answers of other messages, and `statuses` of its endpoint. */
    const fill = (key: string, count: number, statuses: Array<Partial<StatusChangedDetail>> = []) => {
      const item = scene.table.items.get(key);
      const answer = Object.values(item?.outbox ?? {})[0] ?? publishedDetails()[0];
      if (!item || !answer) throw new Error('no item or answer');
      // Earlier statuses of its endpoint, as a follow-up or the sweep recorded them.
      const events = statuses.map((fields, i) => ({
        ...statusChange(item, { status: 'INITIATING' }, new Date(scene.clock - 1_000 * (i + 1))).events[0],
        ...fields,
      }));
      for (let i = events.length; i < count; i++)
        events.push({ ...answer, eventId: i.toString(16).padStart(32, '0'), messageId: `m-${i}` });
      item.outbox = Object.fromEntries(events.map((e) => [e.eventId, e]));
      return events;
    };

    it("records a change at the bound in place of the endpoint's pending status", async () => {
      const { request, provisioner, first, endpoint } = await provisioned();
      if (!endpoint) throw new Error('no endpoint');
      const [older] = fill(keyOf(request), MAX_OUTBOX, [{ status: 'AVAILABLE' }]);
      refuse();
      endpoint.status = 'ACTIVE';
      scene.clock += 10_000;

      await expect(provisioner.handleRecord(delivered(first))).resolves.toBe('FOLLOWED');

      const item = scene.table.items.get(keyOf(request));
      expect(item).toMatchObject({ status: 'ACTIVE' });
      expect(Object.keys(item?.outbox ?? {})).toHaveLength(MAX_OUTBOX);
      expect(item?.outbox).not.toHaveProperty(older?.eventId ?? '');
      expect(Object.values(item?.outbox ?? {})).toContainEqual(
        expect.objectContaining({ outcome: 'STATUS_CHANGED', status: 'ACTIVE' }),
      );
    });

    it('leaves a change unrecorded while the outbox is full of answers, and looks again later', async () => {
      const { request, provisioner, first, endpoint } = await provisioned();
      if (!endpoint) throw new Error('no endpoint');
      fill(keyOf(request), MAX_OUTBOX);
      refuse();
      endpoint.status = 'ACTIVE';
      scene.clock += 10_000;
      sqs.resetHistory();

      await expect(provisioner.handleRecord(delivered(first))).resolves.toBe('FOLLOWED');

      const item = scene.table.items.get(keyOf(request));
      expect(item).toMatchObject({ status: 'INITIATING' });
      expect(Object.keys(item?.outbox ?? {})).toHaveLength(MAX_OUTBOX);
      expect(followUps()).toHaveLength(1);
    });

    it('keeps one pending status of an endpoint flapping INITIATING <-> AVAILABLE through the whole chain, beside the answer', async () => {
      refuse();
      const { request, provisioner, first, endpoint } = await provisioned();
      if (!endpoint) throw new Error('no endpoint');
      let record = delivered(first);
      let flaps = 0;
      for (; flaps < MAX_FOLLOW_UPS - 1; flaps++) {
        endpoint.status = flaps % 2 === 0 ? 'AVAILABLE' : 'INITIATING';
        scene.clock += 30_000;
        sqs.resetHistory();
        await expect(provisioner.handleRecord(record)).resolves.toBe('FOLLOWED');
        record = delivered(followUps()[0]);
      }

      const item = scene.table.items.get(keyOf(request));
      const pending = Object.values(item?.outbox ?? {});
      expect(flaps).toBe(39);
      expect(pending.map((e) => e.outcome).sort()).toEqual(['PROVISIONED', 'STATUS_CHANGED']);
      expect(pending.find((e) => e.outcome === 'STATUS_CHANGED')).toMatchObject({ status: item?.status });
    });
  });
});
