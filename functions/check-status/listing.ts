/**
 * Listing a project: the checker asks Atlas once per project and provider per run, and finds an
 * item's endpoint in that listing by id, or the endpoints for its key by region.
 */
import { MetricUnit } from '@aws-lambda-powertools/metrics';
import { type AtlasEndpoint, CLOUD_PROVIDERS, type CloudProvider } from '#atlas/types.ts';
import type { LedgerItem } from '#ledger/ledger.ts';
import { describeFailure, isProjectNotFound } from '#lib/errors.ts';
import { METRIC } from '#runtime/metric-names.ts';
import { type CheckerDeps, type Listing, outOfTime, type Run } from './run.ts';

type ListingDeps = Pick<CheckerDeps, 'atlas' | 'logger' | 'metrics' | 'now'>;

export const isCloudProvider = (value: string): value is CloudProvider =>
  (CLOUD_PROVIDERS as readonly string[]).includes(value);

/** An endpoint's or an item's key within its project: region and VPC region. */
export const endpointKey = (e: { regionName: string; vpcRegionName?: string }) =>
  `${e.regionName}#${e.vpcRegionName ?? e.regionName}`;

// Stryker disable next-line StringLiteral: equivalent; a groupId is 24 hex characters, so no two projects' parts join alike
const projectKey = (item: LedgerItem) => [item.profile, item.groupId, item.cloudProvider].join('\u0000');

/** Items per project and provider, in the order their first item came (least recently checked first). */
export function groupByProject(items: LedgerItem[]): Map<string, LedgerItem[]> {
  const groups = new Map<string, LedgerItem[]>();
  for (const item of items) {
    const key = projectKey(item);
    const group = groups.get(key);
    if (group) group.push(item);
    else groups.set(key, [item]);
  }
  return groups;
}

/**
 * One paginated list per project and provider per run, shared by the items of every ledger page;
 * undefined when the run is out of time to start another.
 */
export function listingFor(deps: ListingDeps, item: LedgerItem, run: Run): Promise<Listing> | undefined {
  const key = projectKey(item);
  const known = run.listings.get(key);
  if (known) return known;
  if (outOfTime(run)) return undefined;
  run.summary.projects += 1;
  const listing = list(deps, item);
  run.listings.set(key, listing);
  return listing;
}

async function list(deps: ListingDeps, { profile, groupId, cloudProvider }: LedgerItem): Promise<Listing> {
  const context = { profile, groupId, cloudProvider };
  if (!isCloudProvider(cloudProvider)) {
    deps.logger.error('the ledger names a cloud provider this version does not know', context);
    return { ok: false };
  }
  const listedAt = deps.now().toISOString();
  try {
    const endpoints = await deps.atlas.withClient(profile, (client) =>
      client.listEndpoints(groupId, cloudProvider),
    );
    const byKey = new Map<string, AtlasEndpoint[]>();
    for (const e of endpoints) byKey.set(endpointKey(e), [...(byKey.get(endpointKey(e)) ?? []), e]);
    return { ok: true, byId: new Map(endpoints.map((e) => [e.id, e])), byKey, listedAt };
  } catch (error) {
    const failure = describeFailure(error);
    if (isProjectNotFound(error)) {
      // Counted (it alarms) until a later run confirms it and the project's keys are retired.
      deps.logger.error(
        'Atlas says the project does not exist; its keys are retired once a later run confirms it',
        {
          ...context,
          failure,
        },
      );
      deps.metrics.addMetric(METRIC.checkFailed, MetricUnit.Count, 1);
      return {
        ok: false,
        gone: { listedAt, error: { code: failure.code, httpStatus: error.status, detail: failure.detail } },
      };
    }
    if (failure.disposition === 'retry') {
      // 429, 5xx, timeouts: Atlas said nothing about the endpoints; ask again next run.
      deps.logger.warn('could not list the project; its endpoints are checked next run', {
        ...context,
        failure,
      });
    } else {
      deps.logger.error('could not list the project; an operator must act', { ...context, failure });
      deps.metrics.addMetric(METRIC.checkFailed, MetricUnit.Count, 1);
    }
    return { ok: false };
  }
}
