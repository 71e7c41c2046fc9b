/**
 * aws-sdk-client-mock stand-ins for the AWS services the provisioner calls, each answering after
 * a fixed latency and any number of calls at once, as DynamoDB, EventBridge and Secrets Manager
 * do (moto answers one call at a time). Mocked per class, so they also answer the clients a
 * handler module built before. The ledger stand-in answers the two writes of a successful record
 * (claim and settle) with the item DynamoDB's ALL_NEW would return; anything else fails, and the
 * SQS stand-in is only counted: the benches expect every record to succeed.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { ConditionalCheckFailedException } from '@aws-sdk/client-dynamodb';
import { EventBridgeClient, PutEventsCommand } from '@aws-sdk/client-eventbridge';
import { GetSecretValueCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { SQSClient } from '@aws-sdk/client-sqs';
import { DynamoDBDocumentClient, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { mockClient } from 'aws-sdk-client-mock';
import { claimedItem, type StoredItem, settledItem } from '#test/support/ledger-writes.ts';

export interface AwsStandIns {
  /** Calls answered so far, per operation. */
  calls(): { claims: number; settles: number; putEvents: number; secretReads: number; sqs: number };
  restore(): void;
}

type Item = StoredItem;

const conditionFailed = () =>
  new ConditionalCheckFailedException({ message: 'The conditional request failed', $metadata: {} });

/** Mocks every DynamoDB document, EventBridge, Secrets Manager and SQS client until restore(). */
export function standInAws(options: { latencyMs: number; secrets: Record<string, string> }): AwsStandIns {
  const { latencyMs, secrets } = options;
  const items = new Map<string, Item>();
  let claims = 0;
  let settles = 0;

  const ddb = mockClient(DynamoDBDocumentClient);
  ddb.on(UpdateCommand).callsFake(async (input: UpdateCommand['input']) => {
    await sleep(latencyMs);
    const key = String(input.Key?.key);
    const values = input.ExpressionAttributeValues ?? {};
    const stored = items.get(key);
    const lease = stored?.lease as { owner: string; expiresAt: number } | undefined;
    if (values[':rid'] instanceof Set) {
      // Ledger.claim: attribute_not_exists(lease) OR lease.expiresAt < :nowMs OR lease.owner = :owner
      if (lease && lease.expiresAt >= Number(values[':nowMs']) && lease.owner !== values[':owner']) {
        throw conditionFailed();
      }
      claims += 1;
      const item = claimedItem(stored, key, values);
      items.set(key, item);
      return { Attributes: item };
    }
    if (values[':status'] !== undefined && values[':owner'] !== undefined && values[':err'] === undefined) {
      // Ledger.settle: lease.owner = :owner; SET status, times, endpoint; REMOVE lease and failure.
      if (!stored || lease?.owner !== values[':owner']) throw conditionFailed();
      settles += 1;
      const item = settledItem(stored, values);
      items.set(key, item);
      return { Attributes: item };
    }
    throw new Error(`the ledger stand-in answers only claim and settle: ${input.UpdateExpression}`);
  });

  const eventBridge = mockClient(EventBridgeClient);
  eventBridge.on(PutEventsCommand).callsFake(async (input: PutEventsCommand['input']) => {
    await sleep(latencyMs);
    const entries = input.Entries ?? [];
    return { FailedEntryCount: 0, Entries: entries.map((_, i) => ({ EventId: `bench-${Date.now()}-${i}` })) };
  });

  const secretsManager = mockClient(SecretsManagerClient);
  secretsManager.on(GetSecretValueCommand).callsFake(async (input: GetSecretValueCommand['input']) => {
    await sleep(latencyMs);
    const name = String(input.SecretId);
    const value = secrets[name];
    if (value === undefined) throw new Error(`the Secrets Manager stand-in has no secret ${name}`);
    return { Name: name, SecretString: value, VersionId: 'bench' };
  });

  const sqs = mockClient(SQSClient);

  return {
    calls: () => ({
      claims,
      settles,
      putEvents: eventBridge.commandCalls(PutEventsCommand).length,
      secretReads: secretsManager.commandCalls(GetSecretValueCommand).length,
      sqs: sqs.calls().length,
    }),
    restore() {
      for (const stub of [ddb, eventBridge, secretsManager, sqs]) stub.restore();
    },
  };
}
