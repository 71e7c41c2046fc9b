/**
 * The status checker's domain: follows every tracked endpoint in Atlas with one paginated list
 * per project and provider, records what it finds in the ledger, and announces changes, stuck
 * endpoints and drift. Atlas failures leave the project's items untouched: they stay the least
 * recently checked, so the next run takes them first and nothing is starved.
 */
import type { Logger } from '@aws-lambda-powertools/logger';
import { type Metrics, MetricUnit } from '@aws-lambda-powertools/metrics';
import type { AtlasClient } from '#atlas/client.ts';
import { ATLAS_STATUSES, type AtlasEndpoint, CLOUD_PROVIDERS, type CloudProvider } from '#atlas/types.ts';
import { Limiter } from '#lib/concurrency.ts';
import { describeFailure } from '#lib/errors.ts';
import type { StatusEvents } from '#lib/events.ts';
import type { Ledger, LedgerItem, LedgerStatus } from '#lib/ledger.ts';
import type { Outcome, StatusChangedDetail } from '#lib/status-event.ts';
import { METRIC } from '#lib/telemetry.ts';

/** The Atlas operation the checker uses. */
export type ListingApi = Pick<AtlasClient, 'listEndpoints'>;

export interface Deadlines {
  /** Minutes in PENDING_ACCEPTANCE before an endpoint is reported stuck. */
  pendingAcceptanceMinutes: number;
  /** Minutes in an in-progress status (INITIATING, PENDING_RECREATION, DELETING, unknown). */
  inProgressMinutes: number;
}

export interface StatusCheckerOptions {
  ledger: Pick<Ledger, 'listTracked' | 'recordCheck'>;
  atlas: { withClient<T>(profile: string, fn: (client: ListingApi) => Promise<T>): Promise<T> };
  events: Pick<StatusEvents, 'publish'>;
  logger: Logger;
  metrics: Pick<Metrics, 'addMetric'>;
  deadlines: Deadlines;
  /** Projects checked at once. */
  projectConcurrency: number;
  /**
   * No project is started once less than this much of the invocation remains. Capped at half
   * the time left when the run starts, so that a short timeout still checks something.
   */
  safetyMarginMs: number;
  /** Ledger items read per query (DynamoDB also stops a page at 1 MB). Default 1000. */
  pageSize?: number;
  /** Ledger writes in flight at once, across projects. Default 16. */
  writeConcurrency?: number;
  now?: () => Date;
}

export interface CheckSummary {
  /** Items compared with Atlas's listing and recorded. */
  checked: number;
  /** Items whose status changed (including those now DELETED or MISSING). */
  changed: number;
  /** Items newly reported stuck past their deadline. */
  stuck: number;
  /** Items whose endpoint disappeared from Atlas while not being deleted (drift). */
  missing: number;
  /** Items left untouched for the next run: Atlas or the ledger failed, or time ran out. */
  skipped: number;
  /** Project listings made (one paginated list each). */
  projects: number;
  /** The run stopped starting projects to finish before the function's timeout. */
  stoppedEarly: boolean;
}

/** Which deadline applies to a status, if any. Unknown statuses count as in progress. */
export function deadlineOf(status: LedgerStatus): keyof Deadlines | undefined {
  if (status === 'PENDING_ACCEPTANCE') return 'pendingAcceptanceMinutes';
  if (NO_DEADLINE.has(status)) return undefined;
  return 'inProgressMinutes';
}

/** Settled statuses, and the ledger's own (never followed). */
const NO_DEADLINE: ReadonlySet<string> = new Set(['ACTIVE', 'FAILED', 'REQUESTED', 'DELETED', 'MISSING']);
const KNOWN: ReadonlySet<string> = new Set(ATLAS_STATUSES);
const DEFAULT_PAGE_SIZE = 1_000;
const DEFAULT_WRITE_CONCURRENCY = 16;

const isCloudProvider = (value: string): value is CloudProvider =>
  (CLOUD_PROVIDERS as readonly string[]).includes(value);

/** `listedAt`: taken before the list call; an item written after it is newer than the listing. */
type Listing = { ok: true; byId: Map<string, AtlasEndpoint>; listedAt: string } | { ok: false };

interface Decision {
  item: LedgerItem;
  result: { status: LedgerStatus; atlasErrorMessage?: string; stuck?: boolean };
  kind: 'unchanged' | 'changed' | 'stuck';
  event?: StatusChangedDetail;
}

/** State of one run. */
interface Run {
  startedAt: string;
  remainingMs: () => number;
  marginMs: number;
  listings: Map<string, Promise<Listing>>;
  /** Keys taken this run: never checked twice, whatever the clocks say. */
  seen: Set<string>;
  summary: CheckSummary;
}

export class StatusChecker {
  readonly #o: StatusCheckerOptions;
  readonly #now: () => Date;
  readonly #writes: Limiter;

  constructor(options: StatusCheckerOptions) {
    this.#o = options;
    this.#now = options.now ?? (() => new Date());
    this.#writes = new Limiter(options.writeConcurrency ?? DEFAULT_WRITE_CONCURRENCY);
  }

