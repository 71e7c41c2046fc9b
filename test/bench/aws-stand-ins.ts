/**
 * aws-sdk-client-mock stand-ins for the AWS services the provisioner calls, each answering after
 * a fixed latency and any number of calls at once, as DynamoDB, EventBridge and Secrets Manager
 * do (moto answers one call at a time). Mocked per class, so they also answer the clients a
 * handler module built before. The ledger stand-in answers the writes of a successful record
 * (claim, the create written down, settle, the outbox cleared) with the item DynamoDB's ALL_NEW
 * would return; anything else fails. The SQS stand-in accepts SendMessage (the follow-up a new
 * endpoint sends) after the same latency and nothing else: the benches expect every record to
 * succeed.
 */
import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { ConditionalCheckFailedException } from '@aws-sdk/client-dynamodb';
import { EventBridgeClient, PutEventsCommand } from '@aws-sdk/client-eventbridge';
import { GetSecretValueCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { SendMessageCommand, SQSClient } from '@aws-sdk/client-sqs';
import { DynamoDBDocumentClient, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { mockClient } from 'aws-sdk-client-mock';

export interface AwsStandIns {
  /** Calls answered so far, per operation. */
  calls(): { claims: number; settles: number; putEvents: number; secretReads: number; sqs: number };
  /** The ledger's items as the stand-in holds them, by natural key. */
  ledgerItems(): ReadonlyMap<string, Record<string, unknown>>;
  restore(): void;
}

type Item = Record<string, unknown>;

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
    const names = input.ExpressionAttributeNames ?? {};
    const expression = input.UpdateExpression ?? '';
    if (values[':lease'] !== undefined) {
      // Ledger.claim: attribute_not_exists(lease) OR lease.expiresAt < :nowMs OR lease.owner = :owner
      if (lease && lease.expiresAt >= Number(values[':nowMs']) && lease.owner !== values[':owner']) {
        throw conditionFailed();
      }
      claims += 1;
      const item: Item = {
        createdAt: values[':now'],
        status: values[':requested'],
        statusSince: values[':now'],
        checkedAt: values[':never'],
        action: values[':a'],
        requesters: {},
        ...stored,
        key,
        lease: values[':lease'],
        updatedAt: values[':now'],
      };
      items.set(key, item);
      return { Attributes: item };
    }
    if (!stored || (values[':owner'] !== undefined && lease?.owner !== values[':owner']))
      throw conditionFailed();
    if (values[':requesters'] !== undefined) {
      // Ledger.settle: the status, endpoint and answer recorded with its events; the lease released.
      settles += 1;
      const { lease: _, pendingCreate: __, ...rest } = stored;
      const item: Item = {
        ...rest,
        status: values[':status'],
        requesters: values[':requesters'],
        lastRequester: values[':requester'],
        statusSince: values[':since'],
        ...(values[':eid'] !== undefined && { endpointId: values[':eid'] }),
        ...(values[':outbox'] !== undefined && { outbox: values[':outbox'] }),
      };
      items.set(key, item);
      return { Attributes: item };
    }
    if (expression.startsWith('REMOVE outbox.')) {
      const outbox = { ...(stored.outbox as Item) };
      for (const id of Object.values(names)) delete outbox[id];
      const item = { ...stored, outbox };
      items.set(key, item);
      return { Attributes: item };
    }
    if (values[':f0'] !== undefined) {
      // Ledger.amend: a create written down before it is sent.
      const item = { ...stored, [String(names['#f0'])]: values[':f0'] };
      items.set(key, item);
      return { Attributes: item };
    }
    throw new Error(`the ledger stand-in does not answer ${expression}`);
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
  sqs.on(SendMessageCommand).callsFake(async () => {
    await sleep(latencyMs);
    return { MessageId: randomUUID() };
  });

  return {
    calls: () => ({
      claims,
      settles,
      putEvents: eventBridge.commandCalls(PutEventsCommand).length,
      secretReads: secretsManager.commandCalls(GetSecretValueCommand).length,
      sqs: sqs.calls().length,
    }),
    ledgerItems: () => items,
    restore() {
      for (const stub of [ddb, eventBridge, secretsManager, sqs]) stub.restore();
    },
  };
}
