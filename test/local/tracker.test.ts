import type { SQSClient } from '@aws-sdk/client-sqs';
import type { SQSRecord } from 'aws-lambda';
import { describe, expect, it } from 'vitest';
import { eventIdOf, type StatusChangedDetail } from '#events/status-event.ts';
import { printable } from '#test/local/printable.ts';
import type { BatchActivity } from '#test/local/sqs-poller.ts';
import { RequestTracker } from '#test/local/tracker.ts';
import { LiveView } from '#test/local/view.ts';
import { createRequest, sqsRecord } from '#test/support/sqs-events.ts';

const MAX_RECEIVES = 3;

const tracker = () =>
  new RequestTracker({
    eventsSqs: {} as SQSClient,
    statusEventQueueUrl: 'http://unused',
    maxReceiveCount: MAX_RECEIVES,
  });

const delivery = (body: string, messageId: string, receiveCount: number) =>
  sqsRecord(body, { messageId, receiveCount });

const received = (...records: SQSRecord[]): BatchActivity => ({ type: 'received', records, at: Date.now() });
const completed = (records: SQSRecord[], failed: SQSRecord[] = []): BatchActivity => ({
  type: 'completed',
  records,
  deleted: records.filter((r) => !failed.includes(r)),
  failed,
  at: Date.now(),
});
const crashed = (...records: SQSRecord[]): BatchActivity => ({
  type: 'errored',
  records,
  reason: 'crashed',
  error: new Error('boom'),
  at: Date.now(),
});

const event = (
  outcome: StatusChangedDetail['outcome'],
  extra: Partial<StatusChangedDetail>,
): StatusChangedDetail => ({
  version: '1',
  eventId: eventIdOf(outcome, JSON.stringify(extra)),
  outcome,
  requester: 'default',
  requestIds: [],
  occurredAt: new Date().toISOString(),
  ...extra,
});

