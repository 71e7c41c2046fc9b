import {
  ChangeMessageVisibilityBatchCommand,
  GetQueueAttributesCommand,
  ListMessageMoveTasksCommand,
  type Message,
  ReceiveMessageCommand,
  SQSClient,
  StartMessageMoveTaskCommand,
  UnsupportedOperation,
} from '@aws-sdk/client-sqs';
import { mockClient } from 'aws-sdk-client-mock';
import { beforeEach, describe, expect, it, vi } from 'vitest';
import { UsageError } from '#infra/ops/cli.ts';
import { dryRun, main, ReplayRefusedError, replay } from '#infra/ops/replay.ts';

const sqs = mockClient(SQSClient);
const client = new SQSClient({ region: 'us-east-1' });

const ACCOUNT = 'arn:aws:sqs:us-east-1:123456789012';
const DLQ_ARN = `${ACCOUNT}:requests-dlq`;
const QUEUE_ARN = `${ACCOUNT}:requests`;
const DLQ_URL = 'https://sqs.us-east-1.amazonaws.com/123456789012/requests-dlq';
const QUEUE_URL = 'https://sqs.us-east-1.amazonaws.com/123456789012/requests';

const task = (Status: string, moved: number, toMove: number, extra: object = {}) => ({
  Results: [
    {
      Status,
      SourceArn: DLQ_ARN,
      DestinationArn: QUEUE_ARN,
      ApproximateNumberOfMessagesMoved: moved,
      ApproximateNumberOfMessagesToMove: toMove,
      StartedTimestamp: 1_796_000_000_000,
      ...extra,
    },
  ],
});

const message = (id: string, errorCode?: string): Message => ({
  MessageId: id,
  ReceiptHandle: `handle-${id}`,
  Body: '{}',
  ...(errorCode && { MessageAttributes: { ErrorCode: { DataType: 'String', StringValue: errorCode } } }),
});

