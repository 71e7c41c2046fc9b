/**
 * The provisioner as one construct any CDK app can add to its own stack: request queue ->
 * provisioning function -> Atlas, a DynamoDB ledger, a DLQ and a rejected queue, the scheduled
 * status checker, status events on an EventBridge bus, requesters in other accounts, an optional
 * EventBridge front door, alarms and a dashboard. `AtlasBackupPrivateEndpointsStack` is a thin
 * wrapper that adds the outputs the operator CLIs read.
 */
import { Duration, Names, Stack, Validations } from 'aws-cdk-lib';
import type { ITable } from 'aws-cdk-lib/aws-dynamodb';
import {
  CfnEventBusPolicy,
  type CfnRule,
  EventBus,
  type EventPattern,
  type IEventBus,
  type IRuleTarget,
  Rule,
  RuleTargetInput,
} from 'aws-cdk-lib/aws-events';
import { SqsQueue } from 'aws-cdk-lib/aws-events-targets';
import {
  AccountPrincipal,
  CompositePrincipal,
  Grant,
  type IGrantable,
  type IPrincipal,
  OrganizationPrincipal,
  PolicyStatement,
} from 'aws-cdk-lib/aws-iam';
import type { CfnFunction } from 'aws-cdk-lib/aws-lambda';
import { SqsEventSource } from 'aws-cdk-lib/aws-lambda-event-sources';
import { RetentionDays } from 'aws-cdk-lib/aws-logs';
import { Schedule, ScheduleExpression } from 'aws-cdk-lib/aws-scheduler';
import { LambdaInvoke } from 'aws-cdk-lib/aws-scheduler-targets';
import { Topic } from 'aws-cdk-lib/aws-sns';
import { type IQueue, Queue, QueueEncryption } from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';
import { type Outcome, STATUS_CHANGED_DETAIL_TYPE } from '#events/status-event.ts';
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
import {
  REQUEST_EVENT_INPUT_PATH,
  REQUESTED_DETAIL_TYPE,
  requestEventPattern,
} from '#messages/front-door.ts';
import { ALL_PROJECTS, DEFAULT_REQUESTER } from '#messages/requesters.ts';
import { SERVICE } from '#runtime/metric-names.ts';
import { AppFunction, type FunctionNetwork } from './constructs/function.ts';
import { LedgerTable } from './constructs/ledger.ts';
import { Monitoring } from './constructs/monitoring.ts';
import { ProfileSecrets } from './constructs/profile-secrets.ts';
import { RequestQueues } from './constructs/queues.ts';

/**
 * The deployment settings (infra/settings.ts documents each one with its `@default`), validated
 * when the construct is built: an invalid value fails synth with a message naming it; and what a
 * platform team sets on every function (memory, a VPC; log retention is `logRetentionDays`).
 */
export interface AtlasBackupPrivateEndpointsProps extends SettingsInput, FunctionNetwork {
  /** Memory of the provisioner, MB. @default 256 */
  readonly provisionerMemorySize?: number;
  /** Memory of the status checker, MB. @default 256 */
  readonly statusCheckerMemorySize?: number;
}

/** Which status events to select; every field narrows, none selects all of this deployment's. */
export interface StatusEventFilter {
  /** Events answering any of these requests. @default - any request */
  readonly requestIds?: readonly string[];
  /** Events with any of these outcomes. @default - any outcome */
  readonly outcomes?: readonly Outcome[];
}

export interface OnStatusChangedOptions extends StatusEventFilter {
  /** Where the matching status events go. */
  readonly target: IRuleTarget;
  /** @default - no description */
  readonly description?: string;
}

export class AtlasBackupPrivateEndpoints extends Construct {
  readonly settings: Settings;
  readonly queues: RequestQueues;
  readonly ledger: LedgerTable;
  readonly provisioner: AppFunction;
  readonly statusChecker: AppFunction;
  /** The bus the status events go to. */
  readonly eventBus: IEventBus;
  /** The front door rule, when `requestEventBusName` is set. */
  readonly frontDoor?: Rule;
  /** Request events the front door could not deliver to the request queue, after EventBridge's retries. */
  readonly frontDoorDeadLetterQueue?: Queue;
  readonly monitoring: Monitoring;