describe('RequestTracker', () => {
  it('keeps a request settled when an earlier delivery reports a failure after a later one settled it', () => {
    // Prepare
    const t = tracker();
    const body = JSON.stringify(createRequest());
    const request = t.sent(body, 'm-1', 1);
    const first = delivery(body, 'm-1', 1);
    const second = delivery(body, 'm-1', 2);

    // Act: the first delivery outlives its visibility; the second settles the request first.
    t.onActivity(received(first));
    t.onActivity(received(second));
    t.onEvent(event('PROVISIONED', { messageId: 'm-1', requestIds: [request.label], status: 'ACTIVE' }));
    t.onActivity(completed([second]));
    t.onActivity(completed([first], [first]));

    // Assess
    expect(request.final).toBe('provisioned');
    expect(request.place).toBe('ACTIVE');
    expect(request.deliveries.map((d) => d.result)).toEqual(['retried', 'done']);
    expect(t.unfinished()).toEqual([]);
  });

  it('reopens a settled request on a redelivery until that delivery answers, and a replayed one by its body', () => {
    // Prepare
    const t = tracker();
    const body = JSON.stringify(createRequest());
    const done = t.sent(body, 'm-done', 1);
    const parked = t.sent(JSON.stringify(createRequest()), 'm-parked', 2);
    t.onEvent(event('PROVISIONED', { messageId: 'm-done', status: 'ACTIVE' }));
    t.onEvent(event('DEAD_LETTERED', { messageId: 'm-parked', error: { code: 'X', detail: 'x' } }));
    const again = delivery(body, 'm-done', 2);

    // Act: a redelivery of the settled message, and a replay of the parked one under a new id.
    t.onActivity(received(again));
    t.onActivity(received(delivery(parked.body, 'm-replayed', 1)));

    // Assess
    expect(done).toMatchObject({ final: undefined, place: 'received' });
    expect(parked).toMatchObject({ final: undefined, place: 'received' });
    expect(parked.messageIds).toContain('m-replayed');
    t.onEvent(event('ADOPTED', { messageId: 'm-done', status: 'ACTIVE' }));
    t.onActivity(completed([again]));
    expect(done).toMatchObject({ final: 'provisioned', place: 'ACTIVE' });
  });

  it('follows a replayed request back to the DLQ: its second parking is a new fact, its copies are not', () => {
    // Prepare: parked once, the event delivered twice.
    const t = tracker();
    const parked = t.sent(JSON.stringify(createRequest()), 'm-parked', 1);
    const deadLettered = event('DEAD_LETTERED', { messageId: 'm-parked', error: { code: 'X', detail: 'x' } });
    t.onActivity(received(delivery(parked.body, 'm-parked', 1)));
    t.onEvent(deadLettered);
    t.onEvent(deadLettered);
    expect(t.events).toHaveLength(1);

    // Act: replayed under a new id, and parked again for the same reason (a new eventId).
    t.onActivity(received(delivery(parked.body, 'm-replayed', 1)));
    expect(parked).toMatchObject({ final: undefined, place: 'received' });
    const again = { ...deadLettered, eventId: 'b'.repeat(32) };
    t.onEvent(again);

    // Assess: back in the DLQ, and a copy of that event changes nothing more.
    expect(parked).toMatchObject({ final: 'dlq', place: 'DLQ' });
    t.onEvent(again);
    expect(t.events).toHaveLength(2);
    expect(parked.parked).toEqual(['dlq', 'dlq']);
  });

  it('matches a provisioner event to the one message it answers, not to a twin with the same requestId', () => {
    // Prepare: the same request sent twice; one copy is provisioned, the other dead-lettered.
    const t = tracker();
    const body = JSON.stringify(createRequest());
    const requestId = JSON.parse(body).requestId as string;
    const ok = t.sent(body, 'm-ok', 1);
    const dead = t.sent(body, 'm-dead', 2);

    // Act
    t.onEvent(event('PROVISIONED', { messageId: 'm-ok', requestIds: [requestId], status: 'ACTIVE' }));
    t.onEvent(
      event('DEAD_LETTERED', {
        messageId: 'm-dead',
        requestIds: [requestId],
        error: { code: 'E', detail: 'd' },
      }),
    );

    // Assess
    expect(ok).toMatchObject({ final: 'provisioned', parked: [] });
    expect(dead).toMatchObject({ final: 'dlq', parked: ['dlq'] });
  });

  it('follows a wait to the message it was sent again for, not to a settled twin with the same body', () => {
    // Prepare: the same body sent twice (a producer's resend); the first is provisioned, the second
    // met the key busy and was sent again as a wait carrying its own messageId.
    const t = tracker();
    const body = JSON.stringify(createRequest());
    const requestId = JSON.parse(body).requestId as string;
    const first = t.sent(body, 'm-first', 1);
    const second = t.sent(body, 'm-second', 2);
    t.onActivity(received(delivery(body, 'm-first', 1), delivery(body, 'm-second', 1)));
    t.onEvent(event('PROVISIONED', { messageId: 'm-first', requestIds: [requestId], status: 'ACTIVE' }));
    const wait = delivery(body, 'm-wait', 1);
    wait.messageAttributes = {
      OriginalMessageId: {
        dataType: 'String',
        stringValue: 'm-second',
        stringListValues: [],
        binaryListValues: [],
      },
    };

    // Act
    t.onActivity(received(wait));
    t.onEvent(event('ADOPTED', { messageId: 'm-second', requestIds: [requestId], status: 'ACTIVE' }));

    // Assess
    expect(first).toMatchObject({ final: 'provisioned' });
    expect(first.deliveries.map((d) => d.messageId)).toEqual(['m-first']);
    expect(second).toMatchObject({ final: 'provisioned' });
    expect(second.deliveries.map((d) => d.messageId)).toEqual(['m-second', 'm-wait']);
  });

  it('counts an eventId heard again for another fact, and not one heard again for the same', () => {
    const t = tracker();
    const provisioned = event('PROVISIONED', { messageId: 'm-1', status: 'INITIATING' });
    t.onEvent(provisioned);
    t.onEvent({ ...provisioned });
    expect(t.reusedEventIds).toEqual([]);

    t.onEvent({ ...provisioned, status: 'ACTIVE' });

    expect(t.heardAgain).toBe(2);
    expect(t.reusedEventIds).toEqual([provisioned.eventId]);
  });

  it('never takes a resend received before its send is registered for its settled twin', () => {
    // Prepare: the same body sent twice (a producer's resend); the first is provisioned.
    const t = tracker();
    const body = JSON.stringify(createRequest());
    const requestId = JSON.parse(body).requestId as string;
    const first = t.sent(body, 'm-first', 1);
    t.onEvent(event('PROVISIONED', { messageId: 'm-first', requestIds: [requestId], status: 'ACTIVE' }));

    // Act: the poller receives the resend before its SendMessage returned, then it is registered.
    t.onActivity(received(delivery(body, 'm-resend', 1)));
    const resend = t.sent(body, 'm-resend', 2);
    t.onEvent(event('ADOPTED', { messageId: 'm-resend', requestIds: [requestId], status: 'ACTIVE' }));

    // Assess: the first stays settled, with only its own message; the resend has its delivery.
    expect(first).toMatchObject({ final: 'provisioned' });
    expect([...first.messageIds]).toEqual(['m-first']);
    expect(resend).toMatchObject({ final: 'provisioned' });
    expect(resend.deliveries.map((d) => d.messageId)).toEqual(['m-resend']);
    expect(t.unfinished()).toEqual([]);
  });

  it('still shows the parked twin after a status checker event for the requestId settles both', () => {
    const t = tracker();
    const body = JSON.stringify(createRequest());
    const requestId = JSON.parse(body).requestId as string;
    t.sent(body, 'm-ok', 1);
    const dead = t.sent(body, 'm-dead', 2);
    t.onEvent(
      event('DEAD_LETTERED', {
        messageId: 'm-dead',
        requestIds: [requestId],
        error: { code: 'E', detail: 'd' },
      }),
    );

    t.onEvent(event('STATUS_CHANGED', { requestIds: [requestId], status: 'ACTIVE' }));
    const summary = new LiveView(t, { write: () => undefined, tty: false, startedAt: Date.now() }).summary();

    expect(dead.final).toBe('provisioned');
    expect(summary).toContain(`${requestId}: provisioned, but a delivery of it went to the DLQ`);
  });

  it('matches a rejection without a readable requestId by its messageId, whatever order they were sent in', () => {
    const t = tracker();
    const first = t.sent('{not json', 'm-a', 1);
    const second = t.sent('{"requestId": "r-b", oops', 'm-b', 2);

    t.onEvent(
      event('REJECTED', {
        messageId: 'm-b',
        requestIds: ['r-b'],
        error: { code: 'INVALID_REQUEST', detail: 'b' },
      }),
    );

    expect(second.final).toBe('rejected');
    expect(first.final).toBeUndefined();
  });

  it('labels a request with the requestId the function reads: the first one, even from broken JSON', () => {
    const t = tracker();

    const broken = t.sent('{"requestId": "broken-1", "groupId": oops', 'm-1', 1);
    const twice = t.sent('{"requestId":"first","requestId":"second"}', 'm-2', 2);
    const none = t.sent('{not json', 'm-3', 3);

    expect([broken.label, twice.label, none.label]).toEqual(['broken-1', 'first', 'line 3']);
  });

  it('applies an event that arrives before its message is registered once it is', () => {
    const t = tracker();
    t.onEvent(event('REJECTED', { messageId: 'm-early', error: { code: 'INVALID_REQUEST', detail: 'x' } }));

    const request = t.sent('x'.repeat(20_000), 'm-early', 1);

    expect(request.final).toBe('rejected');
  });

  it('records a redriven delivery of a request another delivery settled, and the summary shows it', () => {
    // Prepare
    const t = tracker();
    const body = JSON.stringify(createRequest());
    const request = t.sent(body, 'm-1', 1);
    const slow = delivery(body, 'm-1', MAX_RECEIVES - 1);
    const last = delivery(body, 'm-1', MAX_RECEIVES);

    // Act: the slow delivery provisions; the last one crashes at maxReceiveCount and is redriven.
    t.onActivity(received(slow));
    t.onActivity(received(last));
    t.onEvent(event('PROVISIONED', { messageId: 'm-1', status: 'ACTIVE' }));
    t.onActivity(completed([slow]));
    t.onActivity(crashed(last));
    const summary = new LiveView(t, { write: () => undefined, tty: false, startedAt: Date.now() }).summary();

    // Assess
    expect(request.final).toBe('provisioned');
    expect(request.deliveries.map((d) => d.result)).toEqual(['done', 'dlq (redrive)']);
    expect(summary).toContain('1 requests: 1 provisioned');
    expect(summary).toContain('2 deliveries: 1 done, 1 dlq (redrive)');
    expect(summary).toContain(`${request.label}: provisioned, but a delivery of it went to the DLQ`);
  });

  it('still parks a request whose only delivery is redriven at maxReceiveCount', () => {
    const t = tracker();
    const body = JSON.stringify(createRequest());
    const request = t.sent(body, 'm-1', 1);
    const last = delivery(body, 'm-1', MAX_RECEIVES);

    t.onActivity(received(last));
    t.onActivity(crashed(last));

    expect(request).toMatchObject({ final: 'dlq', place: 'DLQ (redrive)', parked: ['dlq'] });
  });
});

