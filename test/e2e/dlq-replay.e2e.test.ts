/**
 * End to end on ElasticMQ, moto and the Atlas simulator (started here): Atlas stays down past
 * the attempt budget, so the requests land in the DLQ with their reasons; once Atlas is back, a
 * replay (an SQS message move task) provisions every one of them, once.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type LocalFlow, startLocalFlow } from '#test/local/flow.ts';
import {
  attribute,
  body,
  endpointKey,
  eventually,
  keepFunctionLogs,
  peekQueue,
  queueDepth,
  replayDlq,
  settledLedger,
  simulatorOf,
} from './support.ts';

keepFunctionLogs();

const PROJECTS = ['6660000000000000000000f1', '6660000000000000000000f2', '6660000000000000000000f3'];
const REQUESTS = PROJECTS.flatMap((groupId, p) =>
  (['US_EAST_1', 'EU_WEST_1'] as const).map((regionName, r) => ({
    requestId: `down-${p}-${r}`,
    groupId,
    regionName,
  })),
);
const MAX_ATTEMPTS = 3;

describe('Atlas down past the attempt budget', () => {
  let flow: LocalFlow;

  beforeAll(async () => {
    flow = await startLocalFlow({
      settings: { maxAttempts: MAX_ATTEMPTS, backoffBaseSeconds: 1, backoffCapSeconds: 1 },
      simulator: { activationDelayMs: 300 },
      checkPeriodMs: 500,
    });
  });
  afterAll(() => flow?.stop());

  it('parks every request in the DLQ after its last attempt, with the reason', {
    timeout: 60_000,
  }, async () => {
    // Prepare
    const sim = simulatorOf(flow);
    for (const groupId of PROJECTS) {
      sim.injectFault({ groupId, fault: { kind: 'status', status: 503, retryAfterSeconds: 1 } });
    }

    // Act
    const tracked = await flow.send(REQUESTS.map((r) => body(r)));
    await flow.tracker.settled(40_000);

    // Assess: each was tried maxAttempts times, then parked with what went wrong.
    for (const request of tracked) {
      expect(request.final, request.label).toBe('dlq');
      expect(request.deliveries, request.label).toHaveLength(MAX_ATTEMPTS);
      expect(request.error, request.label).toMatchObject({ httpStatus: 503 });
    }
    const parked = await eventually(
      async () => {
        const messages = await peekQueue(flow.environment.clients.sqs, flow.environment.dlq.url);
        return messages.length === REQUESTS.length && messages;
      },
      { timeoutMs: 5_000, what: `${REQUESTS.length} messages in the DLQ` },
    );
    expect(parked.map((m) => m.Body).sort()).toEqual(REQUESTS.map((r) => body(r)).sort());
    for (const message of parked) {
      expect(attribute(message, 'HttpStatus')).toBe('503');
      expect(attribute(message, 'Attempts')).toBe(String(MAX_ATTEMPTS));
      expect(attribute(message, 'ErrorCode')).toBeTruthy();
      expect(attribute(message, 'Detail')).toBeTruthy();
      expect(Date.parse(attribute(message, 'FirstFailureAt') ?? '')).toBeLessThanOrEqual(
        Date.parse(attribute(message, 'LastFailureAt') ?? ''),
      );
      expect(REQUESTS.map((r) => r.requestId)).toContain(attribute(message, 'RequestId'));
    }
    expect(sim.endpoints()).toEqual([]);
  });

  it('provisions every parked request, once, when replayed after Atlas recovers', {
    timeout: 60_000,
  }, async () => {
    // Prepare
    const sim = simulatorOf(flow);
    sim.clearFaults();

    const before = new Map(flow.tracker.requests.map((r) => [r, r.deliveries.length]));

    // Act
    const moved = await replayDlq(flow);
    await flow.tracker.settled(30_000);

    // Assess: attempts start again, each request is provisioned, one endpoint per key.
    expect(moved).toBe(REQUESTS.length);
    for (const request of flow.tracker.requests) {
      expect(request.final, request.label).toBe('provisioned');
      expect(request.deliveries[before.get(request) ?? 0]?.receiveCount, request.label).toBe(1);
    }
    const endpoints = sim.endpoints();
    expect(endpoints).toHaveLength(REQUESTS.length);
    expect(new Set(endpoints.map(endpointKey))).toEqual(new Set(REQUESTS.map(endpointKey)));
    const ledger = await settledLedger(flow.environment, (i) => i.status === 'ACTIVE');
    expect(ledger.map((i) => i.status)).toEqual(REQUESTS.map(() => 'ACTIVE'));
    expect(ledger.every((i) => i.lastError === undefined)).toBe(true);
    expect(await queueDepth(flow.environment.clients.sqs, flow.environment.dlq.url)).toBe(0);
    expect(flow.tracker.problems).toEqual([]);
  });
});