  constructor(scope: Construct, id: string, props: AtlasBackupPrivateEndpointsProps = {}) {
    super(scope, id);
    const { provisionerMemorySize, statusCheckerMemorySize, vpc, vpcSubnets, securityGroups, ...settings } =
      props;
    const s = resolveSettings(settings);
    this.settings = s;
    const logRetention = retentionDays(s.logRetentionDays);

    this.queues = new RequestQueues(this, 'Queues', {
      maxReceiveCount: maxReceiveCount(s),
      visibilityTimeout: Duration.seconds(visibilityTimeoutSeconds(s)),
    });
    const { requestQueue, deadLetterQueue, rejectedQueue, continuationQueue } = this.queues;
    this.ledger = new LedgerTable(this, 'Ledger');
    const secrets = new ProfileSecrets(this, 'ProfileSecrets', {
      prefix: s.secretPrefix,
      profiles: s.allowedProfiles,
    });
    // The account's default bus always exists and cannot be created: every bus is referenced.
    this.eventBus = EventBus.fromEventBusName(this, 'EventBus', s.eventBusName);
    const ledgerTableName = this.ledger.table.tableName;

    const network: FunctionNetwork = { vpc, vpcSubnets, securityGroups };
    this.provisioner = new AppFunction(this, 'Provisioner', {
      function: 'provisioner',
      ...network,
      memorySize: provisionerMemorySize,
      description: 'Creates and deletes Atlas backup private endpoints from queued requests',
      serviceName: SERVICE.provisioner,
      timeout: Duration.seconds(s.provisionTimeoutSeconds),
      logRetention,
      environment: provisionEnvironment(s, {
        requesters: [
          {
            name: DEFAULT_REQUESTER,
            queueArn: requestQueue.queueArn,
            queueUrl: requestQueue.queueUrl,
            dlqUrl: deadLetterQueue.queueUrl,
            projects: ALL_PROJECTS,
            profiles: s.allowedProfiles,
            actions: ['create', 'delete'],
          },
        ],
        continuationQueueUrl: continuationQueue.queueUrl,
        continuationQueueArn: continuationQueue.queueArn,
        rejectedQueueUrl: rejectedQueue.queueUrl,
        ledgerTableName,
      }),
    });
    for (const queue of [requestQueue, continuationQueue]) {
      this.provisioner.addEventSource(
        new SqsEventSource(queue, {
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
      queue.grant(this.provisioner, 'sqs:ChangeMessageVisibility');
    }
    // It sends itself delayed continuation messages while it waits for Atlas, and parks requests.
    // SendMessage alone: the functions address queues by URL, so never call GetQueueUrl or
    // GetQueueAttributes, which grantSendMessages would add.
    for (const queue of [continuationQueue, deadLetterQueue, rejectedQueue])
      queue.grant(this.provisioner, 'sqs:SendMessage');
    this.ledger.grantItemUpdates(this.provisioner);
    // Follow-ups read their key (GetItem) before they look at Atlas.
    this.ledger.grantItemReads(this.provisioner);
    secrets.grantRead(this.provisioner);
    grantPutStatusEvents(this.eventBus, s.eventSource, this.provisioner);

    const period = Duration.minutes(s.scheduleRateMinutes);
    this.statusChecker = new AppFunction(this, 'StatusChecker', {
      function: 'statusChecker',
      ...network,
      memorySize: statusCheckerMemorySize,
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
      environment: checkStatusEnvironment(s, {
        ledgerTableName,
        continuationQueueUrl: continuationQueue.queueUrl,
      }),
    });
    this.ledger.grantItemUpdates(this.statusChecker);
    this.ledger.grantQueryCheckIndex(this.statusChecker);
    // It hands keys back to the provisioner through the continuation queue.
    continuationQueue.grant(this.statusChecker, 'sqs:SendMessage');
    secrets.grantRead(this.statusChecker);
    grantPutStatusEvents(this.eventBus, s.eventSource, this.statusChecker);
    new Schedule(this, 'StatusCheckSchedule', {
      description: 'Runs the status checker',
      schedule: ScheduleExpression.rate(period),
      target: new LambdaInvoke(this.statusChecker, { maxEventAge: checkerMaxEventAge(period) }),
    });
    // The finding names the checker's ARN, so this covers that one function's qualifiers only. It
    // is made on the stack, where LambdaInvoke puts the schedule's role.
    const checkerId = Stack.of(this).getLogicalId(this.statusChecker.node.defaultChild as CfnFunction);
    Validations.of(Stack.of(this)).acknowledge({
      id: `AwsSolutions-IAM5[Resource::<${checkerId}.Arn>:*]`,
      reason:
        "The schedule's role may invoke the status checker; grantInvoke adds `<function ARN>:*` for its " +
        'versions and aliases. The wildcard stays within that one function.',
    });

    // Senders in other accounts: SendMessage, and GetQueueUrl to find the queue by name. TLS is
    // enforced for them too, by the queue's enforceSSL deny statement.
    const sendRequests = (sid: string, principal: IPrincipal) =>
      requestQueue.addToResourcePolicy(
        new PolicyStatement({
          sid,
          principals: [principal],
          actions: ['sqs:SendMessage', 'sqs:GetQueueUrl'],
          resources: [requestQueue.queueArn],
        }),
      );
    if (s.requesterAccounts.length > 0) {
      sendRequests(
        'RequesterAccountsSend',
        new CompositePrincipal(...s.requesterAccounts.map((a) => new AccountPrincipal(a))),
      );
    }
    if (s.requesterOrganizationId !== undefined) {
      sendRequests('RequesterOrganizationSend', new OrganizationPrincipal(s.requesterOrganizationId));
    }
    if (s.requestEventBusName !== undefined) {
      this.frontDoorDeadLetterQueue = new Queue(this, 'FrontDoorDeadLetterQueue', {
        encryption: QueueEncryption.SQS_MANAGED,
        enforceSSL: true,
        retentionPeriod: Duration.days(14),
      });
      Validations.of(this.frontDoorDeadLetterQueue).acknowledge({
        id: 'AwsSolutions-SQS3',
        reason:
          "The front door rule's dead-letter queue: EventBridge parks the request events it could not deliver " +
          'to the request queue here, nothing consumes it, and an alarm fires on any visible message.',
      });
      this.frontDoor = this.addFrontDoor(s, s.requestEventBusName, this.frontDoorDeadLetterQueue);
    }

    this.monitoring = new Monitoring(this, 'Monitoring', {
      queues: this.queues,
      functions: { Provisioner: this.provisioner, StatusChecker: this.statusChecker },
      oldestRequestAge: Duration.seconds(s.oldestRequestAgeAlarmSeconds),
      frontDoorDeadLetterQueue: this.frontDoorDeadLetterQueue,
      alarmTopic: s.alarmTopicArn ? Topic.fromTopicArn(this, 'AlarmTopic', s.alarmTopicArn) : undefined,
    });
  }

  /** The queue requests are sent to. */
  get requestQueue(): IQueue {
    return this.queues.requestQueue;
  }

  /** Requests that need an operator, with their reason; replayable into the request queue. */
  get deadLetterQueue(): IQueue {
    return this.queues.deadLetterQueue;
  }

  /** Requests rejected as never retryable, with their reason. */
  get rejectedQueue(): IQueue {
    return this.queues.rejectedQueue;
  }

  /** The ledger: one item per endpoint key. */
  get ledgerTable(): ITable {
    return this.ledger.table;
  }

  /** Lets a principal send requests: sqs:SendMessage (and GetQueueAttributes, GetQueueUrl) on the request queue. */
  grantSendRequests(grantee: IGrantable): Grant {
    return this.queues.requestQueue.grantSendMessages(grantee);
  }

  /** The pattern of this deployment's status events, narrowed by `filter`, for a rule of your own. */
  statusEvents(filter: StatusEventFilter = {}): EventPattern {
    const detail = {
      ...(filter.requestIds && { requestIds: [...filter.requestIds] }),
      ...(filter.outcomes && { outcome: [...filter.outcomes] }),
    };
    return {
      source: [this.settings.eventSource],
      detailType: [STATUS_CHANGED_DETAIL_TYPE],
      ...(Object.keys(detail).length > 0 && { detail }),
    };
  }

  /** A rule on the status bus that sends the matching status events to `options.target`. */
  onStatusChanged(id: string, options: OnStatusChangedOptions): Rule {
    return new Rule(this, id, {
      eventBus: this.eventBus,
      description: options.description,
      eventPattern: this.statusEvents(options),
      targets: [options.target],
    });
  }

  /**
   * The front door: a rule on the named bus sends each request event's `detail` to the request
   * queue (the target adds the queue policy statement for this rule only). Requesters in other
   * accounts may put request events on the bus, and only those.
   */
  private addFrontDoor(s: Settings, busName: string, deadLetterQueue: IQueue): Rule {
    const bus = EventBus.fromEventBusName(this, 'RequestEventBus', busName);
    const rule = new Rule(this, 'FrontDoor', {
      eventBus: bus,
      description: `Turns "${REQUESTED_DETAIL_TYPE}" events into requests`,
      eventPattern: { detailType: [REQUESTED_DETAIL_TYPE] },
      targets: [
        new SqsQueue(this.queues.requestQueue, {
          message: RuleTargetInput.fromEventPath(REQUEST_EVENT_INPUT_PATH),
          deadLetterQueue,
        }),
      ],
    });
    // The pattern as front-door.ts defines it, so the local run and the stack share one definition.
    (rule.node.defaultChild as CfnRule).addPropertyOverride(
      'EventPattern',
      requestEventPattern(s.requestEventSources),
    );
    // Request events only, from the accepted sources (`*` ends a prefix in both places).
    const onlyRequests = {
      StringEquals: { 'events:detail-type': REQUESTED_DETAIL_TYPE },
      StringLike: { 'events:source': s.requestEventSources },
    };
    const busPolicy = (policyId: string, principal: Record<string, unknown>, condition: object) =>
      new CfnEventBusPolicy(this, policyId, {
        eventBusName: busName,
        // Unique per construct, so two deployments can share a bus.
        statementId: `${Names.uniqueResourceName(this, { maxLength: 40, separator: '-' })}-${policyId}`,
        statement: {
          Effect: 'Allow',
          Principal: principal,
          Action: 'events:PutEvents',
          Resource: bus.eventBusArn,
          Condition: condition,
        },
      });
    if (s.requesterAccounts.length > 0) {
      busPolicy(
        'RequesterAccounts',
        {
          AWS: s.requesterAccounts.map((account) =>
            Stack.of(this).formatArn({ service: 'iam', region: '', account, resource: 'root' }),
          ),
        },
        onlyRequests,
      );
    }
    if (s.requesterOrganizationId !== undefined) {
      busPolicy(
        'RequesterOrg',
        { AWS: '*' },
        {
          ...onlyRequests,
          StringEquals: { ...onlyRequests.StringEquals, 'aws:PrincipalOrgID': s.requesterOrganizationId },
        },
      );
    }
    return rule;
  }
}

/**
 * One schedule period, within what Scheduler and Lambda's asynchronous invocation accept
 * (1 minute to 6 hours): a run still waiting when the next is due is dropped.
 */
const checkerMaxEventAge = (period: Duration): Duration =>
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
