/**
 * The construct as an existing CDK app uses it: twice in a stack of the app's own, next to the
 * app's resources, with cdk-nag on; and the requester settings (other accounts, an organization,
 * the EventBridge front door) with the queue policy, the rule and the bus policies they produce;
 * and what a platform team sets on every function (a VPC, memory, log retention).
 */
import { readFileSync } from 'node:fs';
import { App, type CfnElement, FileSystem, Stack, Validations } from 'aws-cdk-lib';
import { Match, Template } from 'aws-cdk-lib/assertions';
import { SecurityGroup, SubnetType, Vpc } from 'aws-cdk-lib/aws-ec2';
import { SqsQueue } from 'aws-cdk-lib/aws-events-targets';
import { Role, ServicePrincipal } from 'aws-cdk-lib/aws-iam';
import { Queue, QueueEncryption } from 'aws-cdk-lib/aws-sqs';
import { CloudAssembly } from 'aws-cdk-lib/cx-api';
import { AwsSolutionsChecks } from 'cdk-nag';
import type { IConstruct } from 'constructs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { STATUS_CHANGED_DETAIL_TYPE } from '#events/status-event.ts';
import { bundleDir } from '#infra/constructs/function.ts';
import { AtlasBackupPrivateEndpoints } from '#infra/index.ts';
import { REQUESTED_DETAIL_TYPE } from '#messages/front-door.ts';

// The feature flags `cdk synth` applies (cdk.json), with bundling skipped.
const CONTEXT = {
  ...JSON.parse(readFileSync(new URL('../../cdk.json', import.meta.url), 'utf8')).context,
  'aws:cdk:bundling-stacks': [],
};
const ACCOUNTS = ['111111111111', '222222222222'];
const ORG = 'o-a1b2c3d4e5';

type Json = Record<string, unknown>;

/** A policy statement with its actions and resources in a stable order, as CDK may order either. */
const sorted = (st: Json): Json => ({
  ...st,
  ...(Array.isArray(st.Action) && { Action: [...st.Action].sort() }),
  ...(Array.isArray(st.Resource) && {
    Resource: [...st.Resource].sort((a, b) => JSON.stringify(a).localeCompare(JSON.stringify(b))),
  }),
});

