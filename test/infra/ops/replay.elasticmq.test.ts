/**
 * `npm run replay` against ElasticMQ (an SQS server that implements dead-letter queues and
 * message move tasks), started here once: the core functions through the real SDK, and the
 * command itself run as a process, finding the queues through AWS_ENDPOINT_URL.
 */
import { execFile } from 'node:child_process';
import { resolve } from 'node:path';
import { promisify } from 'node:util';
import {
  CancelMessageMoveTaskCommand,
  ChangeMessageVisibilityCommand,
  CreateQueueCommand,
  DeleteMessageBatchCommand,
  GetQueueAttributesCommand,
  type Message,
  ReceiveMessageCommand,
  SendMessageCommand,
  SQSClient,
  StartMessageMoveTaskCommand,
} from '@aws-sdk/client-sqs';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { dryRun, ReplayRefusedError, replay } from '#infra/ops/replay.ts';
import { type Emulator, startElasticMq } from '#test/local/emulators.ts';

const ROOT = resolve(import.meta.dirname, '../../..');
const REGION = 'us-east-1';
const CREDENTIALS = { accessKeyId: 'test', secretAccessKey: 'test' };

interface Queue {
  url: string;
  arn: string;
}

let elasticMq: Emulator;
let sqs: SQSClient;
let queues = 0;
let requestQueue: Queue;
let dlq: Queue;

async function createQueue(name: string, attributes: Record<string, string> = {}): Promise<Queue> {
  const { QueueUrl = '' } = await sqs.send(
    new CreateQueueCommand({ QueueName: name, Attributes: attributes }),
  );
  const { Attributes } = await sqs.send(
    new GetQueueAttributesCommand({ QueueUrl, AttributeNames: ['QueueArn'] }),
  );
  return { url: QueueUrl, arn: Attributes?.QueueArn ?? '' };
}

/** Parks a request in the DLQ the way the provisioner does: the original body, with why it failed. */
async function park(body: string, errorCode: string): Promise<void> {
  await sqs.send(
    new SendMessageCommand({
      QueueUrl: dlq.url,
      MessageBody: body,
      MessageAttributes: { ErrorCode: { DataType: 'String', StringValue: errorCode } },
    }),
  );
}

async function receiveAll(queueUrl: string): Promise<Message[]> {
  const messages: Message[] = [];
  for (;;) {
    const { Messages = [] } = await sqs.send(
      new ReceiveMessageCommand({
        QueueUrl: queueUrl,
        MaxNumberOfMessages: 10,
        MessageAttributeNames: ['All'],
      }),
    );
    if (Messages.length === 0) return messages;
    messages.push(...Messages);
    await sqs.send(
      new DeleteMessageBatchCommand({
        QueueUrl: queueUrl,
        Entries: Messages.map((m, i) => ({ Id: String(i), ReceiptHandle: m.ReceiptHandle })),
      }),
    );
  }
}

async function depth(queueUrl: string): Promise<{ visible: number; inFlight: number }> {
  const { Attributes = {} } = await sqs.send(
    new GetQueueAttributesCommand({
      QueueUrl: queueUrl,
      AttributeNames: ['ApproximateNumberOfMessages', 'ApproximateNumberOfMessagesNotVisible'],
    }),
  );
  return {
    visible: Number(Attributes.ApproximateNumberOfMessages),
    inFlight: Number(Attributes.ApproximateNumberOfMessagesNotVisible),
  };
}

/** Starts a slow move task, as another operator would, and returns its handle. */
async function startSlowTask(): Promise<string> {
  const { TaskHandle = '' } = await sqs.send(
    new StartMessageMoveTaskCommand({
      SourceArn: dlq.arn,
      DestinationArn: requestQueue.arn,
      MaxNumberOfMessagesPerSecond: 1,
    }),
  );
  return TaskHandle;
}

beforeAll(async () => {
  elasticMq = await startElasticMq();
  sqs = new SQSClient({ region: REGION, credentials: CREDENTIALS, endpoint: elasticMq.endpoint });
});

afterAll(async () => {
  sqs?.destroy();
  await elasticMq?.stop();
});

beforeEach(async () => {
  queues += 1;
  dlq = await createQueue(`replay-${queues}-dlq`);
  requestQueue = await createQueue(`replay-${queues}-requests`, {
    RedrivePolicy: JSON.stringify({ deadLetterTargetArn: dlq.arn, maxReceiveCount: 1 }),
  });
});

