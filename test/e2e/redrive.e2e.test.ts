/**
 * End to end on ElasticMQ, moto and the Atlas simulator (started here), with the provisioner
 * in child processes: a message that kills the function every time it is delivered lands in
 * the DLQ through the queue's redrive policy after maxReceiveCount deliveries, unchanged; once
 * the cause is fixed, a replay provisions it.
 */
import { SetQueueAttributesCommand } from '@aws-sdk/client-sqs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { visibilityTimeoutSeconds } from '#infra/settings.ts';
import { type LocalFlow, startLocalFlow } from '#test/local/flow.ts';
import {
  body,
  eventually,
  keepFunctionLogs,
  peekQueue,
  queueDepth,
  replayDlq,
  simulatorOf,
} from './support.ts';

const logs = keepFunctionLogs();

const PROJECT = '6650000000000000000000e1';
const POISON = body({ requestId: 'poison-1', groupId: PROJECT, regionName: 'EU_WEST_1' });

describe('a message that crashes the provisioner', () => {
  let flow: LocalFlow;
  let poisonous = true;

  beforeAll(async () => {
    flow = await startLocalFlow({
      // Redrive after maxAttempts + 3 = 5 deliveries, 2 s apart.
      settings: { maxAttempts: 2 },
      isolation: 'process',
      visibilityTimeoutSeconds: 2,
      crashWhen: (records) => poisonous && records.some((r) => r.body === POISON),
      simulator: { activationDelayMs: 300 },
      checkPeriodMs: 500,
      functionOutput: logs,
    });
  });
  afterAll(() => flow?.stop());

  it('is moved to the DLQ by the redrive policy after maxReceiveCount deliveries', {
    timeout: 60_000,
  }, async () => {
    // Prepare
    const { environment } = flow;
    const sim = simulatorOf(flow);

    // Act
    const [poison] = await flow.send([POISON]);
    const [parked] = await eventually(
      async () => {
        const messages = await peekQueue(environment.clients.sqs, environment.dlq.url);
        return messages.length > 0 && messages;
      },
      { timeoutMs: 40_000, what: 'the poison message in the DLQ', state: () => flow.tracker.describe() },
    );

    // Assess: delivered exactly maxReceiveCount times, each one lost to a crash, then redriven unchanged.
    expect(poison?.deliveries.map((d) => d.receiveCount)).toEqual(
      Array.from({ length: environment.maxReceiveCount }, (_, i) => i + 1),
    );
    expect(poison?.crashes).toBe(environment.maxReceiveCount);
    expect(poison?.final).toBe('dlq');
    expect(parked?.Body).toBe(POISON);
    expect(parked?.Attributes?.DeadLetterQueueSourceArn).toBe(environment.requestQueue.arn);
    expect(parked?.MessageAttributes?.ErrorCode).toBeUndefined();
    expect(await queueDepth(environment.clients.sqs, environment.requestQueue.url)).toBe(0);
    expect(sim.endpoints(PROJECT)).toEqual([]);
  });

  it('is provisioned by a replay once it no longer crashes the function', { timeout: 60_000 }, async () => {
    // Prepare: the cause is fixed, and the queue gets the stack's visibility timeout back, so a
    // delivery outlasts the function's run (a cold start takes longer than 2 s).
    poisonous = false;
    const { environment } = flow;
    await environment.clients.sqs.send(
      new SetQueueAttributesCommand({
        QueueUrl: environment.requestQueue.url,
        Attributes: { VisibilityTimeout: String(visibilityTimeoutSeconds(flow.settings)) },
      }),
    );
    const sim = simulatorOf(flow);
    const [poison] = flow.tracker.requests;
    const before = poison?.deliveries.length ?? 0;

    // Act
    const moved = await replayDlq(flow);
    await flow.tracker.settled(30_000);

    // Assess: its attempts start again.
    expect(moved).toBe(1);
    expect(poison?.final, flow.tracker.describe()).toBe('provisioned');
    expect(poison?.deliveries[before]?.receiveCount, flow.tracker.describe()).toBe(1);
    expect(sim.endpoints(PROJECT)).toHaveLength(1);
    expect(await queueDepth(environment.clients.sqs, environment.dlq.url)).toBe(0);
    expect(flow.tracker.problems).toEqual([]);
  });
});
