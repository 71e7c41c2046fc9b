/**
 * The provisioner's stack: request queue -> provisioning function -> Atlas, a DynamoDB ledger,
 * a DLQ and a rejected queue, the scheduled status checker, status events on an EventBridge bus,
 * alarms and a dashboard. Its outputs are what the operator CLIs in infra/ops read.
 */
import { CfnOutput, Duration, Stack, type StackProps, Validations } from 'aws-cdk-lib';
import { EventBus, type IEventBus } from 'aws-cdk-lib/aws-events';
import { Grant, type IGrantable } from 'aws-cdk-lib/aws-iam';
import type { CfnFunction } from 'aws-cdk-lib/aws-lambda';
import { SqsEventSource } from 'aws-cdk-lib/aws-lambda-event-sources';
import { RetentionDays } from 'aws-cdk-lib/aws-logs';
import { Schedule, ScheduleExpression } from 'aws-cdk-lib/aws-scheduler';
import { LambdaInvoke } from 'aws-cdk-lib/aws-scheduler-targets';
import { Topic } from 'aws-cdk-lib/aws-sns';
import type { Construct } from 'constructs';
import {
  checkStatusEnvironment,
  maxReceiveCount,
  provisionEnvironment,
  resolveSettings,
  type Settings,
  SettingsError,
  type SettingsInput,
  visibilityTimeoutSeconds,
} from '#infra/settings.ts';
import { SERVICE } from '#lib/telemetry.ts';
import { AppFunction } from './constructs/function.ts';
import { LedgerTable } from './constructs/ledger.ts';
import { Monitoring } from './constructs/monitoring.ts';
import { ProfileSecrets } from './constructs/profile-secrets.ts';
import { RequestQueues } from './constructs/queues.ts';

/** Handler modules of the functions, relative to the repository root. */
export const ENTRIES = {
  provisioner: 'functions/provision/handler.ts',
  statusChecker: 'functions/check-status/handler.ts',
} as const;

export interface AtlasBackupPrivateEndpointsStackProps extends StackProps {
  /**
   * Deployment settings (infra/settings.ts documents each one and its default). Validated when
   * the stack is built: an invalid value fails synth with a message naming it.
   * @default - every setting at its default
   */
  readonly settings?: SettingsInput;
}

export class AtlasBackupPrivateEndpointsStack extends Stack {
  readonly settings: Settings;
  readonly queues: RequestQueues;
  readonly ledger: LedgerTable;
  readonly provisioner: AppFunction;
  readonly statusChecker: AppFunction;
  readonly eventBus: IEventBus;
  readonly monitoring: Monitoring;

