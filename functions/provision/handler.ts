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
import { atlasProfilesFromEnvironment } from '#atlas/profiles.ts';
import { StatusEvents } from '#events/publisher.ts';
import { Ledger } from '#ledger/ledger.ts';
import { Queues } from '#messages/queues.ts';
import { readEnvironment } from '#runtime/environment.ts';
import { METRICS_NAMESPACE, SERVICE } from '#runtime/metric-names.ts';
import { atlasCallMetrics } from '#runtime/telemetry.ts';
import { Provisioner, tuningFrom } from './provisioner.ts';

const env = readEnvironment('provision');

const logger = new Logger({ serviceName: SERVICE.provisioner });
const metrics = new Metrics({ namespace: METRICS_NAMESPACE, serviceName: SERVICE.provisioner });

const provisioner = new Provisioner({
  ...tuningFrom(env),
  ledger: new Ledger({ tableName: env.ledgerTableName }),
  atlas: atlasProfilesFromEnvironment(env, atlasCallMetrics(metrics)),
  queues: new Queues(env),
  events: new StatusEvents({ busName: env.eventBusName, source: env.eventSource }),
  logger,
  metrics,
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
