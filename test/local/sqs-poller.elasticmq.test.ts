/**
 * The local SQS event source (SqsPoller) against ElasticMQ (started here): the records it hands
 * a function have Lambda's shape, and it deletes exactly what Lambda would, so visibility and
 * redelivery behave as on AWS in the end-to-end tests and `npm start`.
 */
import { createHash } from 'node:crypto';
import {
  CreateQueueCommand,
  GetQueueAttributesCommand,
  SendMessageCommand,
  SQSClient,
} from '@aws-sdk/client-sqs';
import type { SQSEvent, SQSRecord } from 'aws-lambda';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Emulator, startElasticMq } from './emulators.ts';
import { LOCAL_CREDENTIALS, LOCAL_REGION } from './environment.ts';
import { inProcessInvoker } from './in-process-invoker.ts';
import type { SqsResult } from './invocation.ts';
import { type BatchActivity, SqsPoller } from './sqs-poller.ts';

let elasticMq: Emulator;
let sqs: SQSClient;

beforeAll(async () => {
  elasticMq = await startElasticMq();
  sqs = new SQSClient({ endpoint: elasticMq.endpoint, region: LOCAL_REGION, credentials: LOCAL_CREDENTIALS });
});
afterAll(async () => {
  sqs?.destroy();
  await elasticMq?.stop();
});

let queues = 0;
async function newQueue(visibilitySeconds: number) {
  const { QueueUrl = '' } = await sqs.send(
    new CreateQueueCommand({
      QueueName: `runner-${++queues}`,
      Attributes: { VisibilityTimeout: String(visibilitySeconds) },
    }),
  );
  const { Attributes } = await sqs.send(new GetQueueAttributesCommand({ QueueUrl, AttributeNames: ['All'] }));
  return { url: QueueUrl, arn: Attributes?.QueueArn ?? '' };
}

/** Runs an event source over the queue until `done` holds for the activity seen so far. */
async function run(
  queue: { url: string; arn: string },
  handler: (event: SQSEvent) => Promise<SqsResult>,
  done: (seen: BatchActivity[]) => boolean,
  timeoutSeconds = 10,
) {
  const seen: BatchActivity[] = [];
  const finished = Promise.withResolvers<void>();
  const source = new SqsPoller({
    sqs,
    queue,
    region: LOCAL_REGION,
    functionName: 'under-test',
    timeoutSeconds,
    batchSize: 10,
    invoker: () => inProcessInvoker(handler),
    waitTimeSeconds: 1,
    onActivity: (activity) => {
      seen.push(activity);
      if (done(seen)) finished.resolve();
    },
  }).start();
  const timer = setTimeout(
    () => finished.reject(new Error(`not done after 15 s: ${seen.map((a) => a.type).join(', ')}`)),
    15_000,
  );
  try {
    await finished.promise;
  } finally {
    clearTimeout(timer);
    await source.stop();
  }
  return seen;
}

const received = (seen: BatchActivity[]) =>
  seen.flatMap((a) => (a.type === 'received' ? a.records : [])).map((r) => r.body);

describe('SqsPoller', () => {
  it('hands the function records shaped as Lambda builds them', async () => {
    // Prepare
    const queue = await newQueue(30);
    await sqs.send(
      new SendMessageCommand({
        QueueUrl: queue.url,
        MessageBody: '{"hello":"world"}',
        MessageAttributes: { origin: { DataType: 'String', StringValue: 'test' } },
      }),
    );
    const records: SQSRecord[] = [];

    // Act
    await run(
      queue,
      async (event) => {
        records.push(...event.Records);
        return { batchItemFailures: [] };
      },
      (seen) => seen.some((a) => a.type === 'completed'),
    );

    // Assess
    expect(records).toHaveLength(1);
    expect(records[0]).toMatchObject({
      body: '{"hello":"world"}',
      md5OfBody: createHash('md5').update('{"hello":"world"}').digest('hex'),
      eventSource: 'aws:sqs',
      eventSourceARN: queue.arn,
      awsRegion: LOCAL_REGION,
      attributes: { ApproximateReceiveCount: '1' },
      messageAttributes: {
        origin: { stringValue: 'test', stringListValues: [], binaryListValues: [], dataType: 'String' },
      },
    });
    expect(Number(records[0]?.attributes.SentTimestamp)).toBeGreaterThan(0);
    expect(Number(records[0]?.attributes.ApproximateFirstReceiveTimestamp)).toBeGreaterThan(0);
    expect(records[0]?.attributes.SenderId).toBeTruthy();
    expect(records[0]?.receiptHandle).toBeTruthy();
  });

  it('deletes the records the batch response does not name, and only those', async () => {
    // Prepare
    const queue = await newQueue(1);
    for (const body of ['ok', 'fail'])
      await sqs.send(new SendMessageCommand({ QueueUrl: queue.url, MessageBody: body }));

    // Act: "fail" is reported failed every time; it comes back after the visibility timeout.
    const seen = await run(
      queue,
      async (event) => ({
        batchItemFailures: event.Records.filter((r) => r.body === 'fail').map((r) => ({
          itemIdentifier: r.messageId,
        })),
      }),
      (activity) => received(activity).filter((b) => b === 'fail').length >= 2,
    );

    // Assess
    expect(received(seen).filter((b) => b === 'ok')).toHaveLength(1);
    const completed = seen.filter((a) => a.type === 'completed');
    expect(completed[0]?.type === 'completed' && completed[0].failed.map((r) => r.body)).toEqual(['fail']);
  });

  it('deletes nothing when the function throws, so the whole batch comes back', async () => {
    // Prepare
    const queue = await newQueue(1);
    for (const body of ['a', 'b'])
      await sqs.send(new SendMessageCommand({ QueueUrl: queue.url, MessageBody: body }));
    let calls = 0;

    // Act
    const seen = await run(
      queue,
      async () => {
        calls += 1;
        if (calls === 1) throw new Error('boom');
        return { batchItemFailures: [] };
      },
      (activity) =>
        received(activity).filter((b) => b === 'a').length >= 2 && received(activity).includes('b'),
    );

    // Assess
    const errored = seen.find((a) => a.type === 'errored');
    expect(errored?.type === 'errored' && errored.reason).toBe('threw');
    const counts = seen
      .flatMap((a) => (a.type === 'received' ? a.records : []))
      .filter((r) => r.body === 'a');
    expect(counts.map((r) => r.attributes.ApproximateReceiveCount)).toEqual(['1', '2']);
  });

  it('stops a function that runs past its timeout and deletes nothing', async () => {
    // Prepare
    const queue = await newQueue(30);
    await sqs.send(new SendMessageCommand({ QueueUrl: queue.url, MessageBody: 'slow' }));

    // Act
    const seen = await run(
      queue,
      () => new Promise<SqsResult>(() => {}),
      (activity) => activity.some((a) => a.type === 'errored'),
      1,
    );

    // Assess
    const errored = seen.find((a) => a.type === 'errored');
    expect(errored?.type === 'errored' && errored.reason).toBe('timeout');
    const { Attributes } = await sqs.send(
      new GetQueueAttributesCommand({
        QueueUrl: queue.url,
        AttributeNames: ['ApproximateNumberOfMessagesNotVisible'],
      }),
    );
    expect(Attributes?.ApproximateNumberOfMessagesNotVisible).toBe('1');
  });
});
