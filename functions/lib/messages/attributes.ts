/**
 * The SQS message attributes the provisioner writes: on a parked record (why it was parked), and
 * on a request it sends again (a wait, a follow-up). Dependency-free: the stack sizes its queues
 * from PARKED_ATTRIBUTES_MAX_BYTES, and operator tools read the same names.
 */

/**
 * A parked record's attributes, each with its SQS data type and the most characters its value
 * keeps (values count against the message size; longer ones are cut).
 */
export const PARKED_ATTRIBUTES = {
  errorCode: { name: 'ErrorCode', type: 'String', maxChars: 128 },
  /** SQS accepts Number values of up to 38 digits. */
  httpStatus: { name: 'HttpStatus', type: 'Number', maxChars: 40 },
  detail: { name: 'Detail', type: 'String', maxChars: 1_000 },
  attempts: { name: 'Attempts', type: 'Number', maxChars: 40 },
  /** An ISO timestamp, with room for an expanded year. */
  firstFailureAt: { name: 'FirstFailureAt', type: 'String', maxChars: 32 },
  lastFailureAt: { name: 'LastFailureAt', type: 'String', maxChars: 32 },
  requestId: { name: 'RequestId', type: 'String', maxChars: 1_024 },
  /** The messageId the request's sender was given (SQS message ids are at most 100 characters). */
  originalMessageId: { name: 'OriginalMessageId', type: 'String', maxChars: 128 },
  /** Whose request it is (for the operator reading it; never read back as identity). */
  requester: { name: 'RequesterName', type: 'String', maxChars: 32 },
  /**
   * When the request's original message was sent (its SQS SentTimestamp, epoch ms), so a replay
   * keeps its place in its requester's order (request order: README "Order").
   */
  sentAt: { name: 'SentAt', type: 'Number', maxChars: 40 },
} as const;

/**
 * The most the attributes of a parked record can add to its body, in bytes as SQS counts them
 * (name + data type + value, UTF-8; a UTF-16 code unit is at most 3 bytes). The request queue's
 * maximum message size sits at least this far below the parking queues', so any body the request
 * queue accepted can be parked with its reason.
 */
export const PARKED_ATTRIBUTES_MAX_BYTES = Object.values(PARKED_ATTRIBUTES).reduce(
  (sum, { name, type, maxChars }) => sum + name.length + type.length + 3 * maxChars,
  0,
);

/**
 * The id a request's sender was given, carried through waits and replays. A replay brings it back
 * on the requester's own queue, so it is read there too, but only in the requester's own scope
 * (its answers go to that requester alone) and only in the shape of an SQS message id.
 */
export const ORIGINAL_MESSAGE_ID = PARKED_ATTRIBUTES.originalMessageId.name;
/** An SQS message id as SQS writes it (a UUID), or close to it: nothing else is carried. */
export const MESSAGE_ID_SHAPE = /^[A-Za-z0-9-]{1,100}$/;
/**
 * The send time (epoch ms) of the request a message carries: on a continuation (trusted: only the
 * functions send there), on a parked message, and on a replay from the requester's own DLQ (read
 * there only within bounds: functions/provision/source.ts).
 */
export const SENT_AT = PARKED_ATTRIBUTES.sentAt.name;
/**
 * On a hand-back or a follow-up: the messageId of the request that started the key's lifecycle it
 * continues (the ledger's `lifecycle`). One of another lifecycle stops without acting.
 */
export const LIFECYCLE = 'Lifecycle';
/** Waits so far, on a continuation. */
export const WAITS = 'Waits';
/**
 * The requester a continuation acts for. Trusted only on the private continuation queue, where
 * only the two functions can send.
 */
export const REQUESTER = 'Requester';
/**
 * Attributes of a follow-up: the original request body sent again to look at its key's endpoint
 * once (never to create). `FollowUp` is the follow-up's number in its chain, `EndpointId` the
 * endpoint it follows. A message without `FollowUp` is a request, whatever its body.
 */
export const FOLLOW_UP = 'FollowUp';
export const FOLLOWED_ENDPOINT_ID = 'EndpointId';
/**
 * The chain a follow-up belongs to: the ledger records the key's current chain (`followChain`), and
 * a follow-up of any other chain stops, so a key has one live chain however many were started.
 */
export const FOLLOW_CHAIN = 'FollowChain';

/**
 * The continuation queue's own attributes. A message on a requester's queue that carries one is
 * rejected with a reason naming it: never trusted, and never silently dropped.
 */
export const RESERVED_ATTRIBUTES: readonly string[] = [
  FOLLOW_UP,
  FOLLOWED_ENDPOINT_ID,
  FOLLOW_CHAIN,
  WAITS,
  REQUESTER,
  LIFECYCLE,
];
