/** The metrics every Atlas round trip emits, from both functions (names in metric-names.ts). */
import { type Metrics, MetricUnit } from '@aws-lambda-powertools/metrics';
import type { AtlasCallInfo } from '#atlas/client.ts';
import { METRIC } from '#runtime/metric-names.ts';

/** Metrics for every Atlas round trip (the AtlasClient's onCall hook), from both functions. */
export function atlasCallMetrics(metrics: Pick<Metrics, 'addMetric'>): (info: AtlasCallInfo) => void {
  return (info) => {
    metrics.addMetric(METRIC.atlasLatency, MetricUnit.Milliseconds, info.durationMs);
    if (info.status === 429) metrics.addMetric(METRIC.atlasRateLimited, MetricUnit.Count, 1);
  };
}
