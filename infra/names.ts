/**
 * The deployed stack's names that outlive a synth: its default name and its outputs, which the
 * operator commands (infra/ops/) read back from CloudFormation. Dependency-free, so any tool can
 * import it without loading CDK or an SDK.
 */

/** The stack's name unless the `stackName` context says otherwise. */
export const DEFAULT_STACK_NAME = 'AtlasBackupPrivateEndpoints';

/** Each stack output, keyed by the resource name the operator commands use. */
export const STACK_OUTPUTS = {
  requestQueueUrl: 'RequestQueueUrl',
  requestQueueArn: 'RequestQueueArn',
  dlqUrl: 'DeadLetterQueueUrl',
  dlqArn: 'DeadLetterQueueArn',
  rejectedQueueUrl: 'RejectedQueueUrl',
  tableName: 'LedgerTableName',
  eventBusName: 'EventBusName',
  eventSource: 'EventSource',
} as const;

export type StackResource = keyof typeof STACK_OUTPUTS;
