/**
 * The three queues of a request's life: the request queue the provisioner consumes, the
 * dead-letter queue (operator attention, replayable with a message move task) and the rejected
 * queue (never retryable). All are encrypted with SSE-SQS and refuse requests without TLS.
 */
import { Duration, Validations } from 'aws-cdk-lib';
import { Queue, QueueEncryption, type QueueProps, RedrivePermission } from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';

export interface RequestQueuesProps {
  /** Receives after which SQS itself moves a request to the DLQ: the net for crashes and timeouts. */
  readonly maxReceiveCount: number;
  /** Visibility timeout of the request queue: at least six times the consumer's timeout. */
  readonly visibilityTimeout: Duration;
}

// SSE-SQS rather than a customer key: senders and consumers then need no KMS permissions.
const SECURE: QueueProps = { encryption: QueueEncryption.SQS_MANAGED, enforceSSL: true };
const PARKED = Duration.days(14);

export class RequestQueues extends Construct {
  readonly requestQueue: Queue;
  readonly deadLetterQueue: Queue;
  readonly rejectedQueue: Queue;

  constructor(scope: Construct, id: string, props: RequestQueuesProps) {
    super(scope, id);
    this.deadLetterQueue = new Queue(this, 'DeadLetterQueue', {
      ...SECURE,
      retentionPeriod: PARKED,
      // A message move task back to the request queue needs this queue to be a DLQ source. Naming
      // the request queue (byQueue) would make the two queues reference each other.
      redriveAllowPolicy: { redrivePermission: RedrivePermission.ALLOW_ALL },
    });
    this.requestQueue = new Queue(this, 'RequestQueue', {
      ...SECURE,
      visibilityTimeout: props.visibilityTimeout,
      // Shorter than the DLQ's 14 days: a redrive keeps the original enqueue time, so a request
      // redriven on its last day here still has 10 days in the DLQ.
      retentionPeriod: Duration.days(4),
      deadLetterQueue: { queue: this.deadLetterQueue, maxReceiveCount: props.maxReceiveCount },
    });
    this.rejectedQueue = new Queue(this, 'RejectedQueue', { ...SECURE, retentionPeriod: PARKED });
    Validations.of(this.rejectedQueue).acknowledge({
      id: 'AwsSolutions-SQS3',
      reason:
        'The rejected queue is a terminal parking queue like a DLQ: the provisioner sends requests that ' +
        'can never succeed there, nothing consumes it, and an alarm fires on any visible message.',
    });
  }
}
