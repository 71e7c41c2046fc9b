/**
 * The floor plus Powertools and middy, set up as the handlers set them up: Logger and Metrics
 * with their middlewares, the batch processor, the Secrets Manager provider.
 */
import { BatchProcessor, EventType, processPartialResponse } from '@aws-lambda-powertools/batch';
import { Logger } from '@aws-lambda-powertools/logger';
import { injectLambdaContext } from '@aws-lambda-powertools/logger/middleware';
import { Metrics } from '@aws-lambda-powertools/metrics';
import { logMetrics } from '@aws-lambda-powertools/metrics/middleware';
import { SecretsProvider } from '@aws-lambda-powertools/parameters/secrets';
import { SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import middy from '@middy/core';
import type { Context, SQSEvent } from 'aws-lambda';
import { handler as floor } from '../floor-handler.ts';

const logger = new Logger({ serviceName: 'part' });
const metrics = new Metrics({ namespace: 'Part', serviceName: 'part' });
const secrets = new SecretsProvider({ awsSdkV3Client: new SecretsManagerClient({}) });

export const handler = middy((event: SQSEvent, context: Context) =>
  processPartialResponse(event, async () => [await floor(), secrets], new BatchProcessor(EventType.SQS), {
    context,
  }),
)
  .use(injectLambdaContext(logger))
  .use(logMetrics(metrics));
