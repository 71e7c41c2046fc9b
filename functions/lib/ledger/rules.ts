/**
 * Rules every ledger applies the same way, the DynamoDB one and the in-memory stand-in the unit
 * tests use: when a request starts a new lifecycle of its key and whose requestIds it keeps, who
 * holds a key, who the checker acts for, and which items the checker visits.
 */
import {
  type LedgerItem,
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
