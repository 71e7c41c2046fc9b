import { EventBridgeClient, PutEventsCommand } from '@aws-sdk/client-eventbridge';
import { SendMessageCommand, SQSClient } from '@aws-sdk/client-sqs';
import { mockClient } from 'aws-sdk-client-mock';
import { beforeEach, describe, expect, it, vi } from 'vitest';
import { REQUESTED_DETAIL_TYPE } from '#messages/front-door.ts';
import {
  InvalidRequestError,
  putRequestEvent,
  RequestNotSentError,
  sendRequest,
} from '#messages/requester.ts';

const sqs = mockClient(SQSClient);
const eventBridge = mockClient(EventBridgeClient);
const QUEUE_URL = 'https://sqs.eu-west-1.amazonaws.com/123456789012/requests';
const request = {
  groupId: '5f1e2d3c4b5a69788796a5b4',
  cloudProvider: 'AWS',
  regionName: 'US_EAST_1',
} as const;

describe('sendRequest', () => {
  beforeEach(() => {
    sqs.reset();
    sqs.on(SendMessageCommand).resolves({ MessageId: 'm-1' });
  });

  it('sends the validated request with its defaults and returns the requestId and messageId', async () => {
    // Act
    const sent = await sendRequest(
      { ...request, requestId: 'orders:1' },
      { queueUrl: QUEUE_URL, client: new SQSClient({}) },
    );

    // Assess
    expect(sent).toMatchObject({ requestId: 'orders:1', messageId: 'm-1' });
    expect(sqs).toHaveReceivedCommandWith(SendMessageCommand, {
      QueueUrl: QUEUE_URL,
      MessageBody: JSON.stringify({
        requestId: 'orders:1',
        action: 'create',
        groupId: request.groupId,
        cloudProvider: 'AWS',
        regionName: 'US_EAST_1',
        profile: 'default',
      }),
    });
  });

  it('generates a requestId when none is given', async () => {
    const sent = await sendRequest(request, {
      queueUrl: QUEUE_URL,
      client: new SQSClient({}),
      newRequestId: () => 'generated-1',
    });

    expect(sent.requestId).toBe('generated-1');
    expect(
      JSON.parse(sqs.commandCalls(SendMessageCommand)[0]?.args[0].input.MessageBody ?? ''),
    ).toMatchObject({
      requestId: 'generated-1',
    });
  });

  it('sends through the client it is given, not a default one', async () => {
    const client = { send: vi.fn(async () => ({ MessageId: 'm-own' })) };

    const sent = await sendRequest(request, { queueUrl: QUEUE_URL, client: client as never });

    expect(sent.messageId).toBe('m-own');
    expect(client.send).toHaveBeenCalledTimes(1);
    expect(sqs).not.toHaveReceivedCommand(SendMessageCommand);
  });

  it('builds an SQS client of its own when given none', async () => {
    const sent = await sendRequest(request, { queueUrl: QUEUE_URL });

    expect(sent.messageId).toBe('m-1');
    expect(sqs).toHaveReceivedCommandTimes(SendMessageCommand, 1);
  });

  it('returns an empty messageId when SQS answers without one', async () => {
    sqs.on(SendMessageCommand).resolves({});

    const sent = await sendRequest(request, { queueUrl: QUEUE_URL, client: new SQSClient({}) });

    expect(sent.messageId).toBe('');
  });

  it('fails naming each invalid field, and sends nothing', async () => {
    const invalid = { ...request, regionName: 'MOON_1', regionname: 'US_EAST_1' } as never;

    const sending = sendRequest(invalid, { queueUrl: QUEUE_URL, client: new SQSClient({}) });

    await expect(sending).rejects.toThrow(InvalidRequestError);
    await expect(sending).rejects.toThrow(/unknown field\(s\): regionname.*regionName: must be one of/);
    expect(sqs).not.toHaveReceivedCommand(SendMessageCommand);
  });
});

describe('putRequestEvent', () => {
  beforeEach(() => eventBridge.reset());

  it('puts the request as the detail of a request event and returns the requestId and event id', async () => {
    // Prepare
    eventBridge.on(PutEventsCommand).resolves({ FailedEntryCount: 0, Entries: [{ EventId: 'e-1' }] });

    // Act
    const sent = await putRequestEvent(
      { ...request, requestId: 'orders:2' },
      { eventBusName: 'platform-requests', source: 'orders', client: new EventBridgeClient({}) },
    );

    // Assess
    expect(sent).toMatchObject({ requestId: 'orders:2', eventId: 'e-1' });
    const entry = eventBridge.commandCalls(PutEventsCommand)[0]?.args[0].input.Entries?.[0];
    expect(entry).toMatchObject({
      EventBusName: 'platform-requests',
      Source: 'orders',
      DetailType: REQUESTED_DETAIL_TYPE,
    });
    expect(JSON.parse(entry?.Detail ?? '')).toMatchObject({ requestId: 'orders:2', action: 'create' });
  });

  it('fails with the error code when EventBridge does not accept the event', async () => {
    eventBridge.on(PutEventsCommand).resolves({
      FailedEntryCount: 1,
      Entries: [{ ErrorCode: 'AccessDeniedException', ErrorMessage: 'not authorized' }],
    });

    const putting = putRequestEvent(request, {
      eventBusName: 'platform-requests',
      source: 'orders',
      client: new EventBridgeClient({}),
    });

    await expect(putting).rejects.toThrow(RequestNotSentError);
    await expect(putting).rejects.toMatchObject({
      name: 'RequestNotSentError',
      code: 'AccessDeniedException',
      message: expect.stringMatching(/: AccessDeniedException not authorized$/),
    });
  });

  const put = (requestId: string, client: Pick<EventBridgeClient, 'send'> = new EventBridgeClient({})) =>
    putRequestEvent(
      { ...request, requestId },
      { eventBusName: 'platform-requests', source: 'orders', client },
    );

  it.each([
    ['reports a failed entry, even one with an id', { FailedEntryCount: 1, Entries: [{ EventId: 'e-1' }] }],
    ['reports no failure but gives no event id', { FailedEntryCount: 0, Entries: [{}] }],
    ['answers without entries', { FailedEntryCount: 1 }],
    ['answers with nothing at all', {}],
  ])('counts the event as not sent when EventBridge %s', async (_, answer) => {
    eventBridge.on(PutEventsCommand).resolves(answer);

    await expect(put('orders:3')).rejects.toThrow(
      new RequestNotSentError('EventBridge did not accept the request orders:3: no event id'),
    );
  });

  it('names the error code alone when EventBridge gives no message', async () => {
    eventBridge
      .on(PutEventsCommand)
      .resolves({ FailedEntryCount: 1, Entries: [{ ErrorCode: 'InternalFailure' }] });

    await expect(put('orders:4')).rejects.toThrow(
      /^EventBridge did not accept the request orders:4: InternalFailure$/,
    );
  });

  it('puts through the client it is given, or else one of its own', async () => {
    eventBridge.on(PutEventsCommand).resolves({ FailedEntryCount: 0, Entries: [{ EventId: 'e-default' }] });
    const client = { send: vi.fn(async () => ({ FailedEntryCount: 0, Entries: [{ EventId: 'e-own' }] })) };

    const own = await put('orders:5', client as never);
    const byDefault = await putRequestEvent(request, { eventBusName: 'platform-requests', source: 'orders' });

    expect(own.eventId).toBe('e-own');
    expect(byDefault.eventId).toBe('e-default');
    expect(eventBridge).toHaveReceivedCommandTimes(PutEventsCommand, 1);
  });
});
