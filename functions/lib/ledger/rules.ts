/**
 * Rules every ledger applies the same way, the DynamoDB one and the in-memory stand-in the unit
 * tests use: when a request starts a new lifecycle of its key, which items the checker visits,
 * and which pending events of the outbox a newer one replaces.
 */
import type { StatusChangedDetail } from '#events/schema.ts';
import { type LedgerItem, MAX_OUTBOX, MAX_REQUEST_IDS, type SettleResult, UNTRACKED } from '#ledger/item.ts';

/** Whether settling `request` on `claimed` starts a new lifecycle of the key (its requestIds start again). */
export function startsLifecycle(claimed: LedgerItem, action: 'create' | 'delete'): boolean {
  return claimed.action !== action || (action === 'create' && UNTRACKED.has(claimed.status));
}

/** The requestIds after answering `requestId`: bounded, most recent last, each once. */
export function nextRequestIds(claimed: LedgerItem, request: SettleResult['request']): string[] {
  const kept = startsLifecycle(claimed, request.action) ? [] : claimed.requestIds;
  return [...kept.filter((id) => id !== request.requestId), request.requestId].slice(-MAX_REQUEST_IDS);
}

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
  return JSON.stringify([event.naturalKey, event.endpointId, kind]);
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
