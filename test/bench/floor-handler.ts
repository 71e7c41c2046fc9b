/**
 * The floor the bench measures the functions against: a handler that only creates the two SDK
 * clients every function here needs (SQS, Secrets Manager), bundled the same way (SDK included).
 */
import { SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { SQSClient } from '@aws-sdk/client-sqs';

const sqs = new SQSClient({});
const secrets = new SecretsManagerClient({});

export const handler = async (): Promise<{ clients: string[] }> => ({
  clients: [sqs.config.serviceId, secrets.config.serviceId],
});
