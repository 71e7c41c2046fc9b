/**
 * End to end on real AWS API implementations (ElasticMQ, moto) and the Atlas simulator over
 * HTTP, all started by this file: 50 requests across 10 projects, with duplicates, invalid
 * bodies and a delete, each ending in its expected place.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AtlasRegion } from '#atlas/types.ts';
import { naturalKey } from '#messages/request.ts';
import { type LocalFlow, startLocalFlow } from '#test/local/flow.ts';
import {
  attribute,
  body,
  endpointKey,
  eventually,
  keepFunctionLogs,
  peekQueue,
  queueDepth,
  settledLedger,
  simulatorOf,
} from './support.ts';

keepFunctionLogs();

const REGIONS: AtlasRegion[] = [
  'US_EAST_1',
  'EU_WEST_1',
  'AP_SOUTHEAST_2',
  'US_WEST_2',
  'EU_CENTRAL_1',
  'SA_EAST_1',
];
const project = (i: number) => `66${'0'.repeat(20)}${i.toString(16).padStart(2, '0')}`;
const create = (i: number, j: number) => ({
  requestId: `fleet-p${i}-r${j}`,
  groupId: project(i),
  regionName: REGIONS[(i + j) % REGIONS.length] as AtlasRegion,
  // One cross-region endpoint: its own natural key.
  ...(i === 0 && j === 0 && { vpcRegionName: 'US_EAST_2' as const }),
});
const creates = Array.from({ length: 10 }, (_, i) =>
  Array.from({ length: 4 }, (_, j) => create(i, j)),
).flat();
const duplicates = [
  { ...create(1, 0), requestId: 'fleet-dup-1' },
  { ...create(2, 1), requestId: 'fleet-dup-2' },
  { ...create(3, 2), requestId: 'fleet-dup-3' },
];
/** The same message body sent twice (a producer retry). */
const resent = create(4, 3);
const retired = { groupId: project(9), regionName: 'ME_SOUTH_1' as const };
const invalid = [
  {
    body: body({ requestId: 'fleet-bad-group', groupId: 'NOT-A-PROJECT', regionName: 'US_EAST_1' }),
    field: 'groupId',
  },
  {
    body: JSON.stringify({
      requestId: 'fleet-typo',
      groupId: project(5),
      cloudProvider: 'AWS',
      regionname: 'EU_WEST_1',
    }),
    field: 'regionname',
  },
  { body: '{"requestId": "fleet-truncated", "groupId": ', field: 'JSON' },
  {
    body: JSON.stringify({
      requestId: 'fleet-mars',
      groupId: project(6),
      cloudProvider: 'AWS',
      regionName: 'MARS_1',
    }),
    field: 'regionName',
  },
  {
    body: body({
      requestId: 'fleet-stranger',
      groupId: project(7),
      regionName: 'US_EAST_1',
      profile: 'stranger',
    }),
    field: 'stranger',
  },
];

