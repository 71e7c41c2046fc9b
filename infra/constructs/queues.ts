/**
 * The queues of a request's life: a requester's request queue the provisioner consumes and its
 * dead-letter queue (operator attention, replayable with a message move task into that same
 * queue), the rejected queue (never retryable), and the provisioner's private continuation queue
 * with its own dead-letter queue. All are encrypted with SSE-SQS and refuse requests without TLS.
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

/** A requester's request queue and the dead-letter queue its requests are parked in. */
export interface RequesterQueuePair {
  readonly queue: Queue;
  readonly deadLetterQueue: Queue;
  /**
   * The queue's ARN and URL and the DLQ's URL as the provisioner's environment gives them: built
   * from the physical names when both queues have one (`named`), so their length is known at
   * synth; else the queues' own attributes.
   */
  readonly queueArn: string;
  readonly queueUrl: string;
  readonly dlqUrl: string;
}

export interface RequesterQueuePairProps extends RequestQueuesProps {
  /** Construct ids of the request queue and its dead-letter queue in `scope`. */
  readonly ids: { readonly queue: string; readonly deadLetterQueue: string };
  /**
   * Give the DLQ a physical name too, and both names of at most 49 characters: the registry in
   * the provisioner's environment (4 KB in all) then holds their known-length ARN and URLs. The
   * default requester's queues keep the names they were deployed with.
   * @default false
   */
  readonly named?: boolean;
}

/**
 * A request queue and its dead-letter queue, made in `scope`: SQS redrives a request there after
 * maxReceiveCount receives, the provisioner parks requests there, and a replay moves them back to
 * this queue only. The queue's physical name comes from `scope`'s path, unique per stack.
 */
export function requesterQueuePair(scope: Construct, props: RequesterQueuePairProps): RequesterQueuePair {
  // The DLQ names its only redrive source, and the request queue names the DLQ: a physical name,
  // unique per stack and construct path, breaks that reference cycle.
  const stack = Stack.of(scope);
  const base = Names.uniqueResourceName(scope, {
    maxLength: props.named ? 40 : 71,
    separator: '-',
    allowedSpecialCharacters: '-_',
  });
  const requestQueueName = `${base}-requests`;
  const deadLetterQueueName = props.named ? `${base}-dlq` : undefined;
  const arnOf = (name: string) =>
    stack.formatArn({ service: 'sqs', resource: name, arnFormat: ArnFormat.NO_RESOURCE_NAME });
  // The URL SQS gives a queue (and CDK for an imported one): region, account and name.
  const urlOf = (name: string) => `https://sqs.${stack.region}.${stack.urlSuffix}/${stack.account}/${name}`;
  const requestQueueArn = arnOf(requestQueueName);
  const deadLetterQueue = new Queue(scope, props.ids.deadLetterQueue, {
    ...SECURE,
    ...(deadLetterQueueName !== undefined && { queueName: deadLetterQueueName }),
    retentionPeriod: PARKED,
    maxMessageSizeBytes: PARKING_MAX_MESSAGE_BYTES,
    // Only the request queue may use it as its DLQ, which also makes it a message move task source.
    redriveAllowPolicy: {
      redrivePermission: RedrivePermission.BY_QUEUE,
      sourceQueues: [
        Queue.fromQueueAttributes(scope, 'RedriveSource', {
          queueArn: requestQueueArn,
          queueName: requestQueueName,
        }),
      ],
    },
  });
  const queue = new Queue(scope, props.ids.queue, {
    ...SECURE,
    queueName: requestQueueName,
    visibilityTimeout: props.visibilityTimeout,
    maxMessageSizeBytes: REQUEST_MAX_MESSAGE_BYTES,
    // Shorter than the DLQ's 14 days: a redrive keeps the original enqueue time, so a request
    // redriven on its last day here still has 10 days in the DLQ.
    retentionPeriod: Duration.days(4),
    deadLetterQueue: { queue: deadLetterQueue, maxReceiveCount: props.maxReceiveCount },
  });
  return deadLetterQueueName === undefined
    ? {
        queue,
        deadLetterQueue,
        queueArn: queue.queueArn,
        queueUrl: queue.queueUrl,
        dlqUrl: deadLetterQueue.queueUrl,
      }
    : {
        queue,
        deadLetterQueue,
        queueArn: requestQueueArn,
        queueUrl: urlOf(requestQueueName),
        dlqUrl: urlOf(deadLetterQueueName),
      };
}

export interface RequestQueuesOptions extends RequestQueuesProps {
  /**
   * Whether to make the default requester's request queue and DLQ here (no requesters
   * configured); configured requesters have their own (constructs/requesters.ts).
   */
  readonly defaultRequester: boolean;
}

export class RequestQueues extends Construct {
  /** The default requester's request queue; absent when requesters are configured. */
  readonly requestQueue?: Queue;
  /** The default requester's dead-letter queue; absent when requesters are configured. */
  readonly deadLetterQueue?: Queue;
  readonly rejectedQueue: Queue;
  /**
   * The provisioner's private queue: waits, follow-ups, deferrals and the status checker's
   * hand-backs. Only the two functions send to it, so what its messages carry is trusted.
   */
  readonly continuationQueue: Queue;
  /**
   * The continuation queue's own redrive net, for a continuation that crashed the function again
   * and again. Not replayable: the continuation queue's policy lets only the functions send.
   */
  readonly continuationDeadLetterQueue: Queue;

  constructor(scope: Construct, id: string, props: RequestQueuesOptions) {
    super(scope, id);
    if (props.defaultRequester) {
      // The ids (and the physical name from this construct's path) of the queues before requesters.
      const pair = requesterQueuePair(this, {
        ...props,
        ids: { queue: 'RequestQueue', deadLetterQueue: 'DeadLetterQueue' },
      });
      this.requestQueue = pair.queue;
      this.deadLetterQueue = pair.deadLetterQueue;
    }
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
