import { EventBridgeClient, PutEventsCommand } from '@aws-sdk/client-eventbridge';
import { ChangeMessageVisibilityCommand, SendMessageCommand, SQSClient } from '@aws-sdk/client-sqs';
import { DynamoDBDocumentClient, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { mockClient } from 'aws-sdk-client-mock';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { provisionEnvironment, resolveSettings } from '#infra/settings.ts';
import { FUNCTION_VARIABLES, VARIABLES } from '#runtime/environment.ts';
import { captureOutput, importWithEnv } from '#test/support/handler-module.ts';
import { lambdaContext, loadEvent, sqsEvent, sqsRecord } from '#test/support/sqs-events.ts';

const sqs = mockClient(SQSClient);
const ddb = mockClient(DynamoDBDocumentClient);
const eventBridge = mockClient(EventBridgeClient);

const QUEUE = 'https://sqs.us-east-1.amazonaws.com/123456789012';
/** What the stack gives the function with every setting at its default. */
const ENV: Record<string, string> = {
  AWS_REGION: 'us-east-1',
  ...provisionEnvironment(resolveSettings(), {
    ledgerTableName: 'ledger',
    requesters: [
      {
        name: 'default',
        // The queue the events/ fixtures' records come from.
        queueArn: 'arn:aws:sqs:us-east-1:123456789012:atlas-backup-private-endpoints-requests',
        queueUrl: `${QUEUE}/atlas-backup-private-endpoints-requests`,
        dlqUrl: `${QUEUE}/requests-dlq`,
        projects: 'ALL',
        profiles: ['default'],
        actions: ['create', 'delete'],
      },
    ],
    continuationQueueUrl: `${QUEUE}/continuations`,
    continuationQueueArn: 'arn:aws:sqs:us-east-1:123456789012:continuations',
    rejectedQueueUrl: `${QUEUE}/requests-rejected`,
  }),
  POWERTOOLS_LOG_LEVEL: 'SILENT',
  POWERTOOLS_METRICS_DISABLED: 'true',
};

const loadHandler = async (env: Record<string, string>) =>
  (await importWithEnv(env, () => import('../../../functions/provision/handler.ts'))).handler;

describe('provision handler', () => {
  beforeEach(() => {
    sqs.reset();
    ddb.reset();
    eventBridge.reset();
    eventBridge.on(PutEventsCommand).resolves({ FailedEntryCount: 0, Entries: [{ EventId: '1' }] });
    // DynamoDB refusing every write: a failure nobody expected, retried as a record.
    ddb.on(UpdateCommand).rejects(new Error('ProvisionedThroughputExceededException'));
  });

  afterEach(() => {
    vi.unstubAllEnvs();
  });

  it('fails the cold start with a message naming each missing or bad variable', async () => {
    const { LEDGER_TABLE_NAME: _, CONTINUATION_QUEUE_URL: __, ...partial } = ENV;

    await expect(
      loadHandler({ ...partial, MAX_ATTEMPTS: '0', REQUESTERS: '[{"name":"Bad Name"}]' }),
    ).rejects.toThrow(/LEDGER_TABLE_NAME: .*REQUESTERS\.0\.name: .*CONTINUATION_QUEUE_URL: .*MAX_ATTEMPTS: /);
  });

  it('reads its environment through the contract: without any variable, the cold start names each it reads', async () => {
    const start = loadHandler({ AWS_REGION: 'us-east-1', POWERTOOLS_LOG_LEVEL: 'SILENT' });

    const pattern = FUNCTION_VARIABLES.provision.map((o) => `${VARIABLES[o].name}: `).join('.*');
    await expect(start).rejects.toThrow(new RegExp(pattern));
  });

  it('acknowledges rejected records and reports only the record to retry as a batch item failure', async () => {
    // Prepare
    const handler = await loadHandler(ENV);
    const event = loadEvent('sqs-batch-invalid');
    const [valid] = event.Records;

    // Act
    const response = await handler(event, lambdaContext());

    // Assess
    expect(response).toEqual({ batchItemFailures: [{ itemIdentifier: valid?.messageId }] });
    expect(sqs).toReceiveCommandTimes(SendMessageCommand, 3);
    expect(sqs).toReceiveCommandWith(SendMessageCommand, { QueueUrl: ENV.REJECTED_QUEUE_URL });
    expect(sqs).toReceiveCommandExactlyOnceWith(ChangeMessageVisibilityCommand, {
      QueueUrl: `${QUEUE}/atlas-backup-private-endpoints-requests`,
      ReceiptHandle: valid?.receiptHandle,
    });
  });

  it('reports every record of a batch that fails entirely, rather than failing the invocation', async () => {
    const handler = await loadHandler(ENV);
    const event = loadEvent('sqs-create');
    const [record] = event.Records;

    const response = await handler(event, lambdaContext());

    expect(response).toEqual({ batchItemFailures: [{ itemIdentifier: record?.messageId }] });
  });

  it('flushes the metrics of the invocation in the project namespace', async () => {
    // Prepare
    const handler = await loadHandler({ ...ENV, POWERTOOLS_METRICS_DISABLED: 'false' });
    const output = captureOutput();
    const event = sqsEvent(sqsRecord('not json'), sqsRecord({ requestId: 'r-1' }));

    // Act
    await handler(event, lambdaContext());

    // Assess
    const emf = output
      .map((line) => JSON.parse(line))
      .find((entry) => entry._aws?.CloudWatchMetrics?.[0]?.Namespace === 'AtlasBackupPrivateEndpoints');
    expect(emf).toMatchObject({ service: 'provisioner', Requests: [1, 1], Rejected: [1, 1] });
  });

  it('claims in the configured table and announces on the configured bus, under the configured source', async () => {
    const handler = await loadHandler(ENV);

    const [create] = loadEvent('sqs-create').Records;
    if (!create) throw new Error('events/sqs-create.json has no record');

    await handler(sqsEvent(sqsRecord('not json'), create), lambdaContext());

    expect(ddb).toHaveReceivedCommandWith(UpdateCommand, { TableName: 'ledger' });
    expect(eventBridge).toHaveReceivedCommandWith(PutEventsCommand, {
      Entries: [expect.objectContaining({ EventBusName: ENV.EVENT_BUS_NAME, Source: ENV.EVENT_SOURCE })],
    });
  });

  it("logs under the provisioner's service name and counts its cold start", async () => {
    const handler = await loadHandler({
      ...ENV,
      POWERTOOLS_LOG_LEVEL: 'WARN',
      POWERTOOLS_METRICS_DISABLED: 'false',
      // Lambda says how the environment started; only an on-demand one has a cold start.
      AWS_LAMBDA_INITIALIZATION_TYPE: 'on-demand',
    });
    const output = captureOutput();

    await handler(sqsEvent(sqsRecord('not json')), lambdaContext());

    const entries = output.map((line) => JSON.parse(line) as Record<string, unknown>);
    const logs = entries.filter((entry) => entry.level !== undefined);
    expect(logs.length).toBeGreaterThan(0);
    for (const entry of logs) expect(entry).toMatchObject({ service: 'provisioner' });
    expect(entries).toContainEqual(expect.objectContaining({ ColdStart: 1 }));
  });
});
