import { EventBridgeClient, PutEventsCommand, type PutEventsRequestEntry } from '@aws-sdk/client-eventbridge';
import { mockClient } from 'aws-sdk-client-mock';
import { beforeEach, describe, expect, it } from 'vitest';
import {
  chunkEntries,
  EventPublishError,
  entrySize,
  MAX_BYTES_PER_CALL,
  MAX_ENTRIES_PER_CALL,
  StatusEvents,
} from '#events/publisher.ts';
import type { StatusChangedDetail } from '#events/status-event.ts';

const eventBridge = mockClient(EventBridgeClient);
beforeEach(() => eventBridge.reset());

const detail = (n: number): StatusChangedDetail => ({
  version: '1',
  eventId: n.toString(16).padStart(32, '0'),
  outcome: 'PROVISIONED',
  requester: 'default',
  requestIds: [`req-${n}`],
  occurredAt: '2026-11-29T10:00:00.000Z',
});
const details = (count: number) => Array.from({ length: count }, (_, i) => detail(i + 1));

const publisher = () =>
  new StatusEvents({
    busName: 'bus',
    source: 'atlas.test',
    client: new EventBridgeClient({ region: 'us-east-1' }),
  });

/** The entries of each PutEvents call, in order. */
const calls = () => eventBridge.commandCalls(PutEventsCommand).map((c) => c.args[0].input.Entries ?? []);

const failureOf = async (promise: Promise<unknown>): Promise<unknown> =>
  promise.then(
    () => {
      throw new Error('expected a failure');
    },
    (error: unknown) => error,
  );

describe('entrySize', () => {
  it('counts Source, DetailType, Detail and each Resource in UTF-8 bytes, and 14 for a Time', () => {
    expect(entrySize({})).toBe(0);
    expect(entrySize({ Source: 'ab', DetailType: 'cde', Detail: 'é' })).toBe(2 + 3 + 2);
    expect(entrySize({ Resources: ['a', '€€'] })).toBe(1 + 6);
    expect(entrySize({ Source: 'a', Time: new Date(0) })).toBe(1 + 14);
  });
});

describe('chunkEntries', () => {
  const sized = (bytes: number): PutEventsRequestEntry => ({ Detail: 'x'.repeat(bytes) });

  it('makes no call for no entries', () => {
    expect(chunkEntries([])).toEqual([]);
  });

  it('puts at most 10 entries in one call', () => {
    const entries = Array.from({ length: 2 * MAX_ENTRIES_PER_CALL + 1 }, () => sized(1));

    expect(chunkEntries(entries).map((c) => c.length)).toEqual([10, 10, 1]);
  });

  it('fills a call up to exactly 256 KiB, and starts a new one for a byte more', () => {
    const half = MAX_BYTES_PER_CALL / 2;

    expect(chunkEntries([sized(half), sized(half), sized(1)]).map((c) => c.length)).toEqual([2, 1]);
    expect(chunkEntries([sized(half), sized(half + 1)]).map((c) => c.length)).toEqual([1, 1]);
  });

  it('counts the size afresh in each new call', () => {
    const third = Math.floor(MAX_BYTES_PER_CALL / 3);
    const entries = [sized(2 * third), sized(2 * third), sized(third)];

    expect(chunkEntries(entries).map((c) => c.length)).toEqual([1, 2]);
  });

  it('sends an entry larger than a call alone, for EventBridge to refuse, without an empty call before it', () => {
    const entries = [sized(MAX_BYTES_PER_CALL + 1), sized(1)];

    expect(chunkEntries(entries)).toEqual([[entries[0]], [entries[1]]]);
  });
});

