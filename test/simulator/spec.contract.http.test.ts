/**
 * The Atlas simulator against the official spec (the copy beside this file): real HTTP requests
 * with plain fetch, every answer checked against the documented statuses, media types, headers and
 * response schemas.
 */
import { createHash, randomBytes } from 'node:crypto';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { startAtlasSimulator } from '#test/simulator/index.ts';
import { type ApiOperation, type AtlasSpec, loadAtlasSpec } from '#test/simulator/spec.ts';
import type { AtlasSimulator, RecordedRequest } from '#test/simulator/types.ts';

const MEDIA_TYPE = 'application/vnd.atlas.2024-11-13+json';
const ACCOUNT = {
  clientId: `mdb_sa_id_${randomBytes(12).toString('hex')}`,
  clientSecret: randomBytes(24).toString('hex'),
};
const API_KEY: ApiKey = { publicKey: randomBytes(4).toString('hex'), privateKey: crypto.randomUUID() };
interface ApiKey {
  publicKey: string;
  privateKey: string;
}
const RATE_CAPACITY = 40;
const ACTIVATION_MS = 1000;
const DELETION_MS = 1000;

const newGroupId = () => randomBytes(12).toString('hex');
const PROJECTS = Array.from({ length: 40 }, newGroupId);
let nextProject = 0;
/** A project of its own for each test, so rate-limit buckets and endpoints never meet. */
const project = () => {
  const groupId = PROJECTS[nextProject++];
  if (!groupId) throw new Error('out of test projects: add more to PROJECTS');
  return groupId;
};

let sim: AtlasSimulator;
let spec: AtlasSpec;
let bearer: string;

interface Reply {
  status: number;
  headers: Headers;
  body: unknown;
  text: string;
}

const collectionPath = (groupId: string, cloudProvider = 'AWS') =>
  `/api/atlas/v2/groups/${groupId}/backup/${cloudProvider}/privateEndpoints`;

async function send(path: string, init: RequestInit = {}): Promise<Reply> {
  const response = await fetch(`${sim.url}${path}`, init);
  const text = await response.text();
  let body: unknown;
  try {
    body = text ? JSON.parse(text) : undefined;
  } catch {
    body = text;
  }
  return { status: response.status, headers: response.headers, body, text };
}

/** An Admin API call with the bearer token and the versioned media type, unless overridden. */
function call(
  method: string,
  path: string,
  options: { body?: unknown; headers?: Record<string, string> } = {},
) {
  const headers: Record<string, string> = { authorization: `Bearer ${bearer}`, accept: MEDIA_TYPE };
  if (options.body !== undefined) headers['content-type'] = MEDIA_TYPE;
  return send(path, {
    method,
    headers: { ...headers, ...options.headers },
    ...(options.body !== undefined && {
      body: typeof options.body === 'string' ? options.body : JSON.stringify(options.body),
    }),
  });
}

const create = (groupId: string, body: unknown = { cloudProvider: 'AWS', regionName: 'US_EAST_1' }) =>
  call('POST', collectionPath(groupId), { body });

/** Asserts the answer is one the spec documents for the operation, with a valid body and the declared headers. */
function expectConforms(operation: ApiOperation, reply: Reply): void {
  const op = spec.operations.find((o) => o.operation === operation);
  if (!op) throw new Error(`no ${operation} in the spec`);
  expect(op.checkResponse(reply.status, reply.headers.get('content-type') ?? undefined, reply.body)).toEqual(
    [],
  );
  for (const header of op.responseHeaders(reply.status)) {
    if (header === 'retry-after' && reply.status !== 429) continue;
    expect(reply.headers.get(header), `header ${header}`).toMatch(/^\d+$/);
  }
  if (reply.status >= 400) expect(reply.headers.get('x-error-code')).toBe(errorOf(reply).errorCode);
}

/** Asserts an ApiError (valid against the spec's schema) and returns it. */
function expectApiError(reply: Reply, status: number, errorCode: string) {
  expect(reply.status).toBe(status);
  expect(reply.headers.get('content-type')).toBe('application/json');
  expect(spec.checkApiError(reply.body)).toEqual([]);
  const error = errorOf(reply);
  expect(error).toMatchObject({ error: status, errorCode });
  expect(reply.headers.get('x-error-code')).toBe(errorCode);
  return error;
}

function errorOf(reply: Reply) {
  return reply.body as {
    error: number;
    errorCode: string;
    detail: string;
    badRequestDetail?: { fields: Array<{ field: string; description: string }> };
  };
}