describe('replay', () => {
  beforeEach(() => {
    sqs.reset();
  });

  it('refuses, naming the running task, while a move task runs on the DLQ', async () => {
    sqs.on(ListMessageMoveTasksCommand).resolves(task('RUNNING', 40, 100, { TaskHandle: 'task-1' }));

    const attempt = replay({ sqs: client, dlqArn: DLQ_ARN, requestQueueArn: QUEUE_ARN });

    await expect(attempt).rejects.toBeInstanceOf(ReplayRefusedError);
    await expect(attempt).rejects.toThrow(/already running on .*requests-dlq.*40 of 100 moved.*task-1/);
    expect(sqs).not.toHaveReceivedCommand(StartMessageMoveTaskCommand);
  });

  it('always sends the request queue as the destination, with the rate asked for', async () => {
    // Prepare
    sqs
      .on(ListMessageMoveTasksCommand)
      .resolvesOnce(task('COMPLETED', 3, 3))
      .resolves(task('COMPLETED', 7, 7, { TaskHandle: 'task-2' }));
    sqs.on(StartMessageMoveTaskCommand).resolves({ TaskHandle: 'task-2' });

    // Act
    const result = await replay({ sqs: client, dlqArn: DLQ_ARN, requestQueueArn: QUEUE_ARN, rate: 50 });

    // Assess
    expect(result).toEqual({ status: 'COMPLETED', moved: 7, toMove: 7 });
    expect(sqs).toHaveReceivedCommandExactlyOnceWith(StartMessageMoveTaskCommand, {
      SourceArn: DLQ_ARN,
      DestinationArn: QUEUE_ARN,
      MaxNumberOfMessagesPerSecond: 50,
    });
  });

  it('leaves the pace to SQS when no rate is given', async () => {
    sqs
      .on(ListMessageMoveTasksCommand)
      .resolvesOnce({ Results: [] })
      .resolves(task('COMPLETED', 1, 1));
    sqs.on(StartMessageMoveTaskCommand).resolves({ TaskHandle: 'task-3' });

    await replay({ sqs: client, dlqArn: DLQ_ARN, requestQueueArn: QUEUE_ARN });

    const input = sqs.commandCalls(StartMessageMoveTaskCommand)[0]?.args[0].input;
    expect(input).toEqual({ SourceArn: DLQ_ARN, DestinationArn: QUEUE_ARN });
  });

  it('reports progress until the task completes and returns how many moved', async () => {
    // Prepare
    sqs
      .on(ListMessageMoveTasksCommand)
      .resolvesOnce({ Results: [] })
      .resolvesOnce(task('RUNNING', 0, 25, { TaskHandle: 'task-4' }))
      .resolvesOnce(task('RUNNING', 12, 25, { TaskHandle: 'task-4' }))
      .resolves(task('COMPLETED', 25, 25));
    sqs.on(StartMessageMoveTaskCommand).resolves({ TaskHandle: 'task-4' });
    const onProgress = vi.fn();

    // Act
    const result = await replay({
      sqs: client,
      dlqArn: DLQ_ARN,
      requestQueueArn: QUEUE_ARN,
      pollIntervalMs: 0,
      onProgress,
    });

    // Assess
    expect(result).toMatchObject({ status: 'COMPLETED', moved: 25 });
    expect(onProgress.mock.calls.map(([t]) => [t.status, t.moved])).toEqual([
      ['RUNNING', 0],
      ['RUNNING', 12],
      ['COMPLETED', 25],
    ]);
  });

  it('returns a failed task with its reason', async () => {
    sqs
      .on(ListMessageMoveTasksCommand)
      .resolvesOnce({ Results: [] })
      .resolves(task('FAILED', 2, 9, { FailureReason: 'AWS.SimpleQueueService.NonExistentQueue' }));
    sqs.on(StartMessageMoveTaskCommand).resolves({ TaskHandle: 'task-5' });

    await expect(replay({ sqs: client, dlqArn: DLQ_ARN, requestQueueArn: QUEUE_ARN })).resolves.toEqual({
      status: 'FAILED',
      moved: 2,
      toMove: 9,
      failureReason: 'AWS.SimpleQueueService.NonExistentQueue',
    });
  });

  it('refuses when another operator started a task between the check and the start', async () => {
    sqs
      .on(ListMessageMoveTasksCommand)
      .resolvesOnce({ Results: [] })
      .resolves(task('RUNNING', 1, 9, { TaskHandle: 'theirs' }));
    sqs
      .on(StartMessageMoveTaskCommand)
      .rejects(
        new UnsupportedOperation({ message: 'A message move task is already running', $metadata: {} }),
      );

    await expect(replay({ sqs: client, dlqArn: DLQ_ARN, requestQueueArn: QUEUE_ARN })).rejects.toThrow(
      ReplayRefusedError,
    );
  });

  it.each([0, 501, 2.5])('refuses the rate %s before calling SQS', async (rate) => {
    await expect(replay({ sqs: client, dlqArn: DLQ_ARN, requestQueueArn: QUEUE_ARN, rate })).rejects.toThrow(
      UsageError,
    );
    expect(sqs.calls()).toHaveLength(0);
  });
});

