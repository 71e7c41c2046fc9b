/**
 * The provisioning Lambda: SQS request batches in, one outcome per record (see README,
 * "Outcomes"). Configuration and clients are built once per container and reused.
 */
import { BatchProcessor, EventType, processPartialResponse } from '@aws-lambda-powertools/batch';
import { Logger } from '@aws-lambda-powertools/logger';
import { injectLambdaContext } from '@aws-lambda-powertools/logger/middleware';
import { Metrics } from '@aws-lambda-powertools/metrics';
import { logMetrics } from '@aws-lambda-powertools/metrics/middleware';
import middy from '@middy/core';
import type { Context, SQSBatchResponse, SQSEvent } from 'aws-lambda';
import { atlasProfilesFromConfig } from '#lib/atlas-profiles.ts';
import { loadConfig, ProvisionConfigSchema } from '#lib/config.ts';
import { StatusEvents } from '#lib/events.ts';
import { Ledger } from '#lib/ledger.ts';
import { METRICS_NAMESPACE, SERVICE } from '#lib/metric-names.ts';
import { Queues } from '#lib/queues.ts';
import { atlasCallMetrics } from '#lib/telemetry.ts';
import { Provisioner } from './provisioner.ts';

const config = loadConfig(ProvisionConfigSchema);

const logger = new Logger({ serviceName: SERVICE.provisioner });
const metrics = new Metrics({ namespace: METRICS_NAMESPACE, serviceName: SERVICE.provisioner });

const provisioner = new Provisioner({
  ledger: new Ledger({ tableName: config.LEDGER_TABLE_NAME }),
  atlas: atlasProfilesFromConfig(config, atlasCallMetrics(metrics)),
  queues: new Queues({
    requestQueueUrl: config.REQUEST_QUEUE_URL,
    dlqUrl: config.DLQ_URL,
    rejectedQueueUrl: config.REJECTED_QUEUE_URL,
  }),
  events: new StatusEvents({ busName: config.EVENT_BUS_NAME, source: config.EVENT_SOURCE }),
  logger,
  metrics,
  allowedProfiles: config.ALLOWED_PROFILES,
  maxAttempts: config.MAX_ATTEMPTS,
  leaseSeconds: config.LEASE_SECONDS,
  recordConcurrency: config.RECORD_CONCURRENCY,
  backoff: { baseSeconds: config.BACKOFF_BASE_SECONDS, capSeconds: config.BACKOFF_CAP_SECONDS },
  createSettleSeconds: config.CREATE_SETTLE_SECONDS,
  maxEndpointFailures: config.MAX_ENDPOINT_FAILURES,
  atlasTimeoutMs: config.ATLAS_TIMEOUT_MS,
  followUp: { firstSeconds: config.FOLLOW_UP_FIRST_SECONDS, maxSeconds: config.FOLLOW_UP_MAX_SECONDS },
});

export const handler = middy(
  (event: SQSEvent, context: Context): Promise<SQSBatchResponse> =>
    processPartialResponse(event, provisioner.handleRecord, new BatchProcessor(EventType.SQS), {
      context,
      // Every failed record already had its retry scheduled: report them one by one, never as
      // a failed invocation (which would also slow the event source's polling).
      throwOnFullBatchFailure: false,
    }),
)
  .use(injectLambdaContext(logger))
  .use(logMetrics(metrics, { captureColdStartMetric: true }));
