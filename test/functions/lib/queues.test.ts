import { describe, expect, it } from 'vitest';
import { PARKED_ATTRIBUTES_MAX_BYTES } from '#lib/message-attributes.ts';
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

  it('adds at most PARKED_ATTRIBUTES_MAX_BYTES to a parked body, however long and wide its reason', () => {
    // Prepare: every value far over its cut, in characters of 3 UTF-8 bytes, a half pair at each cut
    const wide = (n: number) => '\u20ac'.repeat(n - 1).concat('\ud83d\ude00', '\u20ac'.repeat(10_000));
    const attributes = parkedAttributes({
      failure: { disposition: 'retry', code: wide(128), httpStatus: 503, detail: wide(1_000) },
      attempts: Number.MAX_SAFE_INTEGER,
      firstFailureAt: wide(32),
      lastFailureAt: wide(32),
      requestId: wide(1_024),
    });

    // Act: the size SQS counts for message attributes (name, data type, value)
    const bytes = Object.entries(attributes).reduce(
      (sum, [name, value]) =>
        sum +
        Buffer.byteLength(name) +
        Buffer.byteLength(value.DataType ?? '') +
        Buffer.byteLength(value.StringValue ?? ''),
      0,
    );

    // Assess
    expect(Object.keys(attributes)).toHaveLength(7);
    expect(bytes).toBeGreaterThan(6_000);
    expect(bytes).toBeLessThanOrEqual(PARKED_ATTRIBUTES_MAX_BYTES);
  });
});