describe('dryRun', () => {
  beforeEach(() => {
    sqs.reset();
    sqs.on(ChangeMessageVisibilityBatchCommand).resolves({ Successful: [] });
  });

  it('counts the messages and summarises their error codes, moving nothing', async () => {
    // Prepare
    sqs.on(GetQueueAttributesCommand).resolves({
      Attributes: { ApproximateNumberOfMessages: '4', ApproximateNumberOfMessagesNotVisible: '1' },
    });
    sqs
      .on(ReceiveMessageCommand)
      .resolvesOnce({ Messages: [message('1', 'RATE_LIMITED'), message('2', 'UNAUTHORIZED')] })
      .resolvesOnce({ Messages: [message('3', 'RATE_LIMITED'), message('4')] })
      .resolves({});

    // Act
    const result = await dryRun({ sqs: client, dlqUrl: DLQ_URL });

    // Assess
    expect(result).toEqual({
      count: 4,
      inFlight: 1,
      peeked: 4,
      errorCodes: [
        ['RATE_LIMITED', 2],
        ['(none)', 1],
        ['UNAUTHORIZED', 1],
      ],
    });
    expect(sqs).not.toHaveReceivedCommand(StartMessageMoveTaskCommand);
  });

  it('peeks with a short visibility timeout and makes every peeked message visible again at once', async () => {
    // Prepare
    sqs.on(GetQueueAttributesCommand).resolves({ Attributes: { ApproximateNumberOfMessages: '12' } });
    const batch = (from: number, n: number) =>
      Array.from({ length: n }, (_, i) => message(String(from + i), 'X'));
    sqs
      .on(ReceiveMessageCommand)
      .resolvesOnce({ Messages: batch(0, 10) })
      .resolvesOnce({ Messages: batch(10, 2) });

    // Act
    await dryRun({ sqs: client, dlqUrl: DLQ_URL });

    // Assess
    expect(sqs).toHaveReceivedCommandWith(ReceiveMessageCommand, {
      QueueUrl: DLQ_URL,
      VisibilityTimeout: 30,
      MessageAttributeNames: ['ErrorCode'],
    });
    const released = sqs
      .commandCalls(ChangeMessageVisibilityBatchCommand)
      .flatMap((c) => c.args[0].input.Entries ?? []);
    expect(released.map((e) => e.ReceiptHandle).sort()).toEqual(
      Array.from({ length: 12 }, (_, i) => `handle-${i}`).sort(),
    );
    expect(released.every((e) => e.VisibilityTimeout === 0)).toBe(true);
  });

  it('peeks at most peekLimit messages, and none from an empty queue', async () => {
    sqs.on(GetQueueAttributesCommand).resolves({ Attributes: { ApproximateNumberOfMessages: '500' } });
    sqs.on(ReceiveMessageCommand).callsFake((input: { MaxNumberOfMessages: number }) => ({
      Messages: Array.from({ length: input.MaxNumberOfMessages }, () => message(crypto.randomUUID(), 'X')),
    }));

    await expect(dryRun({ sqs: client, dlqUrl: DLQ_URL, peekLimit: 15 })).resolves.toMatchObject({
      count: 500,
      peeked: 15,
    });

    sqs.on(GetQueueAttributesCommand).resolves({ Attributes: { ApproximateNumberOfMessages: '0' } });
    sqs.resetHistory();
    await expect(dryRun({ sqs: client, dlqUrl: DLQ_URL })).resolves.toMatchObject({ count: 0, peeked: 0 });
    expect(sqs).not.toHaveReceivedCommand(ReceiveMessageCommand);
  });

  it('counts a message received twice once', async () => {
    sqs.on(GetQueueAttributesCommand).resolves({ Attributes: { ApproximateNumberOfMessages: '3' } });
    sqs
      .on(ReceiveMessageCommand)
      .resolvesOnce({ Messages: [message('1', 'A'), message('2', 'B')] })
      .resolvesOnce({ Messages: [message('1', 'A')] })
      .resolves({});

    await expect(dryRun({ sqs: client, dlqUrl: DLQ_URL })).resolves.toMatchObject({
      peeked: 2,
      errorCodes: [
        ['A', 1],
        ['B', 1],
      ],
    });
  });

  it('makes the messages peeked so far visible again when a receive fails', async () => {
    sqs.on(GetQueueAttributesCommand).resolves({ Attributes: { ApproximateNumberOfMessages: '30' } });
    sqs
      .on(ReceiveMessageCommand)
      .resolvesOnce({ Messages: [message('1', 'A')] })
      .rejects(new Error('socket hang up'));

    await expect(dryRun({ sqs: client, dlqUrl: DLQ_URL })).rejects.toThrow('socket hang up');
    expect(sqs).toHaveReceivedCommandWith(ChangeMessageVisibilityBatchCommand, {
      Entries: [{ Id: '0', ReceiptHandle: 'handle-1', VisibilityTimeout: 0 }],
    });
  });
});

