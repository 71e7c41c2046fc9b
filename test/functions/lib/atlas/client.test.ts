import { describe, expect, it, vi } from 'vitest';
import {
  type AtlasCallInfo,
  AtlasClient,
  type AtlasClientOptions,
  MAX_ERROR_MESSAGE,
  MAX_STATUS,
} from '#atlas/client.ts';
import { digestResponse, parseDigestChallenge } from '#atlas/digest.ts';
import type { AtlasCredentials } from '#atlas/types.ts';
import { AtlasApiError, AtlasNetworkError, describeFailure } from '#lib/errors.ts';

const BASE = 'https://atlas.test';
const GROUP = '5f0c1a2b3c4d5e6f7a8b9c0d';
const ENDPOINT_ID = '6a1b2c3d4e5f6a7b8c9d0e1f';
const MEDIA_TYPE = 'application/vnd.atlas.2024-11-13+json';
const CLIENT_SECRET = 'mdb_sa_sk_unit-client-secret-value';
const PRIVATE_KEY = '8c1f3a5e-unit-private-key-value';
const ACCESS_TOKEN = 'eyJ-unit-access-token-value';

const serviceAccount: AtlasCredentials = {
  kind: 'serviceAccount',
  clientId: 'mdb_sa_id_unit',
  clientSecret: CLIENT_SECRET,
};
const apiKey: AtlasCredentials = { kind: 'apiKey', publicKey: 'unitpub', privateKey: PRIVATE_KEY };

interface Sent {
  method: string;
  url: string;
  headers: Record<string, string>;
  body?: string;
}

type Handler = (request: Sent, signal: AbortSignal | undefined) => Response | Promise<Response>;

/** A fetch that records what the client sent and answers with the handler. */
const fakeFetch = (handler: Handler) => {
  const sent: Sent[] = [];
  const fetch: typeof globalThis.fetch = async (input, init) => {
    const request: Sent = {
      method: init?.method ?? 'GET',
      url: String(input),
      headers: Object.fromEntries(new Headers(init?.headers)),
      ...(typeof init?.body === 'string' && { body: init.body }),
    };
    sent.push(request);
    return handler(request, init?.signal ?? undefined);
  };
  return { fetch, sent };
};

const json = (status: number, body: unknown, headers: Record<string, string> = {}) =>
  new Response(JSON.stringify(body), { status, headers: { 'content-type': MEDIA_TYPE, ...headers } });

const endpoint = (overrides: Record<string, unknown> = {}) => ({
  id: ENDPOINT_ID,
  cloudProvider: 'AWS',
  regionName: 'US_EAST_1',
  status: 'INITIATING',
  ...overrides,
});

const tokenAnswer = (token = ACCESS_TOKEN, expiresIn = 3600) =>
  json(200, { access_token: token, expires_in: expiresIn, token_type: 'Bearer' });

const isTokenRequest = (r: Sent) => r.url.endsWith('/api/oauth/token');

/** Answers token requests with fresh tokens and API calls with `api`. */
const oauthServer = (api: Handler) => {
  let issued = 0;
  return fakeFetch((request, signal) => {
    if (isTokenRequest(request)) return tokenAnswer(`${ACCESS_TOKEN}-${++issued}`);
    return api(request, signal);
  });
};

const client = (fetch: typeof globalThis.fetch, overrides: Partial<AtlasClientOptions> = {}) =>
  new AtlasClient({ baseUrl: BASE, credentials: serviceAccount, fetch, ...overrides });

const failureOf = async (promise: Promise<unknown>): Promise<unknown> =>
  promise.then(
    () => {
      throw new Error('expected a failure');
    },
    (error: unknown) => error,
  );

