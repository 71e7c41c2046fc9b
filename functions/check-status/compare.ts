/**
 * Comparing an item with Atlas: the decision for one item (a changed status, stuck past its
 * deadline, gone from Atlas, an unclaimed endpoint for a create in doubt), and the deadlines.
 */
import { ATLAS_STATUSES, type AtlasEndpoint } from '#atlas/types.ts';
import {
  goneStatus,
  itemDetails,
  SETTLED,
  statusChange,
  successorChange,
  successorOf,
} from '#events/status-change.ts';
import { eventIdOf } from '#events/status-event.ts';
import { type CheckResult, type LedgerItem, type LedgerStatus, UNTRACKED } from '#ledger/ledger.ts';
import { MOVED, reportOnce, resolveExtras } from './extras.ts';
import { endpointKey } from './listing.ts';
import {
  type CheckerDeps,
  type CheckSummary,
  type Deadlines,
  type Decision,
  type Listing,
  logKeys,
} from './run.ts';

type CompareDeps = Pick<CheckerDeps, 'atlas' | 'ledger' | 'logger' | 'metrics' | 'deadlines'>;

/** Which deadline applies to a status, if any. Unknown statuses count as in progress. */
export function deadlineOf(status: LedgerStatus): keyof Deadlines | undefined {
  if (status === 'PENDING_ACCEPTANCE') return 'pendingAcceptanceMinutes';
  if (NO_DEADLINE.has(status)) return undefined;
  return 'inProgressMinutes';
}

/** Settled statuses, and the ledger's own (never followed). */
const NO_DEADLINE: ReadonlySet<string> = new Set(['ACTIVE', 'FAILED', 'REQUESTED', 'DELETED', 'MISSING']);
/** The statuses this version knows; another is kept and treated as in progress. */
const KNOWN: ReadonlySet<string> = new Set(ATLAS_STATUSES);

/**
 * What a check finds for one item in its project's listing: the status to record, stuck past a
 * deadline, gone from Atlas, or an unclaimed endpoint; with what extra endpoints for its key add.
 */
export async function decide(
  deps: CompareDeps,
  item: LedgerItem,
  listing: Extract<Listing, { ok: true }>,
  now: Date,
  summary: CheckSummary,
): Promise<Decision> {
  const unchanged: Decision = { item, result: { status: item.status }, kind: 'unchanged', events: [] };
  // A FAILED endpoint being recreated, or a key visited only for its outbox: the provisioner's.
  if (item.recreating || (UNTRACKED.has(item.status) && !item.pendingCreate)) return unchanged;
  const live = (listing.byKey.get(endpointKey(item)) ?? []).filter((e) => e.status !== 'DELETING');
  if (item.endpointId === undefined) return item.pendingCreate ? unclaimed(deps, item, live, now) : unchanged;
  const endpoint = listing.byId.get(item.endpointId);
  if (!endpoint) {
    // Atlas may have recreated it under a new id: the key follows the one endpoint in its place.
    const successor = successorOf(
      item,
      live.filter((e) => e.id !== item.endpointId),
    );
    if (successor.kind === 'waiting') return inProgress(deps, item, { status: item.status }, now);
    if (successor.kind === 'recreated' || successor.kind === 'adopted') {
      const change = successorChange(item, successor, now);
      deps.logger.warn('the key follows the endpoint that took its place', {
        ...logKeys(item),
        successor: successor.endpoint.id,
        how: successor.kind,
      });
      return {
        item,
        result: change.result,
        kind: 'changed',
        events: change.events,
        ...(!SETTLED.has(change.result.status) && { follow: successor.endpoint.id }),
      };
    }
  }
  const extras = await resolveExtras(deps, item, live, now, summary);
  // Not recorded either (the record's own condition fails): the next run reads the item again.
  if (extras === MOVED) return unchanged;
  let decision: Decision;
  if (!endpoint) {
    const status = goneStatus(item);
    if (status === 'MISSING') {
      deps.logger.warn('endpoint missing from Atlas (drift)', logKeys(item));
    }
    decision = changed(item, { status }, now);
  } else {
    decision = compare(deps, item, endpoint, now);
  }
  if (!extras) return decision;
  return {
    ...decision,
    // The item as proven before the deletes: the check records against that write.
    ...(extras.updatedAt !== undefined && { item: { ...item, updatedAt: extras.updatedAt } }),
    result: { ...decision.result, ...(extras.fields && { fields: extras.fields }) },
    events: [...decision.events, ...extras.events],
  };
}

