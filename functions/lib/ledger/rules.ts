/**
 * Rules every ledger applies the same way, the DynamoDB one and the in-memory stand-in the unit
 * tests use: when a request starts a new lifecycle of its key, and which items the checker visits.
 */
import { type LedgerItem, MAX_REQUEST_IDS, type SettleResult, UNTRACKED } from '#ledger/item.ts';

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
