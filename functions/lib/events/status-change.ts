/**
 * A status change of a followed endpoint, as the status checker's sweep and the provisioner's
 * follow-ups both record and announce it: one builder, so one fact always has one eventId,
 * whichever of them saw it first (the ledger write is conditional on the status read, so only
 * one of them records it).
 */

import type { AtlasEndpoint } from '#atlas/types.ts';
import { eventIdOf, type Outcome, type StatusChangedDetail, statusEvent } from '#events/status-event.ts';
import { actingRequester, type CheckResult, type LedgerItem, type LedgerStatus } from '#ledger/ledger.ts';
import { DEFAULT_REQUESTER } from '#messages/requesters.ts';

/** Statuses a follow-up stops at: done, failed, gone, or waiting on a person. */
export const SETTLED: ReadonlySet<string> = new Set([
  'ACTIVE',
  'FAILED',
  'PENDING_ACCEPTANCE',
  'REQUESTED',
  'DELETED',
  'MISSING',
]);

/**
 * The requesters an event about the item goes to, each with its requestIds: every requester with
 * requestIds on the key, in name order; with none, DEFAULT_REQUESTER with no requestIds.
 */
export function audience(
  item: Pick<LedgerItem, 'requesters'>,
): Array<[requester: string, requestIds: string[]]> {
  const lists = Object.entries(item.requesters)
    .filter(([, ids]) => ids.length > 0)
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return lists.length > 0 ? lists : [[DEFAULT_REQUESTER, []]];
}

/**
 * The eventId of one requester's event of a fact: the fact's eventId and the requester's name,
 * so each requester's event is a fact of its own (and the same on every announcement of it).
 */
export const requesterEventId = (factEventId: string, requester: string): string =>
  eventIdOf(factEventId, requester);

/**
 * The status events about a ledger item: one per requester with requestIds on the key (audience),
 * each with its own requestIds and eventId (requesterEventId of `extra.eventId`, the fact's), its
 * key and its endpoint; otherwise the same.
 */
export function itemDetails(
  outcome: Outcome,
  item: LedgerItem,
  extra: Pick<StatusChangedDetail, 'eventId' | 'status' | 'occurredAt'> & Partial<StatusChangedDetail>,
): StatusChangedDetail[] {
  return audience(item).map(([requester, requestIds]) =>
    statusEvent(outcome, item, {
      requester,
      requestIds,
      ...(item.endpointId !== undefined && { endpointId: item.endpointId }),
      ...extra,
      eventId: requesterEventId(extra.eventId, requester),
    }),
  );
}

/** What Atlas no longer listing (or a 404 for) the item's endpoint means. */
export const goneStatus = (item: LedgerItem): LedgerStatus =>
  item.action === 'delete' || item.status === 'DELETING' ? 'DELETED' : 'MISSING';

/**
 * The item's endpoint is now `result.status`: the result to record (with the statusSince the
 * events announce) and the events, one per requester (itemDetails). `handBack` when a create's
 * endpoint FAILED.
 */
export function statusChange(
  item: LedgerItem,
  result: CheckResult,
  now: Date,
): { result: CheckResult; events: StatusChangedDetail[] } {
  const outcome: Outcome =
    result.status === 'DELETED' ? 'DELETED' : result.status === 'MISSING' ? 'MISSING' : 'STATUS_CHANGED';
  // The statusSince announced is the one recorded: one fact, one eventId.
  const statusSince = now.toISOString();
  return {
    result: { ...result, statusSince },
    events: itemDetails(outcome, item, {
      eventId: eventIdOf(outcome, item.key, item.endpointId, result.status, statusSince),
      previousStatus: item.status,
      status: result.status,
      ...(result.atlasErrorMessage !== undefined && { errorMessage: result.atlasErrorMessage }),
      statusSince,
      occurredAt: now.toISOString(),
    }),
  };
}

/** Why a key is retired: Atlas's answer that its project is gone, or an operator's word. */
export interface RetireReason {
  code: string;
  httpStatus?: number;
  detail: string;
}

/**
 * A key retired because its project no longer exists (the sweep, once Atlas said so twice) or by
 * an operator (`npm run retire`): MISSING, as any endpoint gone without a delete, with the reason
 * as the events' `error` and the item's `lastError`. Nobody holds it and it is no longer followed
 * once its events are sent; a create in doubt or a recreation is forgotten (nothing can land in a
 * project that is gone). One event per requester (itemDetails).
 */
