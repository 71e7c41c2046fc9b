import { CloudFormationClient, DescribeStacksCommand } from '@aws-sdk/client-cloudformation';
import {
  GetQueueAttributesCommand,
  GetQueueUrlCommand,
  QueueDoesNotExist,
  SQSClient,
} from '@aws-sdk/client-sqs';
import { mockClient } from 'aws-sdk-client-mock';
import { beforeEach, describe, expect, it } from 'vitest';
import { describeCliError, UsageError } from '#infra/ops/cli.ts';
import { resolveResources } from '#infra/ops/resources.ts';

const sqs = mockClient(SQSClient);
const cloudFormation = mockClient(CloudFormationClient);
const clients = {
  sqs: new SQSClient({ region: 'us-east-1' }),
  cloudFormation: new CloudFormationClient({ region: 'us-east-1' }),
  environment: {},
};

const PREFIX = 'https://sqs.us-east-1.amazonaws.com/123456789012';
const ARN = 'arn:aws:sqs:us-east-1:123456789012';
const OUTPUTS = [
  { OutputKey: 'RequestQueueUrl', OutputValue: `${PREFIX}/requests` },
  { OutputKey: 'RequestQueueArn', OutputValue: `${ARN}:requests` },
  { OutputKey: 'DeadLetterQueueUrl', OutputValue: `${PREFIX}/requests-dlq` },
  { OutputKey: 'DeadLetterQueueArn', OutputValue: `${ARN}:requests-dlq` },
  { OutputKey: 'LedgerTableName', OutputValue: 'Stack-Ledger-1' },
];

describe('resolveResources', () => {
  beforeEach(() => {
    sqs.reset();
    cloudFormation.reset();
  });

  it('takes what the flags name without asking CloudFormation', async () => {
    const found = await resolveResources(['tableName', 'dlqArn'], {
      ...clients,
      given: { tableName: 'mine', dlqArn: `${ARN}:mine-dlq` },
    });

    expect(found).toEqual({ tableName: 'mine', dlqArn: `${ARN}:mine-dlq` });
    expect(cloudFormation.calls()).toHaveLength(0);
  });

  it("reads the rest from the stack's outputs, the flags winning", async () => {
    cloudFormation.on(DescribeStacksCommand).resolves({
      Stacks: [
        { StackName: 'Custom', CreationTime: new Date(), StackStatus: 'CREATE_COMPLETE', Outputs: OUTPUTS },
      ],
    });

    const found = await resolveResources(['requestQueueArn', 'dlqArn', 'tableName'], {
      ...clients,
      stack: 'Custom',
      given: { tableName: 'mine' },
    });

    expect(found).toEqual({
      requestQueueArn: `${ARN}:requests`,
      dlqArn: `${ARN}:requests-dlq`,
      tableName: 'mine',
    });
    expect(cloudFormation).toHaveReceivedCommandWith(DescribeStacksCommand, { StackName: 'Custom' });
  });

  it('defaults to the stack AtlasBackupPrivateEndpoints', async () => {
    cloudFormation.on(DescribeStacksCommand).resolves({ Stacks: [{ Outputs: OUTPUTS } as never] });

    await resolveResources(['tableName'], { ...clients, given: {} });

    expect(cloudFormation).toHaveReceivedCommandWith(DescribeStacksCommand, {
      StackName: 'AtlasBackupPrivateEndpoints',
    });
  });

  it("asks SQS for a queue's ARN given its URL, and for its URL given its ARN", async () => {
    sqs.on(GetQueueAttributesCommand).resolves({ Attributes: { QueueArn: `${ARN}:requests` } });
    sqs.on(GetQueueUrlCommand).resolves({ QueueUrl: `${PREFIX}/requests-dlq` });

    const found = await resolveResources(['requestQueueArn', 'dlqUrl'], {
      ...clients,
      given: { requestQueueUrl: `${PREFIX}/requests`, dlqArn: `${ARN}:requests-dlq` },
    });

    expect(found).toEqual({ requestQueueArn: `${ARN}:requests`, dlqUrl: `${PREFIX}/requests-dlq` });
    expect(sqs).toHaveReceivedCommandWith(GetQueueUrlCommand, {
      QueueName: 'requests-dlq',
      QueueOwnerAWSAccountId: '123456789012',
    });
    expect(cloudFormation.calls()).toHaveLength(0);
  });

  it('fails naming the flag and the stack output of what is missing, and why the stack did not help', async () => {
    cloudFormation
      .on(DescribeStacksCommand)
      .rejects(new Error('Stack with id AtlasBackupPrivateEndpoints does not exist'));

    const attempt = resolveResources(['dlqArn'], { ...clients, given: {} });

    await expect(attempt).rejects.toBeInstanceOf(UsageError);
    await expect(attempt).rejects.toThrow(
      /missing --dlq-arn \(or DLQ_ARN; stack output DeadLetterQueueArn\).*Stack with id AtlasBackupPrivateEndpoints does not exist/,
    );
  });

  it('reads what the flags leave out from the variables `npm start -- --keep` exports', async () => {
    sqs.on(GetQueueAttributesCommand).resolves({ Attributes: { QueueArn: `${ARN}:requests-dlq` } });

    const found = await resolveResources(['requestQueueUrl', 'dlqArn', 'tableName'], {
      ...clients,
      given: { tableName: 'mine' },
      environment: {
        REQUEST_QUEUE_URL: `${PREFIX}/requests`,
        DLQ_URL: `${PREFIX}/requests-dlq`,
        LEDGER_TABLE: 'local-ledger',
      },
    });

    expect(found).toEqual({
      requestQueueUrl: `${PREFIX}/requests`,
      dlqArn: `${ARN}:requests-dlq`,
      tableName: 'mine',
    });
    expect(sqs).toHaveReceivedCommandWith(GetQueueAttributesCommand, { QueueUrl: `${PREFIX}/requests-dlq` });
    expect(cloudFormation.calls()).toHaveLength(0);
  });

  it('takes a stack named by --stack over the variables', async () => {
    cloudFormation.on(DescribeStacksCommand).resolves({ Stacks: [{ Outputs: OUTPUTS } as never] });

    const found = await resolveResources(['tableName'], {
      ...clients,
      stack: 'Custom',
      given: {},
      environment: { LEDGER_TABLE: 'local-ledger' },
    });

    expect(found).toEqual({ tableName: 'Stack-Ledger-1' });
  });
});

describe('describeCliError', () => {
  it('prints a usage error as its message alone', () => {
    expect(describeCliError(new UsageError('--rate must be ...'))).toEqual({
      message: '--rate must be ...',
      expected: true,
    });
  });

  it('prints an AWS error on one line, with a hint, and no stack', () => {
    const error = new QueueDoesNotExist({ message: 'The specified queue does not exist.', $metadata: {} });

    const { message, expected } = describeCliError(error);

    expect(expected).toBe(true);
    expect(message).toBe(
      'QueueDoesNotExist: The specified queue does not exist. (check the queue URL or ARN, and AWS_REGION)',
    );
  });

  it('keeps the stack of an unexpected error', () => {
    expect(describeCliError(new RangeError('bug')).message).toMatch(/^RangeError: bug\n\s+at /);
  });
});