const lastRequest = (): RecordedRequest => {
  const last = sim.requests.at(-1);
  if (!last) throw new Error('no request recorded');
  return last;
};

async function getToken(account = ACCOUNT): Promise<Reply> {
  return send('/api/oauth/token', {
    method: 'POST',
    headers: {
      authorization: `Basic ${Buffer.from(`${account.clientId}:${account.clientSecret}`).toString('base64')}`,
      'content-type': 'application/x-www-form-urlencoded',
      accept: 'application/json',
    },
    body: 'grant_type=client_credentials',
  });
}

async function newBearer(): Promise<string> {
  const reply = await getToken();
  expect(reply.status).toBe(200);
  return (reply.body as { access_token: string }).access_token;
}

/** Moves the clock the simulator reads (Date only; sockets and timers keep real time). */
function travel(ms: number): void {
  vi.useFakeTimers({ toFake: ['Date'] });
  vi.setSystemTime(Date.now() + ms);
}

beforeAll(async () => {
  spec = await loadAtlasSpec();
  sim = await startAtlasSimulator({
    serviceAccounts: [ACCOUNT],
    apiKeys: [API_KEY],
    projects: PROJECTS,
    activationDelayMs: ACTIVATION_MS,
    deletionDelayMs: DELETION_MS,
    rateLimit: { capacity: RATE_CAPACITY, refillPerMinute: 6 },
  });
  bearer = await newBearer();
});

afterEach(() => {
  vi.useRealTimers();
  sim.clearFaults();
  sim.setLatency(0);
});

afterAll(async () => {
  await sim?.close();
});

