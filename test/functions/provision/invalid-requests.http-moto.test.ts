/**
 * The invalid-request corpus (test/fixtures/invalid-requests.ts) through the real provisioning
 * handler module, with real SQS, Secrets Manager, DynamoDB and EventBridge APIs (moto) and the
 * Atlas simulator over HTTP, both started here once: every body is rejected with a reason naming
 * its problem, answered by a status event its sender can match, parked in the rejected queue
 * unchanged, and never acted on (no Atlas request, no ledger item).
 */
import { randomBytes } from 'node:crypto';
import {
  DeleteMessageBatchCommand,
  type Message,
  ReceiveMessageCommand,
  SendMessageCommand,
} from '@aws-sdk/client-sqs';
import { ScanCommand } from '@aws-sdk/lib-dynamodb';
import type { SQSBatchResponse, SQSEvent } from 'aws-lambda';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type StatusChangedDetail, StatusChangedDetailSchema } from '#events/schema.ts';
import { parkedAttributes } from '#messages/queues.ts';
import { INVALID_REQUESTS, type InvalidRequest } from '#test/fixtures/invalid-requests.ts';
import { type CapturedOutput, captureProcessOutput } from '#test/local/capture.ts';
import { type Moto, startMoto } from '#test/local/emulators.ts';
import { createLocalEnvironment, type LocalEnvironment, localSettings } from '#test/local/environment.ts';
import { PROVISION_HANDLER } from '#test/local/flow.ts';
import { loadHandler } from '#test/local/in-process-invoker.ts';
import type { LambdaHandler } from '#test/local/invocation.ts';
import { startAtlasSimulator } from '#test/simulator/index.ts';
import type { AtlasSimulator } from '#test/simulator/types.ts';
import { lambdaContext, recordFromMessage, sqsEvent } from '#test/support/sqs-events.ts';

const account = {
  clientId: 'mdb_sa_id_corpus',
  clientSecret: `mdb_sa_sk_${randomBytes(24).toString('base64url')}`,
};
const BATCH_SIZE = 10;

let sim: AtlasSimulator;
let moto: Moto;
let env: LocalEnvironment;
let capture: CapturedOutput;
const realConsole = { ...console };

/** What became of each corpus entry. */
interface Answer {
  messageId: string;
  failed: boolean;
  events: StatusChangedDetail[];
  parked: Message[];
}
const answers = new Map<InvalidRequest, Answer>();
let allEvents: StatusChangedDetail[] = [];
let allParked: Message[] = [];

async function receiveAll(client: LocalEnvironment['clients']['sqs'], queueUrl: string, count: number) {
  const messages: Message[] = [];
  const deadline = Date.now() + 15_000;
  while (messages.length < count && Date.now() < deadline) {
    const { Messages = [] } = await client.send(
      new ReceiveMessageCommand({
        QueueUrl: queueUrl,
        MaxNumberOfMessages: Math.min(10, count - messages.length),
        WaitTimeSeconds: 1,
        MessageSystemAttributeNames: ['All'],
        MessageAttributeNames: ['All'],
      }),
    );
    messages.push(...Messages);
    if (Messages.length > 0) {
      await client.send(
        new DeleteMessageBatchCommand({
          QueueUrl: queueUrl,
          Entries: Messages.map((m, i) => ({ Id: String(i), ReceiptHandle: m.ReceiptHandle })),
        }),
      );
    }
  }
  return messages;
}

/** Sends a batch of entries, receives them as Lambda's event source does and invokes the handler. */
async function runBatch(
  handler: LambdaHandler<SQSEvent, SQSBatchResponse>,
  entries: readonly InvalidRequest[],
): Promise<void> {
  const byMessageId = new Map<string, InvalidRequest>();
  for (const entry of entries) {
    const sent = await env.clients.sqs.send(
      new SendMessageCommand({ QueueUrl: env.requestQueue.url, MessageBody: entry.body }),
    );
    byMessageId.set(sent.MessageId ?? '', entry);
  }
  const messages = await receiveAll(env.clients.sqs, env.requestQueue.url, entries.length);
  expect(messages.map((m) => m.MessageId).sort()).toEqual([...byMessageId.keys()].sort());
  const records = messages.map((m) => recordFromMessage(m, env.requestQueue.arn));
  const response = await handler(sqsEvent(...records), lambdaContext());
  const failed = new Set(response.batchItemFailures.map((f) => f.itemIdentifier));
  for (const [messageId, entry] of byMessageId) {
    answers.set(entry, { messageId, failed: failed.has(messageId), events: [], parked: [] });
  }
}

