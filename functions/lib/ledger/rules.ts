/**
 * Rules every ledger applies the same way, the DynamoDB one and the in-memory stand-in the unit
 * tests use: when a request starts a new lifecycle of its key and whose requestIds it keeps, who
 * holds a key, who the checker acts for, which items the checker visits, and which pending events
 * of the outbox a newer one replaces.
 */
import type { StatusChangedDetail } from '#events/schema.ts';
import {
  type AppliedRequest,
  ENDPOINT_FAILURE_WINDOW_MS,
  type LedgerItem,
  MAX_ANSWERED,
  MAX_OUTBOX,
  MAX_REQUEST_IDS,
  type SettleResult,
  UNCONFIRMED_CREATE_TTL_MS,
  UNTRACKED,
} from '#ledger/item.ts';
import { DEFAULT_REQUESTER } from '#messages/requesters.ts';

/** Statuses of a key whose endpoint is gone: its lifecycle ended, and nobody holds it. */
export const ENDED: ReadonlySet<string> = new Set(['DELETED', 'MISSING']);

/** Whether settling `request` on `claimed` starts a new lifecycle of the key (its requestIds start again). */
export function startsLifecycle(
  claimed: Pick<LedgerItem, 'action' | 'status'>,
  action: 'create' | 'delete',
): boolean {
  return claimed.action !== action || (action === 'create' && UNTRACKED.has(claimed.status));
}

/** The requester a settled request is recorded for: the one it names, else DEFAULT_REQUESTER. */
export const requesterOf = (request: SettleResult['request']): string =>
  request.requester ?? DEFAULT_REQUESTER;

/**
 * The key's requestIds per requester after answering `request`: its requester's list gains the
 * requestId (most recent last, each once, at most MAX_REQUEST_IDS), so no other requester's
 * traffic pushes it out.
 *
 * A new lifecycle (startsLifecycle: a change of action, or a create on a key left without an
 * endpoint) restarts the answering requester's list. The other requesters' lists are cleared only
 * when the previous lifecycle had ended (the key's status is DELETED or MISSING: its endpoint is
 * gone, the last thing there was to tell them); otherwise they are kept, so a requester whose
 * endpoint another requester's delete takes away still hears DELETING and DELETED. Lists are
 * per key and bounded, so a key's requesters are as bounded as the registry.
 */
export function nextRequesters(
  claimed: Pick<LedgerItem, 'action' | 'status' | 'requesters'>,
  request: SettleResult['request'],
): Record<string, string[]> {
  const requester = requesterOf(request);
  const fresh = startsLifecycle(claimed, request.action);
  const others = fresh && ENDED.has(claimed.status) ? {} : claimed.requesters;
  const kept = fresh ? [] : (claimed.requesters[requester] ?? []);
  const { [requester]: _, ...rest } = others;
  return {
    ...rest,
    [requester]: [...kept.filter((id) => id !== request.requestId), request.requestId].slice(
      -MAX_REQUEST_IDS,
    ),
  };
}

/**
 * Request order: the key's `applied` after settling `request`: its requester's entry becomes this
 * request when it was sent later than the one recorded (an older one settled, a wait of it, never
 * moves it back). Undefined when the request has no send time (nothing to write).
 */
export function nextApplied(
  claimed: Pick<LedgerItem, 'applied'>,
  request: SettleResult['request'],
): Record<string, AppliedRequest> | undefined {
  if (request.sentAt === undefined) return undefined;
  const requester = requesterOf(request);
  const recorded = claimed.applied?.[requester];
  if (recorded !== undefined && recorded.sentAt > request.sentAt) return { ...claimed.applied };
  return {
    ...claimed.applied,
    [requester]: { sentAt: request.sentAt, requestId: request.requestId, action: request.action },
  };
}

/** The holds the key records now: none once its endpoint is gone. */
const heldBy = (item: Pick<LedgerItem, 'holds' | 'status'>): string[] =>
  ENDED.has(item.status) ? [] : (item.holds ?? []);

/**
 * The key's holds with `requester` among them (a create): each requester once, oldest first, so a
 * requester's repeated create is one hold, released by one delete.
 */
export function withHold(item: Pick<LedgerItem, 'holds' | 'status'>, requester: string): string[] {
  const holds = heldBy(item);
  return holds.includes(requester) ? [...holds] : [...holds, requester];
}

/** The key's holds without `requester` (its delete). */
export function withoutHold(item: Pick<LedgerItem, 'holds' | 'status'>, requester: string): string[] {
  return heldBy(item).filter((name) => name !== requester);
}

/**
 * The requester the status checker acts for when it sends the key back to the provisioner: the
 * first (oldest) hold, else the requester answered last (whose list holds the most recent
 * answered request), else DEFAULT_REQUESTER.
 */
export function actingRequester(item: Pick<LedgerItem, 'holds' | 'status' | 'lastRequester'>): string {
  return heldBy(item)[0] ?? item.lastRequester ?? DEFAULT_REQUESTER;
}

/**
 * Whether a key can be retired (its project gone): it is not gone already, and it has an endpoint,
 * a create in doubt or a recreation the sweep or the provisioner would go on with. A key with none
 * (a request answered with nothing, parked) has nothing to retire.
 */
export const isRetirable = (
  item: Pick<LedgerItem, 'status' | 'endpointId' | 'pendingCreate' | 'recreating'>,
): boolean =>
  !ENDED.has(item.status) &&
  (item.endpointId !== undefined || item.pendingCreate !== undefined || item.recreating === true);