describe('AtlasClient with a service account', () => {
  it('gets a token with Basic client credentials, then calls with Bearer, the media type and the User-Agent', async () => {
    const { fetch, sent } = oauthServer(() => json(200, endpoint()));

    await client(fetch).getEndpoint(GROUP, 'AWS', ENDPOINT_ID);

    expect(sent).toHaveLength(2);
    expect(sent[0]).toEqual({
      method: 'POST',
      url: `${BASE}/api/oauth/token`,
      headers: expect.objectContaining({
        authorization: `Basic ${Buffer.from(`mdb_sa_id_unit:${CLIENT_SECRET}`).toString('base64')}`,
        'content-type': 'application/x-www-form-urlencoded',
        'user-agent': 'atlas-backup-private-endpoints/0.1',
      }),
      body: 'grant_type=client_credentials',
    });
    expect(sent[1]).toEqual({
      method: 'GET',
      url: `${BASE}/api/atlas/v2/groups/${GROUP}/backup/AWS/privateEndpoints/${ENDPOINT_ID}`,
      headers: {
        accept: MEDIA_TYPE,
        authorization: `Bearer ${ACCESS_TOKEN}-1`,
        'user-agent': 'atlas-backup-private-endpoints/0.1',
      },
    });
  });

  it('reuses one token until 60 s before it expires, then gets a new one', async () => {
    let now = 1_000_000;
    const { fetch, sent } = oauthServer(() => json(200, endpoint()));
    const atlas = client(fetch, { now: () => now });

    await atlas.getEndpoint(GROUP, 'AWS', ENDPOINT_ID);
    now += 3_539_000;
    await atlas.getEndpoint(GROUP, 'AWS', ENDPOINT_ID);
    now += 1_000;
    await atlas.getEndpoint(GROUP, 'AWS', ENDPOINT_ID);

    expect(sent.filter(isTokenRequest)).toHaveLength(2);
    expect(sent.at(-1)?.headers.authorization).toBe(`Bearer ${ACCESS_TOKEN}-2`);
  });

  it('shares one token request between concurrent calls', async () => {
    const { fetch, sent } = oauthServer(() => json(200, endpoint()));
    const atlas = client(fetch);

    await Promise.all(Array.from({ length: 5 }, () => atlas.getEndpoint(GROUP, 'AWS', ENDPOINT_ID)));

    expect(sent.filter(isTokenRequest)).toHaveLength(1);
    expect(sent).toHaveLength(6);
  });

  it('fails with the OAuth error of the token endpoint, and tries again on the next call', async () => {
    const { fetch, sent } = fakeFetch(() =>
      json(401, { error: 'invalid_client', error_description: 'Invalid client credentials.' }),
    );
    const atlas = client(fetch);

    const error = await failureOf(atlas.getEndpoint(GROUP, 'AWS', ENDPOINT_ID));
    await failureOf(atlas.getEndpoint(GROUP, 'AWS', ENDPOINT_ID));

    expect(error).toBeInstanceOf(AtlasApiError);
    expect(error).toMatchObject({
      status: 401,
      errorCode: 'invalid_client',
      detail: 'Invalid client credentials.',
    });
    expect((error as Error).message).toContain('Atlas token failed');
    expect(sent.filter(isTokenRequest)).toHaveLength(2);
  });

  it('fails with INVALID_RESPONSE when the token answer has no access_token', async () => {
    const { fetch } = fakeFetch(() =>
      json(200, { access_token: null, expires_in: 3600, token_type: 'Bearer' }),
    );

    const error = await failureOf(client(fetch).getEndpoint(GROUP, 'AWS', ENDPOINT_ID));

    expect(error).toMatchObject({ status: 200, errorCode: 'INVALID_RESPONSE' });
  });

  it('drops a token the API rejected with 401, so the next call gets a new one', async () => {
    let rejected = true;
    const { fetch, sent } = oauthServer(() => {
      if (!rejected) return json(200, endpoint());
      rejected = false;
      return json(401, { error: 401, errorCode: 'UNAUTHORIZED', detail: 'Token revoked.' });
    });
    const atlas = client(fetch);

    const error = await failureOf(atlas.getEndpoint(GROUP, 'AWS', ENDPOINT_ID));
    await atlas.getEndpoint(GROUP, 'AWS', ENDPOINT_ID);

    expect(error).toMatchObject({ status: 401, errorCode: 'UNAUTHORIZED' });
    expect(sent.filter(isTokenRequest)).toHaveLength(2);
    expect(sent.at(-1)?.headers.authorization).toBe(`Bearer ${ACCESS_TOKEN}-2`);
  });

  it('revokes the current token with Basic auth, and gets a new one afterwards', async () => {
    const { fetch, sent } = oauthServer((request) =>
      request.url.endsWith('/api/oauth/revoke') ? new Response(null, { status: 200 }) : json(200, endpoint()),
    );
    const atlas = client(fetch);
    await atlas.getEndpoint(GROUP, 'AWS', ENDPOINT_ID);

    await atlas.revokeToken();
    await atlas.getEndpoint(GROUP, 'AWS', ENDPOINT_ID);

    const revoke = sent.find((r) => r.url === `${BASE}/api/oauth/revoke`);
    expect(revoke?.body).toBe(`token=${ACCESS_TOKEN}-1&token_type_hint=access_token`);
    expect(revoke?.headers.authorization).toMatch(/^Basic /);
    expect(sent.filter(isTokenRequest)).toHaveLength(2);
  });

  it('does not call Atlas to revoke when it holds no token', async () => {
    const { fetch, sent } = fakeFetch(() => json(200, {}));

    await client(fetch).revokeToken();
    await client(fetch, { credentials: apiKey }).revokeToken();

    expect(sent).toHaveLength(0);
  });
});