describe('operations', () => {
  it('creates an endpoint with 201 and a 24-hex id, INITIATING, echoing the regions', async () => {
    const groupId = project();
    const reply = await create(groupId, { cloudProvider: 'AWS', regionName: 'EU_WEST_1' });
    expectConforms('create', reply);
    expect(reply.status).toBe(201);
    expect(reply.headers.get('content-type')).toBe(MEDIA_TYPE);
    expect(reply.body).toMatchObject({
      id: expect.stringMatching(/^[a-f0-9]{24}$/),
      cloudProvider: 'AWS',
      regionName: 'EU_WEST_1',
      vpcRegionName: 'EU_WEST_1',
      status: 'INITIATING',
    });
  });

  it('gets an endpoint by id and answers 404 for an unknown id', async () => {
    const groupId = project();
    const { id } = (await create(groupId)).body as { id: string };
    const found = await call('GET', `${collectionPath(groupId)}/${id}`);
    expectConforms('get', found);
    expect(found.body).toMatchObject({ id, status: 'INITIATING' });

    const missing = await call('GET', `${collectionPath(groupId)}/${newGroupId()}`);
    expectConforms('get', missing);
    expectApiError(missing, 404, 'RESOURCE_NOT_FOUND');
  });

  it('deletes with 204 and no body; the endpoint is DELETING, then gone after the deletion delay', async () => {
    const groupId = project();
    const { id } = (await create(groupId)).body as { id: string };
    const deleted = await call('DELETE', `${collectionPath(groupId)}/${id}`);
    expectConforms('delete', deleted);
    expect(deleted.status).toBe(204);
    expect(deleted.text).toBe('');
    expect((await call('GET', `${collectionPath(groupId)}/${id}`)).body).toMatchObject({
      status: 'DELETING',
    });

    travel(DELETION_MS + 1);
    const gone = await call('GET', `${collectionPath(groupId)}/${id}`);
    expectApiError(gone, 404, 'RESOURCE_NOT_FOUND');
    const list = await call('GET', collectionPath(groupId));
    expect(list.body).toMatchObject({ results: [], totalCount: 0 });
    expect((await call('DELETE', `${collectionPath(groupId)}/${id}`)).status).toBe(404);
  });

  it('answers 409 for a second endpoint of the same regions, but not for another VPC region or after deletion', async () => {
    const groupId = project();
    const first = await create(groupId);
    const second = await create(groupId);
    expectConforms('create', second);
    const error = expectApiError(second, 409, 'BACKUP_PRIVATE_ENDPOINT_ALREADY_EXISTS');
    expect(error.detail).toContain((first.body as { id: string }).id);

    const crossRegion = await create(groupId, {
      cloudProvider: 'AWS',
      regionName: 'US_EAST_1',
      vpcRegionName: 'US_WEST_2',
    });
    expect(crossRegion.status).toBe(201);
    expect(crossRegion.body).toMatchObject({ regionName: 'US_EAST_1', vpcRegionName: 'US_WEST_2' });

    await call('DELETE', `${collectionPath(groupId)}/${(first.body as { id: string }).id}`);
    expect((await create(groupId)).status).toBe(201);
  });

  it('pages the list with itemsPerPage and pageNum, links to the next and previous pages, and counts unless told not to', async () => {
    const groupId = project();
    const regions = ['US_EAST_1', 'US_EAST_2', 'US_WEST_1', 'US_WEST_2', 'EU_WEST_1'];
    for (const regionName of regions) await create(groupId, { cloudProvider: 'AWS', regionName });

    const pages = [];
    for (const pageNum of [1, 2, 3, 4]) {
      const reply = await call('GET', `${collectionPath(groupId)}?itemsPerPage=2&pageNum=${pageNum}`);
      expectConforms('list', reply);
      pages.push(
        reply.body as {
          results: Array<{ regionName: string }>;
          totalCount?: number;
          links: Array<{ rel: string; href: string }>;
        },
      );
    }
    expect(pages.map((p) => p.results.map((r) => r.regionName))).toEqual([
      regions.slice(0, 2),
      regions.slice(2, 4),
      regions.slice(4),
      [],
    ]);
    expect(pages.map((p) => p.totalCount)).toEqual([5, 5, 5, 5]);
    expect(pages[0]?.links.map((l) => l.rel)).toEqual(['self', 'next']);
    expect(pages[1]?.links.map((l) => l.rel)).toEqual(['previous', 'self', 'next']);
    expect(pages[1]?.links.find((l) => l.rel === 'next')?.href).toContain('pageNum=3');

    const uncounted = await call('GET', `${collectionPath(groupId)}?includeCount=false`);
    expectConforms('list', uncounted);
    expect(uncounted.body).not.toHaveProperty('totalCount');
    expect((uncounted.body as { results: unknown[] }).results).toHaveLength(5);
  });

  it('sends RateLimit-Limit and RateLimit-Remaining on successes', async () => {
    const reply = await call('GET', collectionPath(project()));
    expect(reply.headers.get('ratelimit-limit')).toBe(String(RATE_CAPACITY));
    expect(reply.headers.get('ratelimit-remaining')).toBe(String(RATE_CAPACITY - 1));
  });

  it('pretty-prints with pretty=true and wraps the status into the body with envelope=true', async () => {
    const groupId = project();
    const pretty = await call('GET', `${collectionPath(groupId)}?pretty=true`);
    expect(pretty.text).toContain('\n  "results"');
    const enveloped = await call('GET', `${collectionPath(groupId)}/${newGroupId()}?envelope=true`);
    expect(enveloped.status).toBe(200);
    expect(enveloped.body).toMatchObject({ status: 404, content: { errorCode: 'RESOURCE_NOT_FOUND' } });
  });
});

describe('state machine', () => {
  it('turns INITIATING into ACTIVE with a connection name after the activation delay', async () => {
    const groupId = project();
    const { id } = (await create(groupId)).body as { id: string };
    travel(ACTIVATION_MS + 1);
    const reply = await call('GET', `${collectionPath(groupId)}/${id}`);
    expectConforms('get', reply);
    expect(reply.body).toMatchObject({
      status: 'ACTIVE',
      privateEndpointConnectionName: expect.stringMatching(/^vpce-/),
    });
  });

  it('starts new endpoints in the status set by setCreateStatus, FAILED ones with an errorMessage', async () => {
    const groupId = project();
    sim.setCreateStatus(groupId, 'FAILED', 'quota exceeded');
    const failed = await create(groupId);
    expectConforms('create', failed);
    expect(failed.body).toMatchObject({ status: 'FAILED', errorMessage: 'quota exceeded' });

    sim.setCreateStatus(groupId, 'PENDING_ACCEPTANCE');
    const pending = await create(groupId, { cloudProvider: 'AWS', regionName: 'EU_WEST_2' });
    travel(ACTIVATION_MS + 1);
    const later = await call('GET', `${collectionPath(groupId)}/${(pending.body as { id: string }).id}`);
    expect(later.body).toMatchObject({ status: 'PENDING_ACCEPTANCE' });
  });

  it('reports any status forced by setEndpointStatus, including ones the spec does not know yet', async () => {
    const groupId = project();
    const { id } = (await create(groupId)).body as { id: string };
    sim.setEndpointStatus(groupId, id, 'AWAITING_SOMETHING_NEW');
    const reply = await call('GET', `${collectionPath(groupId)}/${id}`);
    expect(reply.status).toBe(200);
    expect(reply.body).toMatchObject({ id, status: 'AWAITING_SOMETHING_NEW' });
    sim.setEndpointStatus(groupId, id, 'FAILED', 'the VPC endpoint was rejected');
    expect((await call('GET', `${collectionPath(groupId)}/${id}`)).body).toMatchObject({
      status: 'FAILED',
      errorMessage: 'the VPC endpoint was rejected',
    });
  });

  it('lists seeded endpoints and forgets removed ones (drift)', async () => {
    const groupId = project();
    const seeded = sim.seedEndpoint(groupId, {
      cloudProvider: 'AWS',
      regionName: 'AP_SOUTH_1',
      status: 'ACTIVE',
    });
    expect(seeded).toMatchObject({ groupId, id: expect.stringMatching(/^[a-f0-9]{24}$/) });
    const listed = await call('GET', collectionPath(groupId));
    expectConforms('list', listed);
    expect(listed.body).toMatchObject({
      results: [{ id: seeded.id, regionName: 'AP_SOUTH_1', status: 'ACTIVE' }],
    });

    sim.removeEndpoint(groupId, seeded.id);
    expect(sim.endpoints(groupId)).toEqual([]);
    expectApiError(await call('GET', `${collectionPath(groupId)}/${seeded.id}`), 404, 'RESOURCE_NOT_FOUND');
  });
});

