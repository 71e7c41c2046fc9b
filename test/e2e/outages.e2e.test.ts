/**
 * End to end on ElasticMQ, moto and the Atlas simulator (started here), with the fault proxies in
 * front of moto and the queues: EventBridge refuses every entry of every PutEvents (a partial
 * failure) for a stretch while valid and invalid requests flow. Once it takes events again, each
 * request reaches its final place with its reason, each fact is announced once per eventId, and
 * no ledger item is left with an outbox. DynamoDB throttling every call for a stretch: requests
 * wait it out on the continuation queue, spending no attempt, and are provisioned after it.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type LocalFlow, startLocalFlow } from '#test/local/flow.ts';
import { body, eventually, keepFunctionLogs, ledgerItems } from './support.ts';

keepFunctionLogs();

const PROJECT = '6620000000000000000000b1';
const OUTAGE_MS = 6_000;

describe('our own AWS services down for a stretch', () => {
  let flow: LocalFlow;

  beforeAll(async () => {
    flow = await startLocalFlow({
      outages: true,
      // A rejection is parked first and its refused answer kept for the sweep; a record retried for
      // any other reason comes back after 2 s, well within the outage.
      visibilityTimeoutSeconds: 2,
      simulator: { activationDelayMs: 300 },
      checkPeriodMs: 500,
    });
  });
  afterAll(() => flow?.stop());

  it('delivers every answer after the outage, each once, and leaves no outbox', {
    timeout: 40_000,
  }, async () => {
    // Prepare
    const outage = flow.outage('events', 'partial', OUTAGE_MS);

    // Act: requests sent at the start of the outage and in its middle.
    const first = await flow.send([
      body({ requestId: 'outage-valid-1', groupId: PROJECT, regionName: 'US_EAST_1' }),
      JSON.stringify({ requestId: 'outage-invalid-1', groupId: PROJECT }),
    ]);
    await flow.tracker.waitFor(() => (flow.proxies?.aws.refused.get('events PutEvents') ?? 0) > 0, {
      timeoutMs: OUTAGE_MS,
      what: 'a PutEvents refused during the outage',
    });
    const second = await flow.send([
      body({ requestId: 'outage-valid-2', groupId: PROJECT, regionName: 'EU_WEST_1' }),
      body({ requestId: 'outage-valid-3', groupId: PROJECT, regionName: 'AP_SOUTH_1' }),
      'not json at all',
    ]);
    const heardDuring = flow.tracker.events.length;
    await outage.ended;
    await flow.tracker.settled(30_000);

    // Assess
    const requests = [...first, ...second];
    expect(heardDuring).toBe(0);
    expect(requests.map((r) => [r.label, r.final])).toEqual([
      ['outage-valid-1', 'provisioned'],
      ['outage-invalid-1', 'rejected'],
      ['outage-valid-2', 'provisioned'],
      ['outage-valid-3', 'provisioned'],
      ['line 5', 'rejected'],
    ]);
    for (const rejected of requests.filter((r) => r.final === 'rejected')) {
      expect(rejected.error?.code).toBeTruthy();
    }
    // The functions parked the rejections through the proxy in front of the queues.
    expect(flow.proxies?.sqs.forwarded.get('sqs SendMessage')).toBeGreaterThan(0);
    const ids = flow.tracker.events.map((e) => e.eventId);
    expect(new Set(ids).size).toBe(ids.length);
    await eventually(
      async () =>
        (await ledgerItems(flow.environment)).every((i) => Object.keys(i.outbox ?? {}).length === 0),
      {
        timeoutMs: 10_000,
        what: 'every ledger outbox to be empty',
        state: async () =>
          JSON.stringify(
            (await ledgerItems(flow.environment)).map((i) => [i.key, Object.keys(i.outbox ?? {})]),
          ),
      },
    );
  });

  it('waits out a DynamoDB throttle, spending no attempt, and provisions after it', {
    timeout: 40_000,
  }, async () => {
    // Prepare
    const refusedBefore = flow.proxies?.aws.refused.get('dynamodb UpdateItem') ?? 0;
    const outage = flow.outage('dynamodb', 'throttle', OUTAGE_MS);

    // Act
    const requests = await flow.send([
      body({ requestId: 'throttled-1', groupId: PROJECT, regionName: 'US_WEST_2' }),
      body({ requestId: 'throttled-2', groupId: PROJECT, regionName: 'EU_CENTRAL_1' }),
    ]);
    await outage.ended;
    await flow.tracker.settled(30_000);

    // Assess: the ledger's claims were refused, and yet no delivery failed (a retry would have).
    expect(flow.proxies?.aws.refused.get('dynamodb UpdateItem') ?? 0).toBeGreaterThan(refusedBefore);
    expect(requests.map((r) => [r.label, r.final, r.retries])).toEqual([
      ['throttled-1', 'provisioned', 0],
      ['throttled-2', 'provisioned', 0],
    ]);
    expect(flow.simulator?.endpoints().filter((e) => e.groupId === PROJECT)).toHaveLength(5);
  });
});