describe('AtlasClient operations', () => {
  it('creates with exactly the wire fields, the versioned Content-Type, and returns the endpoint without nulls', async () => {
    const { fetch, sent } = oauthServer(() =>
      json(
        201,
        endpoint({ vpcRegionName: null, errorMessage: null, privateEndpointConnectionName: null, extra: 1 }),
      ),
    );

    const created = await client(fetch).createEndpoint(GROUP, {
      cloudProvider: 'AWS',
      regionName: 'US_EAST_1',
      unexpected: true,
    } as Parameters<AtlasClient['createEndpoint']>[1]);

    expect(created).toStrictEqual({
      id: ENDPOINT_ID,
      cloudProvider: 'AWS',
      regionName: 'US_EAST_1',
      status: 'INITIATING',
    });
    const post = sent.at(-1);
    expect(post?.method).toBe('POST');
    expect(post?.url).toBe(`${BASE}/api/atlas/v2/groups/${GROUP}/backup/AWS/privateEndpoints`);
    expect(post?.headers['content-type']).toBe(MEDIA_TYPE);
    expect(JSON.parse(post?.body ?? '')).toStrictEqual({ cloudProvider: 'AWS', regionName: 'US_EAST_1' });
    expect(post?.url).not.toContain('envelope');
  });

  it('sends the configured API version and strips a trailing slash from the base URL', async () => {
    const { fetch, sent } = oauthServer(() => new Response(null, { status: 204 }));

    await client(fetch, { baseUrl: `${BASE}/`, apiVersion: '2025-03-12' }).deleteEndpoint(
      GROUP,
      'AWS',
      ENDPOINT_ID,
    );

    expect(sent.at(-1)).toMatchObject({
      method: 'DELETE',
      url: `${BASE}/api/atlas/v2/groups/${GROUP}/backup/AWS/privateEndpoints/${ENDPOINT_ID}`,
      headers: { accept: 'application/vnd.atlas.2025-03-12+json' },
    });
  });

  it('encodes every path segment', async () => {
    const { fetch, sent } = oauthServer(() => json(200, endpoint()));

    await client(fetch).getEndpoint(GROUP, 'A/W?S' as 'AWS', ENDPOINT_ID);

    expect(sent.at(-1)?.url).toBe(
      `${BASE}/api/atlas/v2/groups/${GROUP}/backup/A%2FW%3FS/privateEndpoints/${ENDPOINT_ID}`,
    );
  });

  it('refuses a groupId or endpointId that is not 24 lowercase hex before any request', async () => {
    const { fetch, sent } = oauthServer(() => json(200, endpoint()));
    const atlas = client(fetch);

    for (const call of [
      () => atlas.getEndpoint('a/../b?c', 'AWS', ENDPOINT_ID),
      () => atlas.getEndpoint(GROUP, 'AWS', '../../6a1b2c3d4e5f6a7b8c9d'),
      () => atlas.deleteEndpoint(GROUP, 'AWS', ENDPOINT_ID.toUpperCase()),
      () => atlas.listEndpoints(`${GROUP}\n`, 'AWS'),
      () => atlas.getEndpoint(`../${GROUP}`, 'AWS', ENDPOINT_ID),
    ]) {
      expect(await failureOf(call())).toBeInstanceOf(RangeError);
    }
    expect(await failureOf(atlas.getEndpoint(GROUP, 'AWS', 'x'))).toMatchObject({
      message: 'endpointId must be 24 lowercase hex characters; not sent to Atlas',
    });
    expect(sent).toEqual([]);
  });

  it('creates in a VPC region other than the bucket’s when asked', async () => {
    const { fetch, sent } = oauthServer(() => json(201, endpoint({ vpcRegionName: 'US_WEST_2' })));

    await client(fetch).createEndpoint(GROUP, {
      cloudProvider: 'AWS',
      regionName: 'US_EAST_1',
      vpcRegionName: 'US_WEST_2',
    });

    expect(JSON.parse(sent.at(-1)?.body ?? '')).toStrictEqual({
      cloudProvider: 'AWS',
      regionName: 'US_EAST_1',
      vpcRegionName: 'US_WEST_2',
    });
  });

  it('strips every trailing slash from the base URL', async () => {
    const { fetch, sent } = oauthServer(() => json(200, endpoint()));

    await client(fetch, { baseUrl: `${BASE}//` }).getEndpoint(GROUP, 'AWS', ENDPOINT_ID);

    expect(sent.map((r) => r.url)).toEqual([
      `${BASE}/api/oauth/token`,
      `${BASE}/api/atlas/v2/groups/${GROUP}/backup/AWS/privateEndpoints/${ENDPOINT_ID}`,
    ]);
  });

  it('uses the global fetch, looked up at call time, when given none', async () => {
    const { fetch, sent } = oauthServer(() => json(200, endpoint()));
    vi.stubGlobal('fetch', fetch);
    try {
      await new AtlasClient({ baseUrl: BASE, credentials: serviceAccount }).getEndpoint(
        GROUP,
        'AWS',
        ENDPOINT_ID,
      );
    } finally {
      vi.unstubAllGlobals();
    }

    expect(sent).toHaveLength(2);
  });

  it('refuses a page size outside 1 to 500, saying so', async () => {
    const { fetch, sent } = oauthServer(() => json(200, { results: [] }));

    const error = await failureOf(client(fetch).listEndpoints(GROUP, 'AWS', { itemsPerPage: 501 }));

    expect(error).toEqual(new RangeError('itemsPerPage must be an integer from 1 to 500'));
    expect(sent).toEqual([]);
  });

  it('ends a call when the caller’s signal aborts', async () => {
    const { fetch } = oauthServer(
      (_, signal) =>
        new Promise((_, reject) => {
          if (signal?.aborted) reject(signal.reason);
          signal?.addEventListener('abort', () => reject(signal.reason));
        }),
    );
    const atlas = client(fetch, { timeoutMs: 60_000 });
    const deadline = new AbortController();
    deadline.abort(new Error('invocation deadline'));

    const error = await failureOf(atlas.getEndpoint(GROUP, 'AWS', ENDPOINT_ID, { signal: deadline.signal }));

    expect(error).toBeInstanceOf(AtlasNetworkError);
    expect(error).toMatchObject({ operation: 'get', reason: 'network' });
  });

  it.each([
    ['a path', '../../groups/other'],
    ['upper case', ENDPOINT_ID.toUpperCase()],
    ['too short', ENDPOINT_ID.slice(1)],
  ])(
    'fails with INVALID_RESPONSE when Atlas answers an endpoint id that is %s, and never uses it',
    async (_, id) => {
      const { fetch, sent } = oauthServer((request) =>
        request.method === 'POST' ? json(201, endpoint({ id })) : json(200, { results: [endpoint({ id })] }),
      );
      const atlas = client(fetch);

      const created = await failureOf(
        atlas.createEndpoint(GROUP, { cloudProvider: 'AWS', regionName: 'US_EAST_1' }),
      );
      const listed = await failureOf(atlas.listEndpoints(GROUP, 'AWS'));

      for (const error of [created, listed]) {
        expect(error).toBeInstanceOf(AtlasApiError);
        expect(error).toMatchObject({ errorCode: 'INVALID_RESPONSE' });
        expect((error as AtlasApiError).detail).toContain('id: must be 24 lowercase hex characters');
      }
      expect(sent.filter((r) => r.url.includes(id))).toEqual([]);
    },
  );

  it('keeps a status Atlas may add later and an errorMessage it sends', async () => {
    const { fetch } = oauthServer(() => json(200, endpoint({ status: 'QUARANTINED', errorMessage: 'why' })));

    const found = await client(fetch).getEndpoint(GROUP, 'AWS', ENDPOINT_ID);

    expect(found).toMatchObject({ status: 'QUARANTINED', errorMessage: 'why' });
  });

  it('cuts an errorMessage longer than MAX_ERROR_MESSAGE, in a get and in a listing', async () => {
    const long = `${'x'.repeat(MAX_ERROR_MESSAGE)}and more`;
    const { fetch } = oauthServer((request) =>
      request.url.endsWith(ENDPOINT_ID)
        ? json(200, endpoint({ status: 'FAILED', errorMessage: long }))
        : json(200, { results: [endpoint({ status: 'FAILED', errorMessage: long })], totalCount: 1 }),
    );

    const found = await client(fetch).getEndpoint(GROUP, 'AWS', ENDPOINT_ID);
    const [listed] = await client(fetch).listEndpoints(GROUP, 'AWS');

    expect(MAX_ERROR_MESSAGE).toBe(1_000);
    expect(found.errorMessage).toBe('x'.repeat(MAX_ERROR_MESSAGE));
    expect(listed?.errorMessage).toBe('x'.repeat(MAX_ERROR_MESSAGE));
  });

  it('cuts a status longer than MAX_STATUS, in a get and in a listing, keeping a short unknown one', async () => {
    const long = 'Q'.repeat(10_000);
    const { fetch } = oauthServer((request) =>
      request.url.endsWith(ENDPOINT_ID)
        ? json(200, endpoint({ status: long }))
        : json(200, { results: [endpoint({ status: long })], totalCount: 1 }),
    );

    const found = await client(fetch).getEndpoint(GROUP, 'AWS', ENDPOINT_ID);
    const [listed] = await client(fetch).listEndpoints(GROUP, 'AWS');

    expect(MAX_STATUS).toBe(64);
    expect(found.status).toBe('Q'.repeat(MAX_STATUS));
    expect(listed?.status).toBe('Q'.repeat(MAX_STATUS));
  });

  it('reads every page until a short page', async () => {
    const all = Array.from({ length: 5 }, (_, i) => endpoint({ id: `${i}`.padStart(24, 'a') }));
    const { fetch, sent } = oauthServer((request) => {
      const query = new URL(request.url).searchParams;
      const size = Number(query.get('itemsPerPage'));
      const page = Number(query.get('pageNum'));
      return json(200, { results: all.slice((page - 1) * size, page * size), links: [] });
    });

    const listed = await client(fetch).listEndpoints(GROUP, 'AWS', { itemsPerPage: 2 });

    expect(listed.map((e) => e.id)).toEqual(all.map((e) => e.id));
    const pages = sent.filter((r) => !isTokenRequest(r)).map((r) => new URL(r.url).search);
    expect(pages).toEqual([
      '?itemsPerPage=2&pageNum=1',
      '?itemsPerPage=2&pageNum=2',
      '?itemsPerPage=2&pageNum=3',
    ]);
  });

  it('reads past a full page whatever totalCount estimates, and stops on a page that brings nothing new', async () => {
    const all = Array.from({ length: 3 }, (_, i) => endpoint({ id: `${i}`.padStart(24, 'b') }));
    const { fetch } = oauthServer((request) => {
      const page = Number(new URL(request.url).searchParams.get('pageNum'));
      // The spec calls totalCount an estimate: this one says 2 of 3, and no page has a next link.
      return json(200, { results: all.slice((page - 1) * 2, page * 2), totalCount: 2, links: [] });
    });

    const listed = await client(fetch).listEndpoints(GROUP, 'AWS', { itemsPerPage: 2 });

    expect(listed.map((e) => e.id)).toEqual(all.map((e) => e.id));
  });

  it('stops when a server repeats a full page, and asks 500 a page by default', async () => {
    const { fetch, sent } = oauthServer(() => json(200, { results: [endpoint()], totalCount: 1 }));
    const one = await client(fetch).listEndpoints(GROUP, 'AWS', { itemsPerPage: 1 });
    const { fetch: emptyFetch, sent: emptySent } = oauthServer(() =>
      json(200, { results: null, totalCount: null, links: null }),
    );

    const none = await client(emptyFetch).listEndpoints(GROUP, 'AWS');

    expect(one).toHaveLength(1);
    expect(sent.filter((r) => !isTokenRequest(r))).toHaveLength(2);
    expect(none).toEqual([]);
    expect(new URL(emptySent.at(-1)?.url ?? '').searchParams.get('itemsPerPage')).toBe('500');
  });

  it.each([0, 501, 1.5])('refuses itemsPerPage %s without calling Atlas', async (itemsPerPage) => {
    const { fetch, sent } = oauthServer(() => json(200, { results: [] }));

    await expect(client(fetch).listEndpoints(GROUP, 'AWS', { itemsPerPage })).rejects.toThrow(RangeError);
    expect(sent).toHaveLength(0);
  });
});

