/**
 * End to end on ElasticMQ, moto and the Atlas simulator (started here): Atlas recreates an
 * endpoint under a new id (PENDING_RECREATION, then a new INITIATING endpoint). Seen or not,
 * the key follows the new endpoint to ACTIVE and its requesters hear one event naming both ids,
 * never MISSING or DUPLICATE_FOUND; a delete after a recreation deletes the new endpoint.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type LocalFlow, startLocalFlow } from '#test/local/flow.ts';
import { body, eventually, keepFunctionLogs, ledgerItems, simulatorOf } from './support.ts';

keepFunctionLogs();

const ACTIVATION_MS = 1_000;

describe('an endpoint Atlas recreates under a new id', () => {
  let flow: LocalFlow;

  beforeAll(async () => {
    flow = await startLocalFlow({
      simulator: { activationDelayMs: ACTIVATION_MS, deletionDelayMs: 500, rateLimit: false },
      // The checker runs when a test says so.
      checkPeriodMs: 600_000,
    });
  }, 120_000);
  afterAll(() => flow?.stop());

  const itemOf = async (groupId: string) =>
    (await ledgerItems(flow.environment)).find((item) => item.groupId === groupId);
  const statusIn = (groupId: string) =>
    simulatorOf(flow)
      .endpoints(groupId)
      .map((e) => `${e.id}:${e.status}`);

  /** Provisions one endpoint (ACTIVE, follow-ups done) and returns its request and id. */
  async function provisioned(groupId: string, requestId: string) {
    const [request] = await flow.send([body({ requestId, groupId, regionName: 'EU_WEST_1' })]);
    await flow.tracker.waitFor(() => request?.final === 'provisioned', {
      timeoutMs: 30_000,
      what: `${requestId} provisioned`,
    });
    const first = simulatorOf(flow).endpoints(groupId)[0]?.id;
    if (!request || !first) throw new Error('not provisioned');
    return { request, first };
  }

  it('follows a recreation it sees: RECREATED naming both ids, then ACTIVE, and the ledger holds the new id', {
    timeout: 90_000,
  }, async () => {
    const groupId = '6640000000000000000000e1';
    const sim = simulatorOf(flow);
    sim.injectFault({ groupId, fault: { kind: 'recreate', activeMs: 1_500, pendingMs: 5_000 }, times: 1 });
    const { request, first } = await provisioned(groupId, 'recreate-seen');

    await eventually(() => sim.endpoints(groupId)[0]?.status === 'PENDING_RECREATION', {
      timeoutMs: 20_000,
      what: 'Atlas to start the recreation',
      state: () => statusIn(groupId).join(', '),
    });
    await flow.statusChecker.runNow();
    // From here the follow-ups the checker started watch the key: no checker run is needed.
    await eventually(() => request.events.some((e) => e.outcome === 'RECREATED'), {
      timeoutMs: 30_000,
      what: 'the RECREATED event',
      state: () => `${statusIn(groupId).join(', ')}; events ${request.events.map((e) => e.outcome)}`,
    });
    const [successor] = sim.endpoints(groupId);
    expect(successor?.id).not.toBe(first);
    await eventually(() => request.events.at(-1)?.status === 'ACTIVE' && request.events.at(-1), {
      timeoutMs: 30_000,
      what: 'the new endpoint to be announced ACTIVE',
      state: () => `${statusIn(groupId).join(', ')}; events ${request.events.map((e) => e.outcome)}`,
    });

    const outcomes = request.events.map((e) => e.outcome);
    expect(outcomes).not.toContain('MISSING');
    expect(outcomes).not.toContain('DUPLICATE_FOUND');
    expect(request.events.find((e) => e.outcome === 'RECREATED')).toMatchObject({
      previousEndpointId: first,
      endpointId: successor?.id,
      previousStatus: 'PENDING_RECREATION',
    });
    expect(request.events.at(-1)).toMatchObject({ endpointId: successor?.id, status: 'ACTIVE' });
    expect(await itemOf(groupId)).toMatchObject({ endpointId: successor?.id, status: 'ACTIVE' });
    expect(sim.duplicates()).toEqual([]);
  });

  it('adopts the new endpoint of a recreation nobody saw, and announces it once, naming both ids', {
    timeout: 90_000,
  }, async () => {
    const groupId = '6640000000000000000000e2';
    const sim = simulatorOf(flow);
    const { request, first } = await provisioned(groupId, 'recreate-unseen');
    // Gone at once: PENDING_RECREATION lasts no time, shorter than any sweep.
    sim.recreateEndpoint(groupId, first, 0);
    const successor = sim.endpoints(groupId)[0]?.id;
    expect(successor).not.toBe(first);

    await flow.statusChecker.runNow();
    await eventually(
      () => request.events.at(-1)?.status === 'ACTIVE' && request.events.at(-1)?.endpointId === successor,
      {
        timeoutMs: 30_000,
        what: 'the adopted endpoint to be announced ACTIVE',
        state: () => `${statusIn(groupId).join(', ')}; events ${request.events.map((e) => e.outcome)}`,
      },
    );
    await flow.statusChecker.runNow();

    const outcomes = request.events.map((e) => e.outcome);
    expect(outcomes.filter((o) => o === 'ADOPTED')).toHaveLength(1);
    expect(outcomes).not.toContain('MISSING');
    expect(outcomes).not.toContain('DUPLICATE_FOUND');
    expect(request.events.find((e) => e.outcome === 'ADOPTED')).toMatchObject({
      previousEndpointId: first,
      endpointId: successor,
    });
    expect(await itemOf(groupId)).toMatchObject({ endpointId: successor, status: 'ACTIVE' });
  });

  it('deletes the new endpoint when a delete arrives after a recreation the ledger has not seen', {
    timeout: 90_000,
  }, async () => {
    const groupId = '6640000000000000000000e3';
    const sim = simulatorOf(flow);
    const { first } = await provisioned(groupId, 'recreate-then-delete');
    sim.recreateEndpoint(groupId, first, 0);
    expect((await itemOf(groupId))?.endpointId).toBe(first);

    const [removal] = await flow.send([
      body({ requestId: 'recreate-then-delete-2', action: 'delete', groupId, regionName: 'EU_WEST_1' }),
    ]);
    await flow.tracker.waitFor(() => removal?.final === 'deleted', { timeoutMs: 30_000, what: 'DELETED' });

    expect(sim.endpoints(groupId)).toEqual([]);
    expect(removal?.events.map((e) => e.outcome)).toEqual(['DELETE_REQUESTED', 'DELETED']);
    expect(await itemOf(groupId)).toMatchObject({ status: 'DELETED' });
  });
});
