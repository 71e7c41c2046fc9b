/**
 * The second half of the ledger's outbox, shared by the provisioner and the status checker:
 * events already recorded with the state they announce are published, and those EventBridge
 * accepted are cleared. What it refused is counted and stays for the next delivery or run,
 * which sends it again with the same eventId.
 */
import type { Logger } from '@aws-lambda-powertools/logger';
import { type Metrics, MetricUnit } from '@aws-lambda-powertools/metrics';
import { EventPublishError, type StatusEvents } from '#events/publisher.ts';
import type { StatusChangedDetail } from '#events/status-event.ts';
import type { Ledger } from '#ledger/ledger.ts';
import { METRIC } from '#runtime/metric-names.ts';

export interface OutboxDeps {
  events: Pick<StatusEvents, 'publish'>;
  ledger: Pick<Ledger, 'clearOutbox'>;
  metrics: Pick<Metrics, 'addMetric'>;
  logger: Logger;
  /** Runs each item's clearing write (e.g. through a write limiter); default: at once. */
  write?: <T>(fn: () => Promise<T>) => Promise<T>;
}

/** Publishes recorded events (of one or many ledger items) in one go; false when some stay in an outbox. */
export async function announceRecorded(
  deps: OutboxDeps,
  recorded: ReadonlyArray<{ key: string; event: StatusChangedDetail }>,
): Promise<boolean> {
  if (recorded.length === 0) return true;
  let accepted = new Set(recorded.map((r) => r.event.eventId));
  try {
    await deps.events.publish(...recorded.map((r) => r.event));
  } catch (error) {
    accepted = new Set(error instanceof EventPublishError ? error.accepted : []);
    deps.metrics.addMetric(METRIC.eventPublishFailed, MetricUnit.Count, recorded.length - accepted.size);
    deps.logger.error('could not publish status events; they stay in the ledger outbox and are sent again', {
      error,
      events: recorded.length,
      naturalKeys: [...new Set(recorded.map((r) => r.key))],
    });
  }
  const byKey = new Map<string, string[]>();
  for (const { key, event } of recorded) {
    if (accepted.has(event.eventId)) byKey.set(key, [...(byKey.get(key) ?? []), event.eventId]);
  }
  const write = deps.write ?? ((fn) => fn());
  await Promise.all(
    [...byKey].map(([key, ids]) =>
      write(async () => {
        try {
          await deps.ledger.clearOutbox(key, ids);
        } catch (error) {
          // Left in the outbox: announced again later with the same eventId.
          deps.logger.warn('could not clear published events from the outbox', { error, naturalKey: key });
        }
      }),
    ),
  );
  return accepted.size === recorded.length;
}