describe('AtlasClient errors', () => {
  it('does not follow a redirect: asks fetch not to, and fails with REDIRECT_REFUSED for the DLQ', async () => {
    const inits: Array<RequestInit | undefined> = [];
    const fetch: typeof globalThis.fetch = async (input, init) => {
      inits.push(init);
      if (String(input).endsWith('/api/oauth/token')) return tokenAnswer();
      return new Response('', { status: 307, headers: { location: 'https://evil.test/steal?x=1' } });
    };

    const error = await failureOf(client(fetch).listEndpoints(GROUP, 'AWS'));

    expect(inits.map((init) => init?.redirect)).toEqual(['manual', 'manual']);
    expect(error).toBeInstanceOf(AtlasApiError);
    expect(error).toMatchObject({ status: 307, errorCode: 'REDIRECT_REFUSED', operation: 'list' });
    expect((error as AtlasApiError).detail).toContain('https://evil.test;');
    expect((error as AtlasApiError).detail).not.toContain('steal');
    expect(describeFailure(error)).toMatchObject({
      disposition: 'dlq',
      code: 'REDIRECT_REFUSED',
      httpStatus: 307,
    });
  });

  it('refuses a redirect from the OAuth token endpoint too', async () => {
    const { fetch } = fakeFetch(() => new Response('', { status: 302, headers: { location: '/login' } }));

    const error = await failureOf(client(fetch).listEndpoints(GROUP, 'AWS'));

    expect(error).toMatchObject({ status: 302, errorCode: 'REDIRECT_REFUSED', operation: 'token' });
    expect(describeFailure(error).disposition).toBe('dlq');
  });

  it('maps a 429 to AtlasApiError with retryAfterSeconds, which describeFailure retries', async () => {
    const { fetch } = oauthServer(() =>
      json(
        429,
        { error: 429, errorCode: 'RATE_LIMITED', detail: null, reason: 'Too Many Requests' },
        { 'retry-after': '3' },
      ),
    );

    const error = await failureOf(
      client(fetch).createEndpoint(GROUP, { cloudProvider: 'AWS', regionName: 'US_EAST_1' }),
    );

    expect(error).toBeInstanceOf(AtlasApiError);
    expect(error).toMatchObject({
      status: 429,
      errorCode: 'RATE_LIMITED',
      detail: 'Too Many Requests',
      retryAfterSeconds: 3,
    });
    expect((error as Error).message).toContain('Atlas create failed');
    expect(describeFailure(error)).toMatchObject({
      disposition: 'retry',
      code: 'RATE_LIMITED',
      retryAfterSeconds: 3,
    });
  });

  it('maps a 503 with an empty body to HTTP_503', async () => {
    const { fetch } = oauthServer(() => new Response('', { status: 503 }));

    const error = await failureOf(client(fetch).listEndpoints(GROUP, 'AWS'));

    expect(error).toMatchObject({ status: 503, errorCode: 'HTTP_503' });
  });

  it('fails with INVALID_RESPONSE when a 200 answer is not JSON or misses the id', async () => {
    const { fetch } = oauthServer((request) =>
      request.url.includes('6a1b')
        ? new Response('<html>', { status: 200 })
        : json(200, endpoint({ id: null })),
    );
    const atlas = client(fetch);

    const notJson = await failureOf(atlas.getEndpoint(GROUP, 'AWS', ENDPOINT_ID));
    const noId = await failureOf(atlas.getEndpoint(GROUP, 'AWS', ENDPOINT_ID.replace('6a1b', '7a1b')));

    expect(notJson).toMatchObject({
      status: 200,
      errorCode: 'INVALID_RESPONSE',
      detail: 'answer body is not JSON',
    });
    expect(noId).toMatchObject({ status: 200, errorCode: 'INVALID_RESPONSE' });
    expect((noId as AtlasApiError).detail).toContain('id');
  });

  it.each([
    ['null', null],
    ['an array', []],
    ['a string', 'results'],
  ])('fails with INVALID_RESPONSE when a list answer is %s, not an object', async (_, body) => {
    const { fetch } = oauthServer(() => json(200, body));

    const error = await failureOf(client(fetch).listEndpoints(GROUP, 'AWS'));

    expect(error).toMatchObject({ errorCode: 'INVALID_RESPONSE', operation: 'list' });
  });

  it('names each problem of an answer by its path, "body" for the answer itself, under the operation', async () => {
    const { fetch } = oauthServer((request) => {
      if (request.method === 'POST') return json(201, null);
      if (request.url.includes('?')) return json(200, { results: [endpoint({ id: 'x', status: 1 })] });
      return json(200, endpoint({ cloudProvider: 'GCP' }));
    });
    const atlas = client(fetch);

    const created = await failureOf(
      atlas.createEndpoint(GROUP, { cloudProvider: 'AWS', regionName: 'US_EAST_1' }),
    );
    const listed = await failureOf(atlas.listEndpoints(GROUP, 'AWS'));
    const got = await failureOf(atlas.getEndpoint(GROUP, 'AWS', ENDPOINT_ID));

    expect(created).toMatchObject({
      operation: 'create',
      detail: expect.stringMatching(/^unexpected answer body: body: /),
    });
    expect(listed).toMatchObject({
      operation: 'list',
      detail: expect.stringMatching(
        /^unexpected answer body: results\.0\.id: must be 24 lowercase hex characters; results\.0\.status: /,
      ),
    });
    expect(got).toMatchObject({
      operation: 'get',
      detail: expect.stringMatching(/^unexpected answer body: cloudProvider: /),
    });
  });

  it('turns a connection failure into AtlasNetworkError "network" keeping the original as cause', async () => {
    const reset = new TypeError('fetch failed', {
      cause: Object.assign(new Error('read ECONNRESET'), { code: 'ECONNRESET' }),
    });
    const { fetch } = oauthServer(() => Promise.reject(reset));

    const error = await failureOf(client(fetch).getEndpoint(GROUP, 'AWS', ENDPOINT_ID));

    expect(error).toBeInstanceOf(AtlasNetworkError);
    expect(error).toMatchObject({ operation: 'get', reason: 'network', cause: reset });
  });

  it('turns a request past timeoutMs into AtlasNetworkError "timeout"', async () => {
    const { fetch } = oauthServer(
      (_, signal) =>
        new Promise<Response>((_resolve, reject) => {
          signal?.addEventListener('abort', () => reject(signal.reason));
        }),
    );

    const error = await failureOf(client(fetch, { timeoutMs: 20 }).getEndpoint(GROUP, 'AWS', ENDPOINT_ID));

    expect(error).toBeInstanceOf(AtlasNetworkError);
    expect(error).toMatchObject({ reason: 'timeout' });
    expect(describeFailure(error).code).toBe('ATLAS_TIMEOUT');
  });

  it('reports every round trip to onCall with its status, duration and remaining rate limit', async () => {
    let now = 0;
    const calls: AtlasCallInfo[] = [];
    const { fetch } = fakeFetch((request) => {
      now += 5;
      if (isTokenRequest(request)) return tokenAnswer();
      if (request.method === 'DELETE') return Promise.reject(new TypeError('fetch failed'));
      return json(200, endpoint(), { 'ratelimit-remaining': '99', 'ratelimit-limit': '100' });
    });
    const atlas = client(fetch, { now: () => now, onCall: (info) => calls.push(info) });

    await atlas.getEndpoint(GROUP, 'AWS', ENDPOINT_ID);
    await failureOf(atlas.deleteEndpoint(GROUP, 'AWS', ENDPOINT_ID));

    expect(calls).toEqual([
      { operation: 'token', status: 200, durationMs: 5 },
      { operation: 'get', status: 200, durationMs: 5, rateLimitRemaining: 99 },
      { operation: 'delete', durationMs: 5 },
    ]);
  });
});

