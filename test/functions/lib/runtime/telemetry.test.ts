import { describe, expect, it, vi } from 'vitest';
import { atlasCallMetrics } from '#runtime/telemetry.ts';

describe('atlasCallMetrics', () => {
  it('records the latency of every Atlas round trip in milliseconds', () => {
    const metrics = { addMetric: vi.fn() };

    atlasCallMetrics(metrics)({ operation: 'get', status: 200, durationMs: 87 });

    expect(metrics.addMetric.mock.calls).toEqual([['AtlasLatency', 'Milliseconds', 87]]);
  });

  it('counts a 429 answer as rate limited, besides its latency', () => {
    const metrics = { addMetric: vi.fn() };

    atlasCallMetrics(metrics)({ operation: 'create', status: 429, durationMs: 12 });

    expect(metrics.addMetric.mock.calls).toEqual([
      ['AtlasLatency', 'Milliseconds', 12],
      ['AtlasRateLimited', 'Count', 1],
    ]);
  });

  it('counts no rate limit for a call that got no answer', () => {
    const metrics = { addMetric: vi.fn() };

    atlasCallMetrics(metrics)({ operation: 'list', durationMs: 10_000 });

    expect(metrics.addMetric).toHaveBeenCalledTimes(1);
  });
});