  /**
   * Checks tracked items, least recently checked first, until all are done or less than the
   * safety margin of `remainingMs()` is left. Throws only when the ledger cannot be read.
   */
  async run(options: { remainingMs: () => number }): Promise<CheckSummary> {
    const run: Run = {
      startedAt: this.#now().toISOString(),
      remainingMs: options.remainingMs,
      marginMs: Math.min(this.#o.safetyMarginMs, options.remainingMs() / 2),
      listings: new Map(),
      seen: new Set(),
      summary: { checked: 0, changed: 0, stuck: 0, missing: 0, skipped: 0, projects: 0, stoppedEarly: false },
    };
    const projects = new Limiter(this.#o.projectConcurrency);
    let startKey: Record<string, unknown> | undefined;
    do {
      if (this.#outOfTime(run)) break;
      const page = await this.#o.ledger.listTracked({
        limit: this.#o.pageSize ?? DEFAULT_PAGE_SIZE,
        ...(startKey && { startKey }),
      });
      // Items recorded by this run come round again at the end of the index: the run is done there.
      const due = page.items.filter((item) => item.checkedAt < run.startedAt && !run.seen.has(item.key));
      for (const item of due) run.seen.add(item.key);
      await Promise.all(
        [...groupByProject(due).values()].map((items) => projects.run(() => this.#checkProject(items, run))),
      );
      const wrapped = page.items.some((item) => item.checkedAt >= run.startedAt);
      startKey = wrapped ? undefined : page.nextKey;
    } while (startKey && !run.summary.stoppedEarly);

    this.#emitMetrics(run.summary);
    this.#o.logger.info('status check done', { ...run.summary });
    return run.summary;
  }

  #outOfTime(run: Run): boolean {
    if (run.remainingMs() >= run.marginMs) return false;
    run.summary.stoppedEarly = true;
    return true;
  }

  async #checkProject(items: LedgerItem[], run: Run): Promise<void> {
    const [first] = items;
    if (!first) return;
    const listing = await this.#listing(first, run);
    if (!listing?.ok) {
      run.summary.skipped += items.length;
      return;
    }
    // A listing is shared by later ledger pages: an item a provisioner wrote since it was taken
    // (a new endpoint, a delete) would be judged on an older Atlas; it is checked next run.
    const current = items.filter((item) => item.updatedAt <= listing.listedAt);
    run.summary.skipped += items.length - current.length;
    const now = this.#now();
    const decisions = current.map((item) => this.#decide(item, listing.byId, now));
    const details = decisions.flatMap((d) => (d.event ? [d.event] : []));
    // Announced before recorded: an event lost after the write would never be sent again, while
    // one sent twice (the write failing after it) is harmless. Events are at least once.
    let announced = true;
    if (details.length > 0) {
      try {
        await this.#o.events.publish(...details);
      } catch (error) {
        // Not recorded either, so the next run sees the same change and announces it again.
        announced = false;
        this.#o.logger.error('could not publish status events; the changes are checked again next run', {
          error,
          groupId: first.groupId,
          events: details.length,
        });
      }
    }
    const recordable = announced ? decisions : decisions.filter((d) => !d.event);
    run.summary.skipped += decisions.length - recordable.length;
    await Promise.all(recordable.map((decision) => this.#writes.run(() => this.#record(decision, run))));
  }

  /** One paginated list per project and provider per run, shared by the items of every ledger page. */
  #listing(item: LedgerItem, run: Run): Promise<Listing> | undefined {
    const key = projectKey(item);
    const known = run.listings.get(key);
    if (known) return known;
    if (this.#outOfTime(run)) return undefined;
    run.summary.projects += 1;
    const listing = this.#list(item);
    run.listings.set(key, listing);
    return listing;
  }

  async #list({ profile, groupId, cloudProvider }: LedgerItem): Promise<Listing> {
    const context = { profile, groupId, cloudProvider };
    if (!isCloudProvider(cloudProvider)) {
      this.#o.logger.error('the ledger names a cloud provider this version does not know', context);
      return { ok: false };
    }
    const listedAt = this.#now().toISOString();
    try {
      const endpoints = await this.#o.atlas.withClient(profile, (client) =>
        client.listEndpoints(groupId, cloudProvider),
      );
      return { ok: true, byId: new Map(endpoints.map((e) => [e.id, e])), listedAt };
    } catch (error) {
      const failure = describeFailure(error);
      if (failure.disposition === 'retry') {
        // 429, 5xx, timeouts: Atlas said nothing about the endpoints; ask again next run.
        this.#o.logger.warn('could not list the project; its endpoints are checked next run', {
          ...context,
          failure,
        });
      } else {
        this.#o.logger.error('could not list the project; an operator must act', { ...context, failure });
        this.#o.metrics.addMetric(METRIC.checkFailed, MetricUnit.Count, 1);
      }
      return { ok: false };
    }
  }

  #decide(item: LedgerItem, listed: Map<string, AtlasEndpoint>, now: Date): Decision {
    const endpoint = item.endpointId === undefined ? undefined : listed.get(item.endpointId);
    if (!endpoint) {
      const status = item.action === 'delete' || item.status === 'DELETING' ? 'DELETED' : 'MISSING';
      if (status === 'MISSING') {
        this.#o.logger.warn('endpoint missing from Atlas (drift)', this.#logKeys(item));
      }
      return this.#changed(item, { status }, now);
    }
    const result = {
      status: endpoint.status,
      ...(endpoint.errorMessage !== undefined && { atlasErrorMessage: endpoint.errorMessage }),
    };
    if (!KNOWN.has(endpoint.status)) {
      this.#o.logger.warn(
        'Atlas reported a status this version does not know; kept, treated as in progress',
        {
          ...this.#logKeys(item),
          status: endpoint.status,
        },
      );
    }
    if (endpoint.status !== item.status) return this.#changed(item, result, now);
    if (item.stuckAt === undefined && this.#pastDeadline(item, now)) {
      this.#o.logger.warn('endpoint stuck past its deadline', {
        ...this.#logKeys(item),
        status: item.status,
      });
      return {
        item,
        result: { ...result, stuck: true },
        kind: 'stuck',
        event: this.#detail('STUCK', item, {
          status: item.status,
          ...(result.atlasErrorMessage !== undefined && { errorMessage: result.atlasErrorMessage }),
          statusSince: item.statusSince,
          occurredAt: now.toISOString(),
        }),
      };
    }
    return { item, result, kind: 'unchanged' };
  }

  #changed(item: LedgerItem, result: Decision['result'], now: Date): Decision {
    const outcome: Outcome =
      result.status === 'DELETED' ? 'DELETED' : result.status === 'MISSING' ? 'MISSING' : 'STATUS_CHANGED';
    return {
      item,
      result,
      kind: 'changed',
      event: this.#detail(outcome, item, {
        previousStatus: item.status,
        status: result.status,
        ...(result.atlasErrorMessage !== undefined && { errorMessage: result.atlasErrorMessage }),
        statusSince: now.toISOString(),
        occurredAt: now.toISOString(),
      }),
    };
  }

  #pastDeadline(item: LedgerItem, now: Date): boolean {
    const deadline = deadlineOf(item.status);
    if (deadline === undefined) return false;
    const since = Date.parse(item.statusSince);
    return Number.isFinite(since) && now.getTime() - since > this.#o.deadlines[deadline] * 60_000;
  }

  async #record(decision: Decision, run: Run): Promise<void> {
    const { item, result, kind } = decision;
    try {
      const recorded = await this.#o.ledger.recordCheck(item.key, item.status, result);
      run.summary.checked += 1;
      if (kind === 'changed') run.summary.changed += 1;
      if (kind === 'changed' && result.status === 'MISSING') run.summary.missing += 1;
      if (kind === 'stuck') run.summary.stuck += 1;
      if (!recorded) {
        // A provisioner holds the key or moved it on; the next run compares against its status.
        this.#o.logger.debug('the item changed while it was checked; not recorded', this.#logKeys(item));
      }
    } catch (error) {
      run.summary.skipped += 1;
      this.#o.logger.error('could not record the check', { ...this.#logKeys(item), error });
    }
  }

  #detail(
    outcome: Outcome,
    item: LedgerItem,
    extra: Pick<StatusChangedDetail, 'status' | 'occurredAt'> & Partial<StatusChangedDetail>,
  ): StatusChangedDetail {
    return {
      version: '1',
      outcome,
      requestIds: item.requestIds,
      naturalKey: item.key,
      groupId: item.groupId,
      cloudProvider: item.cloudProvider,
      regionName: item.regionName,
      ...(item.vpcRegionName !== undefined && { vpcRegionName: item.vpcRegionName }),
      action: item.action,
      ...(item.endpointId !== undefined && { endpointId: item.endpointId }),
      ...extra,
    };
  }

  #logKeys(item: LedgerItem) {
    return { naturalKey: item.key, endpointId: item.endpointId, requestIds: item.requestIds };
  }

  #emitMetrics(summary: CheckSummary): void {
    const counts = [
      [METRIC.checkedEndpoints, summary.checked],
      [METRIC.statusChanged, summary.changed],
      [METRIC.stuck, summary.stuck],
      [METRIC.missing, summary.missing],
    ] as const;
    for (const [name, value] of counts) this.#o.metrics.addMetric(name, MetricUnit.Count, value);
  }
}

const projectKey = (item: LedgerItem) => [item.profile, item.groupId, item.cloudProvider].join('\u0000');

/** Items per project and provider, in the order their first item came (least recently checked first). */
function groupByProject(items: LedgerItem[]): Map<string, LedgerItem[]> {
  const groups = new Map<string, LedgerItem[]>();
  for (const item of items) {
    const key = projectKey(item);
    const group = groups.get(key);
    if (group) group.push(item);
    else groups.set(key, [item]);
  }
  return groups;
}
