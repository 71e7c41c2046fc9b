/**
 * A status change of a followed endpoint, as the status checker's sweep and the provisioner's
 * follow-ups both record and announce it: one builder, so one fact always has one eventId,
 * whichever of them saw it first (the ledger write is conditional on the status read, so only
 * one of them records it).
 */

import { eventIdOf, type Outcome, type StatusChangedDetail, statusEvent } from '#events/status-event.ts';
import type { CheckResult, LedgerItem, LedgerStatus } from '#ledger/ledger.ts';

/** Statuses a follow-up stops at: done, failed, gone, or waiting on a person. */
export const SETTLED: ReadonlySet<string> = new Set([
  'ACTIVE',
  'FAILED',
  'PENDING_ACCEPTANCE',
  'REQUESTED',
  'DELETED',
  'MISSING',
]);

/** A status event about a ledger item: its key, its requestIds and its endpoint. */
export function itemDetail(
  outcome: Outcome,
  item: LedgerItem,
  extra: Pick<StatusChangedDetail, 'eventId' | 'status' | 'occurredAt'> & Partial<StatusChangedDetail>,
): StatusChangedDetail {
  return statusEvent(outcome, item, {
    requestIds: item.requestIds,
    ...(item.endpointId !== undefined && { endpointId: item.endpointId }),
    ...extra,
  });
}

/** What Atlas no longer listing (or a 404 for) the item's endpoint means. */
export const goneStatus = (item: LedgerItem): LedgerStatus =>
  item.action === 'delete' || item.status === 'DELETING' ? 'DELETED' : 'MISSING';

/**
 * The item's endpoint is now `result.status`: the result to record (with the statusSince the
 * event announces) and the event. `handBack` when a create's endpoint FAILED.
 */
export function statusChange(
  item: LedgerItem,
  result: CheckResult,
  now: Date,
): { result: CheckResult; event: StatusChangedDetail } {
  const outcome: Outcome =
    result.status === 'DELETED' ? 'DELETED' : result.status === 'MISSING' ? 'MISSING' : 'STATUS_CHANGED';
  // The statusSince announced is the one recorded: one fact, one eventId.
  const statusSince = now.toISOString();
  return {
    result: { ...result, statusSince },
    event: itemDetail(outcome, item, {
      eventId: eventIdOf(outcome, item.key, item.endpointId, result.status, statusSince),
      previousStatus: item.status,
      status: result.status,
      ...(result.atlasErrorMessage !== undefined && { errorMessage: result.atlasErrorMessage }),
      statusSince,
      occurredAt: now.toISOString(),
    }),
  };
}

/** The create request that sends a key whose endpoint FAILED back to the provisioner. */
export function handBackRequest(item: LedgerItem) {
  return {
    requestId: item.requestIds.at(-1) ?? `recreate-${eventIdOf(item.key, item.endpointId)}`,
    action: 'create' as const,
    groupId: item.groupId,
    cloudProvider: item.cloudProvider,
    regionName: item.regionName,
    ...(item.vpcRegionName !== undefined && { vpcRegionName: item.vpcRegionName }),
    profile: item.profile,
  };
}
