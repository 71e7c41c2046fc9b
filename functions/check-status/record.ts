/**
 * Recording what a check found: the decision with its events in the item's outbox (published
 * afterwards, #events/outbox.ts), counted in the run's summary, whose counts become metrics.
 */
import { MetricUnit } from '@aws-lambda-powertools/metrics';
import type { LedgerItem } from '#ledger/ledger.ts';
import { METRIC } from '#runtime/metric-names.ts';
import { type CheckerDeps, type CheckSummary, type Decision, logKeys } from './run.ts';

/**
 * Records the decision with its events in the outbox (in place of the pending statuses they
 * supersede); the item as written, or undefined when it was not recorded.
 */
export async function record(
  deps: Pick<CheckerDeps, 'ledger' | 'logger'>,
  decision: Decision,
  summary: CheckSummary,
): Promise<LedgerItem | undefined> {
  const { item, result, kind } = decision;
  try {
    const recorded = await deps.ledger.recordCheck(
      item.key,
      item.status,
      { ...result, events: decision.events },
      item.outbox,
      item.updatedAt,
    );
    if (!recorded) {
      // A provisioner holds the key or moved it on, or its outbox is full (MAX_OUTBOX) while
      // EventBridge refuses it; the next run compares against its status again.
      summary.skipped += 1;
      deps.logger.debug('the item changed while it was checked, or its outbox is full; not recorded', {
        ...logKeys(item),
        pendingEvents: Object.keys(item.outbox ?? {}).length,
      });
      return undefined;
    }
    summary.checked += 1;
    if (kind === 'changed') summary.changed += 1;
    if (kind === 'changed' && result.status === 'MISSING') summary.missing += 1;
    if (kind === 'stuck') summary.stuck += 1;
    return recorded;
  } catch (error) {
    summary.skipped += 1;
    deps.logger.error('could not record the check', { ...logKeys(item), error });
    return undefined;
  }
}

/** The run's counts as metrics, for the dashboards and alarms. */
export function emitMetrics(deps: Pick<CheckerDeps, 'metrics'>, summary: CheckSummary): void {
  const counts = [
    [METRIC.checkedEndpoints, summary.checked],
    [METRIC.statusChanged, summary.changed],
    [METRIC.stuck, summary.stuck],
    [METRIC.missing, summary.missing],
  ] as const;
  for (const [name, value] of counts) deps.metrics.addMetric(name, MetricUnit.Count, value);
}