describe('request validation', () => {
  it('rejects a malformed groupId with 400 INVALID_PARAMETER naming it', async () => {
    const reply = await call('GET', collectionPath('not-a-project'));
    const error = expectApiError(reply, 400, 'INVALID_PARAMETER');
    expect(error.detail).toContain('groupId');
    expect(lastRequest().specViolations).toEqual([expect.stringContaining('groupId')]);
  });

  it('rejects an unknown cloudProvider with 400 INVALID_ENUM_VALUE', async () => {
    const reply = await call('GET', collectionPath(project(), 'GCP'));
    expect(expectApiError(reply, 400, 'INVALID_ENUM_VALUE').detail).toContain('cloudProvider');
  });

  it('rejects a malformed endpointId with 400 naming it', async () => {
    const reply = await call('GET', `${collectionPath(project())}/xyz`);
    expect(expectApiError(reply, 400, 'INVALID_PARAMETER').detail).toContain('endpointId');
  });

  it('rejects an unknown region in the body with 400 INVALID_ENUM_VALUE and the field in badRequestDetail', async () => {
    const reply = await create(project(), { cloudProvider: 'AWS', regionName: 'MARS_NORTH_1' });
    expectConforms('create', reply);
    const error = expectApiError(reply, 400, 'INVALID_ENUM_VALUE');
    expect(error.badRequestDetail?.fields).toEqual([
      { field: 'regionName', description: expect.stringContaining('regionName') },
    ]);
  });

  it('rejects an unknown body field with 400 INVALID_ATTRIBUTE naming it', async () => {
    const reply = await create(project(), {
      cloudProvider: 'AWS',
      regionName: 'US_EAST_1',
      status: 'ACTIVE',
    });
    expect(expectApiError(reply, 400, 'INVALID_ATTRIBUTE').detail).toContain('status');
  });

  it('rejects a body without regionName with 400 MISSING_ATTRIBUTE', async () => {
    const reply = await create(project(), { cloudProvider: 'AWS' });
    expect(expectApiError(reply, 400, 'MISSING_ATTRIBUTE').detail).toContain('regionName');
  });

  it('rejects a body that is not JSON, and a create without a body', async () => {
    const groupId = project();
    expectApiError(await create(groupId, '{"cloudProvider":'), 400, 'INVALID_JSON');
    const empty = await call('POST', collectionPath(groupId), { headers: { 'content-type': MEDIA_TYPE } });
    expect(expectApiError(empty, 400, 'VALIDATION_ERROR').detail).toContain('body');
  });

  it('rejects itemsPerPage over 500 and unknown query parameters with 400 naming them', async () => {
    const groupId = project();
    const tooMany = await call('GET', `${collectionPath(groupId)}?itemsPerPage=501`);
    expect(expectApiError(tooMany, 400, 'INVALID_PARAMETER').detail).toContain('itemsPerPage');
    const unknown = await call('GET', `${collectionPath(groupId)}?itemPerPage=5`);
    expect(expectApiError(unknown, 400, 'INVALID_PARAMETER').detail).toContain('itemPerPage');
  });

  it('answers 406 when Accept lacks the versioned media type or names a date before 2024-11-13 or a malformed one', async () => {
    const path = collectionPath(project());
    expectApiError(
      await call('GET', path, { headers: { accept: 'application/json' } }),
      406,
      'NOT_ACCEPTABLE',
    );
    const early = await call('GET', path, { headers: { accept: 'application/vnd.atlas.2023-01-01+json' } });
    expect(expectApiError(early, 406, 'INVALID_VERSION_DATE').detail).toContain('2023-01-01');
    const malformed = await call('GET', path, {
      headers: { accept: 'application/vnd.atlas.2024-13-45+json' },
    });
    expectApiError(malformed, 406, 'INVALID_VERSION_DATE');
  });

  it('resolves a later version date to 2024-11-13', async () => {
    const reply = await call('GET', collectionPath(project()), {
      headers: { accept: 'application/vnd.atlas.2025-03-12+json' },
    });
    expectConforms('list', reply);
    expect(reply.headers.get('content-type')).toBe(MEDIA_TYPE);
    expect(lastRequest().specViolations).toEqual([]);
  });

  it('answers 415 to a create whose Content-Type is not the versioned media type', async () => {
    const reply = await call('POST', collectionPath(project()), {
      body: { cloudProvider: 'AWS', regionName: 'US_EAST_1' },
      headers: { 'content-type': 'application/json' },
    });
    expect(expectApiError(reply, 415, 'UNSUPPORTED_MEDIA_TYPE').detail).toContain('Content-Type');
  });

  it('answers 404 GROUP_NOT_FOUND for a project that does not exist', async () => {
    const reply = await call('GET', collectionPath(newGroupId()));
    expectConforms('list', reply);
    expectApiError(reply, 404, 'GROUP_NOT_FOUND');
  });

  it('answers a get or delete of an endpoint in a project that does not exist with GROUP_NOT_FOUND, never as the endpoint gone', async () => {
    // The provisioner reads only RESOURCE_NOT_FOUND on an endpoint as gone (isEndpointNotFound).
    const path = `${collectionPath(newGroupId())}/${newGroupId()}`;
    const got = await call('GET', path);
    expectConforms('get', got);
    expectApiError(got, 404, 'GROUP_NOT_FOUND');
    const deleted = await call('DELETE', path);
    expectConforms('delete', deleted);
    expectApiError(deleted, 404, 'GROUP_NOT_FOUND');
  });

  it('answers 404 for a path the spec does not have', async () => {
    expectApiError(await call('GET', '/api/atlas/v2/groups'), 404, 'RESOURCE_NOT_FOUND');
  });
});

