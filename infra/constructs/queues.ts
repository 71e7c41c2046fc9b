/**
 * The three queues of a request's life: the request queue the provisioner consumes, the
 * dead-letter queue (operator attention, replayable with a message move task) and the rejected
 * queue (never retryable). All are encrypted with SSE-SQS and refuse requests without TLS.
 */
import { ArnFormat, Duration, Names, Stack, Validations } from 'aws-cdk-lib';
import { Queue, QueueEncryption, type QueueProps, RedrivePermission } from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';
import { PARKED_ATTRIBUTES_MAX_BYTES } from '#messages/attributes.ts';
import { MAX_BODY_BYTES } from '#messages/request.ts';

export interface RequestQueuesProps {
  /** Receives after which SQS itself moves a request to the DLQ: the net for crashes and timeouts. */
  readonly maxReceiveCount: number;
  /** Visibility timeout of the request queue: at least six times the consumer's timeout. */
  readonly visibilityTimeout: Duration;
}

/**
 * Largest request message: four times the contract (MAX_BODY_BYTES), room for a sender's own
 * message attributes, and a body somewhat over the contract still arrives, to be rejected with its
 * reason rather than refused at the sender.
 */
export const REQUEST_MAX_MESSAGE_BYTES = 4 * MAX_BODY_BYTES;
/**
 * Largest parked message (the SQS maximum): the original body plus the reason attributes the
 * provisioner adds, which can be up to PARKED_ATTRIBUTES_MAX_BYTES.
 */
export const PARKING_MAX_MESSAGE_BYTES = 1024 * 1024;
if (PARKING_MAX_MESSAGE_BYTES - REQUEST_MAX_MESSAGE_BYTES < PARKED_ATTRIBUTES_MAX_BYTES) {
  throw new Error('a parked request and its reason would not fit the parking queues');
}

// SSE-SQS rather than a customer key: senders and consumers then need no KMS permissions.
const SECURE: QueueProps = { encryption: QueueEncryption.SQS_MANAGED, enforceSSL: true };
const PARKED = Duration.days(14);

export class RequestQueues extends Construct {
  readonly requestQueue: Queue;
  readonly deadLetterQueue: Queue;
  readonly rejectedQueue: Queue;
  /**
   * The provisioner's private queue: waits, follow-ups, deferrals and the status checker's
   * hand-backs. Only the two functions send to it, so what its messages carry is trusted.
   */
  readonly continuationQueue: Queue;
  /** The continuation queue's own redrive net, for a continuation that crashed the function again and again. */
  readonly continuationDeadLetterQueue: Queue;

  constructor(scope: Construct, id: string, props: RequestQueuesProps) {
    super(scope, id);
    // The DLQ names its only redrive source, and the request queue names the DLQ: a physical name,
    // unique per stack and construct path, breaks that reference cycle.
    const requestQueueName = `${Names.uniqueResourceName(this, { maxLength: 71, separator: '-', allowedSpecialCharacters: '-_' })}-requests`;
    const requestQueueArn = Stack.of(this).formatArn({
      service: 'sqs',
      resource: requestQueueName,
      arnFormat: ArnFormat.NO_RESOURCE_NAME,
    });
    this.deadLetterQueue = new Queue(this, 'DeadLetterQueue', {
      ...SECURE,
      retentionPeriod: PARKED,
      maxMessageSizeBytes: PARKING_MAX_MESSAGE_BYTES,
      // Only the request queue may use it as its DLQ, which also makes it a message move task source.
      redriveAllowPolicy: {
        redrivePermission: RedrivePermission.BY_QUEUE,
        sourceQueues: [
          Queue.fromQueueAttributes(this, 'RedriveSource', {
            queueArn: requestQueueArn,
            queueName: requestQueueName,
          }),
        ],
      },
    });
    this.requestQueue = new Queue(this, 'RequestQueue', {
      ...SECURE,
      queueName: requestQueueName,
      visibilityTimeout: props.visibilityTimeout,
      maxMessageSizeBytes: REQUEST_MAX_MESSAGE_BYTES,
      // Shorter than the DLQ's 14 days: a redrive keeps the original enqueue time, so a request
      // redriven on its last day here still has 10 days in the DLQ.
      retentionPeriod: Duration.days(4),
      deadLetterQueue: { queue: this.deadLetterQueue, maxReceiveCount: props.maxReceiveCount },
    });
    this.continuationDeadLetterQueue = new Queue(this, 'ContinuationDeadLetterQueue', {
      ...SECURE,
      retentionPeriod: PARKED,
      maxMessageSizeBytes: PARKING_MAX_MESSAGE_BYTES,
    });
    this.continuationQueue = new Queue(this, 'ContinuationQueue', {
      ...SECURE,
      visibilityTimeout: props.visibilityTimeout,
      maxMessageSizeBytes: PARKING_MAX_MESSAGE_BYTES,
      retentionPeriod: Duration.days(4),
      deadLetterQueue: { queue: this.continuationDeadLetterQueue, maxReceiveCount: props.maxReceiveCount },
    });
    this.rejectedQueue = new Queue(this, 'RejectedQueue', {
      ...SECURE,
      retentionPeriod: PARKED,
      maxMessageSizeBytes: PARKING_MAX_MESSAGE_BYTES,
    });
    Validations.of(this.rejectedQueue).acknowledge({
      id: 'AwsSolutions-SQS3',
      reason:
        'The rejected queue is a terminal parking queue like a DLQ: the provisioner sends requests that ' +
        'can never succeed there, nothing consumes it, and an alarm fires on any visible message.',
    });
  }
}
