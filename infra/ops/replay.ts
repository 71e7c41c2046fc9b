/**
 * `npm run replay`: moves the dead-letter queue's messages back to the request queue with an SQS
 * message move task, and follows it to the end. `--dry-run` says how many would move and why
 * they failed (their ErrorCode attributes), moving nothing.
 */
import {
  ChangeMessageVisibilityBatchCommand,
  GetQueueAttributesCommand,
  ListMessageMoveTasksCommand,
  type ListMessageMoveTasksResultEntry,
  ReceiveMessageCommand,
  SQSClient,
  StartMessageMoveTaskCommand,
} from '@aws-sdk/client-sqs';
import { DEFAULT_STACK_NAME } from '#infra/names.ts';
import {
  CommandError,
  formatTable,
  integerFlag,
  isMain,
  ProgressBar,
  parseCommand,
  runMain,
  UsageError,
} from './cli.ts';
import { resolveResources, resourceFlags, resourcesFromFlags } from './resources.ts';

/** SQS's ceiling for MaxNumberOfMessagesPerSecond. */
export const MAX_RATE = 500;
/** Peeked messages stay hidden this long at most; they are made visible again as soon as counted. */
const PEEK_VISIBILITY_SECONDS = 30;
const ACTIVE = new Set(['RUNNING', 'CANCELLING']);

export interface ReplayOptions {
  sqs: SQSClient;
  /** The dead-letter queue: the task's source. */
  dlqArn: string;
  /** The request queue: always the destination (messages the function parked have no source queue). */
  requestQueueArn: string;
  /** Messages moved per second (MaxNumberOfMessagesPerSecond); SQS picks when omitted. */
  rate?: number;
  pollIntervalMs?: number;
  onProgress?: (task: MoveTask) => void;
}

export interface MoveTask {
  status: string;
  moved: number;
  /** How many the task set out to move. */
  toMove?: number;
  failureReason?: string;
}

/** A move task is already running on the DLQ; SQS allows one at a time. */
export class ReplayRefusedError extends CommandError {
  constructor(message: string) {
    super(message);
    this.name = 'ReplayRefusedError';
  }
}

const describeTask = (entry: ListMessageMoveTasksResultEntry): MoveTask => ({
  status: entry.Status ?? 'UNKNOWN',
  moved: entry.ApproximateNumberOfMessagesMoved ?? 0,
  ...(entry.ApproximateNumberOfMessagesToMove !== undefined && {
    toMove: entry.ApproximateNumberOfMessagesToMove,
  }),
  ...(entry.FailureReason && { failureReason: entry.FailureReason }),
});

async function recentTasks(sqs: SQSClient, dlqArn: string) {
  const out = await sqs.send(new ListMessageMoveTasksCommand({ SourceArn: dlqArn, MaxResults: 10 }));
  return out.Results ?? [];
}

/**
 * Starts a move task from the DLQ to the request queue and polls it until it ends. Refuses
 * (ReplayRefusedError) while another task runs on the DLQ.
 */
export async function replay(options: ReplayOptions): Promise<MoveTask> {
  const { sqs, dlqArn, requestQueueArn, rate } = options;
  if (rate !== undefined && (!Number.isInteger(rate) || rate < 1 || rate > MAX_RATE)) {
    throw new UsageError(`the rate must be a whole number of messages per second from 1 to ${MAX_RATE}`);
  }
  const running = (await recentTasks(sqs, dlqArn)).find((t) => ACTIVE.has(t.Status ?? ''));
  if (running) throw refusal(dlqArn, running);

  let handle: string | undefined;
  try {
    const started = await sqs.send(
      new StartMessageMoveTaskCommand({
        SourceArn: dlqArn,
        DestinationArn: requestQueueArn,
        ...(rate !== undefined && { MaxNumberOfMessagesPerSecond: rate }),
      }),
    );
    handle = started.TaskHandle;
  } catch (error) {
    // Another operator started one between the check and the start.
    if (error instanceof Error && /already running/i.test(error.message)) {
      const current = (await recentTasks(sqs, dlqArn)).find((t) => ACTIVE.has(t.Status ?? ''));
      if (current) throw refusal(dlqArn, current);
    }
    throw error;
  }

  for (;;) {
    const tasks = await recentTasks(sqs, dlqArn);
    // SQS lists the most recent first, and shows the handle only while a task runs.
    const entry = tasks.find((t) => handle !== undefined && t.TaskHandle === handle) ?? tasks[0];
    if (!entry) throw new Error(`the move task on ${dlqArn} is not listed by ListMessageMoveTasks`);
    const task = describeTask(entry);
    options.onProgress?.(task);
    if (!ACTIVE.has(task.status)) return task;
    await new Promise((r) => setTimeout(r, options.pollIntervalMs ?? 2_000));
  }
}

