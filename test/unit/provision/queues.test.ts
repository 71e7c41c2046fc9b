import { describe, expect, it } from 'vitest';
import { backoffSeconds, parkedAttributes, retryDelaySeconds } from '#lib/queues.ts';

const backoff = { baseSeconds: 2, capSeconds: 900 };

describe('retry delays', () => {
  it('grows the backoff ceiling exponentially up to the cap', () => {
    const ceiling = (attempt: number) => backoffSeconds(attempt, backoff, () => 1);

    expect([1, 2, 3, 4, 9, 10, 30].map(ceiling)).toEqual([2, 4, 8, 16, 512, 900, 900]);
  });

  it('takes Retry-After over the backoff, even a zero one', () => {
    const failure = { disposition: 'retry' as const, code: 'RATE_LIMITED', detail: 'slow down' };

    expect(retryDelaySeconds({ ...failure, retryAfterSeconds: 0 }, 5, backoff, () => 1)).toBe(0);
    expect(retryDelaySeconds({ ...failure, retryAfterSeconds: 2.2 }, 5, backoff, () => 1)).toBe(3);
    expect(retryDelaySeconds(failure, 5, backoff, () => 1)).toBe(32);
  });
});

describe('parkedAttributes', () => {
  it('leaves out the absent HttpStatus and RequestId and cuts a long detail', () => {
    const attributes = parkedAttributes({
      failure: { disposition: 'reject', code: 'INVALID_REQUEST', detail: 'x'.repeat(5_000) },
      attempts: 1,
      firstFailureAt: '2026-11-29T10:00:00.000Z',
      lastFailureAt: '2026-11-29T10:00:00.000Z',
    });

    expect(Object.keys(attributes).sort()).toEqual([
      'Attempts',
      'Detail',
      'ErrorCode',
      'FirstFailureAt',
      'LastFailureAt',
    ]);
    expect(attributes.Detail?.StringValue).toHaveLength(1_000);
  });

  it('replaces characters SQS refuses in an attribute, so a garbled request can still be parked', () => {
    const attributes = parkedAttributes({
      failure: {
        disposition: 'reject',
        code: 'INVALID_REQUEST',
        detail: 'unknown field(s): a\u0000b\u0007c',
      },
      attempts: 1,
      firstFailureAt: '2026-11-29T10:00:00.000Z',
      lastFailureAt: '2026-11-29T10:00:00.000Z',
      requestId: 'req\u0001\ud800-1',
    });

    expect(attributes.Detail?.StringValue).toBe('unknown field(s): a\uFFFDb\uFFFDc');
    expect(attributes.RequestId?.StringValue).toBe('req\uFFFD\uFFFD-1');
  });
});
