/**
 * End to end on ElasticMQ, moto and the Atlas simulator (started here): the service account is
 * rotated in Atlas and in the secret while the flow runs; the next 401 makes the provisioner
 * read the secret again, and the flow continues with nothing sent to the DLQ.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type LocalFlow, newServiceAccount, startLocalFlow } from '#test/local/flow.ts';
import { body, keepFunctionLogs, queueDepth, simulatorOf } from './support.ts';

keepFunctionLogs();

const PROJECT = '6630000000000000000000c1';

describe('credentials rotated while running', () => {
  let flow: LocalFlow;

  beforeAll(async () => {
    flow = await startLocalFlow({ simulator: { activationDelayMs: 300 }, checkPeriodMs: 500 });
  });
  afterAll(() => flow?.stop());

  it('re-reads the secret on the first 401 after a rotation and goes on provisioning', {
    timeout: 45_000,
  }, async () => {
    // Prepare: a warm provisioner holding a token of the old service account.
    const sim = simulatorOf(flow);
    await flow.send([
      body({ requestId: 'before-1', groupId: PROJECT, regionName: 'US_EAST_1' }),
      body({ requestId: 'before-2', groupId: PROJECT, regionName: 'US_EAST_2' }),
    ]);
    await flow.tracker.settled(20_000);
    const oldClientId = flow.secret.ClientId ?? '';
    const rotated = newServiceAccount();

    // Act: rotate as an operator would: new account, new secret version, old account revoked.
    sim.addServiceAccount(rotated.clientId, rotated.clientSecret);
    await flow.environment.putSecret('default', {
      ClientId: rotated.clientId,
      ClientSecret: rotated.clientSecret,
    });
    sim.removeServiceAccount(oldClientId);
    sim.revokeAllTokens();
    const rotatedAt = Date.now();
    const after = await flow.send([
      body({ requestId: 'after-1', groupId: PROJECT, regionName: 'EU_WEST_1' }),
      body({ requestId: 'after-2', groupId: PROJECT, regionName: 'EU_WEST_3' }),
    ]);
    await flow.tracker.settled(30_000);

    // Assess: a 401 on the revoked token, a new token (only the rotated account can get one), then success.
    const since = sim.requests.filter((r) => r.at >= rotatedAt);
    const first401 = since.findIndex((r) => r.status === 401);
    expect(first401).toBeGreaterThanOrEqual(0);
    const rest = since.slice(first401 + 1);
    expect(rest.some((r) => r.operation === 'token' && r.status === 200)).toBe(true);
    expect(rest.filter((r) => r.operation === 'create' && r.status === 201)).toHaveLength(2);
    for (const request of after) {
      expect(request.final, request.label).toBe('provisioned');
      expect(request.deliveries, request.label).toHaveLength(1);
    }
    expect(sim.endpoints(PROJECT)).toHaveLength(4);
    expect(await queueDepth(flow.environment.clients.sqs, flow.environment.dlq.url)).toBe(0);
    expect(flow.tracker.problems).toEqual([]);
  });
});