describe('replay on ElasticMQ', () => {
  it('moves parked and redriven messages back to the request queue with their bodies', async () => {
    // Prepare: two requests parked by the function, one redriven by the queue after a crash.
    await park('{"requestId":"parked-1"}', 'UNAUTHORIZED');
    await park('{"requestId":"parked-2"}', 'RATE_LIMITED');
    await sqs.send(
      new SendMessageCommand({ QueueUrl: requestQueue.url, MessageBody: '{"requestId":"crashed-1"}' }),
    );
    const [crashed] =
      (await sqs.send(new ReceiveMessageCommand({ QueueUrl: requestQueue.url }))).Messages ?? [];
    await sqs.send(
      new ChangeMessageVisibilityCommand({
        QueueUrl: requestQueue.url,
        ReceiptHandle: crashed?.ReceiptHandle,
        VisibilityTimeout: 0,
      }),
    );
    await sqs.send(new ReceiveMessageCommand({ QueueUrl: requestQueue.url }));
    expect(await depth(dlq.url)).toMatchObject({ visible: 3 });
    const progress: number[] = [];

    // Act
    const task = await replay({
      sqs,
      dlqArn: dlq.arn,
      requestQueueArn: requestQueue.arn,
      pollIntervalMs: 100,
      onProgress: (t) => progress.push(t.moved),
    });

    // Assess
    expect(task).toMatchObject({ status: 'COMPLETED', moved: 3 });
    expect(progress.at(-1)).toBe(3);
    const arrived = await receiveAll(requestQueue.url);
    expect(arrived.map((m) => m.Body).sort()).toEqual([
      '{"requestId":"crashed-1"}',
      '{"requestId":"parked-1"}',
      '{"requestId":"parked-2"}',
    ]);
    expect(arrived.find((m) => m.Body?.includes('parked-1'))?.MessageAttributes?.ErrorCode?.StringValue).toBe(
      'UNAUTHORIZED',
    );
    expect(await depth(dlq.url)).toEqual({ visible: 0, inFlight: 0 });
  });

  it('refuses a second replay while a move task runs on the DLQ', async () => {
    // Prepare
    for (let i = 0; i < 4; i++) await park(`{"requestId":"slow-${i}"}`, 'RATE_LIMITED');
    const running = await startSlowTask();

    // Act
    const second = replay({ sqs, dlqArn: dlq.arn, requestQueueArn: requestQueue.arn });

    // Assess
    await expect(second).rejects.toBeInstanceOf(ReplayRefusedError);
    await expect(second).rejects.toThrow(`already running on ${dlq.arn}`);
    await sqs.send(new CancelMessageMoveTaskCommand({ TaskHandle: running }));
  });

  it('dry run: counts the messages and their error codes, and leaves them in the DLQ, visible', async () => {
    // Prepare
    for (const code of ['RATE_LIMITED', 'UNAUTHORIZED', 'RATE_LIMITED', 'SECRET_NOT_FOUND', 'RATE_LIMITED']) {
      await park(`{"requestId":"${code}-${Math.random()}"}`, code);
    }

    // Act
    const result = await dryRun({ sqs, dlqUrl: dlq.url });

    // Assess
    expect(result).toEqual({
      count: 5,
      inFlight: 0,
      peeked: 5,
      errorCodes: [
        ['RATE_LIMITED', 3],
        ['SECRET_NOT_FOUND', 1],
        ['UNAUTHORIZED', 1],
      ],
    });
    expect(await depth(dlq.url)).toEqual({ visible: 5, inFlight: 0 });
    expect(await depth(requestQueue.url)).toEqual({ visible: 0, inFlight: 0 });
  });

  it('runs as `npm run replay`, finding ElasticMQ through AWS_ENDPOINT_URL', async () => {
    // Prepare
    await park('{"requestId":"cli-1"}', 'ATLAS_UNREACHABLE');
    await park('{"requestId":"cli-2"}', 'ATLAS_UNREACHABLE');
    const run = (...args: string[]) =>
      promisify(execFile)(process.execPath, ['--import', 'tsx', 'infra/ops/replay.ts', ...args], {
        cwd: ROOT,
        env: {
          ...process.env,
          AWS_ENDPOINT_URL: elasticMq.endpoint,
          AWS_REGION: REGION,
          AWS_ACCESS_KEY_ID: CREDENTIALS.accessKeyId,
          AWS_SECRET_ACCESS_KEY: CREDENTIALS.secretAccessKey,
        },
      });
    const queueFlags = ['--dlq-url', dlq.url, '--queue-url', requestQueue.url];

    // Act
    const dry = await run('--dry-run', ...queueFlags);
    const real = await run(...queueFlags, '--rate', '100');

    // Assess
    expect(dry.stdout).toContain(`would move ~2 message(s) from ${dlq.arn} to ${requestQueue.arn}`);
    expect(dry.stdout).toMatch(/ATLAS_UNREACHABLE\s+2/);
    expect(real.stdout).toContain('moved 2 message(s) to the request queue');
    expect(real.stderr).toContain('moved 2/2 (100%)');
    expect((await receiveAll(requestQueue.url)).map((m) => m.Body).sort()).toEqual([
      '{"requestId":"cli-1"}',
      '{"requestId":"cli-2"}',
    ]);
  });

  it('fails as a command with a one-line error and a non-zero exit code when a task is running', async () => {
    // A minute of work at one message a second: still running however slowly the command starts.
    for (let i = 0; i < 60; i++) await park(`{"requestId":"busy-${i}"}`, 'RATE_LIMITED');
    const running = await startSlowTask();

    const attempt = promisify(execFile)(
      process.execPath,
      ['--import', 'tsx', 'infra/ops/replay.ts', '--dlq-arn', dlq.arn, '--queue-arn', requestQueue.arn],
      {
        cwd: ROOT,
        env: {
          ...process.env,
          AWS_ENDPOINT_URL: elasticMq.endpoint,
          AWS_REGION: REGION,
          AWS_ACCESS_KEY_ID: CREDENTIALS.accessKeyId,
          AWS_SECRET_ACCESS_KEY: CREDENTIALS.secretAccessKey,
        },
      },
    );

    const failure = await attempt.then(
      () => undefined,
      (error: { code: number; stderr: string }) => error,
    );
    expect(failure?.code).toBe(1);
    expect(failure?.stderr).toMatch(/^error: a message move task is already running on .*\n$/);
    await sqs.send(new CancelMessageMoveTaskCommand({ TaskHandle: running }));
  });
});
