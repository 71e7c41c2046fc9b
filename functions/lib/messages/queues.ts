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
  FOLLOW_UP,
  FOLLOWED_ENDPOINT_ID,
  ORIGINAL_MESSAGE_ID,
  PARKED_ATTRIBUTES,
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

/** Exponential backoff with full jitter: a random delay up to min(cap, base * 2^(attempt-1)). */
export function backoffSeconds(
  attempt: number,
  backoff: Backoff,
  random: () => number = Math.random,
): number {
  const ceiling = Math.min(backoff.capSeconds, backoff.baseSeconds * 2 ** Math.max(0, attempt - 1));
  return Math.round(random() * ceiling);
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
}

export interface QueuesOptions {
  requestQueueUrl: string;
  dlqUrl: string;
  rejectedQueueUrl: string;
  client?: SQSClient;
}

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
  const { failure, requestId, originalMessageId } = parkedFailure;
  return {
    ...parked('errorCode', failure.code),
    ...(failure.httpStatus !== undefined && parked('httpStatus', failure.httpStatus)),
    ...parked('detail', failure.detail || failure.code),
    ...parked('attempts', parkedFailure.attempts),
    ...parked('firstFailureAt', parkedFailure.firstFailureAt),
    ...parked('lastFailureAt', parkedFailure.lastFailureAt),
    ...(requestId && parked('requestId', requestId)),
    ...(originalMessageId && parked('originalMessageId', originalMessageId)),
  };
}

/** The longest DelaySeconds SQS accepts on a message. */
export const MAX_MESSAGE_DELAY_SECONDS = 900;
/** The request queue as a sender: a waiting request, or a key handed back by the status checker. */
export class RequestQueue {
  readonly #url: string;
  readonly #client: SQSClient;

  constructor(options: { queueUrl: string; client?: SQSClient }) {
    this.#url = options.queueUrl;
    this.#client = options.client ?? new SQSClient({});
  }

  /** Sends a request body, delivered after `delaySeconds` (capped at SQS's 900). */
  async send(
    body: string,
    options: {
      delaySeconds?: number;
      originalMessageId?: string;
      waits?: number;
      followUp?: { number: number; endpointId: string };
    } = {},
  ): Promise<void> {
    const delay = Math.min(MAX_MESSAGE_DELAY_SECONDS, Math.max(0, Math.ceil(options.delaySeconds ?? 0)));
    await this.#client.send(
      new SendMessageCommand({
        QueueUrl: this.#url,
        MessageBody: body,
        ...(delay > 0 && { DelaySeconds: delay }),
        MessageAttributes: {
          ...(options.originalMessageId !== undefined && {
            [ORIGINAL_MESSAGE_ID]: text(options.originalMessageId),
          }),
          ...(options.waits !== undefined && { [WAITS]: number(options.waits) }),
          ...(options.followUp && {
            [FOLLOW_UP]: number(options.followUp.number),
            [FOLLOWED_ENDPOINT_ID]: text(options.followUp.endpointId),
          }),
        },
      }),
    );
  }
}

export class Queues {
  readonly #requestQueueUrl: string;
  readonly #parkUrls: Record<'dlq' | 'reject', string>;
  readonly #client: SQSClient;
  readonly #requests: RequestQueue;

  constructor(options: QueuesOptions) {
    this.#requestQueueUrl = options.requestQueueUrl;
    this.#parkUrls = { dlq: options.dlqUrl, reject: options.rejectedQueueUrl };
    this.#client = options.client ?? new SQSClient({});
    this.#requests = new RequestQueue({ queueUrl: options.requestQueueUrl, client: this.#client });
  }

  /**
   * Sends the request again as a new message delivered after `seconds`: a wait for Atlas that
   * spends none of the record's attempts (its receive count starts again).
   */
  async wait(
    body: string,
    seconds: number,
    carried: { originalMessageId: string; waits: number },
  ): Promise<void> {
    await this.#requests.send(body, { delaySeconds: seconds, ...carried });
  }

  /** Sends a follow-up of the request's key: the same body, delivered after `seconds`. */
  async followUp(
    body: string,
    seconds: number,
    carried: { originalMessageId: string; number: number; endpointId: string },
  ): Promise<void> {
    await this.#requests.send(body, {
      delaySeconds: seconds,
      originalMessageId: carried.originalMessageId,
      followUp: { number: carried.number, endpointId: carried.endpointId },
    });
  }

  /** Makes the received message visible again after `seconds` (capped at MAX_RETRY_DELAY_SECONDS). */
  async delay(receiptHandle: string, seconds: number): Promise<void> {
    await this.#client.send(
      new ChangeMessageVisibilityCommand({
        QueueUrl: this.#requestQueueUrl,
        ReceiptHandle: receiptHandle,
        VisibilityTimeout: Math.min(MAX_RETRY_DELAY_SECONDS, Math.max(0, Math.round(seconds))),
      }),
    );
  }

  /** Sends the original body, unchanged, to the dead-letter queue or the rejected queue. */
  async park(destination: 'dlq' | 'reject', body: string, parked: ParkedFailure): Promise<void> {
    await this.#client.send(
      new SendMessageCommand({
        QueueUrl: this.#parkUrls[destination],
        MessageBody: body,
        MessageAttributes: parkedAttributes(parked),
      }),
    );
  }
}