function refusal(dlqArn: string, running: ListMessageMoveTasksResultEntry): ReplayRefusedError {
  const task = describeTask(running);
  const since = running.StartedTimestamp ? ` since ${new Date(running.StartedTimestamp).toISOString()}` : '';
  const progress = task.toMove !== undefined ? `, ${task.moved} of ${task.toMove} moved` : '';
  const cancel = running.TaskHandle
    ? `, or cancel it with: aws sqs cancel-message-move-task --task-handle ${running.TaskHandle}`
    : '';
  return new ReplayRefusedError(
    `a message move task is already ${task.status.toLowerCase()} on ${dlqArn}${since}${progress}; ` +
      `wait for it to finish (npm run replay again then)${cancel}`,
  );
}

export interface DryRunOptions {
  sqs: SQSClient;
  dlqUrl: string;
  /** Most messages peeked for the error-code summary. Default 1000. */
  peekLimit?: number;
}

export interface DryRunResult {
  /** Messages a replay would move now (ApproximateNumberOfMessages). */
  count: number;
  /** Messages received by someone else just now (in flight); moved once visible again. */
  inFlight: number;
  peeked: number;
  /** ErrorCode attribute -> messages, most frequent first; "(none)" for messages without one. */
  errorCodes: Array<[string, number]>;
}

/**
 * Counts the DLQ's messages and summarises their ErrorCode attributes. Peeking is a receive: each
 * peeked message's receive count goes up by one; it is hidden for at most 30 s and made visible
 * again as soon as it is counted.
 */
export async function dryRun(options: DryRunOptions): Promise<DryRunResult> {
  const { sqs, dlqUrl } = options;
  const attributes = await sqs.send(
    new GetQueueAttributesCommand({
      QueueUrl: dlqUrl,
      AttributeNames: ['ApproximateNumberOfMessages', 'ApproximateNumberOfMessagesNotVisible'],
    }),
  );
  const count = Number(attributes.Attributes?.ApproximateNumberOfMessages ?? 0);
  const inFlight = Number(attributes.Attributes?.ApproximateNumberOfMessagesNotVisible ?? 0);
  const limit = Math.min(count, options.peekLimit ?? 1_000);
  const codes = new Map<string, number>();
  const handles: string[] = [];
  const seen = new Set<string>();
  try {
    while (seen.size < limit) {
      const out = await sqs.send(
        new ReceiveMessageCommand({
          QueueUrl: dlqUrl,
          MaxNumberOfMessages: Math.min(10, limit - seen.size),
          VisibilityTimeout: PEEK_VISIBILITY_SECONDS,
          // A short long-poll asks every SQS server, so an empty answer means none left to peek.
          WaitTimeSeconds: 1,
          MessageAttributeNames: ['ErrorCode'],
        }),
      );
      const messages = out.Messages ?? [];
      if (messages.length === 0) break;
      for (const message of messages) {
        if (message.ReceiptHandle) handles.push(message.ReceiptHandle);
        if (!message.MessageId || seen.has(message.MessageId)) continue;
        seen.add(message.MessageId);
        const code = message.MessageAttributes?.ErrorCode?.StringValue ?? '(none)';
        codes.set(code, (codes.get(code) ?? 0) + 1);
      }
    }
  } finally {
    await release(sqs, dlqUrl, handles);
  }
  const errorCodes = [...codes.entries()].sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]));
  return { count, inFlight, peeked: seen.size, errorCodes };
}