/** A Digest server for one key: challenges, checks the answer, counts nc; `stale` marks nonces expired. */
const digestServer = (options: { privateKey?: string; staleNonces?: Set<string> } = {}) => {
  let nonces = 0;
  const issued = new Set<string>();
  const challenge = (stale = false) => {
    const nonce = `nonce-${++nonces}`;
    issued.add(nonce);
    return new Response('{"error":401,"errorCode":"UNAUTHORIZED"}', {
      status: 401,
      headers: {
        'www-authenticate': `Digest realm="MMS Public API", domain="", nonce="${nonce}", algorithm=MD5, qop="auth", stale=${stale}`,
      },
    });
  };
  const server = fakeFetch((request) => {
    const header = request.headers.authorization;
    if (!header) return challenge();
    const field = (name: string) => new RegExp(`${name}="?([^",]*)"?`).exec(header)?.[1] ?? '';
    const nonce = field('nonce');
    if (options.staleNonces?.has(nonce) || !issued.has(nonce)) return challenge(true);
    const expected = digestResponse({
      username: field('username'),
      password: options.privateKey ?? PRIVATE_KEY,
      method: request.method,
      uri: field('uri'),
      nc: Number.parseInt(field('nc'), 16),
      cnonce: field('cnonce'),
      challenge: parseDigestChallenge(header.replace(/^Digest/, 'Digest ')) ?? {
        realm: '',
        nonce,
        algorithm: 'MD5',
        stale: false,
      },
    });
    if (field('response') !== expected) return challenge();
    return request.method === 'POST' ? json(201, endpoint()) : json(200, endpoint());
  });
  return { ...server, nonceOf: (r: Sent) => /nonce="([^"]*)"/.exec(r.headers.authorization ?? '')?.[1] };
};