describe('AtlasBackupPrivateEndpoints in an existing CDK app', () => {
  let app: App;
  let stack: Stack;
  let template: Template;
  let team: AtlasBackupPrivateEndpoints;
  let platform: AtlasBackupPrivateEndpoints;
  let service: Role;
  let ordersInbox: Queue;
  const id = (c: IConstruct) => stack.getLogicalId(c.node.defaultChild as CfnElement);
  const arn = (c: IConstruct) => ({ 'Fn::GetAtt': [id(c), 'Arn'] });

  beforeAll(() => {
    // GIVEN an app's own stack with its own resources, cdk-nag on the app
    app = new App({ context: CONTEXT });
    stack = new Stack(app, 'OrdersPlatform', { env: { account: '123456789012', region: 'eu-west-1' } });
    service = new Role(stack, 'OrdersService', { assumedBy: new ServicePrincipal('lambda.amazonaws.com') });
    const inboxDlq = new Queue(stack, 'OrdersInboxDlq', {
      encryption: QueueEncryption.SQS_MANAGED,
      enforceSSL: true,
    });
    ordersInbox = new Queue(stack, 'OrdersInbox', {
      encryption: QueueEncryption.SQS_MANAGED,
      enforceSSL: true,
      deadLetterQueue: { queue: inboxDlq, maxReceiveCount: 3 },
    });
    // WHEN the construct is added twice, with different ids and settings
    team = new AtlasBackupPrivateEndpoints(stack, 'TeamEndpoints', { maxConcurrency: 2 });
    platform = new AtlasBackupPrivateEndpoints(stack, 'PlatformEndpoints', {
      eventSource: 'platform.backup-private-endpoints',
      requesterAccounts: ACCOUNTS,
      requesterOrganizationId: ORG,
      requestEventBusName: 'platform-requests',
      requestEventSources: ['orders', 'com.acme.*'],
    });
    team.grantSendRequests(service);
    platform.grantSendRequests(service);
    platform.onStatusChanged('OrdersStatus', {
      target: new SqsQueue(ordersInbox),
      outcomes: ['PROVISIONED', 'REJECTED'],
    });
    Validations.of(app).addPlugins(new AwsSolutionsChecks(app));
    template = Template.fromStack(stack);
  });

  afterAll(() => CloudAssembly.cleanupTemporaryDirectories());

  it('leaves no AwsSolutions finding unacknowledged in the app', () => {
    expect(new AwsSolutionsChecks().validateScope(app).violations).toEqual([]);
  });

  it('gives each copy its own queues, table, functions and schedule', () => {
    const queues = template.findResources('AWS::SQS::Queue');
    const names = Object.values(queues)
      .map((q) => (q.Properties as Json).QueueName)
      .filter((n): n is string => typeof n === 'string');
    expect(names).toHaveLength(2);
    expect(new Set(names).size).toBe(2);
    for (const name of names) expect(name).toMatch(/^[A-Za-z0-9_-]{1,80}$/);
    // Three each, the app's two, and the front door's dead-letter queue of the copy that has one.
    expect(Object.keys(queues)).toHaveLength(2 * 3 + 2 + 1);
    template.resourceCountIs('AWS::DynamoDB::Table', 2);
    template.resourceCountIs('AWS::Scheduler::Schedule', 2);
    template.resourcePropertiesCountIs('AWS::Lambda::Function', { ReservedConcurrentExecutions: 1 }, 2);
  });

  it("grants the app's role sending to each request queue, and nothing on the others", () => {
    const policy = Object.values(
      template.findResources('AWS::IAM::Policy', {
        Properties: { Roles: [{ Ref: id(service) }] },
      }),
    );
    const statements = policy.flatMap(
      (p) => ((p.Properties as Json).PolicyDocument as { Statement: Json[] }).Statement,
    );
    expect(statements.map(sorted)).toEqual([
      sorted({
        Effect: 'Allow',
        Action: ['sqs:SendMessage', 'sqs:GetQueueAttributes', 'sqs:GetQueueUrl'],
        Resource: [team, platform].map((copy) => arn(copy.requestQueue)),
      }),
    ]);
  });

  it('offers the pattern of its status events, narrowed by a filter', () => {
    expect(team.statusEvents()).toEqual({
      source: ['atlas.backup-private-endpoints'],
      detailType: [STATUS_CHANGED_DETAIL_TYPE],
    });
    expect(platform.statusEvents({ requestIds: ['orders:1'] })).toEqual({
      source: ['platform.backup-private-endpoints'],
      detailType: [STATUS_CHANGED_DETAIL_TYPE],
      detail: { requestIds: ['orders:1'] },
    });
  });

  it("routes the selected status events to the app's own target", () => {
    template.hasResourceProperties('AWS::Events::Rule', {
      EventPattern: {
        source: ['platform.backup-private-endpoints'],
        'detail-type': [STATUS_CHANGED_DETAIL_TYPE],
        detail: { outcome: ['PROVISIONED', 'REJECTED'] },
      },
      Targets: [Match.objectLike({ Arn: arn(ordersInbox) })],
    });
  });

  describe('requesters in other accounts and the front door', () => {
    const requestQueuePolicy = (copy: AtlasBackupPrivateEndpoints) =>
      Object.values(
        template.findResources('AWS::SQS::QueuePolicy', {
          Properties: { Queues: [{ Ref: id(copy.requestQueue) }] },
        }),
      )
        .flatMap((p) => ((p.Properties as Json).PolicyDocument as { Statement: Json[] }).Statement)
        .map(sorted);

    it('lets the requester accounts and organization send, and find the queue, and nothing else', () => {
      const allowed = requestQueuePolicy(platform).filter((st) => st.Sid !== undefined);
      const bySid = Object.fromEntries(allowed.map((st) => [st.Sid, st]));
      expect(Object.keys(bySid).sort()).toEqual(['RequesterAccountsSend', 'RequesterOrganizationSend']);
      for (const st of allowed) {
        expect(st).toMatchObject({
          Action: ['sqs:GetQueueUrl', 'sqs:SendMessage'],
          Resource: arn(platform.requestQueue),
        });
      }
      const accounts = JSON.stringify(bySid.RequesterAccountsSend?.Principal);
      for (const account of ACCOUNTS) expect(accounts).toContain(`:iam::${account}:root`);
      expect(bySid.RequesterAccountsSend?.Condition).toBeUndefined();
      expect(bySid.RequesterOrganizationSend).toMatchObject({
        Principal: { AWS: '*' },
        Condition: { StringEquals: { 'aws:PrincipalOrgID': ORG } },
      });
    });

    it('turns request events from the accepted sources on the named bus into request messages', () => {
      template.hasResourceProperties('AWS::Events::Rule', {
        EventBusName: 'platform-requests',
        EventPattern: {
          source: ['orders', { prefix: 'com.acme.' }],
          'detail-type': [REQUESTED_DETAIL_TYPE],
        },
        Targets: [
          Match.objectLike({
            Arn: arn(platform.requestQueue),
            InputPath: '$.detail',
            DeadLetterConfig: { Arn: arn(platform.frontDoorDeadLetterQueue as IConstruct) },
          }),
        ],
      });
      const rule = id(platform.frontDoor as IConstruct);
      expect(requestQueuePolicy(platform)).toContainEqual({
        Effect: 'Allow',
        Principal: { Service: 'events.amazonaws.com' },
        Action: ['sqs:GetQueueAttributes', 'sqs:GetQueueUrl', 'sqs:SendMessage'],
        Condition: { ArnEquals: { 'aws:SourceArn': { 'Fn::GetAtt': [rule, 'Arn'] } } },
        Resource: arn(platform.requestQueue),
      });
    });

    it('alarms on any request event the front door could not deliver', () => {
      template.hasResourceProperties('AWS::CloudWatch::Alarm', {
        MetricName: 'ApproximateNumberOfMessagesVisible',
        Dimensions: [
          {
            Name: 'QueueName',
            Value: { 'Fn::GetAtt': [id(platform.frontDoorDeadLetterQueue as IConstruct), 'QueueName'] },
          },
        ],
        Threshold: 0,
      });
      expect(team.frontDoorDeadLetterQueue).toBeUndefined();
    });

    it('lets the requester accounts and organization put request events on the bus, and only those', () => {
      const policies = Object.values(template.findResources('AWS::Events::EventBusPolicy')).map(
        (p) => p.Properties as Json,
      );
      expect(policies).toHaveLength(2);
      for (const policy of policies) {
        expect(policy.EventBusName).toBe('platform-requests');
        expect(policy.StatementId).toMatch(/^[A-Za-z0-9_-]{1,64}$/);
        expect(policy.Statement).toMatchObject({
          Effect: 'Allow',
          Action: 'events:PutEvents',
          Resource: {
            'Fn::Join': [
              '',
              [
                'arn:',
                { Ref: 'AWS::Partition' },
                ':events:eu-west-1:123456789012:event-bus/platform-requests',
              ],
            ],
          },
          Condition: {
            StringEquals: { 'events:detail-type': REQUESTED_DETAIL_TYPE },
            StringLike: { 'events:source': ['orders', 'com.acme.*'] },
          },
        });
      }
      const principals = JSON.stringify(policies.map((p) => (p.Statement as Json).Principal));
      for (const account of ACCOUNTS) expect(principals).toContain(`:iam::${account}:root`);
      expect(
        policies.map((p) => (p.Statement as { Condition: { StringEquals: Json } }).Condition.StringEquals),
      ).toContainEqual({
        'events:detail-type': REQUESTED_DETAIL_TYPE,
        'aws:PrincipalOrgID': ORG,
      });
    });

    it('refuses every request without TLS, from any principal', () => {
      expect(requestQueuePolicy(platform)).toContainEqual(
        expect.objectContaining({
          Effect: 'Deny',
          Principal: { AWS: '*' },
          Action: 'sqs:*',
          Condition: { Bool: { 'aws:SecureTransport': 'false' } },
        }),
      );
    });

    it('gives the copy without requester settings no statement for other accounts', () => {
      expect(requestQueuePolicy(team).filter((st) => st.Effect === 'Allow')).toEqual([]);
    });
  });

  describe('what a platform team sets on every function', () => {
    let own: Stack;
    let custom: AtlasBackupPrivateEndpoints;
    let vpc: Vpc;
    let sg: SecurityGroup;
    let ownTemplate: Template;
    const ownId = (c: IConstruct) => own.getLogicalId(c.node.defaultChild as CfnElement);

    beforeAll(() => {
      // GIVEN a stack with a VPC of the platform's
      own = new Stack(new App({ context: CONTEXT }), 'Platform', {
        env: { account: '123456789012', region: 'eu-west-1' },
      });
      vpc = new Vpc(own, 'Vpc', { maxAzs: 2 });
      sg = new SecurityGroup(own, 'FunctionsSg', { vpc });
      // WHEN the construct runs its functions there, with more memory and a longer retention
      custom = new AtlasBackupPrivateEndpoints(own, 'Endpoints', {
        vpc,
        vpcSubnets: { subnetType: SubnetType.PRIVATE_WITH_EGRESS },
        securityGroups: [sg],
        provisionerMemorySize: 512,
        statusCheckerMemorySize: 1024,
        logRetentionDays: 365,
      });
      ownTemplate = Template.fromStack(own);
    });

    it('runs both functions in the VPC, with the memory asked for', () => {
      const subnets = vpc.privateSubnets.map((subnet) => ({ Ref: ownId(subnet) }));
      for (const [fn, memory] of [
        [custom.provisioner, 512],
        [custom.statusChecker, 1024],
      ] as const) {
        expect(ownTemplate.toJSON().Resources[ownId(fn)].Properties).toMatchObject({
          MemorySize: memory,
          VpcConfig: { SubnetIds: subnets, SecurityGroupIds: [{ 'Fn::GetAtt': [ownId(sg), 'GroupId'] }] },
        });
      }
    });

    it("lets each function's role manage its network interfaces, and nothing more", () => {
      for (const fn of [custom.provisioner, custom.statusChecker]) {
        const role = ownTemplate.toJSON().Resources[ownId(fn.role as Role)].Properties;
        expect(role.ManagedPolicyArns).toEqual([
          {
            'Fn::Join': [
              '',
              [
                'arn:',
                { Ref: 'AWS::Partition' },
                ':iam::aws:policy/service-role/AWSLambdaENIManagementAccess',
              ],
            ],
          },
        ]);
      }
    });

    it('keeps both log groups for the retention asked for', () => {
      ownTemplate.resourcePropertiesCountIs('AWS::Logs::LogGroup', { RetentionInDays: 365 }, 2);
    });

    it('deploys the bundles `npm run build` writes to dist/functions', () => {
      for (const name of ['provisioner', 'statusChecker'] as const) {
        const code = ownTemplate.toJSON().Resources[ownId(custom[name])].Properties.Code;
        expect(code.S3Key).toBe(`${FileSystem.fingerprint(bundleDir(name))}.zip`);
      }
    });

    it('puts no function in a VPC unless asked', () => {
      template.allResourcesProperties('AWS::Lambda::Function', {
        VpcConfig: Match.absent(),
        MemorySize: 256,
      });
    });
  });
});
