import { ChangeMessageVisibilityCommand, SendMessageCommand, SQSClient } from '@aws-sdk/client-sqs';
import { mockClient } from 'aws-sdk-client-mock';
import { beforeEach, describe, expect, it } from 'vitest';
import { PARKED_ATTRIBUTES_MAX_BYTES } from '#messages/attributes.ts';
import {
  backoffSeconds,
  ContinuationQueue,
  MAX_MESSAGE_DELAY_SECONDS,
  MAX_RETRY_DELAY_SECONDS,
  MAX_VISIBILITY_SECONDS,
  type ParkedFailure,
  parkedAttributes,
  Queues,
  retryDelaySeconds,
} from '#messages/queues.ts';

const backoff = { baseSeconds: 2, capSeconds: 900 };

describe('retry delays', () => {
  it('grows the backoff ceiling exponentially up to the cap', () => {
    const ceiling = (attempt: number) => backoffSeconds(attempt, backoff, () => 1);

    expect([1, 2, 3, 4, 9, 10, 30].map(ceiling)).toEqual([2, 4, 8, 16, 512, 900, 900]);
  });

  it('starts from the base on a record not yet counted as received', () => {
    expect(backoffSeconds(0, backoff, () => 1)).toBe(2);
  });

  it('draws the delay uniformly between zero and the ceiling, in whole seconds', () => {
    expect(backoffSeconds(4, backoff, () => 0)).toBe(0);
    expect(backoffSeconds(4, backoff, () => 0.5)).toBe(8);
    expect(backoffSeconds(4, backoff, () => 0.49)).toBe(8);
    expect(backoffSeconds(4, backoff, () => 0.53)).toBe(8);
    expect(backoffSeconds(4, backoff, () => 0.97)).toBe(16);
  });

  it('takes Retry-After over the backoff, even a zero one', () => {
    const failure = { disposition: 'retry' as const, code: 'RATE_LIMITED', detail: 'slow down' };

    expect(retryDelaySeconds({ ...failure, retryAfterSeconds: 0 }, 5, backoff, () => 1)).toBe(0);
    expect(retryDelaySeconds({ ...failure, retryAfterSeconds: 2.2 }, 5, backoff, () => 1)).toBe(3);
    expect(retryDelaySeconds(failure, 5, backoff, () => 1)).toBe(32);
  });

  it('never waits less than nothing, nor longer than SQS lets a received record wait', () => {
    const failure = { disposition: 'retry' as const, code: 'RATE_LIMITED', detail: 'slow down' };

    expect(retryDelaySeconds({ ...failure, retryAfterSeconds: -5 }, 1, backoff)).toBe(0);
    expect(retryDelaySeconds({ ...failure, retryAfterSeconds: 86_400 }, 1, backoff)).toBe(42_000);
    expect(MAX_RETRY_DELAY_SECONDS).toBe(MAX_VISIBILITY_SECONDS - 20 * 60);
  });
});

