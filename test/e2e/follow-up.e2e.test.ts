/**
 * End to end on ElasticMQ, moto and the Atlas simulator (started here): a requester hears ACTIVE
 * (or gone) within seconds of Atlas, from the provisioner's follow-ups, long before the status
 * checker's next run; a follow-up that meets a 429 or a 5xx asks again and still settles the key;
 * and a key whose follow-ups stopped is settled by the sweep.
 */
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { type LocalFlow, startLocalFlow } from '#test/local/flow.ts';
import { body, eventually, keepFunctionLogs, ledgerItems, queueDepth, simulatorOf } from './support.ts';

keepFunctionLogs();

const ACTIVATION_MS = 2_000;

describe('follow-ups: answers as fast as Atlas', () => {
  let flow: LocalFlow;
  let checkerRuns = 0;

  beforeAll(async () => {
    flow = await startLocalFlow({
      // Follow-ups after 1 s, then every 2 s (the local settings); the checker only once a minute,
      // so nothing but a follow-up can announce a status within these tests unless they run it.
      simulator: { activationDelayMs: ACTIVATION_MS, deletionDelayMs: 1_000, rateLimit: false },
      checkPeriodMs: 60_000,
    });
    const run = flow.statusChecker.runNow.bind(flow.statusChecker);
    flow.statusChecker.runNow = () => {
      checkerRuns += 1;
      return run();
    };
  }, 120_000);
  afterAll(() => flow?.stop());
  beforeEach(() => simulatorOf(flow).clearFaults());

  const gets = (groupId: string) =>
    simulatorOf(flow).requests.filter((r) => r.groupId === groupId && r.operation === 'get');

  it('announces ACTIVE within seconds of Atlas, with no checker run, and a delete as gone', {
    timeout: 60_000,
  }, async () => {
    const groupId = '6640000000000000000000f1';
    const [request] = await flow.send([body({ requestId: 'follow-1', groupId, regionName: 'EU_WEST_1' })]);
    await flow.tracker.settled(20_000);

    expect(request?.final).toBe('provisioned');
    expect(request?.events.map((e) => e.outcome)).toEqual(['PROVISIONED', 'STATUS_CHANGED']);
    expect(request?.events.at(-1)).toMatchObject({ status: 'ACTIVE', previousStatus: 'INITIATING' });
    // ACTIVE after 2 s; follow-ups at 1, 3, 5 s: heard from a follow-up, never from a sweep (how
    // soon is measured by `npm run bench -- 'follow-up lag'`, not bounded here).
    expect(checkerRuns).toBe(0);
    expect(gets(groupId).length).toBeGreaterThanOrEqual(1);
    expect(gets(groupId).length).toBeLessThanOrEqual(4);

    const [removal] = await flow.send([
      body({ requestId: 'follow-1-delete', action: 'delete', groupId, regionName: 'EU_WEST_1' }),
    ]);
    await flow.tracker.waitFor(() => removal?.final === 'deleted', { timeoutMs: 20_000, what: 'DELETED' });
    expect(removal?.events.map((e) => e.outcome)).toEqual(['DELETE_REQUESTED', 'DELETED']);
    expect(checkerRuns).toBe(0);
  });

  it('asks again after a 429 and a 503 on a follow-up, loses nothing and parks nothing', {
    timeout: 60_000,
  }, async () => {
    const groupId = '6640000000000000000000f2';
    const sim = simulatorOf(flow);
    sim.injectFault({
      groupId,
      operations: ['get'],
      fault: { kind: 'status', status: 429, errorCode: 'RATE_LIMIT_EXCEEDED', retryAfterSeconds: 1 },
      times: 1,
    });
    sim.injectFault({
      groupId,
      operations: ['get'],
      fault: { kind: 'status', status: 503, errorCode: 'SERVICE_UNAVAILABLE' },
      times: 1,
    });

    const [request] = await flow.send([body({ requestId: 'follow-2', groupId, regionName: 'US_EAST_1' })]);
    await flow.tracker.settled(30_000);

    expect(request?.final).toBe('provisioned');
    expect(request?.events.at(-1)).toMatchObject({ outcome: 'STATUS_CHANGED', status: 'ACTIVE' });
    expect(
      gets(groupId)
        .map((r) => r.status)
        .slice(0, 2),
    ).toEqual([429, 503]);
    expect(checkerRuns).toBe(0);
    expect(await queueDepth(flow.environment.clients.sqs, flow.environment.dlq.url)).toBe(0);
    const [item] = (await ledgerItems(flow.environment)).filter((i) => i.groupId === groupId);
    expect(item).toMatchObject({ status: 'ACTIVE' });
    expect(item).not.toHaveProperty('lease');
  });

  it('settles a key whose follow-ups stopped at the next sweep', { timeout: 60_000 }, async () => {
    const groupId = '6640000000000000000000f3';
    const sim = simulatorOf(flow);
    // Every follow-up is refused: it is dropped (never parked), as one whose message was lost.
    sim.injectFault({
      groupId,
      operations: ['get'],
      fault: { kind: 'status', status: 403, errorCode: 'USER_UNAUTHORIZED' },
    });

    const [request] = await flow.send([
      body({ requestId: 'follow-3', groupId, regionName: 'AP_SOUTHEAST_2' }),
    ]);
    await eventually(() => gets(groupId).length >= 1 && Date.now(), {
      timeoutMs: 20_000,
      what: 'a follow-up to be refused',
    });
    // Nothing more can happen once Atlas has it ACTIVE and no follow-up waits or runs in the queue.
    await eventually(
      async () =>
        sim.endpoints(groupId)[0]?.status === 'ACTIVE' &&
        (await queueDepth(flow.environment.clients.sqs, flow.environment.requestQueue.url)) === 0,
      {
        timeoutMs: 20_000,
        what: 'Atlas to activate the endpoint with no follow-up left in the request queue',
      },
    );
    expect(request?.final).toBeUndefined();
    expect(gets(groupId)).toHaveLength(1);

    await flow.statusChecker.runNow();
    await flow.tracker.waitFor(() => request?.final === 'provisioned', {
      timeoutMs: 10_000,
      what: 'the sweep to announce ACTIVE',
    });
    expect(request?.events.at(-1)).toMatchObject({ outcome: 'STATUS_CHANGED', status: 'ACTIVE' });
    expect(await queueDepth(flow.environment.clients.sqs, flow.environment.dlq.url)).toBe(0);
  });
});