describe('rate limit', () => {
  it('answers 429 RATE_LIMITED with Retry-After once the project bucket is drained, other projects unaffected', async () => {
    const groupId = project();
    const remaining: string[] = [];
    for (let i = 0; i < RATE_CAPACITY; i += 1) {
      const reply = await call('GET', collectionPath(groupId));
      expect(reply.status).toBe(200);
      remaining.push(reply.headers.get('ratelimit-remaining') ?? '');
    }
    expect(remaining.at(-1)).toBe('0');

    const limited = await call('GET', collectionPath(groupId));
    expectConforms('list', limited);
    expectApiError(limited, 429, 'RATE_LIMITED');
    expect(Number(limited.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
    expect((await call('GET', collectionPath(project()))).status).toBe(200);
  });
});

describe('OAuth service accounts', () => {
  it('issues a Bearer token for client credentials sent with Basic auth', async () => {
    const reply = await getToken();
    expect(reply.status).toBe(200);
    expect(reply.headers.get('content-type')).toBe('application/json');
    expect(reply.body).toEqual({ access_token: expect.any(String), expires_in: 3600, token_type: 'Bearer' });
    expect(lastRequest()).toMatchObject({ operation: 'token', auth: 'basic', specViolations: [] });
  });

  it('answers a wrong secret with 401 invalid_client in the OAuth shape', async () => {
    const reply = await getToken({ ...ACCOUNT, clientSecret: 'wrong' });
    expect(reply.status).toBe(401);
    expect(reply.body).toEqual({ error: 'invalid_client', error_description: expect.any(String) });
  });

  it('answers another grant type with 400 unsupported_grant_type', async () => {
    const reply = await send('/api/oauth/token', {
      method: 'POST',
      headers: {
        authorization: `Basic ${Buffer.from(`${ACCOUNT.clientId}:${ACCOUNT.clientSecret}`).toString('base64')}`,
        'content-type': 'application/x-www-form-urlencoded',
      },
      body: 'grant_type=password',
    });
    expect(reply.status).toBe(400);
    expect(reply.body).toMatchObject({ error: 'unsupported_grant_type' });
  });

  it('rejects a revoked token with 401', async () => {
    const token = await newBearer();
    const revoke = await send('/api/oauth/revoke', {
      method: 'POST',
      headers: {
        authorization: `Basic ${Buffer.from(`${ACCOUNT.clientId}:${ACCOUNT.clientSecret}`).toString('base64')}`,
        'content-type': 'application/x-www-form-urlencoded',
      },
      body: new URLSearchParams({ token, token_type_hint: 'access_token' }).toString(),
    });
    expect(revoke.status).toBe(200);
    const reply = await call('GET', collectionPath(project()), {
      headers: { authorization: `Bearer ${token}` },
    });
    expectConforms('list', reply);
    expectApiError(reply, 401, 'USER_UNAUTHORIZED');
    expect(lastRequest().auth).toBe('bearer');
  });

  it('rejects a token after tokenTtlSeconds', async () => {
    const token = await newBearer();
    travel(3600 * 1000 + 1);
    const reply = await call('GET', collectionPath(project()), {
      headers: { authorization: `Bearer ${token}` },
    });
    expectApiError(reply, 401, 'USER_UNAUTHORIZED');
  });

  it('rejects every token after revokeAllTokens and the old credentials after the account is removed', async () => {
    const token = await newBearer();
    sim.revokeAllTokens();
    const path = collectionPath(project());
    expect((await call('GET', path, { headers: { authorization: `Bearer ${token}` } })).status).toBe(401);

    const fresh = await newBearer();
    sim.removeServiceAccount(ACCOUNT.clientId);
    try {
      expect((await call('GET', path, { headers: { authorization: `Bearer ${fresh}` } })).status).toBe(401);
      expect((await getToken()).status).toBe(401);
    } finally {
      sim.addServiceAccount(ACCOUNT.clientId, ACCOUNT.clientSecret);
    }
    bearer = await newBearer();
  });
});

describe('Digest API keys', () => {
  const md5 = (text: string) => createHash('md5').update(text).digest('hex');

  function parseChallenge(header: string | null) {
    const match =
      /^Digest realm="MMS Public API", nonce="([^"]+)", algorithm=MD5, qop="auth"(, stale=true)?$/.exec(
        header ?? '',
      );
    if (!match?.[1]) throw new Error(`not the Atlas Digest challenge: ${header}`);
    return { nonce: match[1], stale: match[2] !== undefined };
  }

  function authorization(method: string, uri: string, nonce: string, nc: number, key = API_KEY) {
    const cnonce = randomBytes(8).toString('hex');
    const ncValue = nc.toString(16).padStart(8, '0');
    const ha1 = md5(`${key.publicKey}:MMS Public API:${key.privateKey}`);
    const response = md5(`${ha1}:${nonce}:${ncValue}:${cnonce}:auth:${md5(`${method}:${uri}`)}`);
    return `Digest username="${key.publicKey}", realm="MMS Public API", nonce="${nonce}", uri="${uri}", algorithm=MD5, response="${response}", qop=auth, nc=${ncValue}, cnonce="${cnonce}"`;
  }

  async function challenge(path: string): Promise<string> {
    const reply = await send(path, { headers: { accept: MEDIA_TYPE } });
    expect(reply.status).toBe(401);
    expect(lastRequest().auth).toBe('challenge');
    return parseChallenge(reply.headers.get('www-authenticate')).nonce;
  }

  it('challenges an unauthenticated request with the Atlas Digest challenge and an ApiError', async () => {
    const reply = await send(collectionPath(project()), { headers: { accept: MEDIA_TYPE } });
    expectConforms('list', reply);
    expectApiError(reply, 401, 'USER_UNAUTHORIZED');
    expect(parseChallenge(reply.headers.get('www-authenticate')).stale).toBe(false);
  });

  it('accepts a correct answer to the challenge, with the POST body sent again', async () => {
    const path = collectionPath(project());
    const nonce = await challenge(path);
    const reply = await send(path, {
      method: 'POST',
      headers: {
        authorization: authorization('POST', path, nonce, 1),
        accept: MEDIA_TYPE,
        'content-type': MEDIA_TYPE,
      },
      body: JSON.stringify({ cloudProvider: 'AWS', regionName: 'US_EAST_1' }),
    });
    expectConforms('create', reply);
    expect(reply.status).toBe(201);
    expect(lastRequest()).toMatchObject({ auth: 'digest', specViolations: [] });
  });

  it('rejects the resend of a create without its body with 400', async () => {
    const path = collectionPath(project());
    const nonce = await challenge(path);
    const reply = await send(path, {
      method: 'POST',
      headers: {
        authorization: authorization('POST', path, nonce, 1),
        accept: MEDIA_TYPE,
        'content-type': MEDIA_TYPE,
      },
    });
    expect(expectApiError(reply, 400, 'VALIDATION_ERROR').detail).toContain('body');
  });

  it('answers a wrong private key, a replayed nc and a mismatched uri with a new challenge', async () => {
    const path = collectionPath(project());
    const nonce = await challenge(path);
    const wrongKey = authorization('GET', path, nonce, 1, { ...API_KEY, privateKey: 'wrong' });
    const headers = { accept: MEDIA_TYPE };
    expect((await send(path, { headers: { ...headers, authorization: wrongKey } })).status).toBe(401);

    const good = authorization('GET', path, nonce, 1);
    expect((await send(path, { headers: { ...headers, authorization: good } })).status).toBe(200);
    const replay = await send(path, { headers: { ...headers, authorization: good } });
    expect(replay.status).toBe(401);
    expect(lastRequest().specViolations).toEqual([expect.stringContaining('nc')]);
    expect(
      (await send(path, { headers: { ...headers, authorization: authorization('GET', path, nonce, 2) } }))
        .status,
    ).toBe(200);

    const otherUri = authorization('GET', `${path}?pageNum=1`, nonce, 3);
    const mismatch = await send(path, { headers: { ...headers, authorization: otherUri } });
    expect(mismatch.status).toBe(401);
    expect(parseChallenge(mismatch.headers.get('www-authenticate')).nonce).not.toBe(nonce);
    expect(lastRequest().specViolations).toEqual([expect.stringContaining('uri')]);
  });

  it('answers an expired nonce with stale=true', async () => {
    const path = collectionPath(project());
    const nonce = await challenge(path);
    travel(60_001);
    const reply = await send(path, {
      headers: { accept: MEDIA_TYPE, authorization: authorization('GET', path, nonce, 1) },
    });
    expect(reply.status).toBe(401);
    expect(parseChallenge(reply.headers.get('www-authenticate')).stale).toBe(true);
  });

  it('rejects a removed API key (rotation)', async () => {
    const key: ApiKey = { publicKey: randomBytes(4).toString('hex'), privateKey: crypto.randomUUID() };
    sim.addApiKey(key.publicKey, key.privateKey);
    const path = collectionPath(project());
    const nonce = await challenge(path);
    const ok = await send(path, {
      headers: { accept: MEDIA_TYPE, authorization: authorization('GET', path, nonce, 1, key) },
    });
    expect(ok.status).toBe(200);
    sim.removeApiKey(key.publicKey);
    const rejected = await send(path, {
      headers: { accept: MEDIA_TYPE, authorization: authorization('GET', path, nonce, 2, key) },
    });
    expect(rejected.status).toBe(401);
  });
});

