/**
 * What the provisioner does with a failed record on SQS: delay its next delivery
 * (ChangeMessageVisibility, the SQS-native way to honour Retry-After), or park its original body
 * in the dead-letter or rejected queue with attributes saying why.
 */
import {
  ChangeMessageVisibilityCommand,
  type MessageAttributeValue,
  SendMessageCommand,
  SQSClient,
} from '@aws-sdk/client-sqs';
import type { FailureInfo } from '#lib/errors.ts';
import {
  FOLLOW_CHAIN,
  FOLLOW_UP,
  FOLLOWED_ENDPOINT_ID,
  LIFECYCLE,
  ORIGINAL_MESSAGE_ID,
  PARKED_ATTRIBUTES,
  REQUESTER,
  SENT_AT,
  WAITS,
} from '#messages/attributes.ts';

/** SQS refuses a visibility timeout above 12 hours. */
export const MAX_VISIBILITY_SECONDS = 43_200;
/**
 * The longest delay SQS accepts for a received record: its 12 hours count from the receive, and
 * the record has been in flight for up to the batching window (5 min) and the function timeout
 * (15 min) when it is delayed; beyond what is left SQS refuses the change outright.
 */
export const MAX_RETRY_DELAY_SECONDS = MAX_VISIBILITY_SECONDS - 1_200;
export interface Backoff {
  baseSeconds: number;
  capSeconds: number;
}

/** The exponential ceiling of the n-th try: min(cap, base * 2^(n-1)). */
const backoffCeiling = (n: number, backoff: Backoff): number =>
  Math.min(backoff.capSeconds, backoff.baseSeconds * 2 ** Math.max(0, n - 1));

/** Exponential backoff with full jitter: a random delay up to the attempt's ceiling. */
export function backoffSeconds(
  attempt: number,
  backoff: Backoff,
  random: () => number = Math.random,
): number {
  return Math.round(random() * backoffCeiling(attempt, backoff));
}

/**
 * How long the w-th wait for one of our own AWS services lasts: the same exponential ceiling,
 * with equal jitter (between half the ceiling and all of it), so that maxWaits waits span a
 * known stretch of an outage: about 0.75 * cap each once the ceiling reached the cap.
 */
export function outageWaitSeconds(
  waits: number,
  backoff: Backoff,
  random: () => number = Math.random,
): number {
  const ceiling = backoffCeiling(waits, backoff);
  return Math.max(1, Math.round(ceiling / 2 + (random() * ceiling) / 2));
}

/** How long a retried record waits: what Atlas asked for when it said, else the backoff. */
export function retryDelaySeconds(
  failure: FailureInfo,
  attempt: number,
  backoff: Backoff,
  random: () => number = Math.random,
): number {
  const seconds = failure.retryAfterSeconds ?? backoffSeconds(attempt, backoff, random);
  return Math.min(MAX_RETRY_DELAY_SECONDS, Math.max(0, Math.ceil(seconds)));
}

/** Why a record was parked; becomes the parked message's attributes. Never holds a secret. */
export interface ParkedFailure {
  failure: FailureInfo;
  /** Deliveries so far (ApproximateReceiveCount). */
  attempts: number;
  firstFailureAt: string;
  lastFailureAt: string;
  requestId?: string;
  /** The messageId the request's sender was given; kept so a replay still answers with it. */
  originalMessageId?: string;
  /** The requester whose request it is, when known. */
  requester?: string;
  /** When the request's original message was sent (epoch ms), when known: a replay keeps its order. */
  sentAt?: number;
}

export interface QueuesOptions {
  /** The private queue of the provisioner's own waits and follow-ups. */
  continuationQueueUrl: string;
  rejectedQueueUrl: string;
  client?: SQSClient;
}

/** Where a parked record goes: the dead-letter queue of its requester, or the shared rejected queue. */
export type ParkDestination = { dlqUrl: string } | 'reject';

/** Characters SQS refuses in an attribute value: one of them would fail the whole SendMessage. */
const NOT_SQS_TEXT = /[^\t\n\r\u0020-\uD7FF\uE000-\uFFFD\u{10000}-\u{10FFFF}]/gu;

const text = (value: string): MessageAttributeValue => ({
  DataType: 'String',
  StringValue: value.replace(NOT_SQS_TEXT, '\uFFFD'),
});
const number = (value: number): MessageAttributeValue => ({ DataType: 'Number', StringValue: String(value) });

/** A parked record's attribute, its value cut to the length PARKED_ATTRIBUTES allows. */
function parked(
  attribute: keyof typeof PARKED_ATTRIBUTES,
  value: string | number,
): Record<string, MessageAttributeValue> {
  const { name, type, maxChars } = PARKED_ATTRIBUTES[attribute];
  return { [name]: type === 'Number' ? number(value as number) : text(String(value).slice(0, maxChars)) };
}

/** The message attributes of a parked record (SQS refuses empty values, so absent ones are left out). */
export function parkedAttributes(parkedFailure: ParkedFailure): Record<string, MessageAttributeValue> {
  const { failure, requestId, originalMessageId, requester, sentAt } = parkedFailure;
  return {
    ...parked('errorCode', failure.code),
    ...(failure.httpStatus !== undefined && parked('httpStatus', failure.httpStatus)),
    ...parked('detail', failure.detail || failure.code),
    ...parked('attempts', parkedFailure.attempts),
    ...parked('firstFailureAt', parkedFailure.firstFailureAt),
    ...parked('lastFailureAt', parkedFailure.lastFailureAt),
    ...(requestId && parked('requestId', requestId)),
    ...(originalMessageId && parked('originalMessageId', originalMessageId)),
    ...(requester && parked('requester', requester)),
    ...(sentAt !== undefined && parked('sentAt', sentAt)),
  };
}