  constructor(scope: Construct, id: string, props: AtlasBackupPrivateEndpointsStackProps = {}) {
    super(scope, id, {
      description: 'Provisions MongoDB Atlas backup private endpoints from SQS requests',
      ...props,
    });
    const s = resolveSettings(props.settings);
    this.settings = s;
    const logRetention = retentionDays(s.logRetentionDays);

    this.queues = new RequestQueues(this, 'Queues', {
      maxReceiveCount: maxReceiveCount(s),
      visibilityTimeout: Duration.seconds(visibilityTimeoutSeconds(s)),
    });
    const { requestQueue, deadLetterQueue, rejectedQueue } = this.queues;
    this.ledger = new LedgerTable(this, 'Ledger');
    const secrets = new ProfileSecrets(this, 'ProfileSecrets', {
      prefix: s.secretPrefix,
      profiles: s.allowedProfiles,
    });
    // The account's default bus always exists and cannot be created: every bus is referenced.
    this.eventBus = EventBus.fromEventBusName(this, 'EventBus', s.eventBusName);
    const tableName = this.ledger.table.tableName;

    this.provisioner = new AppFunction(this, 'Provisioner', {
      entry: ENTRIES.provisioner,
      description: 'Creates and deletes Atlas backup private endpoints from queued requests',
      serviceName: SERVICE.provisioner,
      timeout: Duration.seconds(s.provisionTimeoutSeconds),
      logRetention,
      environment: provisionEnvironment(s, {
        requestQueueUrl: requestQueue.queueUrl,
        dlqUrl: deadLetterQueue.queueUrl,
        rejectedQueueUrl: rejectedQueue.queueUrl,
        tableName,
      }),
    });
    this.provisioner.addEventSource(
      new SqsEventSource(requestQueue, {
        reportBatchItemFailures: true,
        batchSize: s.batchSize,
        // Lambda accepts batches above 10 only with a batching window.
        maxBatchingWindow: s.batchSize > 10 ? Duration.seconds(1) : undefined,
        // The cap on concurrent invocations keeps the deployment under Atlas's rate limits.
        maxConcurrency: s.maxConcurrency,
      }),
    );
    // Retries delay a record by changing its visibility; the event source grant already allows it
    // on this queue, stated again so the permission does not hinge on how the event source is wired.
    requestQueue.grant(this.provisioner, 'sqs:ChangeMessageVisibility');
    // It sends itself delayed continuation messages while it waits for Atlas.
    requestQueue.grantSendMessages(this.provisioner);
    deadLetterQueue.grantSendMessages(this.provisioner);
    rejectedQueue.grantSendMessages(this.provisioner);
    this.ledger.grantItemUpdates(this.provisioner);
    secrets.grantRead(this.provisioner);
    grantPutStatusEvents(this.eventBus, s.eventSource, this.provisioner);

    const period = Duration.minutes(s.scheduleRateMinutes);
    this.statusChecker = new AppFunction(this, 'StatusChecker', {
      entry: ENTRIES.statusChecker,
      description: 'Follows endpoints in Atlas until they settle and reports changes and stuck ones',
      serviceName: SERVICE.statusChecker,
      timeout: Duration.seconds(s.checkTimeoutSeconds),
      logRetention,
      // The next scheduled run is the retry; a retried run would overlap it.
      retryAttempts: 0,
      // One run at a time: two runs would check, and report, the same endpoints twice.
      reservedConcurrentExecutions: 1,
      // A run that could not start before the next one is due is superseded by it.
      maxEventAge: checkerMaxEventAge(period),
      environment: checkStatusEnvironment(s, { tableName, requestQueueUrl: requestQueue.queueUrl }),
    });
    this.ledger.grantItemUpdates(this.statusChecker);
    this.ledger.grantQueryCheckIndex(this.statusChecker);
    // It hands keys back to the provisioner through the request queue.
    requestQueue.grantSendMessages(this.statusChecker);
    secrets.grantRead(this.statusChecker);
    grantPutStatusEvents(this.eventBus, s.eventSource, this.statusChecker);
    new Schedule(this, 'StatusCheckSchedule', {
      description: 'Runs the status checker',
      schedule: ScheduleExpression.rate(period),
      target: new LambdaInvoke(this.statusChecker, { maxEventAge: checkerMaxEventAge(period) }),
    });
    // The finding names the checker's ARN, so this covers that one function's qualifiers only.
    const checkerId = this.getLogicalId(this.statusChecker.node.defaultChild as CfnFunction);
    Validations.of(this).acknowledge({
      id: `AwsSolutions-IAM5[Resource::<${checkerId}.Arn>:*]`,
      reason:
        "The schedule's role may invoke the status checker; grantInvoke adds `<function ARN>:*` for its " +
        'versions and aliases. The wildcard stays within that one function.',
    });

    this.monitoring = new Monitoring(this, 'Monitoring', {
      queues: this.queues,
      functions: { Provisioner: this.provisioner, StatusChecker: this.statusChecker },
      oldestRequestAge: Duration.seconds(s.oldestRequestAgeAlarmSeconds),
      alarmTopic: s.alarmTopicArn ? Topic.fromTopicArn(this, 'AlarmTopic', s.alarmTopicArn) : undefined,
    });

    const outputs: Record<string, [string, string]> = {
      RequestQueueUrl: [requestQueue.queueUrl, 'Send provisioning requests here'],
      RequestQueueArn: [requestQueue.queueArn, 'Destination of DLQ replays'],
      DeadLetterQueueUrl: [deadLetterQueue.queueUrl, 'Requests that need an operator'],
      DeadLetterQueueArn: [deadLetterQueue.queueArn, 'Source of DLQ replays'],
      RejectedQueueUrl: [rejectedQueue.queueUrl, 'Requests rejected as never retryable'],
      LedgerTableName: [tableName, 'One item per endpoint key'],
      EventBusName: [s.eventBusName, 'Bus of the status events'],
      EventSource: [s.eventSource, 'Source of the status events'],
    };
    for (const [outputId, [value, description]] of Object.entries(outputs)) {
      new CfnOutput(this, outputId, { value, description });
    }
  }
}

/**
 * One schedule period, within what Scheduler and Lambda's asynchronous invocation accept
 * (1 minute to 6 hours): a run still waiting when the next is due is dropped.
 */
export const checkerMaxEventAge = (period: Duration): Duration =>
  Duration.seconds(Math.min(6 * 3600, Math.max(60, period.toSeconds())));

/** PutEvents on the bus, for events of the configured source only. */
function grantPutStatusEvents(bus: IEventBus, source: string, grantee: IGrantable): Grant {
  return Grant.addToPrincipal({
    grantee,
    actions: ['events:PutEvents'],
    resourceArns: [bus.eventBusArn],
    conditions: { StringEquals: { 'events:source': source } },
  });
}

/** CloudWatch Logs accepts only some retention periods; settings.ts allows any day count. */
function retentionDays(days: number): RetentionDays {
  const allowed = Object.values(RetentionDays).filter((v): v is RetentionDays => typeof v === 'number');
  const match = allowed.find((v) => v === days);
  if (match === undefined) {
    throw new SettingsError(
      `invalid settings: logRetentionDays: must be one of ${allowed.filter((v) => v <= 3653).join(', ')} (given ${days})`,
    );
  }
  return match;
}
