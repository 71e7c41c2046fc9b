/**
 * Rules every ledger applies the same way, the DynamoDB one and the in-memory stand-in the unit
 * tests use: when a request starts a new lifecycle of its key, and which items the checker visits.
 */
import {
  type LedgerItem,
  MAX_REQUEST_IDS,
  type SettleResult,
  UNCONFIRMED_CREATE_TTL_MS,
  UNTRACKED,
} from '#ledger/item.ts';

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
 * The key's unconfirmed creates that may still land, for the provisioner and the checker alike:
 * one sent more than UNCONFIRMED_CREATE_TTL_MS ago is forgotten (an endpoint it made would have
 * shown by now), so an extra endpoint it cannot account for is someone else's, never deleted.
 */
export function freshUnconfirmedCreates(item: Pick<LedgerItem, 'unconfirmedCreates'>, now: Date): string[] {
  const since = now.getTime() - UNCONFIRMED_CREATE_TTL_MS;
  return (item.unconfirmedCreates ?? []).filter((sentAt) => Date.parse(sentAt) >= since);
}