function compare(deps: CompareDeps, item: LedgerItem, endpoint: AtlasEndpoint, now: Date): Decision {
  const result = {
    status: endpoint.status,
    ...(endpoint.errorMessage !== undefined && { atlasErrorMessage: endpoint.errorMessage }),
  };
  if (!KNOWN.has(endpoint.status)) {
    deps.logger.warn('Atlas reported a status this version does not know; kept, treated as in progress', {
      ...logKeys(item),
      status: endpoint.status,
    });
  }
  if (endpoint.status !== item.status) {
    // A FAILED endpoint is never the answer: its key goes back to the provisioner.
    const handBack = endpoint.status === 'FAILED' && item.action === 'create';
    const decision = changed(item, { ...result, ...(handBack && { handBack }) }, now);
    // Atlas is recreating it: followed closely until its successor settles.
    return endpoint.status === 'PENDING_RECREATION' && item.action === 'create'
      ? { ...decision, follow: endpoint.id }
      : decision;
  }
  return inProgress(deps, item, result, now);
}

/** An unchanged status: reported once when it is stuck past its deadline. */
function inProgress(deps: CompareDeps, item: LedgerItem, result: CheckResult, now: Date): Decision {
  if (item.stuckAt === undefined && pastDeadline(deps, item, now)) {
    deps.logger.warn('endpoint stuck past its deadline', {
      ...logKeys(item),
      status: item.status,
    });
    return {
      item,
      result: { ...result, stuck: true },
      kind: 'stuck',
      events: itemDetails('STUCK', item, {
        eventId: eventIdOf('STUCK', item.key, item.endpointId, item.status, item.statusSince),
        status: item.status,
        ...(result.atlasErrorMessage !== undefined && { errorMessage: result.atlasErrorMessage }),
        statusSince: item.statusSince,
        occurredAt: now.toISOString(),
      }),
    };
  }
  return { item, result, kind: 'unchanged', events: [] };
}

/**
 * A create in doubt whose request is no longer running (past the in-progress deadline, e.g.
 * parked in the DLQ) and an endpoint for its key: announced once, adopted when it is replayed.
 */
function unclaimed(deps: CompareDeps, item: LedgerItem, live: AtlasEndpoint[], now: Date): Decision {
  const sentAt = Date.parse(item.pendingCreate?.sentAt ?? '');
  const overdue = now.getTime() - sentAt > deps.deadlines.inProgressMinutes * 60_000;
  const report = overdue ? reportOnce('UNCLAIMED', item, live, now) : undefined;
  if (!report) return { item, result: { status: item.status }, kind: 'unchanged', events: [] };
  deps.logger.warn('an endpoint appeared for a create in doubt whose request is not running', {
    ...logKeys(item),
    endpoints: report.events.map((e) => e.endpointId),
  });
  return {
    item,
    result: { status: item.status, fields: report.fields },
    kind: 'unchanged',
    events: report.events,
  };
}

function changed(item: LedgerItem, result: CheckResult, now: Date): Decision {
  const change = statusChange(item, result, now);
  return { item, result: change.result, kind: 'changed', events: change.events };
}

function pastDeadline(deps: CompareDeps, item: LedgerItem, now: Date): boolean {
  const deadline = deadlineOf(item.status);
  if (deadline === undefined) return false;
  const since = Date.parse(item.statusSince);
  return Number.isFinite(since) && now.getTime() - since > deps.deadlines[deadline] * 60_000;
}