/** The longest DelaySeconds SQS accepts on a message. */
export const MAX_MESSAGE_DELAY_SECONDS = 900;

/** What a continuation carries: whose request it is, the id its sender was given, and its place in a chain. */
export interface Continuation {
  /** The requester it acts for: trusted, since only the two functions can send to this queue. */
  requester: string;
  delaySeconds?: number;
  originalMessageId?: string;
  waits?: number;
  followUp?: { number: number; endpointId: string; chain?: string };
  /** The send time (epoch ms) of the request a wait continues. */
  sentAt?: number;
  /** The messageId of the request that started the lifecycle a hand-back or follow-up continues. */
  lifecycle?: string;
}

/**
 * The provisioner's private continuation queue as a sender: a waiting request, a follow-up, or a
 * key handed back by the status checker. Its policy lets only the two functions send.
 */
export class ContinuationQueue {
  readonly #url: string;
  readonly #client: SQSClient;

  constructor(options: { queueUrl: string; client?: SQSClient }) {
    this.#url = options.queueUrl;
    this.#client = options.client ?? new SQSClient({});
  }

  /** Sends a request body for `requester`, delivered after `delaySeconds` (capped at SQS's 900). */
  async send(body: string, options: Continuation): Promise<void> {
    const delay = Math.min(MAX_MESSAGE_DELAY_SECONDS, Math.max(0, Math.ceil(options.delaySeconds ?? 0)));
    await this.#client.send(
      new SendMessageCommand({
        QueueUrl: this.#url,
        MessageBody: body,
        ...(delay > 0 && { DelaySeconds: delay }),
        MessageAttributes: {
          [REQUESTER]: text(options.requester),
          ...(options.originalMessageId !== undefined && {
            [ORIGINAL_MESSAGE_ID]: text(options.originalMessageId),
          }),
          ...(options.waits !== undefined && { [WAITS]: number(options.waits) }),
          ...(options.sentAt !== undefined && { [SENT_AT]: number(options.sentAt) }),
          ...(options.lifecycle !== undefined && { [LIFECYCLE]: text(options.lifecycle) }),
          ...(options.followUp && {
            [FOLLOW_UP]: number(options.followUp.number),
            [FOLLOWED_ENDPOINT_ID]: text(options.followUp.endpointId),
            ...(options.followUp.chain !== undefined && { [FOLLOW_CHAIN]: text(options.followUp.chain) }),
          }),
        },
      }),
    );
  }
}

export class Queues {
  readonly #rejectedQueueUrl: string;
  readonly #client: SQSClient;
  readonly #continuations: ContinuationQueue;

  constructor(options: QueuesOptions) {
    this.#rejectedQueueUrl = options.rejectedQueueUrl;
    this.#client = options.client ?? new SQSClient({});
    this.#continuations = new ContinuationQueue({
      queueUrl: options.continuationQueueUrl,
      client: this.#client,
    });
  }

  /**
   * Sends the request again on the continuation queue, delivered after `seconds`: a wait for
   * Atlas that spends none of the record's attempts (its receive count starts again).
   */
  async wait(
    body: string,
    seconds: number,
    carried: {
      requester: string;
      originalMessageId: string;
      waits: number;
      sentAt?: number;
      lifecycle?: string;
    },
  ): Promise<void> {
    await this.#continuations.send(body, { delaySeconds: seconds, ...carried });
  }

  /** Sends a follow-up of the request's key on the continuation queue: the same body, after `seconds`. */
  async followUp(
    body: string,
    seconds: number,
    carried: {
      requester: string;
      originalMessageId: string;
      number: number;
      endpointId: string;
      chain?: string;
      lifecycle?: string;
    },
  ): Promise<void> {
    await this.#continuations.send(body, {
      requester: carried.requester,
      delaySeconds: seconds,
      originalMessageId: carried.originalMessageId,
      ...(carried.lifecycle !== undefined && { lifecycle: carried.lifecycle }),
      followUp: {
        number: carried.number,
        endpointId: carried.endpointId,
        ...(carried.chain !== undefined && { chain: carried.chain }),
      },
    });
  }

  /**
   * Makes the received message visible again on its own queue after `seconds` (capped at
   * MAX_RETRY_DELAY_SECONDS).
   */
  async delay(queueUrl: string, receiptHandle: string, seconds: number): Promise<void> {
    await this.#client.send(
      new ChangeMessageVisibilityCommand({
        QueueUrl: queueUrl,
        ReceiptHandle: receiptHandle,
        VisibilityTimeout: Math.min(MAX_RETRY_DELAY_SECONDS, Math.max(0, Math.round(seconds))),
      }),
    );
  }

  /** Sends the original body, unchanged, to its requester's dead-letter queue or to the rejected queue. */
  async park(destination: ParkDestination, body: string, parked: ParkedFailure): Promise<void> {
    await this.#client.send(
      new SendMessageCommand({
        QueueUrl: destination === 'reject' ? this.#rejectedQueueUrl : destination.dlqUrl,
        MessageBody: body,
        MessageAttributes: parkedAttributes(parked),
      }),
    );
  }
}