describe('a fleet of 50 requests', () => {
  let flow: LocalFlow;

  beforeAll(async () => {
    flow = await startLocalFlow({
      simulator: { activationDelayMs: 300, deletionDelayMs: 300 },
      checkPeriodMs: 500,
    });
  });
  afterAll(() => flow?.stop());

  it('provisions, adopts, deletes and rejects each request exactly as it asks', {
    timeout: 90_000,
  }, async () => {
    // Prepare
    const sim = simulatorOf(flow);
    const seeded = sim.seedEndpoint(retired.groupId, {
      cloudProvider: 'AWS',
      regionName: retired.regionName,
      status: 'ACTIVE',
    });
    const bodies = [
      ...creates.map((c) => body(c)),
      ...duplicates.map((d) => body(d)),
      body(resent),
      body({ requestId: 'fleet-retire', action: 'delete', ...retired }),
      ...invalid.map((i) => i.body),
    ];
    expect(bodies).toHaveLength(50);

    // Act
    await flow.send(bodies);
    await flow.tracker.settled(60_000);

    // Assess: one ACTIVE endpoint per natural key, none for the retired one.
    const keys = new Set(creates.map((c) => naturalKey({ ...c, cloudProvider: 'AWS' })));
    expect(keys.size).toBe(40);
    const endpoints = sim.endpoints();
    expect(endpoints).toHaveLength(40);
    expect(new Set(endpoints.map(endpointKey))).toEqual(new Set(creates.map(endpointKey)));
    expect(endpoints.every((e) => e.status === 'ACTIVE')).toBe(true);
    expect(endpoints.some((e) => e.id === seeded.id)).toBe(false);
    expect(sim.requests.filter((r) => r.operation === 'create' && r.status === 201)).toHaveLength(40);

    // Assess: the ledger knows every requester of every key.
    const settled = await settledLedger(
      flow.environment,
      (i) => i.status === 'ACTIVE' || i.status === 'DELETED',
    );
    const ledger = new Map(settled.map((item) => [item.key, item]));
    for (const c of [...creates, ...duplicates]) {
      const item = ledger.get(naturalKey({ ...c, cloudProvider: 'AWS' }));
      expect(item?.status, c.requestId).toBe('ACTIVE');
      expect(item?.requesters.default, c.requestId).toContain(c.requestId);
    }
    expect(ledger.get(naturalKey({ ...retired, cloudProvider: 'AWS' }))?.status).toBe('DELETED');
    expect(ledger.size).toBe(41);

    // Assess: every request's final place, as its requester learns it.
    const places = Object.fromEntries(flow.tracker.requests.map((r) => [r.label, r.final]));
    for (const c of [...creates, ...duplicates]) expect(places[c.requestId], c.requestId).toBe('provisioned');
    expect(flow.tracker.requests.filter((r) => r.requestId === resent.requestId).map((r) => r.final)).toEqual(
      ['provisioned', 'provisioned'],
    );
    expect(places['fleet-retire']).toBe('deleted');
    expect(flow.tracker.requests.filter((r) => r.final === 'rejected')).toHaveLength(invalid.length);

    // Assess: the rejected queue holds each invalid body unchanged, with a reason naming the problem.
    const rejected = await peekQueue(flow.environment.clients.sqs, flow.environment.rejectedQueue.url);
    expect(rejected.map((m) => m.Body).sort()).toEqual(invalid.map((i) => i.body).sort());
    for (const { body: sent, field } of invalid) {
      const message = rejected.find((m) => m.Body === sent);
      expect(attribute(message ?? {}, 'ErrorCode'), sent).toMatch(/^(INVALID_REQUEST|PROFILE_NOT_ALLOWED)$/);
      expect(attribute(message ?? {}, 'Detail'), sent).toContain(field);
    }
    expect(await queueDepth(flow.environment.clients.sqs, flow.environment.dlq.url)).toBe(0);
    // The last follow-ups (one GET each, 1-2 s apart locally) end when they find their key settled.
    await eventually(
      async () => (await queueDepth(flow.environment.clients.sqs, flow.environment.requestQueue.url)) === 0,
      { timeoutMs: 15_000, what: 'the request queue to drain of follow-ups' },
    );

    // Assess: status events for every change: one creation per key, then ACTIVE; the delete twice.
    // Events are at least once; the tracker, like a requester, keeps each eventId once.
    const events = flow.tracker.events;
    expect(flow.tracker.problems).toEqual([]);
    for (const key of keys) {
      const ofKey = events.filter((e) => e.naturalKey === key);
      expect(
        ofKey.filter((e) => e.outcome === 'PROVISIONED'),
        key,
      ).toHaveLength(1);
      expect(
        ofKey.some((e) => e.status === 'ACTIVE'),
        key,
      ).toBe(true);
    }
    for (const c of [...creates, ...duplicates]) {
      const own = events.filter((e) => e.requestIds.includes(c.requestId));
      expect(
        own.some((e) => e.outcome === 'PROVISIONED' || e.outcome === 'ADOPTED'),
        c.requestId,
      ).toBe(true);
    }
    const retiredEvents = events.filter((e) => e.requestIds.includes('fleet-retire')).map((e) => e.outcome);
    expect(retiredEvents).toEqual(expect.arrayContaining(['DELETE_REQUESTED', 'DELETED']));
    expect(events.filter((e) => e.outcome === 'REJECTED')).toHaveLength(invalid.length);
  });

  it('answers a request for a key that is already ACTIVE by adopting it, without calling create', async () => {
    // Prepare
    const sim = simulatorOf(flow);
    const creates201 = () => sim.requests.filter((r) => r.operation === 'create').length;
    const before = creates201();

    // Act
    const [late] = await flow.send([body({ ...create(0, 1), requestId: 'fleet-late' })]);
    await flow.tracker.settled(20_000);

    // Assess
    expect(late?.final).toBe('provisioned');
    expect(late?.events.map((e) => e.outcome)).toEqual(['ADOPTED']);
    expect(creates201()).toBe(before);
    await eventually(
      async () => (await queueDepth(flow.environment.clients.sqs, flow.environment.requestQueue.url)) === 0,
      {
        timeoutMs: 5_000,
        what: 'the request queue to be empty',
      },
    );
    expect(sim.endpoints()).toHaveLength(40);
  });
});
