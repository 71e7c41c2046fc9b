/**
 * Helpers of the end-to-end tests: bounded waits that fail with a description of the state,
 * and reads of the ground truth (queues, ledger, simulator).
 */
import {
  ChangeMessageVisibilityBatchCommand,
  GetQueueAttributesCommand,
  type Message,
  ReceiveMessageCommand,
  type SQSClient,
} from '@aws-sdk/client-sqs';
import { ScanCommand } from '@aws-sdk/lib-dynamodb';
import { afterAll, afterEach } from 'vitest';
import type { LedgerItem } from '#ledger/ledger.ts';
import { fromRaw } from '#ledger/table.ts';
import type { ProvisionRequestInput } from '#messages/request.ts';
import { captureProcessOutput } from '#test/local/capture.ts';
import type { LocalEnvironment } from '#test/local/environment.ts';
import type { LocalFlow } from '#test/local/flow.ts';
import type { AtlasSimulator } from '#test/simulator/types.ts';

export interface EventuallyOptions {
  timeoutMs: number;
  what: string;
  intervalMs?: number;
  /** Described in the failure. */
  state?: () => Promise<string> | string;
}

/**
 * Polls `check` until it returns something other than undefined or false, for state no event
 * announces (queue depths, the ledger, the simulator). Fails after the timeout with the state.
 */
export async function eventually<T>(
  check: () => Promise<T | undefined | false> | T | undefined | false,
  options: EventuallyOptions,
): Promise<T> {
  const deadline = Date.now() + options.timeoutMs;
  for (;;) {
    const value = await check();
    if (value !== undefined && value !== false) return value;
    if (Date.now() >= deadline) {
      const state = options.state ? `\n${await options.state()}` : '';
      throw new Error(`timed out after ${options.timeoutMs} ms waiting for ${options.what}${state}`);
    }
    await new Promise((ok) => setTimeout(ok, options.intervalMs ?? 200));
  }
}

/** The flow's Atlas simulator; the e2e tests start every flow with one. */
export function simulatorOf(flow: LocalFlow): AtlasSimulator {
  if (!flow.simulator) throw new Error('the flow has no simulator');
  return flow.simulator;
}

/** Messages in a queue: visible, in flight and delayed. */
export async function queueDepth(sqs: SQSClient, queueUrl: string): Promise<number> {
  const { Attributes = {} } = await sqs.send(
    new GetQueueAttributesCommand({
      QueueUrl: queueUrl,
      AttributeNames: [
        'ApproximateNumberOfMessages',
        'ApproximateNumberOfMessagesNotVisible',
        'ApproximateNumberOfMessagesDelayed',
      ],
    }),
  );
  return (
    Number(Attributes.ApproximateNumberOfMessages ?? 0) +
    Number(Attributes.ApproximateNumberOfMessagesNotVisible ?? 0) +
    Number(Attributes.ApproximateNumberOfMessagesDelayed ?? 0)
  );
}

/**
 * Reads every visible message of a queue with its attributes and leaves them there: pages
 * through with a visibility timeout, then makes them all visible again.
 */
export async function peekQueue(sqs: SQSClient, queueUrl: string): Promise<Message[]> {
  const seen = new Map<string, Message>();
  for (;;) {
    const { Messages = [] } = await sqs.send(
      new ReceiveMessageCommand({
        QueueUrl: queueUrl,
        MaxNumberOfMessages: 10,
        VisibilityTimeout: 30,
        WaitTimeSeconds: 0,
        MessageSystemAttributeNames: ['All'],
        MessageAttributeNames: ['All'],
      }),
    );
    if (Messages.length === 0) break;
    for (const m of Messages) seen.set(m.MessageId ?? '', m);
  }
  const all = [...seen.values()];
  for (let i = 0; i < all.length; i += 10) {
    await sqs.send(
      new ChangeMessageVisibilityBatchCommand({
        QueueUrl: queueUrl,
        Entries: all.slice(i, i + 10).map((m, n) => ({
          Id: String(n),
          ReceiptHandle: m.ReceiptHandle,
          VisibilityTimeout: 0,
        })),
      }),
    );
  }
  return all;
}

/** A message attribute's string value. */
export const attribute = (message: Message, name: string) => message.MessageAttributes?.[name]?.StringValue;

/** Every ledger item (a test table is small). */
export async function ledgerItems(environment: LocalEnvironment): Promise<LedgerItem[]> {
  const items: LedgerItem[] = [];
  let ExclusiveStartKey: Record<string, unknown> | undefined;
  do {
    const out = await environment.clients.dynamo.send(
      new ScanCommand({ TableName: environment.tableName, ConsistentRead: true, ExclusiveStartKey }),
    );
    for (const raw of out.Items ?? []) {
      const item = fromRaw(raw);
      const sorted = Object.entries(item.requesters).map(([name, ids]) => [name, [...ids].sort()]);
      items.push({ ...item, requesters: Object.fromEntries(sorted) });
    }
    ExclusiveStartKey = out.LastEvaluatedKey;
  } while (ExclusiveStartKey);
  return items;
}

/**
 * The ledger once `ready` holds for all its items. The checker announces a change before it
 * writes it, so right after the last event the ledger may still trail by one write.
 */
export function settledLedger(
  environment: LocalEnvironment,
  ready: (item: LedgerItem) => boolean,
  timeoutMs = 10_000,
): Promise<LedgerItem[]> {
  return eventually(
    async () => {
      const items = await ledgerItems(environment);
      return items.length > 0 && items.every(ready) && items;
    },
    {
      timeoutMs,
      what: 'the ledger to record the final statuses',
      state: async () => JSON.stringify((await ledgerItems(environment)).map((i) => [i.key, i.status])),
    },
  );
}

/**
 * The endpoint a request or an Atlas endpoint stands for: project, provider, region, and VPC
 * region (the region itself when none is named, as the provisioner matches them).
 */
export const endpointKey = (e: {
  groupId: string;
  cloudProvider?: string;
  regionName: string;
  vpcRegionName?: string;
}) => `${e.groupId}#${e.cloudProvider ?? 'AWS'}#${e.regionName}#${e.vpcRegionName ?? e.regionName}`;

/** A request body; `cloudProvider` defaults to AWS. */
export const body = (request: Omit<ProvisionRequestInput, 'cloudProvider'> & { cloudProvider?: 'AWS' }) =>
  JSON.stringify({ cloudProvider: 'AWS', ...request });

/**
 * Keeps what the functions print out of the test report, and prints its tail under a failed
 * test, where it explains the failure. Returns the sink for functions run in child processes.
 */
export function keepFunctionLogs(): (text: string) => void {
  const lines: string[] = [];
  const sink = (text: string) => {
    lines.push(...text.split('\n').filter(Boolean));
    if (lines.length > 2000) lines.splice(0, lines.length - 2000);
  };
  const capture = captureProcessOutput(sink);
  afterEach((context) => {
    if (context.task.result?.state === 'fail') {
      console.log(`function logs (last 200 lines):\n${lines.slice(-200).join('\n')}`);
    }
  });
  afterAll(() => capture.restore());
  return sink;
}

export { replayDlq } from '#test/local/replay.ts';
