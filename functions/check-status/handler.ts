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
import { atlasProfilesFromConfig } from '#lib/atlas-profiles.ts';
import { CheckStatusConfigSchema, loadConfig } from '#lib/config.ts';
import { StatusEvents } from '#lib/events.ts';
import { Ledger } from '#lib/ledger.ts';
import { METRICS_NAMESPACE, SERVICE } from '#lib/metric-names.ts';
import { RequestQueue } from '#lib/queues.ts';
import { atlasCallMetrics } from '#lib/telemetry.ts';
import { type CheckSummary, StatusChecker } from './status-checker.ts';

const config = loadConfig(CheckStatusConfigSchema);

const logger = new Logger({ serviceName: SERVICE.statusChecker });
const metrics = new Metrics({ namespace: METRICS_NAMESPACE, serviceName: SERVICE.statusChecker });

const checker = new StatusChecker({
  ledger: new Ledger({ tableName: config.LEDGER_TABLE_NAME }),
  atlas: atlasProfilesFromConfig(config, atlasCallMetrics(metrics)),
  events: new StatusEvents({ busName: config.EVENT_BUS_NAME, source: config.EVENT_SOURCE }),
  requests: new RequestQueue({ queueUrl: config.REQUEST_QUEUE_URL }),
  logger,
  metrics,
  deadlines: {
    pendingAcceptanceMinutes: config.PENDING_ACCEPTANCE_DEADLINE_MINUTES,
    inProgressMinutes: config.IN_PROGRESS_DEADLINE_MINUTES,
  },
  projectConcurrency: config.PROJECT_CONCURRENCY,
  safetyMarginMs: config.SAFETY_MARGIN_MS,
});

export const handler = middy(
  (_event: ScheduledEvent, context: Context): Promise<CheckSummary> =>
    checker.run({ remainingMs: () => context.getRemainingTimeInMillis() }),
)
  .use(injectLambdaContext(logger))
  .use(logMetrics(metrics, { captureColdStartMetric: true }));
