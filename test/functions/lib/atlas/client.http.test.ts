/**
 * AtlasClient over real HTTP against the Atlas simulator (started here): both auth methods, token
 * and nonce reuse, faults, pagination, and every request checked against the official spec.
 */
import { createServer } from 'node:http';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { type AtlasCallInfo, AtlasClient, type AtlasClientOptions } from '#atlas/client.ts';
import type { AtlasCredentials } from '#atlas/types.ts';
import { AtlasApiError, AtlasNetworkError } from '#lib/errors.ts';
import { startAtlasSimulator } from '#test/simulator/index.ts';
import type { AtlasSimulator, RecordedRequest, SimOperation } from '#test/simulator/types.ts';

const SERVICE_ACCOUNT = { clientId: 'mdb_sa_id_http', clientSecret: 'mdb_sa_sk_http-test-secret' };
const API_KEY = { publicKey: 'httppubkey', privateKey: 'a1b2c3d4-http-test-private-key' };
const serviceAccount: AtlasCredentials = { kind: 'serviceAccount', ...SERVICE_ACCOUNT };
const apiKey: AtlasCredentials = { kind: 'apiKey', ...API_KEY };

let sim: AtlasSimulator;
let groups = 0;
/** A fresh project per test, so tests never see each other's endpoints. */
let group: string;

const atlas = (credentials: AtlasCredentials, options: Partial<AtlasClientOptions> = {}) =>
  new AtlasClient({ baseUrl: sim.url, credentials, timeoutMs: 2_000, ...options });

const recorded = (operation?: SimOperation): RecordedRequest[] =>
  sim.requests.filter((r) => operation === undefined || r.operation === operation);

const failureOf = async (promise: Promise<unknown>): Promise<unknown> =>
  promise.then(
    () => {
      throw new Error('expected a failure');
    },
    (error: unknown) => error,
  );

beforeAll(async () => {
  // Atlas's default per-project rate limit: far above what one test sends, but it sets RateLimit-* headers.
  sim = await startAtlasSimulator({ serviceAccounts: [SERVICE_ACCOUNT], apiKeys: [API_KEY] });
});

afterAll(async () => {
  await sim?.close();
});

beforeEach(() => {
  sim.reset();
  groups += 1;
  group = groups.toString(16).padStart(24, 'b');
});

afterEach(() => {
  // Every request the client sent is valid against the official spec.
  expect(sim.requests.filter((r) => r.specViolations.length > 0)).toEqual([]);
  expect(sim.requests.filter((r) => 'envelope' in r.query)).toEqual([]);
});

