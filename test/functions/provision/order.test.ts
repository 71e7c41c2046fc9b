/**
 * Request order (README "Order"): requests take effect in the order they were sent. A request
 * sent before the last one its requester applied, a wait or a retry of a request sent before the
 * key was turned to the other action, and a hand-back or follow-up of another lifecycle change
 * nothing (SUPERSEDED, naming the newer request); a create its requester's delete ended before it
 * settled is told so.
 */
import type { SendMessageCommandInput } from '@aws-sdk/client-sqs';
import type { SQSRecord } from 'aws-lambda';
import { describe, expect, it } from 'vitest';
import { AtlasNetworkError } from '#lib/errors.ts';
import type { ProvisionRequestInput } from '#messages/request.ts';
import { type RequesterEntry, Requesters } from '#messages/requesters.ts';
import { createRequest, sqsRecord } from '#test/support/sqs-events.ts';
import {
  buildProvisioner,
  continuations,
  DEFAULT_ENTRY,
  keyOf,
  provisionerScene,
  publishedDetails,
  QUEUES,
  sqs,
} from './fixtures.ts';

const SETTLE = 30;
const OPS: RequesterEntry = {
  name: 'ops',
  queueArn: 'arn:aws:sqs:us-east-1:123456789012:ops-requests',
  queueUrl: 'https://sqs.us-east-1.amazonaws.com/123456789012/ops-requests',
  dlqUrl: 'https://sqs.us-east-1.amazonaws.com/123456789012/ops-dlq',
  projects: 'ALL',
  profiles: ['default'],
  actions: ['delete'],
  operator: true,
};
/** A second requester that may create and delete, as the default one. */
const TEAM_B: RequesterEntry = {
  ...DEFAULT_ENTRY,
  name: 'team-b',
  queueArn: 'arn:aws:sqs:us-east-1:123456789012:team-b-requests',
  queueUrl: 'https://sqs.us-east-1.amazonaws.com/123456789012/team-b-requests',
  dlqUrl: 'https://sqs.us-east-1.amazonaws.com/123456789012/team-b-dlq',
};

/** A request's message as SQS delivers it from `entry`'s queue, sent at `sentAt` (epoch ms). */
function sent(
  body: ProvisionRequestInput,
  sentAt: number,
  entry: RequesterEntry = DEFAULT_ENTRY,
  attributes: Record<string, string> = {},
): SQSRecord {
  const record = sqsRecord(body);
  record.eventSourceARN = entry.queueArn;
  record.attributes.SentTimestamp = String(sentAt);
  record.messageAttributes = attributesOf(attributes);
  return record;
}

const attributesOf = (attributes: Record<string, string | undefined>): SQSRecord['messageAttributes'] =>
  Object.fromEntries(
    Object.entries(attributes).map(([name, stringValue]) => [
      name,
      { dataType: 'String', stringValue, stringListValues: [], binaryListValues: [] },
    ]),
  );

/** A message the provisioner sent to its continuation queue, as SQS then delivers it. */
function delivered(message: SendMessageCommandInput | undefined): SQSRecord {
  if (!message) throw new Error('no continuation was sent');
  const record = sqsRecord(message.MessageBody ?? '');
  record.eventSourceARN = QUEUES.continuationQueueArn;
  record.messageAttributes = attributesOf(
    Object.fromEntries(Object.entries(message.MessageAttributes ?? {}).map(([n, v]) => [n, v.StringValue])),
  );
  return record;
}

