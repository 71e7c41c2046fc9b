/**
 * The status checker Lambda, run by the EventBridge schedule: follows tracked endpoints in
 * Atlas and announces changes (see README, "Status events"). Configuration and clients are
 * built once per container and reused.
 */
import { Logger } from '@aws-lambda-powertools/logger';
import { injectLambdaContext } from '@aws-lambda-powertools/logger/middleware';
import { Metrics } from '@aws-lambda-powertools/metrics';
import { logMetrics } from '@aws-lambda-powertools/metrics/middleware';
import middy from '@middy/core';
import type { Context, ScheduledEvent } from 'aws-lambda';
import { atlasProfilesFromEnvironment } from '#atlas/profiles.ts';
import { StatusEvents } from '#events/publisher.ts';
import { Ledger } from '#ledger/ledger.ts';
import { ContinuationQueue } from '#messages/queues.ts';
import { readEnvironment } from '#runtime/environment.ts';
import { METRICS_NAMESPACE, SERVICE } from '#runtime/metric-names.ts';
import { atlasCallMetrics } from '#runtime/telemetry.ts';
import { type CheckSummary, StatusChecker } from './status-checker.ts';

const env = readEnvironment('checkStatus');

const logger = new Logger({ serviceName: SERVICE.statusChecker });
const metrics = new Metrics({ namespace: METRICS_NAMESPACE, serviceName: SERVICE.statusChecker });

const checker = new StatusChecker({
  ...env,
  ledger: new Ledger({ tableName: env.ledgerTableName }),
  atlas: atlasProfilesFromEnvironment(env, atlasCallMetrics(metrics)),
  events: new StatusEvents({ busName: env.eventBusName, source: env.eventSource }),
  requests: new ContinuationQueue({ queueUrl: env.continuationQueueUrl }),
  logger,
  metrics,
  deadlines: {
    pendingAcceptanceMinutes: env.pendingAcceptanceDeadlineMinutes,
    inProgressMinutes: env.inProgressDeadlineMinutes,
  },
});

export const handler = middy(
  (_event: ScheduledEvent, context: Context): Promise<CheckSummary> =>
    checker.run({ remainingMs: () => context.getRemainingTimeInMillis() }),
)
  .use(injectLambdaContext(logger))
  .use(logMetrics(metrics, { captureColdStartMetric: true }));
