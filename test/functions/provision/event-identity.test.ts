/**
 * Every outcome delivered twice: a requester that de-duplicates on eventId hears each fact once,
 * and different facts never share an eventId.
 */
import { describe, expect, it } from 'vitest';
import { MAX_ANSWERED } from '#ledger/ledger.ts';
import { AtlasApiError } from '#lib/errors.ts';
import { createRequest, sqsRecord } from '#test/support/sqs-events.ts';
import { buildProvisioner, provisionerScene, publishedDetails } from './fixtures.ts';

describe('event identity', () => {
  const scene = provisionerScene();

  it('gives each fact one eventId however often its message is delivered, one outcome after another', async () => {
    // Prepare: one message per outcome, each delivered twice
    const { provisioner } = buildProvisioner(scene.atlas, { maxAttempts: 1 });
    const created = createRequest();
    const adopted = createRequest();
    scene.atlas.seed(adopted.groupId, { cloudProvider: 'AWS', regionName: 'US_EAST_1', status: 'ACTIVE' });
    const deleted = createRequest({ action: 'delete' });
    const deleting = createRequest();
    const dead = createRequest();
    const rejected = { ...createRequest(), regionName: 'MARS_1' };
    const records = [
      sqsRecord(created),
      sqsRecord(adopted),
      sqsRecord(deleted),
      sqsRecord(dead),
      sqsRecord(rejected),
    ];

    // Act
    for (const record of records) {
      if (record.body.includes(dead.requestId)) scene.atlas.failNext('list', apiError(), apiError());
      await provisioner.handleRecord(record);
      await provisioner.handleRecord(record);
    }
    await provisioner.handleRecord(sqsRecord(deleting));
    const deleteRecord = sqsRecord({ ...deleting, requestId: 'retire-1', action: 'delete' });
    await provisioner.handleRecord(deleteRecord);
    await provisioner.handleRecord(deleteRecord);

    // Assess: ten deliveries answered, each fact once after de-duplication
    const events = publishedDetails();
    const unique = events.filter((e, i) => events.findIndex((f) => f.eventId === e.eventId) === i);
    const perOutcome = (list: typeof events) => {
      const counts: Record<string, number> = {};
      for (const e of list) counts[e.outcome] = (counts[e.outcome] ?? 0) + 1;
      return counts;
    };
    expect(perOutcome(events)).toEqual({
      PROVISIONED: 3,
      ADOPTED: 2,
      DELETED: 2,
      DEAD_LETTERED: 2,
      REJECTED: 2,
      DELETE_REQUESTED: 2,
      // The create still INITIATING when its requester's delete took effect is told (README "Order").
      SUPERSEDED: 1,
    });
    // The second delivery of an answered message repeats its answer: the same outcome and eventId.
    expect(perOutcome(unique)).toEqual({
      PROVISIONED: 2,
      ADOPTED: 1,
      DELETED: 1,
      DEAD_LETTERED: 1,
      REJECTED: 1,
      DELETE_REQUESTED: 1,
      SUPERSEDED: 1,
    });
    const facts = unique.map((e) => `${e.requestIds.join()}|${e.outcome}`);
    expect(new Set(facts).size).toBe(unique.length);
  });

  it('answers a redelivery of an answered message with its recorded answer, even after the status moved on', async () => {
    const { provisioner } = buildProvisioner(scene.atlas);
    const request = createRequest();
    const record = sqsRecord(request);
    await provisioner.handleRecord(record);
    const [endpoint] = scene.atlas.endpoints.get(request.groupId) ?? [];
    if (endpoint) endpoint.status = 'AVAILABLE';
    // The sweep saw the change since: a fresh answer now would be ADOPTED, AVAILABLE, another eventId.
    await provisioner.handleRecord(sqsRecord({ ...request, requestId: 'later' }));
    scene.atlas.calls.length = 0;

    await expect(provisioner.handleRecord(record)).resolves.toBe('PROVISIONED');

    const answers = publishedDetails().filter((e) => e.messageId === record.messageId);
    expect(answers).toHaveLength(2);
    expect(answers[1]).toEqual(answers[0]);
    expect(scene.atlas.calls).toEqual([]);
  });

  it('answers anew a message whose earlier answer fell out of the bounded memory of answers', async () => {
    const { provisioner } = buildProvisioner(scene.atlas);
    const request = createRequest();
    const first = sqsRecord(request);
    await provisioner.handleRecord(first);
    for (let i = 0; i < MAX_ANSWERED; i++) {
      // Sent in the same millisecond as the first: not ordered before it (README "Order").
      const more = sqsRecord({ ...request, requestId: `more-${i}` });
      more.attributes.SentTimestamp = first.attributes.SentTimestamp;
      await provisioner.handleRecord(more);
    }

    await expect(provisioner.handleRecord(first)).resolves.toBe('ADOPTED');
  });

  it('answers each of two messages with one requestId, as two facts a requester matching by messageId hears', async () => {
    const { provisioner } = buildProvisioner(scene.atlas);
    const request = createRequest();
    const first = sqsRecord(request, { messageId: 'message-1' });
    const second = sqsRecord(request, { messageId: 'message-2' });

    await provisioner.handleRecord(first);
    await provisioner.handleRecord(second);
    await provisioner.handleRecord(second);

    const answers = publishedDetails();
    expect(answers.map((e) => e.messageId)).toEqual(['message-1', 'message-2', 'message-2']);
    expect(new Set(answers.map((e) => e.eventId)).size).toBe(2);
    expect(answers[1]?.eventId).toBe(answers[2]?.eventId);
  });

  it('gives a request parked again after a replay a new eventId, and a redelivery of one parking the same', async () => {
    const { provisioner } = buildProvisioner(scene.atlas, { maxAttempts: 1 });
    const request = createRequest();
    scene.atlas.failNext('list', apiError(), apiError(), apiError());
    const parked = sqsRecord(request, { messageId: 'sender-id' });
    // A replay is a new SQS message that carries the sender's messageId as OriginalMessageId.
    const replayed = sqsRecord(request, { messageId: 'replayed-id' });
    replayed.messageAttributes = {
      OriginalMessageId: {
        dataType: 'String',
        stringValue: 'sender-id',
        stringListValues: [],
        binaryListValues: [],
      },
    };

    await provisioner.handleRecord(parked);
    await provisioner.handleRecord(parked);
    await provisioner.handleRecord(replayed);

    const events = publishedDetails();
    expect(events.map((e) => [e.outcome, e.messageId])).toEqual([
      ['DEAD_LETTERED', 'sender-id'],
      ['DEAD_LETTERED', 'sender-id'],
      ['DEAD_LETTERED', 'sender-id'],
    ]);
    expect(events[0]?.eventId).toBe(events[1]?.eventId);
    expect(events[2]?.eventId).not.toBe(events[0]?.eventId);
  });
});

const apiError = () =>
  new AtlasApiError({ status: 503, errorCode: 'SERVICE_UNAVAILABLE', operation: 'list' });