describe.each([
  ['a service account (OAuth)', serviceAccount],
  ['an API key (Digest)', apiKey],
])('AtlasClient with %s', (_, credentials) => {
  it('creates, gets, lists and deletes an endpoint', async () => {
    const client = atlas(credentials);

    const created = await client.createEndpoint(group, {
      cloudProvider: 'AWS',
      regionName: 'EU_WEST_1',
      vpcRegionName: 'EU_CENTRAL_1',
    });
    const fetched = await client.getEndpoint(group, 'AWS', created.id);
    const listed = await client.listEndpoints(group, 'AWS');
    await client.deleteEndpoint(group, 'AWS', created.id);

    expect(created).toMatchObject({
      cloudProvider: 'AWS',
      regionName: 'EU_WEST_1',
      vpcRegionName: 'EU_CENTRAL_1',
    });
    expect(created.id).toMatch(/^[a-f0-9]{24}$/);
    expect(fetched.id).toBe(created.id);
    expect(listed.map((e) => e.id)).toEqual([created.id]);
    expect(sim.endpoints(group).find((e) => e.id === created.id)?.status ?? 'gone').toMatch(
      /^(DELETING|gone)$/,
    );
    expect(recorded().map((r) => [r.operation, r.status])).toEqual(
      credentials.kind === 'serviceAccount'
        ? [
            ['token', 200],
            ['create', 201],
            ['get', 200],
            ['list', 200],
            ['delete', 204],
          ]
        : [
            ['create', 401],
            ['create', 201],
            ['get', 200],
            ['list', 200],
            ['delete', 204],
          ],
    );
  });

  it('fails with AtlasApiError 401 for wrong credentials', async () => {
    const wrong: AtlasCredentials =
      credentials.kind === 'serviceAccount'
        ? { ...credentials, clientSecret: 'mdb_sa_sk_wrong' }
        : { ...credentials, privateKey: 'wrong-private-key' };

    const error = await failureOf(atlas(wrong).listEndpoints(group, 'AWS'));

    expect(error).toBeInstanceOf(AtlasApiError);
    expect(error).toMatchObject({ status: 401 });
    // OAuth: the token request alone; Digest: the challenge and one answer, never a second.
    expect(recorded()).toHaveLength(credentials.kind === 'serviceAccount' ? 1 : 2);
  });

  it('fails with 404 for an endpoint that does not exist', async () => {
    const error = await failureOf(atlas(credentials).getEndpoint(group, 'AWS', 'f'.repeat(24)));

    expect(error).toBeInstanceOf(AtlasApiError);
    expect(error).toMatchObject({ status: 404 });
  });

  it('reads every page when there are more endpoints than itemsPerPage', async () => {
    const seeded = Array.from({ length: 7 }, () =>
      sim.seedEndpoint(group, { cloudProvider: 'AWS', regionName: 'US_EAST_1', status: 'ACTIVE' }),
    );

    const listed = await atlas(credentials).listEndpoints(group, 'AWS', { itemsPerPage: 3 });

    expect(listed.map((e) => e.id).sort()).toEqual(seeded.map((e) => e.id).sort());
    expect(
      recorded('list')
        .filter((r) => r.status === 200)
        .map((r) => r.query),
    ).toEqual([
      expect.objectContaining({ itemsPerPage: '3', pageNum: '1' }),
      expect.objectContaining({ itemsPerPage: '3', pageNum: '2' }),
      expect.objectContaining({ itemsPerPage: '3', pageNum: '3' }),
    ]);
  });

  it('passes on a 429 with its Retry-After as retryAfterSeconds', async () => {
    sim.injectFault({
      fault: { kind: 'status', status: 429, retryAfterSeconds: 7 },
      operations: ['create'],
      times: 1,
    });

    const error = await failureOf(
      atlas(credentials).createEndpoint(group, { cloudProvider: 'AWS', regionName: 'US_EAST_1' }),
    );

    expect(error).toBeInstanceOf(AtlasApiError);
    expect(error).toMatchObject({ status: 429, retryAfterSeconds: 7 });
    expect(sim.endpoints(group)).toEqual([]);
  });

  it('passes on a 503', async () => {
    sim.injectFault({ fault: { kind: 'status', status: 503 }, operations: ['list'], times: 1 });

    const error = await failureOf(atlas(credentials).listEndpoints(group, 'AWS'));

    expect(error).toBeInstanceOf(AtlasApiError);
    expect(error).toMatchObject({ status: 503 });
  });

  it('fails with AtlasNetworkError "timeout" when the answer comes after timeoutMs', async () => {
    sim.injectFault({ fault: { kind: 'delay', ms: 1_000 }, operations: ['get'], times: 1 });

    const error = await failureOf(
      atlas(credentials, { timeoutMs: 150 }).getEndpoint(group, 'AWS', 'f'.repeat(24)),
    );

    expect(error).toBeInstanceOf(AtlasNetworkError);
    expect(error).toMatchObject({ operation: 'get', reason: 'timeout' });
  });

  it('fails with AtlasNetworkError "network" when the connection is reset', async () => {
    sim.injectFault({ fault: { kind: 'reset' }, operations: ['list'], times: 1 });

    const error = await failureOf(atlas(credentials).listEndpoints(group, 'AWS'));

    expect(error).toBeInstanceOf(AtlasNetworkError);
    expect(error).toMatchObject({ operation: 'list', reason: 'network' });
  });
});

describe('AtlasClient with a service account', () => {
  it('gets one token for many calls', async () => {
    const client = atlas(serviceAccount);

    for (let i = 0; i < 5; i++) await client.listEndpoints(group, 'AWS');

    expect(recorded('token')).toHaveLength(1);
    expect(recorded('list').map((r) => r.auth)).toEqual(Array(5).fill('bearer'));
  });

  it('shares one token request between concurrent calls of a cold client', async () => {
    const client = atlas(serviceAccount);

    await Promise.all(Array.from({ length: 6 }, () => client.listEndpoints(group, 'AWS')));

    expect(recorded('token')).toHaveLength(1);
    expect(recorded('list')).toHaveLength(6);
  });

  it('gets a new token after the old one was revoked by Atlas and rejected once', async () => {
    const client = atlas(serviceAccount);
    await client.listEndpoints(group, 'AWS');
    sim.revokeAllTokens();

    const error = await failureOf(client.listEndpoints(group, 'AWS'));
    await client.listEndpoints(group, 'AWS');

    expect(error).toMatchObject({ status: 401 });
    expect(recorded('token')).toHaveLength(2);
  });

  it('revokes its token, then gets a new one for the next call', async () => {
    const client = atlas(serviceAccount);
    await client.listEndpoints(group, 'AWS');

    await client.revokeToken();
    await client.listEndpoints(group, 'AWS');

    expect(recorded().map((r) => [r.operation, r.status])).toEqual([
      ['token', 200],
      ['list', 200],
      ['revoke', 200],
      ['token', 200],
      ['list', 200],
    ]);
  });

  it('reports each round trip to onCall, with the remaining rate limit Atlas announced', async () => {
    const calls: AtlasCallInfo[] = [];
    const client = atlas(serviceAccount, { onCall: (info) => calls.push(info) });

    await client.listEndpoints(group, 'AWS');

    expect(calls.map((c) => [c.operation, c.status, c.rateLimitRemaining])).toEqual([
      ['token', 200, undefined],
      ['list', 200, 1199],
    ]);
    expect(calls.every((c) => c.durationMs >= 0)).toBe(true);
  });
});

