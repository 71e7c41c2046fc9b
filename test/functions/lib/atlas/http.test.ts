import { describe, expect, it } from 'vitest';
import {
  type AtlasCallInfo,
  AtlasHttp,
  type HttpAnswer,
  type HttpRequest,
  invalidResponse,
  MAX_DETAIL,
  MAX_ERROR_CODE,
  parseRetryAfter,
  toApiError,
} from '#atlas/http.ts';
import { AtlasApiError, AtlasNetworkError, describeFailure } from '#lib/errors.ts';

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

  it.each([
    ['not a string', { errorCode: 503, error: 'SERVICE_UNAVAILABLE' }, 'SERVICE_UNAVAILABLE'],
    ['blank', { errorCode: '  ', error: 'SERVICE_UNAVAILABLE' }, 'SERVICE_UNAVAILABLE'],
  ])('passes over an errorCode that is %s', (_, body, errorCode) => {
    expect(toApiError('get', answer(503, JSON.stringify(body)), NOW).errorCode).toBe(errorCode);
  });

  it('joins the field violations with "; " and skips any that lacks its field or its description', () => {
    const body = {
      errorCode: 'VALIDATION_ERROR',
      badRequestDetail: {
        fields: [
          { field: 'regionName', description: 'unknown region' },
          { field: 'cloudProvider' },
          { description: 'no field named' },
          'free text',
          { field: 'vpcRegionName', description: 'unknown region' },
        ],
      },
    };

    const error = toApiError('create', answer(400, JSON.stringify(body)), NOW);

    expect(error.detail).toBe('regionName: unknown region; vpcRegionName: unknown region');
  });

  it.each([
    ['an empty list', []],
    ['not a list', { field: 'regionName', description: 'unknown region' }],
    ['only incomplete entries', [{ field: 'regionName' }]],
  ])('keeps the detail as it is when the field violations are %s', (_, fields) => {
    const body = { errorCode: 'VALIDATION_ERROR', detail: 'Invalid body.', badRequestDetail: { fields } };

    expect(toApiError('create', answer(400, JSON.stringify(body)), NOW).detail).toBe('Invalid body.');
  });

  it('keeps a long detail to 500 characters', () => {
    const error = toApiError(
      'get',
      answer(500, JSON.stringify({ errorCode: 'X', detail: 'd'.repeat(5000) })),
      NOW,
    );

    expect(error.detail).toHaveLength(500);
  });

  it.each([
    ['the body', (code: string) => answer(500, JSON.stringify({ errorCode: code }))],
    ['a header', (code: string) => answer(500, '', { 'x-error-code': code })],
    ['an OAuth error', (code: string) => answer(400, JSON.stringify({ error: code }))],
  ])('keeps an errorCode from %s to MAX_ERROR_CODE characters, and the message with it', (_, from) => {
    const error = toApiError('get', from('E'.repeat(10_000)), NOW);

    expect(MAX_ERROR_CODE).toBe(128);
    expect(error.errorCode).toBe('E'.repeat(MAX_ERROR_CODE));
    // What a failure without a detail records (lastError, the DLQ's attributes and events).
    expect(describeFailure(error)).toMatchObject({ code: 'E'.repeat(MAX_ERROR_CODE) });
    expect(describeFailure(error).detail.length).toBeLessThan(MAX_ERROR_CODE + MAX_DETAIL + 50);
  });
});

describe('invalidResponse', () => {
  it('fails a 2xx answer with INVALID_RESPONSE, its problem kept to 500 characters', () => {
    const error = invalidResponse('list', answer(200, '{}'), 'p'.repeat(600));

    expect(error).toMatchObject({ status: 200, errorCode: 'INVALID_RESPONSE', operation: 'list' });
    expect(error.detail).toBe('p'.repeat(500));
  });
});

describe('AtlasHttp', () => {
  const GET: HttpRequest = { operation: 'get', method: 'GET', url: 'https://atlas.test/x', headers: {} };
  const http = (fetch: typeof globalThis.fetch, onCall?: (info: AtlasCallInfo) => void) =>
    new AtlasHttp({ fetch, timeoutMs: 60_000, now: () => 0, ...(onCall && { onCall }) });

  it.each([300, 301, 308, 399])('refuses a %i, naming only where it points', async (status) => {
    const answer = new Response(null, {
      status,
      headers: { location: 'https://elsewhere.test/a/b?token=x' },
    });

    await expect(http(async () => answer).send(GET)).rejects.toMatchObject({
      status,
      errorCode: 'REDIRECT_REFUSED',
      operation: 'get',
      detail: `Atlas answered ${status} redirecting to https://elsewhere.test; redirects are not followed (check the base URL)`,
    });
  });

  it('says "elsewhere" for a redirect without a readable Location', async () => {
    const answer = new Response(null, { status: 302 });

    await expect(http(async () => answer).send(GET)).rejects.toMatchObject({
      detail: 'Atlas answered 302 redirecting to elsewhere; redirects are not followed (check the base URL)',
    });
  });

  it('returns a 4xx answer for its caller to map', async () => {
    const answer = await http(async () => new Response('{}', { status: 400 })).send(GET);

    expect(answer.status).toBe(400);
  });

  it('reports a call that got no answer without a status or a rate limit', async () => {
    const calls: AtlasCallInfo[] = [];

    await http(
      async () => Promise.reject(new TypeError('fetch failed')),
      (info) => calls.push(info),
    )
      .send(GET)
      .catch(() => undefined);

    expect(calls).toStrictEqual([{ operation: 'get', durationMs: 0 }]);
  });

  it('reports no rate limit for an answer without a usable RateLimit-Remaining', async () => {
    const calls: AtlasCallInfo[] = [];

    await http(
      async () => new Response('{}', { status: 200 }),
      (info) => calls.push(info),
    ).send(GET);

    expect(calls).toStrictEqual([{ operation: 'get', status: 200, durationMs: 0 }]);
  });

  it('counts a network error caused by a timeout as a timeout', async () => {
    const timeout = Object.assign(new Error('aborted'), { name: 'TimeoutError' });
    const failed = new TypeError('fetch failed', { cause: timeout });

    const error = await http(async () => Promise.reject(failed))
      .send(GET)
      .catch((e: unknown) => e);

    expect(error).toBeInstanceOf(AtlasNetworkError);
    expect(error).toMatchObject({ reason: 'timeout', cause: failed });
  });

  it('ends the request when the caller’s signal aborts, as a network error', async () => {
    const caller = new AbortController();
    caller.abort(new Error('deadline'));
    const fetch: typeof globalThis.fetch = (_, init) =>
      new Promise((_, reject) => {
        const signal = init?.signal;
        if (signal?.aborted) reject(signal.reason);
        signal?.addEventListener('abort', () => reject(signal.reason));
      });

    const error = await http(fetch)
      .send({ ...GET, signal: caller.signal })
      .catch((e: unknown) => e);

    expect(error).toMatchObject({ reason: 'network' });
  });
});