export function retirement(
  item: LedgerItem,
  reason: RetireReason,
  now: Date,
): { result: CheckResult; events: StatusChangedDetail[] } {
  const statusSince = now.toISOString();
  return {
    result: {
      status: 'MISSING',
      statusSince,
      fields: {
        lastError: { ...reason, at: statusSince },
        projectGoneSince: undefined,
        pendingCreate: undefined,
        recreating: undefined,
      },
    },
    events: itemDetails('MISSING', item, {
      eventId: eventIdOf('MISSING', item.key, item.endpointId, 'MISSING', statusSince),
      previousStatus: item.status,
      status: 'MISSING',
      error: reason,
      statusSince,
      occurredAt: statusSince,
    }),
  };
}

/**
 * What became of a create's endpoint that Atlas no longer lists, given the key's other live
 * endpoints (not DELETING). Atlas recreates an endpoint the cloud side rejected or removed:
 * PENDING_RECREATION, then a new endpoint for the same regions under a new id.
 * - `recreated`: it was seen PENDING_RECREATION and one new endpoint took its place.
 * - `adopted`: the recreation was not seen (or the endpoint was replaced some other way), and
 *   exactly one other endpoint stands for the key. It is followed as the key's endpoint: a create
 *   request would adopt it anyway (Atlas holds one endpoint per region), so reporting it as
 *   missing would only make the next create do the same, after an alarm nobody can act on.
 * - `waiting`: seen PENDING_RECREATION, gone, and its successor not listed yet (STUCK past the
 *   in-progress deadline, like any status in progress).
 * - `gone`: nothing took its place, or more than one endpoint did (an operator decides which).
 */
export type Successor =
  | { kind: 'recreated' | 'adopted'; endpoint: AtlasEndpoint }
  | { kind: 'waiting' }
  | { kind: 'gone' };

export function successorOf(item: LedgerItem, others: readonly AtlasEndpoint[]): Successor {
  if (item.action !== 'create' || item.status === 'DELETING') return { kind: 'gone' };
  const recreating = item.status === 'PENDING_RECREATION';
  const [only, ...more] = others;
  if (only && more.length === 0) return { kind: recreating ? 'recreated' : 'adopted', endpoint: only };
  return recreating && !only ? { kind: 'waiting' } : { kind: 'gone' };
}

/**
 * The key follows `successor.endpoint`: the result to record (the new endpointId, its status) and
 * the events (one per requester, itemDetails) that name the old and the new id. A successor that
 * is FAILED goes back to the provisioner, as any FAILED endpoint of a create.
 */
export function successorChange(
  item: LedgerItem,
  successor: { kind: 'recreated' | 'adopted'; endpoint: AtlasEndpoint },
  now: Date,
): { result: CheckResult; events: StatusChangedDetail[] } {
  const { endpoint } = successor;
  const outcome: Outcome = successor.kind === 'recreated' ? 'RECREATED' : 'ADOPTED';
  const changed = endpoint.status !== item.status;
  // The statusSince announced is the one recorded (recordCheck keeps it when the status is the same).
  const statusSince = changed ? now.toISOString() : item.statusSince;
  const handBack = endpoint.status === 'FAILED';
  return {
    result: {
      status: endpoint.status,
      ...(endpoint.errorMessage !== undefined && { atlasErrorMessage: endpoint.errorMessage }),
      statusSince,
      ...(handBack && { handBack }),
      fields: { endpointId: endpoint.id },
    },
    events: itemDetails(outcome, item, {
      eventId: eventIdOf(outcome, item.key, item.endpointId, endpoint.id),
      endpointId: endpoint.id,
      ...(item.endpointId !== undefined && { previousEndpointId: item.endpointId }),
      previousStatus: item.status,
      status: endpoint.status,
      ...(endpoint.errorMessage !== undefined && { errorMessage: endpoint.errorMessage }),
      statusSince,
      occurredAt: now.toISOString(),
    }),
  };
}

/**
 * The create request that sends a key whose endpoint FAILED back to the provisioner: the last
 * requestId of the requester it acts for (rules.ts actingRequester).
 */
export function handBackRequest(item: LedgerItem) {
  return {
    requestId:
      item.requesters[actingRequester(item)]?.at(-1) ?? `recreate-${eventIdOf(item.key, item.endpointId)}`,
    action: 'create' as const,
    groupId: item.groupId,
    cloudProvider: item.cloudProvider,
    regionName: item.regionName,
    ...(item.vpcRegionName !== undefined && { vpcRegionName: item.vpcRegionName }),
    profile: item.profile,
  };
}
