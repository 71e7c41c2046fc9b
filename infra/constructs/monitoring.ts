/**
 * Alarms on what needs a person (a request parked in a requester's DLQ or the rejected queue, a
 * continuation in its DLQ, requests
 * waiting too long, failing or throttled functions, status events EventBridge refused, duplicate
 * endpoints in Atlas), notifying an optional SNS topic, and a
 * dashboard of the functions' own metrics (functions/lib/runtime/telemetry.ts).
 */
import { Duration } from 'aws-cdk-lib';
import {
  Alarm,
  AlarmStatusWidget,
  ComparisonOperator,
  Dashboard,
  GraphWidget,
  type IMetric,
  MathExpression,
  Metric,
  Stats,
  TreatMissingData,
} from 'aws-cdk-lib/aws-cloudwatch';
import { SnsAction } from 'aws-cdk-lib/aws-cloudwatch-actions';
import type { IFunction } from 'aws-cdk-lib/aws-lambda';
import type { ITopic } from 'aws-cdk-lib/aws-sns';
import type { IQueue } from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';
import { DEFAULT_REQUESTER } from '#messages/requesters.ts';
import { METRIC, METRICS_NAMESPACE, SERVICE } from '#runtime/metric-names.ts';
import type { RequestQueues } from './queues.ts';

/** A requester's queues, by its name. */
export interface RequesterQueues {
  readonly name: string;
  readonly queue: IQueue;
  readonly deadLetterQueue: IQueue;
}

export interface MonitoringProps {
  readonly queues: RequestQueues;
  /**
   * Every requester's queues: the configured ones, or the default requester's (the construct's
   * own request queue and DLQ, whose alarms keep their ids).
   */
  readonly requesters: readonly RequesterQueues[];
  /** The functions whose errors and throttles raise an alarm, by the name used in alarm texts. */
  readonly functions: Readonly<Record<string, IFunction>>;
  /** Alarm when the oldest request has waited longer than this. */
  readonly oldestRequestAge: Duration;
  /** Notified when an alarm fires and when it clears. @default - no notification */
  readonly alarmTopic?: ITopic;
  /** The front door rule's dead-letter queue. @default - no front door */
  readonly frontDoorDeadLetterQueue?: IQueue;
}

const PERIOD = Duration.minutes(5);

const appMetric = (service: string, metricName: string, statistic: string = Stats.SUM) =>
  new Metric({
    namespace: METRICS_NAMESPACE,
    metricName,
    dimensionsMap: { service },
    statistic,
    period: PERIOD,
  });

const SERVICES = [SERVICE.provisioner, SERVICE.statusChecker];

/**
 * A metric both functions emit, summed over them: Powertools gives each data point the emitting
 * function's `service` dimension, and an alarm must name the dimensions it matches.
 */
const fromEitherFunction = (metricName: string) =>
  new MathExpression({
    expression: SERVICES.map((_, i) => `FILL(m${i}, 0)`).join(' + '),
    usingMetrics: Object.fromEntries(SERVICES.map((service, i) => [`m${i}`, appMetric(service, metricName)])),
    label: metricName,
    period: PERIOD,
  });

export class Monitoring extends Construct {
  readonly alarms: Alarm[] = [];
  readonly dashboard: Dashboard;