const ncOf = (r: Sent) => /nc=([0-9a-f]{8})/.exec(r.headers.authorization ?? '')?.[1];

describe('AtlasClient with an API key (Digest)', () => {
  it('answers the first challenge resending the body, then answers pre-emptively with an incrementing nc', async () => {
    const { fetch, sent } = digestServer();
    const atlas = client(fetch, { credentials: apiKey });
    const body = { cloudProvider: 'AWS', regionName: 'EU_WEST_1' } as const;

    await atlas.createEndpoint(GROUP, body);
    await atlas.getEndpoint(GROUP, 'AWS', ENDPOINT_ID);
    await atlas.listEndpoints(GROUP, 'AWS');

    expect(sent.map((r) => [r.method, r.headers.authorization ? ncOf(r) : 'none'])).toEqual([
      ['POST', 'none'],
      ['POST', '00000001'],
      ['GET', '00000002'],
      ['GET', '00000003'],
    ]);
    expect(sent[1]?.body).toBe(JSON.stringify(body));
    expect(sent[3]?.headers.authorization).toContain(
      `uri="/api/atlas/v2/groups/${GROUP}/backup/AWS/privateEndpoints?itemsPerPage=500&pageNum=1"`,
    );
  });

  it('lets concurrent calls of a cold client share one challenge', async () => {
    const { fetch, sent } = digestServer();
    const atlas = client(fetch, { credentials: apiKey });

    await Promise.all(Array.from({ length: 4 }, () => atlas.getEndpoint(GROUP, 'AWS', ENDPOINT_ID)));

    expect(sent.filter((r) => !r.headers.authorization)).toHaveLength(1);
    expect(sent).toHaveLength(5);
    expect(new Set(sent.map(ncOf)).size).toBe(5);
  });

  it('answers a stale challenge once with the new nonce', async () => {
    const staleNonces = new Set<string>();
    const { fetch, sent, nonceOf } = digestServer({ staleNonces });
    const atlas = client(fetch, { credentials: apiKey });
    await atlas.getEndpoint(GROUP, 'AWS', ENDPOINT_ID);
    staleNonces.add('nonce-1');

    await atlas.getEndpoint(GROUP, 'AWS', ENDPOINT_ID);

    expect(sent.slice(2).map((r) => [nonceOf(r), ncOf(r)])).toEqual([
      ['nonce-1', '00000002'],
      ['nonce-2', '00000001'],
    ]);
  });

  it('answers a stale challenge that follows the first one, as when the first answer was slow', async () => {
    const { fetch, sent, nonceOf } = digestServer({ staleNonces: new Set(['nonce-1']) });

    const found = await client(fetch, { credentials: apiKey }).getEndpoint(GROUP, 'AWS', ENDPOINT_ID);

    expect(found.id).toBe(ENDPOINT_ID);
    expect(sent.map((r) => [nonceOf(r) ?? 'none', ncOf(r) ?? 'none'])).toEqual([
      ['none', 'none'],
      ['nonce-1', '00000001'],
      ['nonce-2', '00000001'],
    ]);
  });

  it('fails with 401 when the answered credentials are wrong, without a second answer', async () => {
    const { fetch, sent } = digestServer({ privateKey: 'the-real-key' });

    const error = await failureOf(
      client(fetch, { credentials: apiKey }).getEndpoint(GROUP, 'AWS', ENDPOINT_ID),
    );

    expect(error).toBeInstanceOf(AtlasApiError);
    expect(error).toMatchObject({ status: 401, errorCode: 'UNAUTHORIZED' });
    expect(sent).toHaveLength(2);
  });

  it('fails when a stale challenge is stale again, instead of looping', async () => {
    const { fetch, sent } = fakeFetch(
      () =>
        new Response('', {
          status: 401,
          headers: {
            'www-authenticate': 'Digest realm="r", nonce="n", algorithm=MD5, qop="auth", stale=true',
          },
        }),
    );

    const error = await failureOf(
      client(fetch, { credentials: apiKey }).getEndpoint(GROUP, 'AWS', ENDPOINT_ID),
    );

    expect(error).toMatchObject({ status: 401, errorCode: 'HTTP_401' });
    expect(sent.map((r) => ncOf(r) ?? 'none')).toEqual(['none', '00000001', '00000001']);
  });
});

