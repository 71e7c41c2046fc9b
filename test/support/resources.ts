/**
 * The resources the stack points the functions at, for tests that write a function's environment
 * without a stack: the default requester on the queue the events/ fixtures' records come from,
 * the continuation queue, the rejected queue and the ledger.
 */
import type { FunctionResources, ProvisionResources } from '#infra/settings.ts';
import { ALL_PROJECTS, DEFAULT_REQUESTER, type RequesterEntry } from '#messages/requesters.ts';

export const QUEUE_BASE = 'https://sqs.us-east-1.amazonaws.com/123456789012';
/** The queue of the records in events/*.json. */
export const FIXTURE_QUEUE_ARN = 'arn:aws:sqs:us-east-1:123456789012:atlas-backup-private-endpoints-requests';

/** The requester of a deployment with none configured, granted every profile in `profiles`. */
export function defaultRequester(profiles: string[] = ['default'], base = QUEUE_BASE): RequesterEntry {
  return {
    name: DEFAULT_REQUESTER,
    queueArn: FIXTURE_QUEUE_ARN,
    queueUrl: `${base}/atlas-backup-private-endpoints-requests`,
    dlqUrl: `${base}/requests-dlq`,
    projects: ALL_PROJECTS,
    profiles,
    actions: ['create', 'delete'],
  };
}

export function checkResources(base = QUEUE_BASE): FunctionResources {
  return { ledgerTableName: 'ledger', continuationQueueUrl: `${base}/continuations` };
}

export function provisionResources(base = QUEUE_BASE, profiles?: string[]): ProvisionResources {
  return {
    ...checkResources(base),
    continuationQueueArn: 'arn:aws:sqs:us-east-1:123456789012:continuations',
    rejectedQueueUrl: `${base}/requests-rejected`,
    requesters: [defaultRequester(profiles, base)],
  };
}