/** Whether the checker visits an item: a followed endpoint, or events to announce. */
export const isTracked = (item: Pick<LedgerItem, 'status' | 'endpointId' | 'outbox'>) =>
  (item.endpointId !== undefined && !UNTRACKED.has(item.status)) || Object.keys(item.outbox ?? {}).length > 0;

/**
 * The profile a key is bound to: the one its endpoint was made with, while the key has an
 * endpoint, a create in doubt or a FAILED endpoint being recreated; undefined when it has none.
 */
export function boundProfile(
  item: Pick<LedgerItem, 'profile' | 'status' | 'endpointId' | 'pendingCreate' | 'recreating'>,
): string | undefined {
  const bound =
    item.pendingCreate !== undefined ||
    item.recreating === true ||
    (item.endpointId !== undefined && !UNTRACKED.has(item.status));
  return bound ? item.profile : undefined;
}

/**
 * The key's unconfirmed creates that may still land, for the provisioner and the checker alike:
 * one sent more than UNCONFIRMED_CREATE_TTL_MS ago is forgotten (an endpoint it made would have
 * shown by now), so an extra endpoint it cannot account for is someone else's, never deleted.
 */
export function freshUnconfirmedCreates(item: Pick<LedgerItem, 'unconfirmedCreates'>, now: Date): string[] {
  const since = now.getTime() - UNCONFIRMED_CREATE_TTL_MS;
  return (item.unconfirmedCreates ?? []).filter((sentAt) => Date.parse(sentAt) >= since);
}

/** The times the key's endpoints were met FAILED in the last day (ENDPOINT_FAILURE_WINDOW_MS). */
export function endpointFailuresToday(item: Pick<LedgerItem, 'endpointFailedAt'>, now: Date): string[] {
  const since = now.getTime() - ENDPOINT_FAILURE_WINDOW_MS;
  return (item.endpointFailedAt ?? []).filter((at) => Date.parse(at) > since);
}

/**
 * The outcomes that report an endpoint's status as the sweep and the follow-ups record it, by
 * kind: its status (STATUS_CHANGED, and DELETED or MISSING when it is gone), and its being stuck.
 */
const STATUS_KINDS: Readonly<Record<string, 'status' | 'stuck'>> = {
  STATUS_CHANGED: 'status',
  DELETED: 'status',
  MISSING: 'status',
  STUCK: 'stuck',
};

/**
 * What a pending event reports the latest value of, when it is a status of an endpoint: its key,
 * its endpointId and the kind of report (status, or stuck). Undefined for every other event,
 * which is a fact of its own and never replaced:
 * - an answer to a request (it carries the `messageId` of the message it answers, even an answer
 *   that names a status, e.g. `DELETED`): a requester matching answers by messageId or by requestId
 *   would wait for it forever;
 * - an event that names another endpoint (`RECREATED`, `ADOPTED`: the key now follows a new id),
 *   an extra endpoint (`DUPLICATE_*`, `UNCLAIMED`) or no endpoint.
 */
export function statusSlot(event: StatusChangedDetail): string | undefined {
  const kind = STATUS_KINDS[event.outcome];
  if (kind === undefined || event.messageId !== undefined) return undefined;
  if (event.naturalKey === undefined || event.endpointId === undefined) return undefined;
  return JSON.stringify([event.naturalKey, event.endpointId, kind, event.requester]);
}

/**
 * The pending events (eventIds) that `events`, recorded now, replace: an older status of the same
 * endpoint and kind (statusSlot) that EventBridge has not taken yet, when the newer one reaches
 * every requestId the older one did (a new lifecycle of the key starts a new list: a status of
 * the old one still reaches requesters the new one does not name, and stays). A requester needs
 * an endpoint's latest status, not each one EventBridge was down for: an endpoint flapping
 * through an outage keeps one pending status (and one stuck report) per requester set.
 */
export function supersededBy(
  pending: Readonly<Record<string, StatusChangedDetail>> | undefined,
  events: readonly StatusChangedDetail[],
): string[] {
  const fresh = new Set(events.map((e) => e.eventId));
  return Object.values(pending ?? {})
    .filter((older) => {
      const slot = statusSlot(older);
      if (slot === undefined || fresh.has(older.eventId)) return false;
      return events.some(
        (newer) =>
          statusSlot(newer) === slot && older.requestIds.every((id) => newer.requestIds.includes(id)),
      );
    })
    .map((older) => older.eventId);
}

/**
 * Whether an outbox holding `size` events can take `added` new ones in place of `replaced`
 * pending ones (credited only when all of them are still there): the one bound, MAX_OUTBOX, that
 * every write to an outbox keeps, the provisioner's settle, the sweep's and the follow-ups'
 * recordCheck. The DynamoDB ledger states the same as its condition.
 */
export function outboxHasRoom(
  size: number,
  added: number,
  replaced: { count: number; allPresent: boolean },
): boolean {
  if (size + added <= MAX_OUTBOX) return true;
  return replaced.count > 0 && replaced.allPresent && size + added - replaced.count <= MAX_OUTBOX;
}

/**
 * The answers a key remembers after answering the delivery `recordMessageId` with `answer`: one
 * per delivery, the MAX_ANSWERED most recent (by when they were given), so a redelivery of an
 * answered message is answered with the same fact.
 */
export function withAnswer(
  item: Pick<LedgerItem, 'answered'>,
  recordMessageId: string,
  answer: StatusChangedDetail,
): Record<string, StatusChangedDetail> {
  const entries = Object.entries({ ...item.answered, [recordMessageId]: answer });
  entries.sort(([, a], [, b]) => a.occurredAt.localeCompare(b.occurredAt));
  return Object.fromEntries(entries.slice(-MAX_ANSWERED));
}