describe('parkedAttributes', () => {
  it('leaves out the absent HttpStatus and RequestId and cuts a long detail', () => {
    const attributes = parkedAttributes({
      failure: { disposition: 'reject', code: 'INVALID_REQUEST', detail: 'x'.repeat(5_000) },
      attempts: 1,
      firstFailureAt: '2026-11-29T10:00:00.000Z',
      lastFailureAt: '2026-11-29T10:00:00.000Z',
    });

    expect(Object.keys(attributes).sort()).toEqual([
      'Attempts',
      'Detail',
      'ErrorCode',
      'FirstFailureAt',
      'LastFailureAt',
    ]);
    expect(attributes.Detail?.StringValue).toHaveLength(1_000);
  });

  it('replaces characters SQS refuses in an attribute, so a garbled request can still be parked', () => {
    const attributes = parkedAttributes({
      failure: {
        disposition: 'reject',
        code: 'INVALID_REQUEST',
        detail: 'unknown field(s): a\u0000b\u0007c',
      },
      attempts: 1,
      firstFailureAt: '2026-11-29T10:00:00.000Z',
      lastFailureAt: '2026-11-29T10:00:00.000Z',
      requestId: 'req\u0001\ud800-1',
    });

    expect(attributes.Detail?.StringValue).toBe('unknown field(s): a\uFFFDb\uFFFDc');
    expect(attributes.RequestId?.StringValue).toBe('req\uFFFD\uFFFD-1');
  });

  it('adds at most PARKED_ATTRIBUTES_MAX_BYTES to a parked body, however long and wide its reason', () => {
    // Prepare: every value far over its cut, in characters of 3 UTF-8 bytes, a half pair at each cut
    const wide = (n: number) => '\u20ac'.repeat(n - 1).concat('\ud83d\ude00', '\u20ac'.repeat(10_000));
    const attributes = parkedAttributes({
      failure: { disposition: 'retry', code: wide(128), httpStatus: 503, detail: wide(1_000) },
      attempts: Number.MAX_SAFE_INTEGER,
      firstFailureAt: wide(32),
      lastFailureAt: wide(32),
      requestId: wide(1_024),
    });

    // Act: the size SQS counts for message attributes (name, data type, value)
    const bytes = Object.entries(attributes).reduce(
      (sum, [name, value]) =>
        sum +
        Buffer.byteLength(name) +
        Buffer.byteLength(value.DataType ?? '') +
        Buffer.byteLength(value.StringValue ?? ''),
      0,
    );

    // Assess
    expect(Object.keys(attributes)).toHaveLength(7);
    expect(bytes).toBeGreaterThan(6_000);
    expect(bytes).toBeLessThanOrEqual(PARKED_ATTRIBUTES_MAX_BYTES);
  });

  it("reaches PARKED_ATTRIBUTES_MAX_BYTES within the numbers' slack when every value is at its cut", () => {
    // Prepare: all nine attributes, every text far over its cut, the numbers as long as JS prints them
    const wide = (n: number) => '\u20ac'.repeat(n + 10);
    const longest = -Number.MAX_VALUE;
    const attributes = parkedAttributes({
      failure: { disposition: 'retry', code: wide(128), httpStatus: longest, detail: wide(1_000) },
      attempts: longest,
      firstFailureAt: wide(32),
      lastFailureAt: wide(32),
      requestId: wide(1_024),
      originalMessageId: wide(128),
      requester: wide(32),
      sentAt: longest,
    });

    // Act
    const bytes = Object.entries(attributes).reduce(
      (sum, [name, value]) =>
        sum +
        Buffer.byteLength(name) +
        Buffer.byteLength(value.DataType ?? '') +
        Buffer.byteLength(value.StringValue ?? ''),
      0,
    );

    // Assess: the bound counts a Number as 40 characters of 3 bytes; JS prints one in at most 24 ASCII
    expect(Object.keys(attributes)).toHaveLength(10);
    expect(attributes.OriginalMessageId?.StringValue).toBe('\u20ac'.repeat(128));
    expect(bytes).toBeLessThanOrEqual(PARKED_ATTRIBUTES_MAX_BYTES);
    expect(bytes).toBe(PARKED_ATTRIBUTES_MAX_BYTES - 3 * (3 * 40 - String(longest).length));
  });

  it('records the failure in attributes an operator reads, the code standing in for an empty detail', () => {
    const attributes = parkedAttributes({
      failure: { disposition: 'dlq', code: 'SECRET_NOT_FOUND', httpStatus: 404, detail: '' },
      attempts: 3,
      firstFailureAt: '2026-11-29T10:00:00.000Z',
      lastFailureAt: '2026-11-29T10:05:00.000Z',
      requestId: 'orders-svc:7f3c',
      originalMessageId: 'm-1',
    });

    expect(attributes).toEqual({
      ErrorCode: { DataType: 'String', StringValue: 'SECRET_NOT_FOUND' },
      HttpStatus: { DataType: 'Number', StringValue: '404' },
      Detail: { DataType: 'String', StringValue: 'SECRET_NOT_FOUND' },
      Attempts: { DataType: 'Number', StringValue: '3' },
      FirstFailureAt: { DataType: 'String', StringValue: '2026-11-29T10:00:00.000Z' },
      LastFailureAt: { DataType: 'String', StringValue: '2026-11-29T10:05:00.000Z' },
      RequestId: { DataType: 'String', StringValue: 'orders-svc:7f3c' },
      OriginalMessageId: { DataType: 'String', StringValue: 'm-1' },
    });
  });

  it('keeps tabs, line breaks and every valid character, replacing only what SQS refuses', () => {
    const detail = 'a\tb\nc\rd \ud7ff\ue000\ufffd\u{10000}\u{10ffff}\ufffe\uffff\u001f\udc00';
    const attributes = parkedAttributes({
      failure: { disposition: 'dlq', code: 'X', detail },
      attempts: 1,
      firstFailureAt: 't',
      lastFailureAt: 't',
    });

    expect(attributes.Detail?.StringValue).toBe(
      'a\tb\nc\rd \ud7ff\ue000\ufffd\u{10000}\u{10ffff}\ufffd\ufffd\ufffd\ufffd',
    );
  });
});