describe('npm run replay', () => {
  let out: string[];

  beforeEach(() => {
    sqs.reset();
    out = [];
    vi.spyOn(console, 'log').mockImplementation((line: string) => out.push(line));
    vi.spyOn(console, 'error').mockImplementation((line: string) => out.push(line));
    vi.spyOn(process.stderr, 'write').mockImplementation(() => true);
    vi.stubEnv('AWS_REGION', 'us-east-1');
  });

  it('replays with the queues named by flags and prints how many moved', async () => {
    sqs
      .on(ListMessageMoveTasksCommand)
      .resolvesOnce({ Results: [] })
      .resolves(task('COMPLETED', 5, 5));
    sqs.on(StartMessageMoveTaskCommand).resolves({ TaskHandle: 'task-6' });

    const code = await main(['--dlq-arn', DLQ_ARN, '--queue-arn', QUEUE_ARN, '--rate', '10']);

    expect(code).toBe(0);
    expect(out.at(-1)).toBe('moved 5 message(s) to the request queue');
    expect(sqs).toHaveReceivedCommandWith(StartMessageMoveTaskCommand, { MaxNumberOfMessagesPerSecond: 10 });
  });

  it('exits non-zero when the task does not complete', async () => {
    sqs
      .on(ListMessageMoveTasksCommand)
      .resolvesOnce({ Results: [] })
      .resolves(task('CANCELLED', 1, 5));
    sqs.on(StartMessageMoveTaskCommand).resolves({ TaskHandle: 'task-7' });

    await expect(main(['--dlq-arn', DLQ_ARN, '--queue-arn', QUEUE_ARN])).resolves.toBe(1);
    expect(out.at(-1)).toMatch(/ended CANCELLED after moving 1 message/);
  });

  it('prints the dry run: count, error codes, and that peeking received the messages', async () => {
    sqs.on(GetQueueAttributesCommand).resolves({ Attributes: { ApproximateNumberOfMessages: '1' } });
    sqs.on(ReceiveMessageCommand).resolvesOnce({ Messages: [message('1', 'UNAUTHORIZED')] });
    sqs.on(ChangeMessageVisibilityBatchCommand).resolves({});

    const code = await main([
      '--dry-run',
      '--dlq-url',
      DLQ_URL,
      '--dlq-arn',
      DLQ_ARN,
      '--queue-arn',
      QUEUE_ARN,
    ]);

    expect(code).toBe(0);
    const text = out.join('\n');
    expect(text).toContain(`would move ~1 message(s) from ${DLQ_ARN} to ${QUEUE_ARN}`);
    expect(text).toMatch(/UNAUTHORIZED\s+1/);
    expect(text).toContain('receive counts went up by one');
    expect(sqs).not.toHaveReceivedCommand(StartMessageMoveTaskCommand);
  });

  it('dry-runs on the queues DLQ_URL and REQUEST_QUEUE_URL name, as `npm start -- --keep` exports them', async () => {
    vi.stubEnv('DLQ_URL', DLQ_URL);
    vi.stubEnv('REQUEST_QUEUE_URL', QUEUE_URL);
    sqs.on(GetQueueAttributesCommand, { QueueUrl: DLQ_URL }).resolves({
      Attributes: { QueueArn: DLQ_ARN, ApproximateNumberOfMessages: '0' },
    });
    sqs
      .on(GetQueueAttributesCommand, { QueueUrl: QUEUE_URL })
      .resolves({ Attributes: { QueueArn: QUEUE_ARN } });

    await expect(main(['--dry-run'])).resolves.toBe(0);

    expect(out.join('\n')).toContain(`would move ~0 message(s) from ${DLQ_ARN} to ${QUEUE_ARN}`);
  });

  it('fails with the usage on an unknown flag', async () => {
    await expect(main(['--dlq', DLQ_ARN])).rejects.toMatchObject({
      name: 'UsageError',
      message: expect.stringContaining("Unknown option '--dlq'"),
      usage: expect.stringContaining('usage: npm run replay'),
    });
  });
});
