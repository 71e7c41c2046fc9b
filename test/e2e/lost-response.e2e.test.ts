/**
 * End to end on ElasticMQ, moto and the Atlas simulator (started here), with an API key (HTTP
 * Digest) in the secret: Atlas creates the endpoint but the answer never arrives; the retry
 * finds it by listing and adopts it.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type LocalFlow, startLocalFlow } from '#test/local/flow.ts';
import { body, keepFunctionLogs, queueDepth, settledLedger, simulatorOf } from './support.ts';

keepFunctionLogs();

const PROJECT = '6620000000000000000000b1';
const OTHER = '6620000000000000000000b2';

describe('a create whose response is lost', () => {
  let flow: LocalFlow;

  beforeAll(async () => {
    flow = await startLocalFlow({
      credentials: 'apiKey',
      simulator: { activationDelayMs: 300 },
      checkPeriodMs: 500,
    });
  });
  afterAll(() => flow?.stop());

  it('adopts the endpoint Atlas created on the retry instead of creating a second one', {
    timeout: 45_000,
  }, async () => {
    // Prepare
    const sim = simulatorOf(flow);
    sim.injectFault({ groupId: PROJECT, operations: ['create'], fault: { kind: 'lostResponse' }, times: 1 });

    // Act
    const [lost, bystander] = await flow.send([
      body({ requestId: 'lost-1', groupId: PROJECT, regionName: 'EU_WEST_2' }),
      body({ requestId: 'bystander-1', groupId: OTHER, regionName: 'EU_WEST_2' }),
    ]);
    await flow.tracker.settled(30_000);

    // Assess: one create reached Atlas (authenticated by Digest) and was never answered; the retry listed and adopted.
    const creates = sim.requests.filter(
      (r) => r.groupId === PROJECT && r.operation === 'create' && r.auth === 'digest',
    );
    expect(creates.map((r) => r.status)).toEqual([0]);
    const [endpoint, ...more] = sim.endpoints(PROJECT);
    expect(more).toEqual([]);
    expect(endpoint?.status).toBe('ACTIVE');
    expect(lost?.deliveries).toHaveLength(2);
    expect(lost?.final).toBe('provisioned');
    expect(lost?.events[0]).toMatchObject({ outcome: 'ADOPTED', endpointId: endpoint?.id });

    // Assess: the ledger records the adopted endpoint; the neighbour in the batch was not held back.
    const [item] = (await settledLedger(flow.environment, (i) => i.status === 'ACTIVE')).filter(
      (i) => i.groupId === PROJECT,
    );
    expect(item).toMatchObject({
      status: 'ACTIVE',
      endpointId: endpoint?.id,
      requesters: { default: ['lost-1'] },
    });
    expect(bystander?.deliveries).toHaveLength(1);
    expect(bystander?.final).toBe('provisioned');
    expect(sim.endpoints(OTHER)).toHaveLength(1);
    expect(await queueDepth(flow.environment.clients.sqs, flow.environment.dlq.url)).toBe(0);
    expect(flow.tracker.problems).toEqual([]);
  });
});
