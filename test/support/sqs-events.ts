/**
 * Real-shaped SQS events for the provisioner's tests: the fixtures in events/, and variations
 * built from them (another body, another delivery count), or from messages really received
 * from an SQS emulator, whose receipt handles then work with ChangeMessageVisibility.
 */
import { createHash, randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import type { Message } from '@aws-sdk/client-sqs';
import type { Context, SQSEvent, SQSRecord } from 'aws-lambda';
import type { ProvisionRequestInput } from '#messages/request.ts';

const EVENTS = resolve(import.meta.dirname, '../../events');

export type EventFixture = 'sqs-create' | 'sqs-delete' | 'sqs-batch-invalid';

/** One of the events/*.json fixtures, freshly read (tests may change it). */
export function loadEvent(name: EventFixture): SQSEvent {
  return JSON.parse(readFileSync(resolve(EVENTS, `${name}.json`), 'utf8')) as SQSEvent;
}

let sequence = 0;

/** A valid create request for a fresh project; fields can be overridden or added. */
export function createRequest(overrides: Partial<ProvisionRequestInput> = {}): ProvisionRequestInput {
  sequence += 1;
  return {
    requestId: `req-${process.pid}-${sequence}`,
    action: 'create',
    groupId: createHash('sha256')
      .update(`${process.pid}:${sequence}:${randomUUID()}`)
      .digest('hex')
      .slice(0, 24),
    cloudProvider: 'AWS',
    regionName: 'US_EAST_1',
    ...overrides,
  };
}

export interface RecordOptions {
  messageId?: string;
  receiptHandle?: string;
  /** ApproximateReceiveCount: 1 on the first delivery. */
  receiveCount?: number;
  /** ApproximateFirstReceiveTimestamp, ms. */
  firstReceivedAt?: number;
}

/** A record shaped like events/sqs-create.json carrying `body` (an object is sent as JSON). */
export function sqsRecord(body: string | object, options: RecordOptions = {}): SQSRecord {
  const [template] = loadEvent('sqs-create').Records;
  if (!template) throw new Error('events/sqs-create.json has no record');
  const text = typeof body === 'string' ? body : JSON.stringify(body);
  const sent = Date.now() - 1_000;
  return {
    ...template,
    messageId: options.messageId ?? randomUUID(),
    receiptHandle: options.receiptHandle ?? `AQEB${randomUUID().replaceAll('-', '')}==`,
    body: text,
    md5OfBody: createHash('md5').update(text).digest('hex'),
    attributes: {
      ...template.attributes,
      ApproximateReceiveCount: String(options.receiveCount ?? 1),
      SentTimestamp: String(sent),
      ApproximateFirstReceiveTimestamp: String(options.firstReceivedAt ?? sent + 10),
    },
  };
}

export function sqsEvent(...records: SQSRecord[]): SQSEvent {
  return { Records: records };
}

/**
 * The record Lambda's SQS event source hands the function for a message received from a queue
 * (ReceiveMessage with MessageSystemAttributeNames ["All"] and MessageAttributeNames ["All"]).
 * The region defaults to the queue ARN's.
 */
export function recordFromMessage(
  message: Message,
  queueArn: string,
  region = queueArn.split(':')[3] ?? 'us-east-1',
): SQSRecord {
  const body = message.Body ?? '';
  const attributes = message.Attributes ?? {};
  const messageAttributes = Object.fromEntries(
    Object.entries(message.MessageAttributes ?? {}).map(([name, value]) => [
      name,
      {
        ...(value.StringValue !== undefined && { stringValue: value.StringValue }),
        ...(value.BinaryValue !== undefined && {
          binaryValue: Buffer.from(value.BinaryValue).toString('base64'),
        }),
        stringListValues: value.StringListValues ?? [],
        binaryListValues: (value.BinaryListValues ?? []).map((b) => Buffer.from(b).toString('base64')),
        dataType: value.DataType ?? 'String',
      },
    ]),
  );
  return {
    messageId: message.MessageId ?? '',
    receiptHandle: message.ReceiptHandle ?? '',
    body,
    attributes: {
      ...attributes,
      ApproximateReceiveCount: attributes.ApproximateReceiveCount ?? '1',
      SentTimestamp: attributes.SentTimestamp ?? '',
      SenderId: attributes.SenderId ?? '',
      ApproximateFirstReceiveTimestamp: attributes.ApproximateFirstReceiveTimestamp ?? '',
    },
    messageAttributes,
    ...(message.MD5OfMessageAttributes && { md5OfMessageAttributes: message.MD5OfMessageAttributes }),
    md5OfBody: message.MD5OfBody ?? createHash('md5').update(body).digest('hex'),
    eventSource: 'aws:sqs',
    eventSourceARN: queueArn,
    awsRegion: region,
  };
}

/** A Lambda context as the runtime passes it. */
export function lambdaContext(overrides: Partial<Context> = {}): Context {
  return {
    callbackWaitsForEmptyEventLoop: true,
    functionName: 'atlas-backup-private-endpoints-provision',
    functionVersion: '$LATEST',
    invokedFunctionArn:
      'arn:aws:lambda:us-east-1:123456789012:function:atlas-backup-private-endpoints-provision',
    memoryLimitInMB: '512',
    awsRequestId: randomUUID(),
    logGroupName: '/aws/lambda/atlas-backup-private-endpoints-provision',
    logStreamName: `2026/11/29/[$LATEST]${randomUUID().replaceAll('-', '')}`,
    getRemainingTimeInMillis: () => 60_000,
    done: () => undefined,
    fail: () => undefined,
    succeed: () => undefined,
    ...overrides,
  };
}
