/**
 * The schema of the status event's detail (status-event.ts builds it): what a requester may rely
 * on, the source of the published JSON Schema (events/schema) and of the tests' checks of every
 * event. No function imports it at run time.
 */
import { OUTCOMES } from '#events/outcomes.ts';
import * as z from '#lib/zod.ts';

export const StatusChangedDetailSchema = z.strictObject({
  version: z.literal('1'),
  /**
   * Stable identity of the fact: the same on every announcement of one fact (a redelivery, an
   * outbox drained later), different for different facts. De-duplicate on it.
   */
  eventId: z.string().check(z.regex(/^[a-f0-9]{32}$/)),
  outcome: z.enum(OUTCOMES),
  /**
   * The requester (by name) this event is for; `requestIds` are its own. A deployment with no
   * requesters configured has one, named "default". An event about a key goes to each requester
   * with requestIds on it, one event each, with an eventId of its own.
   */
  requester: z.string(),
  /** The requester's requestIds this event is about: the request answered, or its requests of the key's current lifecycle. */
  requestIds: z.array(z.string()),
  /**
   * The SQS messageId of the request message this event answers (what SendMessage returned to its
   * sender). Absent on events of the status checker, which answer no one message, and on the
   * answers to a key the checker handed back to be created anew.
   */
  messageId: z.optional(z.string()),
  /** Absent only for a rejected body whose key could not be read. */
  naturalKey: z.optional(z.string()),
  groupId: z.optional(z.string()),
  cloudProvider: z.optional(z.string()),
  regionName: z.optional(z.string()),
  vpcRegionName: z.optional(z.string()),
  action: z.optional(z.enum(['create', 'delete'])),
  endpointId: z.optional(z.string()),
  /** The endpoint `endpointId` replaced: Atlas recreated it under a new id (RECREATED), or it vanished and this one was adopted. */
  previousEndpointId: z.optional(z.string()),
  previousStatus: z.optional(z.string()),
  /** Atlas status, or DELETED / MISSING for gone endpoints; absent when Atlas was never reached. */
  status: z.optional(z.string()),
  /** Atlas's errorMessage for a FAILED endpoint. */
  errorMessage: z.optional(z.string()),
  /**
   * Why it failed: on DEAD_LETTERED and REJECTED; on a MISSING that retired a key whose project no
   * longer exists (Atlas's GROUP_NOT_FOUND, or RETIRED_BY_OPERATOR from `npm run retire`).
   */
  error: z.optional(
    z.strictObject({
      code: z.string(),
      httpStatus: z.optional(z.number().check(z.int())),
      detail: z.string(),
    }),
  ),
  statusSince: z.optional(z.iso.datetime()),
  /** RELEASED: how many requesters still hold the key's endpoint (never who). */
  holdsRemaining: z.optional(z.number().check(z.int(), z.minimum(1))),
  /** SUPERSEDED: the requestId of the newer request that took effect in this one's place. */
  supersededBy: z.optional(z.string()),
  /** A delete an operator made whatever other requesters held: their endpoint is gone too. */
  forced: z.optional(z.literal(true)),
  occurredAt: z.iso.datetime(),
});
export type StatusChangedDetail = z.infer<typeof StatusChangedDetailSchema>;
