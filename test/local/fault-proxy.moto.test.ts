/**
 * The fault proxy in front of moto, driven by the real AWS SDK clients the functions use: calls
 * pass unchanged outside an outage, and inside one each service answers as it does when it is
 * down, in its own protocol's shape, so the SDK raises the error AWS would.
 */
import { CreateTableCommand, DynamoDBClient, GetItemCommand, PutItemCommand } from '@aws-sdk/client-dynamodb';
import { EventBridgeClient, PutEventsCommand } from '@aws-sdk/client-eventbridge';
import {
  CreateSecretCommand,
  GetSecretValueCommand,
  SecretsManagerClient,
} from '@aws-sdk/client-secrets-manager';
import {
  CreateQueueCommand,
  ReceiveMessageCommand,
  SendMessageCommand,
  SQSClient,
} from '@aws-sdk/client-sqs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Moto, startMoto } from '#test/local/emulators.ts';
import { type FaultProxy, startFaultProxy } from '#test/local/fault-proxy.ts';

const REGION = 'us-east-1';
const credentials = { accessKeyId: 'test', secretAccessKey: 'test' };

let moto: Moto;
let proxy: FaultProxy;
let clock = 1_000_000;

beforeAll(async () => {
  moto = await startMoto();
  proxy = await startFaultProxy({ target: moto.endpoint, service: 'sqs', now: () => clock });
});

afterAll(async () => {
  await proxy?.stop();
  await moto?.stop();
});

/** A client of `Client` through the proxy, with one attempt so an outage shows at once. */
const through = <C>(Client: new (config: object) => C): C =>
  new Client({ endpoint: proxy.endpoint, region: REGION, credentials, maxAttempts: 1 });

describe('the fault proxy in front of moto', () => {
  it('passes calls through unchanged outside an outage, and counts them', async () => {
    const dynamo = through(DynamoDBClient);
    await dynamo.send(
      new CreateTableCommand({
        TableName: 'proxied',
        KeySchema: [{ AttributeName: 'key', KeyType: 'HASH' }],
        AttributeDefinitions: [{ AttributeName: 'key', AttributeType: 'S' }],
        BillingMode: 'PAY_PER_REQUEST',
      }),
    );
    await dynamo.send(new PutItemCommand({ TableName: 'proxied', Item: { key: { S: 'k' }, v: { S: 'é' } } }));

    const out = await dynamo.send(new GetItemCommand({ TableName: 'proxied', Key: { key: { S: 'k' } } }));

    expect(out.Item).toEqual({ key: { S: 'k' }, v: { S: 'é' } });
    expect(proxy.forwarded.get('dynamodb GetItem')).toBe(1);
  });

  it('refuses every entry of PutEvents during a partial-failure outage, and only then', async () => {
    const events = through(EventBridgeClient);
    const put = () =>
      events.send(
        new PutEventsCommand({
          Entries: [1, 2, 3].map((n) => ({ Source: 's', DetailType: 'd', Detail: `{"n":${n}}` })),
        }),
      );
    const end = proxy.add({ service: 'events', kind: 'partial', from: clock, until: clock + 60_000 });

    const during = await put();
    clock += 60_000;
    const after = await put();
    end();

    expect(during.FailedEntryCount).toBe(3);
    expect(during.Entries?.map((e) => e.ErrorCode)).toEqual([
      'InternalFailure',
      'InternalFailure',
      'InternalFailure',
    ]);
    expect(after.FailedEntryCount).toBe(0);
  });

  it('fails DynamoDB writes with the throttling error DynamoDB gives, for the operations named only', async () => {
    const dynamo = through(DynamoDBClient);
    const end = proxy.add({
      service: 'dynamodb',
      operations: ['PutItem'],
      kind: 'throttle',
      from: clock,
      until: clock + 1,
    });

    await expect(
      dynamo.send(new PutItemCommand({ TableName: 'proxied', Item: { key: { S: 'k2' } } })),
    ).rejects.toMatchObject({ name: 'ProvisionedThroughputExceededException' });
    await expect(
      dynamo.send(new GetItemCommand({ TableName: 'proxied', Key: { key: { S: 'k' } } })),
    ).resolves.toMatchObject({ Item: expect.anything() });
    end();
  });

  it('fails Secrets Manager reads with a 500, which the SDK raises as InternalFailure', async () => {
    const secrets = through(SecretsManagerClient);
    await secrets.send(new CreateSecretCommand({ Name: 'p', SecretString: '{}' }));
    const end = proxy.add({ service: 'secretsmanager', kind: 'error', from: clock, until: clock + 1 });

    await expect(secrets.send(new GetSecretValueCommand({ SecretId: 'p' }))).rejects.toMatchObject({
      name: 'InternalFailure',
      $metadata: expect.objectContaining({ httpStatusCode: 500 }),
    });
    end();
    await expect(secrets.send(new GetSecretValueCommand({ SecretId: 'p' }))).resolves.toMatchObject({
      SecretString: '{}',
    });
  });

  it('fails SQS sends while receives still work', async () => {
    const sqs = through(SQSClient);
    const { QueueUrl } = await sqs.send(new CreateQueueCommand({ QueueName: 'proxied' }));
    const end = proxy.add({
      service: 'sqs',
      operations: ['SendMessage'],
      kind: 'error',
      from: clock,
      until: clock + 1,
    });

    await expect(sqs.send(new SendMessageCommand({ QueueUrl, MessageBody: 'x' }))).rejects.toMatchObject({
      $metadata: expect.objectContaining({ httpStatusCode: 500 }),
    });
    await expect(sqs.send(new ReceiveMessageCommand({ QueueUrl }))).resolves.toBeDefined();
    end();
    expect(proxy.refused.get('sqs SendMessage')).toBe(1);
  });
});