beforeAll(async () => {
  capture = captureProcessOutput(() => undefined);
  for (const level of ['log', 'info', 'warn', 'error', 'debug'] as const) console[level] = () => undefined;

  [sim, moto] = await Promise.all([
    startAtlasSimulator({ serviceAccounts: [account], rateLimit: false }),
    startMoto(),
  ]);
  env = await createLocalEnvironment({
    settings: localSettings({ atlasBaseUrl: sim.url, allowedProfiles: ['default'] }),
    sqsEndpoint: moto.endpoint,
    awsEndpoint: moto.endpoint,
    visibilityTimeoutSeconds: 30,
    name: 'invalid-corpus',
    secrets: { default: { ClientId: account.clientId, ClientSecret: account.clientSecret } },
  });
  const handler = await loadHandler<SQSEvent, SQSBatchResponse>(PROVISION_HANDLER, env.provisionEnvironment);

  for (let i = 0; i < INVALID_REQUESTS.length; i += BATCH_SIZE) {
    await runBatch(handler, INVALID_REQUESTS.slice(i, i + BATCH_SIZE));
  }

  allEvents = (
    await receiveAll(env.clients.eventsSqs, env.statusEventQueue.url, INVALID_REQUESTS.length)
  ).map((m) => StatusChangedDetailSchema.parse(JSON.parse(m.Body ?? '{}').detail));
  allParked = await receiveAll(env.clients.sqs, env.rejectedQueue.url, INVALID_REQUESTS.length);
  for (const answer of answers.values()) {
    answer.events = allEvents.filter((e) => e.messageId === answer.messageId);
  }
  for (const [entry, answer] of answers) answer.parked = allParked.filter((m) => m.Body === entry.body);
}, 180_000);

afterAll(async () => {
  capture?.restore();
  Object.assign(console, realConsole);
  env?.close();
  await Promise.all([sim?.close(), moto?.stop()]);
});

const attribute = (message: Message | undefined, name: string) =>
  message?.MessageAttributes?.[name]?.StringValue;

describe('the invalid-request corpus through the real handler', () => {
  it('holds at least 80 distinct bodies', () => {
    expect(INVALID_REQUESTS.length).toBeGreaterThanOrEqual(80);
    expect(new Set(INVALID_REQUESTS.map((e) => e.body)).size).toBe(INVALID_REQUESTS.length);
  });

  it('answers every body with exactly one event and parks each exactly once, and nothing else', () => {
    expect(answers.size).toBe(INVALID_REQUESTS.length);
    expect(allEvents).toHaveLength(INVALID_REQUESTS.length);
    expect(allParked).toHaveLength(INVALID_REQUESTS.length);
  });

  it('never calls Atlas and never writes the ledger for any of them', async () => {
    expect(sim.requests).toEqual([]);
    expect(sim.endpoints()).toEqual([]);
    const { Items = [] } = await env.clients.dynamo.send(new ScanCommand({ TableName: env.tableName }));
    expect(Items).toEqual([]);
  });

  it.each(INVALID_REQUESTS.map((entry) => [entry.name, entry] as const))('rejects %s', (_, entry) => {
    const answer = answers.get(entry);
    const code = entry.code ?? 'INVALID_REQUEST';

    // Acknowledged, never retried.
    expect(answer?.failed).toBe(false);

    // One REJECTED event matchable by messageId, and by requestId when one could be read.
    expect(answer?.events).toHaveLength(1);
    const [event] = answer?.events ?? [];
    expect(event).toMatchObject({ outcome: 'REJECTED', messageId: answer?.messageId, error: { code } });
    expect(event?.requestIds).toEqual(entry.requestId !== undefined ? [entry.requestId] : []);
    expect(event?.error?.detail).toContain(entry.reason);

    // Parked unchanged in the rejected queue with its reason.
    expect(answer?.parked).toHaveLength(1);
    const [parked] = answer?.parked ?? [];
    expect(attribute(parked, 'ErrorCode')).toBe(code);
    expect(attribute(parked, 'Detail')).toContain(entry.reason);
    const requestId =
      entry.requestId === undefined
        ? undefined
        : parkedAttributes({
            failure: { disposition: 'reject', code, detail: '' },
            attempts: 1,
            firstFailureAt: '',
            lastFailureAt: '',
            requestId: entry.requestId,
          }).RequestId?.StringValue;
    expect(attribute(parked, 'RequestId')).toBe(requestId);
  });
});