describe('LiveView', () => {
  const forged = 'ok\nfake-request   provisioned\r\x1b[2K\u202eevil\u200b';

  it('escapes control and format characters of every field in plain lines and the summary', () => {
    // Prepare
    const t = tracker();
    const body = JSON.stringify({ ...createRequest(), requestId: forged, regionName: `US\n${forged}` });
    t.sent(body, 'm-1', 1);
    const lines: string[] = [];
    const view = new LiveView(t, {
      write: (text) => lines.push(text),
      tty: false,
      startedAt: Date.now(),
    }).start();

    // Act
    t.onEvent(
      event('REJECTED', {
        messageId: 'm-1',
        requestIds: [forged],
        error: { code: 'INVALID_REQUEST', detail: `requestId: bad ${forged}` },
      }),
    );
    view.stop();
    const summary = view.summary([`problem: ${forged}`]);

    // Assess: one line per change, and no raw control character anywhere.
    const printed = lines.join('');
    expect(printed.split('\n').filter(Boolean)).toHaveLength(2);
    for (const text of [printed.replaceAll('\n', ''), summary.replaceAll('\n', '')]) {
      expect(text).not.toMatch(/[\p{Cc}\p{Cf}]/u);
      expect(text).toContain('ok\\u000afake-request');
    }
    expect(summary).toContain('\\u202eevil\\u200b');
  });

  it('escapes control characters in a redrawn table too', () => {
    const t = tracker();
    t.sent(JSON.stringify({ ...createRequest(), requestId: forged }), 'm-1', 1);
    const written: string[] = [];

    new LiveView(t, { write: (text) => written.push(text), tty: true, startedAt: Date.now() }).start().stop();

    const drawn = written.join('');
    expect(drawn.split('\n')).toHaveLength(4);
    for (const raw of ['\r', '\x1b[2K', '\u202e', '\u200b']) expect(drawn).not.toContain(raw);
    expect(drawn).toContain(printable(forged).slice(0, 39));
  });

  it('shortens a long requestId in the table so the other columns stay on screen', () => {
    const t = tracker();
    t.sent(JSON.stringify({ ...createRequest(), requestId: 'r'.repeat(129) }), 'm-1', 1);

    const summary = new LiveView(t, { write: () => undefined, tty: false, startedAt: Date.now() }).summary();

    const row = summary.split('\n').find((line) => line.includes('rrr')) ?? '';
    expect(row).toContain(`${'r'.repeat(39)}…  create`);
    expect(row).not.toContain('r'.repeat(40));
  });

  it('shows no key for a body rejected for duplicate keys, rather than the last value', () => {
    const t = tracker();
    const body = `{"requestId":"dup-1","groupId":"6565b8f1c0e4a2b3d4e5f6aa","cloudProvider":"AWS","regionName":"NOPE","regionName":"EU_WEST_1"}`;
    t.sent(body, 'm-1', 1);
    t.onEvent(
      event('REJECTED', {
        messageId: 'm-1',
        requestIds: ['dup-1'],
        error: { code: 'INVALID_REQUEST', detail: 'regionName: duplicate key "regionName"' },
      }),
    );

    const summary = new LiveView(t, { write: () => undefined, tty: false, startedAt: Date.now() }).summary();

    expect(summary).toContain('(duplicate keys)');
    expect(summary).not.toContain('EU_WEST_1');
  });
});