describe('StatusEvents.publish', () => {
  it('puts each detail as JSON on the bus, with the source, the status detail-type and no resources', async () => {
    eventBridge.on(PutEventsCommand).resolves({ FailedEntryCount: 0, Entries: [{ EventId: 'e-1' }] });

    await publisher().publish(detail(1));

    expect(calls()).toEqual([
      [
        {
          EventBusName: 'bus',
          Source: 'atlas.test',
          DetailType: 'Backup Private Endpoint Status Changed',
          Detail: JSON.stringify(detail(1)),
          Resources: [],
        },
      ],
    ]);
  });

  it('sends more than 10 events in as few calls as the limits allow, in order', async () => {
    eventBridge.on(PutEventsCommand).resolves({ FailedEntryCount: 0, Entries: [] });

    await publisher().publish(...details(12));

    expect(calls().map((entries) => entries.map((e) => JSON.parse(e.Detail ?? '').eventId))).toEqual([
      details(10).map((d) => d.eventId),
      details(12)
        .slice(10)
        .map((d) => d.eventId),
    ]);
  });

  it('names the refused events and the accepted ones when some entries fail', async () => {
    eventBridge.on(PutEventsCommand).resolves({
      FailedEntryCount: 2,
      Entries: [
        { EventId: 'e-1' },
        { ErrorCode: 'ThrottlingException', ErrorMessage: 'Rate exceeded' },
        { ErrorCode: 'InternalFailure' },
      ],
    });

    const error = await failureOf(publisher().publish(...details(3)));

    expect(error).toBeInstanceOf(EventPublishError);
    expect(error).toMatchObject({
      name: 'EventPublishError',
      message: 'EventBridge refused 2 status event(s): ThrottlingException Rate exceeded',
      accepted: [detail(1).eventId],
    });
  });

  it('trims the reason of a refused entry that has a code and no message', async () => {
    eventBridge
      .on(PutEventsCommand)
      .resolves({ FailedEntryCount: 1, Entries: [{ ErrorCode: 'InternalFailure' }] });

    const error = await failureOf(publisher().publish(detail(1)));

    expect((error as Error).message).toBe('EventBridge refused 1 status event(s): InternalFailure');
  });

  it('counts an entry without an event id as refused only when the call reports failures', async () => {
    eventBridge
      .on(PutEventsCommand)
      .resolvesOnce({ FailedEntryCount: 1, Entries: [{ EventId: 'e-1' }, {}] })
      .resolves({ Entries: [{}] });

    const error = await failureOf(publisher().publish(...details(2)));
    await publisher().publish(detail(3));

    expect(error).toMatchObject({
      message: 'EventBridge refused 1 status event(s): not accepted',
      accepted: [detail(1).eventId],
    });
  });

  it('accepts every event of an answer that reports no failure, even one that lists no entries', async () => {
    eventBridge.on(PutEventsCommand).resolves({ FailedEntryCount: 0 });

    await expect(publisher().publish(...details(2))).resolves.toBeUndefined();
  });

  it('counts the events an answer with failures leaves unlisted as not accepted', async () => {
    eventBridge.on(PutEventsCommand).resolves({ FailedEntryCount: 1, Entries: [{ EventId: 'e-1' }] });

    const error = await failureOf(publisher().publish(...details(2)));

    expect(error).toMatchObject({
      message: 'EventBridge refused 1 status event(s): not accepted',
      accepted: [detail(1).eventId],
    });
  });

  it('names the events of earlier calls as accepted when a later call fails, with the SDK error as cause', async () => {
    const down = new Error('socket hang up');
    eventBridge.on(PutEventsCommand).resolvesOnce({ FailedEntryCount: 0, Entries: [] }).rejects(down);

    const error = await failureOf(publisher().publish(...details(11)));

    expect(error).toBeInstanceOf(EventPublishError);
    expect(error).toMatchObject({
      message: 'EventBridge refused 1 status event(s): socket hang up',
      accepted: details(10).map((d) => d.eventId),
      cause: down,
    });
  });

  it('sends the calls after one EventBridge refused, and names what they delivered as accepted', async () => {
    const down = new Error('throttled');
    eventBridge.on(PutEventsCommand).rejectsOnce(down).resolves({ FailedEntryCount: 0, Entries: [] });

    const error = await failureOf(publisher().publish(...details(25)));

    expect(calls().map((entries) => entries.length)).toEqual([10, 10, 5]);
    expect(error).toMatchObject({
      message: 'EventBridge refused 10 status event(s): throttled',
      accepted: details(25)
        .slice(10)
        .map((d) => d.eventId),
      cause: down,
    });
  });

  it('uses a client of its own when given none', async () => {
    eventBridge.on(PutEventsCommand).resolves({ FailedEntryCount: 0, Entries: [] });

    await new StatusEvents({ busName: 'bus', source: 'atlas.test' }).publish(detail(1));

    expect(calls()).toHaveLength(1);
  });
});
