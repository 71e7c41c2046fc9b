import { describe, expect, it } from 'vitest';
import { AtlasHttp, type HttpRequest } from '#atlas/http.ts';
import { OAuthAuth } from '#atlas/oauth.ts';
import { AtlasApiError } from '#lib/errors.ts';

const BASE = 'https://atlas.test';
const API: HttpRequest = { operation: 'get', method: 'GET', url: `${BASE}/api/atlas/v2/x`, headers: {} };

interface Sent {
  url: string;
  headers: Record<string, string>;
  body?: string;
}

const json = (status: number, body: unknown) =>
  new Response(JSON.stringify(body), { status, headers: { 'content-type': 'application/json' } });
const tokenAnswer = (token: string, expiresIn = 3600) =>
  json(200, { access_token: token, expires_in: expiresIn, token_type: 'bearer' });
const isToken = (r: Sent) => r.url === `${BASE}/api/oauth/token`;

/**
 * An AtlasHttp over a fetch that issues numbered tokens and answers API calls with `api`; the
 * clock is `clock.now`.
 */
const setup = (api: (request: Sent) => Response | Promise<Response> = () => json(200, {})) => {
  const sent: Sent[] = [];
  const clock = { now: 1_000_000 };
  let issued = 0;
  const http = new AtlasHttp({
    timeoutMs: 5_000,
    now: () => clock.now,
    fetch: async (input, init) => {
      const request: Sent = {
        url: String(input),
        headers: Object.fromEntries(new Headers(init?.headers)),
        ...(typeof init?.body === 'string' && { body: init.body }),
      };
      sent.push(request);
      if (isToken(request)) return tokenAnswer(`token-${++issued}`);
      return api(request);
    },
  });
  const auth = new OAuthAuth({ baseUrl: BASE, clientId: 'id', clientSecret: 'secret' });
  return { http, auth, sent, clock, tokens: () => sent.filter(isToken).length };
};

const failureOf = async (promise: Promise<unknown>): Promise<unknown> =>
  promise.then(
    () => {
      throw new Error('expected a failure');
    },
    (error: unknown) => error,
  );

describe('OAuthAuth', () => {
  it('asks the token endpoint for JSON, with form-encoded client credentials', async () => {
    const { http, auth, sent } = setup();

    await auth.send(http, API);

    expect(sent[0]?.headers).toMatchObject({
      accept: 'application/json',
      'content-type': 'application/x-www-form-urlencoded',
      authorization: `Basic ${Buffer.from('id:secret').toString('base64')}`,
    });
  });

  it('renews a token that lives two minutes or less at half its lifetime', async () => {
    const answers = [tokenAnswer('short-1', 60), tokenAnswer('short-2', 60)];
    const sent: string[] = [];
    const clock = { now: 0 };
    const http = new AtlasHttp({
      timeoutMs: 5_000,
      now: () => clock.now,
      fetch: async (input, init) => {
        if (String(input).endsWith('/api/oauth/token')) return answers.shift() ?? json(500, {});
        sent.push(new Headers(init?.headers).get('authorization') ?? '');
        return json(200, {});
      },
    });
    const auth = new OAuthAuth({ baseUrl: BASE, clientId: 'id', clientSecret: 'secret' });

    await auth.send(http, API);
    clock.now = 29_999;
    await auth.send(http, API);
    clock.now = 30_000;
    await auth.send(http, API);

    expect(sent).toEqual(['Bearer short-1', 'Bearer short-1', 'Bearer short-2']);
  });

  it('keeps a newer token when a call made with an older one comes back 401 late', async () => {
    let releaseLate = (_: Response) => {};
    const late = new Promise<Response>((resolve) => {
      releaseLate = resolve;
    });
    let calls = 0;
    const { http, auth, tokens, sent } = setup(() => {
      calls += 1;
      if (calls === 2) return json(401, { errorCode: 'UNAUTHORIZED' }); // token-1 rejected at once
      if (calls === 3) return late; // token-1 rejected, answered late
      return json(200, {});
    });
    await auth.send(http, API); // gets token-1

    const first = auth.send(http, API);
    const slow = auth.send(http, API);
    await first; // 401: token-1 dropped
    await auth.send(http, API); // gets token-2
    releaseLate(json(401, { errorCode: 'UNAUTHORIZED' }));
    await slow;
    await auth.send(http, API);

    expect(tokens()).toBe(2);
    expect(sent.at(-1)?.headers.authorization).toBe('Bearer token-2');
  });

  it('names the unexpected fields of a token answer, never their values, as INVALID_RESPONSE', async () => {
    const { http } = setup();
    const bad = new AtlasHttp({
      timeoutMs: 5_000,
      now: http.now,
      fetch: async () => json(200, { access_token: '', expires_in: 0, token_type: 'mac' }),
    });
    const auth = new OAuthAuth({ baseUrl: BASE, clientId: 'id', clientSecret: 'secret' });

    const error = await failureOf(auth.send(bad, API));

    expect(error).toBeInstanceOf(AtlasApiError);
    expect(error).toMatchObject({
      status: 200,
      errorCode: 'INVALID_RESPONSE',
      operation: 'token',
      detail: 'token answer has unexpected access_token, expires_in, token_type',
    });
  });

  it('says the token answer’s body is unexpected when it is not JSON', async () => {
    const auth = new OAuthAuth({ baseUrl: BASE, clientId: 'id', clientSecret: 'secret' });
    const http = new AtlasHttp({ timeoutMs: 5_000, now: () => 0, fetch: async () => new Response('<html>') });

    const error = await failureOf(auth.send(http, API));

    expect(error).toMatchObject({
      errorCode: 'INVALID_RESPONSE',
      detail: 'token answer has unexpected body',
    });
  });

  it.each(['mac', 'bearer-ish', 'not bearer'])('refuses a token of type %s', async (type) => {
    const auth = new OAuthAuth({ baseUrl: BASE, clientId: 'id', clientSecret: 'secret' });
    const http = new AtlasHttp({
      timeoutMs: 5_000,
      now: () => 0,
      fetch: async () => json(200, { access_token: 't', expires_in: 3600, token_type: type }),
    });

    await expect(auth.send(http, API)).rejects.toMatchObject({
      errorCode: 'INVALID_RESPONSE',
      detail: 'token answer has unexpected token_type',
    });
  });

  it('revokes as operation revoke, and fails with Atlas’s error when the revoke is refused', async () => {
    const operations: string[] = [];
    const { auth } = setup();
    const http = new AtlasHttp({
      timeoutMs: 5_000,
      now: () => 0,
      onCall: (info) => operations.push(info.operation),
      fetch: async (input) => {
        if (String(input).endsWith('/api/oauth/token')) return tokenAnswer('t');
        if (String(input).endsWith('/api/oauth/revoke')) return json(400, { error: 'invalid_request' });
        return json(200, {});
      },
    });
    await auth.send(http, API);

    const error = await failureOf(auth.revoke(http));

    expect(operations).toEqual(['token', 'get', 'revoke']);
    expect(error).toBeInstanceOf(AtlasApiError);
    expect(error).toMatchObject({ status: 400, errorCode: 'invalid_request', operation: 'revoke' });
  });
});
