/**
 * The provisioner as one construct any CDK app can add to its own stack: request queue ->
 * provisioning function -> Atlas, a DynamoDB ledger, a DLQ and a rejected queue, the scheduled
 * status checker, status events on an EventBridge bus, requesters in other accounts, an optional
 * EventBridge front door, alarms and a dashboard. `AtlasBackupPrivateEndpointsStack` is a thin
 * wrapper that adds the outputs the operator CLIs read.
 */
import { Annotations, Duration, Stack, Validations } from 'aws-cdk-lib';
import type { ITable } from 'aws-cdk-lib/aws-dynamodb';
import { EventBus, type EventPattern, type IEventBus, type IRuleTarget, Rule } from 'aws-cdk-lib/aws-events';
import {
  AnyPrincipal,
  Effect,
  Grant,
  type IGrantable,
  type IRole,
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
import { REQUESTED_DETAIL_TYPE, requestEventPattern } from '#messages/front-door.ts';
import { ALL_PROJECTS, DEFAULT_REQUESTER, type RequesterEntry } from '#messages/requesters.ts';
import { SERVICE } from '#runtime/metric-names.ts';
import { AppFunction, type FunctionNetwork } from './constructs/function.ts';
import { LedgerTable } from './constructs/ledger.ts';
import { Monitoring } from './constructs/monitoring.ts';
import { ProfileSecrets } from './constructs/profile-secrets.ts';
import { RequestQueues } from './constructs/queues.ts';
import { frontDoorRule, Requesters } from './constructs/requesters.ts';

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
  /** Events of this requester's requests (its name). @default - any requester */
  readonly requester?: string;
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
  /** The configured requesters' queues and rules; absent without `requesters` (the default requester). */
  readonly requesters?: Requesters;
  readonly ledger: LedgerTable;
  readonly provisioner: AppFunction;
  readonly statusChecker: AppFunction;
  /**
   * The bus the status events go to: `eventBusName` referenced; with requesters, a bus of the
   * construct's own that only the two functions may put events on.
   */
  readonly eventBus: IEventBus;
  /** The front door rule of the default requester, when `requestEventBusName` is set without requesters. */
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

    const queueProps = {
      maxReceiveCount: maxReceiveCount(s),
      visibilityTimeout: Duration.seconds(visibilityTimeoutSeconds(s)),
    };
    this.queues = new RequestQueues(this, 'Queues', {
      ...queueProps,
      defaultRequester: s.requesters === undefined,
    });
    if (s.requesters !== undefined) {
      this.requesters = new Requesters(this, 'Requesters', { ...queueProps, requesters: s.requesters });
    }
    const { rejectedQueue, continuationQueue } = this.queues;
    const registry = this.registry();
    this.ledger = new LedgerTable(this, 'Ledger');
    const secrets = new ProfileSecrets(this, 'ProfileSecrets', {
      prefix: s.secretPrefix,
      profiles: s.allowedProfiles,
    });
    // Without requesters the bus is referenced (the account's default bus always exists and cannot
    // be created). With requesters the construct owns it: only the functions may put events there,
    // so a status event naming a requester came from them.
    this.eventBus =
      s.requesters === undefined
        ? EventBus.fromEventBusName(this, 'EventBus', s.eventBusName)
        : new EventBus(this, 'StatusEventBus', {
            ...(s.eventBusName !== 'default' && { eventBusName: s.eventBusName }),
            description: 'Status events of the Atlas backup private endpoints, one rule per requester bus',
          });
    const ledgerTableName = this.ledger.table.tableName;
    const inForce: Settings = { ...s, eventBusName: this.eventBus.eventBusName };

    const network: FunctionNetwork = { vpc, vpcSubnets, securityGroups };
    this.provisioner = new AppFunction(this, 'Provisioner', {
      function: 'provisioner',
      ...network,
      memorySize: provisionerMemorySize,
      description: 'Creates and deletes Atlas backup private endpoints from queued requests',
      serviceName: SERVICE.provisioner,
      timeout: Duration.seconds(s.provisionTimeoutSeconds),
      logRetention,
      environment: provisionEnvironment(inForce, {
        requesters: registry.map((r) => r.entry),
        continuationQueueUrl: continuationQueue.queueUrl,
        continuationQueueArn: continuationQueue.queueArn,
        rejectedQueueUrl: rejectedQueue.queueUrl,
        ledgerTableName,
      }),
    });
    const sources = [...registry.map((r) => r.queue), continuationQueue];
    // maxConcurrency is the provisioner's cap across all its queues (Atlas's rate limits are per
    // deployment), split between their event sources; each source needs at least 2.
    const perSource = Math.max(2, Math.floor(s.maxConcurrency / sources.length));
    if (perSource * sources.length > s.maxConcurrency) {
      Annotations.of(this).addWarningV2(
        'atlas-backup-private-endpoints:concurrency',
        `maxConcurrency (${s.maxConcurrency}) is below 2 per queue the provisioner consumes (${sources.length}): up to ${perSource * sources.length} invocations may run at once`,
      );
    }
    for (const queue of sources) {
      this.provisioner.addEventSource(
        new SqsEventSource(queue, {
          reportBatchItemFailures: true,
          batchSize: s.batchSize,
          // Lambda accepts batches above 10 only with a batching window.
          maxBatchingWindow: s.batchSize > 10 ? Duration.seconds(1) : undefined,
          // The cap on concurrent invocations keeps the deployment under Atlas's rate limits.
          maxConcurrency: perSource,
        }),
      );
      // Retries delay a record by changing its visibility; the event source grant already allows it
      // on this queue, stated again so the permission does not hinge on how the event source is wired.
      queue.grant(this.provisioner, 'sqs:ChangeMessageVisibility');
    }
    // It sends itself delayed continuation messages while it waits for Atlas, and parks requests
    // in their requester's DLQ. SendMessage alone: the functions address queues by URL, so never
    // call GetQueueUrl or GetQueueAttributes, which grantSendMessages would add.
    for (const queue of [continuationQueue, ...registry.map((r) => r.deadLetterQueue), rejectedQueue])
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
      environment: checkStatusEnvironment(inForce, {
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

    // The continuation queue's messages are trusted (their Requester attribute names the
    // requester): only the two functions may send there, whatever IAM elsewhere allows.
    const functionRoles = [this.provisioner.role, this.statusChecker.role] as IRole[];
    continuationQueue.addToResourcePolicy(
      onlyRolesMay('OnlyTheFunctionsSend', 'sqs:SendMessage', continuationQueue.queueArn, functionRoles),
    );
    if (this.eventBus instanceof EventBus) {
      // A status event names its requester, whose bus it is forwarded to: only the functions put them.
      this.eventBus.addToResourcePolicy(
        onlyRolesMay(
          'OnlyTheFunctionsPutEvents',
          'events:PutEvents',
          this.eventBus.eventBusArn,
          functionRoles,
        ),
      );
      this.requesters?.forwardStatusEvents(this.eventBus, (requester) => this.statusEvents({ requester }));
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
          "The front door rules' dead-letter queue: EventBridge parks the request events it could not deliver " +
          'to a request queue here, nothing consumes it, and an alarm fires on any visible message.',
      });
      if (this.requesters !== undefined) {
        this.requesters.addFrontDoor(
          s.requestEventBusName,
          s.requestEventSources,
          this.frontDoorDeadLetterQueue,
        );
      } else {
        // Only this account's request events are the default requester's.
        this.frontDoor = frontDoorRule(this, 'FrontDoor', {
          bus: EventBus.fromEventBusName(this, 'RequestEventBus', s.requestEventBusName),
          description: `Turns "${REQUESTED_DETAIL_TYPE}" events into requests`,
          pattern: { ...requestEventPattern(s.requestEventSources), account: [Stack.of(this).account] },
          queue: registry[0]?.queue as IQueue,
          deadLetterQueue: this.frontDoorDeadLetterQueue,
        });
      }
    }

    this.monitoring = new Monitoring(this, 'Monitoring', {
      queues: this.queues,
      requesters: registry.map(({ name, queue, deadLetterQueue }) => ({ name, queue, deadLetterQueue })),
      functions: { Provisioner: this.provisioner, StatusChecker: this.statusChecker },
      oldestRequestAge: Duration.seconds(s.oldestRequestAgeAlarmSeconds),
      frontDoorDeadLetterQueue: this.frontDoorDeadLetterQueue,
      alarmTopic: s.alarmTopicArn ? Topic.fromTopicArn(this, 'AlarmTopic', s.alarmTopicArn) : undefined,
    });
  }

  /**
   * The requesters with their queues: the configured ones, or the one default requester and the
   * construct's own request queue.
   */
  private registry(): { name: string; queue: Queue; deadLetterQueue: Queue; entry: RequesterEntry }[] {
    if (this.requesters !== undefined) {
      return this.requesters.all.map((r) => ({
        name: r.requester.name,
        queue: r.queue,
        deadLetterQueue: r.deadLetterQueue,
        entry: r.entry,
      }));
    }
    const { requestQueue, deadLetterQueue } = this.queues as Required<RequestQueues>;
    return [
      {
        name: DEFAULT_REQUESTER,
        queue: requestQueue,
        deadLetterQueue,
        entry: {
          name: DEFAULT_REQUESTER,
          queueArn: requestQueue.queueArn,
          queueUrl: requestQueue.queueUrl,
          dlqUrl: deadLetterQueue.queueUrl,
          projects: ALL_PROJECTS,
          profiles: this.settings.allowedProfiles,
          actions: ['create', 'delete'],
        },
      },
    ];
  }

  /** The queue requests are sent to, without requesters; with requesters, use requesterQueue(name). */
  get requestQueue(): IQueue {
    return this.defaultOnly(this.queues.requestQueue, 'requestQueue', 'requesterQueue');
  }

  /** Requests that need an operator, replayable into the request queue; with requesters, use requesterDeadLetterQueue(name). */
  get deadLetterQueue(): IQueue {
    return this.defaultOnly(this.queues.deadLetterQueue, 'deadLetterQueue', 'requesterDeadLetterQueue');
  }

  /** The named requester's request queue (with requesters configured). */
  requesterQueue(name: string): IQueue {
    return this.configured(name).queue;
  }

  /** The named requester's dead-letter queue, replayable into its own queue (with requesters configured). */
  requesterDeadLetterQueue(name: string): IQueue {
    return this.configured(name).deadLetterQueue;
  }

  private configured(name: string) {
    if (this.requesters === undefined) {
      throw new Error(
        `no requester "${name}": this construct has no requesters configured; its request queue is requestQueue`,
      );
    }
    return this.requesters.get(name);
  }

  private defaultOnly<T>(queue: T | undefined, getter: string, instead: string): T {
    if (queue === undefined) {
      throw new Error(
        `${getter}: this construct has requesters, each with its own queues: use ${instead}(name) (${this.requesters?.all.map((r) => r.requester.name).join(', ')})`,
      );
    }
    return queue;
  }

  /** Requests rejected as never retryable, with their reason. */
  get rejectedQueue(): IQueue {
    return this.queues.rejectedQueue;
  }

  /** The ledger: one item per endpoint key. */
  get ledgerTable(): ITable {
    return this.ledger.table;
  }

  /**
   * Lets a principal send requests: sqs:SendMessage (and GetQueueAttributes, GetQueueUrl) on the
   * request queue, or with requesters on the named requester's queue. Its identity policy only:
   * a principal of another account needs to be one of the requester's senders as well.
   */
  grantSendRequests(grantee: IGrantable, requester?: string): Grant {
    const queue = requester === undefined ? this.requestQueue : this.requesterQueue(requester);
    return queue.grantSendMessages(grantee);
  }

  /** The pattern of this deployment's status events, narrowed by `filter`, for a rule of your own. */
  statusEvents(filter: StatusEventFilter = {}): EventPattern {
    const detail = {
      ...(filter.requestIds && { requestIds: [...filter.requestIds] }),
      ...(filter.outcomes && { outcome: [...filter.outcomes] }),
      ...(filter.requester !== undefined && { requester: [filter.requester] }),
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
}

/**
 * One schedule period, within what Scheduler and Lambda's asynchronous invocation accept
 * (1 minute to 6 hours): a run still waiting when the next is due is dropped.
 */
const checkerMaxEventAge = (period: Duration): Duration =>
  Duration.seconds(Math.min(6 * 3600, Math.max(60, period.toSeconds())));

/** Denies `action` on `resource` to every principal but the roles: what IAM elsewhere allows cannot add one. */
function onlyRolesMay(
  sid: string,
  action: string,
  resource: string,
  roles: readonly IRole[],
): PolicyStatement {
  return new PolicyStatement({
    sid,
    effect: Effect.DENY,
    principals: [new AnyPrincipal()],
    actions: [action],
    resources: [resource],
    conditions: { ArnNotEquals: { 'aws:PrincipalArn': roles.map((role) => role.roleArn) } },
  });
}

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