/** Makes peeked messages visible again at once. */
async function release(sqs: SQSClient, queueUrl: string, handles: string[]): Promise<void> {
  for (let i = 0; i < handles.length; i += 10) {
    const chunk = handles.slice(i, i + 10);
    await sqs.send(
      new ChangeMessageVisibilityBatchCommand({
        QueueUrl: queueUrl,
        Entries: chunk.map((handle, n) => ({ Id: String(n), ReceiptHandle: handle, VisibilityTimeout: 0 })),
      }),
    );
  }
}

const USAGE = `usage: npm run replay -- [--dry-run] [--rate <messages/s, 1-${MAX_RATE}>] [--requester <name>]
                       [--stack <name>] [--dlq-arn <arn>] [--dlq-url <url>] [--queue-arn <arn>] [--queue-url <url>]

Moves every message of the dead-letter queue back to the request queue (an SQS message move
task) and shows its progress. On a deployment with requesters, --requester names whose: its DLQ
moves to its own queue (from the stack's Requesters output), so the requests stay its own.
The continuation DLQ is not replayed. The queues come from the flags, else from DLQ_URL and
REQUEST_QUEUE_URL (as \`npm start -- --keep\` exports them) unless --stack is given, else from the
outputs of the deployed stack (default ${DEFAULT_STACK_NAME}). AWS_ENDPOINT_URL points it at an emulator.

  --dry-run   how many messages would move, and their error codes; moves nothing
  --rate      messages moved per second (default: SQS's own pace)`;

/** The command: parses argv, prints to stdout (results) and stderr (progress), resolves with the exit code. */
export async function main(argv: string[]): Promise<number> {
  const flags = parseCommand(
    {
      ...resourceFlags(['dlqArn', 'dlqUrl', 'requestQueueArn', 'requestQueueUrl']),
      'dry-run': { type: 'boolean' },
      rate: { type: 'string' },
      requester: { type: 'string' },
    },
    argv,
    USAGE,
  );
  if (!flags) return 0;
  const rate = integerFlag('rate', flags.rate, 1, MAX_RATE);
  const sqs = new SQSClient({});
  const given = resourcesFromFlags(flags);
  const stack = flags.stack;
  const requester = flags.requester;

  if (flags['dry-run']) {
    const r = await resolveResources(['dlqUrl', 'dlqArn', 'requestQueueArn'], {
      given,
      stack,
      requester,
      sqs,
    });
    const result = await dryRun({ sqs, dlqUrl: r.dlqUrl });
    console.log(`dry run: would move ~${result.count} message(s) from ${r.dlqArn} to ${r.requestQueueArn}`);
    if (result.inFlight > 0)
      console.log(`(${result.inFlight} more are in flight and move once visible again)`);
    if (result.peeked > 0) {
      console.log(`\nerror codes of the ${result.peeked} message(s) peeked:`);
      console.log(
        formatTable(
          ['ERROR CODE', 'MESSAGES'],
          result.errorCodes.map(([c, n]) => [c, String(n)]),
        ),
      );
      console.log(
        `\npeeking received each of them once: their receive counts went up by one, and they were made visible again at once.`,
      );
    }
    return 0;
  }

  const r = await resolveResources(['dlqArn', 'requestQueueArn'], { given, stack, requester, sqs });
  console.log(`replaying ${r.dlqArn} -> ${r.requestQueueArn}${rate ? ` at ${rate} message(s)/s` : ''}`);
  const bar = new ProgressBar('moved');
  const task = await replay({
    sqs,
    dlqArn: r.dlqArn,
    requestQueueArn: r.requestQueueArn,
    ...(rate !== undefined && { rate }),
    // SQS keeps toMove at the starting count; some implementations count it down instead.
    onProgress: (t) => bar.update(t.moved, Math.max(t.moved, t.toMove ?? 0)),
  });
  if (task.status !== 'COMPLETED') {
    console.error(
      `the move task ended ${task.status} after moving ${task.moved} message(s)` +
        (task.failureReason ? `: ${task.failureReason}` : ''),
    );
    return 1;
  }
  console.log(`moved ${task.moved} message(s) to the request queue`);
  return 0;
}

if (isMain(import.meta)) await runMain(() => main(process.argv.slice(2)));
