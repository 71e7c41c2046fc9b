/**
 * Where a record came from, decided only by what the sender cannot write: the queue SQS says it
 * came from (`eventSourceARN`), and, on the private continuation queue that only the two
 * functions can send to, the `Requester` attribute they wrote. Never the body, a message
 * attribute on a requester's queue, or the sender's id or session name.
 */
import type { SQSRecord } from 'aws-lambda';
import { UntrustedMessageError } from '#lib/errors.ts';
import {
  FOLLOW_UP,
  LIFECYCLE,
  MESSAGE_ID_SHAPE,
  ORIGINAL_MESSAGE_ID,
  REQUESTER,
  RESERVED_ATTRIBUTES,
  SENT_AT,
} from '#messages/attributes.ts';
import { quoteValue } from '#messages/request.ts';
import type { RequesterEntry, Requesters } from '#messages/requesters.ts';

/** Attribute values are read only up to this many characters: nothing carried is longer. */
const MAX_ATTRIBUTE_CHARS = 128;

export interface RecordSource {
  /** The requester the record acts for; undefined when no channel names one (then `problem` says why). */
  requester?: RequesterEntry;
  /** The record came on the continuation queue: its attributes are the provisioner's own. */
  continuation: boolean;
  /** The queue the record is on, to delay its next delivery; undefined for a queue of no requester. */
  queueUrl?: string;
  /** A follow-up: a continuation that only reads its key's endpoint. */
  followUp: boolean;
  /** The messageId its sender was given (carried across waits and replays), else the record's own. */
  messageId: string;
  /**
   * Whether `messageId` is one a requester's SendMessage returned: false for a continuation that
   * carries none (a key the status checker handed back), whose answers then name only requestIds,
   * as the checker's own events do.
   */
  fromSender: boolean;
  /**
   * When the request it carries was first sent (epoch ms): its message's SentTimestamp, or the
   * SentAt a continuation or a replay carries (sentAtOf). Undefined: the record takes no part in
   * request order (a continuation of an earlier version, a hand-back).
   */
  sentAt?: number;
  /** A hand-back's or follow-up's lifecycle (the messageId of the request that started it). */
  lifecycle?: string;
  /** Why the record cannot be trusted; it is rejected with this reason, before anything else. */
  problem?: UntrustedMessageError;
}

/**
 * How much older than its own message a replay's SentAt may be: a parked message is kept 14 days,
 * and waited up to a day before it was parked. A requester can only make its request older than
 * the message it sends, never newer, and only its own ordering depends on it.
 */
export const MAX_REPLAY_AGE_MS = 15 * 24 * 60 * 60 * 1000;

const EPOCH_MS = /^[1-9][0-9]{0,15}$/;

/** The record's SentTimestamp (epoch ms), when SQS gave one. */
function sentTimestamp(record: SQSRecord): number | undefined {
  const sent = Number(record.attributes?.SentTimestamp);
  return Number.isSafeInteger(sent) && sent > 0 ? sent : undefined;
}

/** A message attribute's string value, bounded. */
export const boundedAttribute = (record: SQSRecord, name: string): string | undefined =>
  record.messageAttributes?.[name]?.stringValue?.slice(0, MAX_ATTRIBUTE_CHARS + 1);

export interface SourceQueues {
  requesters: Requesters;
  continuationQueueArn: string;
  continuationQueueUrl: string;
}

/** The record's requester and what of its attributes is trusted. */
export function sourceOf(queues: SourceQueues, record: SQSRecord): RecordSource {
  const carried = boundedAttribute(record, ORIGINAL_MESSAGE_ID);
  if (record.eventSourceARN === queues.continuationQueueArn) {
    const name = boundedAttribute(record, REQUESTER);
    const requester = queues.requesters.byName(name);
    const sentAt = boundedAttribute(record, SENT_AT);
    const lifecycle = boundedAttribute(record, LIFECYCLE);
    // The id its sender was given, carried by a wait or follow-up; a hand-back carries none.
    const sender = carried !== undefined && MESSAGE_ID_SHAPE.test(carried) ? carried : undefined;
    return {
      continuation: true,
      ...(sentAt !== undefined && EPOCH_MS.test(sentAt) && { sentAt: Number(sentAt) }),
      ...(lifecycle !== undefined && MESSAGE_ID_SHAPE.test(lifecycle) && { lifecycle }),
      queueUrl: queues.continuationQueueUrl,
      followUp: record.messageAttributes?.[FOLLOW_UP] !== undefined,
      messageId: sender ?? record.messageId,
      fromSender: sender !== undefined,
      ...(requester
        ? { requester }
        : {
            problem: new UntrustedMessageError(
              `a continuation names no requester of this deployment (${REQUESTER} ${quoteValue(name)})`,
            ),
          }),
    };
  }
  const requester = queues.requesters.byQueue(record.eventSourceARN);
  const base = { continuation: false, followUp: false, messageId: record.messageId, fromSender: true };
  if (!requester) {
    return {
      ...base,
      problem: new UntrustedMessageError(
        `the queue ${quoteValue(record.eventSourceARN, 256)} belongs to no requester of this deployment`,
      ),
    };
  }
  const reserved = RESERVED_ATTRIBUTES.filter((name) => record.messageAttributes?.[name] !== undefined);
  if (reserved.length > 0) {
    return {
      ...base,
      requester,
      queueUrl: requester.queueUrl,
      problem: new UntrustedMessageError(
        `message attribute ${reserved.map((n) => `"${n}"`).join(', ')} is reserved to the provisioner's own messages; send the request without it`,
      ),
    };
  }
  // A replay brings the id back on the requester's own queue: read in that requester's scope only.
  if (carried !== undefined && !MESSAGE_ID_SHAPE.test(carried)) {
    return {
      ...base,
      requester,
      queueUrl: requester.queueUrl,
      problem: new UntrustedMessageError(
        `message attribute "${ORIGINAL_MESSAGE_ID}" must be an SQS message id (1-100 of A-Z a-z 0-9 -), got ${quoteValue(carried)}`,
      ),
    };
  }
  // A replay brings its request's send time back: only ever older than this message, and bounded.
  const own = sentTimestamp(record);
  const replayed = boundedAttribute(record, SENT_AT);
  if (replayed !== undefined) {
    const at = EPOCH_MS.test(replayed) ? Number(replayed) : Number.NaN;
    if (own === undefined || !(at <= own && at >= own - MAX_REPLAY_AGE_MS)) {
      return {
        ...base,
        requester,
        queueUrl: requester.queueUrl,
        problem: new UntrustedMessageError(
          `message attribute "${SENT_AT}" must be the epoch-ms send time of the request replayed, no later than this message and at most 15 days before it, got ${quoteValue(replayed)}`,
        ),
      };
    }
    return {
      ...base,
      requester,
      queueUrl: requester.queueUrl,
      messageId: carried ?? record.messageId,
      sentAt: at,
    };
  }
  return {
    ...base,
    requester,
    queueUrl: requester.queueUrl,
    messageId: carried ?? record.messageId,
    ...(own !== undefined && { sentAt: own }),
  };
}