  constructor(scope: Construct, id: string, props: MonitoringProps) {
    super(scope, id);
    const { rejectedQueue, continuationDeadLetterQueue } = props.queues;
    // The default requester's alarms keep the ids they had before requesters; a configured
    // requester's carry its name.
    const named = (alarmId: string, requester: string) =>
      requester === DEFAULT_REQUESTER ? alarmId : `Requester-${requester}-${alarmId}`;
    const alarm = (
      alarmId: string,
      description: string,
      metric: IMetric,
      threshold = 0,
      comparisonOperator = ComparisonOperator.GREATER_THAN_THRESHOLD,
    ) => {
      const created = new Alarm(this, alarmId, {
        alarmDescription: description,
        metric,
        threshold,
        comparisonOperator,
        evaluationPeriods: 1,
        treatMissingData: TreatMissingData.NOT_BREACHING,
      });
      if (props.alarmTopic) {
        created.addAlarmAction(new SnsAction(props.alarmTopic));
        created.addOkAction(new SnsAction(props.alarmTopic));
      }
      this.alarms.push(created);
    };
    const visible = { statistic: Stats.MAXIMUM, period: Duration.minutes(1) };

    for (const { name, deadLetterQueue } of props.requesters) {
      const whose = name === DEFAULT_REQUESTER ? '' : ` of requester ${name}`;
      const flag = name === DEFAULT_REQUESTER ? '' : ` -- --requester ${name}`;
      alarm(
        named('DeadLetterQueueAlarm', name),
        `Requests wait in the dead-letter queue${whose}: read their reason, fix it, then replay them (npm run replay${flag}).`,
        deadLetterQueue.metricApproximateNumberOfMessagesVisible(visible),
      );
    }
    alarm(
      'ContinuationDeadLetterQueueAlarm',
      "Continuations (the provisioner's own waits, follow-ups and hand-backs) crashed the provisioner again and again: read them and the provisioner's logs, fix the cause; they are not replayed (the status checker hands tracked keys back), a request the requester still wants is sent again.",
      continuationDeadLetterQueue.metricApproximateNumberOfMessagesVisible(visible),
    );
    alarm(
      'RejectedQueueAlarm',
      'Requests were rejected as never retryable (invalid or not allowed): tell the requester.',
      rejectedQueue.metricApproximateNumberOfMessagesVisible(visible),
    );
    if (props.frontDoorDeadLetterQueue) {
      alarm(
        'FrontDoorDeadLetterQueueAlarm',
        'The EventBridge front door could not deliver request events to the request queue: read ERROR_CODE on the messages, fix it, then put their detail again.',
        props.frontDoorDeadLetterQueue.metricApproximateNumberOfMessagesVisible(visible),
      );
    }
    for (const { name, queue } of props.requesters) {
      const whose = name === DEFAULT_REQUESTER ? '' : ` of requester ${name}`;
      alarm(
        named('OldestRequestAlarm', name),
        `A request${whose} has waited more than ${props.oldestRequestAge.toSeconds()} s: the provisioner is failing, throttled or backing off.`,
        queue.metricApproximateAgeOfOldestMessage({
          statistic: Stats.MAXIMUM,
          period: Duration.minutes(1),
        }),
        props.oldestRequestAge.toSeconds(),
      );
    }
    alarm(
      'StatusCheckFailedAlarm',
      'The status checker could not check a project (Atlas answered 401/403, or the secret is missing or malformed): fix the credentials. A project Atlas says does not exist (404 GROUP_NOT_FOUND) alarms until a run 10 minutes later confirms it and retires its keys (MISSING), or `npm run retire` does.',
      appMetric(SERVICE.statusChecker, METRIC.checkFailed),
    );
    alarm(
      'EventPublishFailedAlarm',
      'EventBridge did not accept status events (they wait in the ledger and are sent again): check the bus, its policy and PutEvents throttling.',
      fromEitherFunction(METRIC.eventPublishFailed),
      1,
      ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
    );
    alarm(
      'AnswersLostAlarm',
      'An answer of a parked request was lost: EventBridge refused it and the ledger could not keep it. The request is in its DLQ or the rejected queue with its reason; tell its requester from there.',
      appMetric(SERVICE.provisioner, METRIC.answersLost),
    );
    alarm(
      'DuplicateEndpointsAlarm',
      'Atlas lists more than one endpoint for one key that this provisioner did not create: find who else creates them and remove the extra one.',
      fromEitherFunction(METRIC.duplicateEndpoints),
      1,
      ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
    );
    for (const [name, fn] of Object.entries(props.functions)) {
      alarm(`${name}ErrorsAlarm`, `The ${name} function failed.`, fn.metricErrors({ period: PERIOD }));
      alarm(
        `${name}ThrottlesAlarm`,
        `The ${name} function was throttled.`,
        fn.metricThrottles({ period: PERIOD }),
      );
    }

    const outcomes = [
      METRIC.provisioned,
      METRIC.adopted,
      METRIC.deleted,
      METRIC.retried,
      // Waits spend no attempt; a climb is an outage of our own services being waited out.
      METRIC.waiting,
      METRIC.deadLettered,
      METRIC.rejected,
    ];
    this.dashboard = new Dashboard(this, 'Dashboard', {
      defaultInterval: Duration.days(1),
      widgets: [
        [
          new GraphWidget({
            title: 'Requests',
            left: [appMetric(SERVICE.provisioner, METRIC.requests)],
            right: [
              ...props.requesters.flatMap(({ name, queue, deadLetterQueue }) => {
                const of = name === DEFAULT_REQUESTER ? '' : ` ${name}`;
                return [
                  queue.metricApproximateNumberOfMessagesVisible({ label: `waiting${of}`, period: PERIOD }),
                  deadLetterQueue.metricApproximateNumberOfMessagesVisible({
                    label: `in DLQ${of}`,
                    period: PERIOD,
                  }),
                ];
              }),
              rejectedQueue.metricApproximateNumberOfMessagesVisible({ label: 'rejected', period: PERIOD }),
              continuationDeadLetterQueue.metricApproximateNumberOfMessagesVisible({
                label: 'continuations in DLQ',
                period: PERIOD,
              }),
            ],
          }),
          new GraphWidget({
            title: 'Outcomes',
            stacked: true,
            left: outcomes.map((name) => appMetric(SERVICE.provisioner, name)),
          }),
        ],
        [
          new GraphWidget({
            title: 'Atlas latency (ms)',
            left: SERVICES.flatMap((service) =>
              [Stats.p(50), Stats.p(99)].map((stat) =>
                appMetric(service, METRIC.atlasLatency, stat).with({ label: `${service} ${stat}` }),
              ),
            ),
          }),
          new GraphWidget({
            title: 'Atlas 429 answers',
            left: SERVICES.map((service) =>
              appMetric(service, METRIC.atlasRateLimited).with({ label: service }),
            ),
          }),
        ],
        [
          new GraphWidget({
            title: 'Status checks and follow-ups',
            left: [
              ...[METRIC.checkedEndpoints, METRIC.statusChanged, METRIC.stuck, METRIC.missing].map((name) =>
                appMetric(SERVICE.statusChecker, name),
              ),
              // Follow-ups (one GET each) and those given up to the sweep.
              ...[METRIC.followUps, METRIC.followUpsDropped].map((name) =>
                appMetric(SERVICE.provisioner, name),
              ),
            ],
          }),
          new GraphWidget({
            title: 'Status events not accepted, duplicate endpoints',
            left: SERVICES.flatMap((service) =>
              [METRIC.eventPublishFailed, METRIC.duplicateEndpoints].map((name) =>
                appMetric(service, name).with({ label: `${service} ${name}` }),
              ),
            ),
          }),
        ],
        [new AlarmStatusWidget({ title: 'Alarms', alarms: this.alarms, width: 24 })],
      ],
    });
  }
}
