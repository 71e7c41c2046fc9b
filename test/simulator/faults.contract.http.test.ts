/**
 * The simulator misbehaving on purpose, over real HTTP: creates that land late or twice, fault
 * probabilities drawn from a seeded random, a totalCount that is only an estimate, and endpoints
 * that fail on their own. Every answer is still checked against the official spec.
 */
import { randomBytes } from 'node:crypto';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startAtlasSimulator } from '#test/simulator/index.ts';
import { type ApiOperation, type AtlasSpec, loadAtlasSpec } from '#test/simulator/spec.ts';
import type { AtlasSimulator, SimulatorOptions } from '#test/simulator/types.ts';

const MEDIA_TYPE = 'application/vnd.atlas.2024-11-13+json';
const ACCOUNT = {
  clientId: `mdb_sa_id_${randomBytes(12).toString('hex')}`,
  clientSecret: randomBytes(24).toString('hex'),
};
const ACTIVATION_MS = 300;
const newGroupId = () => randomBytes(12).toString('hex');
const collectionPath = (groupId: string) => `/api/atlas/v2/groups/${groupId}/backup/AWS/privateEndpoints`;

interface Reply {
  status: number;
  headers: Headers;
  body: unknown;
}

/** A simulator with its bearer token, and Admin API calls against it. */
interface Client {
  sim: AtlasSimulator;
  call(method: string, path: string, options?: { body?: unknown; timeoutMs?: number }): Promise<Reply>;
  create(groupId: string, options?: { regionName?: string; timeoutMs?: number }): Promise<Reply>;
  /** Gets a new bearer token (after reset() revoked the old one). */
  renewToken(): Promise<void>;
}

let spec: AtlasSpec;
const started: AtlasSimulator[] = [];

async function client(options: SimulatorOptions = {}): Promise<Client> {
  const sim = await startAtlasSimulator({
    serviceAccounts: [ACCOUNT],
    activationDelayMs: ACTIVATION_MS,
    deletionDelayMs: ACTIVATION_MS,
    rateLimit: false,
    ...options,
  });
  started.push(sim);
  let access_token = '';
  const renewToken = async () => {
    const token = await fetch(`${sim.url}/api/oauth/token`, {
      method: 'POST',
      headers: {
        authorization: `Basic ${Buffer.from(`${ACCOUNT.clientId}:${ACCOUNT.clientSecret}`).toString('base64')}`,
        'content-type': 'application/x-www-form-urlencoded',
      },
      body: 'grant_type=client_credentials',
    });
    ({ access_token } = (await token.json()) as { access_token: string });
  };
  await renewToken();
  const call: Client['call'] = async (method, path, { body, timeoutMs } = {}) => {
    const response = await fetch(`${sim.url}${path}`, {
      method,
      headers: {
        authorization: `Bearer ${access_token}`,
        accept: MEDIA_TYPE,
        ...(body !== undefined && { 'content-type': MEDIA_TYPE }),
      },
      ...(body !== undefined && { body: JSON.stringify(body) }),
      ...(timeoutMs !== undefined && { signal: AbortSignal.timeout(timeoutMs) }),
    });
    const text = await response.text();
    return { status: response.status, headers: response.headers, body: text ? JSON.parse(text) : undefined };
  };
  return {
    sim,
    call,
    renewToken,
    create: (groupId, { regionName = 'US_EAST_1', timeoutMs } = {}) =>
      call('POST', collectionPath(groupId), {
        body: { cloudProvider: 'AWS', regionName },
        ...(timeoutMs !== undefined && { timeoutMs }),
      }),
  };
}

/** Asserts the answer is one the spec documents for the operation, with a valid body. */
function expectConforms(operation: ApiOperation, reply: Reply): void {
  const op = spec.operations.find((o) => o.operation === operation);
  if (!op) throw new Error(`no ${operation} in the spec`);
  expect(op.checkResponse(reply.status, reply.headers.get('content-type') ?? undefined, reply.body)).toEqual(
    [],
  );
}

const idOf = (reply: Reply) => (reply.body as { id: string }).id;

beforeAll(async () => {
  spec = await loadAtlasSpec();
});

afterEach(async () => {
  for (const sim of started.splice(0)) await sim.close();
});