/** Everything an error could leak through: text, stack, serialisation, and each cause. */
const everythingIn = (error: unknown): string => {
  const parts: string[] = [String(error)];
  let current: unknown = error;
  while (current instanceof Error) {
    parts.push(current.message, current.stack ?? '', JSON.stringify(current));
    current = current.cause;
  }
  return parts.join('\n');
};

describe('AtlasClient secrets', () => {
  const secrets = [
    CLIENT_SECRET,
    PRIVATE_KEY,
    ACCESS_TOKEN,
    Buffer.from(`mdb_sa_id_unit:${CLIENT_SECRET}`).toString('base64'),
  ];

  it.each([
    [
      'a token error',
      serviceAccount,
      () => json(400, { error: 'invalid_request', error_description: 'bad' }),
    ],
    ['a network error', serviceAccount, () => Promise.reject(new TypeError('fetch failed'))],
    [
      'a 500 on the API call',
      serviceAccount,
      (r: Sent) => (isTokenRequest(r) ? tokenAnswer() : json(500, {})),
    ],
    [
      'an invalid token answer',
      serviceAccount,
      () => json(200, { access_token: ACCESS_TOKEN, expires_in: 'x' }),
    ],
    [
      'a Digest 401',
      apiKey,
      () =>
        new Response('', {
          status: 401,
          headers: { 'www-authenticate': 'Digest realm="r", nonce="n", qop="auth"' },
        }),
    ],
    [
      'a Digest timeout',
      apiKey,
      (_: Sent, signal: AbortSignal | undefined) =>
        new Promise<Response>((_r, reject) => signal?.addEventListener('abort', () => reject(signal.reason))),
    ],
  ] as const)('keeps credentials and tokens out of %s', async (_, credentials, handler) => {
    const { fetch } = fakeFetch(handler);

    const error = await failureOf(
      client(fetch, { credentials, timeoutMs: 20 }).createEndpoint(GROUP, {
        cloudProvider: 'AWS',
        regionName: 'US_EAST_1',
      }),
    );

    expect(error).toBeInstanceOf(Error);
    const text = everythingIn(error);
    for (const secret of secrets) expect(text).not.toContain(secret);
    expect(text).not.toMatch(/authorization|Bearer |Digest username/i);
  });
});
