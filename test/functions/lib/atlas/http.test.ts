import { describe, expect, it } from 'vitest';
import { type HttpAnswer, parseRetryAfter, toApiError } from '#atlas/http.ts';
import { AtlasApiError, describeFailure } from '#lib/errors.ts';

const NOW = Date.parse('2026-11-02T10:00:00Z');

const answer = (status: number, body: string, headers: Record<string, string> = {}): HttpAnswer => ({
  status,
  headers: new Headers(headers),
  body,
});

describe('parseRetryAfter', () => {
  it.each([
    ['delay-seconds', '7', 7],
    ['zero', '0', 0],
    ['delay-seconds with spaces', ' 30 ', 30],
    ['an HTTP-date 90 s ahead', 'Mon, 02 Nov 2026 10:01:30 GMT', 90],
    ['an HTTP-date in the past', 'Mon, 02 Nov 2026 09:00:00 GMT', 0],
  ])('reads %s', (_, value, expected) => {
    expect(parseRetryAfter(value, NOW)).toBe(expected);
  });

  it('rounds the wait until an HTTP-date up to whole seconds', () => {
    expect(parseRetryAfter('Mon, 02 Nov 2026 10:00:00 GMT', NOW - 300)).toBe(1);
  });

  it.each([
    ['absent', null],
    ['empty', ''],
    ['negative', '-5'],
    ['fractional', '1.5'],
    ['garbage', 'soon'],
  ])('ignores a value that is %s', (_, value) => {
    expect(parseRetryAfter(value, NOW)).toBeUndefined();
  });
});

describe('toApiError', () => {
  it('takes errorCode and detail from an ApiError body, and Retry-After in seconds', () => {
    const error = toApiError(
      'create',
      answer(
        429,
        JSON.stringify({
          error: 429,
          errorCode: 'RATE_LIMITED',
          detail: 'Slow down.',
          reason: 'Too Many Requests',
        }),
        { 'retry-after': '12', 'x-error-code': 'RATE_LIMITED' },
      ),
      NOW,
    );

    expect(error).toBeInstanceOf(AtlasApiError);
    expect(error).toMatchObject({
      status: 429,
      errorCode: 'RATE_LIMITED',
      detail: 'Slow down.',
      retryAfterSeconds: 12,
    });
    expect(error.message).toBe('Atlas create failed: 429 RATE_LIMITED: Slow down.');
    expect(describeFailure(error)).toMatchObject({ disposition: 'retry', retryAfterSeconds: 12 });
  });

  it('falls back to reason when detail is an explicit null', () => {
    const error = toApiError(
      'get',
      answer(404, '{"error":404,"errorCode":"RESOURCE_NOT_FOUND","detail":null,"reason":"Not Found"}'),
      NOW,
    );

    expect(error).toMatchObject({ status: 404, errorCode: 'RESOURCE_NOT_FOUND', detail: 'Not Found' });
  });

  it('appends the field violations of a 400', () => {
    const body = {
      error: 400,
      errorCode: 'VALIDATION_ERROR',
      detail: 'Invalid body.',
      badRequestDetail: { fields: [{ field: 'regionName', description: 'unknown region' }, null] },
    };

    const error = toApiError('create', answer(400, JSON.stringify(body)), NOW);

    expect(error.detail).toBe('Invalid body. regionName: unknown region');
  });

  it('uses the X-Error-Code header when the body has no errorCode', () => {
    const error = toApiError(
      'list',
      answer(503, '<html>busy</html>', { 'x-error-code': 'SERVICE_UNAVAILABLE', 'retry-after': 'x' }),
      NOW,
    );

    expect(error).toMatchObject({ status: 503, errorCode: 'SERVICE_UNAVAILABLE', detail: undefined });
    expect(error.retryAfterSeconds).toBeUndefined();
  });

  it('reads the OAuth error shape of the token endpoint', () => {
    const error = toApiError(
      'token',
      answer(401, '{"error":"invalid_client","error_description":"Invalid client credentials."}'),
      NOW,
    );

    expect(error).toMatchObject({
      status: 401,
      errorCode: 'invalid_client',
      detail: 'Invalid client credentials.',
    });
    expect(describeFailure(error).disposition).toBe('dlq');
  });

  it.each([
    ['an empty body', ''],
    ['a JSON null', 'null'],
    ['a JSON array', '[1,2]'],
    [
      'nulls everywhere',
      '{"error":null,"errorCode":null,"detail":null,"reason":null,"badRequestDetail":null}',
    ],
    ['truncated JSON', '{"errorCode":"UNEXP'],
  ])('names the status when the body is %s', (_, body) => {
    const error = toApiError('delete', answer(500, body), NOW);

    expect(error).toMatchObject({ status: 500, errorCode: 'HTTP_500', detail: undefined });
  });

  it('keeps a long detail to 500 characters', () => {
    const error = toApiError(
      'get',
      answer(500, JSON.stringify({ errorCode: 'X', detail: 'd'.repeat(5000) })),
      NOW,
    );

    expect(error.detail).toHaveLength(500);
  });
});