describe('lateCreate', () => {
  it('lands the endpoint after the client gave up; a second create in the window succeeds, leaving two', async () => {
    const { sim, create, call } = await client();
    const groupId = newGroupId();
    sim.injectFault({ fault: { kind: 'lateCreate', landAfterMs: 600 }, operations: ['create'], times: 1 });

    await expect(create(groupId, { timeoutMs: 150 })).rejects.toThrow(/timeout|aborted/i);
    expect(sim.endpoints(groupId)).toEqual([]);
    const second = await create(groupId);
    expectConforms('create', second);
    expect(second.status).toBe(201);
    expect(sim.duplicates()).toEqual([]);

    await expect.poll(() => sim.endpoints(groupId).length, { timeout: 3000, interval: 50 }).toBe(2);
    const landed = sim.endpoints(groupId).find((e) => e.id !== idOf(second));
    expect(landed).toMatchObject({
      regionName: 'US_EAST_1',
      vpcRegionName: 'US_EAST_1',
      status: 'INITIATING',
    });
    expect(sim.duplicates()).toEqual([
      { groupId, regionName: 'US_EAST_1', vpcRegionName: 'US_EAST_1', ids: [idOf(second), landed?.id] },
    ]);
    const listed = await call('GET', collectionPath(groupId));
    expectConforms('list', listed);
    expect(listed.body).toMatchObject({ totalCount: 2 });
    expect(sim.requests.filter((r) => r.operation === 'create').map((r) => r.status)).toEqual([0, 201]);

    // The landed endpoint follows the normal lifecycle from its landing.
    await expect
      .poll(() => sim.endpoints(groupId).find((e) => e.id === landed?.id)?.status, { timeout: 3000 })
      .toBe('ACTIVE');
  });

  it('destroys the socket of a client still waiting when the endpoint lands', async () => {
    const { sim, create } = await client();
    const groupId = newGroupId();
    sim.injectFault({ fault: { kind: 'lateCreate', landAfterMs: 400 }, times: 1 });
    const startedAt = performance.now();
    await expect(create(groupId)).rejects.toThrow(/fetch failed/);
    expect(performance.now() - startedAt).toBeGreaterThanOrEqual(350);
    expect(sim.endpoints(groupId)).toEqual([expect.objectContaining({ status: 'INITIATING' })]);
  });

  it('leaves other operations alone, and answers a create that conflicts on arrival with 409 as usual', async () => {
    const { sim, create, call } = await client();
    const groupId = newGroupId();
    const first = await create(groupId);
    sim.injectFault({ fault: { kind: 'lateCreate', landAfterMs: 5000 } });
    expect((await call('GET', collectionPath(groupId))).status).toBe(200);
    expect((await call('GET', `${collectionPath(groupId)}/${idOf(first)}`)).status).toBe(200);
    const conflict = await create(groupId);
    expectConforms('create', conflict);
    expect(conflict.status).toBe(409);
  });

  it('never lands once the simulator is reset or closed, and keeps no timer alive', async () => {
    const { sim, create } = await client();
    const groupId = newGroupId();
    sim.injectFault({ fault: { kind: 'lateCreate', landAfterMs: 300 } });
    const pending = create(groupId);
    await expect.poll(() => sim.requests.length).toBe(2);
    sim.reset();
    await expect(pending).rejects.toThrow(/fetch failed/);
    await new Promise((ok) => setTimeout(ok, 500));
    expect(sim.endpoints()).toEqual([]);

    const other = await client();
    other.sim.injectFault({ fault: { kind: 'lateCreate', landAfterMs: 60_000 } });
    const hanging = other.create(groupId);
    await expect.poll(() => other.sim.requests.length).toBe(2);
    // A close that waited for the landing 60 s later would outlast the test.
    await other.sim.close();
    await expect(hanging).rejects.toThrow(/fetch failed/);
  });
});

