/**
 * Request order (README "Order"): requests take effect in the order they were sent.
 *
 * - Per requester: the key remembers, for each requester, the request sent last among those it
 *   applied (`applied`, by the SQS SentTimestamp of the request's original message, carried as
 *   `SentAt` across waits, parking and replays). A request of that requester sent earlier, for
 *   the other action, is answered SUPERSEDED, naming the newer one, and changes nothing; one for
 *   the same action asks for what the key already has and acts as before (two creates are safe).
 * - Per key: the key remembers the request that started its current lifecycle (`lifecycle`: the
 *   request that last changed its action). A request sent before it, for the other action, is
 *   stale, whoever sent it: a wait, a retry or a late delivery of it (a delete took effect while a
 *   create waited: the create never creates again). Holds still decide within a lifecycle;
 *   a hand-back or follow-up carries the lifecycle it continues (`Lifecycle`) and is stale in any
 *   other. A stale wait or hand-back is answered SUPERSEDED and changes nothing; a follow-up stops.
 * - A request whose effect a newer one of its requester ended before it settled (a create still
 *   INITIATING when the delete took effect) is told: SUPERSEDED, with the requestIds the new
 *   lifecycle no longer carries (supersededEvents).
 */
import { eventIdOf, type StatusChangedDetail, statusEvent } from '#events/status-event.ts';
import { ENDED, type LedgerItem, type LifecycleMarker } from '#ledger/ledger.ts';
import type { ProvisionRequest } from '#messages/request.ts';
import { detail } from './answers.ts';
import type { AtlasResult, Attempt, ProvisionContext } from './types.ts';

/**
 * The requestId of a newer request that took effect in this one's place, or undefined when this
 * one may act. Equal send times (the same millisecond) are not ordered: the request acts.
 */
export function supersedingRequest(
  claimed: LedgerItem,
  at: Attempt,
  request: ProvisionRequest,
): string | undefined {
  const { sentAt, lifecycle, continuation, requester } = at.source;
  const current = claimed.lifecycle;
  // A hand-back or follow-up of another lifecycle (its own, or one before it).
  if (continuation && lifecycle !== undefined && current !== undefined && current.messageId !== lifecycle)
    return current.requestId;
  if (sentAt === undefined || requester === undefined) return undefined;
  // A newer request of its own requester, for the other action, took effect (one for the same
  // action asked for what this one asks: this one acts, and changes nothing it did not).
  const mine = claimed.applied?.[requester.name];
  if (mine !== undefined && mine.sentAt > sentAt && mine.action !== request.action) return mine.requestId;
  // The key was turned to the other action by a request (any requester's) sent after this one: a
  // wait of this one, its retry after it sent a create, or its own late delivery acts no more.
  if (
    current !== undefined &&
    current.messageId !== at.messageId &&
    current.sentAt > sentAt &&
    claimed.action !== request.action
  )
    return current.requestId;
  return undefined;
}

/** The answer to a superseded request: nothing changed, the newer request named. */
export function supersededAnswer(
  ctx: ProvisionContext,
  at: Attempt,
  request: ProvisionRequest,
  claimed: LedgerItem,
  newer: string,
): StatusChangedDetail {
  return detail(ctx, 'SUPERSEDED', at, request, {
    eventId: eventIdOf('SUPERSEDED', at.messageId, request.requestId, claimed.key, newer),
    supersededBy: newer,
    status: claimed.status,
    ...(claimed.endpointId !== undefined && { endpointId: claimed.endpointId }),
  });
}

/**
 * The lifecycle this request starts, if it does: it changes the key's action (or the key has no
 * marker yet), and it has a send time. A release starts none: only the holds change.
 */
export function lifecycleStarted(
  claimed: LedgerItem,
  at: Attempt,
  request: ProvisionRequest,
  result: Pick<AtlasResult, 'outcome'>,
): LifecycleMarker | undefined {
  const { sentAt, requester } = at.source;
  if (result.outcome === 'RELEASED' || sentAt === undefined || requester === undefined) return undefined;
  if (claimed.lifecycle !== undefined && claimed.action === request.action) return undefined;
  return {
    messageId: at.messageId,
    sentAt,
    requestId: request.requestId,
    requester: requester.name,
    action: request.action,
  };
}

/** Whether the key's lifecycle had reached the end its requests asked for (ACTIVE, or gone). */
const finished = (claimed: LedgerItem) =>
  ENDED.has(claimed.status) || (claimed.action === 'create' && claimed.status === 'ACTIVE');

/**
 * When a request changes the key's action before its lifecycle finished, the requests that asked
 * for the old action will never reach what they asked for: each requester with requestIds on the
 * key is told SUPERSEDED by this request, for those ids (its final answer). The answering
 * requester's list restarts (rules.ts nextRequesters); other requesters keep theirs and also hear
 * the new lifecycle's statuses.
 */
export function supersededEvents(
  ctx: ProvisionContext,
  at: Attempt,
  request: ProvisionRequest,
  claimed: LedgerItem,
  result: Pick<AtlasResult, 'outcome' | 'status' | 'endpointId'>,
): StatusChangedDetail[] {
  const asker = at.source.requester?.name;
  if (asker === undefined || result.outcome === 'RELEASED' || claimed.action === request.action) return [];
  if (finished(claimed)) return [];
  return Object.entries(claimed.requesters)
    .sort(([a], [b]) => a.localeCompare(b))
    .flatMap(([requester, ids]) => {
      const dropped = ids.filter((id) => !(requester === asker && id === request.requestId));
      if (dropped.length === 0) return [];
      return [
        statusEvent('SUPERSEDED', claimed, {
          eventId: eventIdOf('SUPERSEDED', claimed.key, requester, at.messageId, request.requestId),
          requester,
          requestIds: dropped,
          supersededBy: request.requestId,
          status: result.status,
          ...(result.endpointId !== undefined && { endpointId: result.endpointId }),
          occurredAt: ctx.now().toISOString(),
        }),
      ];
    });
}

/** What a continuation of this attempt carries of request order. */
export function orderOf(at: Pick<Attempt, 'source'>): { sentAt?: number; lifecycle?: string } {
  return {
    ...(at.source.sentAt !== undefined && { sentAt: at.source.sentAt }),
    ...(at.source.lifecycle !== undefined && { lifecycle: at.source.lifecycle }),
  };
}
