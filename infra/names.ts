/**
 * The deployed stack's names that outlive a synth: its default name and its outputs, which the
 * operator commands (infra/ops/) read back from CloudFormation. Dependency-free, so any tool can
 * import it without loading CDK or an SDK.
 */

/** The stack's name unless the `stackName` context says otherwise. */
export const DEFAULT_STACK_NAME = 'AtlasBackupPrivateEndpoints';

/**
 * Each stack output, keyed by the resource name the operator commands use. The request queue's
 * and DLQ's are the default requester's, output only without requesters; with requesters,
 * REQUESTERS_OUTPUT holds each one's queues instead.
 */
export const STACK_OUTPUTS = {
  requestQueueUrl: 'RequestQueueUrl',
  requestQueueArn: 'RequestQueueArn',
  dlqUrl: 'DeadLetterQueueUrl',
  dlqArn: 'DeadLetterQueueArn',
  rejectedQueueUrl: 'RejectedQueueUrl',
  tableName: 'LedgerTableName',
  eventBusName: 'EventBusName',
  eventSource: 'EventSource',
  continuationDlqUrl: 'ContinuationDeadLetterQueueUrl',
} as const;

export type StackResource = keyof typeof STACK_OUTPUTS;

/** The stack output of a deployment with requesters: JSON, each requester's name -> RequesterOutput. */
export const REQUESTERS_OUTPUT = 'Requesters';

/** A requester's queues, as REQUESTERS_OUTPUT gives them. */
export interface RequesterOutput {
  queueUrl: string;
  queueArn: string;
  dlqUrl: string;
  dlqArn: string;
}