describe('doubleCreate', () => {
  it('answers 201 with one endpoint but creates two for the same regions', async () => {
    const { sim, create, call } = await client();
    const groupId = newGroupId();
    sim.injectFault({ fault: { kind: 'doubleCreate' }, operations: ['create'], groupId, times: 1 });
    const reply = await create(groupId, { regionName: 'EU_WEST_1' });
    expectConforms('create', reply);
    expect(reply.status).toBe(201);

    const listed = await call('GET', collectionPath(groupId));
    expectConforms('list', listed);
    const results = (listed.body as { results: Array<{ id: string; regionName: string }> }).results;
    expect(results.map((r) => r.regionName)).toEqual(['EU_WEST_1', 'EU_WEST_1']);
    expect(results[0]?.id).toBe(idOf(reply));
    expect(sim.duplicates()).toEqual([
      { groupId, regionName: 'EU_WEST_1', vpcRegionName: 'EU_WEST_1', ids: results.map((r) => r.id) },
    ]);

    // times: 1 was spent: the next create of another region makes one.
    expect((await create(groupId, { regionName: 'US_WEST_2' })).status).toBe(201);
    expect(sim.endpoints(groupId)).toHaveLength(3);
  });

  it('stops reporting a duplicate once all but one of its endpoints are DELETING', async () => {
    const { sim, create, call } = await client();
    const groupId = newGroupId();
    sim.injectFault({ fault: { kind: 'doubleCreate' }, times: 1 });
    await create(groupId);
    const [, twin] = sim.endpoints(groupId);
    expect((await call('DELETE', `${collectionPath(groupId)}/${twin?.id}`)).status).toBe(204);
    expect(sim.duplicates()).toEqual([]);
  });
});

describe('recreate', () => {
  type Listed = {
    results: Array<{ id: string; status: string; regionName: string; vpcRegionName?: string }>;
  };
  const statusOf = async (call: Client['call'], groupId: string, id: string) => {
    const reply = await call('GET', `${collectionPath(groupId)}/${id}`);
    expectConforms('get', reply);
    return reply.status === 404 ? 'GONE' : (reply.body as { status: string }).status;
  };
  const listed = async (call: Client['call'], groupId: string) => {
    const reply = await call('GET', collectionPath(groupId));
    expectConforms('list', reply);
    return (reply.body as Listed).results;
  };

  it('shows PENDING_RECREATION after ACTIVE, then a new endpoint for the same regions under a new id', async () => {
    const { sim, create, call } = await client();
    const groupId = newGroupId();
    sim.injectFault({ fault: { kind: 'recreate', activeMs: 150, pendingMs: 400 }, times: 1 });
    const created = await create(groupId, { regionName: 'EU_WEST_1' });
    expectConforms('create', created);
    expect(created.body).toMatchObject({ status: 'INITIATING' });
    const oldId = idOf(created);

    const seen = new Set<string>();
    await expect
      .poll(
        async () => {
          const status = await statusOf(call, groupId, oldId);
          seen.add(status);
          return status;
        },
        { timeout: 5000, interval: 20 },
      )
      .toBe('GONE');
    expect([...seen]).toEqual(expect.arrayContaining(['ACTIVE', 'PENDING_RECREATION', 'GONE']));

    const [replacement, ...others] = await listed(call, groupId);
    expect(others).toEqual([]);
    expect(replacement).toMatchObject({ regionName: 'EU_WEST_1', vpcRegionName: 'EU_WEST_1' });
    expect(replacement?.id).toMatch(/^[a-f0-9]{24}$/);
    expect(replacement?.id).not.toBe(oldId);
    await expect.poll(() => statusOf(call, groupId, replacement?.id ?? ''), { timeout: 3000 }).toBe('ACTIVE');
    // Recreated once: the replacement stays.
    expect((await listed(call, groupId)).map((e) => e.id)).toEqual([replacement?.id]);
  });

  it('replaces the endpoint in the listing even when PENDING_RECREATION lasts no time at all', async () => {
    const { sim, create, call } = await client();
    const groupId = newGroupId();
    sim.injectFault({ fault: { kind: 'recreate', activeMs: 0, pendingMs: 0 }, times: 1 });
    const oldId = idOf(await create(groupId));
    await expect
      .poll(async () => (await listed(call, groupId)).map((e) => e.id).includes(oldId), { timeout: 3000 })
      .toBe(false);
    const now = await listed(call, groupId);
    expect(now).toHaveLength(1);
    expect(now[0]?.status).toMatch(/^(INITIATING|ACTIVE)$/);
    expect(sim.duplicates()).toEqual([]);
  });

  it('applies to creates only, and to as many as the rule hits', async () => {
    const { sim, create, call } = await client();
    const groupId = newGroupId();
    const seeded = sim.seedEndpoint(groupId, {
      cloudProvider: 'AWS',
      regionName: 'US_WEST_2',
      status: 'ACTIVE',
    });
    sim.injectFault({ fault: { kind: 'recreate', activeMs: 0, pendingMs: 0 }, times: 1 });
    expect(await statusOf(call, groupId, seeded.id)).toBe('ACTIVE');
    const recreated = idOf(await create(groupId, { regionName: 'EU_WEST_1' }));
    const kept = idOf(await create(groupId, { regionName: 'US_EAST_1' }));
    await expect.poll(() => statusOf(call, groupId, recreated), { timeout: 3000 }).toBe('GONE');
    await expect.poll(() => statusOf(call, groupId, kept), { timeout: 3000 }).toBe('ACTIVE');
    expect(await statusOf(call, groupId, seeded.id)).toBe('ACTIVE');
    expect((await listed(call, groupId)).map((e) => e.regionName).sort()).toEqual([
      'EU_WEST_1',
      'US_EAST_1',
      'US_WEST_2',
    ]);
  });

  it('recreates an existing endpoint on demand, and a delete during PENDING_RECREATION brings no new one', async () => {
    const { sim, call } = await client();
    const groupId = newGroupId();
    const first = sim.seedEndpoint(groupId, {
      cloudProvider: 'AWS',
      regionName: 'US_EAST_1',
      status: 'ACTIVE',
    });
    const second = sim.seedEndpoint(groupId, {
      cloudProvider: 'AWS',
      regionName: 'EU_WEST_1',
      status: 'ACTIVE',
    });
    sim.recreateEndpoint(groupId, first.id, 300);
    sim.recreateEndpoint(groupId, second.id, 60_000);
    expect(await statusOf(call, groupId, first.id)).toBe('PENDING_RECREATION');
    expect(await statusOf(call, groupId, second.id)).toBe('PENDING_RECREATION');

    expect((await call('DELETE', `${collectionPath(groupId)}/${second.id}`)).status).toBe(204);
    await expect.poll(() => statusOf(call, groupId, first.id), { timeout: 3000 }).toBe('GONE');
    await expect.poll(() => statusOf(call, groupId, second.id), { timeout: 3000 }).toBe('GONE');
    const left = await listed(call, groupId);
    expect(left.map((e) => e.regionName)).toEqual(['US_EAST_1']);
    expect(left[0]?.id).not.toBe(first.id);
    expect(() => sim.recreateEndpoint(groupId, second.id, 0)).toThrow(/no endpoint/);
  });
});

