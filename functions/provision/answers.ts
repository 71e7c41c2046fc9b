/**
 * What the provisioner announces: the answer to each request, the events beside it (duplicates,
 * failures), and their delivery through the key's outbox, so a refused publish is sent again.
 */
import type { Logger } from '@aws-lambda-powertools/logger';
import type { AtlasEndpoint } from '#atlas/types.ts';
import { announceRecorded } from '#events/outbox.ts';
import { requesterEventId } from '#events/status-change.ts';
import { eventIdOf, type StatusChangedDetail, statusEvent } from '#events/status-event.ts';
import { type LedgerItem, MAX_OUTBOX } from '#ledger/ledger.ts';
import { EventsBackloggedError } from '#lib/errors.ts';
import type { ProvisionRequest } from '#messages/request.ts';
import type { AtlasResult, Attempt, ProvisionContext, RecordOutcome } from './types.ts';

/**
 * Sends events a failed publish left in the key's outbox. A new fact waits while the outbox has
 * no room for its answer (MAX_OUTBOX, the bound the ledger keeps on every write: a settle that
 * would pass it, e.g. an answer with extra endpoints' events, is refused the same way).
 */
export async function drainOutbox(ctx: ProvisionContext, claimed: LedgerItem, at: Attempt): Promise<void> {
  const pending = Object.values(claimed.outbox ?? {});
  if (pending.length === 0) return;
  if (await announce(ctx, claimed.key, pending, at.logger)) return;
  // What EventBridge refused stays (what it took and could not be cleared counts too).
  const left = Object.keys((await ctx.ledger.get(claimed.key))?.outbox ?? {}).length;
  if (left + 1 > MAX_OUTBOX) throw new EventsBackloggedError(claimed.key);
}

/** Publishes recorded events of one key and clears them from its outbox; false when some stay. */
export function announce(
  ctx: ProvisionContext,
  key: string,
  events: StatusChangedDetail[],
  logger: Logger,
): Promise<boolean> {
  const { events: publisher, ledger, metrics } = ctx;
  return announceRecorded(
    { events: publisher, ledger, metrics, logger },
    events.map((event) => ({ key, event })),
  );
}

/**
 * The answer to the request, as recorded: the same fact always has the same eventId. The message
 * is part of the fact: two messages with one requestId get two answers, which a requester that
 * matches by messageId and de-duplicates on eventId both hears.
 */
export function answerEvent(
  ctx: ProvisionContext,
  result: AtlasResult,
  at: Attempt,
  request: ProvisionRequest,
  claimed: LedgerItem,
  statusSince: string,
): StatusChangedDetail {
  return detail(ctx, result.outcome, at, request, {
    eventId: eventIdOf(
      'answer',
      at.messageId,
      request.requestId,
      claimed.key,
      request.action,
      result.endpointId,
      result.status,
      statusSince,
    ),
    ...(result.endpointId !== undefined && { endpointId: result.endpointId }),
    status: result.status,
    ...(claimed.status !== result.status && { previousStatus: claimed.status }),
    ...(result.atlasErrorMessage !== undefined && { errorMessage: result.atlasErrorMessage }),
    ...result.answer,
    statusSince,
  });
}

/** An extra endpoint of the key, deleted or found: one eventId per endpoint, whichever request meets it. */
export function duplicateEvent(
  ctx: ProvisionContext,
  outcome: 'DUPLICATE_DELETED' | 'DUPLICATE_FOUND',
  at: Attempt,
  request: ProvisionRequest,
  claimed: LedgerItem,
  extra: AtlasEndpoint,
): StatusChangedDetail {
  const requester = requesterName(at);
  return statusEvent(outcome, request, {
    // The checker's id of the same fact for the same requester (status-change.ts itemDetails).
    eventId: requesterEventId(eventIdOf(outcome, claimed.key, extra.id), requester),
    requester,
    requestIds: [request.requestId],
    endpointId: extra.id,
    status: outcome === 'DUPLICATE_DELETED' ? 'DELETING' : extra.status,
    occurredAt: ctx.now().toISOString(),
  });
}

/**
 * The requester an event of this attempt is for: the one its channel names. A record no channel
 * names (a queue of no requester) is answered under a name no requester can have.
 */
export const requesterName = (at: Pick<Attempt, 'source'>): string =>
  at.source.requester?.name ?? UNIDENTIFIED;
export const UNIDENTIFIED = '(unidentified)';

/** An event of this attempt's request, stamped now. */
export function detail(
  ctx: ProvisionContext,
  outcome: Exclude<RecordOutcome, 'WAITING' | 'FOLLOWED' | 'FOLLOW_UP_DROPPED'>,
  at: Attempt,
  request: ProvisionRequest | undefined,
  extra: Pick<StatusChangedDetail, 'eventId'> & Partial<StatusChangedDetail>,
  requestId = request?.requestId,
): StatusChangedDetail {
  return statusEvent(outcome, request, {
    requester: requesterName(at),
    requestIds: requestId !== undefined ? [requestId] : [],
    // Only a message a requester sent is named: a hand-back's own id means nothing to anyone.
    ...(at.source.fromSender && { messageId: at.messageId }),
    ...extra,
    occurredAt: ctx.now().toISOString(),
  });
}
