/**
 * End to end on ElasticMQ, moto and the Atlas simulator (started here), with the provisioner
 * in child processes: the process is killed mid-batch, after Atlas has created some endpoints
 * and before it answered. When the visibility timeout expires, the messages come back and
 * finish with exactly one endpoint per key.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { leaseSeconds } from '#infra/settings.ts';
import { localSettings } from '#test/local/environment.ts';
import { type LocalFlow, startLocalFlow } from '#test/local/flow.ts';
import {
  body,
  endpointKey,
  eventually,
  keepFunctionLogs,
  queueDepth,
  settledLedger,
  simulatorOf,
} from './support.ts';

const logs = keepFunctionLogs();

const PROJECTS = ['6640000000000000000000d1', '6640000000000000000000d2'];
const REGIONS = ['US_EAST_1', 'EU_WEST_1', 'AP_NORTHEAST_1', 'SA_EAST_1', 'EU_NORTH_1'] as const;
/**
 * Past the lease a killed worker leaves on its keys (taken after the cold start of the batch's
 * process), so the redelivery can claim them.
 */
const VISIBILITY_SECONDS = leaseSeconds(localSettings()) + 5;

describe('the provisioner killed mid-batch', () => {
  let flow: LocalFlow;

  beforeAll(async () => {
    flow = await startLocalFlow({
      // The hanging creates outlast the 3 s Atlas timeout, but the crash comes first: Atlas answers
      // the other creates within a second of the batch's start.
      isolation: 'process',
      visibilityTimeoutSeconds: VISIBILITY_SECONDS,
      simulator: { activationDelayMs: 300 },
      checkPeriodMs: 500,
      functionOutput: logs,
    });
  });
  afterAll(() => flow?.stop());

  it('redelivers the batch after the visibility timeout and finishes it with no duplicate', {
    timeout: 120_000,
  }, async () => {
    // Prepare: half the creates hang, so a batch is still running when Atlas has answered the
    // other half. The hung creates land later: their redelivery finds them in doubt and adopts them.
    const sim = simulatorOf(flow);
    sim.injectFault({ operations: ['create'], fault: { kind: 'delay', ms: 15_000 }, times: 5 });
    const requests = PROJECTS.flatMap((groupId, p) =>
      REGIONS.map((regionName, r) => ({ requestId: `crash-${p}-${r}`, groupId, regionName })),
    );
    const tracked = await flow.send(requests.map((r) => body(r)));
    await eventually(
      () => sim.requests.filter((r) => r.operation === 'create' && r.status === 201).length >= 5,
      {
        timeoutMs: 45_000,
        intervalMs: 20,
        what: 'Atlas to have answered five creates while five hang',
        state: () => flow.tracker.describe(),
      },
    );

    // Act
    await flow.provisioner.crash();
    await flow.tracker.settled(VISIBILITY_SECONDS * 1000 + 30_000);

    // Assess: the killed batch came back only after the visibility timeout.
    const crashed = tracked.filter((r) => r.crashes > 0);
    expect(crashed.length).toBeGreaterThanOrEqual(5);
    for (const request of crashed) {
      const [first, second] = request.deliveries;
      expect(second, request.label).toBeDefined();
      // Redelivered by the visibility timeout, not at once; the tracker stamps a delivery when it
      // sees it, which a loaded machine delays, so the gap is compared with half the timeout.
      expect((second?.at ?? 0) - (first?.at ?? 0), request.label).toBeGreaterThanOrEqual(
        (VISIBILITY_SECONDS * 1000) / 2,
      );
    }

    // Assess: one endpoint per key; the work done before the crash was adopted, not repeated.
    const endpoints = sim.endpoints();
    expect(endpoints).toHaveLength(requests.length);
    expect(new Set(endpoints.map(endpointKey))).toEqual(new Set(requests.map(endpointKey)));
    // Each fact once: the tracker, like a requester, de-duplicates on eventId.
    const outcomes = (r: (typeof tracked)[number]) =>
      r.events.map((e) => e.outcome).filter((o) => o !== 'STATUS_CHANGED');
    // Records the killed batch had finished (but never reported) are answered on redelivery with
    // the answer the ledger recorded for that delivery: the same fact, heard once.
    const answeredBeforeTheCrash = crashed.filter((r) => outcomes(r)[0] === 'PROVISIONED');
    for (const request of answeredBeforeTheCrash) {
      expect(outcomes(request), request.label).toEqual(['PROVISIONED']);
    }
    for (const request of tracked) expect(request.final, request.label).toBe('provisioned');
    const ledger = await settledLedger(flow.environment, (i) => i.status === 'ACTIVE');
    expect(ledger.map((i) => i.status)).toEqual(requests.map(() => 'ACTIVE'));
    expect(ledger.every((i) => i.lease === undefined)).toBe(true);
    await eventually(
      async () => (await queueDepth(flow.environment.clients.sqs, flow.environment.requestQueue.url)) === 0,
      {
        timeoutMs: 5_000,
        what: 'the request queue to be empty',
      },
    );
    expect(await queueDepth(flow.environment.clients.sqs, flow.environment.dlq.url)).toBe(0);
    expect(flow.tracker.problems).toEqual([]);
  });
});