describe('the queues', () => {
  const client = new SQSClient({ region: 'us-east-1' });
  // This client only: a Queues that built a client of its own would send to no queue at all.
  const sqs = mockClient(client);
  const urls = {
    requestQueueUrl: 'https://sqs/requests',
    dlqUrl: 'https://sqs/dlq',
    rejectedQueueUrl: 'https://sqs/rejected',
    continuationQueueUrl: 'https://sqs/continuations',
  };
  const parked: ParkedFailure = {
    failure: { disposition: 'dlq', code: 'SECRET_NOT_FOUND', detail: 'no secret' },
    attempts: 2,
    firstFailureAt: '2026-11-29T10:00:00.000Z',
    lastFailureAt: '2026-11-29T10:01:00.000Z',
  };

  beforeEach(() => {
    sqs.reset();
    sqs.resolves({});
  });

  it('parks the original body in the DLQ or the rejected queue with its reason', async () => {
    const queues = new Queues({ ...urls, client });

    await queues.park({ dlqUrl: urls.dlqUrl }, '{"a":1}', parked);
    await queues.park('reject', '{"b":2}', parked);

    expect(sqs.commandCalls(SendMessageCommand).map((c) => c.args[0].input)).toEqual([
      { QueueUrl: urls.dlqUrl, MessageBody: '{"a":1}', MessageAttributes: parkedAttributes(parked) },
      {
        QueueUrl: urls.rejectedQueueUrl,
        MessageBody: '{"b":2}',
        MessageAttributes: parkedAttributes(parked),
      },
    ]);
  });

  it('delays a received record by whole seconds, between zero and MAX_RETRY_DELAY_SECONDS', async () => {
    const queues = new Queues({ ...urls, client });

    for (const seconds of [2.5, -3, 10 ** 6]) await queues.delay(urls.requestQueueUrl, 'rh', seconds);

    expect(sqs.commandCalls(ChangeMessageVisibilityCommand).map((c) => c.args[0].input)).toEqual(
      [3, 0, MAX_RETRY_DELAY_SECONDS].map((VisibilityTimeout) => ({
        QueueUrl: urls.requestQueueUrl,
        ReceiptHandle: 'rh',
        VisibilityTimeout,
      })),
    );
  });

  it('sends a waiting request again as a new message on the continuation queue, carrying its requester, first messageId and waits', async () => {
    await new Queues({ ...urls, client }).wait('{"w":1}', 29.2, {
      requester: 'team-a',
      originalMessageId: 'm-1',
      waits: 3,
    });

    expect(sqs.commandCalls(SendMessageCommand)[0]?.args[0].input).toEqual({
      QueueUrl: urls.continuationQueueUrl,
      MessageBody: '{"w":1}',
      DelaySeconds: 30,
      MessageAttributes: {
        Requester: { DataType: 'String', StringValue: 'team-a' },
        OriginalMessageId: { DataType: 'String', StringValue: 'm-1' },
        Waits: { DataType: 'Number', StringValue: '3' },
      },
    });
  });

  it('sends a follow-up with its number and the endpoint it follows', async () => {
    await new Queues({ ...urls, client }).followUp('{"f":1}', 10, {
      requester: 'team-a',
      originalMessageId: 'm-1',
      number: 2,
      endpointId: 'e1',
    });

    expect(sqs.commandCalls(SendMessageCommand)[0]?.args[0].input).toEqual({
      QueueUrl: urls.continuationQueueUrl,
      MessageBody: '{"f":1}',
      DelaySeconds: 10,
      MessageAttributes: {
        Requester: { DataType: 'String', StringValue: 'team-a' },
        OriginalMessageId: { DataType: 'String', StringValue: 'm-1' },
        FollowUp: { DataType: 'Number', StringValue: '2' },
        EndpointId: { DataType: 'String', StringValue: 'e1' },
      },
    });
  });

  it('sends at once with no delay, and caps a delay at the 900 s SQS allows', async () => {
    const requests = new ContinuationQueue({ queueUrl: urls.continuationQueueUrl, client });

    await requests.send('{"now":1}', { requester: 'default' });
    await requests.send('{"past":1}', { requester: 'default', delaySeconds: -4 });
    await requests.send('{"later":1}', { requester: 'default', delaySeconds: 3_600 });

    const inputs = sqs.commandCalls(SendMessageCommand).map((c) => c.args[0].input);
    expect(inputs[0]).toEqual({
      QueueUrl: urls.continuationQueueUrl,
      MessageBody: '{"now":1}',
      MessageAttributes: { Requester: { DataType: 'String', StringValue: 'default' } },
    });
    expect(inputs[1]).not.toHaveProperty('DelaySeconds');
    expect(inputs[2]?.DelaySeconds).toBe(MAX_MESSAGE_DELAY_SECONDS);
  });
});