describe('probability', () => {
  /** The statuses of 32 lists against a fresh simulator with a 50% 500 rule. */
  async function pattern(seed: number): Promise<number[]> {
    const { sim, call } = await client({ seed });
    sim.injectFault({ fault: { kind: 'status', status: 500 }, probability: 0.5 });
    const groupId = newGroupId();
    const statuses: number[] = [];
    for (let i = 0; i < 32; i++) {
      const reply = await call('GET', collectionPath(groupId));
      expectConforms('list', reply);
      statuses.push(reply.status);
    }
    return statuses;
  }

  it('hits matching requests with the rule probability, the same ones for the same seed', async () => {
    const first = await pattern(42);
    expect(first).toContain(200);
    expect(first).toContain(500);
    expect(await pattern(42)).toEqual(first);
    expect(await pattern(43)).not.toEqual(first);
  });

  it('starts the random again from the seed on reset', async () => {
    const { sim, call, renewToken } = await client({ seed: 7 });
    const groupId = newGroupId();
    const run = async () => {
      sim.injectFault({ fault: { kind: 'status', status: 500 }, probability: 0.5 });
      const statuses: number[] = [];
      for (let i = 0; i < 16; i++) statuses.push((await call('GET', collectionPath(groupId))).status);
      return statuses;
    };
    const before = await run();
    expect(before).toContain(500);
    sim.reset();
    await renewToken();
    expect(await run()).toEqual(before);
  });

  it('still caps the hits with times, and lets a missed request fall to the next matching rule', async () => {
    const { sim, call } = await client({ seed: 1 });
    const groupId = newGroupId();
    sim.injectFault({ fault: { kind: 'status', status: 503 }, probability: 0.5, times: 3 });
    sim.injectFault({ fault: { kind: 'status', status: 500 }, operations: ['list'], times: 1 });
    const statuses: number[] = [];
    for (let i = 0; i < 20; i++) statuses.push((await call('GET', collectionPath(groupId))).status);
    expect(statuses.filter((s) => s === 503)).toHaveLength(3);
    expect(statuses.filter((s) => s === 500)).toHaveLength(1);
    expect(statuses.filter((s) => s === 200)).toHaveLength(16);
  });

  it('refuses a probability outside 0..1', async () => {
    const { sim } = await client();
    expect(() => sim.injectFault({ fault: { kind: 'reset' }, probability: 1.5 })).toThrow(RangeError);
    expect(() => sim.setFailProbability(-0.1)).toThrow(RangeError);
  });
});

