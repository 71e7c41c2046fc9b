import { readFileSync } from 'node:fs';
import { App, type CfnElement, Validations } from 'aws-cdk-lib';
import { Annotations, Match, Template } from 'aws-cdk-lib/assertions';
import { CloudAssembly } from 'aws-cdk-lib/cx-api';
import { AwsSolutionsChecks } from 'cdk-nag';
import type { IConstruct } from 'constructs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApp } from '#infra/app.ts';
import { PARKING_MAX_MESSAGE_BYTES, REQUEST_MAX_MESSAGE_BYTES } from '#infra/constructs/queues.ts';
import { DEFAULT_STACK_NAME } from '#infra/names.ts';
import {
  checkStatusEnvironment,
  maxReceiveCount,
  provisionEnvironment,
  resolveSettings,
  visibilityTimeoutSeconds,
} from '#infra/settings.ts';
import { AtlasBackupPrivateEndpointsStack } from '#infra/stack.ts';
import { CHECK_INDEX } from '#ledger/schema.ts';
import { PARKED_ATTRIBUTES_MAX_BYTES } from '#messages/attributes.ts';
import { MAX_BODY_BYTES } from '#messages/request.ts';
import { FUNCTION_VARIABLES, VARIABLES } from '#runtime/environment.ts';
import { METRIC, METRICS_NAMESPACE, SERVICE } from '#runtime/metric-names.ts';

// The feature flags `cdk synth` applies (cdk.json), with bundling skipped.
const CONTEXT = {
  ...JSON.parse(readFileSync(new URL('../../cdk.json', import.meta.url), 'utf8')).context,
  'aws:cdk:bundling-stacks': [],
};
const DEFAULTS = resolveSettings();
const DAYS_14 = 14 * 24 * 3600;

type Json = Record<string, unknown>;

/** Renders an ARN built from intrinsics as text, as cdk-nag does: `<Logical.Arn>`, `<AWS::Region>`. */
const render = (value: unknown): string => {
  if (typeof value === 'string') return value;
  const o = value as Json;
  if ('Ref' in o) return `<${o.Ref}>`;
  if ('Fn::GetAtt' in o) return `<${(o['Fn::GetAtt'] as string[]).join('.')}>`;
  if ('Fn::Join' in o) {
    const [separator, parts] = o['Fn::Join'] as [string, unknown[]];
    return parts.map(render).join(separator);
  }
  throw new Error(`cannot render ${JSON.stringify(value)}`);
};
const list = <T>(v: T | T[]): T[] => (Array.isArray(v) ? v : [v]);
const single = (resources: Record<string, Json>): Json => {
  const all = Object.values(resources);
  expect(all).toHaveLength(1);
  return all[0] as Json;
};