describe('faults', () => {
  it('answers an injected 503 with Retry-After for the matching operation and project, as often as `times` says', async () => {
    const groupId = project();
    sim.injectFault({
      fault: { kind: 'status', status: 503, retryAfterSeconds: 7 },
      operations: ['create'],
      groupId,
      times: 2,
    });
    expect((await call('GET', collectionPath(groupId))).status).toBe(200);
    expect((await create(project())).status).toBe(201);

    for (const _ of [1, 2]) {
      const reply = await create(groupId);
      expectApiError(reply, 503, 'SERVICE_UNAVAILABLE');
      expect(reply.headers.get('retry-after')).toBe('7');
    }
    expect((await create(groupId)).status).toBe(201);
  });

  it('answers an injected 500 in the spec ApiError shape', async () => {
    sim.injectFault({ fault: { kind: 'status', status: 500 }, times: 1 });
    const reply = await call('GET', collectionPath(project()));
    expectConforms('list', reply);
    expectApiError(reply, 500, 'UNEXPECTED_ERROR');
  });

  it('answers an injected token endpoint fault in the OAuth shape', async () => {
    sim.injectFault({
      fault: { kind: 'status', status: 503, retryAfterSeconds: 1 },
      operations: ['token'],
      times: 1,
    });
    const reply = await getToken();
    expect(reply.status).toBe(503);
    expect(reply.body).toMatchObject({ error: 'temporarily_unavailable' });
    expect((await getToken()).status).toBe(200);
  });

  it('hangs past the client timeout with a delay fault', async () => {
    sim.injectFault({ fault: { kind: 'delay', ms: 3000 }, times: 1 });
    // Answered after its 3 s, the fetch would resolve: only the client's timeout makes it reject.
    await expect(
      fetch(`${sim.url}${collectionPath(project())}`, {
        headers: { authorization: `Bearer ${bearer}`, accept: MEDIA_TYPE },
        signal: AbortSignal.timeout(200),
      }),
    ).rejects.toThrow(/timeout|aborted/i);
  });

  it('destroys the socket without answering with a reset fault, recording status 0', async () => {
    sim.injectFault({ fault: { kind: 'reset' }, times: 1 });
    await expect(call('GET', collectionPath(project()))).rejects.toThrow(/fetch failed/);
    expect(lastRequest()).toMatchObject({ operation: 'list', status: 0 });
  });

  it('creates the endpoint but loses the answer with a lostResponse fault; the retry meets 409', async () => {
    const groupId = project();
    sim.injectFault({ fault: { kind: 'lostResponse' }, operations: ['create'], times: 1 });
    await expect(create(groupId)).rejects.toThrow(/fetch failed/);
    expect(sim.endpoints(groupId)).toEqual([expect.objectContaining({ groupId, regionName: 'US_EAST_1' })]);
    expectApiError(await create(groupId), 409, 'BACKUP_PRIVATE_ENDPOINT_ALREADY_EXISTS');
  });

  it('adds the configured latency to every answer', async () => {
    sim.setLatency(150);
    const started = performance.now();
    expect((await call('GET', collectionPath(project()))).status).toBe(200);
    expect(performance.now() - started).toBeGreaterThanOrEqual(145);
  });
});

