/**
 * End to end on ElasticMQ, moto and the Atlas simulator (started here): requests take effect in
 * the order they were sent (README "Order"). Create, delete, create for one key, sent in that order
 * and delivered in other orders, leave the key as the last one says; a delete sent while a FAILED
 * endpoint is recreated, or while a create is in doubt, stays deleted; every request gets a final
 * answer.
 */
import { SendMessageCommand } from '@aws-sdk/client-sqs';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { type LocalFlow, startLocalFlow } from '#test/local/flow.ts';
import type { TrackedRequest } from '#test/local/tracker.ts';
import { body, eventually, keepFunctionLogs, ledgerItems, simulatorOf } from './support.ts';

keepFunctionLogs();

const live = (flow: LocalFlow, groupId: string) =>
  simulatorOf(flow)
    .endpoints(groupId)
    .filter((e) => e.status !== 'DELETING');

describe('requests take effect in the order they were sent', () => {
  let flow: LocalFlow;
  let line = 10_000;

  beforeAll(async () => {
    flow = await startLocalFlow({
      // Atlas times out after 3 s; a create in doubt is listed again 4 s after it was sent.
      simulator: { activationDelayMs: 300, deletionDelayMs: 500, rateLimit: false },
      checkPeriodMs: 1_000,
    });
  }, 120_000);
  afterAll(() => flow?.stop());
  beforeEach(() => simulatorOf(flow).clearFaults());

  /** Sends a request now (its SentTimestamp), delivered after `delaySeconds`, and tracks it. */
  async function sendDelayed(text: string, delaySeconds = 0): Promise<TrackedRequest> {
    const out = await flow.environment.clients.sqs.send(
      new SendMessageCommand({
        QueueUrl: flow.environment.requestQueue.url,
        MessageBody: text,
        ...(delaySeconds > 0 && { DelaySeconds: delaySeconds }),
      }),
    );
    line += 1;
    const tracked = flow.tracker.sent(text, out.MessageId ?? '', line);
    // SentTimestamp has millisecond resolution: the next request is sent in a later one.
    await new Promise((r) => setTimeout(r, 20));
    return tracked;
  }

  it('create, delete, create sent in that order and delivered shuffled: the key ends with one ACTIVE endpoint', {
    timeout: 120_000,
  }, async () => {
    // Delivery slot of each request (create-1, delete-2, create-3), 4 s apart.
    const orders = [
      [0, 1, 2],
      [1, 0, 2],
      [2, 1, 0],
      [0, 2, 1],
      [1, 2, 0],
    ];
    const keys = orders.map((slots, n) => {
      const groupId = `66500000000000000000${String(n).padStart(4, '0')}`;
      const requests = [
        body({ requestId: `order-${n}-create-1`, groupId, regionName: 'EU_WEST_1' }),
        body({ requestId: `order-${n}-delete-2`, action: 'delete', groupId, regionName: 'EU_WEST_1' }),
        body({ requestId: `order-${n}-create-3`, groupId, regionName: 'EU_WEST_1' }),
      ];
      return { groupId, slots, requests };
    });
    const tracked: TrackedRequest[][] = [];
    for (const { slots, requests } of keys) {
      const sent: TrackedRequest[] = [];
      for (const [i, text] of requests.entries()) sent.push(await sendDelayed(text, (slots[i] ?? 0) * 4));
      tracked.push(sent);
    }

    await flow.tracker.settled(60_000);

    for (const [n, { groupId }] of keys.entries()) {
      await eventually(
        () => live(flow, groupId).length === 1 && live(flow, groupId)[0]?.status === 'ACTIVE',
        {
          timeoutMs: 20_000,
          what: `order ${orders[n]}: one ACTIVE endpoint`,
          state: () => JSON.stringify(simulatorOf(flow).endpoints(groupId)),
        },
      );
      const item = (await ledgerItems(flow.environment)).find((i) => i.groupId === groupId);
      expect(item).toMatchObject({
        action: 'create',
        applied: { default: { requestId: `order-${n}-create-3` } },
      });
      // The last request is provisioned (or adopted the endpoint); each request had a final answer.
      expect(tracked[n]?.[2]?.final).toBe('provisioned');
      expect(tracked[n]?.every((r) => r.final !== undefined)).toBe(true);
    }
    // Delivered after a newer request of its requester took effect: superseded, naming it.
    const lateCreate = tracked[1]?.[0];
    expect(lateCreate?.final).toBe('superseded');
    expect(lateCreate?.events.at(-1)).toMatchObject({
      outcome: 'SUPERSEDED',
      supersededBy: 'order-1-delete-2',
    });
  });

  it('a delete during a recreate wait stays deleted: the wait creates nothing', {
    timeout: 90_000,
  }, async () => {
    const groupId = '665000000000000000000f01';
    const sim = simulatorOf(flow);
    sim.setCreateStatus(groupId, 'FAILED', 'the interface endpoint could not be created in the VPC');
    const create = await sendDelayed(body({ requestId: 'recreating-1', groupId, regionName: 'EU_WEST_1' }));
    await eventually(() => create.events.some((e) => e.outcome === 'RECREATING'), {
      timeoutMs: 20_000,
      what: 'the FAILED endpoint to be recreated',
    });
    sim.setCreateStatus(groupId, 'INITIATING');

    const del = await sendDelayed(
      body({ requestId: 'recreating-delete-2', action: 'delete', groupId, regionName: 'EU_WEST_1' }),
    );
    await flow.tracker.settled(60_000);

    expect(del.final).toBe('deleted');
    expect(create.final).toBe('superseded');
    // The recreate wait came back after the delete and created nothing.
    await new Promise((r) => setTimeout(r, 6_000));
    expect(live(flow, groupId)).toEqual([]);
    expect(sim.requests.filter((r) => r.groupId === groupId && r.operation === 'create')).toHaveLength(1);
    expect(create.events.filter((e) => e.outcome === 'SUPERSEDED').at(-1)).toMatchObject({
      supersededBy: 'recreating-delete-2',
    });
  });

  it('a delete during a create in doubt stays deleted: the create retried after it creates nothing', {
    timeout: 90_000,
  }, async () => {
    const groupId = '665000000000000000000f02';
    const sim = simulatorOf(flow);
    // Atlas performs the create after the client gave up (3 s): the create is in doubt.
    sim.injectFault({
      groupId,
      operations: ['create'],
      fault: { kind: 'lateCreate', landAfterMs: 3_500 },
      times: 1,
    });
    const create = await sendDelayed(body({ requestId: 'in-doubt-1', groupId, regionName: 'EU_WEST_1' }));
    await eventually(
      async () => {
        const item = (await ledgerItems(flow.environment)).find((i) => i.groupId === groupId);
        return item?.pendingCreate !== undefined && item.lease === undefined;
      },
      { timeoutMs: 20_000, what: 'the create to be in doubt' },
    );

    const del = await sendDelayed(
      body({ requestId: 'in-doubt-delete-2', action: 'delete', groupId, regionName: 'EU_WEST_1' }),
    );
    await flow.tracker.settled(60_000);

    expect(del.final).toBe('deleted');
    expect(create.final).toBe('superseded');
    await new Promise((r) => setTimeout(r, 6_000));
    expect(live(flow, groupId)).toEqual([]);
    expect(sim.requests.filter((r) => r.groupId === groupId && r.operation === 'create')).toHaveLength(1);
  });
});