describe('AtlasBackupPrivateEndpointsStack', () => {
  let app: App;
  let stack: AtlasBackupPrivateEndpointsStack;
  let template: Template;
  const id = (c: IConstruct) => stack.getLogicalId(c.node.defaultChild as CfnElement);
  // The default requester's queues: no requesters are configured.
  const requestQueue = () => stack.provisioning.requestQueue;
  const deadLetterQueue = () => stack.provisioning.deadLetterQueue;
  const continuation = () => stack.queues.continuationQueue;
  const ref = (c: IConstruct) => ({ Ref: id(c) });
  const arn = (c: IConstruct) => ({ 'Fn::GetAtt': [id(c), 'Arn'] });
  /** Every action a role's policies allow, with the resources it is allowed on. */
  const grantsOf = (roleLogicalId: string) => {
    const grants: Record<string, string[]> = {};
    const policies = template.findResources('AWS::IAM::Policy', {
      Properties: { Roles: Match.arrayWith([{ Ref: roleLogicalId }]) },
    });
    for (const policy of Object.values(policies)) {
      const document = (policy.Properties as Json).PolicyDocument as { Statement: Json[] };
      for (const statement of document.Statement) {
        expect(statement.Effect).toBe('Allow');
        for (const action of list(statement.Action as string)) {
          // A resource granted twice (by two statements CDK did not merge) is one grant.
          grants[action] = [
            ...new Set([...(grants[action] ?? []), ...list(statement.Resource).map(render)]),
          ].sort();
        }
      }
    }
    return grants;
  };

  beforeAll(() => {
    // GIVEN the app as `cdk synth` builds it, every setting at its default
    app = createApp({ context: CONTEXT });
    stack = app.node.findChild(DEFAULT_STACK_NAME) as AtlasBackupPrivateEndpointsStack;
    // WHEN it is synthesized (cdk-nag runs here and throws on any unacknowledged finding)
    template = Template.fromStack(stack);
  });

  afterAll(() => CloudAssembly.cleanupTemporaryDirectories());

  describe('queues', () => {
    it('encrypts every queue at rest and denies any request without TLS', () => {
      const queues = template.findResources('AWS::SQS::Queue');
      // The default requester's queue and DLQ, the rejected queue, the continuation queue and its DLQ.
      expect(Object.keys(queues)).toHaveLength(5);
      for (const [logicalId, queue] of Object.entries(queues)) {
        expect((queue.Properties as Json).SqsManagedSseEnabled).toBe(true);
        template.hasResourceProperties('AWS::SQS::QueuePolicy', {
          Queues: [{ Ref: logicalId }],
          PolicyDocument: {
            Statement: Match.arrayWith([
              Match.objectLike({
                Effect: 'Deny',
                Action: 'sqs:*',
                Principal: { AWS: '*' },
                Condition: { Bool: { 'aws:SecureTransport': 'false' } },
                Resource: { 'Fn::GetAtt': [logicalId, 'Arn'] },
              }),
            ]),
          },
        });
      }
    });

    it('redrives a request to the DLQ after maxReceiveCount receives, above the attempt budget', () => {
      // THEN
      expect(maxReceiveCount(DEFAULTS)).toBeGreaterThan(DEFAULTS.maxAttempts);
      template.hasResourceProperties('AWS::SQS::Queue', {
        RedrivePolicy: {
          deadLetterTargetArn: arn(deadLetterQueue()),
          maxReceiveCount: maxReceiveCount(DEFAULTS),
        },
      });
    });

    it('hides a received request for at least six provisioner timeouts', () => {
      const request = template.toJSON().Resources[id(requestQueue())];
      expect(request.Properties.VisibilityTimeout).toBe(visibilityTimeoutSeconds(DEFAULTS));
      expect(request.Properties.VisibilityTimeout).toBeGreaterThanOrEqual(
        6 * DEFAULTS.provisionTimeoutSeconds,
      );
    });

    it('keeps DLQ and rejected messages for 14 days', () => {
      const resources = template.toJSON().Resources;
      const dlq = resources[id(deadLetterQueue())].Properties;
      const rejected = resources[id(stack.queues.rejectedQueue)].Properties;
      expect(dlq.MessageRetentionPeriod).toBe(DAYS_14);
      expect(rejected.MessageRetentionPeriod).toBe(DAYS_14);
    });

    it('lets only the request queue redrive into the DLQ, which makes the DLQ a message move task source', () => {
      const resources = template.toJSON().Resources;
      const request = resources[id(requestQueue())].Properties;
      const dlq = resources[id(deadLetterQueue())].Properties;
      expect(dlq.RedriveAllowPolicy.redrivePermission).toBe('byQueue');
      expect(dlq.RedriveAllowPolicy.sourceQueueArns.map(render)).toEqual([
        `arn:<AWS::Partition>:sqs:<AWS::Region>:<AWS::AccountId>:${request.QueueName}`,
      ]);
      expect(request.QueueName).toMatch(/^[A-Za-z0-9_-]{1,80}$/);
    });

    it('leaves room in the parking queues for any request body the request queue accepts plus its reason', () => {
      const resources = template.toJSON().Resources;
      const size = (q: IConstruct) => resources[id(q)].Properties.MaximumMessageSize as number;
      const request = size(requestQueue());
      expect(request).toBe(REQUEST_MAX_MESSAGE_BYTES);
      expect(request).toBeGreaterThanOrEqual(MAX_BODY_BYTES);
      for (const parking of [deadLetterQueue(), stack.queues.rejectedQueue]) {
        expect(size(parking)).toBe(PARKING_MAX_MESSAGE_BYTES);
        expect(size(parking) - request).toBeGreaterThanOrEqual(PARKED_ATTRIBUTES_MAX_BYTES);
      }
    });
  });

  describe('provisioner', () => {
    it('consumes the request queue and the continuation queue with per-record failures, the batch size and the concurrency cap', () => {
      for (const queue of [requestQueue(), continuation()]) {
        template.hasResourceProperties('AWS::Lambda::EventSourceMapping', {
          EventSourceArn: arn(queue),
          FunctionName: ref(stack.provisioner),
          FunctionResponseTypes: ['ReportBatchItemFailures'],
          BatchSize: DEFAULTS.batchSize,
          // The cap is the provisioner's, split between its two queues.
          ScalingConfig: { MaximumConcurrency: Math.floor(DEFAULTS.maxConcurrency / 2) },
        });
      }
    });

    it('runs on Node 24, arm64, without X-Ray, with its timeout and its settings in the environment', () => {
      template.hasResourceProperties('AWS::Lambda::Function', {
        Runtime: 'nodejs24.x',
        Architectures: ['arm64'],
        Handler: 'index.handler',
        Timeout: DEFAULTS.provisionTimeoutSeconds,
        TracingConfig: Match.absent(),
        LoggingConfig: { LogGroup: ref(stack.provisioner.logGroup) },
        Environment: {
          Variables: Match.objectEquals({
            ATLAS_BASE_URL: DEFAULTS.atlasBaseUrl,
            ATLAS_API_VERSION: DEFAULTS.atlasApiVersion,
            ATLAS_TIMEOUT_MS: String(DEFAULTS.atlasTimeoutMs),
            SECRET_PREFIX: DEFAULTS.secretPrefix,
            ALLOWED_PROFILES: 'default',
            SECRET_MAX_AGE_SECONDS: String(DEFAULTS.secretMaxAgeSeconds),
            LEDGER_TABLE_NAME: ref(stack.ledger.table),
            EVENT_BUS_NAME: 'default',
            EVENT_SOURCE: DEFAULTS.eventSource,
            REQUESTERS: stack.resolve(
              JSON.stringify([
                {
                  name: 'default',
                  queueArn: requestQueue().queueArn,
                  queueUrl: requestQueue().queueUrl,
                  dlqUrl: deadLetterQueue().queueUrl,
                  projects: 'ALL',
                  profiles: ['default'],
                  actions: ['create', 'delete'],
                },
              ]),
            ),
            CONTINUATION_QUEUE_URL: ref(continuation()),
            CONTINUATION_QUEUE_ARN: arn(continuation()),
            REJECTED_QUEUE_URL: ref(stack.queues.rejectedQueue),
            MAX_ATTEMPTS: String(DEFAULTS.maxAttempts),
            BACKOFF_BASE_SECONDS: String(DEFAULTS.backoffBaseSeconds),
            BACKOFF_CAP_SECONDS: String(DEFAULTS.backoffCapSeconds),
            RECORD_CONCURRENCY: String(DEFAULTS.recordConcurrency),
            LEASE_SECONDS: String(2 * DEFAULTS.provisionTimeoutSeconds),
            CREATE_SETTLE_SECONDS: String(3 * (DEFAULTS.atlasTimeoutMs / 1000)),
            MAX_ENDPOINT_FAILURES: String(DEFAULTS.maxEndpointFailures),
            FOLLOW_UP_FIRST_SECONDS: String(DEFAULTS.followUpFirstSeconds),
            FOLLOW_UP_MAX_SECONDS: String(DEFAULTS.followUpMaxSeconds),
            POWERTOOLS_SERVICE_NAME: SERVICE.provisioner,
            POWERTOOLS_METRICS_NAMESPACE: METRICS_NAMESPACE,
            NODE_OPTIONS: '--enable-source-maps',
          }),
        },
      });
    });

    it('writes its logs to its own log group with the configured retention', () => {
      template.hasResourceProperties('AWS::Logs::LogGroup', { RetentionInDays: DEFAULTS.logRetentionDays });
      expect(template.toJSON().Resources[id(stack.provisioner.logGroup)].Properties.RetentionInDays).toBe(
        DEFAULTS.logRetentionDays,
      );
    });

    it('may read exactly the allowed profile secrets, with the suffix Secrets Manager appends', () => {
      template.hasResourceProperties('AWS::IAM::Policy', {
        Roles: [ref(stack.provisioner.role as IConstruct)],
        PolicyDocument: {
          Statement: Match.arrayWith([
            Match.objectLike({
              Effect: 'Allow',
              Action: 'secretsmanager:GetSecretValue',
              Resource: {
                'Fn::Join': [
                  '',
                  [
                    'arn:',
                    { Ref: 'AWS::Partition' },
                    ':secretsmanager:',
                    { Ref: 'AWS::Region' },
                    ':',
                    { Ref: 'AWS::AccountId' },
                    ':secret:cfn/atlas/profile/default-??????',
                  ],
                ],
              },
            }),
          ]),
        },
      });
    });

    it('is invoked only by its event source, whose maxConcurrency bounds its concurrency', () => {
      const permissions = template.findResources('AWS::Lambda::Permission', {
        Properties: { FunctionName: Match.objectLike({ 'Fn::GetAtt': [id(stack.provisioner), 'Arn'] }) },
      });
      expect(permissions).toEqual({});
      const mappings = Object.values(template.findResources('AWS::Lambda::EventSourceMapping'));
      const caps = mappings.map((m) => ((m.Properties as Json).ScalingConfig as Json).MaximumConcurrency);
      expect(caps).toEqual([2, 2]);
      expect((caps as number[]).reduce((a, b) => a + b)).toBeLessThanOrEqual(DEFAULTS.maxConcurrency);
    });

    it('may send to the continuation queue, the DLQ and the rejected queue, and change visibility where it consumes', () => {
      const grants = grantsOf(id(stack.provisioner.role as IConstruct));
      const queue = (q: IConstruct) => `<${id(q)}.Arn>`;
      expect(grants['sqs:SendMessage']).toEqual(
        [continuation(), deadLetterQueue(), stack.queues.rejectedQueue].map(queue).sort(),
      );
      expect(grants['sqs:ChangeMessageVisibility']).toEqual(
        [requestQueue(), continuation()].map(queue).sort(),
      );
    });

    it('is granted exactly what its work needs, and nothing on "*"', () => {
      const table = `<${id(stack.ledger.table)}.Arn>`;
      const queue = (q: IConstruct) => [`<${id(q)}.Arn>`];
      const consumed = [...queue(requestQueue()), ...queue(continuation())].sort();
      expect(grantsOf(id(stack.provisioner.role as IConstruct))).toEqual({
        'logs:CreateLogStream': [`<${id(stack.provisioner.logGroup)}.Arn>`],
        'logs:PutLogEvents': [`<${id(stack.provisioner.logGroup)}.Arn>`],
        'sqs:ReceiveMessage': consumed,
        'sqs:DeleteMessage': consumed,
        'sqs:ChangeMessageVisibility': consumed,
        'sqs:SendMessage': [
          ...queue(continuation()),
          ...queue(deadLetterQueue()),
          ...queue(stack.queues.rejectedQueue),
        ].sort(),
        // The event source's poller (the function's role) reads the queue's attributes; CDK's
        // event source grant adds GetQueueUrl too.
        'sqs:GetQueueAttributes': consumed,
        'sqs:GetQueueUrl': consumed,
        'dynamodb:UpdateItem': [table],
        'dynamodb:GetItem': [table],
        'secretsmanager:GetSecretValue': [
          'arn:<AWS::Partition>:secretsmanager:<AWS::Region>:<AWS::AccountId>:secret:cfn/atlas/profile/default-??????',
        ],
        'events:PutEvents': ['arn:<AWS::Partition>:events:<AWS::Region>:<AWS::AccountId>:event-bus/default'],
      });
    });
  });

  it('lets both functions put events on the bus only with the configured source', () => {
    for (const fn of [stack.provisioner, stack.statusChecker]) {
      const statements = Object.values(
        template.findResources('AWS::IAM::Policy', {
          Properties: { Roles: [ref(fn.role as IConstruct)] },
        }),
      ).flatMap((p) => ((p.Properties as Json).PolicyDocument as { Statement: Json[] }).Statement);
      const putEvents = statements.filter((st) => list(st.Action as string).includes('events:PutEvents'));
      expect(putEvents).toEqual([
        expect.objectContaining({
          Action: 'events:PutEvents',
          Condition: { StringEquals: { 'events:source': DEFAULTS.eventSource } },
        }),
      ]);
    }
  });

  it('gives each function exactly the variables the contract writes from its settings, and the Powertools ones', () => {
    // GIVEN what the contract writes from the stack's settings and resources
    const resources = {
      ledgerTableName: stack.ledger.table.tableName,
      continuationQueueUrl: continuation().queueUrl,
    };
    const written = {
      provision: provisionEnvironment(stack.settings, {
        ...resources,
        continuationQueueArn: continuation().queueArn,
        rejectedQueueUrl: stack.queues.rejectedQueue.queueUrl,
        requesters: [
          {
            name: 'default',
            queueArn: requestQueue().queueArn,
            queueUrl: requestQueue().queueUrl,
            dlqUrl: deadLetterQueue().queueUrl,
            projects: 'ALL',
            profiles: stack.settings.allowedProfiles,
            actions: ['create', 'delete'],
          },
        ],
      }),
      checkStatus: checkStatusEnvironment(stack.settings, resources),
    };
    for (const [fn, construct, service] of [
      ['provision', stack.provisioner, SERVICE.provisioner],
      ['checkStatus', stack.statusChecker, SERVICE.statusChecker],
    ] as const) {
      // THEN the function's synthesized environment is that, plus what its construct adds
      const variables = template.toJSON().Resources[id(construct)].Properties.Environment.Variables;
      const { POWERTOOLS_SERVICE_NAME, POWERTOOLS_METRICS_NAMESPACE, NODE_OPTIONS, ...contract } = variables;
      expect({ POWERTOOLS_SERVICE_NAME, POWERTOOLS_METRICS_NAMESPACE, NODE_OPTIONS }, fn).toEqual({
        POWERTOOLS_SERVICE_NAME: service,
        POWERTOOLS_METRICS_NAMESPACE: METRICS_NAMESPACE,
        NODE_OPTIONS: '--enable-source-maps',
      });
      expect(contract, fn).toEqual(stack.resolve(written[fn]));
      // AND holds every variable the function reads, and no other
      expect(Object.keys(contract).sort(), fn).toEqual(
        FUNCTION_VARIABLES[fn].map((o) => VARIABLES[o].name).sort(),
      );
    }
  });

  describe('status checker', () => {
    it('runs one at a time on Node 24, arm64, without X-Ray, with its timeout and no async retry', () => {
      template.hasResourceProperties('AWS::Lambda::Function', {
        Runtime: 'nodejs24.x',
        Architectures: ['arm64'],
        Timeout: DEFAULTS.checkTimeoutSeconds,
        ReservedConcurrentExecutions: 1,
        TracingConfig: Match.absent(),
        Environment: {
          Variables: Match.objectLike({
            LEDGER_TABLE_NAME: ref(stack.ledger.table),
            CONTINUATION_QUEUE_URL: ref(continuation()),
            PENDING_ACCEPTANCE_DEADLINE_MINUTES: String(DEFAULTS.pendingAcceptanceDeadlineMinutes),
            IN_PROGRESS_DEADLINE_MINUTES: String(DEFAULTS.inProgressDeadlineMinutes),
            PROJECT_CONCURRENCY: String(DEFAULTS.projectConcurrency),
            SAFETY_MARGIN_MS: '10000',
            POWERTOOLS_SERVICE_NAME: SERVICE.statusChecker,
            POWERTOOLS_METRICS_NAMESPACE: METRICS_NAMESPACE,
            NODE_OPTIONS: '--enable-source-maps',
          }),
        },
      });
      template.hasResourceProperties('AWS::Lambda::EventInvokeConfig', {
        FunctionName: ref(stack.statusChecker),
        MaximumRetryAttempts: 0,
      });
    });

    it('drops a run still waiting after one schedule period, in Scheduler and in Lambda', () => {
      const period = DEFAULTS.scheduleRateMinutes * 60;
      template.hasResourceProperties('AWS::Lambda::EventInvokeConfig', {
        FunctionName: ref(stack.statusChecker),
        MaximumEventAgeInSeconds: period,
      });
      template.hasResourceProperties('AWS::Scheduler::Schedule', {
        Target: Match.objectLike({ RetryPolicy: Match.objectLike({ MaximumEventAgeInSeconds: period }) }),
      });
    });

    it('runs every 5 minutes on an EventBridge Scheduler schedule that may invoke only it', () => {
      template.hasResourceProperties('AWS::Scheduler::Schedule', {
        ScheduleExpression: 'rate(5 minutes)',
        State: 'ENABLED',
        Target: Match.objectLike({ Arn: arn(stack.statusChecker) }),
      });
      const schedule = single(template.findResources('AWS::Scheduler::Schedule'));
      const roleId = ((schedule.Properties as Json).Target as { RoleArn: { 'Fn::GetAtt': string[] } })
        .RoleArn['Fn::GetAtt'][0] as string;
      const checker = `<${id(stack.statusChecker)}.Arn>`;
      expect(grantsOf(roleId)).toEqual({
        'lambda:InvokeFunction': [checker, `${checker}:*`],
      });
    });

    it('is granted exactly what its work needs: items, the check index, the continuation queue, secrets, events', () => {
      const table = `<${id(stack.ledger.table)}.Arn>`;
      const logGroup = `<${id(stack.statusChecker.logGroup)}.Arn>`;
      expect(grantsOf(id(stack.statusChecker.role as IConstruct))).toEqual({
        'logs:CreateLogStream': [logGroup],
        'logs:PutLogEvents': [logGroup],
        'dynamodb:UpdateItem': [table],
        'dynamodb:Query': [`${table}/index/${CHECK_INDEX}`],
        'sqs:SendMessage': [`<${id(continuation())}.Arn>`],
        'secretsmanager:GetSecretValue': [
          'arn:<AWS::Partition>:secretsmanager:<AWS::Region>:<AWS::AccountId>:secret:cfn/atlas/profile/default-??????',
        ],
        'events:PutEvents': ['arn:<AWS::Partition>:events:<AWS::Region>:<AWS::AccountId>:event-bus/default'],
      });
    });

    it("publishes to the account's default bus without creating a bus", () => {
      template.resourceCountIs('AWS::Events::EventBus', 0);
      template.hasOutput('EventBusName', { Value: 'default' });
    });
  });

  describe('ledger table', () => {
    it('is on demand, encrypted, point-in-time recoverable, retained and deletion protected', () => {
      template.hasResource('AWS::DynamoDB::Table', {
        DeletionPolicy: 'Retain',
        UpdateReplacePolicy: 'Retain',
        Properties: Match.objectLike({
          BillingMode: 'PAY_PER_REQUEST',
          PointInTimeRecoverySpecification: { PointInTimeRecoveryEnabled: true },
          SSESpecification: { SSEEnabled: true },
          DeletionProtectionEnabled: true,
        }),
      });
    });

    it('has the ledger schema: key, and the sparse check index by tracked and checkedAt', () => {
      template.hasResourceProperties('AWS::DynamoDB::Table', {
        KeySchema: [{ AttributeName: 'key', KeyType: 'HASH' }],
        GlobalSecondaryIndexes: [
          {
            IndexName: CHECK_INDEX,
            KeySchema: [
              { AttributeName: 'tracked', KeyType: 'HASH' },
              { AttributeName: 'checkedAt', KeyType: 'RANGE' },
            ],
            Projection: { ProjectionType: 'ALL' },
          },
        ],
      });
    });
  });

  describe('monitoring', () => {
    const alarmOn = (metricName: string, dimension: Json, threshold: number) =>
      template.hasResourceProperties('AWS::CloudWatch::Alarm', {
        MetricName: metricName,
        Dimensions: [dimension],
        ComparisonOperator: 'GreaterThanThreshold',
        Threshold: threshold,
      });

    it('alarms on any message visible in the DLQ or the rejected queue', () => {
      for (const queue of [deadLetterQueue(), stack.queues.rejectedQueue]) {
        alarmOn(
          'ApproximateNumberOfMessagesVisible',
          { Name: 'QueueName', Value: { 'Fn::GetAtt': [id(queue), 'QueueName'] } },
          0,
        );
      }
    });

    it('alarms when the status checker could not check a project for a reason an operator must fix', () => {
      template.hasResourceProperties('AWS::CloudWatch::Alarm', {
        Namespace: METRICS_NAMESPACE,
        MetricName: METRIC.checkFailed,
        Dimensions: [{ Name: 'service', Value: SERVICE.statusChecker }],
        Threshold: 0,
      });
    });

    it('alarms when the answer of a parked request is lost', () => {
      template.hasResourceProperties('AWS::CloudWatch::Alarm', {
        Namespace: METRICS_NAMESPACE,
        MetricName: METRIC.answersLost,
        Dimensions: [{ Name: 'service', Value: SERVICE.provisioner }],
        Threshold: 0,
      });
    });

    it('alarms when either function counts a status event EventBridge refused or a duplicate endpoint', () => {
      for (const name of [METRIC.eventPublishFailed, METRIC.duplicateEndpoints]) {
        template.hasResourceProperties('AWS::CloudWatch::Alarm', {
          ComparisonOperator: 'GreaterThanOrEqualToThreshold',
          Threshold: 1,
          Metrics: Match.arrayWith(
            [SERVICE.provisioner, SERVICE.statusChecker].map((service) =>
              Match.objectLike({
                MetricStat: Match.objectLike({
                  Metric: {
                    Namespace: METRICS_NAMESPACE,
                    MetricName: name,
                    Dimensions: [{ Name: 'service', Value: service }],
                  },
                  Stat: 'Sum',
                }),
                ReturnData: false,
              }),
            ),
          ),
        });
      }
    });

    it('alarms when the oldest request is older than oldestRequestAgeAlarmSeconds', () => {
      alarmOn(
        'ApproximateAgeOfOldestMessage',
        { Name: 'QueueName', Value: { 'Fn::GetAtt': [id(requestQueue()), 'QueueName'] } },
        DEFAULTS.oldestRequestAgeAlarmSeconds,
      );
    });

    it('alarms on errors and throttles of both functions', () => {
      for (const fn of [stack.provisioner, stack.statusChecker]) {
        for (const metric of ['Errors', 'Throttles'])
          alarmOn(metric, { Name: 'FunctionName', Value: ref(fn) }, 0);
      }
    });

    it('notifies nobody when no alarm topic is set', () => {
      for (const alarm of Object.values(template.findResources('AWS::CloudWatch::Alarm'))) {
        expect(alarm.Properties).not.toHaveProperty('AlarmActions');
      }
    });

    it('graphs requests, outcomes, Atlas latency, 429s and status checks from the function metrics', () => {
      const dashboard = single(template.findResources('AWS::CloudWatch::Dashboard'));
      const body = render((dashboard.Properties as Json).DashboardBody);
      const metric = (name: string, service: string) =>
        JSON.stringify([METRICS_NAMESPACE, name, 'service', service]).slice(1, -1);
      for (const name of [METRIC.requests, METRIC.provisioned, METRIC.deadLettered, METRIC.rejected]) {
        expect(body).toContain(metric(name, SERVICE.provisioner));
      }
      for (const service of [SERVICE.provisioner, SERVICE.statusChecker]) {
        expect(body).toContain(metric(METRIC.atlasLatency, service));
        expect(body).toContain(metric(METRIC.atlasRateLimited, service));
      }
      for (const name of [METRIC.checkedEndpoints, METRIC.statusChanged, METRIC.stuck, METRIC.missing]) {
        expect(body).toContain(metric(name, SERVICE.statusChecker));
      }
      for (const name of [METRIC.followUps, METRIC.followUpsDropped]) {
        expect(body).toContain(metric(name, SERVICE.provisioner));
      }
      for (const service of [SERVICE.provisioner, SERVICE.statusChecker]) {
        expect(body).toContain(metric(METRIC.eventPublishFailed, service));
        expect(body).toContain(metric(METRIC.duplicateEndpoints, service));
      }
    });
  });

  it('outputs what the operator CLIs read', () => {
    const outputs = template.toJSON().Outputs;
    expect(Object.keys(outputs).sort()).toEqual([
      'ContinuationDeadLetterQueueUrl',
      'DeadLetterQueueArn',
      'DeadLetterQueueUrl',
      'EventBusName',
      'EventSource',
      'LedgerTableName',
      'RejectedQueueUrl',
      'RequestQueueArn',
      'RequestQueueUrl',
    ]);
    expect(outputs.RequestQueueUrl.Value).toEqual(ref(requestQueue()));
    expect(outputs.DeadLetterQueueArn.Value).toEqual(arn(deadLetterQueue()));
    expect(outputs.LedgerTableName.Value).toEqual(ref(stack.ledger.table));
    expect(outputs.EventSource.Value).toBe(DEFAULTS.eventSource);
  });

  it('synthesizes without CDK warnings or errors', () => {
    expect(Annotations.fromStack(stack).findWarning('*', Match.anyValue())).toEqual([]);
    expect(Annotations.fromStack(stack).findError('*', Match.anyValue())).toEqual([]);
  });

  describe('cdk-nag', () => {
    it('leaves no AwsSolutions finding unacknowledged', () => {
      const report = new AwsSolutionsChecks().validateScope(app);
      expect(report.violations).toEqual([]);
    });

    it('acknowledges only the checker invoke qualifiers and the rejected queue', () => {
      const acknowledged = stack.node
        .findAll()
        .flatMap((c) => c.node.metadata.filter((m) => m.type === Validations.ACKNOWLEDGED_RULES_METADATA_KEY))
        .flatMap((m) => Object.entries(m.data as Record<string, string>))
        .map(([rule, reason]) => {
          expect(reason.length).toBeGreaterThan(40);
          return rule.replace(/^annotation::/i, '');
        });
      expect(acknowledged.sort()).toEqual(
        [`AwsSolutions-IAM5[Resource::<${id(stack.statusChecker)}.Arn>:*]`, 'AwsSolutions-SQS3'].sort(),
      );
    });
  });

  describe('settings validation', () => {
    const build = (settings: object) => () =>
      new AtlasBackupPrivateEndpointsStack(new App({ context: CONTEXT }), 'Invalid', { settings });

    it('fails if maxAttempts is below 1, naming the setting and the value', () => {
      expect(build({ maxAttempts: 0 })).toThrow(/maxAttempts: .*\(given 0\)/);
    });

    it('fails if maxConcurrency is below the event source minimum of 2', () => {
      expect(build({ maxConcurrency: 1 })).toThrow(/maxConcurrency: .*\(given 1\)/);
    });

    it('warns when maxConcurrency leaves less than 2 for each queue the provisioner consumes, with the numbers', () => {
      const low = new AtlasBackupPrivateEndpointsStack(new App({ context: CONTEXT }), 'Low', {
        settings: { maxConcurrency: 3 },
      });

      expect(Annotations.fromStack(low).findWarning('*', Match.stringLikeRegexp('maxConcurrency'))).toEqual([
        expect.objectContaining({
          entry: expect.objectContaining({
            data: expect.stringMatching(
              /maxConcurrency \(3\) is below 2 per queue .* \(2\): up to 4 invocations/,
            ),
          }),
        }),
      ]);
    });

    it('fails if an allowed profile is not a valid secret name part', () => {
      expect(build({ allowedProfiles: ['ok', 'no/slash'] })).toThrow(
        /allowedProfiles\.1: .*\(given "no\/slash"\)/,
      );
    });

    it('fails if backoffCapSeconds is below backoffBaseSeconds', () => {
      expect(build({ backoffBaseSeconds: 60, backoffCapSeconds: 30 })).toThrow(/backoffCapSeconds \(30\)/);
    });

    it('fails if logRetentionDays is not a retention CloudWatch Logs accepts', () => {
      expect(build({ logRetentionDays: 2 })).toThrow(
        /logRetentionDays: must be one of 1, 3, 5, .*\(given 2\)/,
      );
    });

    it('fails if a setting is unknown', () => {
      expect(build({ maxAttempt: 3 })).toThrow(/invalid settings/);
    });

    it('refuses requesterAccounts and requesterOrganizationId, saying to name requesters instead', () => {
      expect(build({ requesterAccounts: ['111111111111'] })).toThrow(
        /requesterAccounts: no longer accepted: it let every principal of those accounts ask for any project; name each requester instead: requesters: \[\{ name, senders: \['111111111111'\], projects, profiles, actions \}\]/,
      );
      expect(build({ requesterOrganizationId: 'o-a1b2c3d4e5' })).toThrow(
        /requesterOrganizationId: no longer accepted: it let every principal of the organization ask for any project/,
      );
    });

    describe('requesters', () => {
      const requester = (r: object) => ({
        name: 'team-a',
        senders: ['111111111111'],
        projects: 'ALL',
        profiles: ['default'],
        actions: ['create'],
        ...r,
      });
      const withRequesters = (...requesters: object[]) => build({ requesters });

      it('fails if two requesters have one name', () => {
        expect(withRequesters(requester({}), requester({}))).toThrow(
          /requesters\[1\] "team-a": name: another requester has this name/,
        );
      });

      it('fails if a requester has no channel', () => {
        expect(withRequesters(requester({ senders: [] }))).toThrow(
          /requesters\[0\] "team-a": senders: name at least one sender, or frontDoorAccounts/,
        );
      });

      it('fails if frontDoorAccounts are named without a front door bus', () => {
        expect(withRequesters(requester({ frontDoorAccounts: ['333333333333'] }))).toThrow(
          /requesters\[0\] "team-a": frontDoorAccounts: needs requestEventBusName/,
        );
      });

      it("fails if one front-door account is two requesters'", () => {
        const front = { requestEventBusName: 'requests', requestEventSources: ['orders'] };
        expect(
          build({
            ...front,
            requesters: [
              requester({ frontDoorAccounts: ['333333333333'] }),
              requester({ name: 'team-b', frontDoorAccounts: ['333333333333'] }),
            ],
          }),
        ).toThrow(/requesters\[1\] "team-b": frontDoorAccounts: 333333333333 is also requester "team-a"'s/);
      });

      it('fails if a front door bus is set and no requester names front-door accounts', () => {
        expect(
          build({
            requestEventBusName: 'requests',
            requestEventSources: ['orders'],
            requesters: [requester({})],
          }),
        ).toThrow(/requestEventBusName: with requesters, the front door takes request events only from/);
      });

      it('fails if a profile is not an allowed profile', () => {
        expect(withRequesters(requester({}), requester({ name: 'team-b', profiles: ['prod'] }))).toThrow(
          /requesters\[1\] "team-b": profiles: "prod" is not in allowedProfiles/,
        );
      });

      it('fails if an operator may not delete', () => {
        expect(withRequesters(requester({ operator: true }))).toThrow(
          /requesters\[0\] "team-a": operator: needs action "delete"/,
        );
      });

      it('fails if statusEventBusArn is not an event bus ARN', () => {
        expect(
          withRequesters(requester({ statusEventBusArn: 'arn:aws:sqs:eu-west-1:111111111111:queue' })),
        ).toThrow(/requesters\[0\] "team-a": statusEventBusArn: must be an event bus ARN/);
      });

      it('fails if a sender is neither an account id nor a role or user ARN, naming the requester', () => {
        expect(withRequesters(requester({ senders: ['arn:aws:iam::111111111111:group/admins'] }))).toThrow(
          /requesters\[0\] "team-a": senders\.0: each sender must be a 12-digit AWS account id or an IAM role or user ARN/,
        );
      });

      it('fails if a name is not a requester name, or a field is unknown', () => {
        expect(withRequesters(requester({ name: 'Team A' }))).toThrow(
          /requesters\[0\] "Team A": name: must be 1-32/,
        );
        expect(withRequesters(requester({ sender: ['111111111111'] }))).toThrow(/requesters\[0\] "team-a"/);
      });

      it("fails if the provisioner's environment would exceed Lambda's 4 KB", () => {
        const many = Array.from({ length: 12 }, (_, i) => requester({ name: `team-${i}` }));
        expect(withRequesters(...many)).toThrow(
          /the environment of Provisioner could take up to \d+ bytes, over Lambda's 4096 .*largest: REQUESTERS/,
        );
      });
    });
  });
});
