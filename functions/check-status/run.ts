/**
 * What the parts of the status checker share: its options and summary, the Atlas listing of a
 * project, the decision for one item, and the state of one run. A leaf: the parts import it, and
 * status-checker.ts re-exports what callers name.
 */
import type { Logger } from '@aws-lambda-powertools/logger';
import type { Metrics } from '@aws-lambda-powertools/metrics';
import type { AtlasClient } from '#atlas/client.ts';
import type { AtlasEndpoint } from '#atlas/types.ts';
import type { StatusEvents } from '#events/publisher.ts';
import type { StatusChangedDetail } from '#events/status-event.ts';
import type { CheckResult, Ledger, LedgerItem } from '#ledger/ledger.ts';
import type { ContinuationQueue } from '#messages/queues.ts';

/** The Atlas operations the checker uses: one listing per project, and deleting an extra it can account for. */
export type ListingApi = Pick<AtlasClient, 'listEndpoints' | 'deleteEndpoint'>;

export interface Deadlines {
  /** Minutes in PENDING_ACCEPTANCE before an endpoint is reported stuck. */
  pendingAcceptanceMinutes: number;
  /** Minutes in an in-progress status (INITIATING, PENDING_RECREATION, DELETING, unknown). */
  inProgressMinutes: number;
}

export interface StatusCheckerOptions {
  ledger: Pick<Ledger, 'listTracked' | 'recordCheck' | 'confirmUnchanged' | 'clearOutbox' | 'forgetAnswer'>;
  atlas: { withClient<T>(profile: string, fn: (client: ListingApi) => Promise<T>): Promise<T> };
  events: Pick<StatusEvents, 'publish'>;
  /** Where a key whose endpoint FAILED goes back to the provisioner (absent: it is only announced). */
  requests?: Pick<ContinuationQueue, 'send'>;
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
  /**
   * Delay of the first follow-up the checker starts for a key Atlas is recreating (absent: none;
   * the sweep alone follows it). The provisioner's follow-ups then follow it until it settles.
   */
  followUpFirstSeconds?: number;
  /**
   * Minutes between the first listing that answers that a project does not exist and a later one
   * that retires its keys (gone.ts). Default 10.
   */
  projectGoneConfirmMinutes?: number;
  now?: () => Date;
}

/** The options as the parts read them: the clock is always there. */
export type CheckerDeps = StatusCheckerOptions & { now: () => Date };

export interface CheckSummary {
  /** Items compared with Atlas's listing and recorded. */
  checked: number;
  /** Items whose status changed (including those now DELETED or MISSING). */
  changed: number;
  /** Items newly reported stuck past their deadline. */
  stuck: number;
  /** Items whose endpoint disappeared from Atlas while not being deleted (drift), or whose project is gone. */
  missing: number;
  /** Items left untouched for the next run: Atlas or the ledger failed, or time ran out. */
  skipped: number;
  /** Project listings made (one paginated list each). */
  projects: number;
  /** Extra endpoints made by creates in doubt that were deleted. */
  duplicatesDeleted: number;
  /** The run stopped starting projects to finish before the function's timeout. */
  stoppedEarly: boolean;
}

/**
 * `listedAt`: taken before the list call; an item written after it is newer than the listing.
 * A failed listing says nothing of the endpoints, unless Atlas said the project does not exist
 * (`gone`).
 */
export type Listing =
  | { ok: true; byId: Map<string, AtlasEndpoint>; byKey: Map<string, AtlasEndpoint[]>; listedAt: string }
  | { ok: false; gone?: ProjectGone };

/** Atlas answered a project's listing that the project does not exist (404 GROUP_NOT_FOUND). */
export interface ProjectGone {
  listedAt: string;
  error: { code: string; httpStatus: number; detail: string };
}

export interface Decision {
  item: LedgerItem;
  result: CheckResult;
  kind: 'unchanged' | 'changed' | 'stuck';
  events: StatusChangedDetail[];
  /** The endpoint to follow closely once this is recorded: one Atlas is recreating, or its successor. */
  follow?: string;
}

/** State of one run. */
export interface Run {
  startedAt: string;
  remainingMs: () => number;
  marginMs: number;
  listings: Map<string, Promise<Listing>>;
  /** Keys taken this run: never checked twice, whatever the clocks say. */
  seen: Set<string>;
  summary: CheckSummary;
}

/** Whether less than the safety margin is left; the run then stops early. */
export function outOfTime(run: Run): boolean {
  if (run.remainingMs() >= run.marginMs) return false;
  run.summary.stoppedEarly = true;
  return true;
}

/** What every log line about an item names. */
export function logKeys(item: LedgerItem) {
  return { naturalKey: item.key, endpointId: item.endpointId, requesters: item.requesters };
}