describe('totalCount estimate', () => {
  it('answers totalCount = estimate(actual) while results and links stay true; undefined restores the truth', async () => {
    const { sim, create, call } = await client();
    const groupId = newGroupId();
    for (const regionName of ['US_EAST_1', 'US_EAST_2', 'US_WEST_1']) await create(groupId, { regionName });

    sim.setTotalCountEstimate((actual) => actual - 2);
    const page = await call('GET', `${collectionPath(groupId)}?itemsPerPage=2`);
    expectConforms('list', page);
    expect(page.body).toMatchObject({ totalCount: 1 });
    expect((page.body as { results: unknown[] }).results).toHaveLength(2);
    expect((page.body as { links: Array<{ rel: string }> }).links.map((l) => l.rel)).toContain('next');

    sim.setTotalCountEstimate((actual) => actual - 10);
    const floored = await call('GET', collectionPath(groupId));
    expectConforms('list', floored);
    expect(floored.body).toMatchObject({ totalCount: 0 });
    expect((floored.body as { results: unknown[] }).results).toHaveLength(3);

    sim.setTotalCountEstimate(undefined);
    expect((await call('GET', collectionPath(groupId))).body).toMatchObject({ totalCount: 3 });
  });
});

describe('failProbability', () => {
  it('turns every INITIATING endpoint FAILED with an errorMessage at probability 1, ACTIVE again at 0', async () => {
    const { sim, create, call } = await client({ failProbability: 1, seed: 3 });
    const groupId = newGroupId();
    const created = await create(groupId);
    expectConforms('create', created);
    expect(created.body).toMatchObject({ status: 'INITIATING' });

    await expect
      .poll(
        async () =>
          ((await call('GET', `${collectionPath(groupId)}/${idOf(created)}`)).body as { status: string })
            .status,
        {
          timeout: 3000,
        },
      )
      .toBe('FAILED');
    const failed = await call('GET', `${collectionPath(groupId)}/${idOf(created)}`);
    expectConforms('get', failed);
    expect(failed.body).toMatchObject({ status: 'FAILED', errorMessage: expect.stringMatching(/\w/) });
    expect(failed.body).not.toHaveProperty('privateEndpointConnectionName');

    sim.setFailProbability(0);
    const next = await create(groupId, { regionName: 'EU_WEST_1' });
    await expect
      .poll(
        async () =>
          ((await call('GET', `${collectionPath(groupId)}/${idOf(next)}`)).body as { status: string }).status,
        {
          timeout: 3000,
        },
      )
      .toBe('ACTIVE');
  });

  it('also fails endpoints landed by lateCreate', async () => {
    const { sim, create } = await client({ failProbability: 1 });
    const groupId = newGroupId();
    sim.injectFault({ fault: { kind: 'lateCreate', landAfterMs: 100 }, times: 1 });
    await expect(create(groupId)).rejects.toThrow(/fetch failed/);
    await expect.poll(() => sim.endpoints(groupId)[0]?.status, { timeout: 3000 }).toBe('FAILED');
    expect(sim.endpoints(groupId)[0]?.errorMessage).toBeTruthy();
  });
});

afterAll(async () => {
  for (const sim of started.splice(0)) await sim.close();
});