describe('recording and lifecycle', () => {
  it('records no spec violation for any request it answered with success', () => {
    const successes = sim.requests.filter((r) => r.status >= 200 && r.status < 300);
    expect(successes.length).toBeGreaterThan(20);
    expect(successes.filter((r) => r.specViolations.length > 0)).toEqual([]);
  });

  it('closes promptly with a request hanging and a keep-alive connection open, failing the hanging request', async () => {
    const other = await startAtlasSimulator({ serviceAccounts: [ACCOUNT] });
    const token = (await (
      await fetch(`${other.url}/api/oauth/token`, {
        method: 'POST',
        headers: {
          authorization: `Basic ${Buffer.from(`${ACCOUNT.clientId}:${ACCOUNT.clientSecret}`).toString('base64')}`,
          'content-type': 'application/x-www-form-urlencoded',
        },
        body: 'grant_type=client_credentials',
      })
    ).json()) as { access_token: string };
    other.injectFault({ fault: { kind: 'delay', ms: 60_000 } });
    const hanging = fetch(`${other.url}${collectionPath(newGroupId())}`, {
      headers: { authorization: `Bearer ${token.access_token}`, accept: MEDIA_TYPE },
    });
    await expect.poll(() => other.requests.length).toBe(2);

    // A close that waited for the 60 s delay would outlast the test; one that let it answer would
    // resolve the fetch.
    await other.close();
    await expect(hanging).rejects.toThrow(/fetch failed/);
  });

  it('forgets endpoints, faults and recorded requests on reset, keeping credentials', async () => {
    const other = await startAtlasSimulator({ serviceAccounts: [ACCOUNT] });
    try {
      other.seedEndpoint(newGroupId(), { cloudProvider: 'AWS', regionName: 'US_EAST_1', status: 'ACTIVE' });
      other.injectFault({ fault: { kind: 'reset' } });
      other.reset();
      expect(other.endpoints()).toEqual([]);
      expect(other.requests).toEqual([]);
      const reply = await fetch(`${other.url}/api/oauth/token`, {
        method: 'POST',
        headers: {
          authorization: `Basic ${Buffer.from(`${ACCOUNT.clientId}:${ACCOUNT.clientSecret}`).toString('base64')}`,
          'content-type': 'application/x-www-form-urlencoded',
        },
        body: 'grant_type=client_credentials',
      });
      expect(reply.status).toBe(200);
    } finally {
      await other.close();
    }
  });
});
