/**
 * Extra endpoints: Atlas lists more than one for a key. Those the provisioner's creates in doubt
 * made are deleted; the others are announced once each, and the item remembers which.
 */
import { MetricUnit } from '@aws-lambda-powertools/metrics';
import type { AtlasEndpoint } from '#atlas/types.ts';
import { itemDetails } from '#events/status-change.ts';
import { eventIdOf, type StatusChangedDetail } from '#events/status-event.ts';
import { type CheckResult, freshUnconfirmedCreates, type LedgerItem } from '#ledger/ledger.ts';
import { describeFailure, isEndpointNotFound } from '#lib/errors.ts';
import { METRIC } from '#runtime/metric-names.ts';
import { isCloudProvider } from './listing.ts';
import { type CheckerDeps, type CheckSummary, logKeys } from './run.ts';

/** Extra endpoints reported per key at most (each once). */
const MAX_REPORTED = 10;

/** The item moved on since it was read (or could not be proven not to): nothing was done in Atlas. */
export const MOVED = 'MOVED';

/** What extras add to a check: bookkeeping, events, and the updatedAt proven before a delete. */
export interface ExtrasResult {
  fields?: CheckResult['fields'];
  events: StatusChangedDetail[];
  updatedAt?: string;
}

/**
 * Endpoints for the key beside the ledger's: deleted when creates in doubt account for them,
 * else reported once each (and counted every run, for the alarm) and left for an operator.
 * Deleting takes proof first that the ledger read still holds: `updatedAt` is then what the check
 * records against; MOVED when it does not hold.
 */
export async function resolveExtras(
  deps: Pick<CheckerDeps, 'atlas' | 'ledger' | 'logger' | 'metrics'>,
  item: LedgerItem,
  live: AtlasEndpoint[],
  now: Date,
  summary: CheckSummary,
): Promise<ExtrasResult | typeof MOVED | undefined> {
  const extras = live.filter((e) => e.id !== item.endpointId);
  if (extras.length === 0) return undefined;
  // A create still in doubt may have made one of them: the provisioner settles it under the key's
  // lease (it lists the key first), so nothing is deleted or reported as a duplicate meanwhile.
  if (item.pendingCreate) return undefined;
  // Forgotten as the provisioner forgets them: one rule for both (rules.ts).
  const unconfirmed = freshUnconfirmedCreates(item, now);
  const leased = item.lease !== undefined && item.lease.expiresAt >= now.getTime();
  const provider = item.cloudProvider;
  if (!leased && extras.length <= unconfirmed.length && isCloudProvider(provider)) {
    // The item was read before the listing: a provisioner may have answered the key since (a new
    // endpoint, the lease), making an "extra" its answer. Proven unchanged before any delete.
    const updatedAt = await confirmUnchanged(deps, item);
    if (updatedAt === undefined) return MOVED;
    const deleted: AtlasEndpoint[] = [];
    for (const extra of extras) {
      try {
        await deps.atlas.withClient(item.profile, (client) =>
          client.deleteEndpoint(item.groupId, provider, extra.id),
        );
        deleted.push(extra);
      } catch (error) {
        if (isEndpointNotFound(error)) deleted.push(extra);
        else if (describeFailure(error).disposition === 'dlq') {
          // A missing project, credentials for another Atlas: nothing a later run fixes alone.
          deps.logger.error('could not delete an extra endpoint; an operator must act', {
            ...logKeys(item),
            endpointId: extra.id,
            failure: describeFailure(error),
          });
          deps.metrics.addMetric(METRIC.checkFailed, MetricUnit.Count, 1);
        } else deps.logger.warn('could not delete an extra endpoint; tried again next run', { error });
      }
    }
    if (deleted.length === 0) return { updatedAt, events: [] };
    summary.duplicatesDeleted += deleted.length;
    deps.logger.warn('deleted extra endpoints made by creates in doubt', {
      ...logKeys(item),
      deleted: deleted.map((e) => e.id),
    });
    return {
      updatedAt,
      fields: { unconfirmedCreates: unconfirmed.slice(deleted.length) },
      events: deleted.flatMap((extra) =>
        itemDetails('DUPLICATE_DELETED', item, {
          eventId: eventIdOf('DUPLICATE_DELETED', item.key, extra.id),
          endpointId: extra.id,
          status: 'DELETING',
          occurredAt: now.toISOString(),
        }),
      ),
    };
  }
  deps.metrics.addMetric(METRIC.duplicateEndpoints, MetricUnit.Count, extras.length);
  const report = reportOnce('DUPLICATE_FOUND', item, extras, now);
  if (report) {
    deps.logger.error('more than one endpoint for the key, not all made by this provisioner', {
      ...logKeys(item),
      extras: report.events.map((e) => e.endpointId),
    });
  }
  return report;
}

/** The item's new updatedAt once proven unchanged since it was read; undefined when it moved on. */
async function confirmUnchanged(
  deps: Pick<CheckerDeps, 'ledger' | 'logger'>,
  item: LedgerItem,
): Promise<string | undefined> {
  try {
    const updatedAt = await deps.ledger.confirmUnchanged(item.key, item.updatedAt);
    if (updatedAt === undefined) {
      deps.logger.debug(
        'the item changed since it was read; its extras are looked at next run',
        logKeys(item),
      );
    }
    return updatedAt;
  } catch (error) {
    deps.logger.error('could not confirm the item before deleting its extras; tried again next run', {
      ...logKeys(item),
      error,
    });
    return undefined;
  }
}

/** Events for endpoints not announced yet, and the item's `reported` list that remembers them. */
export function reportOnce(
  outcome: 'DUPLICATE_FOUND' | 'UNCLAIMED',
  item: LedgerItem,
  endpoints: AtlasEndpoint[],
  now: Date,
) {
  const reported = item.reported ?? [];
  const fresh = endpoints.filter((e) => !reported.includes(e.id));
  if (fresh.length === 0) return undefined;
  return {
    fields: { reported: [...reported, ...fresh.map((e) => e.id)].slice(-MAX_REPORTED) },
    events: fresh.flatMap((e) =>
      itemDetails(outcome, item, {
        eventId: eventIdOf(outcome, item.key, e.id),
        endpointId: e.id,
        status: e.status,
        occurredAt: now.toISOString(),
      }),
    ),
  };
}
