/**
 * End to end on ElasticMQ, moto and the Atlas simulator (started here), with an Atlas that
 * misbehaves the way a slow real server can: it finishes a create after the client gave up,
 * answers one create with two endpoints, fails endpoints, and under-reports totalCount. Each
 * request still ends with one endpoint for its key, or in the DLQ with its reason.
 */
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { ATLAS_REGIONS } from '#atlas/types.ts';
import { type LocalFlow, startLocalFlow } from '#test/local/flow.ts';
import {
  body,
  eventually,
  keepFunctionLogs,
  ledgerItems,
  peekQueue,
  queueDepth,
  simulatorOf,
} from './support.ts';

keepFunctionLogs();

const live = (flow: LocalFlow, groupId: string) =>
  simulatorOf(flow)
    .endpoints(groupId)
    .filter((e) => e.status !== 'DELETING');

describe('an Atlas that misbehaves like a slow real server', () => {
  let flow: LocalFlow;

  beforeAll(async () => {
    flow = await startLocalFlow({
      // Atlas times out after 3 s; a create in doubt is listed again 4 s after it was sent.
      settings: { maxEndpointFailures: 3 },
      simulator: { activationDelayMs: 300, deletionDelayMs: 500 },
      checkPeriodMs: 500,
    });
  });
  afterAll(() => flow?.stop());
  beforeEach(() => simulatorOf(flow).clearFaults());

  it('adopts a create that lands after the client gave up but within the settle period: one endpoint', {
    timeout: 60_000,
  }, async () => {
    const groupId = '6630000000000000000000c1';
    const sim = simulatorOf(flow);
    sim.injectFault({
      groupId,
      operations: ['create'],
      fault: { kind: 'lateCreate', landAfterMs: 3_500 },
      times: 1,
    });

    const [late] = await flow.send([body({ requestId: 'late-1', groupId, regionName: 'EU_WEST_1' })]);
    await flow.tracker.settled(40_000);

    expect(sim.requests.filter((r) => r.groupId === groupId && r.operation === 'create')).toHaveLength(1);
    expect(live(flow, groupId)).toHaveLength(1);
    expect(sim.duplicates()).toEqual([]);
    expect(late?.final).toBe('provisioned');
    expect(late?.events[0]).toMatchObject({ outcome: 'ADOPTED' });
  });

  it('deletes the extra endpoint a create that landed after the settle period made, and says so', {
    timeout: 60_000,
  }, async () => {
    const groupId = '6630000000000000000000c2';
    const sim = simulatorOf(flow);
    sim.injectFault({
      groupId,
      operations: ['create'],
      fault: { kind: 'lateCreate', landAfterMs: 15_000 },
      times: 1,
    });

    const [late] = await flow.send([body({ requestId: 'later-1', groupId, regionName: 'EU_WEST_1' })]);
    await flow.tracker.settled(40_000);
    // The first create lands at 15 s (well after its retry created one at about 7 s), beside the one the retry made: the checker deletes it.
    await eventually(() => late?.events.some((e) => e.outcome === 'DUPLICATE_DELETED'), {
      timeoutMs: 30_000,
      what: 'the extra endpoint to be deleted',
      state: () => JSON.stringify(sim.endpoints(groupId)),
    });
    await eventually(() => sim.endpoints(groupId).length === 1, {
      timeoutMs: 10_000,
      what: 'the extra to go',
    });

    const [kept] = sim.endpoints(groupId);
    const [item] = (await ledgerItems(flow.environment)).filter((i) => i.groupId === groupId);
    expect(item).toMatchObject({ endpointId: kept?.id });
    expect(item).not.toHaveProperty('unconfirmedCreates');
    expect(late?.final).toBe('provisioned');
    expect(late?.events.find((e) => e.outcome === 'DUPLICATE_DELETED')?.endpointId).not.toBe(kept?.id);
  });

  it('reports an extra endpoint it did not make (Atlas answered one create with two) and leaves it', {
    timeout: 60_000,
  }, async () => {
    const groupId = '6630000000000000000000c3';
    const sim = simulatorOf(flow);
    sim.injectFault({ groupId, operations: ['create'], fault: { kind: 'doubleCreate' }, times: 1 });

    const [twice] = await flow.send([body({ requestId: 'twice-1', groupId, regionName: 'EU_WEST_1' })]);
    await flow.tracker.settled(30_000);
    await eventually(() => twice?.events.some((e) => e.outcome === 'DUPLICATE_FOUND'), {
      timeoutMs: 20_000,
      what: 'the extra endpoint to be reported',
    });

    expect(live(flow, groupId)).toHaveLength(2);
    const reported = twice?.events.filter((e) => e.outcome === 'DUPLICATE_FOUND') ?? [];
    expect(new Set(reported.map((e) => e.eventId)).size).toBe(1);
    expect(reported[0]?.endpointId).not.toBe(twice?.endpointId);
  });

  it('recreates an endpoint that Atlas fails at once, telling the requester each step, and ends ACTIVE', {
    timeout: 60_000,
  }, async () => {
    const groupId = '6630000000000000000000c4';
    const sim = simulatorOf(flow);
    sim.setCreateStatus(groupId, 'FAILED', 'the interface endpoint could not be created in the VPC');

    const [failing] = await flow.send([body({ requestId: 'failing-1', groupId, regionName: 'EU_WEST_1' })]);
    await eventually(() => failing?.events.some((e) => e.outcome === 'RECREATING'), {
      timeoutMs: 20_000,
      what: 'the FAILED endpoint to be recreated',
    });
    sim.setCreateStatus(groupId, 'INITIATING');
    await flow.tracker.settled(40_000);

    expect(failing?.final).toBe('provisioned');
    expect(failing?.events.find((e) => e.outcome === 'RECREATING')).toMatchObject({
      errorMessage: 'the interface endpoint could not be created in the VPC',
    });
    await eventually(() => live(flow, groupId).length === 1 && sim.endpoints(groupId).length === 1, {
      timeoutMs: 10_000,
      what: 'the FAILED endpoint to go',
    });
    expect(live(flow, groupId)[0]?.status).toBe('ACTIVE');
  });

  it("sends a request whose endpoint keeps failing to the DLQ with ENDPOINT_FAILED and Atlas's message", {
    timeout: 90_000,
  }, async () => {
    const groupId = '6630000000000000000000c5';
    const sim = simulatorOf(flow);
    sim.setCreateStatus(groupId, 'FAILED', 'no capacity in the region');

    const [doomed] = await flow.send([body({ requestId: 'doomed-1', groupId, regionName: 'EU_WEST_1' })]);
    await flow.tracker.settled(80_000);

    expect(doomed?.final).toBe('dlq');
    expect(doomed?.error?.code).toBe('ENDPOINT_FAILED');
    // Events are at least once: one per eventId.
    const recreations = new Set(
      doomed?.events.filter((e) => e.outcome === 'RECREATING').map((e) => e.eventId),
    );
    expect(recreations.size).toBe(2);
    // The event is published before the message is parked: wait for the DLQ to hold it.
    const parked = await eventually(
      async () => {
        const messages = await peekQueue(flow.environment.clients.sqs, flow.environment.dlq.url);
        const found = messages.filter((m) => m.Body?.includes('doomed-1'));
        return found.length > 0 && found;
      },
      { timeoutMs: 10_000, what: 'the request to be parked in the DLQ' },
    );
    expect(parked[0]?.MessageAttributes?.Detail?.StringValue).toContain('no capacity in the region');
    // The last FAILED endpoint is left for the operator, never reported as the answer.
    expect(doomed?.events.some((e) => e.outcome === 'PROVISIONED' && e.status === 'FAILED')).toBe(false);
  });

  it('hands an endpoint that fails after it was ACTIVE back to the provisioner, which recreates it', {
    timeout: 60_000,
  }, async () => {
    const groupId = '6630000000000000000000c6';
    const sim = simulatorOf(flow);
    const [request] = await flow.send([body({ requestId: 'drift-1', groupId, regionName: 'EU_WEST_1' })]);
    await flow.tracker.settled(30_000);
    const [first] = sim.endpoints(groupId);

    sim.setEndpointStatus(groupId, first?.id ?? '', 'FAILED', 'the VPC endpoint was deleted');
    await eventually(() => live(flow, groupId).some((e) => e.id !== first?.id && e.status === 'ACTIVE'), {
      timeoutMs: 40_000,
      what: 'a new ACTIVE endpoint for the key',
      state: () => JSON.stringify(sim.endpoints(groupId)),
    });

    // The simulator can show the new endpoint before the requester heard of the recreation: the
    // events travel through EventBridge and a queue, so they are awaited, not assumed.
    const heard = (outcome: string, status: string) =>
      request?.events.some((e) => e.outcome === outcome && e.status === status) ?? false;
    await flow.tracker.waitFor(() => heard('STATUS_CHANGED', 'FAILED') && heard('RECREATING', 'DELETING'), {
      timeoutMs: 10_000,
      what: 'the requester to hear FAILED, then RECREATING',
    });
    await eventually(() => sim.endpoints(groupId).length === 1, {
      timeoutMs: 10_000,
      what: 'the FAILED one to go',
    });
  });

  it('finds an endpoint past a totalCount that under-reports, and adopts it instead of creating another', {
    timeout: 60_000,
  }, async () => {
    const groupId = '6630000000000000000000c7';
    const sim = simulatorOf(flow);
    // 501 endpoints: the one asked for is the last, on the second page of 500.
    const pairs = ATLAS_REGIONS.flatMap((r) => ATLAS_REGIONS.map((v) => [r, v] as const)).slice(0, 501);
    for (const [regionName, vpcRegionName] of pairs) {
      sim.seedEndpoint(groupId, { cloudProvider: 'AWS', regionName, vpcRegionName, status: 'ACTIVE' });
    }
    sim.setTotalCountEstimate((actual) => actual - 1);
    const [regionName, vpcRegionName] = pairs.at(-1) ?? ['US_EAST_1', 'US_EAST_1'];

    try {
      const [request] = await flow.send([body({ requestId: 'page-2', groupId, regionName, vpcRegionName })]);
      await flow.tracker.settled(30_000);

      expect(request?.events[0]).toMatchObject({ outcome: 'ADOPTED', status: 'ACTIVE' });
      expect(sim.requests.filter((r) => r.groupId === groupId && r.operation === 'create')).toEqual([]);
      expect(sim.endpoints(groupId)).toHaveLength(501);
    } finally {
      sim.setTotalCountEstimate(undefined);
    }
  });

  it('leaves nothing behind: no request in the queue, no duplicate', async () => {
    await eventually(
      async () => (await queueDepth(flow.environment.clients.sqs, flow.environment.requestQueue.url)) === 0,
      { timeoutMs: 20_000, what: 'the request queue to be empty' },
    );
    const extras = simulatorOf(flow)
      .duplicates()
      .filter((d) => d.groupId !== '6630000000000000000000c3');
    expect(extras).toEqual([]);
  });
});
