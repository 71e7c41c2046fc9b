/**
 * The construct as an existing CDK app uses it: twice in a stack of the app's own, next to the
 * app's resources, with cdk-nag on; and a sample registry of requesters (in other accounts by
 * account id and by role, on the EventBridge front door, an operator) with every queue policy,
 * rule and bus policy statement they produce;
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
import { SAMPLE_REQUESTERS } from '#test/support/sample-requesters.ts';

// The feature flags `cdk synth` applies (cdk.json), with bundling skipped.
const CONTEXT = {
  ...JSON.parse(readFileSync(new URL('../../cdk.json', import.meta.url), 'utf8')).context,
  'aws:cdk:bundling-stacks': [],
};

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
      allowedProfiles: ['default', 'team-b'],
      requesters: SAMPLE_REQUESTERS,
      requestEventBusName: 'platform-requests',
      requestEventSources: ['orders', 'com.acme.*'],
    });
    team.grantSendRequests(service);
    platform.grantSendRequests(service, 'team-b');
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
    // The team's request queue; each requester's queue and DLQ of the platform (named, so the
    // provisioner's environment holds their known-length URLs).
    expect(names).toHaveLength(1 + 2 * SAMPLE_REQUESTERS.length);
    expect(new Set(names).size).toBe(names.length);
    for (const name of names) expect(name).toMatch(/^[A-Za-z0-9_-]{1,80}$/);
    // Per copy: rejected, continuation and its DLQ; the team's request queue and DLQ; two per
    // requester of the platform and its front door's DLQ; the app's two.
    expect(Object.keys(queues)).toHaveLength(2 * 3 + 2 + 2 * SAMPLE_REQUESTERS.length + 1 + 2);
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
        Resource: [arn(team.requestQueue), arn(platform.requesterQueue('team-b'))],
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

  describe('the requesters: their queues, front door, status bus and what each policy says', () => {
    type Statement = Json & { Sid?: string };
    const policyOf = (queue: IConstruct) =>
      Object.values(
        template.findResources('AWS::SQS::QueuePolicy', { Properties: { Queues: [{ Ref: id(queue) }] } }),
      )
        .flatMap((p) => ((p.Properties as Json).PolicyDocument as { Statement: Statement[] }).Statement)
        .map(sorted);
    const tlsOnly = (queue: IConstruct) => ({
      Effect: 'Deny',
      Principal: { AWS: '*' },
      Action: 'sqs:*',
      Condition: { Bool: { 'aws:SecureTransport': 'false' } },
      Resource: arn(queue),
    });
    const partitionArn = (rest: string) => ({ 'Fn::Join': ['', ['arn:', { Ref: 'AWS::Partition' }, rest]] });
    const roles = () =>
      [platform.provisioner, platform.statusChecker].map((fn) => arn(fn.role as IConstruct));

    it("admits exactly each requester's senders to its own queue: an account id, a role ARN", () => {
      const sends = (queue: IConstruct, principal: unknown) =>
        sorted({
          Sid: 'SendersSend',
          Effect: 'Allow',
          Principal: { AWS: principal },
          Action: ['sqs:SendMessage', 'sqs:GetQueueUrl'],
          Resource: arn(queue),
        });
      const q = (name: string) => platform.requesterQueue(name);
      expect(policyOf(q('team-a'))).toEqual([
        tlsOnly(q('team-a')),
        sends(q('team-a'), partitionArn(':iam::111111111111:root')),
      ]);
      expect(policyOf(q('team-b'))).toEqual([
        tlsOnly(q('team-b')),
        sends(q('team-b'), 'arn:aws:iam::222222222222:role/team-b-provisioning'),
      ]);
      expect(policyOf(q('ops'))).toEqual([
        tlsOnly(q('ops')),
        sends(q('ops'), 'arn:aws:iam::123456789012:role/platform-operator'),
      ]);
      // The front door requester's queue admits its rule only.
      expect(policyOf(q('orders'))).toEqual([
        tlsOnly(q('orders')),
        sorted({
          Effect: 'Allow',
          Principal: { Service: 'events.amazonaws.com' },
          Action: ['sqs:SendMessage', 'sqs:GetQueueAttributes', 'sqs:GetQueueUrl'],
          Condition: {
            ArnEquals: { 'aws:SourceArn': arn(platform.requesters?.get('orders').frontDoor as IConstruct) },
          },
          Resource: arn(q('orders')),
        }),
      ]);
      // No one sends to a requester's DLQ but the provisioner (its role's own policy).
      for (const { name } of SAMPLE_REQUESTERS) {
        const dlq = platform.requesterDeadLetterQueue(name);
        expect(policyOf(dlq)).toEqual([tlsOnly(dlq)]);
      }
    });

    it('gives each requester a DLQ that only its own queue redrives into, under Requesters/<name>', () => {
      const resources = template.toJSON().Resources;
      for (const { name } of SAMPLE_REQUESTERS) {
        const queue = platform.requesterQueue(name);
        const dlq = platform.requesterDeadLetterQueue(name);
        expect(queue.node.path).toBe(`OrdersPlatform/PlatformEndpoints/Requesters/${name}/Queue`);
        const props = resources[id(queue)].Properties;
        expect(props).toMatchObject({
          SqsManagedSseEnabled: true,
          RedrivePolicy: { deadLetterTargetArn: arn(dlq), maxReceiveCount: 8 },
        });
        expect(resources[id(dlq)].Properties.RedriveAllowPolicy).toEqual({
          redrivePermission: 'byQueue',
          sourceQueueArns: [partitionArn(`:sqs:eu-west-1:123456789012:${props.QueueName}`)],
        });
        expect(props.QueueName).toMatch(new RegExp(`-${name}-[0-9A-F]{8}-requests$`));
      }
    });

    it('lets only the two functions send to the continuation queue', () => {
      const queue = platform.queues.continuationQueue;
      expect(policyOf(queue)).toEqual([
        tlsOnly(queue),
        sorted({
          Sid: 'OnlyTheFunctionsSend',
          Effect: 'Deny',
          Principal: { AWS: '*' },
          Action: 'sqs:SendMessage',
          Condition: { ArnNotEquals: { 'aws:PrincipalArn': roles() } },
          Resource: arn(queue),
        }),
      ]);
      const dlq = platform.queues.continuationDeadLetterQueue;
      expect(policyOf(dlq)).toEqual([tlsOnly(dlq)]);
    });

    it("turns request events of the front-door requester's accounts only into its requests", () => {
      const rule = platform.requesters?.get('orders').frontDoor as IConstruct;
      const rules = template.findResources('AWS::Events::Rule', {
        Properties: { EventBusName: 'platform-requests' },
      });
      expect(Object.keys(rules)).toEqual([id(rule)]);
      expect((rules[id(rule)] as Json).Properties).toEqual({
        Description: `Turns "${REQUESTED_DETAIL_TYPE}" events of requester orders's accounts into its requests`,
        EventBusName: 'platform-requests',
        EventPattern: {
          source: ['orders', { prefix: 'com.acme.' }],
          'detail-type': [REQUESTED_DETAIL_TYPE],
          account: ['333333333333', '444444444444'],
        },
        State: 'ENABLED',
        Targets: [
          {
            Id: 'Target0',
            Arn: arn(platform.requesterQueue('orders')),
            InputPath: '$.detail',
            DeadLetterConfig: { Arn: arn(platform.frontDoorDeadLetterQueue as IConstruct) },
          },
        ],
      });
    });

    it('lets the front-door accounts put request events on the bus, and only those', () => {
      const policies = Object.values(template.findResources('AWS::Events::EventBusPolicy'))
        .map((p) => p.Properties as Json)
        .filter((p) => p.EventBusName === 'platform-requests');
      expect(policies).toHaveLength(1);
      const [policy] = policies as [Json];
      expect(policy.StatementId).toMatch(/^[A-Za-z0-9_-]{1,64}$/);
      expect(policy.Statement).toEqual({
        Effect: 'Allow',
        Principal: {
          AWS: [partitionArn(':iam::333333333333:root'), partitionArn(':iam::444444444444:root')],
        },
        Action: 'events:PutEvents',
        Resource: partitionArn(':events:eu-west-1:123456789012:event-bus/platform-requests'),
        Condition: {
          StringEquals: { 'events:detail-type': REQUESTED_DETAIL_TYPE },
          StringLike: { 'events:source': ['orders', 'com.acme.*'] },
        },
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

    it("alarms on every requester's DLQ and the continuation DLQ", () => {
      const dlqs = [
        ...SAMPLE_REQUESTERS.map(({ name }) => platform.requesterDeadLetterQueue(name)),
        platform.queues.continuationDeadLetterQueue,
      ];
      for (const dlq of dlqs) {
        template.hasResourceProperties('AWS::CloudWatch::Alarm', {
          MetricName: 'ApproximateNumberOfMessagesVisible',
          Dimensions: [{ Name: 'QueueName', Value: { 'Fn::GetAtt': [id(dlq), 'QueueName'] } }],
          Threshold: 0,
        });
      }
    });

    it('owns its status bus, on which only the two functions may put events', () => {
      const bus = platform.eventBus as unknown as IConstruct;
      const policies = Object.values(
        template.findResources('AWS::Events::EventBusPolicy', {
          Properties: { EventBusName: { Ref: id(bus) } },
        }),
      );
      expect(policies.map((p) => (p.Properties as Json).Statement)).toEqual([
        {
          Sid: 'cdk-OnlyTheFunctionsPutEvents',
          Effect: 'Deny',
          Principal: { AWS: '*' },
          Action: 'events:PutEvents',
          Resource: arn(bus),
          Condition: { ArnNotEquals: { 'aws:PrincipalArn': roles() } },
        },
      ]);
      // The team's copy, without requesters, still refers to the account's default bus.
      expect(team.eventBus.eventBusName).toBe('default');
    });

    it("forwards a requester's own status events, and only those, to its bus", () => {
      const rule = platform.requesters?.get('team-a').statusForwarding as IConstruct;
      const props = template.toJSON().Resources[id(rule)].Properties;
      expect(props).toMatchObject({
        EventBusName: { Ref: id(platform.eventBus as unknown as IConstruct) },
        EventPattern: {
          source: ['platform.backup-private-endpoints'],
          'detail-type': [STATUS_CHANGED_DETAIL_TYPE],
          detail: { requester: ['team-a'] },
        },
        Targets: [
          {
            Id: 'Target0',
            Arn: 'arn:aws:events:eu-west-1:111111111111:event-bus/team-a-status',
            RoleArn: { 'Fn::GetAtt': [expect.any(String), 'Arn'] },
          },
        ],
      });
      const forwarding = template.findResources('AWS::Events::Rule', {
        Properties: { Targets: [Match.objectLike({ Arn: Match.stringLikeRegexp('event-bus/') })] },
      });
      expect(Object.keys(forwarding)).toEqual([id(rule)]);
    });

    it("writes the registry into the provisioner's environment, each requester with its queues and grant", () => {
      const variables =
        template.toJSON().Resources[id(platform.provisioner)].Properties.Environment.Variables;
      const entries = SAMPLE_REQUESTERS.map((r) => {
        const resources = platform.requesters?.get(r.name);
        return resources?.entry;
      });
      expect(variables.REQUESTERS).toEqual(stack.resolve(JSON.stringify(entries)));
      expect(entries.map((e) => [e?.name, e?.projects, e?.profiles, e?.actions, e?.operator])).toEqual(
        SAMPLE_REQUESTERS.map((r) => [
          r.name,
          r.projects,
          r.profiles,
          r.actions,
          'operator' in r ? r.operator : undefined,
        ]),
      );
      expect(variables.EVENT_BUS_NAME).toEqual({ Ref: id(platform.eventBus as unknown as IConstruct) });
      expect(platform.provisioner.environmentBytes).toBeLessThanOrEqual(4096);
    });

    it('consumes every requester queue and the continuation queue', () => {
      const sources = Object.values(
        template.findResources('AWS::Lambda::EventSourceMapping', {
          Properties: { FunctionName: { Ref: id(platform.provisioner) } },
        }),
      ).map((m) => (m.Properties as Json).EventSourceArn);
      expect(sources).toEqual([
        ...SAMPLE_REQUESTERS.map(({ name }) => arn(platform.requesterQueue(name))),
        arn(platform.queues.continuationQueue),
      ]);
    });

    it('has no default request queue once requesters are named, and says where to look', () => {
      expect(() => platform.requestQueue).toThrow(/requesterQueue\(name\) \(team-a, team-b, orders, ops\)/);
      expect(() => platform.deadLetterQueue).toThrow(/requesterDeadLetterQueue\(name\)/);
      expect(() => platform.requesterQueue('nobody')).toThrow(/no requester "nobody"/);
      expect(() => team.requesterQueue('team-a')).toThrow(/no requesters configured/);
    });

    it('selects one requester of its status events', () => {
      expect(platform.statusEvents({ requester: 'team-a' })).toEqual({
        source: ['platform.backup-private-endpoints'],
        detailType: [STATUS_CHANGED_DETAIL_TYPE],
        detail: { requester: ['team-a'] },
      });
    });

    it("takes only this account's request events as the default requester's", () => {
      const own = new Stack(new App({ context: CONTEXT }), 'FrontDoorOnly', {
        env: { account: '123456789012', region: 'eu-west-1' },
      });
      const copy = new AtlasBackupPrivateEndpoints(own, 'Endpoints', {
        requestEventBusName: 'requests',
        requestEventSources: ['orders'],
      });
      const t = Template.fromStack(own);
      t.hasResourceProperties('AWS::Events::Rule', {
        EventBusName: 'requests',
        EventPattern: {
          source: ['orders'],
          'detail-type': [REQUESTED_DETAIL_TYPE],
          account: ['123456789012'],
        },
        Targets: [
          Match.objectLike({
            Arn: {
              'Fn::GetAtt': [own.getLogicalId(copy.requestQueue.node.defaultChild as CfnElement), 'Arn'],
            },
          }),
        ],
      });
      t.resourceCountIs('AWS::Events::EventBusPolicy', 0);
    });

    it('gives the copy without requesters no statement for other accounts', () => {
      expect(policyOf(team.requestQueue).filter((st) => st.Effect === 'Allow')).toEqual([]);
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