describe('AtlasClient with an API key', () => {
  it('pays the Digest challenge once for several calls, so a warm create is one request', async () => {
    const client = atlas(apiKey);
    await client.listEndpoints(group, 'AWS');
    const before = sim.requests.length;

    await client.createEndpoint(group, { cloudProvider: 'AWS', regionName: 'AP_SOUTH_1' });
    await client.listEndpoints(group, 'AWS');
    await client.listEndpoints(group, 'AWS');

    expect(recorded().filter((r) => r.auth === 'challenge')).toHaveLength(1);
    expect(sim.requests.slice(before).map((r) => [r.operation, r.auth, r.status])).toEqual([
      ['create', 'digest', 201],
      ['list', 'digest', 200],
      ['list', 'digest', 200],
    ]);
  });

  it('shares one challenge between concurrent calls of a cold client', async () => {
    const client = atlas(apiKey);

    await Promise.all(Array.from({ length: 5 }, () => client.listEndpoints(group, 'AWS')));

    expect(recorded().filter((r) => r.auth === 'challenge')).toHaveLength(1);
    expect(recorded('list').filter((r) => r.status === 200)).toHaveLength(5);
  });

  it('does nothing on revokeToken', async () => {
    await atlas(apiKey).revokeToken();

    expect(sim.requests).toHaveLength(0);
  });
});

describe('AtlasClient with an API key when nonces expire', () => {
  const NONCE_TTL_MS = 250;
  let shortNonces: AtlasSimulator;

  beforeAll(async () => {
    shortNonces = await startAtlasSimulator({
      apiKeys: [API_KEY],
      rateLimit: false,
      nonceTtlMs: NONCE_TTL_MS,
    });
  });

  afterAll(async () => {
    await shortNonces?.close();
  });

  it('answers a stale challenge once with the new nonce and succeeds', async () => {
    const client = new AtlasClient({ baseUrl: shortNonces.url, credentials: apiKey });
    await client.listEndpoints(group, 'AWS');
    // The nonce has to age past its lifetime: nothing to wait on but the clock.
    await new Promise((resolve) => setTimeout(resolve, NONCE_TTL_MS + 50));

    await client.listEndpoints(group, 'AWS');

    expect(shortNonces.requests.map((r) => [r.auth, r.status])).toEqual([
      ['challenge', 401],
      ['digest', 200],
      ['challenge', 401],
      ['digest', 200],
    ]);
    expect(shortNonces.requests.flatMap((r) => r.specViolations)).toEqual([]);
  });
});

describe('AtlasClient behind a redirecting base URL', () => {
  it('does not follow a real 3xx to the simulator: no credentials or body reach it', async () => {
    // Prepare: a server on loopback that redirects everything to the simulator.
    const hits: string[] = [];
    const redirector = createServer((req, res) => {
      hits.push(`${req.method} ${req.url}`);
      res.writeHead(307, { location: `${sim.url}${req.url}` }).end();
    });
    await new Promise<void>((ok) => redirector.listen(0, '127.0.0.1', ok));
    const { port } = redirector.address() as { port: number };

    try {
      // Act
      const error = await failureOf(
        atlas(apiKey, { baseUrl: `http://127.0.0.1:${port}` }).createEndpoint(group, {
          cloudProvider: 'AWS',
          regionName: 'US_EAST_1',
        }),
      );
      const tokenError = await failureOf(
        atlas(serviceAccount, { baseUrl: `http://127.0.0.1:${port}` }).listEndpoints(group, 'AWS'),
      );

      // Assess
      expect(error).toMatchObject({ status: 307, errorCode: 'REDIRECT_REFUSED', operation: 'create' });
      expect(tokenError).toMatchObject({ status: 307, errorCode: 'REDIRECT_REFUSED', operation: 'token' });
      expect(hits).toHaveLength(2);
      expect(sim.requests).toEqual([]);
    } finally {
      await new Promise((ok) => redirector.close(ok));
    }
  });
});