describe('Provisioner, request order', () => {
  const scene = provisionerScene();
  const build = (options: Parameters<typeof buildProvisioner>[1] = {}) =>
    buildProvisioner(scene.atlas, {
      now: scene.now,
      createSettleSeconds: SETTLE,
      requesters: new Requesters([DEFAULT_ENTRY, OPS, TEAM_B]),
      ...options,
    }).provisioner;
  const creates = () => scene.atlas.calls.filter((c) => c.op === 'create');

  /** A create whose key's endpoint is FAILED: deleted to be created anew, the create waiting. */
  async function recreating(provisioner: ReturnType<typeof build>) {
    const create = createRequest();
    scene.atlas.seed(create.groupId, { cloudProvider: 'AWS', regionName: 'US_EAST_1', status: 'FAILED' });
    const record = sent(create, scene.clock - 1_000);
    await expect(provisioner.handleRecord(record)).resolves.toBe('RECREATING');
    const [wait] = continuations();
    sqs.resetHistory();
    return { create, record, wait };
  }

  describe.each([
    ['its own requester', DEFAULT_ENTRY],
    ['an operator', OPS],
  ])('a delete by %s while a FAILED endpoint is recreated', (_, deleter) => {
    it('stays deleted: the recreate wait that returns after it creates nothing and is answered SUPERSEDED', async () => {
      const provisioner = build();
      const { create, record, wait } = await recreating(provisioner);
      // The wait carries the create's place in the order.
      expect(wait?.MessageAttributes?.SentAt).toEqual({
        DataType: 'Number',
        StringValue: record.attributes.SentTimestamp,
      });
      const del = { ...create, requestId: 'delete-1', action: 'delete' as const };
      await expect(provisioner.handleRecord(sent(del, scene.clock, deleter))).resolves.toBe(
        'DELETE_REQUESTED',
      );
      scene.clock += SETTLE * 1000;

      await expect(provisioner.handleRecord(delivered(wait))).resolves.toBe('SUPERSEDED');

      expect(creates()).toEqual([]);
      expect(scene.table.items.get(keyOf(create))).toMatchObject({ action: 'delete', status: 'DELETING' });
      expect(scene.table.items.get(keyOf(create))).not.toHaveProperty('lease');
      expect(publishedDetails().at(-1)).toMatchObject({
        outcome: 'SUPERSEDED',
        requester: 'default',
        requestIds: [create.requestId],
        messageId: record.messageId,
        supersededBy: 'delete-1',
        action: 'create',
      });
      expect(continuations()).toEqual([]);
    });
  });

  it('a delete during a create in doubt stays deleted: the create waiting after it creates nothing', async () => {
    const provisioner = build();
    const create = createRequest();
    scene.atlas.failNext('create', new AtlasNetworkError('create', 'timeout'));
    const createRecord = sent(create, scene.clock - 1_000);
    // A create in doubt waits for a listing after its settle period (issue 20, point 5).
    await expect(provisioner.handleRecord(createRecord)).resolves.toBe('WAITING');
    const [createWait] = continuations();
    // Atlas made it anyway; a delete arrives while the create is in doubt and waits for the settle period.
    scene.atlas.seed(create.groupId, { cloudProvider: 'AWS', regionName: 'US_EAST_1', status: 'INITIATING' });
    scene.clock += 5_000;
    const del = { ...create, requestId: 'delete-1', action: 'delete' as const };
    const delRecord = sent(del, scene.clock, OPS);
    await expect(provisioner.handleRecord(delRecord)).resolves.toBe('WAITING');
    const deleteWait = continuations().at(-1);
    expect(deleteWait?.MessageAttributes?.SentAt?.StringValue).toBe(String(scene.clock));
    scene.clock += SETTLE * 1000;
    await expect(provisioner.handleRecord(delivered(deleteWait))).resolves.toBe('DELETE_REQUESTED');

    await expect(provisioner.handleRecord(delivered(createWait))).resolves.toBe('SUPERSEDED');

    expect(creates()).toHaveLength(1);
    expect(scene.table.items.get(keyOf(create))).toMatchObject({
      action: 'delete',
      lifecycle: { messageId: delRecord.messageId, requestId: 'delete-1', requester: 'ops' },
    });
    expect(publishedDetails().at(-1)).toMatchObject({
      outcome: 'SUPERSEDED',
      requestIds: [create.requestId],
      supersededBy: 'delete-1',
    });
  });

  it('a hand-back queued just before a delete creates nothing', async () => {
    const provisioner = build();
    const create = createRequest();
    const createRecord = sent(create, scene.clock - 1_000);
    await expect(provisioner.handleRecord(createRecord)).resolves.toBe('PROVISIONED');
    const [endpoint] = scene.atlas.endpoints.get(create.groupId) ?? [];
    if (!endpoint) throw new Error('no endpoint');
    endpoint.status = 'FAILED';
    // The checker hands the FAILED key back, for the lifecycle the create started.
    const handBack = sqsRecord(create);
    handBack.eventSourceARN = QUEUES.continuationQueueArn;
    handBack.messageAttributes = attributesOf({ Requester: 'default', Lifecycle: createRecord.messageId });
    const del = { ...create, requestId: 'delete-1', action: 'delete' as const };
    await expect(provisioner.handleRecord(sent(del, scene.clock))).resolves.toBe('DELETE_REQUESTED');

    await expect(provisioner.handleRecord(handBack)).resolves.toBe('SUPERSEDED');

    expect(creates()).toHaveLength(1);
    expect(scene.atlas.calls.at(-1)).toMatchObject({ op: 'delete' });
    expect(scene.table.items.get(keyOf(create))).toMatchObject({ action: 'delete', status: 'DELETING' });
  });

  it('a follow-up of an older lifecycle just stops, without reading Atlas', async () => {
    const provisioner = build({ followUp: { firstSeconds: 10, maxSeconds: 30 } });
    const create = createRequest();
    await expect(provisioner.handleRecord(sent(create, scene.clock - 1_000))).resolves.toBe('PROVISIONED');
    const [followUp] = continuations();
    const del = { ...create, requestId: 'delete-1', action: 'delete' as const };
    await expect(provisioner.handleRecord(sent(del, scene.clock))).resolves.toBe('DELETE_REQUESTED');
    const calls = scene.atlas.calls.length;

    await expect(provisioner.handleRecord(delivered(followUp))).resolves.toBe('FOLLOWED');

    expect(scene.atlas.calls).toHaveLength(calls);
  });

  describe('one requester sends create, delete, create for a key', () => {
    const orders = [
      ['in order', [0, 1, 2], ['PROVISIONED', 'DELETE_REQUESTED', 'PROVISIONED']],
      ['delete first', [1, 0, 2], ['DELETED', 'SUPERSEDED', 'PROVISIONED']],
      // The first create asks for what the last one made: it adopts it.
      ['last first', [2, 1, 0], ['PROVISIONED', 'SUPERSEDED', 'ADOPTED']],
      ['last create before the delete', [0, 2, 1], ['PROVISIONED', 'ADOPTED', 'SUPERSEDED']],
    ] as const;
    it.each(orders)('delivered %s, the key ends as the last request says', async (_, order, outcomes) => {
      const provisioner = build();
      const first = createRequest({ requestId: 'create-1' });
      const requests = [
        first,
        { ...first, requestId: 'delete-2', action: 'delete' as const },
        { ...first, requestId: 'create-3' },
      ];
      const records = requests.map((r, i) => sent(r, scene.clock - 3_000 + i * 1_000));

      const answered = [];
      for (const i of order) answered.push(await provisioner.handleRecord(records[i] as SQSRecord));

      expect(answered).toEqual(outcomes);
      const live = (scene.atlas.endpoints.get(first.groupId) ?? []).filter((e) => e.status !== 'DELETING');
      expect(live).toHaveLength(1);
      expect(scene.table.items.get(keyOf(first))).toMatchObject({
        action: 'create',
        applied: { default: { requestId: 'create-3', sentAt: scene.clock - 1_000 } },
      });
      for (const superseded of publishedDetails().filter((d) => d.outcome === 'SUPERSEDED' && d.messageId))
        expect(superseded.supersededBy).toMatch(/^(delete-2|create-3)$/);
    });
  });

  it('an older request of one requester is answered SUPERSEDED without calling Atlas, and a newer one takes effect', async () => {
    const provisioner = build();
    const create = createRequest();
    const del = { ...create, requestId: 'delete-2', action: 'delete' as const };
    await expect(provisioner.handleRecord(sent(del, scene.clock))).resolves.toBe('DELETED');
    const calls = scene.atlas.calls.length;

    await expect(provisioner.handleRecord(sent(create, scene.clock - 1_000))).resolves.toBe('SUPERSEDED');

    expect(scene.atlas.calls).toHaveLength(calls);
    expect(publishedDetails().at(-1)).toMatchObject({
      outcome: 'SUPERSEDED',
      requestIds: [create.requestId],
      supersededBy: 'delete-2',
    });
    // A create sent after the delete takes effect.
    await expect(
      provisioner.handleRecord(sent({ ...create, requestId: 'c-3' }, scene.clock + 1)),
    ).resolves.toBe('PROVISIONED');
  });

  it('tells the requester of a create still INITIATING that its own delete took effect in its place', async () => {
    const provisioner = build();
    const create = createRequest();
    await expect(provisioner.handleRecord(sent(create, scene.clock - 1_000))).resolves.toBe('PROVISIONED');
    const del = { ...create, requestId: 'delete-2', action: 'delete' as const };

    await expect(provisioner.handleRecord(sent(del, scene.clock))).resolves.toBe('DELETE_REQUESTED');

    expect(publishedDetails().at(-1)).toMatchObject({
      outcome: 'SUPERSEDED',
      requester: 'default',
      requestIds: [create.requestId],
      supersededBy: 'delete-2',
      action: 'create',
      status: 'DELETING',
    });
    expect(publishedDetails().at(-1)).not.toHaveProperty('messageId');
  });

  it('answers an older delete SUPERSEDED with the endpoint the newer create made, as a fact of its own', async () => {
    const provisioner = build();
    const create = createRequest({ requestId: 'create-3' });
    await expect(provisioner.handleRecord(sent(create, scene.clock))).resolves.toBe('PROVISIONED');
    const [endpoint] = scene.atlas.endpoints.get(create.groupId) ?? [];
    const del = { ...create, requestId: 'delete-2', action: 'delete' as const };
    const delRecord = sent(del, scene.clock - 1_000);

    await expect(provisioner.handleRecord(delRecord)).resolves.toBe('SUPERSEDED');

    const [answer, superseded] = publishedDetails();
    expect(superseded).toMatchObject({
      outcome: 'SUPERSEDED',
      requestIds: ['delete-2'],
      messageId: delRecord.messageId,
      supersededBy: 'create-3',
      status: 'INITIATING',
      endpointId: endpoint?.id,
    });
    expect(superseded?.eventId).not.toBe(answer?.eventId);
  });

  it('answers SUPERSEDED without an endpointId when the key has no endpoint', async () => {
    const provisioner = build();
    const create = createRequest();
    const del = { ...create, requestId: 'delete-2', action: 'delete' as const };
    await expect(provisioner.handleRecord(sent(del, scene.clock))).resolves.toBe('DELETED');

    await expect(provisioner.handleRecord(sent(create, scene.clock - 1_000))).resolves.toBe('SUPERSEDED');

    expect(publishedDetails().at(-1)?.outcome).toBe('SUPERSEDED');
    expect(Object.keys(publishedDetails().at(-1) ?? {})).not.toContain('endpointId');
  });

  it('keeps the lifecycle the first create started through a second create and a release', async () => {
    const provisioner = build();
    const create = createRequest({ requestId: 'create-1' });
    const first = sent(create, scene.clock - 2_000);
    await expect(provisioner.handleRecord(first)).resolves.toBe('PROVISIONED');
    const started = {
      messageId: first.messageId,
      sentAt: scene.clock - 2_000,
      requestId: 'create-1',
      requester: 'default',
      action: 'create',
    };
    expect(scene.table.items.get(keyOf(create))?.lifecycle).toEqual(started);

    await provisioner.handleRecord(sent({ ...create, requestId: 'b-create' }, scene.clock - 1_000, TEAM_B));
    const release = { ...create, requestId: 'b-delete', action: 'delete' as const };
    await expect(provisioner.handleRecord(sent(release, scene.clock, TEAM_B))).resolves.toBe('RELEASED');

    expect(scene.table.items.get(keyOf(create))).toMatchObject({ action: 'create', lifecycle: started });
  });

  describe('a replay from the requester DLQ', () => {
    it('keeps the place its SentAt gives it', async () => {
      const provisioner = build();
      const create = createRequest();
      const del = { ...create, requestId: 'delete-2', action: 'delete' as const };
      await provisioner.handleRecord(sent(del, scene.clock));

      const replay = sent(create, scene.clock + 60_000, DEFAULT_ENTRY, {
        SentAt: String(scene.clock - 1_000),
      });
      await expect(provisioner.handleRecord(replay)).resolves.toBe('SUPERSEDED');
    });

    it.each([
      ['later than the message', (sentAt: number) => String(sentAt + 1)],
      ['more than 15 days older', (sentAt: number) => String(sentAt - 15 * 86_400_000 - 1)],
      ['not a number', () => '12e3'],
    ])('is rejected, changing nothing, when its SentAt is %s', async (_, value) => {
      const provisioner = build();
      const create = createRequest();

      const replay = sent(create, scene.clock, DEFAULT_ENTRY, { SentAt: value(scene.clock) });
      await expect(provisioner.handleRecord(replay)).resolves.toBe('REJECTED');

      expect(scene.atlas.calls).toEqual([]);
      expect(publishedDetails().at(-1)?.error?.detail).toMatch(/^message attribute "SentAt" must be/);
    });

    it("may not carry Lifecycle, the provisioner's own attribute", async () => {
      const provisioner = build();
      const record = sent(createRequest(), scene.clock, DEFAULT_ENTRY, { Lifecycle: 'x' });
      await expect(provisioner.handleRecord(record)).resolves.toBe('REJECTED');
      expect(publishedDetails().at(-1)?.error?.detail).toMatch(/"Lifecycle" is reserved/);
    });
  });
});
